// Microphone capture through the addon's alsa-lib thread: option checks that
// give a sentence a user understands, period and buffer sizes derived from the
// chunk length, and native chunks turned into msg.audio objects.
import { EventEmitter } from "events";
import {
  addon,
  ALSA_EVENT,
  NativeAlsaDeviceList,
  NativeAlsaStats,
  NativeAlsaSubscription,
  NativeError,
} from "../native";
import { checkRingName, parseRingMode } from "../shm/names";
import { isBlank, numberOf, whole } from "./options";

export const SAMPLE_FORMATS = ["S16_LE", "S32_LE", "FLOAT_LE"] as const;
export type SampleFormat = (typeof SAMPLE_FORMATS)[number];

export const BYTES_PER_SAMPLE: Record<SampleFormat, number> = { S16_LE: 2, S32_LE: 4, FLOAT_LE: 4 };

/** msg.audio: one chunk (or one recording) and how it was captured. */
export interface AudioInfo {
  seq: number;
  /** Wall-clock time of the first frame, ms since 1970. */
  ts: number;
  /** The same instant on CLOCK_MONOTONIC, the clock camera frames use too. */
  monotonicNs: number;
  rate: number;
  channels: number;
  format: SampleFormat;
  frames: number;
  level: { rmsDbfs: number[]; peakDbfs: number[] };
  /** Overruns since this capture started: audio the device lost because it was read too late. */
  overruns: number;
}

export interface AudioChunk {
  /** Interleaved samples; absent when only levels were asked for. */
  payload?: Buffer;
  audio: AudioInfo;
  /** CLOCK_MONOTONIC when the native thread read the chunk (for latency figures). */
  readNs: number;
}

/** What a user (or a node's editor) sets. Strings are accepted as the editor stores them. */
export interface AlsaCaptureOptions {
  device?: unknown;
  rate?: unknown;
  channels?: unknown;
  format?: unknown;
  chunkMs?: unknown;
  /**
   * Chunks handed over per wake-up (default 1: each chunk as soon as it is
   * captured). With more, the device's period covers the whole batch, so the
   * capture thread and JavaScript wake once per batch instead of once per
   * chunk: less CPU, for up to batch x chunk length of latency. Messages
   * still carry one chunk each; ring frames are written per batch too.
   */
  batch?: unknown;
  /** 0 or empty: derived from the chunk length and batch. */
  periodFrames?: unknown;
  /** 0 or empty: derived from the period. */
  bufferFrames?: unknown;
  /** A ring name: the capture thread writes every chunk there. Empty: no ring. */
  ring?: unknown;
  ringSlots?: unknown;
  /** "600", "640" or "660". */
  ringMode?: unknown;
  ringKeep?: boolean;
  /** Chunks as events (default: yes without a ring, no with one). */
  chunks?: boolean;
  /** Samples with each chunk event (false: levels only). */
  payload?: boolean;
  /** Chunks queued for JavaScript before the oldest are dropped. */
  queue?: unknown;
  /** Where the busy check looks for the process holding the device. */
  procRoot?: string;
  /**
   * Listeners pass chunks on later in the event loop, as Node-RED's send does:
   * chunks then count against the queue until the loop has come round, so a
   * flow slower than the microphone loses its oldest chunks instead of piling
   * them up in memory.
   */
  asyncListeners?: boolean;
}

export interface CaptureSettings {
  device: string;
  rate: number;
  channels: number;
  format: SampleFormat;
  chunkMs: number;
  chunkFrames: number;
  batch: number;
  periodFrames: number;
  bufferFrames: number;
  ring?: { name: string; slots: number; mode: number; keep: boolean };
  chunks: boolean;
  payload: boolean;
  queue: number;
  procRoot?: string;
  asyncListeners: boolean;
}

export const DEFAULTS = { device: "default", rate: 48000, channels: 2, format: "S16_LE" as SampleFormat, chunkMs: 10, batch: 1 };

/** Periods at most this long: the thread wakes at least this often whatever the chunk length. */
const MAX_PERIOD_MS = 50;
/**
 * The same for a batch of chunks, which asks for fewer wake-ups: arecord's
 * default period is 125 ms, and devices offer periods of this order.
 */
