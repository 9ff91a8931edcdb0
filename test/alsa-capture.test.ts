// The capture engine against alsa-lib's file plugin: the production dlopen
// path, PCM setup and read loop, reading known waves (test/fakes/asound.conf).
import assert from "assert";
import path from "path";
import { Worker } from "worker_threads";
import { AlsaCapture, AudioChunk, listDevices } from "../lib/capture";
import { addon } from "../lib/native";
import { counterFrames, WAVES } from "./fakes/alsa-wave";
import { captureThreads, chunksFrom, FIXTURES, near, openCount, record, Recorded } from "./support/alsa";
import { cleanupRings, eventually, ringName } from "./support/rings";

const COUNTER_FILE = path.join(FIXTURES, WAVES.counter.file);
const COUNTER_CHUNKS_10MS = WAVES.counter.seconds * 100;

const running: AlsaCapture[] = [];
function capture(options: Parameters<typeof record>[0]): Recorded {
  const r = record(options);
  running.push(r.capture);
  return r;
}

/** Every chunk within the wave matches it, sample for sample, wherever its seq says it is. */
function assertCounterChunks(chunks: AudioChunk[], frames: number): void {
  const inFile = chunks.filter((c) => c.audio.seq * frames <= WAVES.counter.seconds * 48000);
  assert.ok(inFile.length > 0, "chunks from within the wave");
  for (const c of inFile) {
    assert.strictEqual(c.audio.frames, frames);
    assert.strictEqual(c.payload?.length, frames * 4, `chunk ${c.audio.seq} size`);
    assert.ok(c.payload?.equals(counterFrames((c.audio.seq - 1) * frames, frames)), `chunk ${c.audio.seq} samples`);
  }
}

