// Run by test/alsa-faults.test.ts in a process whose fake microphone is paced
// like a real one (DEVPLANE_FAKE_ASOUND_PACE=1): the example flows run in
// Node-RED with its core nodes, on a device of test/fakes/asound.conf instead
// of "default", a broker on a free port and a ring name of the test's own. At
// the file plugin's own pace the flows would only measure Node-RED's backlog.
import assert from "assert";
import fs from "fs";
import net from "net";
import path from "path";
import type { NodeMessage } from "node-red";
import { addon } from "../../lib/native";
import { CHILD_TESTS } from "../support/alsa";
import { alsaNodes, helper } from "../support/red";
import { withoutDashboard, withoutMqtt } from "../support/flows";
import { cleanupRings, eventually, ringName, ROOT, spawnChild } from "../support/rings";

const T = CHILD_TESTS.examples;

type FlowNode = Record<string, unknown> & { id: string; type: string };

// Node-RED's core nodes are untyped CommonJS files, loaded by path as Node-RED itself loads them.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = (file: string) => require(path.join(path.dirname(require.resolve("@node-red/nodes/package.json")), "core", file));
const coreNodes = [
  "common/20-inject.js",
  "common/21-debug.js",
  "common/90-comment.js",
  "function/10-function.js",
  "function/10-switch.js",
  "function/15-change.js",
  "function/89-delay.js",
  "network/10-mqtt.js",
  "common/25-status.js",
].map(core);

function example(name: string): FlowNode[] {
  return withoutDashboard(JSON.parse(fs.readFileSync(path.join(ROOT, "examples", name), "utf8")) as FlowNode[]);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe("alsa example flows (child process)", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    cleanupRings();
  });

  it(T.levelMqtt, async () => {
    const port = await freePort();
    const broker = spawnChild(process.execPath, [path.join(ROOT, "bench", "mqtt-broker.mjs"), String(port)]);
    try {
      await broker.line(/^ready/);
      const flow = example("alsa-level-mqtt.json");
      for (const n of flow) {
        if (n.type === "alsa-capture") n.device = "devplane_sine";
        if (n.type === "mqtt-broker") {
          n.broker = "127.0.0.1";
          n.port = String(port);
        }
        // What the dashboard side receives, to a test node.
        if (n.type === "mqtt in") n.wires = [["seen"]];
      }
      await helper.load([...alsaNodes, ...coreNodes] as never, [...flow, { id: "seen", type: "helper", z: flow[1].z }] as FlowNode[]);
      const seen: NodeMessage[] = [];
      helper.getNode("seen").on("input", (m: NodeMessage) => seen.push(m));
      const level = await eventually(() => seen.find((m) => /^devplane\/[^/]+\/mic\/level$/.test(m.topic ?? "")), "a level on the broker");
      const payload = level.payload as { rms: number; peak: number; ts: number };
      assert.deepStrictEqual(Object.keys(payload), ["rms", "peak", "ts"]);
      assert.ok(payload.rms > -30 && payload.rms < 0, `rms ${payload.rms}`);
      const status = await eventually(() => seen.find((m) => /^devplane\/[^/]+\/mic\/status$/.test(m.topic ?? "")), "the microphone's state");
      assert.strictEqual(status.payload, "connected");
    } finally {
      // The broker would wait for Node-RED's connection to close first.
      broker.proc.kill("SIGKILL");
      await broker.exited;
    }
  });

  it(T.toRing, async () => {
    const ring = ringName("example-mic");
    const flow = withoutMqtt(example("alsa-to-ring.json"));
    for (const n of flow) {
      if (n.type === "alsa-capture") {
        n.device = "devplane_sine";
        n.ring = ring;
      }
      if (n.type === "switch") n.wires = [["speech"], []];
    }
    await helper.load([...alsaNodes, ...coreNodes] as never, [...flow, { id: "speech", type: "helper", z: flow[1].z }] as FlowNode[]);
    const speech: NodeMessage[] = [];
    helper.getNode("speech").on("input", (m: NodeMessage) => speech.push(m));
    await eventually(() => speech.some((m) => m.payload === "start"), "speech to start");
    const reader = new (addon().RingReader)(ring);
    try {
      assert.strictEqual(reader.info().contentType, "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved");
      await eventually(() => reader.latest(), "a frame in the ring");
      assert.strictEqual(reader.latest()?.data.length, 640);
    } finally {
      reader.close();
    }
  });
});
