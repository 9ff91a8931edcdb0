// Known waves for the fake microphones of test/fakes/asound.conf, and the
// configuration that points alsa-lib's file plugin at them.
import fs from "fs";
import path from "path";

export const ROOT = path.resolve(__dirname, "..", "..", "..");
const TEMPLATE = path.join(ROOT, "test", "fakes", "asound.conf");

export const WAVES = {
  counter: { file: "counter-s16-48000-2.raw", seconds: 30 },
  sine: { file: "sine-s16-48000-2.raw", seconds: 20 },
  sineS32: { file: "sine-s32-48000-2.raw", seconds: 10 },
  sineFloat: { file: "sine-float-48000-2.raw", seconds: 10 },
  burst: { file: "burst-s16-16000-1.raw", seconds: 12 },
} as const;

/** Frames [start, start + frames) of the counter wave: S16_LE stereo. */
export function counterFrames(start: number, frames: number): Buffer {
  const b = Buffer.alloc(frames * 4);
  for (let k = 0; k < frames; k++) {
    const i = start + k;
    b.writeInt16LE(i & 0x7fff, k * 4);
    b.writeInt16LE((i >> 15) & 0x7fff, k * 4 + 2);
  }
  return b;
}

export type WaveFormat = "S16_LE" | "S32_LE" | "FLOAT_LE";

/** A sine of `hz` with one amplitude (fraction of full scale) per channel, interleaved. */
export function sineWave(format: WaveFormat, rate: number, hz: number, amplitudes: number[], frames: number): Buffer {
  const channels = amplitudes.length;
  const bytes = format === "S16_LE" ? 2 : 4;
  const b = Buffer.alloc(frames * channels * bytes);
  let o = 0;
  for (let i = 0; i < frames; i++) {
    const s = Math.sin((2 * Math.PI * hz * i) / rate);
    for (const a of amplitudes) {
      const v = a * s;
      if (format === "S16_LE") o = b.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(v * 32768))), o);
      else if (format === "S32_LE") o = b.writeInt32LE(Math.max(-2147483648, Math.min(2147483647, Math.round(v * 2147483648))), o);
      else o = b.writeFloatLE(v, o);
    }
  }
  return b;
}

/**
 * Where the burst wave is loud, in ms, at 16 kHz mono: a one-second tone, a
 * 150 ms pause (shorter than the hangover, so one utterance), another tone,
 * then a 20 ms click (shorter than the minimum speech) in the silence.
 */
export const BURST = {
  rate: 16000,
  amplitude: 0.25, // -12.04 dBFS peak, -15.05 dBFS RMS
  tones: [
    [1000, 2000],
    [2150, 2600],
  ],
  click: [4000, 4020],
} as const;

function burstWave(seconds: number): Buffer {
  const rate = BURST.rate;
  const frames = seconds * rate;
  const b = Buffer.alloc(frames * 2);
  let seed = 12345;
  const loud = (ms: number): boolean =>
    BURST.tones.some(([a, z]) => ms >= a && ms < z) || (ms >= BURST.click[0] && ms < BURST.click[1]);
  for (let i = 0; i < frames; i++) {
    const ms = (i * 1000) / rate;
    // Faint noise (about -70 dBFS) in the pauses, as a real room has.
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const noise = ((seed >> 8) % 21) - 10;
    const tone = loud(ms) ? BURST.amplitude * 32768 * Math.sin((2 * Math.PI * 440 * i) / rate) : 0;
    b.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(tone + noise))), i * 2);
  }
  return b;
}

function writeCounter(file: string, seconds: number): void {
  const fd = fs.openSync(file, "w");
  try {
    const step = 48000;
    for (let s = 0; s < seconds; s++) fs.writeSync(fd, counterFrames(s * step, step));
  } finally {
    fs.closeSync(fd);
  }
}

/** The configuration text for waves in `dir`. */
export function alsaConfig(dir: string): string {
  return fs.readFileSync(TEMPLATE, "utf8").split("@DIR@").join(dir);
}

/**
 * Writes every wave and the configuration into `dir` (once: files already
 * there are kept) and returns the configuration's path for ALSA_CONFIG_PATH.
 */
export function writeAlsaFixtures(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const at = (f: string) => path.join(dir, f);
  if (!fs.existsSync(at(WAVES.counter.file))) writeCounter(at(WAVES.counter.file), WAVES.counter.seconds);
  if (!fs.existsSync(at(WAVES.sine.file))) {
    fs.writeFileSync(at(WAVES.sine.file), sineWave("S16_LE", 48000, 1000, [0.5, 0.125], WAVES.sine.seconds * 48000));
  }
  if (!fs.existsSync(at(WAVES.sineS32.file))) {
    fs.writeFileSync(at(WAVES.sineS32.file), sineWave("S32_LE", 48000, 1000, [0.5, 0.125], WAVES.sineS32.seconds * 48000));
  }
  if (!fs.existsSync(at(WAVES.sineFloat.file))) {
    fs.writeFileSync(at(WAVES.sineFloat.file), sineWave("FLOAT_LE", 48000, 1000, [1, 0.25], WAVES.sineFloat.seconds * 48000));
  }
  if (!fs.existsSync(at(WAVES.burst.file))) fs.writeFileSync(at(WAVES.burst.file), burstWave(WAVES.burst.seconds));
  const conf = at("asound.conf");
  fs.writeFileSync(conf, alsaConfig(dir));
  return conf;
}
