// alsa-capture in a Node-RED runtime (node-red-node-test-helper), capturing
// from alsa-lib's file plugin (test/fakes/asound.conf).
import assert from "assert";
import path from "path";
import type { NodeMessage } from "node-red";
import { parseWavHeader } from "../lib/audio";
import type { AudioInfo } from "../lib/capture";
import { addon } from "../lib/native";
import { BURST, counterFrames, WAVES } from "./fakes/alsa-wave";
import { captureThreads, FIXTURES, openCount } from "./support/alsa";
import { alsaNodes as nodes, helper } from "./support/red";
import {
  assertThreadsBounded,
  cleanupRings,
  devplaneThreads,
  eventually,
  openFds,
  ringName,
  shmEntries,
  threadCount,
} from "./support/rings";
import { collect, statuses } from "./support/flow";

const COUNTER_FILE = path.join(FIXTURES, WAVES.counter.file);
const COUNTER_FRAMES = WAVES.counter.seconds * 48000;

type Msg = NodeMessage & { audio?: AudioInfo; device?: Record<string, unknown>; speech?: Record<string, unknown> };

const audioOf = (msgs: Msg[]) => msgs.filter((m) => m.topic === "audio");

function mic(id: string, props: Record<string, unknown>, wires: string[][] = [["out"]]) {
  return {
    id,
    type: "alsa-capture",
    device: "devplane_counter",
    rate: 48000,
    channels: 2,
    format: "S16_LE",
    chunkMs: 10,
    periodFrames: "",
    bufferFrames: "",
    output: "pcm",
    wavSeconds: 0,
    ring: "",
    vad: false,
    autostart: true,
    ...props,
    wires,
  };
}

