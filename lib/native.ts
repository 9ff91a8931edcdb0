// The one place that loads the addon. Everything else reaches native code
// through the typed wrappers in lib/shm and lib/capture.
import path from "path";
import nodeGypBuild from "node-gyp-build";

export interface NativeFrame {
  data: Buffer;
  seq: number;
  generation: number;
  realtimeNs: number;
  monotonicNs: number;
  missed: number;
  resynced: boolean;
  meta: string;
}

export interface NativeRingWriterOptions {
  slots: number;
  slotSize: number;
  contentType: string;
  mode: number;
  keep: boolean;
  maxBytes: number;
}

export interface NativeReaderStatus {
  pid: number;
  lastSeq: number;
  behind: number;
  missed: number;
  idleMs: number;
}

export interface NativeWriterInfo {
  open: boolean;
  name?: string;
  seq?: number;
  generation?: number;
  slots?: number;
  slotSize?: number;
  tookOver?: boolean;
}

export interface NativeRingWriter {
  write(payload: Buffer, meta?: string, realtimeNs?: number, monotonicNs?: number): number;
  readers(): NativeReaderStatus[];
  setContentType(contentType: string): void;
  info(): NativeWriterInfo;
  close(unlink?: boolean): void;
}

export interface NativeReaderInfo {
  open: boolean;
  contentType?: string;
  generation?: number;
  writeSeq?: number;
  writerAlive?: boolean;
  replaced?: boolean;
  slots?: number;
  slotSize?: number;
}

export interface NativeRingReader {
  tryRead(): NativeFrame | null;
  latest(): NativeFrame | null;
  info(): NativeReaderInfo;
  close(): void;
}

export type NativeSubscriptionEvent =
  | ({ type: "frame" } & NativeFrame)
  | { type: "state"; state: "waiting" | "attached"; contentType?: string }
  | { type: "error"; message: string };

export interface NativeRingSubscription {
  stop(): void;
}

export interface NativeUeventMonitor {
  readonly group: "udev" | "kernel";
  stop(): void;
}

export interface NativeAlsaOptions {
  device: string;
  rate: number;
  channels: number;
  format: "S16_LE" | "S32_LE" | "FLOAT_LE";
  chunkFrames: number;
  periodFrames: number;
  bufferFrames: number;
  /** Chunks handed over together: the thread holds complete chunks until it has this many. */
  batch?: number;
  /** Hand chunks to JavaScript at all (false: a ring only). */
  chunks: boolean;
  /** With their samples (false: levels only). */
  payload: boolean;
  /** Chunks queued for JavaScript before the oldest are dropped. */
  queue: number;
  /** Where the busy check looks for the process holding the device (tests). */
  procRoot?: string;
  ring?: { name: string; slots: number; mode: number; keep: boolean; maxBytes?: number };
  /** Reused for every chunks event's rows instead of a new array each time. */
  rows?: Float64Array;
  /** Chunks count against `queue` until ack() says JavaScript is done with them. */
  ack?: boolean;
}

/** The first argument of each call to an AlsaSubscription's callback. */
export const ALSA_EVENT = { chunks: 0, running: 1, disconnected: 2, error: 3 } as const;

/**
 * Called with plain arguments, one call per event:
 * - chunks: consecutive chunks read together. `info` holds one row per chunk:
 *   seq, monotonicNs, realtimeMs, readNs, overruns, then rmsDbfs and peakDbfs
 *   per channel; it is the `rows` array when one was given, valid only during
 *   the call. The chunks' samples are back to back in `block` from byte
 *   `offset`: a block shared by consecutive deliveries, which JavaScript
 *   owns (payloads are slices of it).
 * - running: the device is open (again, when `resumed`).
 * - disconnected: it went away; the capture waits for it.
 * - error: it cannot be opened or read (code: ENOLIB, ENODEV, EBUSY, ...).
 */
export interface NativeAlsaHandler {
  (
    kind: typeof ALSA_EVENT.chunks,
    count: number,
    dropped: number,
    info: Float64Array,
    block: ArrayBuffer | undefined,
    offset: number | undefined,
  ): void;
  (kind: typeof ALSA_EVENT.running, periodFrames: number, bufferFrames: number, resumed: boolean): void;
  (kind: typeof ALSA_EVENT.disconnected, message: string): void;
  (kind: typeof ALSA_EVENT.error, code: string, message: string): void;
}

