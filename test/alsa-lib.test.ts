// The microphone engine's pure parts, without a device: option checks and
// derived sizes, WAV headers and recordings, levels, the voice detector.
import assert from "assert";
import fc from "fast-check";
import {
  AudioChunk,
  audioRingCaps,
  checkCaptureOptions,
  deriveSizes,
} from "../lib/capture";
import {
  checkOutput,
  checkVadOptions,
  combineLevels,
  EnergyVad,
  FLOOR_DBFS,
  loudestRms,
  parseWavHeader,
  toDbfs,
  toWav,
  VadEvent,
  wavHeader,
  WavRecorder,
} from "../lib/audio";

function chunk(seq: number, frames: number, opts: { channels?: number; rms?: number[]; byte?: (i: number) => number } = {}): AudioChunk {
  const channels = opts.channels ?? 1;
  const payload = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < payload.length; i++) payload[i] = opts.byte ? opts.byte(i) : (seq + i) & 0xff;
  const rms = opts.rms ?? new Array(channels).fill(-20);
  return {
    payload,
    readNs: 0,
    audio: {
      seq,
      ts: 1_700_000_000_000 + seq * 10,
      monotonicNs: 5e9 + seq * 1e7,
      rate: 16000,
      channels,
      format: "S16_LE",
      frames,
      level: { rmsDbfs: rms, peakDbfs: rms.map((r) => r + 3) },
      overruns: 0,
    },
  };
}

