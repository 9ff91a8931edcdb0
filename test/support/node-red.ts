// A real Node-RED runtime in a child process, with its own user directory, as
// a user runs it (red.js -u <dir> -p <port>), and an MQTT broker beside it:
// mosquitto when Debian's is installed, aedes otherwise. Tests talk to it as
// the editor does: the admin API for deploys, the /comms websocket for node
// status, debug output and node errors.
import { ChildProcess, spawn } from "child_process";
import fs from "fs";
import net from "net";
import os from "os";
import path from "path";
import WebSocket from "ws";
import { eventually, ROOT } from "./rings";

export const PACKAGE_NAME = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string }).name;
export const NODE_TYPES = Object.keys(
  (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { "node-red": { nodes: Record<string, string> } })["node-red"].nodes,
);
export const RED_JS = path.join(path.dirname(require.resolve("node-red/package.json")), "red.js");
export const DASHBOARD = "@flowfuse/node-red-dashboard";

// Starting Node-RED loads every palette module; on a slow machine that takes a
// while. The guard only keeps a broken start from hanging the run.
const START_GUARD_MS = 180_000;

const SETTINGS = `module.exports = {
    uiHost: "127.0.0.1",
    flowFile: "flows.json",
    credentialSecret: false,
    telemetry: { enabled: false },
    debugMaxLength: 100000,
    // No network: no palette catalogue, no welcome tour over the editor.
    editorTheme: { tours: false, palette: { catalogues: [] }, projects: { enabled: false } },
    logging: { console: { level: "info", metrics: false, audit: false } }
};
`;

/** A fresh Node-RED user directory with a settings file and an empty package.json. */
export function makeUserDir(label: string, dir = fs.mkdtempSync(path.join(os.tmpdir(), `dp-${label}-`))): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "settings.js"), SETTINGS);
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "node-red-project", version: "0.0.1", private: true, dependencies: {} }, null, 4) + "\n");
  return dir;
}

/** Links a package into the user directory's node_modules, as `npm start` does for this one. */
export function linkModule(userDir: string, name: string, target: string): void {
  const link = path.join(userDir, "node_modules", ...name.split("/"));
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.rmSync(link, { force: true, recursive: true });
  fs.symlinkSync(target, link, "dir");
  const pkgFile = path.join(userDir, "package.json");
  const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8")) as { dependencies: Record<string, string> };
  pkg.dependencies[name] = `file:${target}`;
  fs.writeFileSync(pkgFile, JSON.stringify(pkg, null, 4) + "\n");
}

/** A user directory with this working tree and the dashboard linked in, as `npm start` makes one. */
export function makeDevplaneUserDir(label: string, dir?: string): string {
  const userDir = makeUserDir(label, dir);
  linkModule(userDir, PACKAGE_NAME, ROOT);
  linkModule(userDir, DASHBOARD, path.dirname(require.resolve(`${DASHBOARD}/package.json`)));
  return userDir;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function listening(port: number, what: string, proc: ChildProcess, output: () => string): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}):\n${output()}`);
    if (await accepts(port)) return;
    // A guard against a hung start, not a performance expectation.
    if (Date.now() - start > START_GUARD_MS) throw new Error(`${what} does not listen on ${port}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopped(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once("exit", () => resolve()));
}

// ---------------------------------------------------------------- broker

export interface Broker {
  kind: "mosquitto" | "aedes";
  port: number;
  stop(): Promise<void>;
}

/** Debian's mosquitto, unless DEVPLANE_TEST_BROKER=aedes asks for the fallback. */
export const MOSQUITTO = process.env.DEVPLANE_TEST_BROKER === "aedes" ? undefined : ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"].find((p) => fs.existsSync(p));

export async function startBroker(dir: string): Promise<Broker> {
  const port = await freePort();
  let proc: ChildProcess;
  let output = "";
  let kind: Broker["kind"];
  if (MOSQUITTO) {
    kind = "mosquitto";
    const conf = path.join(dir, "mosquitto.conf");
    fs.writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    proc = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  } else {
    kind = "aedes";
    proc = spawn(process.execPath, [path.join(ROOT, "bench", "mqtt-broker.mjs"), String(port)], { stdio: ["pipe", "pipe", "pipe"] });
  }
  proc.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  await listening(port, kind, proc, () => output);
  return {
    kind,
    port,
    stop: async () => {
      proc.kill("SIGKILL");
      await stopped(proc);
    },
  };
}

// ---------------------------------------------------------------- Node-RED

export type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string; wires?: string[][] };