export interface NativeAlsaStats {
  chunks: number;
  dropped: number;
  overruns: number;
  ringFrames: number;
  rmsDbfs: number[];
  peakDbfs: number[];
}

export interface NativeAlsaSubscription {
  stop(): void;
  ack(chunks: number): void;
  stats(): NativeAlsaStats;
}

export interface NativeAlsaDeviceList {
  library: string;
  pcms: Array<{ name: string; description: string; direction: "capture" | "playback" | "both" }>;
  cards: Array<{
    index: number;
    id: string;
    name: string;
    longname: string;
    captureDevices: Array<{ device: number; name: string }>;
  }>;
}

export interface NativeV4l2Options {
  device: string;
  /** "" keeps the camera's current format. */
  fourcc: string;
  width: number;
  height: number;
  /** The frame rate as a fraction; 0 keeps the camera's. */
  fpsNumerator: number;
  fpsDenominator: number;
  buffers: number;
  /** Device paths to search besides /dev/video* (a camera that came back elsewhere). */
  extraPaths: string[];
  /** Where the busy check looks for the process holding the camera (tests). */
  procRoot?: string;
  controls: Array<{ name: string; value: number | boolean | string }>;
  delivery: "every" | "throttle" | "snapshot" | "meta" | "none";
  /** Messages per second for "throttle" and "meta" (0: every frame). */
  rate: number;
  /** Frames waiting for JavaScript before the oldest are dropped. */
  queue: number;
  /** Encode raw frames as JPEG (libturbojpeg) before they reach JavaScript. */
  jpeg: boolean;
  quality: number;
  ring?: { name: string; slots: number; slotSize?: number; mode: number; keep: boolean; zeroCopy: boolean; maxBytes?: number };
  /** Reused for every frame's row (V4L2_FRAME_ROW.length numbers) instead of a new array each time. */
  rows?: Float64Array;
}

export interface NativeV4l2Running {
  type: "state";
  state: "running";
  resumed: boolean;
  path: string;
  card: string;
  busInfo: string;
  format: string;
  fourcc: string;
  width: number;
  height: number;
  stride: number;
  sizeimage: number;
  fpsNumerator: number;
  fpsDenominator: number;
  /** "mmap": driver buffers, copied; "userptr": blocks the driver fills and JavaScript keeps; "ring": the ring's slots. */
  memory: "mmap" | "userptr" | "ring";
  buffers: number;
}

/** Where each number of a frame's row is (native/src/v4l2_binding.cc kFrameRowLength). */
export const V4L2_FRAME_ROW = {
  seq: 0,
  monotonicNs: 1,
  realtimeMs: 2,
  dqbufNs: 3,
  /** As the camera delivered the frame (before any JPEG encoding). */
  bytes: 4,
  dropped: 5,
  width: 6,
  height: 7,
  stride: 8,
  /** The pixel format's V4L2 code (four characters, little-endian). */
  fourcc: 9,
  /** 1 when the frame was encoded as JPEG here. */
  jpeg: 10,
  encodeNs: 11,
  length: 12,
} as const;

export const V4L2_EVENT = { frame: 0, other: 1 } as const;

/**
 * Called once per event with plain arguments: a frame as its row of numbers
 * (the `rows` array when one was given, valid only during the call), its
 * bytes (none for metadata-only delivery) and the snapshot requests it
 * answers; anything else as an object.
 */
export interface NativeV4l2Handler {
  (kind: typeof V4L2_EVENT.frame, row: Float64Array, data: Buffer | undefined, snapshots: number[] | undefined): void;
  (kind: typeof V4L2_EVENT.other, event: NativeV4l2Event): void;
}

export type NativeV4l2Event =
  | NativeV4l2Running
  | { type: "state"; state: "disconnected" | "waiting"; code: string; message: string }
  | { type: "error" | "warning"; code: string; message: string };