describe("alsa-capture options", () => {
  it("defaults to the default device, 48 kHz stereo S16_LE in 10 ms chunks", () => {
    const s = checkCaptureOptions({});
    assert.deepStrictEqual(
      { device: s.device, rate: s.rate, channels: s.channels, format: s.format, chunkMs: s.chunkMs, chunkFrames: s.chunkFrames },
      { device: "default", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10, chunkFrames: 480 },
    );
    assert.strictEqual(s.ring, undefined);
    assert.strictEqual(s.chunks, true);
  });

  it("accepts the strings the editor stores", () => {
    const s = checkCaptureOptions({ device: " hw:1,0 ", rate: "16000", channels: "1", format: "S32_LE", chunkMs: "20", periodFrames: "", bufferFrames: "0" });
    assert.strictEqual(s.device, "hw:1,0");
    assert.strictEqual(s.rate, 16000);
    assert.strictEqual(s.chunkFrames, 320);
    assert.strictEqual(s.periodFrames, 320);
  });

  it("derives one period per chunk up to 50 ms and half a second of buffer", () => {
    assert.deepStrictEqual(deriveSizes(48000, 480), { periodFrames: 480, bufferFrames: 24000 });
    assert.deepStrictEqual(deriveSizes(44100, 441), { periodFrames: 441, bufferFrames: 22050 });
    assert.deepStrictEqual(deriveSizes(48000, 2400), { periodFrames: 2400, bufferFrames: 24000 });
    // 100 ms chunks: two 50 ms periods each.
    assert.deepStrictEqual(deriveSizes(48000, 4800), { periodFrames: 2400, bufferFrames: 24000 });
    // 1 s chunks at 16 kHz: 20 periods of 50 ms, and half a second of buffer.
    assert.deepStrictEqual(deriveSizes(16000, 16000), { periodFrames: 800, bufferFrames: 8000 });
    assert.deepStrictEqual(deriveSizes(48000, 480, 960, 9600), { periodFrames: 960, bufferFrames: 9600 });
  });

  it("with a batch, derives one period per batch up to 250 ms and queues at least two batches", () => {
    // 10 ms chunks twelve at a time: one 120 ms period, as arecord's 125 ms.
    assert.deepStrictEqual(deriveSizes(48000, 480, 0, 0, 12), { periodFrames: 5760, bufferFrames: 28800 });
    assert.deepStrictEqual(deriveSizes(48000, 480, 0, 0, 2), { periodFrames: 960, bufferFrames: 24000 });
    // A second of 10 ms chunks: four 250 ms periods.
    assert.deepStrictEqual(deriveSizes(48000, 480, 0, 0, 100), { periodFrames: 12000, bufferFrames: 48000 });
    assert.deepStrictEqual(deriveSizes(48000, 480, 480, 0, 4), { periodFrames: 480, bufferFrames: 24000 });
    const s = checkCaptureOptions({ chunkMs: "10", batch: "12" });
    assert.deepStrictEqual(
      { batch: s.batch, periodFrames: s.periodFrames, bufferFrames: s.bufferFrames, queue: s.queue },
      { batch: 12, periodFrames: 5760, bufferFrames: 28800, queue: 100 },
    );
    assert.strictEqual(checkCaptureOptions({}).batch, 1);
    assert.strictEqual(checkCaptureOptions({ chunkMs: 10, batch: 400 }).queue, 800);
  });

  it("keeps every derived size sane for any rate and chunk", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 768000 }), fc.integer({ min: 1, max: 5000 }), (rate, ms) => {
        const chunk = Math.max(1, Math.round((rate * ms) / 1000));
        const { periodFrames, bufferFrames } = deriveSizes(rate, chunk);
        assert.ok(periodFrames >= 1 && periodFrames <= chunk);
        assert.ok(periodFrames <= Math.max(1, Math.round(rate * 0.05)) || periodFrames === chunk);
        assert.ok(bufferFrames >= 4 * periodFrames);
        assert.strictEqual(bufferFrames % periodFrames, 0);
        assert.ok(bufferFrames >= rate / 2);
      }),
    );
  });

  it("rejects bad settings with a sentence naming the setting", () => {
    const bad: Array<[object, RegExp]> = [
      [{ device: 42 }, /device must be an ALSA device name/],
      [{ device: "x".repeat(257) }, /device must be/],
      [{ device: "hw:1\n0" }, /device must be/],
      [{ rate: 44.1 }, /rate must be a whole number from 1000 to 768000/],
      [{ rate: "fast" }, /rate/],
      [{ channels: 0 }, /channels must be a whole number from 1 to 32/],
      [{ format: "S24_LE" }, /format must be S16_LE, S32_LE or FLOAT_LE/],
      [{ chunkMs: 0 }, /chunk length must be 1 to 5000 ms/],
      [{ batch: 0 }, /batch must be a whole number from 1 to 100000/],
      [{ batch: 2.5 }, /batch must be a whole number/],
      [{ chunkMs: 100, batch: 51 }, /a batch may hold at most 5000 ms of audio \(got 51 chunks of 100 ms\)/],
      [{ periodFrames: 480, bufferFrames: 500 }, /buffer size must be at least two periods \(960 frames\)/],
      [{ ring: "../x" }, /invalid ring name/],
      [{ ring: "mic", ringMode: "777" }, /mode must be 600, 640 or 660/],
    ];
    for (const [o, re] of bad) assert.throws(() => checkCaptureOptions(o), re, JSON.stringify(o));
  });

  it("with a ring, sends no chunks to JavaScript unless asked, and sizes the ring for about two seconds", () => {
    const s = checkCaptureOptions({ ring: "mic", chunkMs: 20 });
    assert.deepStrictEqual(s.ring, { name: "mic", slots: 100, mode: 0o600, keep: false });
    assert.strictEqual(s.chunks, false);
    assert.strictEqual(checkCaptureOptions({ ring: "mic", chunks: true }).chunks, true);
    assert.strictEqual(checkCaptureOptions({ ring: "mic", chunkMs: 1000 }).ring?.slots, 8);
  });

  it("names the ring's caps the way the ring contract and shm-publish do", () => {
    assert.strictEqual(audioRingCaps({ format: "S16_LE", rate: 48000, channels: 2 }), "audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved");
    assert.strictEqual(audioRingCaps({ format: "FLOAT_LE", rate: 16000, channels: 1 }), "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  });
});

describe("WAV", () => {
  it("writes the canonical 44-byte header for 16-bit PCM", () => {
    const h = wavHeader({ rate: 48000, channels: 2, format: "S16_LE" }, 1920);
    assert.strictEqual(h.length, 44);
    assert.strictEqual(
      h.toString("hex"),
      "52494646" + "a4070000" + "57415645" + "666d7420" + "10000000" + "0100" + "0200" + "80bb0000" + "00ee0200" + "0400" + "1000" + "64617461" + "80070000",
    );
  });

  it("marks 32-bit integers as PCM and floats as IEEE float with a fact chunk", () => {
    const s32 = parseWavHeader(toWav({ rate: 16000, channels: 1, format: "S32_LE" }, Buffer.alloc(64)));
    assert.deepStrictEqual(s32, { formatTag: 1, channels: 1, rate: 16000, byteRate: 64000, blockAlign: 4, bitsPerSample: 32, dataOffset: 44, dataBytes: 64 });
    const f = toWav({ rate: 48000, channels: 2, format: "FLOAT_LE" }, Buffer.alloc(80));
    const info = parseWavHeader(f);
    assert.deepStrictEqual(info, { formatTag: 3, channels: 2, rate: 48000, byteRate: 384000, blockAlign: 8, bitsPerSample: 32, dataOffset: 58, dataBytes: 80 });
    assert.strictEqual(f.toString("ascii", 38, 42), "fact");
    assert.strictEqual(f.readUInt32LE(46), 10);
    assert.strictEqual(f.readUInt32LE(4), f.length - 8);
  });

  it("refuses what a WAV file cannot hold", () => {
    assert.throws(() => wavHeader({ rate: 48000, channels: 2, format: "S16_LE" }, 2 ** 32), /at most/);
    assert.throws(() => parseWavHeader(Buffer.from("RIFX")), /not a WAV file/);
  });

  it("checks the output setting and the recording length", () => {
    const f = { rate: 48000, channels: 2, format: "S16_LE" as const };
    assert.deepStrictEqual(checkOutput(undefined, undefined, f), { output: "pcm", wavSeconds: 0 });
    assert.deepStrictEqual(checkOutput("wav", "2.5", f), { output: "wav", wavSeconds: 2.5 });
    assert.throws(() => checkOutput("mp3", 0, f), /output must be pcm or wav/);
    assert.throws(() => checkOutput("wav", -1, f), /recording length/);
    assert.throws(() => checkOutput("wav", 3600, f), /at most 1398 s fit in one message/);
  });

  it("cuts chunks into recordings of exactly N seconds that tile the stream", () => {
    const rec = new WavRecorder({ rate: 16000, channels: 1, format: "S16_LE" }, 0.025); // 400 frames
    const chunks = Array.from({ length: 7 }, (_, i) => chunk(i + 1, 160, { rms: [-20 - i] }));
    const recordings = chunks.flatMap((c) => rec.push(c));
    assert.strictEqual(recordings.length, 2);
    const rest = rec.flush();
    assert.ok(rest);
    const all = [...recordings, rest];
    assert.deepStrictEqual(all.map((r) => r.audio.frames), [400, 400, 320]);
    // Sample for sample the same stream.
    const pcm = Buffer.concat(all.map((r) => r.wav.subarray(parseWavHeader(r.wav).dataOffset)));
    assert.ok(pcm.equals(Buffer.concat(chunks.map((c) => c.payload as Buffer))));
    for (const r of all) assert.strictEqual(parseWavHeader(r.wav).dataBytes, r.audio.frames * 2);
    // The second recording starts 80 frames (5 ms) into chunk 3.
    assert.strictEqual(all[1].audio.seq, 3);
    assert.strictEqual(all[1].audio.ts, chunks[2].audio.ts + 5);
    assert.strictEqual(all[1].audio.monotonicNs, chunks[2].audio.monotonicNs + 5e6);
    assert.strictEqual(rec.flush(), undefined);
  });

  it("gives a recording the combined level of its chunks", () => {
    const rec = new WavRecorder({ rate: 16000, channels: 2, format: "S16_LE" }, 0.02);
    const [r] = [
      ...rec.push(chunk(1, 160, { channels: 2, rms: [-20, FLOOR_DBFS] })),
      ...rec.push(chunk(2, 160, { channels: 2, rms: [-20, -26.02] })),
    ];
    assert.deepStrictEqual(r.audio.level.rmsDbfs, [-20, -29.03]);
    assert.deepStrictEqual(r.audio.level.peakDbfs, [-17, -23.02]);
  });
});

describe("levels", () => {
  it("converts ratios to dBFS with a floor for silence", () => {
    assert.strictEqual(toDbfs(1), 0);
    assert.strictEqual(toDbfs(0.5), -6.02);
    assert.strictEqual(toDbfs(0), FLOOR_DBFS);
    assert.strictEqual(toDbfs(1e-9), FLOOR_DBFS);
  });

  it("combines levels by energy, weighted by length", () => {
    assert.deepStrictEqual(
      combineLevels([
        { frames: 100, rmsDbfs: [-6.02], peakDbfs: [-3] },
        { frames: 300, rmsDbfs: [FLOOR_DBFS], peakDbfs: [-40] },
      ]),
      { rmsDbfs: [-12.04], peakDbfs: [-3] },
    );
    assert.strictEqual(loudestRms({ rmsDbfs: [-30, -12, -50] }), -12);
    assert.strictEqual(loudestRms({ rmsDbfs: [] }), FLOOR_DBFS);
  });
});

describe("voice activity", () => {
  const run = (vad: EnergyVad, levels: number[], ms = 10): VadEvent[] =>
    levels.map((l) => vad.push(l, ms)).filter((e): e is VadEvent => e !== undefined);

  it("starts after the level stays above the start threshold for the minimum speech time", () => {
    const vad = new EnergyVad({ startDbfs: -40, stopDbfs: -45, minSpeechMs: 50, hangoverMs: 200 });
    const events = run(vad, [...Array(10).fill(-60), ...Array(4).fill(-30)]);
    assert.deepStrictEqual(events, []);
    const [start] = run(vad, [-30]);
    assert.deepStrictEqual(start, { type: "start", atMs: 100, levelDbfs: -30 });
    assert.ok(vad.speaking);
  });

  it("ignores a click shorter than the minimum speech", () => {
    const vad = new EnergyVad({ minSpeechMs: 60 });
    assert.deepStrictEqual(run(vad, [-70, -10, -10, -70, -70, -10, -70]), []);
  });

  it("keeps speaking through pauses shorter than the hangover, then stops where the silence began", () => {
    const vad = new EnergyVad({ startDbfs: -40, stopDbfs: -45, minSpeechMs: 0, hangoverMs: 300 });
    const levels = [-70, -20, -20, ...Array(20).fill(-60), -20, -20, ...Array(40).fill(-60)];
    const events = run(vad, levels);
    assert.deepStrictEqual(events, [
      { type: "start", atMs: 10, levelDbfs: -20 },
      { type: "stop", atMs: 250, durationMs: 240, levelDbfs: -60 },
    ]);
  });

  it("does not flap while the level hovers between the two thresholds", () => {
    const vad = new EnergyVad({ startDbfs: -40, stopDbfs: -50, minSpeechMs: 0, hangoverMs: 0 });
    const events = run(vad, [-30, -45, -41, -49, -44, -48, -55]);
    assert.deepStrictEqual(events.map((e) => e.type), ["start", "stop"]);
    assert.strictEqual(events[1].atMs, 60);
  });

  it("ends speech in progress when told the audio stopped", () => {
    const vad = new EnergyVad({ minSpeechMs: 0 });
    run(vad, [-10, -10, -10]);
    assert.deepStrictEqual(vad.end(), { type: "stop", atMs: 30, durationMs: 30, levelDbfs: -120 });
    assert.strictEqual(vad.end(), undefined);
  });

  it("alternates start and stop for any sequence of levels", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -120, max: 0 }), { maxLength: 400 }), fc.integer({ min: 1, max: 50 }), (levels, ms) => {
        const vad = new EnergyVad({ minSpeechMs: 30, hangoverMs: 100 });
        const events = run(vad, levels, ms);
        events.forEach((e, i) => assert.strictEqual(e.type, i % 2 === 0 ? "start" : "stop"));
        for (const e of events) assert.ok(e.atMs >= 0 && e.atMs <= levels.length * ms);
        for (const e of events) if (e.type === "stop") assert.ok((e.durationMs ?? -1) >= 0);
      }),
    );
  });

  it("rejects thresholds that cannot work", () => {
    assert.throws(() => checkVadOptions({ startDbfs: -50, stopDbfs: -40 }), /must not be above the start threshold/);
    assert.throws(() => checkVadOptions({ startDbfs: 3 }), /speech start threshold must be a number from -120 to 0/);
    assert.throws(() => checkVadOptions({ hangoverMs: "soon" }), /hangover/);
    assert.deepStrictEqual(checkVadOptions({ startDbfs: "-30" }), { startDbfs: -30, stopDbfs: -35, minSpeechMs: 60, hangoverMs: 400 });
  });
});