describe("alsa-capture in Node-RED", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    cleanupRings();
    assert.strictEqual(addon().alsaActiveCaptures(), 0, "captures left after unload");
    await eventually(() => captureThreads() === 0, "capture threads to end after unload");
  });

  it("sends each chunk with msg.audio, sample for sample, after a connected message", async () => {
    await helper.load(nodes, [mic("m", {}), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => audioOf(out).length >= 300, "300 chunks");
    helper.getNode("m").receive({ payload: "stop" });
    assert.deepStrictEqual(out[0].topic, "device");
    assert.strictEqual(out[0].payload, "connected");
    assert.deepStrictEqual(out[0].device, { name: "devplane_counter", periodFrames: 480, bufferFrames: 24000, resumed: false });
    const chunks = audioOf(out);
    const keys = ["seq", "ts", "monotonicNs", "rate", "channels", "format", "frames", "level", "overruns"];
    for (const m of chunks.filter((c) => (c.audio?.seq ?? 0) * 480 <= COUNTER_FRAMES)) {
      const a = m.audio as AudioInfo;
      assert.deepStrictEqual(Object.keys(a), keys);
      assert.deepStrictEqual(Object.keys(a.level), ["rmsDbfs", "peakDbfs"]);
      assert.strictEqual(a.frames, 480);
      assert.strictEqual(a.overruns, 0);
      assert.ok((m.payload as Buffer).equals(counterFrames((a.seq - 1) * 480, 480)), `chunk ${a.seq}`);
    }
    assert.strictEqual(chunks[0].audio?.seq, 1);
  });

  it("with a batch, sends the same messages, one per chunk, on a period per batch", async () => {
    await helper.load(nodes, [mic("m", { batch: "6" }), { id: "out", type: "helper" }]);
    const out = collect(helper.getNode("out"));
    await eventually(() => audioOf(out).length >= 300, "300 chunks");
    helper.getNode("m").receive({ payload: "stop" });
    assert.deepStrictEqual(out[0].device, { name: "devplane_counter", periodFrames: 2880, bufferFrames: 25920, resumed: false });
    const chunks = audioOf(out);
    assert.strictEqual(chunks[0].audio?.seq, 1);
    for (const m of chunks.filter((c) => (c.audio?.seq ?? 0) * 480 <= COUNTER_FRAMES)) {
      const a = m.audio as AudioInfo;
      assert.strictEqual(a.frames, 480);
      assert.ok((m.payload as Buffer).equals(counterFrames((a.seq - 1) * 480, 480)), `chunk ${a.seq}`);
    }
  });

  it("sends each chunk as a WAV file", async () => {
    await helper.load(nodes, [mic("m", { output: "wav", chunkMs: 20 }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => audioOf(out).length >= 20, "20 WAV chunks");
    for (const m of audioOf(out).slice(0, 20)) {
      const wav = m.payload as Buffer;
      const h = parseWavHeader(wav);
      assert.deepStrictEqual(
        { tag: h.formatTag, channels: h.channels, rate: h.rate, bits: h.bitsPerSample, offset: h.dataOffset, bytes: h.dataBytes },
        { tag: 1, channels: 2, rate: 48000, bits: 16, offset: 44, bytes: 960 * 4 },
      );
      assert.strictEqual(wav.readUInt32LE(4), wav.length - 8);
      const seq = m.audio?.seq as number;
      assert.ok(wav.subarray(44).equals(counterFrames((seq - 1) * 960, 960)), `chunk ${seq}`);
    }
  });

  it("records N seconds into one WAV file per message, back to back", async () => {
    await helper.load(nodes, [mic("m", { output: "wav", wavSeconds: 0.25, chunkMs: 10 }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => audioOf(out).length >= 4, "four recordings");
    helper.getNode("m").receive({ payload: "stop" });
    const recs = audioOf(out).slice(0, 4);
    recs.forEach((m, i) => {
      const wav = m.payload as Buffer;
      const h = parseWavHeader(wav);
      assert.strictEqual(h.dataBytes, 12000 * 4);
      assert.strictEqual(m.audio?.frames, 12000);
      assert.strictEqual(m.audio?.seq, 1 + i * 25);
      assert.ok(wav.subarray(h.dataOffset).equals(counterFrames(i * 12000, 12000)), `recording ${i}`);
    });
  });

  it("sends speech start and stop for a tone burst, ignoring a click and a short pause", async () => {
    await helper.load(nodes, [
      mic("m", {
        device: "devplane_burst",
        rate: BURST.rate,
        channels: 1,
        vad: true,
        vadStartDbfs: -40,
        vadStopDbfs: -45,
        vadMinSpeechMs: 60,
        vadHangoverMs: 400,
      }),
      { id: "out", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    // Past the click at 4 s and well short of the wave's end at 12 s.
    await eventually(() => audioOf(out).some((m) => (m.audio?.seq ?? 0) >= 800), "eight seconds of audio");
    helper.getNode("m").receive({ payload: "stop" });
    const chunkAt = new Map(audioOf(out).map((m) => [m.audio?.seq, m.audio as AudioInfo]));
    const speech = out.filter((m) => m.topic === "speech" && (m.speech?.seq as number) < 1000);
    assert.deepStrictEqual(
      speech.map((m) => [m.payload, m.speech?.seq, m.speech?.durationMs]),
      [
        ["start", 106, undefined],
        ["stop", 300, 1600],
      ],
    );
    // Where the speech began (1000 ms, 50 ms before chunk 106 starts) and
    // ended (2600 ms, 390 ms before chunk 300 starts), on the chunks' clocks.
    const decidedStart = chunkAt.get(106) as AudioInfo;
    const decidedStop = chunkAt.get(300) as AudioInfo;
    assert.strictEqual(speech[0].speech?.monotonicNs, decidedStart.monotonicNs - 50e6);
    assert.strictEqual(speech[0].speech?.ts, decidedStart.ts - 50);
    assert.strictEqual(speech[1].speech?.monotonicNs, decidedStop.monotonicNs - 390e6);
    assert.ok((speech[0].speech?.levelDbfs as number) > -20);
  });

  it("two nodes with the same device and settings share one capture and get identical data", async () => {
    await helper.load(nodes, [mic("a", {}, [["outA"]]), mic("b", {}, [["outB"]]), { id: "outA", type: "helper" }, { id: "outB", type: "helper" }]);
    const a = collect<Msg>(helper.getNode("outA"));
    const b = collect<Msg>(helper.getNode("outB"));
    await eventually(() => audioOf(a).length >= 200 && audioOf(b).length >= 200, "chunks on both");
    assert.strictEqual(addon().alsaActiveCaptures(), 1);
    assert.strictEqual(openCount(COUNTER_FILE), 1, "the device is open once");
    const bySeq = new Map(audioOf(a).map((m) => [m.audio?.seq, m]));
    let common = 0;
    for (const m of audioOf(b)) {
      const other = bySeq.get(m.audio?.seq);
      if (!other) continue;
      common++;
      assert.ok((other.payload as Buffer).equals(m.payload as Buffer));
      assert.deepStrictEqual(other.audio, m.audio);
    }
    assert.ok(common >= 100, `${common} chunks in common`);
  });

  it("starts and stops by message, and waits for one when autostart is off", async () => {
    await helper.load(nodes, [
      mic("m", { autostart: false }),
      { id: "out", type: "helper" },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const m = helper.getNode("m");
    const seen = statuses(m);
    const out = collect<Msg>(helper.getNode("out"));
    const caught = collect<Msg>(helper.getNode("caught"));
    await new Promise((r) => setTimeout(r, 200));
    assert.strictEqual(out.length, 0);
    assert.strictEqual(addon().alsaActiveCaptures(), 0);
    m.receive({ payload: "start" });
    await eventually(() => audioOf(out).length >= 10, "chunks after start");
    assert.ok(seen.some((s) => s.text === "running"));
    m.receive({ payload: false });
    await eventually(() => seen.some((s) => s.text === "stopped"), "the stopped status");
    assert.strictEqual(addon().alsaActiveCaptures(), 0);
    await eventually(() => captureThreads() === 0, "the capture thread to end");
    const n = out.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.strictEqual(out.length, n, "nothing after stop");
    m.receive({ payload: true });
    await eventually(() => out.length > n + 10, "chunks after a second start");
    m.receive({ payload: "louder" });
    await eventually(() => caught.length === 1, "the bad command's error");
    assert.match((caught[0].error as { message: string }).message, /send "start" or "stop" \(got "louder"\)/);
  });

  it("writes into a ring without audio messages when a ring is set", async () => {
    const ring = ringName("alsa-node-ring");
    await helper.load(nodes, [mic("m", { ring }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.payload === "connected"), "connected");
    const reader = new (addon().RingReader)(ring, { fromOldest: true });
    try {
      await eventually(() => (reader.info().writeSeq ?? 0) >= 50, "chunks in the ring");
      assert.strictEqual(reader.info().contentType, "audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved");
      // Nothing holds a ring-only capture back, so the fake device is long
      // past its wave here; the engine test checks the samples.
      const f = reader.latest();
      assert.ok(f);
      assert.strictEqual(f.data.length, 1920);
      const audio = (JSON.parse(f.meta) as { audio: AudioInfo }).audio;
      assert.strictEqual(audio.seq, f.seq);
      assert.strictEqual(audio.monotonicNs, f.monotonicNs);
    } finally {
      reader.close();
    }
    assert.deepStrictEqual(audioOf(out), []);
  });

  it("shm-subscribe turns the ring's chunks back into the same msg.audio", async () => {
    const ring = ringName("alsa-node-resub");
    await helper.load(nodes, [
      mic("m", { ring }, [[]]),
      { id: "s", type: "shm-subscribe", ring, delivery: "every", wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.length >= 20, "frames through shm-subscribe");
    for (const m of out.slice(0, 20)) {
      const a = m.audio as AudioInfo;
      assert.strictEqual(a.frames, 480);
      assert.strictEqual(a.format, "S16_LE");
      assert.strictEqual((m.shm as { seq: number }).seq, a.seq);
      if (a.seq * 480 <= COUNTER_FRAMES) assert.ok((m.payload as Buffer).equals(counterFrames((a.seq - 1) * 480, 480)));
    }
  });

  it("names an unknown device in an error a Catch node sees, and shows it", async () => {
    await helper.load(nodes, [
      mic("m", { device: "hw:CARD=Nope,DEV=0" }),
      { id: "out", type: "helper" },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const seen = statuses(helper.getNode("m"));
    const caught = collect<Msg>(helper.getNode("caught"));
    await eventually(() => caught.length === 1, "the error");
    const msg = caught[0];
    assert.match((msg.error as { message: string }).message, /ALSA device "hw:CARD=Nope,DEV=0" was not found/);
    assert.strictEqual(msg.device?.code, "ENODEV");
    assert.strictEqual(msg.device?.name, "hw:CARD=Nope,DEV=0");
    await eventually(() => seen.some((s) => s.fill === "red" && s.text === "not found"), "the red status");
    // Retries do not repeat the error.
    await new Promise((r) => setTimeout(r, 2500));
    assert.strictEqual(caught.length, 1);
  });

  it("refuses invalid settings on deploy and on every input", async () => {
    await helper.load(nodes, [
      mic("m", { format: "S24_3LE" }),
      { id: "out", type: "helper" },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const caught = collect<Msg>(helper.getNode("caught"));
    helper.getNode("m").receive({ payload: "start" });
    await eventually(() => caught.length === 1, "the error");
    assert.match((caught[0].error as { message: string }).message, /invalid setting: format must be S16_LE, S32_LE or FLOAT_LE/);
    assert.strictEqual(addon().alsaActiveCaptures(), 0);
  });

  it("lists devices for the editor at GET /devplane/alsa/devices", async () => {
    await helper.load(nodes, [mic("m", { autostart: false })]);
    const res = await helper.request().get("/devplane/alsa/devices");
    assert.strictEqual(res.status, 200);
    const body = res.body as { available: boolean; pcms: Array<{ name: string; description: string }> };
    assert.strictEqual(body.available, true);
    assert.ok(body.pcms.some((p) => p.name === "devplane_sine" && /1 kHz sine/.test(p.description)));
  });

  it("50 deploy cycles leave no thread, fd, capture or ring behind", async () => {
    const ring = ringName("alsa-cycles");
    const flow = () => [
      mic("a", {}, [["got"]]),
      mic("b", {}, [[]]),
      mic("r", { device: "devplane_sine", ring }, [[]]),
      mic("v", { device: "devplane_burst", rate: 16000, channels: 1, vad: true, output: "wav", wavSeconds: 0.1 }, [[]]),
      { id: "got", type: "helper" },
    ];
    let baseline: { fds: number; threads: number } | undefined;
    for (let cycle = 0; cycle < 50; cycle++) {
      await helper.load(nodes, flow());
      const got = collect<Msg>(helper.getNode("got"));
      await eventually(() => audioOf(got).length > 0, `a chunk in cycle ${cycle}`);
      await eventually(() => shmEntries().length === 1, `the ring in cycle ${cycle}`);
      await helper.unload();
      assert.strictEqual(addon().alsaActiveCaptures(), 0, `captures after cycle ${cycle}`);
      await eventually(() => captureThreads() === 0, `capture threads to end after cycle ${cycle}`);
      assert.deepStrictEqual(shmEntries(), [], `rings after cycle ${cycle}`);
      assert.strictEqual(openCount(COUNTER_FILE), 0, `device left open after cycle ${cycle}`);
      // The first cycles warm up lazily created runtime threads and handles.
      if (cycle === 9) baseline = { fds: openFds(), threads: threadCount() };
    }
    assert.ok(baseline);
    assert.ok(openFds() <= baseline.fds, `fds grew from ${baseline.fds} to ${openFds()}`);
    await eventually(() => devplaneThreads() === 0, "the addon's threads to end");
    assertThreadsBounded(baseline.threads, 40);
  });
});
