// Camera capture through the addon's V4L2 thread: option checks that give a
// sentence a user understands, device ids and "auto" resolved to a concrete
// device and format, and native frames turned into msg.frame objects.
import { EventEmitter } from "events";
import {
  addon,
  NativeError,
  NativeV4l2Control,
  NativeV4l2ControlResult,
  NativeV4l2Description,
  NativeV4l2Event,
  NativeV4l2Listed,
  NativeV4l2Options,
  NativeV4l2Stats,
  NativeV4l2Subscription,
  V4L2_EVENT,
  V4L2_FRAME_ROW,
} from "../native";
import { checkRingName, parseRingMode } from "../shm/names";
import { CameraFormat, chooseFormat, formatOfCode, FormatChoice, fourccOf, nameOfFourcc } from "./v4l2-formats";
import { isBlank, numberOf, whole } from "./options";

export const DELIVERIES = ["every", "throttle", "snapshot", "ring"] as const;
export type Delivery = (typeof DELIVERIES)[number];

/** msg.frame: one camera frame and how it was captured. */
export interface FrameInfo {
  /** From 0 at the capture's first frame; a gap is a frame the camera or driver lost. */
  seq: number;
  /** Wall-clock capture time, ms since 1970. */
  ts: number;
  /** The same instant on CLOCK_MONOTONIC, the clock audio chunks use too. */
  monotonicNs: number;
  width: number;
  height: number;
  /** "MJPEG", "YUYV", "NV12", "RGB24", "GREY", "H264", or "JPEG" for frames this node encoded. */
  format: string;
  /** Bytes per row of a raw format; 0 for compressed ones. */
  stride: number;
  bytes: number;
  /** Frames lost since the node started: by the camera, and because the flow was behind. */
  dropped: number;
}

export interface VideoFrame {
  payload?: Buffer;
  frame: FrameInfo;
  /** CLOCK_MONOTONIC when the capture thread dequeued the frame (for latency figures). */
  dqbufNs: number;
  /** Time the JPEG encoder spent on it, when it encoded it. */
  encodeNs?: number;
}

/** What a user (or a node's editor) sets. Strings are accepted as the editor stores them. */
export interface V4l2CaptureOptions {
  /** A path (/dev/video0, a /dev/v4l/by-id link) or a device-detect id. */
  device?: unknown;
  /** "auto", a format name (MJPEG, YUYV, NV12, RGB24, GREY, H264) or a fourcc. */
  format?: unknown;
  /** 0 or empty: 640x480, or the nearest size the camera has. */
  width?: unknown;
  height?: unknown;
  /** 0 or empty: the highest rate at that size. */
  fps?: unknown;
  buffers?: unknown;
  delivery?: unknown;
  /** Messages per second for "throttle"; for "ring", metadata messages per second (0: one per frame). */
  rate?: unknown;
  ring?: unknown;
  ringSlots?: unknown;
  /** "600", "640" or "660". */
  ringMode?: unknown;
  ringKeep?: boolean;
  /** Let the driver write straight into the ring's slots where it can (default true). */
  zeroCopy?: boolean;
  /** With "ring": send each frame's metadata to JavaScript (default true). */
  metadata?: boolean;
  /** Frames waiting for the flow before the oldest are dropped. */
  queue?: unknown;
  /** Encode raw frames as JPEG before they reach the flow. */
  jpeg?: boolean;
  quality?: unknown;
  /** Controls set at every start: { brightness: 10, exposure_auto: "Manual Mode" }, or that object as JSON. */
  controls?: unknown;
  /** Device paths to search besides /dev/video* (default: $DEVPLANE_V4L2_DEVICES, comma-separated). */
  extraPaths?: string[];
  /** Where the busy check looks for the process holding the camera. */
  procRoot?: string;
}

export type ControlValue = number | boolean | string;