const MAX_BATCH_PERIOD_MS = 250;
/** A batch may hold at most this much audio, like a chunk. */
const MAX_BATCH_MS = 5000;
/**
 * How late the capture thread may be before the device overruns. Capture adds
 * no latency for a larger buffer (frames are read as soon as a period is in),
 * so it is generous enough to ride out a busy Raspberry Pi.
 */
const BUFFER_MS = 500;
const RING_SECONDS = 2;

export function checkDevice(value: unknown): string {
  const device = isBlank(value) ? DEFAULTS.device : typeof value === "string" ? value.trim() : "";
  // eslint-disable-next-line no-control-regex
  if (device === "" || device.length > 256 || /[\x00-\x1f\x7f]/.test(device)) {
    throw new RangeError(`device must be an ALSA device name such as default, hw:1,0 or plughw:CARD=Device,DEV=0 (got ${JSON.stringify(value)})`);
  }
  return device;
}

export function checkFormat(value: unknown): SampleFormat {
  const f = isBlank(value) ? DEFAULTS.format : value;
  if (!(SAMPLE_FORMATS as readonly unknown[]).includes(f)) {
    throw new RangeError(`format must be S16_LE, S32_LE or FLOAT_LE (got ${JSON.stringify(value)})`);
  }
  return f as SampleFormat;
}

export function checkChunkMs(value: unknown): number {
  const n = numberOf(value, DEFAULTS.chunkMs);
  if (!Number.isFinite(n) || n < 1 || n > 5000) {
    throw new RangeError(`chunk length must be 1 to 5000 ms (got ${JSON.stringify(value)})`);
  }
  return n;
}

export function checkBatch(value: unknown, chunkMs: number): number {
  const batch = whole(value, "batch", 1, 100000, DEFAULTS.batch);
  if (batch * chunkMs > MAX_BATCH_MS) {
    throw new RangeError(`a batch may hold at most ${MAX_BATCH_MS} ms of audio (got ${batch} chunks of ${chunkMs} ms)`);
  }
  return batch;
}

/**
 * Period and buffer sizes for a chunk length and batch: a period per batch
 * (one wake-up per delivery) up to 50 ms for single chunks and 250 ms for
 * batches, shorter periods for longer ones, and a buffer of whole periods
 * covering half a second and at least four periods.
 */
export function deriveSizes(
  rate: number,
  chunkFrames: number,
  periodOverride?: number,
  bufferOverride?: number,
  batch = 1,
): { periodFrames: number; bufferFrames: number } {
  const unit = chunkFrames * batch;
  const maxPeriod = Math.max(1, Math.round((rate * (batch > 1 ? MAX_BATCH_PERIOD_MS : MAX_PERIOD_MS)) / 1000));
  const periodFrames = periodOverride || Math.ceil(unit / Math.ceil(unit / maxPeriod));
  const bufferFrames =
    bufferOverride || periodFrames * Math.max(4, Math.ceil((rate * BUFFER_MS) / 1000 / periodFrames));
  return { periodFrames, bufferFrames };
}

