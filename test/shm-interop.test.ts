// A Node-RED flow writes frames; separate Python and C processes read them
// with the readers users get (clients/python, and native/include through clients/c).
import assert from "assert";
import { createHash } from "crypto";
import { execFileSync } from "child_process";
import fs from "fs";
import path from "path";
import type { NodeMessage } from "node-red";
import { RingPublisher } from "../lib/shm";
import { helper, shmNodes as nodes } from "./support/red";
import { cleanupRings, eventually, patternFrame, ringName, ROOT, spawnChild } from "./support/rings";

const PYTHON = path.join(ROOT, "clients", "python", "devplane_shm.py");
const C_READER = path.join(ROOT, "dist", "test", "shm_reader");

function fnv1a64(b: Buffer): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of b) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

function hasPython(): boolean {
  try {
    execFileSync("python3", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("readers in other processes", () => {
  before(() => {
    fs.mkdirSync(path.dirname(C_READER), { recursive: true });
    execFileSync("cc", ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", path.join(ROOT, "native", "include"),
      "-o", C_READER, path.join(ROOT, "clients", "c", "shm_reader.c")]);
    return helper.startServer();
  });
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    cleanupRings();
  });

  it("Python and C read the flow's frames with identical bytes and metadata", async function () {
    if (!hasPython()) this.skip();
    const ring = ringName("interop");
    await helper.load(nodes, [
      { id: "p", type: "shm-publish", ring, slots: 16, slotSize: 1 << 20, contentType: "", mode: "600", wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out: NodeMessage[] = [];
    helper.getNode("out").on("input", (m: NodeMessage) => out.push(m));
    const py = spawnChild("python3", [PYTHON, "read", ring, "--count", "6", "--timeout", "30", "--json"]);
    const c = spawnChild(C_READER, [ring, "--count", "6", "--timeout-ms", "30000"]);
    // Both readers register in the ring's reader table once attached.
    const pub = helper.getNode("p");
    await eventually(() => {
      const info = execFileSync("python3", [PYTHON, "info", ring]).toString();
      const readers = (JSON.parse(info) as { readers: Array<{ pid: number }> }).readers.map((r) => r.pid);
      return readers.includes(py.proc.pid ?? -1) && readers.includes(c.proc.pid ?? -1);
    }, "both readers to attach");
    const sizes = [0, 1, 640 * 480 * 2, 4096, 1 << 20, 77777];
    const frames = sizes.map((n, i) => patternFrame(i + 1, n));
    frames.forEach((payload, i) =>
      pub.receive({
        payload,
        topic: `cam/${i}`,
        frame: { format: "YUYV", width: 640, height: 480, stride: 1280, seq: i + 1 },
        meta: { unicode: "café ✓", n: i },
      }),
    );
    await eventually(() => out.length === 6, "six published frames");
    const [pyCode, cCode] = await Promise.all([py.exited, c.exited]);
    assert.strictEqual(pyCode, 0, py.stderr.join(""));
    assert.strictEqual(cCode, 0, c.stderr.join(""));

    const pyFrames = py.lines.map((l) => JSON.parse(l) as { seq: number; missed: number; length: number; sha256: string; meta: Record<string, unknown>; content_type: string });
    const cFrames = c.lines.map((l) => JSON.parse(l) as { seq: number; missed: number; length: number; fnv1a64: string; meta: Record<string, unknown> });
    assert.strictEqual(pyFrames.length, 6);
    assert.strictEqual(cFrames.length, 6);
    frames.forEach((payload, i) => {
      const expectedMeta = {
        topic: `cam/${i}`,
        frame: { format: "YUYV", width: 640, height: 480, stride: 1280, seq: i + 1 },
        meta: { unicode: "café ✓", n: i },
      };
      assert.strictEqual(pyFrames[i].seq, i + 1);
      assert.strictEqual(pyFrames[i].missed, 0);
      assert.strictEqual(pyFrames[i].length, payload.length);
      assert.strictEqual(pyFrames[i].sha256, createHash("sha256").update(payload).digest("hex"));
      assert.deepStrictEqual(pyFrames[i].meta, expectedMeta);
      assert.strictEqual(pyFrames[i].content_type, "video/x-raw,format=YUY2,width=640,height=480,stride=1280");
      assert.strictEqual(cFrames[i].seq, i + 1);
      assert.strictEqual(cFrames[i].length, payload.length);
      assert.strictEqual(cFrames[i].fnv1a64, fnv1a64(payload));
      assert.deepStrictEqual(cFrames[i].meta, expectedMeta);
    });
  });

  it("a C reader that spins when frames are due gets every frame, through pace changes and pauses", async () => {
    const ring = ringName("spin");
    const pub = new RingPublisher({ name: ring, slots: 64, slotSize: 65536 });
    try {
      const c = spawnChild(C_READER, [ring, "--count", "70", "--timeout-ms", "30000", "--spin-us", "500"]);
      await eventually(() => c.stderr.join("").includes("reading"), "the C reader to attach");
      const sent: Buffer[] = [];
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      // A steady 5 ms pace to learn, a slower one, a pause, then frames back to back.
      const phases = [{ n: 30, ms: 5 }, { n: 15, ms: 20 }, { n: 1, ms: 300 }, { n: 24, ms: 0 }];
      for (const { n, ms } of phases) {
        for (let i = 0; i < n; i++) {
          if (ms) await sleep(ms);
          const payload = patternFrame(sent.length + 1, 1000 + sent.length);
          sent.push(payload);
          pub.publish({ payload, frame: { seq: sent.length } });
        }
      }
      assert.strictEqual(await c.exited, 0, c.stderr.join(""));
      const got = c.lines.map((l) => JSON.parse(l) as { seq: number; missed: number; fnv1a64: string });
      assert.deepStrictEqual(got.map((f) => f.seq), sent.map((_, i) => i + 1));
      assert.ok(got.every((f) => f.missed === 0), "no frame missed");
      sent.forEach((payload, i) => assert.strictEqual(got[i].fnv1a64, fnv1a64(payload)));
    } finally {
      pub.close();
    }
  });

  it("the Python reader's own suite passes (stdlib unittest)", function () {
    if (!hasPython()) this.skip();
    const res = execFileSync("python3", ["-m", "unittest", "-q", path.join("clients", "python", "test_devplane_shm.py")], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    void res;
  });
});