export interface CaptureSettings {
  device: string;
  /** "auto" or a format name. */
  format: string;
  /** "" for auto. */
  fourcc: string;
  width: number;
  height: number;
  fps: number;
  buffers: number;
  delivery: Delivery;
  rate: number;
  ring?: { name: string; slots: number; mode: number; keep: boolean; zeroCopy: boolean };
  metadata: boolean;
  queue: number;
  jpeg: boolean;
  quality: number;
  controls: Array<{ name: string; value: ControlValue }>;
  extraPaths: string[];
  procRoot?: string;
}

export const DEFAULTS = { format: "auto", buffers: 4, delivery: "every" as Delivery, rate: 5, ringSlots: 8, quality: 85 };

/** Extra device paths from $DEVPLANE_V4L2_DEVICES (devices outside /dev, such as test fakes). */
export function defaultExtraPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.DEVPLANE_V4L2_DEVICES ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.startsWith("/"));
}

export function checkDevice(value: unknown): string {
  const device = typeof value === "string" ? value.trim() : "";
  // eslint-disable-next-line no-control-regex
  if (device === "" || device.length > 4096 || /[\x00-\x1f\x7f]/.test(device) || (!device.startsWith("/") && device.includes("/"))) {
    throw new RangeError(
      `device must be a camera path such as /dev/video0 or /dev/v4l/by-id/…, or a device id from device-detect (got ${JSON.stringify(value)})`,
    );
  }
  return device;
}

export function parseControls(value: unknown): Array<{ name: string; value: ControlValue }> {
  if (isBlank(value)) return [];
  let v = value;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      throw new RangeError(`controls must be a JSON object such as {"brightness": 10} (got ${JSON.stringify(value)})`);
    }
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new RangeError(`controls must be an object such as {"brightness": 10, "exposure_auto": "Manual Mode"}`);
  }
  return Object.entries(v as Record<string, unknown>).map(([name, val]) => {
    if (name.trim() === "") throw new RangeError("a control needs a name");
    if (typeof val === "number" ? !Number.isInteger(val) : typeof val !== "boolean" && typeof val !== "string") {
      throw new RangeError(`control ${name} needs a whole number, true/false or a menu entry (got ${JSON.stringify(val)})`);
    }
    return { name: name.trim(), value: val as ControlValue };
  });
}

export function checkCaptureOptions(o: V4l2CaptureOptions): CaptureSettings {
  const device = checkDevice(o.device);
  const fourcc = fourccOf(isBlank(o.format) ? "auto" : String(o.format));
  const width = whole(o.width, "width", 0, 16384, 0);
  const height = whole(o.height, "height", 0, 16384, 0);
  if ((width === 0) !== (height === 0)) throw new RangeError("give both width and height, or neither");
  const fps = numberOf(o.fps, 0);
  if (!Number.isFinite(fps) || fps < 0 || fps > 1000) throw new RangeError(`fps must be 0 (auto) to 1000 (got ${JSON.stringify(o.fps)})`);
  const buffers = whole(o.buffers, "buffers", 2, 32, DEFAULTS.buffers);
  const delivery = (isBlank(o.delivery) ? DEFAULTS.delivery : o.delivery) as Delivery;
  if (!(DELIVERIES as readonly unknown[]).includes(delivery)) {
    throw new RangeError(`delivery must be every, throttle, snapshot or ring (got ${JSON.stringify(o.delivery)})`);
  }
  const rate = numberOf(o.rate, DEFAULTS.rate);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1000 || (delivery === "throttle" && rate <= 0)) {
    throw new RangeError(`rate must be ${delivery === "throttle" ? "above 0" : "0"} to 1000 messages per second (got ${JSON.stringify(o.rate)})`);
  }
  let ring: CaptureSettings["ring"];
  if (delivery === "ring") {
    if (isBlank(o.ring)) throw new RangeError("ring delivery needs a ring name");
    ring = {
      name: checkRingName(typeof o.ring === "string" ? o.ring.trim() : o.ring),
      slots: whole(o.ringSlots, "ring slots", 1, 4096, DEFAULTS.ringSlots),
      mode: parseRingMode(o.ringMode),
      keep: o.ringKeep === true,
      zeroCopy: o.zeroCopy !== false,
    };
  }
  const queueDefault = delivery === "throttle" ? 2 : delivery === "ring" ? 64 : 8;
  return {
    device,
    format: fourcc ? nameOfFourcc(fourcc) : "auto",
    fourcc,
    width,
    height,
    fps,
    buffers,
    delivery,
    rate,
    ring,
    metadata: o.metadata !== false,
    queue: whole(o.queue, "queue", 1, 1000, queueDefault),
    jpeg: o.jpeg === true,
    quality: whole(o.quality, "JPEG quality", 1, 100, DEFAULTS.quality),
    controls: parseControls(o.controls),
    extraPaths: o.extraPaths ?? defaultExtraPaths(),
    procRoot: o.procRoot,
  };
}

