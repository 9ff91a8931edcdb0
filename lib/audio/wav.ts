// WAV files in memory: a header for interleaved PCM, and a recorder that cuts
// a chunk stream into recordings of exactly N seconds.
import type { AudioChunk, AudioInfo, SampleFormat } from "../capture/alsa";
import { BYTES_PER_SAMPLE } from "../capture/alsa";
import { combineLevels } from "./levels";

export interface WavFormat {
  rate: number;
  channels: number;
  format: SampleFormat;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
/** The data chunk's size field is 32 bits. */
export const MAX_WAV_DATA_BYTES = 0xffffffff - 64;

/**
 * The header in front of `dataBytes` of samples. Integer formats get the
 * classic 44-byte PCM header; float gets the 18-byte fmt chunk and the fact
 * chunk that the format requires for anything but PCM.
 */
export function wavHeader(f: WavFormat, dataBytes: number): Buffer {
  if (!Number.isInteger(dataBytes) || dataBytes < 0 || dataBytes > MAX_WAV_DATA_BYTES) {
    throw new RangeError(`a WAV file holds at most ${MAX_WAV_DATA_BYTES} bytes of samples (got ${dataBytes})`);
  }
  const float = f.format === "FLOAT_LE";
  const bytesPerSample = BYTES_PER_SAMPLE[f.format];
  const blockAlign = f.channels * bytesPerSample;
  const fmtSize = float ? 18 : 16;
  const factSize = float ? 12 : 0;
  const headerSize = 12 + 8 + fmtSize + factSize + 8;
  const h = Buffer.alloc(headerSize);
  let o = 0;
  o += h.write("RIFF", o, "ascii");
  o = h.writeUInt32LE(headerSize - 8 + dataBytes, o);
  o += h.write("WAVE", o, "ascii");
  o += h.write("fmt ", o, "ascii");
  o = h.writeUInt32LE(fmtSize, o);
  o = h.writeUInt16LE(float ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM, o);
  o = h.writeUInt16LE(f.channels, o);
  o = h.writeUInt32LE(f.rate, o);
  o = h.writeUInt32LE(f.rate * blockAlign, o);
  o = h.writeUInt16LE(blockAlign, o);
  o = h.writeUInt16LE(bytesPerSample * 8, o);
  if (float) {
    o = h.writeUInt16LE(0, o);
    o += h.write("fact", o, "ascii");
    o = h.writeUInt32LE(4, o);
    o = h.writeUInt32LE(Math.floor(dataBytes / blockAlign), o);
  }
  o += h.write("data", o, "ascii");
  h.writeUInt32LE(dataBytes, o);
  return h;
}

/** Samples (one Buffer or several in order) as one WAV file. */
export function toWav(f: WavFormat, samples: Buffer | Buffer[]): Buffer {
  const parts = Array.isArray(samples) ? samples : [samples];
  const bytes = parts.reduce((n, b) => n + b.length, 0);
  return Buffer.concat([wavHeader(f, bytes), ...parts], wavHeader(f, 0).length + bytes);
}

export interface WavInfo {
  formatTag: number;
  channels: number;
  rate: number;
  byteRate: number;
  blockAlign: number;
  bitsPerSample: number;
  dataOffset: number;
  dataBytes: number;
}

/** Reads a WAV header (RIFF chunks in any order); throws on anything else. */
export function parseWavHeader(buf: Buffer): WavInfo {
  if (buf.length < 12 || buf.toString("ascii", 0, 4) !== "RIFF" || buf.toString("ascii", 8, 12) !== "WAVE") {
    throw new Error("not a WAV file: no RIFF/WAVE header");
  }
  let fmt: Omit<WavInfo, "dataOffset" | "dataBytes"> | undefined;
  let o = 12;
  while (o + 8 <= buf.length) {
    const id = buf.toString("ascii", o, o + 4);
    const size = buf.readUInt32LE(o + 4);
    if (id === "fmt ") {
      fmt = {
        formatTag: buf.readUInt16LE(o + 8),
        channels: buf.readUInt16LE(o + 10),
        rate: buf.readUInt32LE(o + 12),
        byteRate: buf.readUInt32LE(o + 16),
        blockAlign: buf.readUInt16LE(o + 20),
        bitsPerSample: buf.readUInt16LE(o + 22),
      };
    } else if (id === "data") {
      if (!fmt) throw new Error("WAV data chunk before its fmt chunk");
      return { ...fmt, dataOffset: o + 8, dataBytes: size };
    }
    o += 8 + size + (size & 1);
  }
  throw new Error("WAV file without a data chunk");
}

export interface Recording {
  wav: Buffer;
  audio: AudioInfo;
}

/**
 * Cuts consecutive chunks into WAV recordings of exactly `seconds` each: a
 * chunk that straddles the end is split, and its rest starts the next
 * recording, so the recordings tile the stream sample for sample.
 */
export class WavRecorder {
  readonly framesPerRecording: number;
  private parts: Buffer[] = [];
  private levels: Array<{ frames: number; rmsDbfs: number[]; peakDbfs: number[] }> = [];
  private frames = 0;
  private first: AudioInfo | undefined;
  private last: AudioInfo | undefined;
  private readonly frameBytes: number;

