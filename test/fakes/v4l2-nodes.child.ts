// Run by test/v4l2-capture.test.ts in a process started with the fake V4L2
// camera preloaded: the v4l2-capture node in a Node-RED runtime
// (node-red-node-test-helper), with the fake behind it.
import assert from "assert";
import { execFile } from "child_process";
import fs from "fs";
import path from "path";
import type { NodeMessage } from "node-red";
import type { FrameInfo } from "../../lib/capture/v4l2";
import { addon } from "../../lib/native";
import { collect, statuses } from "../support/flow";
import { withoutDashboard, withoutMqtt } from "../support/flows";
import { helper, policyNodes, v4l2Nodes as nodes } from "../support/red";
import { cleanupRings, eventually, openFds, ringName, ROOT, shmEntries, threadCount } from "../support/rings";
import { captureThreads, CHILD_TESTS, fakeBufferMappings, freshCamera, parseDpfk, patternProblem, setFaults } from "../support/v4l2";

const T = CHILD_TESTS.nodes;
type FlowNode = Record<string, unknown> & { id: string; type: string };
// Node-RED's core nodes are untyped CommonJS files, loaded by path.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = (file: string) => require(path.join(path.dirname(require.resolve("@node-red/nodes/package.json")), "core", file));
const coreNodes = ["common/20-inject.js", "common/21-debug.js", "common/90-comment.js", "function/10-switch.js", "function/10-function.js", "function/15-change.js", "storage/10-file.js"].map(core);

