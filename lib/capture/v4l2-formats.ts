// Camera formats by name, and the choice "auto" makes among what a camera
// offers. Pure functions: the capture asks the camera for its formats, sizes
// and intervals, then decides here.

/** The names msg.frame.format and the node's `format` property use. */
export const FORMAT_NAMES = ["MJPEG", "YUYV", "NV12", "RGB24", "GREY", "H264"] as const;
export type FormatName = (typeof FORMAT_NAMES)[number];

const NAME_TO_FOURCC: Record<string, string> = {
  MJPEG: "MJPG",
  MJPG: "MJPG",
  JPEG: "JPEG",
  YUYV: "YUYV",
  YUY2: "YUYV",
  NV12: "NV12",
  RGB24: "RGB3",
  RGB3: "RGB3",
  BGR24: "BGR3",
  BGR3: "BGR3",
  GREY: "GREY",
  GRAY: "GREY",
  GRAY8: "GREY",
  H264: "H264",
};

const FOURCC_TO_NAME: Record<string, string> = { MJPG: "MJPEG", RGB3: "RGB24", BGR3: "BGR24" };

/** "MJPEG" → "MJPG", "RGB24" → "RGB3"; a fourcc passes through; "auto" and "" → "". */
export function fourccOf(format: string): string {
  const f = format.trim().toUpperCase();
  if (f === "" || f === "AUTO") return "";
  const known = NAME_TO_FOURCC[f];
  if (known) return known;
  if (/^[A-Z0-9 ]{1,4}$/.test(f)) return f;
  throw new RangeError(`format must be auto, ${FORMAT_NAMES.join(", ")} or a fourcc (got ${JSON.stringify(format)})`);
}

/** "MJPG" → "MJPEG", "RGB3" → "RGB24"; other fourccs as they are. */
export function nameOfFourcc(fourcc: string): string {
  const f = fourcc.trim();
  return FOURCC_TO_NAME[f] ?? f;
}

const formatNames = new Map<number, string>();

/** A V4L2 pixel format code as the name msg.frame.format carries ("MJPEG", "YUYV"). */
export function formatOfCode(code: number): string {
  let name = formatNames.get(code);
  if (name === undefined) {
    let text = "";
    for (let i = 0; i < 4; i++) {
      const c = (code >>> (8 * i)) & 0xff;
      text += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?";
    }
    name = nameOfFourcc(text.replace(/ +$/, ""));
    formatNames.set(code, name);
  }
  return name;
}

/** Frames per second of a time-per-frame fraction [numerator, denominator]. */
export function fpsOf(interval: readonly [number, number]): number {
  return interval[0] > 0 ? interval[1] / interval[0] : 0;
}

export interface StepwiseSize {
  minWidth: number;
  maxWidth: number;
  stepWidth: number;
  minHeight: number;
  maxHeight: number;
  stepHeight: number;
}

export interface CameraSize {
  width: number;
  height: number;
  /** Discrete times per frame, [numerator, denominator] seconds. */
  intervals: Array<[number, number]>;
  /** Present when the camera takes any size in a range (width/height are then the largest). */
  stepwise?: StepwiseSize;
  /** Present when the camera takes any interval in a range, in seconds per frame. */
  intervalRange?: { min: number; max: number };
}

export interface CameraFormat {
  fourcc: string;
  name: string;
  description: string;
  compressed: boolean;
  emulated: boolean;
  sizes: CameraSize[];
}

export interface FormatRequest {
  /** "auto", a name from FORMAT_NAMES, or a fourcc. */
  format: string;
  /** 0 or undefined: no preference (640x480, or the nearest the camera has). */
  width?: number;
  height?: number;
  /** 0 or undefined: the highest rate at the chosen size. */
  fps?: number;
  /**
   * What "auto" favours when several formats do the job: "preview" (JPEG,
   * small and shown as is) or "raw" (pixels a program reads directly).
   */
  purpose?: "preview" | "raw";
}

export interface FormatChoice {
  fourcc: string;
  format: string;
  width: number;
  height: number;
  /** The frame rate as a fraction: fpsNumerator / fpsDenominator frames per second. */
  fpsNumerator: number;
  fpsDenominator: number;
  fps: number;
  /** A sentence saying what was chosen and, for "auto", why. */
  why: string;
}

export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FormatError";
  }
}

export const DEFAULT_SIZE = { width: 640, height: 480 };

const PREFERENCE: Record<"preview" | "raw", string[]> = {
  preview: ["MJPG", "YUYV", "NV12", "RGB3", "GREY"],
  raw: ["YUYV", "NV12", "RGB3", "GREY", "MJPG"],
};

/** Bytes of one raw frame (a compressed format's worst case is not known: 0). */
export function rawFrameBytes(fourcc: string, width: number, height: number): number {
  switch (fourcc) {
    case "YUYV":
      return width * height * 2;
    case "NV12":
      return Math.floor((width * height * 3) / 2);
    case "RGB3":
    case "BGR3":
      return width * height * 3;
    case "GREY":
      return width * height;
    default:
      return 0;
  }
}

function roundToStep(v: number, min: number, max: number, step: number): number {
  const s = Math.max(1, step);
  const clamped = Math.min(max, Math.max(min, v));
  return min + Math.round((clamped - min) / s) * s;
}