export function checkCaptureOptions(o: AlsaCaptureOptions): CaptureSettings {
  const device = checkDevice(o.device);
  const rate = whole(o.rate, "rate", 1000, 768000, DEFAULTS.rate);
  const channels = whole(o.channels, "channels", 1, 32, DEFAULTS.channels);
  const format = checkFormat(o.format);
  const chunkMs = checkChunkMs(o.chunkMs);
  const chunkFrames = Math.max(1, Math.round((rate * chunkMs) / 1000));
  const batch = checkBatch(o.batch, chunkMs);
  const period = whole(o.periodFrames, "period size", 0, 1 << 22, 0);
  const buffer = whole(o.bufferFrames, "buffer size", 0, 1 << 24, 0);
  const { periodFrames, bufferFrames } = deriveSizes(rate, chunkFrames, period, buffer, batch);
  if (bufferFrames < 2 * periodFrames) {
    throw new RangeError(`buffer size must be at least two periods (${2 * periodFrames} frames), got ${bufferFrames}`);
  }
  if (chunkFrames * channels * BYTES_PER_SAMPLE[format] > 64 * 1024 * 1024) {
    throw new RangeError("a chunk may hold at most 64 MiB: shorten the chunk length");
  }
  let ring: CaptureSettings["ring"];
  if (!isBlank(o.ring)) {
    ring = {
      name: checkRingName(typeof o.ring === "string" ? o.ring.trim() : o.ring),
      slots: whole(o.ringSlots, "ring slots", 1, 4096, Math.min(4096, Math.max(8, Math.ceil((RING_SECONDS * 1000) / chunkMs)))),
      mode: parseRingMode(o.ringMode),
      keep: o.ringKeep === true,
    };
  }
  const chunks = o.chunks ?? ring === undefined;
  return {
    device,
    rate,
    channels,
    format,
    chunkMs,
    chunkFrames,
    batch,
    periodFrames,
    bufferFrames,
    ring,
    chunks,
    payload: o.payload ?? true,
    // About a second of audio (and two batches) waits for a flow that is behind.
    queue: whole(o.queue, "queue", 1, 100000, Math.max(2 * batch, Math.min(1000, Math.max(4, Math.ceil(1000 / chunkMs))))),
    procRoot: o.procRoot,
    asyncListeners: o.asyncListeners === true,
  };
}

/** The caps string a ring of these settings carries. */
export function audioRingCaps(s: Pick<CaptureSettings, "format" | "rate" | "channels">): string {
  const raw = { S16_LE: "S16LE", S32_LE: "S32LE", FLOAT_LE: "F32LE" }[s.format];
  return `audio/x-raw,format=${raw},rate=${s.rate},channels=${s.channels},layout=interleaved`;
}

export type CaptureState =
  | { state: "running"; periodFrames: number; bufferFrames: number; resumed: boolean }
  | { state: "disconnected"; message: string };

/**
 * A capture failure. code: ENOLIB (alsa-lib missing), ENODEV (unknown or
 * absent device), EBUSY (another program holds it), EACCES, EINVAL (the device
 * cannot do these settings), EIO, or a ring's code.
 */
export class AlsaCaptureError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly device: string,
  ) {
    super(message);
    this.name = "AlsaCaptureError";
  }
}

export interface CaptureEvents {
  chunk: [AudioChunk];
  state: [CaptureState];
  error: [AlsaCaptureError];
}

/**
 * Capture from one ALSA device. Several instances with the same device and
 * settings share one capture inside the addon.
 */
export class AlsaCapture extends EventEmitter<CaptureEvents> {
  readonly settings: CaptureSettings;
  private subscription: NativeAlsaSubscription | undefined;
  private readonly stride: number;
  private readonly chunkBytes: number;
  /** Rows of the chunks being delivered, reused: read only during a native callback. */
  private readonly rows: Float64Array;

  constructor(options: AlsaCaptureOptions) {
    super();
    this.settings = checkCaptureOptions(options);
    this.stride = 5 + 2 * this.settings.channels;
    this.chunkBytes = this.settings.chunkFrames * this.settings.channels * BYTES_PER_SAMPLE[this.settings.format];
    // The native side reads at most 32 chunks at a time, or a batch.
    this.rows = new Float64Array(Math.max(32, this.settings.batch) * this.stride);
  }

  get running(): boolean {
    return this.subscription !== undefined;
  }