// The broker's part of the examples runs in test/examples.runtime.test.ts.
function example(name: string): FlowNode[] {
  return withoutMqtt(withoutDashboard(JSON.parse(fs.readFileSync(path.join(ROOT, "examples", name), "utf8")) as FlowNode[]));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Msg = NodeMessage & { frame?: FrameInfo; device?: Record<string, unknown>; error?: { message: string }; custom?: number };

const framesOf = (msgs: Msg[]) => msgs.filter((m) => m.topic === "frame");

function checkFrameMessage(m: Msg): void {
  const payload = m.payload as Buffer;
  assert.ok(Buffer.isBuffer(payload) && m.frame);
  const d = parseDpfk(payload, m.frame.format);
  assert.strictEqual(d.seq, m.frame.seq);
  assert.strictEqual(payload.length, m.frame.bytes);
  if (m.frame.format !== "MJPEG") {
    assert.strictEqual(patternProblem(payload, m.frame.format, m.frame.width, m.frame.height, m.frame.stride, d.seq), undefined);
  }
}

const camNode = (device: string, extra: Record<string, unknown>) => ({
  id: "cam",
  type: "v4l2-capture",
  device,
  format: "YUYV",
  width: 320,
  height: 240,
  fps: 30,
  buffers: 4,
  delivery: "every",
  rate: 5,
  ring: "",
  autostart: true,
  wires: [["out"]],
  ...extra,
});

describe("v4l2-capture node against the fake camera (child process)", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    setFaults("");
    cleanupRings();
    assert.strictEqual(addon().v4l2ActiveCaptures(), 0);
  });

  it(T.every, async () => {
    const cam = freshCamera();
    await helper.load(nodes, [camNode(cam.capture, {}), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => framesOf(out).length >= 10, "frame messages");
    const connected = out.find((m) => m.topic === "device");
    assert.strictEqual(connected?.payload, "connected");
    assert.deepStrictEqual(
      [connected?.device?.path, connected?.device?.format, connected?.device?.width, connected?.device?.fps, connected?.device?.memory],
      [cam.capture, "YUYV", 320, 30, "userptr"],
    );
    for (const m of framesOf(out)) {
      checkFrameMessage(m);
      assert.deepStrictEqual(Object.keys(m.frame ?? {}).sort(), ["bytes", "dropped", "format", "height", "monotonicNs", "seq", "stride", "ts", "width"]);
    }
  });

  it(T.throttle, async () => {
    const cam = freshCamera();
    await helper.load(nodes, [camNode(cam.capture, { fps: 60, delivery: "throttle", rate: 4 }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => framesOf(out).length >= 1, "a first frame");
    await sleep(1600);
    const got = framesOf(out);
    assert.ok(got.length >= 6 && got.length <= 8, `${got.length} messages in 1.6 s at 4 a second`);
    got.forEach(checkFrameMessage);
  });

  it(T.snapshot, async () => {
    const cam = freshCamera();
    await helper.load(nodes, [camNode(cam.capture, { delivery: "snapshot" }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.payload === "connected"), "the camera to run");
    await sleep(200);
    assert.strictEqual(framesOf(out).length, 0);
    const cam1 = helper.getNode("cam");
    for (let i = 0; i < 3; i++) {
      cam1.receive({ payload: "take one", topic: "snap", custom: i });
      await eventually(() => out.filter((m) => m.topic === "snap").length === i + 1, `snapshot ${i}`);
    }
    const snaps = out.filter((m) => m.topic === "snap");
    assert.deepStrictEqual(snaps.map((m) => m.custom), [0, 1, 2], "the input message travels on");
    snaps.forEach(checkFrameMessage);
    assert.ok((snaps[1].frame?.seq ?? 0) > (snaps[0].frame?.seq ?? 0));
    assert.strictEqual(framesOf(out).length, 0, "nothing but the answers");
  });

  it(T.ring, async () => {
    const cam = freshCamera();
    const ring = ringName("node");
    await helper.load(nodes, [camNode(cam.capture, { fps: 60, delivery: "ring", ring, rate: 0 }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => framesOf(out).length >= 3, "metadata messages");
    const meta = framesOf(out)[0];
    assert.deepStrictEqual(meta.payload, meta.frame);
    assert.deepStrictEqual((meta as Msg & { shm?: unknown }).shm, { name: ring });
    const connected = out.find((m) => m.payload === "connected");
    assert.strictEqual(connected?.device?.memory, "ring");
    // A Python program reads the ring with the stdlib-only client.
    const script = [
      "import json, struct, sys",
      `sys.path.insert(0, ${JSON.stringify(path.join(ROOT, "clients", "python"))})`,
      "import devplane_shm",
      "r = devplane_shm.Reader(sys.argv[1])",
      "out = []",
      "while len(out) < 20:",
      "    f = r.read(timeout=5)",
      "    if f is None: break",
      "    d = bytes(f.data)",
      "    out.append({'seq': f.seq, 'missed': f.missed, 'magic': d[0:4].decode('latin1'), 'camSeq': struct.unpack_from('<I', d, 4)[0],",
      "                'metaSeq': f.meta['frame']['seq'], 'len': len(d), 'ct': f.content_type, 'y': d[320 * 2 * 5 + 2 * 7]})",
      "print(json.dumps(out))",
    ].join("\n");
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile("python3", ["-c", script, ring], { timeout: 30000 }, (err, so, se) => (err ? reject(new Error(`${err.message}\n${se}`)) : resolve(so))),
    );
    const frames = JSON.parse(stdout) as Array<{ seq: number; missed: number; magic: string; camSeq: number; metaSeq: number; len: number; ct: string; y: number }>;
    assert.strictEqual(frames.length, 20);
    for (const f of frames) {
      assert.deepStrictEqual([f.magic, f.len, f.ct], ["DPFK", 320 * 240 * 2, "video/x-raw,format=YUY2,width=320,height=240,stride=640"]);
      assert.strictEqual(f.camSeq, f.metaSeq);
      assert.strictEqual(f.y, (7 + 5 + f.camSeq) & 0xff, "the pixel the camera drew");
    }
    // A reader that falls behind (a loaded machine) is told exactly what it missed.
    for (let i = 1; i < frames.length; i++) assert.strictEqual(frames[i].seq - frames[i - 1].seq - 1, frames[i].missed);
  });

  it(T.controls, async () => {
    const cam = freshCamera();
    await helper.load(nodes, [
      camNode(cam.capture, { controls: JSON.stringify({ brightness: -5 }) }),
      { id: "out", type: "helper" },
      { id: "c", type: "catch", scope: ["cam"], uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    const caught = collect<Msg>(helper.getNode("caught"));
    const cam1 = helper.getNode("cam");
    await eventually(() => out.some((m) => m.payload === "connected"), "the camera to run");
    cam1.receive({ payload: "controls" });
    const listed = await eventually(() => out.find((m) => m.topic === "controls"), "the control list");
    const list = listed.payload as Array<{ name: string; value?: number }>;
    assert.strictEqual(list.find((c) => c.name === "brightness")?.value, -5, "set from the node's settings");
    cam1.receive({ controls: { brightness: 20, white_balance_temperature_auto: false } });
    const set = await eventually(() => out.filter((m) => m.topic === "controls")[1], "the result");
    assert.deepStrictEqual(
      (set.payload as Array<{ name: string; ok: boolean; value: number }>).map((r) => [r.name, r.ok, r.value]),
      [["brightness", true, 20], ["white_balance_temperature_auto", true, 0]],
    );
    cam1.receive({ controls: { exposure_absolute: 100 } });
    const err = await eventually(() => caught[0], "a caught error");
    assert.match(err.error?.message ?? "", /exposure_absolute cannot be set while its automatic mode is on: set exposure_auto/);
  });

  it(T.unplug, async () => {
    const cam = freshCamera();
    await helper.load(nodes, [camNode(cam.capture, { fps: 60 }), { id: "out", type: "helper" }]);
    const seen = statuses(helper.getNode("cam"));
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => framesOf(out).length >= 5, "frames");
    setFaults("unplug=1\nreappear_after_ms=300");
    const gone = await eventually(() => out.find((m) => m.payload === "disconnected"), "a disconnected message");
    assert.strictEqual(gone.topic, "device");
    assert.match(String(gone.device?.message), /disconnected/);
    assert.ok(seen.some((s) => s.fill === "red" && s.text === "disconnected"), JSON.stringify(seen));
    const back = await eventually(() => out.filter((m) => m.payload === "connected")[1], "a second connected message");
    assert.deepStrictEqual([back.device?.resumed, back.device?.path], [true, cam.capture2]);
    const mark = framesOf(out).length;
    await eventually(() => framesOf(out).length > mark + 5, "frames after the return");
    assert.strictEqual(seen[seen.length - 1].fill, "green");
  });

  it(T.admin, async () => {
    const cam = freshCamera();
    await helper.load(nodes, []);
    const list = await helper.request().get("/devplane/v4l2/cameras");
    assert.strictEqual(list.status, 200);
    const cameras = list.body.cameras as Array<{ path: string; capture?: boolean; meta?: boolean }>;
    assert.ok(cameras.some((c) => c.path === cam.capture && c.capture), JSON.stringify(list.body));
    assert.ok(cameras.some((c) => c.path === cam.meta && c.meta));
    assert.strictEqual(typeof (list.body.jpeg as { available?: boolean }).available, "boolean");
    const d = await helper.request().get(`/devplane/v4l2/describe?device=${encodeURIComponent(cam.capture)}`);
    assert.strictEqual(d.status, 200);
    assert.deepStrictEqual((d.body.formats as Array<{ name: string }>).map((f) => f.name), ["YUYV", "MJPEG", "NV12", "GREY"]);
    const meta = await helper.request().get(`/devplane/v4l2/describe?device=${encodeURIComponent(cam.meta)}`);
    assert.strictEqual(meta.status, 500);
    assert.strictEqual(meta.body.code, "ENOTCAPTURE");
    const missing = await helper.request().get(`/devplane/v4l2/describe?device=${encodeURIComponent(`${cam.capture}-nope`)}`);
    assert.strictEqual(missing.status, 404);
  });

  it(T.config, async () => {
    await helper.load(nodes, [
      camNode("/dev/video0", { delivery: "ring", ring: "" }),
      { id: "out", type: "helper" },
      { id: "c", type: "catch", scope: ["cam"], uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const caught = collect<Msg>(helper.getNode("caught"));
    helper.getNode("cam").receive({ payload: "start" });
    const err = await eventually(() => caught[0], "a caught error");
    assert.match(err.error?.message ?? "", /ring delivery needs a ring name/);
  });

  it(T.policy, async () => {
    const cam = freshCamera();
    const flow = (rules: string) => [
      { id: "pol", type: "devplane-policy", rules, rulesFile: "", defaultTarget: "block" },
      camNode(cam.capture, { policy: "pol" }),
      { id: "out", type: "helper" },
    ];
    await helper.load([...nodes, ...policyNodes], flow(`block devnode "${cam.capture}"`));
    const seen = statuses(helper.getNode("cam"));
    // The refusal on deploy may come before the hook above; a start message asks again.
    helper.getNode("cam").receive({ payload: "start" });
    await eventually(() => seen.some((s) => s.text === "denied by policy"), "the refusal");
    assert.strictEqual(addon().v4l2ActiveCaptures(), 0, "the camera was opened");
    assert.strictEqual(captureThreads(), 0);
    await helper.unload();
    await helper.load([...nodes, ...policyNodes], flow(`allow subsystem "video4linux" devnode "${cam.capture}"`));
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => framesOf(out).length > 0, "frames once allowed");
  });

  it(T.redeploy, async () => {
    const cam = freshCamera();
    const flow = (cycle: number) => [
      camNode(cam.capture, { fps: 60, wires: [["out"]] }),
      { ...camNode(cam.capture, { fps: 60, delivery: "ring", ring: `dp-test-${process.pid}-redeploy`, rate: 0 }), id: "cam-ring", wires: [[]] },
      { ...camNode(cam.capture, { fps: 60, delivery: "throttle", rate: 10 + (cycle % 3) }), id: "cam-throttle", wires: [[]] },
      { id: "out", type: "helper" },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ];
    let baseline: { fds: number; threads: number } | undefined;
    for (let cycle = 0; cycle < 100; cycle++) {
      await helper.load(nodes, flow(cycle));
      const out = collect<Msg>(helper.getNode("out"));
      const caught = collect<Msg>(helper.getNode("caught"));
      await eventually(() => framesOf(out).length >= 2, `frames in cycle ${cycle}`);
      assert.deepStrictEqual(caught.map((m) => m.error?.message), [], `errors in cycle ${cycle} (a busy camera?)`);
      assert.strictEqual(addon().v4l2ActiveCaptures(), 1, "the three nodes share one open device");
      await helper.unload();
      assert.strictEqual(addon().v4l2ActiveCaptures(), 0);
      // A joined thread's task lingers in /proc for a moment while the kernel ends it.
      await eventually(() => captureThreads() === 0, `capture threads to end after cycle ${cycle}`, 2000);
      assert.strictEqual(fakeBufferMappings(), 0, `buffers left mapped after cycle ${cycle}`);
      assert.deepStrictEqual(shmEntries(), [], `rings left after cycle ${cycle}`);
      // The first cycles warm up lazily created runtime threads and handles.
      if (cycle === 9) baseline = { fds: openFds(), threads: threadCount() };
    }
    assert.ok(baseline);
    assert.ok(openFds() <= baseline.fds, `fds grew from ${baseline.fds} to ${openFds()}`);
    assert.ok(threadCount() <= baseline.threads, `threads grew from ${baseline.threads} to ${threadCount()}`);
  });

  it(T.examples, async () => {
    const cam = freshCamera();
    const preview = example("camera-preview.json");
    const byName = (name: string) => preview.find((n) => n.name === name) as FlowNode;
    for (const n of preview) if (n.type === "v4l2-capture") n.device = cam.capture;
    // Test nodes stand in for the file (disk) and show what the preview and the sidebar would.
    for (const n of [byName("preview"), byName("save"), byName("device and controls")]) {
      n.type = "helper";
      n.wires = [];
    }
    await helper.load([...nodes, ...coreNodes] as never, preview);
    const shown = collect<Msg>(helper.getNode(byName("preview").id));
    const saved = collect<Msg>(helper.getNode(byName("save").id));
    const said = collect<Msg>(helper.getNode(byName("device and controls").id));
    await eventually(() => shown.length >= 3, "frames in the preview");
    for (const m of shown) {
      assert.strictEqual(m.frame?.format, "MJPEG", "auto sends JPEG to a preview");
      assert.match(String(m.payload), /^data:image\/jpeg;base64,\/9j\//, "a JPEG, as a data URL for the dashboard");
    }
    assert.strictEqual(addon().v4l2ActiveCaptures(), 1, "preview and snapshot share the camera");
    helper.getNode(byName("take a snapshot").id).receive({});
    const snap = await eventually(() => saved[0], "a saved snapshot");
    assert.deepStrictEqual([snap.topic, snap.frame?.format], ["snapshot", "MJPEG"]);
    helper.getNode(byName("brighter").id).receive({});
    const set = await eventually(() => said.find((m) => m.topic === "controls"), "the control result");
    assert.deepStrictEqual((set.payload as Array<{ name: string; value: number }>).map((r) => [r.name, r.value]), [["brightness", 30]]);
    await helper.unload();

    const toPython = example("camera-to-python.json");
    const ring = ringName("example");
    for (const n of toPython) {
      if (n.type === "v4l2-capture") Object.assign(n, { device: cam.capture, ring, rate: 5 });
      if (n.type === "debug") Object.assign(n, { type: "helper", wires: [] });
    }
    await helper.load([...nodes, ...coreNodes] as never, toPython);
    const meta = collect<Msg>(helper.getNode(toPython.find((n) => n.type === "helper")?.id as string));
    await eventually(() => framesOf(meta).length >= 1, "metadata");
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile("python3", [path.join(ROOT, "clients", "python", "devplane_shm.py"), "read", ring, "--count", "5", "--timeout", "5"], { timeout: 30000 }, (err, so, se) =>
        err ? reject(new Error(`${err.message}\n${se}`)) : resolve(so),
      ),
    );
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as { length: number; content_type: string; meta: { frame: FrameInfo } });
    assert.strictEqual(lines.length, 5);
    for (const l of lines) {
      assert.deepStrictEqual([l.length, l.content_type, l.meta.frame.format], [640 * 480 * 2, "video/x-raw,format=YUY2,width=640,height=480,stride=1280", "YUYV"]);
    }
  });
});