  constructor(
    private readonly f: WavFormat,
    seconds: number,
  ) {
    this.frameBytes = f.channels * BYTES_PER_SAMPLE[f.format];
    this.framesPerRecording = Math.round(seconds * f.rate);
    if (!(this.framesPerRecording >= 1)) throw new RangeError(`a recording must be longer than 0 s (got ${seconds})`);
    if (this.framesPerRecording * this.frameBytes > MAX_WAV_DATA_BYTES) {
      throw new RangeError(`${seconds} s of this audio does not fit in one WAV file`);
    }
  }

  /** Adds a chunk; returns the recordings it completed (usually none, sometimes one). */
  push(chunk: AudioChunk): Recording[] {
    const done: Recording[] = [];
    const payload = chunk.payload;
    if (!payload) return done;
    const totalFrames = Math.floor(payload.length / this.frameBytes);
    let offset = 0;
    while (offset < totalFrames) {
      const take = Math.min(totalFrames - offset, this.framesPerRecording - this.frames);
      if (!this.first) {
        const shiftMs = (offset * 1000) / this.f.rate;
        this.first = {
          ...chunk.audio,
          ts: chunk.audio.ts + shiftMs,
          monotonicNs: chunk.audio.monotonicNs + Math.round(shiftMs * 1e6),
        };
      }
      this.parts.push(payload.subarray(offset * this.frameBytes, (offset + take) * this.frameBytes));
      this.levels.push({ frames: take, ...chunk.audio.level });
      this.frames += take;
      offset += take;
      this.last = chunk.audio;
      if (this.frames === this.framesPerRecording) {
        const r = this.flush();
        if (r) done.push(r);
      }
    }
    return done;
  }

  /** The recording so far (shorter than asked), or undefined when it is empty. */
  flush(): Recording | undefined {
    const first = this.first;
    if (!first || this.frames === 0) return undefined;
    const audio: AudioInfo = {
      ...first,
      frames: this.frames,
      level: combineLevels(this.levels),
      overruns: this.last?.overruns ?? first.overruns,
    };
    const wav = toWav(this.f, this.parts);
    this.parts = [];
    this.levels = [];
    this.frames = 0;
    this.first = undefined;
    return { wav, audio };
  }
}

export const OUTPUTS = ["pcm", "wav"] as const;
export type Output = (typeof OUTPUTS)[number];

/** The largest recording held in memory for one message. */
export const MAX_RECORDING_BYTES = 256 * 1024 * 1024;

/**
 * What each message carries: raw samples ("pcm"), each chunk as a WAV file
 * ("wav", 0 s), or recordings of `wavSeconds` each ("wav", more than 0 s).
 */
export function checkOutput(
  output: unknown,
  wavSeconds: unknown,
  f: WavFormat,
): { output: Output; wavSeconds: number } {
  const out = output === undefined || output === "" ? "pcm" : output;
  if (!(OUTPUTS as readonly unknown[]).includes(out)) {
    throw new RangeError(`output must be pcm or wav (got ${JSON.stringify(output)})`);
  }
  if (out === "pcm") return { output: "pcm", wavSeconds: 0 };
  const n = wavSeconds === undefined || wavSeconds === "" ? 0 : typeof wavSeconds === "string" ? Number(wavSeconds) : wavSeconds;
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) {
    throw new RangeError(`recording length must be 0 (each chunk) or more seconds (got ${JSON.stringify(wavSeconds)})`);
  }
  const bytes = n * f.rate * f.channels * BYTES_PER_SAMPLE[f.format];
  if (bytes > MAX_RECORDING_BYTES) {
    const max = Math.floor(MAX_RECORDING_BYTES / (f.rate * f.channels * BYTES_PER_SAMPLE[f.format]));
    throw new RangeError(`a recording of ${n} s would take ${Math.round(bytes / 1048576)} MiB; at most ${max} s fit in one message`);
  }
  return { output: "wav", wavSeconds: n };
}