  /** Throws when the ring cannot be opened (for example another writer has it). */
  start(): void {
    if (this.subscription) return;
    const s = this.settings;
    try {
      this.subscription = new (addon().AlsaSubscription)(
        {
          device: s.device,
          rate: s.rate,
          channels: s.channels,
          format: s.format,
          chunkFrames: s.chunkFrames,
          batch: s.batch,
          periodFrames: s.periodFrames,
          bufferFrames: s.bufferFrames,
          chunks: s.chunks,
          payload: s.payload,
          queue: s.queue,
          procRoot: s.procRoot,
          ring: s.ring,
          rows: this.rows,
          ack: s.asyncListeners,
        },
        (kind: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => this.onNative(kind, a, b, c, d, e),
      );
    } catch (err) {
      const e = err as NativeError;
      throw new AlsaCaptureError(e.code ?? "EIO", e.message, s.device);
    }
  }

  /** Detaches; the last one out closes the device and joins its thread before this returns. */
  stop(): void {
    const sub = this.subscription;
    this.subscription = undefined;
    sub?.stop();
  }

  stats(): NativeAlsaStats | undefined {
    return this.subscription?.stats();
  }

  private onNative(kind: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown): void {
    if (!this.subscription) return;
    // This runs from the addon's thread-safe callback, where an exception
    // would be uncaught: a listener's failure becomes an error event.
    try {
      if (kind === ALSA_EVENT.chunks) {
        this.emitChunks(a as number, c as Float64Array, d as ArrayBuffer | undefined, e as number);
        if (this.settings.asyncListeners) this.ackLater(a as number);
      } else if (kind === ALSA_EVENT.running) {
        this.emit("state", { state: "running", periodFrames: a as number, bufferFrames: b as number, resumed: c as boolean });
      } else if (kind === ALSA_EVENT.disconnected) this.emit("state", { state: "disconnected", message: a as string });
      else this.fail(new AlsaCaptureError(a as string, b as string, this.settings.device));
    } catch (err) {
      this.fail(new AlsaCaptureError("ELISTENER", (err as Error).message, this.settings.device));
    }
  }

  // Apart from onNative, whose every call would otherwise allocate the closure's context.
  private ackLater(count: number): void {
    const sub = this.subscription;
    setImmediate(() => sub?.ack(count));
  }

  private fail(err: AlsaCaptureError): void {
    // An "error" event with no listener throws; a capture must never take its process down.
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  private emitChunks(count: number, info: Float64Array, block: ArrayBuffer | undefined, base: number): void {
    const { rate, channels, format, chunkFrames } = this.settings;
    const stride = this.stride;
    const bytes = this.chunkBytes;
    for (let k = 0; k < count; k++) {
      const o = k * stride;
      const l = o + 5;
      let rmsDbfs: number[];
      let peakDbfs: number[];
      if (channels === 1) {
        rmsDbfs = [info[l]];
        peakDbfs = [info[l + 1]];
      } else if (channels === 2) {
        rmsDbfs = [info[l], info[l + 1]];
        peakDbfs = [info[l + 2], info[l + 3]];
      } else {
        rmsDbfs = new Array<number>(channels);
        peakDbfs = new Array<number>(channels);
        for (let c = 0; c < channels; c++) {
          rmsDbfs[c] = info[l + c];
          peakDbfs[c] = info[l + channels + c];
        }
      }
      // One flat literal each: until the function is optimised, a nested
      // literal is copied from its boilerplate in the runtime, on every chunk.
      const level = { rmsDbfs, peakDbfs };
      const audio: AudioInfo = {
        seq: info[o],
        ts: info[o + 2],
        monotonicNs: info[o + 1],
        rate,
        channels,
        format,
        frames: chunkFrames,
        level,
        overruns: info[o + 4],
      };
      const chunk: AudioChunk = {
        payload: block ? Buffer.from(block, base + k * bytes, bytes) : undefined,
        audio,
        readNs: info[o + 3],
      };
      this.emit("chunk", chunk);
      if (!this.subscription) return;
    }
  }
}

export interface DeviceList extends NativeAlsaDeviceList {
  available: boolean;
  error?: string;
}

/**
 * The PCMs alsa-lib knows (with their descriptions) and the sound cards, for
 * the editor's device list. Runs on a worker thread. A missing alsa-lib is an
 * answer, not a failure.
 */
export async function listDevices(): Promise<DeviceList> {
  try {
    return { available: true, ...(await addon().alsaDevices()) };
  } catch (err) {
    const e = err as NativeError;
    if (e.code !== "ENOLIB") throw err;
    return { available: false, error: e.message, library: "", pcms: [], cards: [] };
  }
}