describe("alsa capture engine", () => {
  afterEach(async () => {
    for (const c of running.splice(0)) c.stop();
    cleanupRings();
    await eventually(() => captureThreads() === 0, "capture threads to end");
  });

  it("delivers the device's samples exactly, in chunks of the chunk length", async () => {
    const r = capture({ device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10 });
    const chunks = await chunksFrom(r, 500);
    assert.deepStrictEqual(
      chunks.slice(0, 3).map((c) => c.audio.seq),
      [1, 2, 3],
    );
    for (let i = 1; i < chunks.length; i++) assert.ok(chunks[i].audio.seq > chunks[i - 1].audio.seq, "seq grows");
    assertCounterChunks(chunks, 480);
    const a = chunks[0].audio;
    assert.deepStrictEqual(
      { rate: a.rate, channels: a.channels, format: a.format, frames: a.frames, overruns: a.overruns },
      { rate: 48000, channels: 2, format: "S16_LE", frames: 480, overruns: 0 },
    );
    assert.deepStrictEqual(r.states[0], { state: "running", periodFrames: 480, bufferFrames: 24000, resumed: false });
    assert.deepStrictEqual(r.errors, []);
  });

  it("keeps the samples exact when a listener transfers a payload's memory away", async () => {
    // 1 ms chunks: many deliveries share a block, and the wave lasts 30000 chunks.
    // The file plugin is not paced: had the capture to drop chunks while the
    // test's process is busy elsewhere (half the device's buffer is all it
    // waits), it would run on past the end of the wave, where no sample can be
    // checked. An 8 s buffer makes it wait for JavaScript instead.
    const r = capture({ device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 1, bufferFrames: 8 * 48000 });
    let shared = new ArrayBuffer(0);
    // Payloads are slices of a block that later deliveries share; once it is
    // transferred, the capture must not write into it again.
    const moved = await new Promise<ArrayBuffer>((resolve) =>
      r.capture.once("chunk", (c) => {
        shared = c.payload?.buffer as ArrayBuffer;
        setImmediate(() => resolve(structuredClone(shared, { transfer: [shared] })));
      }),
    );
    const snapshot = Buffer.from(moved).toString("hex");
    assert.strictEqual(shared.byteLength, 0, "detached");
    assert.strictEqual(r.states[0]?.state === "running" && r.states[0].bufferFrames, 8 * 48000);
    const n = r.chunks.length;
    await eventually(() => r.chunks.length >= n + 3000, "chunks after the transfer");
    assert.strictEqual(Buffer.from(moved).toString("hex"), snapshot, "the transferred memory is left alone");
    assertCounterChunks(r.chunks.slice(n), 48);
    assert.deepStrictEqual(r.errors, []);
  });

  for (const [chunkMs, frames] of [
    [25, 1200],
    [7, 336],
    [120, 5760],
  ] as const) {
    it(`cuts ${chunkMs} ms chunks of ${frames} frames whatever the period`, async () => {
      const r = capture({ device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs });
      assertCounterChunks(await chunksFrom(r, 40), frames);
    });
  }

  it("with a batch, hands over chunks several at a time with the same samples as one by one", async () => {
    const options = { device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10 } as const;
    const batched = capture({ ...options, batch: 5 });
    const single = capture(options);
    await eventually(() => batched.chunks.length >= 400 && single.chunks.length >= 400, "chunks on both");
    assert.strictEqual(batched.capture.settings.periodFrames, 2400);
    assert.deepStrictEqual(batched.states[0], { state: "running", periodFrames: 2400, bufferFrames: 24000, resumed: false });
    assertCounterChunks(batched.chunks, 480);
    for (let i = 1; i < batched.chunks.length; i++) assert.ok(batched.chunks[i].audio.seq > batched.chunks[i - 1].audio.seq, "seq grows");
    // Chunks handed over together were read together.
    const sizes = new Map<number, number>();
    for (const c of batched.chunks) sizes.set(c.readNs, (sizes.get(c.readNs) ?? 0) + 1);
    assert.ok([...sizes.values()].every((n) => n >= 5), `deliveries of ${[...new Set(sizes.values())].join(", ")} chunks`);
    const fromSingle = new Map(single.chunks.map((c) => [c.audio.seq, c]));
    let common = 0;
    for (const c of batched.chunks) {
      const other = fromSingle.get(c.audio.seq);
      if (!other || c.audio.seq * 480 > WAVES.counter.seconds * 48000) continue;
      common++;
      assert.ok(other.payload?.equals(c.payload as Buffer), `chunk ${c.audio.seq} as without a batch`);
      assert.deepStrictEqual(other.audio.level, c.audio.level);
    }
    assert.ok(common >= 300, `${common} chunks compared`);
  });

  it("measures RMS and peak per channel of a sine at known amplitudes, in every format", async () => {
    const cases = [
      { device: "devplane_sine", format: "S16_LE", rms: [-9.03, -21.07], peak: [-6.02, -18.06] },
      { device: "devplane_sine_s32", format: "S32_LE", rms: [-9.03, -21.07], peak: [-6.02, -18.06] },
      { device: "devplane_sine_float", format: "FLOAT_LE", rms: [-3.01, -15.05], peak: [0, -12.04] },
    ] as const;
    for (const c of cases) {
      const r = capture({ device: c.device, rate: 48000, channels: 2, format: c.format, chunkMs: 10 });
      const chunks = (await chunksFrom(r, 200)).filter((x) => x.audio.seq <= 900);
      assert.ok(chunks.length > 100);
      for (const x of chunks) {
        for (let ch = 0; ch < 2; ch++) {
          near(x.audio.level.rmsDbfs[ch], c.rms[ch], 0.02, `${c.format} chunk ${x.audio.seq} channel ${ch} RMS`);
          near(x.audio.level.peakDbfs[ch], c.peak[ch], 0.02, `${c.format} chunk ${x.audio.seq} channel ${ch} peak`);
        }
      }
      assert.strictEqual(chunks[0].payload?.length, 480 * 2 * (c.format === "S16_LE" ? 2 : 4));
      r.capture.stop();
    }
  });

  it("stamps chunks on CLOCK_MONOTONIC, the ring's clock, always moving forward", async () => {
    const before = addon().monotonicNowNs();
    const r = capture({ device: "devplane_counter", chunkMs: 10 });
    const chunks = await chunksFrom(r, 300);
    const after = addon().monotonicNowNs();
    for (let i = 1; i < chunks.length; i++) {
      assert.ok(chunks[i].audio.monotonicNs > chunks[i - 1].audio.monotonicNs, "monotonic");
    }
    for (const c of chunks) {
      // The first frame is before the read, by at most what the device buffers.
      assert.ok(c.audio.monotonicNs <= c.readNs && c.readNs <= after);
      assert.ok(c.audio.monotonicNs >= before - 1e9);
      // Wall clock and monotonic clock describe the same instant.
      near(c.audio.ts - c.audio.monotonicNs / 1e6, Date.now() - addon().monotonicNowNs() / 1e6, 50, "ts vs monotonicNs");
    }
  });

  it("shares one open device between captures with the same device and settings, with identical data", async () => {
    const options = { device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10 };
    const a = capture(options);
    await chunksFrom(a, 10);
    const b = capture(options);
    await eventually(() => b.chunks.length >= 200 && a.chunks.length >= 400, "chunks on both");
    assert.strictEqual(addon().alsaActiveCaptures(), 1);
    assert.strictEqual(openCount(COUNTER_FILE), 1, "the wave is open once");
    const fromA = new Map(a.chunks.map((c) => [c.audio.seq, c]));
    let common = 0;
    for (const c of b.chunks) {
      const other = fromA.get(c.audio.seq);
      if (!other) continue;
      common++;
      assert.ok(other.payload?.equals(c.payload as Buffer), `chunk ${c.audio.seq} identical`);
      assert.deepStrictEqual(other.audio, c.audio);
    }
    assert.ok(common >= 100, `${common} chunks seen by both`);
    // The first one out leaves the other running.
    a.capture.stop();
    const n = b.chunks.length;
    await eventually(() => b.chunks.length > n + 50, "chunks after the other stopped");
    b.capture.stop();
    assert.strictEqual(addon().alsaActiveCaptures(), 0);
    assert.strictEqual(openCount(COUNTER_FILE), 0, "closed with the last one");
  });

  it("opens separate captures for different settings", async () => {
    const a = capture({ device: "devplane_counter", chunkMs: 10 });
    const b = capture({ device: "devplane_counter", chunkMs: 20 });
    await chunksFrom(a, 10);
    await chunksFrom(b, 10);
    assert.strictEqual(addon().alsaActiveCaptures(), 2);
    assert.strictEqual(openCount(COUNTER_FILE), 2);
    assertCounterChunks(b.chunks, 960);
  });

  it("writes chunks straight into a ring, with the caps and msg.audio as metadata", async () => {
    const ring = ringName("alsa-ring");
    // With the samples also handed to JavaScript, the flow paces the file
    // plugin, so the ring's frames are still within the wave when read; the
    // long buffer keeps the capture waiting for a busy test process rather
    // than dropping chunks and running on past the wave.
    const r = capture({ device: "devplane_counter", chunkMs: 10, ring, ringSlots: 256, chunks: true, bufferFrames: 8 * 48000 });
    await chunksFrom(r, 50);
    const reader = new (addon().RingReader)(ring, { fromOldest: true });
    try {
      let frames = 0;
      for (let f = reader.tryRead(); f; f = reader.tryRead()) {
        assert.ok(f.seq <= COUNTER_CHUNKS_10MS, "within the wave");
        assert.ok(f.data.equals(counterFrames((f.seq - 1) * 480, 480)), `ring frame ${f.seq}`);
        const js = r.chunks.find((c) => c.audio.seq === f.seq);
        if (js) assert.deepStrictEqual((JSON.parse(f.meta) as { audio: unknown }).audio, js.audio);
        frames++;
      }
      assert.ok(frames >= 50, `${frames} frames read`);
      assert.strictEqual(reader.info().contentType, "audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved");
      const f = reader.latest();
      assert.ok(f);
      const meta = JSON.parse(f.meta) as { audio: AudioChunk["audio"] };
      assert.deepStrictEqual(Object.keys(meta), ["audio"]);
      assert.deepStrictEqual(Object.keys(meta.audio), ["seq", "ts", "monotonicNs", "rate", "channels", "format", "frames", "level", "overruns"]);
      assert.strictEqual(meta.audio.seq, f.seq);
      assert.strictEqual(meta.audio.monotonicNs, f.monotonicNs);
      near(meta.audio.ts * 1e6, f.realtimeNs, 1000, "ts and the slot's realtime");
      assert.deepStrictEqual(
        { rate: meta.audio.rate, channels: meta.audio.channels, format: meta.audio.format, frames: meta.audio.frames, overruns: meta.audio.overruns },
        { rate: 48000, channels: 2, format: "S16_LE", frames: 480, overruns: 0 },
      );
      assert.strictEqual(meta.audio.level.rmsDbfs.length, 2);
    } finally {
      reader.close();
    }
  });

  it("with a ring alone, hands nothing to JavaScript", async () => {
    const ring = ringName("alsa-ring-only");
    const r = capture({ device: "devplane_counter", chunkMs: 10, ring });
    await eventually(() => (r.capture.stats()?.ringFrames ?? 0) >= 100, "frames in the ring");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.strictEqual(r.chunks.length, 0);
  });

  it("with a ring, can hand levels alone to JavaScript (for a voice detector)", async () => {
    const ring = ringName("alsa-levels");
    const r = capture({ device: "devplane_sine", chunkMs: 10, ring, chunks: true, payload: false });
    const chunks = await chunksFrom(r, 20);
    for (const c of chunks) {
      assert.strictEqual(c.payload, undefined);
      if (c.audio.seq < 1000) near(c.audio.level.rmsDbfs[0], -9.03, 0.02, "level");
    }
    assert.ok((r.capture.stats()?.ringFrames ?? 0) >= 20);
  });

  it("refuses a ring another writer holds, naming it, before opening the device", () => {
    const ring = ringName("alsa-busy-ring");
    const writer = new (addon().RingWriter)(ring, { slots: 2, slotSize: 64, contentType: "x", mode: 0o600, keep: false, maxBytes: 1 << 30 });
    try {
      const c = new AlsaCapture({ device: "devplane_counter", ring });
      assert.throws(() => c.start(), (e: Error & { code?: string }) => e.code === "EBUSY" && /already has a writer/.test(e.message));
      assert.strictEqual(c.running, false);
      assert.strictEqual(addon().alsaActiveCaptures(), 0);
    } finally {
      writer.close();
    }
  });

  it("names an unknown device in its error and keeps trying without a thread per attempt", async () => {
    for (const device of ["devplane_nosuch", "hw:9,0"]) {
      const r = capture({ device });
      await eventually(() => r.errors.length > 0, `the error for ${device}`);
      const e = r.errors[0] as Error & { code: string; device: string };
      assert.strictEqual(e.code, "ENODEV");
      assert.strictEqual(e.device, device);
      assert.ok(e.message.includes(`"${device}"`), e.message);
      assert.match(e.message, /was not found/);
      if (device === "devplane_nosuch") assert.match(e.message, /Unknown PCM devplane_nosuch/);
      await eventually(() => captureThreads() === 1, "one thread, retrying");
      r.capture.stop();
    }
  });

  it("closes the device and joins its thread on stop, and starts again", async () => {
    const c = new AlsaCapture({ device: "devplane_counter" });
    let n = 0;
    c.on("chunk", () => n++);
    for (let round = 0; round < 3; round++) {
      c.start();
      await eventually(() => n > 10, "chunks");
      await eventually(() => captureThreads() === 1, "one capture thread");
      assert.strictEqual(openCount(COUNTER_FILE), 1);
      c.stop();
      // Closed and joined before stop() returns; the kernel may list a joined
      // thread for a moment longer while it finishes tearing it down.
      assert.strictEqual(openCount(COUNTER_FILE), 0);
      assert.strictEqual(addon().alsaActiveCaptures(), 0);
      await eventually(() => captureThreads() === 0, "the thread to leave /proc");
      n = 0;
    }
  });

  it("keeps running through ten hours of audio (the file plugin runs faster than real time)", async () => {
    const ring = ringName("alsa-long");
    // 8 kHz mono keeps ten hours to a few seconds here; the loop is the same.
    const r = capture({ device: "devplane_sine", rate: 8000, channels: 1, chunkMs: 100, ring, ringSlots: 8 });
    const chunks = 10 * 3600 * 10;
    await eventually(() => (r.capture.stats()?.ringFrames ?? 0) >= chunks, "ten hours of chunks", 120000);
    const reader = new (addon().RingReader)(ring);
    try {
      const f = reader.latest();
      assert.ok(f && f.seq >= chunks);
      assert.strictEqual((JSON.parse(f.meta) as { audio: { overruns: number } }).audio.overruns, 0);
    } finally {
      reader.close();
    }
    assert.deepStrictEqual(r.errors, []);
    assert.strictEqual(r.states.length, 1);
  });

  it("stops a capture whose worker thread ends without stopping it", async () => {
    const worker = new Worker(
      `const { parentPort } = require("worker_threads");
       const { AlsaCapture } = require(${JSON.stringify(path.join(__dirname, "..", "lib", "capture"))});
       const c = new AlsaCapture({ device: "devplane_counter" });
       let sent = false;
       c.on("chunk", () => { if (!sent) { sent = true; parentPort.postMessage("running"); } });
       c.start();`,
      { eval: true, env: process.env },
    );
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
    });
    await eventually(() => captureThreads() === 1, "the worker's capture thread");
    await worker.terminate();
    await eventually(() => captureThreads() === 0, "the capture thread to end with the worker");
    assert.strictEqual(addon().alsaActiveCaptures(), 0);
    assert.strictEqual(openCount(COUNTER_FILE), 0);
  });

  it("lists the PCMs alsa-lib knows, with descriptions, leaving out playback-only ones", async () => {
    const list = await listDevices();
    assert.strictEqual(list.available, true);
    assert.strictEqual(list.library, "libasound.so.2");
    const byName = new Map(list.pcms.map((p) => [p.name + "/" + p.direction, p]));
    assert.deepStrictEqual(byName.get("devplane_counter/both"), {
      name: "devplane_counter",
      description: "devplane test: frame counter, S16_LE 48 kHz stereo",
      direction: "both",
    });
    assert.strictEqual(byName.get("devplane_capture_only/capture")?.description, "devplane test: capture only");
    assert.ok(!list.pcms.some((p) => p.name === "devplane_playback_only"));
    assert.ok(Array.isArray(list.cards));
  });
});