/** The offered size nearest the wanted one: least difference in area, then the larger. */
function nearestSize(sizes: CameraSize[], width: number, height: number): { size: CameraSize; width: number; height: number } | undefined {
  let best: { size: CameraSize; width: number; height: number; cost: number } | undefined;
  for (const s of sizes) {
    let w = s.width;
    let h = s.height;
    if (s.stepwise) {
      w = Math.min(s.stepwise.maxWidth, roundToStep(width, s.stepwise.minWidth, s.stepwise.maxWidth, s.stepwise.stepWidth));
      h = Math.min(s.stepwise.maxHeight, roundToStep(height, s.stepwise.minHeight, s.stepwise.maxHeight, s.stepwise.stepHeight));
    }
    const cost = Math.abs(w * h - width * height) + Math.abs(w - width) + Math.abs(h - height);
    if (!best || cost < best.cost || (cost === best.cost && w * h > best.width * best.height)) best = { size: s, width: w, height: h, cost };
  }
  return best;
}

/** Intervals at a size, best rate first. */
function intervalsOf(size: CameraSize): Array<[number, number]> {
  const list = [...size.intervals];
  if (size.intervalRange && size.intervalRange.min > 0) {
    // Any rate in the range: offer its ends and the common rates between them.
    const lo = 1 / size.intervalRange.max;
    const hi = 1 / size.intervalRange.min;
    for (const fps of [hi, 60, 50, 30, 25, 15, 10, 5, lo]) if (fps >= lo - 1e-9 && fps <= hi + 1e-9) list.push([1000, Math.round(fps * 1000)]);
  }
  return list.sort((a, b) => fpsOf(b) - fpsOf(a));
}

function pickInterval(size: CameraSize, fps: number | undefined): [number, number] | undefined {
  const list = intervalsOf(size);
  if (list.length === 0) return undefined;
  if (!fps) return list[0];
  let best = list[0];
  for (const iv of list) {
    const d = Math.abs(fpsOf(iv) - fps);
    const bd = Math.abs(fpsOf(best) - fps);
    if (d < bd - 1e-9 || (Math.abs(d - bd) <= 1e-9 && fpsOf(iv) > fpsOf(best))) best = iv;
  }
  return best;
}

function reduce(n: number, d: number): [number, number] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = gcd(n, d) || 1;
  return [n / g, d / g];
}

interface Candidate {
  format: CameraFormat;
  width: number;
  height: number;
  interval: [number, number] | undefined;
  exact: boolean;
  meetsFps: boolean;
  rank: number;
}

/**
 * The format, size and rate to ask for. With a named format, the nearest size
 * and rate in that format. With "auto": among the formats that have the
 * wanted size exactly, those that reach the wanted rate, then by the
 * purpose's preference (JPEG for previews, raw pixels for programs), then by
 * rate. H.264 is never chosen by "auto" (it needs a decoder downstream).
 */
export function chooseFormat(formats: CameraFormat[], request: FormatRequest): FormatChoice {
  if (formats.length === 0) throw new FormatError("the camera lists no video formats");
  const wantFourcc = fourccOf(request.format);
  const width = request.width || DEFAULT_SIZE.width;
  const height = request.height || DEFAULT_SIZE.height;
  const fps = request.fps && request.fps > 0 ? request.fps : undefined;
  const offered = formats.map((f) => nameOfFourcc(f.fourcc)).join(", ");
  let pool: CameraFormat[];
  if (wantFourcc) {
    pool = formats.filter((f) => f.fourcc === wantFourcc);
    if (pool.length === 0) throw new FormatError(`the camera does not offer ${nameOfFourcc(wantFourcc)} (it offers ${offered})`);
  } else {
    pool = formats.filter((f) => f.fourcc !== "H264" && !f.emulated && f.sizes.length > 0);
    if (pool.length === 0) throw new FormatError(`the camera offers no format that "auto" can choose (it offers ${offered}); name one`);
  }
  const order = PREFERENCE[request.purpose ?? "preview"];
  const candidates: Candidate[] = [];
  for (const f of pool) {
    const near = nearestSize(f.sizes, width, height);
    if (!near) continue;
    const interval = pickInterval(near.size, fps);
    const rate = interval ? fpsOf(interval) : 0;
    const rank = order.indexOf(f.fourcc);
    candidates.push({
      format: f,
      width: near.width,
      height: near.height,
      interval,
      exact: near.width === width && near.height === height,
      meetsFps: fps === undefined || !interval || rate >= fps - 0.5,
      rank: rank < 0 ? order.length : rank,
    });
  }
  if (candidates.length === 0) throw new FormatError(`the camera lists no sizes for ${nameOfFourcc(pool[0].fourcc)}`);
  candidates.sort(
    (a, b) =>
      Number(b.exact) - Number(a.exact) ||
      Number(b.meetsFps) - Number(a.meetsFps) ||
      a.rank - b.rank ||
      (b.interval ? fpsOf(b.interval) : 0) - (a.interval ? fpsOf(a.interval) : 0),
  );
  const c = candidates[0];
  const [fpsNumerator, fpsDenominator] = c.interval ? reduce(c.interval[1], c.interval[0]) : [0, 0];
  const rate = fpsDenominator ? fpsNumerator / fpsDenominator : 0;
  const name = nameOfFourcc(c.format.fourcc);
  const rateText = rate ? `${Number(rate.toFixed(2))} fps` : "the camera's rate";
  let why = `${name} ${c.width}x${c.height} at ${rateText}`;
  if (!c.exact) why += ` (nearest to ${width}x${height})`;
  if (fps !== undefined && rate && Math.abs(rate - fps) > 0.5) why += ` (nearest to ${fps} fps)`;
  if (!wantFourcc && candidates.length > 1) why += `, chosen by auto among ${candidates.map((x) => nameOfFourcc(x.format.fourcc)).join(", ")}`;
  return { fourcc: c.format.fourcc, format: name, width: c.width, height: c.height, fpsNumerator, fpsDenominator, fps: rate, why };
}
