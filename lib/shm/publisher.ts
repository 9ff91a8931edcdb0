// Writes message payloads into a ring: validation, metadata, content type and
// rate bookkeeping around the native writer.
import { addon, NativeError, NativeReaderStatus, NativeRingWriter } from "../native";
import { capsForMessage, OCTET_STREAM } from "./content-type";
import { checkRingName, parseRingMode } from "./names";
import { RateMeter } from "./rate";

export interface PublisherOptions {
  name: string;
  slots?: number;
  slotSize?: number;
  /** Fixed caps; empty or undefined means "derive from the first msg.frame or msg.audio". */
  contentType?: string;
  /** "600", "640" or "660". */
  mode?: string;
  /** Leave the segment in /dev/shm after close. */
  keep?: boolean;
  /** Upper bound for the whole segment. */
  maxBytes?: number;
}

export interface PublishedFrame {
  name: string;
  seq: number;
  bytes: number;
}

/** What a message contributes to a frame: its payload and the parts kept as metadata. */
export interface PublishInput {
  payload?: unknown;
  topic?: unknown;
  frame?: unknown;
  audio?: unknown;
  meta?: unknown;
}

export type PublishErrorCode = "ENOTBUFFER" | "ETOOBIG" | "EMETA" | "ECLOSED";

export class PublishError extends Error {
  constructor(
    readonly code: PublishErrorCode,
    message: string,
    readonly details: Record<string, string | number> = {},
  ) {
    super(message);
    this.name = "PublishError";
  }
}

export const DEFAULT_SLOTS = 8;
export const DEFAULT_SLOT_SIZE = 4 * 1024 * 1024;
export const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;

function checkCount(value: unknown, what: string, min: number, max: number, fallback: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${what} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return n;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function timestampsOf(input: PublishInput): { realtimeNs?: number; monotonicNs?: number } {
  const info = (input.frame ?? input.audio) as { ts?: unknown; monotonicNs?: unknown } | undefined;
  if (!info || typeof info !== "object") return {};
  const ts = typeof info.ts === "number" && info.ts > 0 ? Math.round(info.ts * 1e6) : undefined;
  const mono = typeof info.monotonicNs === "number" && info.monotonicNs > 0 ? info.monotonicNs : undefined;
  return { realtimeNs: ts, monotonicNs: mono };
}

export class RingPublisher {
  readonly name: string;
  readonly slots: number;
  readonly slotSize: number;
  private writer: NativeRingWriter | undefined;
  private caps: string;
  private readonly fixedCaps: boolean;
  private readonly meter = new RateMeter();

  constructor(options: PublisherOptions) {
    this.name = checkRingName(options.name);
    this.slots = checkCount(options.slots, "slots", 1, 4096, DEFAULT_SLOTS);
    this.slotSize = checkCount(options.slotSize, "slot size", 1, 2 ** 40, DEFAULT_SLOT_SIZE);
    const maxBytes = checkCount(options.maxBytes, "maximum ring size", 1, Number.MAX_SAFE_INTEGER, DEFAULT_MAX_BYTES);
    const mode = parseRingMode(options.mode);
    this.fixedCaps = typeof options.contentType === "string" && options.contentType.trim() !== "";
    this.caps = this.fixedCaps ? (options.contentType as string).trim() : OCTET_STREAM;
    this.writer = new (addon().RingWriter)(this.name, {
      slots: this.slots,
      slotSize: this.slotSize,
      contentType: this.caps,
      mode,
      keep: options.keep === true,
      maxBytes,
    });
  }

  get contentType(): string {
    return this.caps;
  }

  get seq(): number {
    return this.writer?.info().seq ?? 0;
  }

  get generation(): number {
    return this.writer?.info().generation ?? 0;
  }

  /** True when this writer took over a ring whose previous writer had died or closed it. */
  get tookOver(): boolean {
    return this.writer?.info().tookOver ?? false;
  }

  /**
   * Writes one frame. Every check happens before the ring is touched, so a
   * rejected message leaves no partial frame behind.
   */
  publish(input: PublishInput): PublishedFrame {
    const writer = this.writer;
    if (!writer) throw new PublishError("ECLOSED", `ring ${this.name} is closed`);
    const payload = input.payload;
    if (!Buffer.isBuffer(payload)) {
      throw new PublishError("ENOTBUFFER", `msg.payload must be a Buffer (got ${typeName(payload)})`, {
        type: typeName(payload),
      });
    }
    if (payload.length > this.slotSize) {
      throw new PublishError(
        "ETOOBIG",
        `payload is ${payload.length} bytes but a slot holds ${this.slotSize} bytes`,
        { bytes: payload.length, slot: this.slotSize },
      );
    }
    const meta = this.metadata(input);
    if (!this.fixedCaps) {
      const caps = capsForMessage(input);
      if (caps && caps !== this.caps) {
        writer.setContentType(caps);
        this.caps = caps;
      }
    }
    const { realtimeNs, monotonicNs } = timestampsOf(input);
    let seq: number;
    try {
      seq = writer.write(payload, meta, realtimeNs, monotonicNs);
    } catch (err) {
      const e = err as NativeError;
      if (e.code === "ECLOSED") throw new PublishError("ECLOSED", e.message);
      throw err;
    }
    this.meter.tick();
    return { name: this.name, seq, bytes: payload.length };
  }

  private metadata(input: PublishInput): string {
    const meta: Record<string, unknown> = {};
    if (typeof input.topic === "string" && input.topic !== "") meta.topic = input.topic;
    if (input.frame && typeof input.frame === "object") meta.frame = input.frame;
    if (input.audio && typeof input.audio === "object") meta.audio = input.audio;
    if (input.meta && typeof input.meta === "object" && !Array.isArray(input.meta)) meta.meta = input.meta;
    if (Object.keys(meta).length === 0) return "";
    let json: string;
    try {
      json = JSON.stringify(meta);
    } catch (err) {
      throw new PublishError("EMETA", `metadata cannot be written as JSON: ${(err as Error).message}`, {
        bytes: 0,
        max: addon().metaCapacity,
      });
    }
    const bytes = Buffer.byteLength(json);
    const max = addon().metaCapacity;
    if (bytes > max) {
      throw new PublishError("EMETA", `metadata is ${bytes} bytes, at most ${max} fit`, { bytes, max });
    }
    return json;
  }

  /** Frames per second over the last few seconds. */
  fps(): number {
    return this.meter.rate();
  }

  /** Readers attached now; entries of readers that died are freed on the way. */
  readers(): NativeReaderStatus[] {
    return this.writer?.readers() ?? [];
  }

  close(unlink?: boolean): void {
    const writer = this.writer;
    this.writer = undefined;
    writer?.close(unlink);
  }
}