/** A frame rate as the fraction V4L2 takes: 30 → 30/1, 29.97 → 30000/1001. */
export function fpsFraction(fps: number): [number, number] {
  if (fps <= 0) return [0, 0];
  if (Number.isInteger(fps)) return [fps, 1];
  const ntsc = Math.round(fps * 1.001);
  if (Math.abs((ntsc * 1000) / 1001 - fps) < 0.01) return [ntsc * 1000, 1001];
  return [Math.round(fps * 1000), 1000];
}

export interface Negotiation {
  path: string;
  card: string;
  busInfo: string;
  format: string;
  fourcc: string;
  width: number;
  height: number;
  stride: number;
  fps: number;
  memory: "mmap" | "userptr" | "ring";
  buffers: number;
  resumed: boolean;
}

export type CameraState =
  | ({ state: "running" } & Negotiation)
  | { state: "disconnected"; message: string }
  | { state: "waiting"; code: string; message: string };

/**
 * A capture failure. code: ENODEV (absent), EBUSY (another program holds
 * it), EACCES, ENOTCAPTURE (not a video capture node), EINVAL (settings the
 * camera cannot do), ENOSPC (USB bandwidth), ENOCONTROL/EINACTIVE/ERANGE
 * (controls), EJPEG, EIO, or a ring's code.
 */
export class V4l2CaptureError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly device: string,
  ) {
    super(message);
    this.name = "V4l2CaptureError";
  }
}

export interface CaptureEvents {
  frame: [VideoFrame];
  state: [CameraState];
  error: [V4l2CaptureError];
  warning: [string];
}

export type ControlInfo = NativeV4l2Control;
export type ControlResult = NativeV4l2ControlResult;

