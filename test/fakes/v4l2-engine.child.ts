// Run by test/v4l2-capture.test.ts in a process started with the fake V4L2
// camera preloaded: the capture engine (lib/capture/v4l2 and the addon's
// capture thread) against it, frame content included.
import assert from "assert";
import fs from "fs";
import {
  CameraState,
  describeCamera,
  jpegStatus,
  listCameras,
  V4l2Capture,
  V4l2CaptureError,
  V4l2CaptureOptions,
  VideoFrame,
} from "../../lib/capture/v4l2";
import { addon } from "../../lib/native";
import { cleanupRings, eventually, ringName } from "../support/rings";
import {
  captureThreads,
  CHILD_TESTS,
  fakeBufferMappings,
  fakeProc,
  freshCamera,
  parseDpfk,
  patternProblem,
  setFaults,
  walkJpeg,
} from "../support/v4l2";

const T = CHILD_TESTS.engine;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Recorded {
  capture: V4l2Capture;
  frames: VideoFrame[];
  states: CameraState[];
  errors: V4l2CaptureError[];
  warnings: string[];
}

const started: Recorded[] = [];

function record(options: V4l2CaptureOptions): Recorded {
  const capture = new V4l2Capture(options);
  const r: Recorded = { capture, frames: [], states: [], errors: [], warnings: [] };
  capture.on("frame", (f) => r.frames.push(f));
  capture.on("state", (s) => r.states.push(s));
  capture.on("error", (e) => r.errors.push(e));
  capture.on("warning", (w) => r.warnings.push(w));
  capture.start();
  started.push(r);
  return r;
}

async function running(r: Recorded, what = "the camera to run"): Promise<Extract<CameraState, { state: "running" }>> {
  return eventually(() => {
    if (r.errors.length) throw r.errors[0];
    const s = r.states.find((x) => x.state === "running");
    return s && s.state === "running" ? s : undefined;
  }, what);
}

async function frames(r: Recorded, n: number, what = `${n} frames`, errorsExpected = false): Promise<VideoFrame[]> {
  await eventually(() => {
    if (r.errors.length && !errorsExpected) throw r.errors[0];
    return r.frames.length >= n;
  }, what);
  return r.frames.slice(0, n);
}

function checkFrame(f: VideoFrame, seqOffset = 0): void {
  assert.ok(f.payload, "a payload");
  const d = parseDpfk(f.payload, f.frame.format);
  assert.strictEqual(d.seq + seqOffset, f.frame.seq, "DPFK sequence = msg.frame.seq");
  assert.strictEqual(Number(d.ns / 1000n), Math.floor(f.frame.monotonicNs / 1000), "DPFK time = msg.frame.monotonicNs (µs)");
  assert.strictEqual(d.bytes, f.payload.length);
  assert.strictEqual(d.bytes, f.frame.bytes);
  assert.strictEqual(d.width, f.frame.width);
  assert.strictEqual(d.height, f.frame.height);
  if (f.frame.format !== "MJPEG") {
    const problem = patternProblem(f.payload, f.frame.format, f.frame.width, f.frame.height, f.frame.stride, d.seq);
    assert.strictEqual(problem, undefined);
  }
}

