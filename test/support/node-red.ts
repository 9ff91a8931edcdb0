// A real Node-RED runtime in a child process, with its own user directory, as
// a user runs it (red.js -u <dir> -p <port>), for the browser and package tests.
import fs from "fs";
import net from "net";
import os from "os";
import path from "path";
import { Child, eventually, ROOT, spawnChild } from "./rings";

export const PACKAGE_NAME = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string }).name;
export const NODE_TYPES = Object.keys(
  (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { "node-red": { nodes: Record<string, string> } })["node-red"].nodes,
);
export const RED_JS = path.join(path.dirname(require.resolve("node-red/package.json")), "red.js");

// Starting Node-RED loads every palette module; on a slow machine that takes a
// while. The guard only keeps a broken start from hanging the run.
const START_GUARD_MS = 180_000;

const SETTINGS = `module.exports = {
    uiHost: "127.0.0.1",
    flowFile: "flows.json",
    credentialSecret: false,
    telemetry: { enabled: false },
    // No network: no palette catalogue, no welcome tour over the editor.
    editorTheme: { tours: false, palette: { catalogues: [] }, projects: { enabled: false } },
    logging: { console: { level: "info" } }
};
`;

/** A fresh Node-RED user directory with a settings file and an empty package.json. */
export function makeUserDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dp-${label}-`));
  fs.writeFileSync(path.join(dir, "settings.js"), SETTINGS);
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "node-red-project", version: "0.0.1", private: true, dependencies: {} }, null, 4) + "\n");
  return dir;
}

/** Links a package into the user directory's node_modules, as `npm start` does for this one. */
export function linkModule(userDir: string, name: string, target: string): void {
  const link = path.join(userDir, "node_modules", ...name.split("/"));
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.symlinkSync(target, link, "dir");
  const pkgFile = path.join(userDir, "package.json");
  const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8")) as { dependencies: Record<string, string> };
  pkg.dependencies[name] = `file:${target}`;
  fs.writeFileSync(pkgFile, JSON.stringify(pkg, null, 4) + "\n");
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (address && typeof address === "object" ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface RunningRed {
  url: string;
  child: Child;
  /** Everything Node-RED printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export async function startNodeRed(userDir: string, env: NodeJS.ProcessEnv = {}): Promise<RunningRed> {
  const port = await freePort();
  const child = spawnChild(process.execPath, [RED_JS, "-u", userDir, "-p", String(port)], { ...process.env, ...env });
  const output = (): string => [...child.lines, ...child.stderr].join("\n");
  let exited: number | null | undefined;
  void child.exited.then((code) => (exited = code));
  await eventually(
    () => {
      if (exited !== undefined) throw new Error(`Node-RED exited (${exited}) before it listened:\n${output()}`);
      return child.lines.some((l) => l.includes("Server now running at"));
    },
    "Node-RED to listen",
    START_GUARD_MS,
  );
  return {
    url: `http://127.0.0.1:${port}/`,
    child,
    output,
    stop: async () => {
      if (exited === undefined) {
        child.proc.kill("SIGTERM");
        await child.exited;
      }
    },
  };
}

/** GET /nodes as JSON: what the runtime loaded, module by module. */
export interface NodeSetInfo {
  id: string;
  name: string;
  module: string;
  types: string[];
  enabled: boolean;
  loaded?: boolean;
  err?: string;
}

export async function loadedNodeSets(url: string): Promise<NodeSetInfo[]> {
  const res = await fetch(new URL("nodes", url), { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`GET /nodes: ${res.status}`);
  return (await res.json()) as NodeSetInfo[];
}