export interface CommsMessage {
  topic: string;
  data: Record<string, unknown>;
}

export interface NodeRed {
  url: string;
  port: number;
  userDir: string;
  proc: ChildProcess;
  /** Everything Node-RED printed. */
  log(): string;
  /** Messages from /comms since the last deploy: status/<id> and debug (debug nodes, and node warnings and errors). */
  comms: CommsMessage[];
  /** Replaces every flow (a full deploy) and waits until the flows have started. */
  deploy(nodes: FlowNode[]): Promise<void>;
  /** Presses an inject node's button. */
  inject(id: string): Promise<void>;
  /** Node errors (debug messages at level error) since the last deploy. */
  errors(): Array<{ id: string; name?: string; msg: string }>;
  /** The latest status of a node. */
  status(id: string): { text?: string; fill?: string } | undefined;
  /** debug-node output of one node since the last deploy. */
  debug(id: string): Array<{ msg: string; format?: string }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts Node-RED on a user directory made by makeUserDir. env is the whole
 * environment of the runtime; nodeArgs go before red.js (e.g. --require for a test hook).
 */
export async function startNodeRed(userDir: string, env: NodeJS.ProcessEnv = process.env, nodeArgs: string[] = []): Promise<NodeRed> {
  const port = await freePort();
  const proc = spawn(process.execPath, [...nodeArgs, RED_JS, "-u", userDir, "-p", String(port)], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${port}/`;
  await listening(port, "Node-RED", proc, () => output);
  await eventually(() => /Started flows/.test(output), "Node-RED to start its (empty) flows", START_GUARD_MS);

  let comms: CommsMessage[] = [];
  const latest = new Map<string, { text?: string; fill?: string }>();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/comms`);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  ws.on("message", (data: WebSocket.RawData) => {
    const list = JSON.parse(data.toString()) as CommsMessage[];
    for (const m of Array.isArray(list) ? list : [list]) {
      comms.push(m);
      if (m.topic.startsWith("status/")) latest.set(m.topic.slice(7), m.data as { text?: string; fill?: string });
    }
  });
  ws.send(JSON.stringify({ subscribe: "status/#" }));
  ws.send(JSON.stringify({ subscribe: "debug" }));

  const red: NodeRed = {
    url,
    port,
    userDir,
    proc,
    log: () => output,
    get comms() {
      return comms;
    },
    async deploy(nodes) {
      const before = (output.match(/Started flows/g) ?? []).length;
      comms = [];
      latest.clear();
      const res = await fetch(`${url}flows`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
        body: JSON.stringify(nodes),
      });
      if (!res.ok) throw new Error(`deploy failed: ${res.status} ${await res.text()}`);
      await eventually(() => (output.match(/Started flows/g) ?? []).length > before, "the flows to start", 60000);
      const missing = /Waiting for missing types to be registered:[^\n]*(\n\s*- [^\n]*)*/.exec(output.slice(output.lastIndexOf("Stopping flows")));
      if (missing) throw new Error(missing[0]);
    },
    async inject(id) {
      const res = await fetch(`${url}inject/${id}`, { method: "POST" });
      if (!res.ok) throw new Error(`inject ${id}: ${res.status} ${await res.text()}`);
    },
    errors() {
      return comms
        .filter((m) => m.topic === "debug" && m.data.level === 20)
        .map((m) => ({ id: String(m.data.id), name: m.data.name as string | undefined, msg: String(m.data.msg) }));
    },
    status: (id) => latest.get(id),
    debug(id) {
      return comms.filter((m) => m.topic === "debug" && m.data.id === id && m.data.level === undefined).map((m) => ({ msg: String(m.data.msg), format: m.data.format as string | undefined }));
    },
    async stop(signal = "SIGTERM") {
      ws.terminate();
      proc.kill(signal);
      await stopped(proc);
    },
  };
  return red;
}

/** Each example's nodes under a tab of their own, as an import into a new tab would put them. */
export function withTabs(...flows: FlowNode[][]): FlowNode[] {
  const out: FlowNode[] = [];
  const tabs = new Set<string>();
  for (const flow of flows) {
    for (const n of flow) {
      if (n.z && !tabs.has(n.z)) {
        tabs.add(n.z);
        out.push({ id: n.z, type: "tab", label: `tab ${n.z}`, disabled: false, info: "" });
      }
      // Config nodes shared by several examples (broker, dashboard) are deployed once.
      if (!out.some((o) => o.id === n.id)) out.push(n);
    }
  }
  return out;
}

export function scratch(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `devplane-${label}-`));
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