describe("v4l2 capture engine against the fake camera (child process)", () => {
  afterEach(async () => {
    for (const r of started.splice(0)) {
      r.capture.stop();
      r.capture.removeAllListeners();
    }
    setFaults("");
    cleanupRings();
    assert.strictEqual(addon().v4l2ActiveCaptures(), 0, "no capture left open");
    await eventually(() => captureThreads() === 0, "capture threads to end");
    assert.strictEqual(fakeBufferMappings(), 0, "no buffer left mapped");
  });

  it(T.list, async () => {
    const cam = freshCamera();
    const list = await listCameras();
    const capture = list.find((c) => c.path === cam.capture);
    const meta = list.find((c) => c.path === cam.meta);
    assert.ok(capture && meta, JSON.stringify(list));
    assert.strictEqual(capture.capture, true);
    assert.strictEqual(capture.meta, false);
    assert.strictEqual(capture.card, "devplane fake camera");
    assert.strictEqual(meta.capture, false);
    assert.strictEqual(meta.meta, true);
    assert.strictEqual(meta.busInfo, capture.busInfo);

    const d = await describeCamera(cam.capture);
    assert.deepStrictEqual(d.formats.map((f) => f.name), ["YUYV", "MJPEG", "NV12", "GREY"]);
    const mjpeg = d.formats[1];
    assert.strictEqual(mjpeg.compressed, true);
    assert.deepStrictEqual(mjpeg.sizes.map((s) => `${s.width}x${s.height}`), ["160x120", "320x240", "640x480", "1280x720", "1920x1080"]);
    assert.deepStrictEqual(mjpeg.sizes[4].intervals, [[1, 60], [1, 30], [1, 15]]);
    const brightness = d.controls.find((c) => c.name === "brightness");
    assert.deepStrictEqual([brightness?.min, brightness?.max, brightness?.value], [-64, 64, 0]);
    const exposure = d.controls.find((c) => c.name === "exposure_auto");
    assert.deepStrictEqual(exposure?.menu?.map((m) => m.label), ["Manual Mode", "Aperture Priority Mode"]);
    assert.ok(!d.controls.some((c) => c.type === "class"), "class headings are not controls");
  });

  it(T.meta, async () => {
    const cam = freshCamera();
    await assert.rejects(describeCamera(cam.meta), (e: Error & { code?: string }) => {
      assert.strictEqual(e.code, "ENOTCAPTURE");
      assert.match(e.message, /metadata node/);
      assert.ok(e.message.includes(cam.capture), e.message);
      return true;
    });
    // The capture thread refuses it too (all settings given: no describe first).
    const r = record({ device: cam.meta, format: "YUYV", width: 320, height: 240, fps: 30 });
    const err = await eventually(() => r.errors[0], "an error");
    assert.strictEqual(err.code, "ENOTCAPTURE");
    assert.ok(err.message.includes(cam.capture), err.message);
  });

  it(T.auto, async () => {
    const cam = freshCamera();
    let r = record({ device: cam.capture, format: "auto", width: 1280, height: 720, fps: 30 });
    let s = await running(r);
    assert.deepStrictEqual([s.format, s.width, s.height, s.fps], ["MJPEG", 1280, 720, 30]);
    assert.match(r.capture.chosen?.why ?? "", /auto/);
    r.capture.stop();

    r = record({ device: cam.capture, format: "auto", width: 1280, height: 720, fps: 60, delivery: "ring", ring: ringName("auto") });
    s = await running(r);
    assert.deepStrictEqual([s.format, s.width, s.height, s.fps], ["YUYV", 1280, 720, 60]);
    r.capture.stop();

    r = record({ device: cam.capture, width: 1000, height: 700, fps: 25 });
    s = await running(r);
    assert.deepStrictEqual([s.format, s.width, s.height, s.fps], ["MJPEG", 1280, 720, 30]);
    r.capture.stop();

    // A camera with fewer formats: auto takes what there is.
    setFaults("formats=GREY,NV12");
    r = record({ device: cam.capture, delivery: "ring", ring: ringName("auto2"), width: 320, height: 240 });
    s = await running(r);
    assert.deepStrictEqual([s.format, s.width, s.height, s.fps], ["NV12", 320, 240, 60]);
  });

  it(T.named, async () => {
    const cam = freshCamera();
    setFaults("formats=MJPG,YUYV");
    // Through "auto" negotiation (no size given) and straight to the thread (all given).
    for (const opts of [{ format: "NV12" }, { format: "NV12", width: 320, height: 240, fps: 30 }]) {
      const r = record({ device: cam.capture, ...opts });
      const err = await eventually(() => r.errors[0], "an error");
      assert.strictEqual(err.code, "EINVAL");
      assert.match(err.message, /does not offer NV12 \(it offers (YUYV, MJPEG|MJPEG, YUYV)\)/);
      r.capture.stop();
    }
  });

  it(T.every, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "YUYV", width: 640, height: 480, fps: 60 });
    const s = await running(r);
    assert.deepStrictEqual([s.memory, s.stride, s.path], ["userptr", 1280, cam.capture], "the driver fills blocks that become the Buffers");
    const got = await frames(r, 40);
    for (const f of got) {
      assert.deepStrictEqual([f.frame.format, f.frame.width, f.frame.height, f.frame.stride, f.frame.bytes], ["YUYV", 640, 480, 1280, 614400]);
      checkFrame(f);
    }
    for (let i = 1; i < got.length; i++) {
      const a = got[i - 1].frame;
      const b = got[i].frame;
      assert.ok(b.monotonicNs > a.monotonicNs);
      assert.strictEqual(b.seq - a.seq - 1, b.dropped - a.dropped, "every gap in seq is counted in dropped");
    }
    assert.strictEqual(got[0].frame.seq, 0, "the first frame is number 0");
    // Buffers the flow still holds are never written again.
    await frames(r, 100);
    for (const f of got) checkFrame(f);
  });

  it(T.mjpeg, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "MJPEG", width: 1280, height: 720, fps: 30 });
    const got = await frames(r, 5);
    for (const f of got) {
      assert.ok(f.payload);
      assert.strictEqual(f.frame.format, "MJPEG");
      assert.strictEqual(f.frame.stride, 0);
      assert.deepStrictEqual([...f.payload.subarray(0, 2)], [0xff, 0xd8]);
      assert.deepStrictEqual([...f.payload.subarray(f.payload.length - 2)], [0xff, 0xd9]);
      assert.ok(f.payload.length < 1280 * 720, "the Buffer holds the JPEG, not the whole mmap buffer");
      checkFrame(f);
    }
    const walked = walkJpeg(got[4].payload as Buffer);
    assert.deepStrictEqual([walked.ok, walked.width, walked.height], [true, 1280, 720], JSON.stringify(walked));
  });

  it(T.nv12grey, async () => {
    const cam = freshCamera();
    for (const format of ["NV12", "GREY"]) {
      const r = record({ device: cam.capture, format, width: 320, height: 240, fps: 60 });
      const got = await frames(r, 5);
      for (const f of got) {
        assert.strictEqual(f.frame.format, format);
        assert.strictEqual(f.frame.stride, 320);
        assert.strictEqual(f.frame.bytes, format === "NV12" ? 320 * 240 * 1.5 : 320 * 240);
        checkFrame(f);
      }
      r.capture.stop();
    }
  });

  it(T.clock, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "YUYV", width: 160, height: 120, fps: 30 });
    const [f] = await frames(r, 1);
    const got = r.frames[r.frames.length - 1];
    const now = Number(process.hrtime.bigint());
    const native = addon().monotonicNowNs();
    assert.ok(got.frame.monotonicNs <= now && now - got.frame.monotonicNs < 2e9, "within the last two seconds of hrtime");
    assert.ok(Math.abs(native - now) < 50e6, "hrtime and the addon read the same clock");
    assert.ok(Math.abs(f.frame.ts - Date.now()) < 5000, "ts is wall-clock ms");
    assert.ok(got.dqbufNs >= got.frame.monotonicNs);
  });

  it(T.throttle, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 60, delivery: "throttle", rate: 5 });
    await frames(r, 1);
    await sleep(2200);
    const got = r.frames.slice();
    const span = (got[got.length - 1].frame.monotonicNs - got[0].frame.monotonicNs) / 1e9;
    assert.ok(got.length >= 9 && got.length <= 13, `${got.length} frames in 2.2 s`);
    for (let i = 1; i < got.length; i++) {
      const gap = (got[i].frame.monotonicNs - got[i - 1].frame.monotonicNs) / 1e6;
      assert.ok(gap >= 199, `frames ${gap.toFixed(1)} ms apart`);
      checkFrame(got[i]);
    }
    assert.ok((got.length - 1) / span <= 5.01, `${((got.length - 1) / span).toFixed(2)} messages a second`);
    const stats = r.capture.stats();
    assert.ok(stats && stats.frames > got.length * 10, "the camera ran at full rate meanwhile");
  });

  it(T.snapshot, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 30, delivery: "snapshot" });
    // Asked before the camera runs: answered once it does.
    const early = r.capture.snapshot();
    await running(r);
    checkFrame(await early);
    await sleep(300);
    assert.strictEqual(r.frames.length, 0, "no frame without a request");
    const a = await r.capture.snapshot();
    const b = await r.capture.snapshot();
    checkFrame(a);
    checkFrame(b);
    assert.ok(b.frame.seq > a.frame.seq);
    const [c, d] = await Promise.all([r.capture.snapshot(), r.capture.snapshot()]);
    assert.strictEqual(c.frame.seq, d.frame.seq, "requests waiting together share the next frame");
    const stats = r.capture.stats();
    assert.ok(stats && stats.delivered === 4 && stats.frames > 10, JSON.stringify(stats));
  });

  async function readRing(name: string, count: number): Promise<Array<{ data: Buffer; meta: { frame: VideoFrame["frame"] }; seq: number; missed: number }>> {
    const reader = new (addon().RingReader)(name);
    const out: Array<{ data: Buffer; meta: { frame: VideoFrame["frame"] }; seq: number; missed: number }> = [];
    try {
      await eventually(() => {
        for (let f = reader.tryRead(); f; f = reader.tryRead()) out.push({ data: f.data, meta: JSON.parse(f.meta), seq: f.seq, missed: f.missed });
        return out.length >= count;
      }, `${count} frames from ring ${name}`);
      assert.strictEqual(reader.info().contentType, "video/x-raw,format=YUY2,width=640,height=480,stride=1280");
    } finally {
      reader.close();
    }
    return out;
  }

  function checkRingFrames(got: Awaited<ReturnType<typeof readRing>>): void {
    for (let i = 0; i < got.length; i++) {
      const g = got[i];
      const d = parseDpfk(g.data, "YUYV");
      assert.strictEqual(d.seq, g.meta.frame.seq, "DPFK sequence = metadata seq");
      assert.strictEqual(g.data.length, 614400);
      assert.strictEqual(patternProblem(g.data, "YUYV", 640, 480, 1280, d.seq), undefined);
      if (i > 0) assert.strictEqual(g.seq, got[i - 1].seq + 1, "the reader missed no frame");
    }
  }

  for (const zeroCopy of [true, false]) {
    it(zeroCopy ? T.ringZeroCopy : T.ringCopy, async () => {
      const cam = freshCamera();
      const name = ringName(zeroCopy ? "zc" : "copy");
      const r = record({ device: cam.capture, format: "YUYV", width: 640, height: 480, fps: 60, delivery: "ring", ring: name, ringSlots: 8, rate: 0, zeroCopy });
      const s = await running(r);
      assert.strictEqual(s.memory, zeroCopy ? "ring" : "mmap");
      assert.strictEqual(r.capture.stats()?.memory, zeroCopy ? "ring" : "mmap");
      const got = await readRing(name, 40);
      checkRingFrames(got);
      // Metadata only reaches JavaScript.
      await eventually(() => r.frames.length > 10, "metadata messages");
      assert.strictEqual(r.frames[0].payload, undefined);
      assert.deepStrictEqual(Object.keys(r.frames[0].frame).sort(), ["bytes", "dropped", "format", "height", "monotonicNs", "seq", "stride", "ts", "width"]);
      assert.deepStrictEqual(r.warnings, []);
    });
  }

  it(T.ringLagging, async () => {
    const cam = freshCamera();
    const name = ringName("lag");
    // Eight slots, four of them queued with the driver (marked as being written ahead).
    const r = record({ device: cam.capture, format: "YUYV", width: 640, height: 480, fps: 60, delivery: "ring", ring: name, ringSlots: 8, rate: 0, zeroCopy: true, metadata: false });
    assert.strictEqual((await running(r)).memory, "ring");
    await eventually(() => (r.capture.stats()?.frames ?? 0) > 20, "the ring to come round");
    for (const fromOldest of [true, false]) {
      const reader = new (addon().RingReader)(name, { fromOldest });
      const got: Array<{ seq: number; missed: number; data: Buffer }> = [];
      try {
        while (got.length < 6) {
          // Slower than the camera: by the next read the driver holds the slots after ours.
          await sleep(150);
          const f = reader.tryRead();
          if (f) got.push({ seq: f.seq, missed: f.missed, data: f.data });
        }
      } finally {
        reader.close();
      }
      for (const g of got) {
        assert.strictEqual(patternProblem(g.data, "YUYV", 640, 480, 1280, parseDpfk(g.data, "YUYV").seq), undefined);
      }
      for (let i = 1; i < got.length; i++) {
        assert.ok(got[i].seq > got[i - 1].seq, "frames in order");
        assert.strictEqual(got[i].missed, got[i].seq - got[i - 1].seq - 1, "missed counts the skipped frames");
      }
      assert.ok(got.slice(1).some((g) => g.missed > 0), `a lagging reader (fromOldest ${fromOldest}) was overrun`);
    }
    assert.deepStrictEqual(r.errors, []);
  });

  it(T.shared, async () => {
    const cam = freshCamera();
    const base = { device: cam.capture, format: "YUYV", width: 640, height: 480, fps: 30 };
    const name = ringName("shared");
    const every = record({ ...base });
    const throttle = record({ ...base, delivery: "throttle", rate: 2 });
    const snap = record({ ...base, delivery: "snapshot" });
    const ring = record({ ...base, delivery: "ring", ring: name, metadata: false });
    await Promise.all([every, throttle, snap, ring].map((r) => running(r)));
    assert.strictEqual(addon().v4l2ActiveCaptures(), 1, "one open device");
    await eventually(() => ring.capture.stats()?.memory === "ring", "the ring to get the driver's buffers");
    const ringFrames = await readRing(name, 10);
    checkRingFrames(ringFrames);
    const mark = every.frames.length;
    await eventually(() => every.frames.length > mark + 10, "frames to the every consumer meanwhile");
    for (const f of every.frames.slice(mark)) checkFrame(f);
    checkFrame(await snap.capture.snapshot());
    await eventually(() => throttle.frames.length >= 2, "throttled frames");
    assert.ok(throttle.frames.length < every.frames.length / 5);
    assert.strictEqual(ring.frames.length, 0, "no metadata when it is switched off");
    // The ring leaves: the driver fills blocks the every consumer keeps, and the others go on.
    ring.capture.stop();
    const after = every.frames.length;
    await eventually(() => every.frames.length > after + 10, "frames after the ring left");
    // The camera numbers frames from 0 again after the restart; msg.frame.seq goes on.
    const restarted = every.frames.slice(after).filter((f) => parseDpfk(f.payload as Buffer, "YUYV").seq < f.frame.seq);
    assert.ok(restarted.length > 5, "frames from the restarted stream");
    const offset = restarted[0].frame.seq - parseDpfk(restarted[0].payload as Buffer, "YUYV").seq;
    for (const f of restarted) checkFrame(f, offset);
    assert.strictEqual(every.capture.stats()?.memory, "userptr");
    assert.deepStrictEqual([every.errors, snap.errors, throttle.errors, ring.errors], [[], [], [], []]);
  });

  it(T.otherSettings, async () => {
    const cam = freshCamera();
    const a = record({ device: cam.capture, format: "YUYV", width: 640, height: 480, fps: 30 });
    await frames(a, 2);
    const b = record({ device: cam.capture, format: "MJPEG", width: 1280, height: 720, fps: 30 });
    const err = await eventually(() => b.errors[0], "an error for the second capture");
    assert.strictEqual(err.code, "EBUSY");
    assert.match(err.message, /already streams YUYV 640x480 at 30 fps for another v4l2-capture node/);
    const n = a.frames.length;
    await eventually(() => a.frames.length > n + 5, "the first capture to go on");
  });

  it(T.controls, async () => {
    const cam = freshCamera();
    setFaults("reappear_after_ms=200");
    const r = record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 60, controls: { brightness: 10 } });
    await running(r);
    const value = async (name: string) => (await r.capture.listControls()).find((c) => c.name === name)?.value;
    assert.strictEqual(await value("brightness"), 10, "set from the settings at start");
    let res = await r.capture.setControls({ contrast: 40, power_line_frequency: "60 Hz" });
    assert.strictEqual(res.applied, true);
    assert.deepStrictEqual(res.results.map((x) => [x.name, x.ok, x.value]), [["contrast", true, 40], ["power_line_frequency", true, 2]]);
    res = await r.capture.setControls({ exposure_absolute: 300 });
    assert.strictEqual(res.results[0].code, "EINACTIVE");
    assert.match(res.results[0].message ?? "", /exposure_auto/);
    res = await r.capture.setControls({ exposure_auto: "Manual Mode", exposure_absolute: 300, brightness: 1000 });
    assert.deepStrictEqual(res.results.map((x) => [x.name, x.ok, x.value]), [["exposure_auto", true, 1], ["exposure_absolute", true, 300], ["brightness", true, 64]]);
    res = await r.capture.setControls({ sharpnes: 1 });
    assert.strictEqual(res.results[0].code, "ENOCONTROL");
    assert.match(res.results[0].message ?? "", /no control "sharpnes" \(it has .*sharpness/);
    // The camera comes back with its defaults; the capture sets them again.
    setFaults("unplug=1\nreappear_after_ms=200");
    await eventually(() => r.states.some((s) => s.state === "running" && s.resumed), "the camera to come back");
    assert.deepStrictEqual(
      [await value("brightness"), await value("contrast"), await value("exposure_auto"), await value("exposure_absolute")],
      [64, 40, 1, 300],
    );
  });

  it(T.drops, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "YUYV", width: 640, height: 480, fps: 60, queue: 4 });
    await frames(r, 10);
    // The event loop is busy for half a second: about 30 frames come meanwhile.
    const until = Date.now() + 500;
    while (Date.now() < until) {
      /* busy */
    }
    const mark = r.frames.length;
    await eventually(() => r.frames.length > mark + 10, "frames after the stall");
    const got = r.frames;
    let droppedSeen = 0;
    for (let i = 1; i < got.length; i++) {
      const a = got[i - 1].frame;
      const b = got[i].frame;
      assert.strictEqual(b.seq - a.seq - 1, b.dropped - a.dropped, `gap between ${a.seq} and ${b.seq} is counted`);
      droppedSeen = b.dropped;
    }
    assert.ok(droppedSeen >= 20, `${droppedSeen} frames dropped`);
    const stats = r.capture.stats();
    assert.strictEqual(stats?.lost, 0, "the camera lost none: the capture thread never waits for JavaScript");
    assert.ok(stats && stats.dropped === droppedSeen, JSON.stringify(stats));
    for (const f of got.slice(mark)) checkFrame(f);
  });

  it(T.jpeg, async () => {
    const cam = freshCamera();
    const status = jpegStatus();
    const r = record({ device: cam.capture, format: "YUYV", width: 640, height: 480, fps: 30, jpeg: true, quality: 80 });
    if (!status.available) {
      // Without libturbojpeg the node says what to install.
      const err = await eventually(() => r.errors[0], "an error");
      assert.strictEqual(err.code, "EJPEG");
      assert.match(err.message, /apt install libturbojpeg0/);
      return;
    }
    const got = await frames(r, 3);
    for (const f of got) {
      assert.strictEqual(f.frame.format, "JPEG");
      assert.ok(f.payload && f.payload.length === f.frame.bytes && f.frame.bytes < 100000);
      assert.ok((f.encodeNs ?? 0) > 0);
      const walked = walkJpeg(f.payload);
      assert.deepStrictEqual([walked.ok, walked.width, walked.height], [true, 640, 480], JSON.stringify(walked));
    }
    r.capture.stop();
    const g = record({ device: cam.capture, format: "NV12", width: 320, height: 240, fps: 30, jpeg: true });
    const [n] = await frames(g, 1);
    assert.deepStrictEqual([walkJpeg(n.payload as Buffer).ok, n.frame.format], [true, "JPEG"]);
  });

  it(T.unplug, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 60 });
    await frames(r, 10);
    const mapped = fakeBufferMappings();
    setFaults("unplug=1\nreappear_after_ms=300");
    const gone = await eventually(() => r.states.find((s) => s.state === "disconnected"), "disconnected");
    const t0 = Date.now();
    assert.match(gone.state === "disconnected" ? gone.message : "", /disconnected \(unplugged\); waiting for it to come back/);
    const back = await eventually(() => r.states.find((s) => s.state === "running" && s.resumed), "resumed");
    const took = Date.now() - t0;
    assert.ok(took < 300 + 1000, `resumed ${took} ms after the unplug (back after 300)`);
    assert.strictEqual(back.state === "running" && back.path, cam.capture2, "found under its new path by bus_info");
    const mark = r.frames.length;
    await eventually(() => r.frames.length > mark + 5, "frames after the return");
    const seqs = r.frames.map((f) => f.frame.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], "seq only goes up across the replug");
    assert.deepStrictEqual(r.errors, []);
    assert.strictEqual(fakeBufferMappings(), mapped, "the old buffers were unmapped, the new ones mapped");
  });

  it(T.eio, async () => {
    for (const zeroCopy of [false, true]) {
      const cam = freshCamera();
      const name = ringName("eio");
      const r = zeroCopy
        ? record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 60, delivery: "ring", ring: name, rate: 0 })
        : record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 60 });
      await frames(r, 10);
      const at = r.frames[r.frames.length - 1].frame.seq + 10;
      setFaults(`eio_at=${at}`);
      await eventually(() => r.frames.some((f) => f.frame.seq > at + 20), "frames well past the failed one");
      const seqs = r.frames.map((f) => f.frame.seq);
      const after = r.frames.find((f) => f.frame.seq > at);
      assert.ok(after && after.frame.dropped >= 1, "the failed frame counts as lost");
      assert.ok(!seqs.includes(at) || zeroCopy, `frame ${at} is missing`);
      assert.ok((r.capture.stats()?.errors ?? 0) >= 1);
      if (zeroCopy) {
        assert.strictEqual(r.capture.stats()?.memory, "ring", "still zero copy after the restart");
        assert.ok((r.capture.stats()?.restarts ?? 0) >= 1);
      }
      assert.deepStrictEqual(r.errors, []);
      r.capture.stop();
      setFaults("");
    }
  });

  it(T.errorFlag, async () => {
    const cam = freshCamera();
    const r = record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 60 });
    await frames(r, 5);
    const at = r.frames[r.frames.length - 1].frame.seq + 10;
    setFaults(`error_at=${at}`);
    await eventually(() => r.frames.some((f) => f.frame.seq > at + 5), "frames past the broken one");
    assert.ok(!r.frames.some((f) => f.frame.seq === at), "the broken frame is not delivered");
    const next = r.frames.find((f) => f.frame.seq > at);
    const prev = [...r.frames].reverse().find((f) => f.frame.seq < at);
    assert.ok(next && prev && next.frame.dropped - prev.frame.dropped === next.frame.seq - prev.frame.seq - 1);
    assert.ok((r.capture.stats()?.errors ?? 0) >= 1);
  });

  it(T.busy, async () => {
    const cam = freshCamera();
    const proc = fakeProc([
      { pid: 4242, comm: "motion", fds: [cam.capture] },
      { pid: 4343, comm: "bash", fds: ["/dev/null"] },
    ]);
    try {
      setFaults("busy=1");
      // Through describe (auto) and through the capture thread (all settings given).
      for (const opts of [{}, { format: "YUYV", width: 320, height: 240, fps: 30 }]) {
        const r = record({ device: cam.capture, procRoot: proc, ...opts });
        const err = await eventually(() => r.errors[0], "an error");
        assert.strictEqual(err.code, "EBUSY");
        assert.match(err.message, /is busy.*held by motion \(pid 4242\)/);
        assert.ok(!err.message.includes("bash"));
        r.capture.stop();
      }
      const r = record({ device: cam.capture, procRoot: proc, format: "YUYV", width: 320, height: 240, fps: 30 });
      await eventually(() => r.errors[0], "an error");
      setFaults("");
      await frames(r, 1, "frames once the other program let go", true);
    } finally {
      fs.rmSync(proc, { recursive: true, force: true });
    }
  });

  it(T.permission, async () => {
    const cam = freshCamera();
    setFaults("eacces=1");
    const r = record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 30 });
    const err = await eventually(() => r.errors[0], "an error");
    assert.strictEqual(err.code, "EACCES");
    assert.match(err.message, /add the user running Node-RED to the video group \(sudo usermod -aG video \$USER\)/);
    await assert.rejects(describeCamera(cam.capture), (e: Error & { code?: string }) => e.code === "EACCES" && /video group/.test(e.message));
  });

  it(T.missing, async () => {
    const cam = freshCamera();
    const configured = process.env.DEVPLANE_FAKE_V4L2;
    process.env.DEVPLANE_FAKE_V4L2 = "";
    // One through the JavaScript side (auto needs the camera's formats), one
    // through the thread; auto comes to the same settings, so they share.
    const a = record({ device: cam.capture, width: 320, height: 240, fps: 30, delivery: "ring", ring: ringName("missing") });
    const b = record({ device: cam.capture, format: "YUYV", width: 320, height: 240, fps: 30 });
    for (const r of [a, b]) {
      const w = await eventually(() => r.states.find((s) => s.state === "waiting"), "waiting");
      assert.strictEqual(w.state === "waiting" && w.code, "ENODEV");
      assert.match(w.state === "waiting" ? w.message : "", /not connected.*waiting for it/);
    }
    await sleep(300);
    assert.deepStrictEqual([a.frames.length, b.frames.length, a.errors.length, b.errors.length], [0, 0, 0, 0]);
    process.env.DEVPLANE_FAKE_V4L2 = configured;
    const t0 = Date.now();
    await Promise.all([frames(a, 1), frames(b, 1)]);
    assert.ok(Date.now() - t0 < 1500, `started ${Date.now() - t0} ms after the camera appeared`);
  });
});
