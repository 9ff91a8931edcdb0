// What a user gets: `npm pack` makes the tarball the Flow Library and npm
// publish, it installs into a fresh Node-RED user directory (building the addon
// from the shipped sources), and a real Node-RED loads every node from it.
import assert from "assert";
import { execFile } from "child_process";
import fs from "fs";
import path from "path";
import { eventually, ROOT } from "./support/rings";
import { loadedNodeSets, makeUserDir, NODE_TYPES, PACKAGE_NAME, NodeRed, startNodeRed } from "./support/node-red";

interface PackResult {
  filename: string;
  files: Array<{ path: string }>;
}

// The parent `npm test` exports its own lifecycle variables; the nested npm
// must read its configuration as a user's would.
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith("npm_") && k !== "INIT_CWD") env[k] = v;
  return env;
}

function npm(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("npm", args, { cwd, env: cleanEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`npm ${args.join(" ")}: ${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
    );
  });
}

describe("npm package", () => {
  let work = "";
  let pack: PackResult;
  let red: NodeRed | undefined;

  before(async () => {
    work = makeUserDir("pack");
    // The build is the one the test run just made; `prepare` would only redo it.
    const out = await npm(["pack", "--ignore-scripts", "--json", "--pack-destination", work], ROOT);
    pack = (JSON.parse(out) as PackResult[])[0];
  });

  after(async () => {
    await red?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("holds what Node-RED and the install need, and no tests or benchmarks", () => {
    const files = new Set(pack.files.map((f) => f.path));
    const need = ["package.json", "README.md", "LICENSE", "binding.gyp", "native/include/devplane/shm_ring.h", "clients/python/devplane_shm.py", "clients/c/shm_reader.c", "dist/lib/index.js", "dist/lib/native.js", "dist/lib/policy/audit-cli.js"];
    for (const type of NODE_TYPES) {
      need.push(`dist/nodes/${type}.js`, `dist/nodes/${type}.html`, `dist/nodes/locales/en-US/${type}.json`, `dist/nodes/locales/en-US/${type}.html`);
    }
    for (const icon of fs.readdirSync(path.join(ROOT, "icons"))) need.push(`dist/nodes/icons/${icon}`);
    for (const db of fs.readdirSync(path.join(ROOT, "lib", "profiles", "db"))) need.push(`dist/lib/profiles/db/${db}`);
    for (const example of fs.readdirSync(path.join(ROOT, "examples"))) need.push(`examples/${example}`);
    const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, "binding.gyp"), "utf8")) as { targets: Array<{ sources: string[] }> };
    for (const source of gyp.targets.flatMap((t) => t.sources)) need.push(source);
    for (const header of fs.readdirSync(path.join(ROOT, "native", "src")).filter((f) => f.endsWith(".h"))) need.push(`native/src/${header}`);
    const missing = need.filter((f) => !files.has(f));
    assert.deepStrictEqual(missing, [], "files missing from the tarball");

    const junk = [...files].filter((f) => /^(dist\/)?(test|bench)\//.test(f) || /(^|\/)(build|node_modules|\.node-red-user)\//.test(f) || /\.(map|tsbuildinfo)$/.test(f) || /(^|\/)test_[^/]*\.py$/.test(f) || /\.ts$/.test(f) && !f.endsWith(".d.ts"));
    assert.deepStrictEqual(junk, [], "files that have no business in the tarball");
  });

  it("installs into a fresh Node-RED user directory, building the addon, and loads every node", async () => {
    const userDir = path.join(work, "user");
    fs.mkdirSync(userDir);
    for (const f of ["settings.js", "package.json"]) fs.renameSync(path.join(work, f), path.join(userDir, f));
    // --prefer-offline: the dependencies come from npm's cache when the test run's own install put them there.
    await npm(["install", "--prefer-offline", "--no-audit", "--no-fund", path.join(work, pack.filename)], userDir);
    const installed = path.join(userDir, "node_modules", ...PACKAGE_NAME.split("/"));
    assert.ok(fs.existsSync(path.join(installed, "build", "Release", "devplane.node")), "the install built the addon");

    red = await startNodeRed(userDir);
    const sets = (await loadedNodeSets(red.url)).filter((s) => s.module === PACKAGE_NAME);
    const types = sets.flatMap((s) => s.types).sort();
    assert.deepStrictEqual(types, [...NODE_TYPES].sort(), "every node type registered");
    for (const s of sets) {
      assert.strictEqual(s.err, undefined, `${s.name}: ${s.err}`);
      assert.strictEqual(s.enabled, true, `${s.name} is enabled`);
    }

    // A deployed shm-publish reaches the addon: its ring appears in /dev/shm.
    const ring = `dp-test-${process.pid}-pack`;
    const deploy = await fetch(new URL("flows", red.url), {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify([
        { id: "t1", type: "tab", label: "pack" },
        { id: "p1", type: "shm-publish", z: "t1", ring, slots: 2, slotSize: 4096, contentType: "", mode: "600", keep: false, wires: [] },
      ]),
    });
    assert.strictEqual(deploy.status, 204, await deploy.text());
    await eventually(() => fs.existsSync(`/dev/shm/${ring}`), `ring ${ring} from the installed package`);
    const cleared = await fetch(new URL("flows", red.url), {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: "[]",
    });
    assert.strictEqual(cleared.status, 204);
    await eventually(() => !fs.existsSync(`/dev/shm/${ring}`), `ring ${ring} removed on redeploy`);
    assert.ok(!/\[error\]/.test(red.log()), red.log());
  });
});
