// Caps strings (GStreamer syntax) describing what a ring carries, derived from
// the metadata capture nodes attach: msg.frame for video, msg.audio for sound.

export interface FrameInfo {
  format?: string;
  width?: number;
  height?: number;
  stride?: number;
}

export interface AudioInfo {
  format?: string;
  rate?: number;
  channels?: number;
}

export const OCTET_STREAM = "application/octet-stream";

// V4L2 names (as msg.frame.format carries them) to GStreamer raw formats.
const RAW_VIDEO: Record<string, string> = {
  YUYV: "YUY2",
  YUY2: "YUY2",
  UYVY: "UYVY",
  NV12: "NV12",
  NV21: "NV21",
  YU12: "I420",
  I420: "I420",
  RGB24: "RGB",
  RGB3: "RGB",
  BGR24: "BGR",
  BGR3: "BGR",
  GREY: "GRAY8",
  GRAY8: "GRAY8",
  RGBA: "RGBA",
  BGRA: "BGRA",
};

const RAW_AUDIO: Record<string, string> = {
  S16_LE: "S16LE",
  S32_LE: "S32LE",
  FLOAT_LE: "F32LE",
  S16LE: "S16LE",
  S32LE: "S32LE",
  F32LE: "F32LE",
};

function positiveInt(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : undefined;
}

export function videoCaps(frame: FrameInfo): string | undefined {
  const format = typeof frame.format === "string" ? frame.format.toUpperCase() : undefined;
  if (!format) return undefined;
  if (format === "MJPEG" || format === "MJPG" || format === "JPEG") return "image/jpeg";
  if (format === "H264") return "video/x-h264,stream-format=byte-stream";
  const raw = RAW_VIDEO[format];
  if (!raw) return undefined;
  const parts = [`video/x-raw,format=${raw}`];
  const width = positiveInt(frame.width);
  const height = positiveInt(frame.height);
  const stride = positiveInt(frame.stride);
  if (width) parts.push(`width=${width}`);
  if (height) parts.push(`height=${height}`);
  if (stride) parts.push(`stride=${stride}`);
  return parts.join(",");
}

export function audioCaps(audio: AudioInfo): string | undefined {
  const format = typeof audio.format === "string" ? RAW_AUDIO[audio.format.toUpperCase()] : undefined;
  if (!format) return undefined;
  const parts = [`audio/x-raw,format=${format}`];
  const rate = positiveInt(audio.rate);
  const channels = positiveInt(audio.channels);
  if (rate) parts.push(`rate=${rate}`);
  if (channels) parts.push(`channels=${channels}`, "layout=interleaved");
  return parts.join(",");
}

/** The caps for a message, from msg.frame or msg.audio; undefined when neither says. */
export function capsForMessage(msg: { frame?: unknown; audio?: unknown }): string | undefined {
  if (msg.frame && typeof msg.frame === "object") return videoCaps(msg.frame as FrameInfo);
  if (msg.audio && typeof msg.audio === "object") return audioCaps(msg.audio as AudioInfo);
  return undefined;
}

/** Parses "video/x-raw,format=YUY2,width=640" into its media type and fields. */
export function parseCaps(caps: string): { media: string; fields: Record<string, string> } {
  const [media, ...rest] = caps.split(",");
  const fields: Record<string, string> = {};
  for (const part of rest) {
    const eq = part.indexOf("=");
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return { media: (media ?? "").trim(), fields };
}
