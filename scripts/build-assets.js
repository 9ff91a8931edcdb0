// Node-RED looks for <type>.html, icons/ and locales/ beside each node's .js,
// so the editor assets are copied next to the compiled node files.
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const out = path.join(root, "dist", "nodes");

function copyDir(from, to) {
  if (!fs.existsSync(from)) return;
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyDir(src, dst);
    else fs.copyFileSync(src, dst);
  }
}

fs.mkdirSync(out, { recursive: true });
for (const file of fs.readdirSync(path.join(root, "nodes"))) {
  if (file.endsWith(".html")) fs.copyFileSync(path.join(root, "nodes", file), path.join(out, file));
}
copyDir(path.join(root, "icons"), path.join(out, "icons"));
copyDir(path.join(root, "locales"), path.join(out, "locales"));
// Data the engines read at run time (tsc copies only code).
copyDir(path.join(root, "lib", "profiles", "db"), path.join(root, "dist", "lib", "profiles", "db"));