interface Pending {
  resolve: (f: VideoFrame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Capture from one camera. Several instances with the same device and
 * settings share one open device inside the addon, each with its own delivery.
 */
export class V4l2Capture extends EventEmitter<CaptureEvents> {
  readonly settings: CaptureSettings;
  private sub: NativeV4l2Subscription | undefined;
  /** Every frame's numbers arrive in this one array. */
  private readonly rows = new Float64Array(V4L2_FRAME_ROW.length);
  private active = false;
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private negotiated: Negotiation | undefined;
  private path: string | undefined;
  private choice: FormatChoice | undefined;
  private nextSnapshot = 0;
  private readonly snapshots = new Map<number, Pending>();
  private readonly unsent: number[] = [];

  constructor(options: V4l2CaptureOptions) {
    super();
    this.settings = checkCaptureOptions(options);
  }

  /** True between start() and stop(), whether or not the camera is streaming now. */
  get running(): boolean {
    return this.active;
  }

  /** What the camera streams now, once it does. */
  get format(): Negotiation | undefined {
    return this.negotiated;
  }

  /** How "auto" was resolved, when it was. */
  get chosen(): FormatChoice | undefined {
    return this.choice;
  }

  /** Opens the camera when it is (or becomes) available; problems arrive as events. */
  start(): void {
    if (this.active) return;
    this.active = true;
    const gen = ++this.generation;
    void this.open(gen);
  }

  /** Closes the camera (the last user of a shared one stops its thread before this returns). */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const sub = this.sub;
    this.sub = undefined;
    this.negotiated = undefined;
    sub?.stop();
    for (const [id, p] of this.snapshots) {
      clearTimeout(p.timer);
      p.reject(new V4l2CaptureError("ECLOSED", "the capture stopped before a frame came", this.settings.device));
      this.snapshots.delete(id);
    }
    this.unsent.length = 0;
  }

  stats(): NativeV4l2Stats | undefined {
    return this.sub?.stats();
  }

  /**
   * The next frame. With "snapshot" delivery only the frames asked for leave
   * the capture thread; with "every" and "throttle" it is the next one delivered.
   */
  snapshot(timeoutMs = 5000): Promise<VideoFrame> {
    const device = this.settings.device;
    if (!this.active) return Promise.reject(new V4l2CaptureError("ECLOSED", "the capture is stopped", device));
    if (this.settings.delivery === "ring") {
      return Promise.reject(new V4l2CaptureError("EINVAL", "frames go to the ring only; read the ring for a snapshot", device));
    }
    const id = ++this.nextSnapshot;
    return new Promise<VideoFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.snapshots.delete(id);
        reject(new V4l2CaptureError("ETIMEDOUT", `no frame from camera ${device} within ${timeoutMs / 1000} s`, device));
      }, timeoutMs);
      this.snapshots.set(id, { resolve, reject, timer });
      if (this.settings.delivery === "snapshot") {
        if (this.sub) this.sub.snapshot(id);
        else this.unsent.push(id);
      }
    });
  }

  /**
   * Sets controls in the order given and reads each back. They are also kept
   * for the next start or reopen (a replugged camera starts from defaults).
   */
  async setControls(values: Record<string, ControlValue> | Array<{ name: string; value: ControlValue }>): Promise<{ applied: boolean; results: ControlResult[] }> {
    const list = Array.isArray(values) ? values : parseControls(values);
    for (const c of list) {
      const i = this.settings.controls.findIndex((x) => x.name === c.name);
      if (i >= 0) this.settings.controls[i] = c;
      else this.settings.controls.push(c);
    }
    if (!this.sub) return { applied: false, results: [] };
    const r = await this.sub.setControls(list);
    return { applied: r.open, results: r.results };
  }

  /** The camera's controls with their current values. */
  async listControls(): Promise<ControlInfo[]> {
    if (this.sub) {
      const r = await this.sub.controls();
      if (r.open) return r.controls;
    }
    const path = this.path ?? (await resolveDevice(this.settings.device));
    if (!path) throw new V4l2CaptureError("ENODEV", `camera ${this.settings.device} is not connected`, this.settings.device);
    return (await describeCamera(path, this.settings)).controls;
  }

  private retry(gen: number, ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (gen === this.generation) void this.open(gen);
    }, ms);
  }

  private needsNegotiation(): boolean {
    const s = this.settings;
    return s.fourcc === "" || s.width === 0 || s.fps === 0;
  }

  private async open(gen: number): Promise<void> {
    const s = this.settings;
    let path: string | undefined;
    try {
      path = await resolveDevice(s.device);
    } catch (err) {
      if (gen !== this.generation) return;
      this.fail(new V4l2CaptureError("EIO", `cannot look up device ${s.device}: ${(err as Error).message}`, s.device));
      this.retry(gen, 2000);
      return;
    }
    if (gen !== this.generation) return;
    if (!path) {
      this.emitState({ state: "waiting", code: "ENODEV", message: `camera ${s.device} is not connected; waiting for it` });
      this.retry(gen, 1000);
      return;
    }
    this.path = path;
    let choice: FormatChoice | undefined;
    if (this.needsNegotiation()) {
      let desc: CameraDescription;
      try {
        desc = await describeCamera(path, s);
      } catch (err) {
        if (gen !== this.generation) return;
        const e = err as NativeError;
        const code = e.code ?? "EIO";
        if (code === "ENODEV") {
          this.emitState({ state: "waiting", code, message: `${e.message}; waiting for it` });
          this.retry(gen, 250);
        } else {
          this.fail(new V4l2CaptureError(code, e.message, s.device));
          // A node that is not a capture node stays one; the rest may change.
          if (code !== "ENOTCAPTURE") this.retry(gen, code === "EBUSY" ? 2000 : 5000);
        }
        return;
      }
      if (gen !== this.generation) return;
      try {
        choice = chooseFormat(desc.formats, {
          format: s.fourcc || "auto",
          width: s.width,
          height: s.height,
          fps: s.fps,
          purpose: s.delivery === "ring" ? "raw" : "preview",
        });
      } catch (err) {
        this.fail(new V4l2CaptureError("EINVAL", `camera ${path} ("${desc.card}"): ${(err as Error).message}`, s.device));
        return;
      }
      this.choice = choice;
    }
    this.subscribe(path, choice);
  }

  private subscribe(path: string, choice: FormatChoice | undefined): void {
    const s = this.settings;
    const [fpsNumerator, fpsDenominator] = choice ? [choice.fpsNumerator, choice.fpsDenominator] : fpsFraction(s.fps);
    const options: NativeV4l2Options = {
      device: path,
      fourcc: choice?.fourcc ?? s.fourcc,
      width: choice?.width ?? s.width,
      height: choice?.height ?? s.height,
      fpsNumerator,
      fpsDenominator,
      buffers: s.buffers,
      extraPaths: s.extraPaths,
      procRoot: s.procRoot,
      controls: s.controls,
      delivery: s.delivery === "ring" ? (s.metadata ? "meta" : "none") : s.delivery,
      rate: s.delivery === "every" || s.delivery === "snapshot" ? 0 : s.rate,
      queue: s.queue,
      jpeg: s.jpeg,
      quality: s.quality,
      ring: s.ring,
      rows: this.rows,
    };
    try {
      this.sub = new (addon().V4l2Subscription)(options, (kind: number, a: unknown, b?: Buffer, c?: number[]) => this.onNative(kind, a, b, c));
    } catch (err) {
      const e = err as NativeError;
      this.fail(new V4l2CaptureError(e.code ?? "EIO", e.message, s.device));
      return;
    }
    for (const id of this.unsent.splice(0)) this.sub.snapshot(id);
  }

  private onNative(kind: number, a: unknown, data: Buffer | undefined, snapshots: number[] | undefined): void {
    if (!this.sub) return;
    // This runs from the addon's wake-up callback, where an exception would
    // be uncaught: a listener's failure becomes an error event.
    try {
      if (kind === V4L2_EVENT.frame) this.onFrame(a as Float64Array, data, snapshots);
      else this.onEvent(a as NativeV4l2Event);
    } catch (err) {
      this.fail(new V4l2CaptureError("ELISTENER", (err as Error).message, this.settings.device));
    }
  }

  private onEvent(ev: NativeV4l2Event): void {
    if (ev.type === "state") {
      if (ev.state === "running") {
        this.negotiated = {
          path: ev.path,
          card: ev.card,
          busInfo: ev.busInfo,
          format: ev.format,
          fourcc: ev.fourcc,
          width: ev.width,
          height: ev.height,
          stride: ev.stride,
          fps: ev.fpsDenominator ? ev.fpsNumerator / ev.fpsDenominator : 0,
          memory: ev.memory,
          buffers: ev.buffers,
          resumed: ev.resumed,
        };
        this.emitState({ state: "running", ...this.negotiated });
      } else if (ev.state === "disconnected") {
        this.negotiated = undefined;
        this.emitState({ state: "disconnected", message: ev.message });
      } else {
        this.emitState({ state: "waiting", code: ev.code, message: ev.message });
      }
    } else if (ev.type === "warning") {
      if (this.listenerCount("warning") > 0) this.emit("warning", ev.message);
    } else {
      this.fail(new V4l2CaptureError(ev.code, ev.message, this.settings.device));
    }
  }

  private onFrame(row: Float64Array, data: Buffer | undefined, snapshots: number[] | undefined): void {
    const R = V4L2_FRAME_ROW;
    const jpeg = row[R.jpeg] === 1;
    const frame: VideoFrame = {
      payload: data,
      frame: {
        seq: row[R.seq],
        ts: row[R.realtimeMs],
        monotonicNs: row[R.monotonicNs],
        width: row[R.width],
        height: row[R.height],
        format: jpeg ? "JPEG" : formatOfCode(row[R.fourcc]),
        stride: jpeg ? 0 : row[R.stride],
        bytes: data ? data.length : row[R.bytes],
        dropped: row[R.dropped],
      },
      dqbufNs: row[R.dqbufNs],
      ...(jpeg ? { encodeNs: row[R.encodeNs] } : {}),
    };
    if (this.settings.delivery === "snapshot") {
      for (const id of snapshots ?? []) this.settle(id, frame);
      return;
    }
    for (const id of [...this.snapshots.keys()]) this.settle(id, frame);
    this.emit("frame", frame);
  }

  private settle(id: number, frame: VideoFrame): void {
    const p = this.snapshots.get(id);
    if (!p) return;
    this.snapshots.delete(id);
    clearTimeout(p.timer);
    p.resolve(frame);
  }

  private emitState(s: CameraState): void {
    this.emit("state", s);
  }

  private fail(err: V4l2CaptureError): void {
    // An "error" event with no listener throws; a capture must never take its process down.
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }
}