export interface NativeV4l2Stats {
  frames: number;
  delivered: number;
  dropped: number;
  lost: number;
  ringFrames: number;
  encoded: number;
  encodeMs: number;
  captured?: number;
  errors?: number;
  restarts?: number;
  memory?: "" | "mmap" | "userptr" | "ring";
  /** Frame blocks the driver filled that came from the pool, and that were allocated afresh. */
  poolHits?: number;
  poolMisses?: number;
  /** The capture thread's id (for per-thread CPU figures). */
  threadId?: number;
}

export interface NativeV4l2Control {
  id: number;
  name: string;
  label: string;
  type: string;
  min: number;
  max: number;
  step: number;
  default: number;
  value?: number;
  inactive: boolean;
  readOnly: boolean;
  menu?: Array<{ value: number; label: string }>;
}

export interface NativeV4l2ControlResult {
  name: string;
  id: number;
  ok: boolean;
  value?: number;
  code?: string;
  message?: string;
}

export interface NativeV4l2Subscription {
  stop(): void;
  stats(): NativeV4l2Stats;
  snapshot(id: number): void;
  setControls(controls: Array<{ name: string; value: number | boolean | string }>): Promise<{ open: boolean; results: NativeV4l2ControlResult[] }>;
  controls(): Promise<{ open: boolean; controls: NativeV4l2Control[] }>;
}

export interface NativeV4l2Description {
  path: string;
  driver: string;
  card: string;
  busInfo: string;
  links: string[];
  current: { fourcc: string; width: number; height: number };
  formats: Array<{
    fourcc: string;
    name: string;
    description: string;
    compressed: boolean;
    emulated: boolean;
    sizes: Array<{
      width: number;
      height: number;
      intervals: Array<[number, number]>;
      stepwise?: { minWidth: number; maxWidth: number; stepWidth: number; minHeight: number; maxHeight: number; stepHeight: number };
      intervalRange?: { min: number; max: number };
    }>;
  }>;
  controls: NativeV4l2Control[];
}

export interface NativeV4l2Listed {
  path: string;
  driver?: string;
  card?: string;
  busInfo?: string;
  capture?: boolean;
  meta?: boolean;
  links?: string[];
  code?: string;
  error?: string;
}

export interface NativeAddon {
  platformSupported: boolean;
  V4l2Subscription: new (options: NativeV4l2Options, onEvent: NativeV4l2Handler) => NativeV4l2Subscription;
  v4l2Describe(path: string, options?: { extraPaths?: string[]; procRoot?: string }): Promise<NativeV4l2Description>;
  v4l2List(options?: { extraPaths?: string[]; procRoot?: string }): Promise<NativeV4l2Listed[]>;
  /** Cameras open now; subscriptions with the same device and settings share one. */
  v4l2ActiveCaptures(): number;
  v4l2JpegStatus(): { available: boolean; library: string; error?: string };
  AlsaSubscription: new (options: NativeAlsaOptions, onEvent: NativeAlsaHandler) => NativeAlsaSubscription;
  alsaDevices(): Promise<NativeAlsaDeviceList>;
  /** Captures open now; several subscriptions with the same settings share one. */
  alsaActiveCaptures(): number;
  RingWriter: new (name: string, options: NativeRingWriterOptions) => NativeRingWriter;
  RingReader: new (name: string, options?: { fromOldest?: boolean }) => NativeRingReader;
  RingSubscription: new (
    name: string,
    onEvents: (events: NativeSubscriptionEvent[]) => void,
    options: { queue: number; fromOldest?: boolean },
  ) => NativeRingSubscription;
  /** Absent from builds without netlink (not Linux). */
  UeventMonitor?: new (
    onMessages: (messages: Buffer[], dropped: number) => void,
    options: { group: "auto" | "udev" | "kernel" },
  ) => NativeUeventMonitor;
  monotonicNowNs(): number;
  ringNameValid(name: string): boolean;
  metaCapacity: number;
  headerSize: number;
  slotHeaderSize: number;
}

/** An error thrown by the addon carries a short code such as "EBUSY". */
export interface NativeError extends Error {
  code?: string;
}

let cached: NativeAddon | undefined;

export function addon(): NativeAddon {
  if (!cached) cached = nodeGypBuild(path.join(__dirname, "..", "..")) as NativeAddon;
  return cached;
}