// ---------------------------------------------------------------- cameras

export interface CameraDescription extends Omit<NativeV4l2Description, "formats"> {
  formats: CameraFormat[];
}

/** A camera's formats (with sizes and rates) and controls. Runs on a worker thread. */
export async function describeCamera(path: string, options: { extraPaths?: string[]; procRoot?: string } = {}): Promise<CameraDescription> {
  const d = await addon().v4l2Describe(path, { extraPaths: options.extraPaths ?? defaultExtraPaths(), procRoot: options.procRoot });
  return { ...d, formats: d.formats.map((f) => ({ ...f, name: nameOfFourcc(f.fourcc) })) };
}

export interface CameraListEntry extends NativeV4l2Listed {
  /** The device-detect id of the USB device the node belongs to, when known. */
  id?: string;
  /** Its product name, when known. */
  product?: string;
}

/** Device ids (device-detect's) of the video nodes sysfs knows; empty where sysfs says nothing. */
async function videoOwners(): Promise<Map<string, { id: string; product?: string }>> {
  const owners = new Map<string, { id: string; product?: string }>();
  try {
    const { DeviceDetector } = await import("../devices");
    const detector = new DeviceDetector({ diagnostics: false });
    for (const e of detector.enumerate()) {
      for (const p of [...e.nodes.video, ...e.nodes.videoMetadata]) owners.set(p, { id: e.id, product: e.usb?.product ?? undefined });
    }
  } catch {
    // Without sysfs (a container, a test) cameras are listed by path alone.
  }
  return owners;
}

/** Every video node (capture and metadata), with its camera and stable links. Runs on a worker thread. */
export async function listCameras(extraPaths: string[] = defaultExtraPaths()): Promise<CameraListEntry[]> {
  const [list, owners] = await Promise.all([addon().v4l2List({ extraPaths }), videoOwners()]);
  return list.map((c) => ({ ...c, ...(owners.get(c.path) ?? {}) }));
}

/**
 * The path to open for a device setting: a path as given, or the capture node
 * of the device with this device-detect id (undefined when it is not present).
 */
export async function resolveDevice(device: string): Promise<string | undefined> {
  if (device.startsWith("/")) return device;
  const { DeviceDetector } = await import("../devices");
  const match = new DeviceDetector({ diagnostics: false }).enumerate().find((e) => e.id === device);
  return match?.nodes.video[0];
}

export function jpegStatus(): { available: boolean; library: string; error?: string } {
  return addon().v4l2JpegStatus();
}

export { chooseFormat, fourccOf, nameOfFourcc };
