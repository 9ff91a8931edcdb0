// Reads a ring into events for the shm-subscribe node, in one of three
// deliveries, and keeps trying while the ring or its writer is missing.
import { EventEmitter } from "events";
import {
  addon,
  NativeError,
  NativeFrame,
  NativeRingReader,
  NativeRingSubscription,
  NativeSubscriptionEvent,
} from "../native";
import { checkRingName } from "./names";
import { RateMeter } from "./rate";

export const DELIVERIES = ["every", "latest", "snapshot"] as const;
export type Delivery = (typeof DELIVERIES)[number];

export interface SubscriberOptions {
  name: string;
  delivery?: Delivery;
  /** Messages per second for "latest". */
  rate?: number;
  /** Frames queued for JavaScript in "every" before the oldest is dropped. */
  queue?: number;
  /** Start with the oldest frame still held instead of the next new one. */
  fromOldest?: boolean;
}

export interface RingFrame {
  data: Buffer;
  seq: number;
  generation: number;
  /** Frames lost since the previous one this subscriber delivered. */
  missed: number;
  realtimeNs: number;
  monotonicNs: number;
  meta: Record<string, unknown>;
  contentType: string;
}

export type SubscriberState = "waiting" | "attached";

export interface SubscriberEvents {
  frame: [RingFrame];
  state: [SubscriberState];
  error: [Error];
}

const ATTACH_POLL_MS = 250;

function parseMeta(meta: string): Record<string, unknown> {
  if (!meta) return {};
  try {
    const v: unknown = JSON.parse(meta);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function checkDelivery(value: unknown): Delivery {
  const v = value === undefined || value === "" ? "every" : value;
  if (!(DELIVERIES as readonly unknown[]).includes(v)) {
    throw new RangeError(`delivery must be every, latest or snapshot (got ${JSON.stringify(value)})`);
  }
  return v as Delivery;
}

export function checkRate(value: unknown): number {
  const n = value === undefined || value === "" ? 10 : Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1000) {
    throw new RangeError(`rate must be more than 0 and at most 1000 messages per second (got ${JSON.stringify(value)})`);
  }
  return n;
}

export class RingSubscriber extends EventEmitter<SubscriberEvents> {
  readonly name: string;
  readonly delivery: Delivery;
  readonly rate: number;
  private readonly queue: number;
  private readonly fromOldest: boolean;
  private subscription: NativeRingSubscription | undefined;
  private reader: NativeRingReader | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stateNow: SubscriberState | undefined;
  private contentType = "";
  private lastFrame: RingFrame | undefined;
  private lastSeq = 0;
  private lastGeneration = 0;
  private lastError = "";
  private readonly meter = new RateMeter();
  private missedRecent = new RateMeter();
  private running = false;

  constructor(options: SubscriberOptions) {
    super();
    this.name = checkRingName(options.name);
    this.delivery = checkDelivery(options.delivery);
    this.rate = checkRate(options.rate);
    this.queue = options.queue ?? 4;
    this.fromOldest = options.fromOldest === true;
  }

  get state(): SubscriberState | undefined {
    return this.stateNow;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.delivery === "every") {
      this.subscription = new (addon().RingSubscription)(this.name, (events) => this.onNative(events), {
        queue: this.queue,
        fromOldest: this.fromOldest,
      });
    } else {
      const period = this.delivery === "latest" ? Math.max(1, Math.round(1000 / this.rate)) : ATTACH_POLL_MS;
      this.poll();
      this.timer = setInterval(() => this.poll(), period);
    }
  }

  /** The newest frame now (or, in "every", the last one delivered); undefined when there is none. */
  snapshot(): RingFrame | undefined {
    if (this.delivery === "every") return this.lastFrame;
    const reader = this.ensureReader();
    if (!reader) return undefined;
    return this.readLatest(reader, true);
  }

  /** Frames per second delivered, and frames lost per second, over the last seconds. */
  stats(): { fps: number; missedPerSecond: number } {
    return { fps: this.meter.rate(), missedPerSecond: this.missedRecent.rate() };
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.subscription?.stop();
    this.subscription = undefined;
    this.reader?.close();
    this.reader = undefined;
    this.lastFrame = undefined;
  }

  private setState(state: SubscriberState): void {
    if (state === this.stateNow) return;
    this.stateNow = state;
    if (state === "attached") this.lastError = "";
    this.emit("state", state);
  }

  private fail(message: string): void {
    // A ring that stays broken would otherwise repeat the same error on every poll.
    if (message === this.lastError) return;
    this.lastError = message;
    // An "error" event with no listener throws; a subscriber must never take its process down.
    if (this.listenerCount("error") > 0) this.emit("error", new Error(message));
  }

  private toFrame(f: NativeFrame): RingFrame {
    return {
      data: f.data,
      seq: f.seq,
      generation: f.generation,
      missed: f.missed,
      realtimeNs: f.realtimeNs,
      monotonicNs: f.monotonicNs,
      meta: parseMeta(f.meta),
      contentType: this.contentType,
    };
  }

  private deliver(frame: RingFrame): void {
    this.lastFrame = frame;
    this.meter.tick();
    if (frame.missed) this.missedRecent.tick(frame.missed);
    this.emit("frame", frame);
  }

  private onNative(events: NativeSubscriptionEvent[]): void {
    if (!this.running) return;
    for (const ev of events) {
      // This runs from the addon's thread-safe callback, where an exception
      // would be uncaught: a listener's failure becomes an error event.
      try {
        if (ev.type === "frame") this.deliver(this.toFrame(ev));
        else if (ev.type === "state") {
          if (ev.contentType) this.contentType = ev.contentType;
          this.setState(ev.state);
        } else this.fail(ev.message);
      } catch (err) {
        this.lastError = "";
        this.fail((err as Error).message);
      }
    }
  }

  private ensureReader(): NativeRingReader | undefined {
    if (this.reader) {
      const info = this.reader.info();
      if (!info.replaced) {
        this.contentType = info.contentType ?? "";
        this.setState(info.writerAlive ? "attached" : "waiting");
        return this.reader;
      }
      this.reader.close();
      this.reader = undefined;
    }
    try {
      this.reader = new (addon().RingReader)(this.name);
    } catch (err) {
      const e = err as NativeError;
      if (e.code === "ENOENT" || e.code === "EAGAIN") this.setState("waiting");
      else this.fail(e.message);
      return undefined;
    }
    const info = this.reader.info();
    this.contentType = info.contentType ?? "";
    this.setState(info.writerAlive ? "attached" : "waiting");
    return this.reader;
  }

  private readLatest(reader: NativeRingReader, always: boolean): RingFrame | undefined {
    let f: NativeFrame | null;
    try {
      f = reader.latest();
    } catch (err) {
      this.fail((err as Error).message);
      this.reader?.close();
      this.reader = undefined;
      return undefined;
    }
    if (!f) return undefined;
    const fresh = f.seq !== this.lastSeq || f.generation !== this.lastGeneration;
    this.lastSeq = f.seq;
    this.lastGeneration = f.generation;
    return fresh || always ? this.toFrame(f) : undefined;
  }

  private poll(): void {
    if (!this.running) return;
    const reader = this.ensureReader();
    if (!reader || this.delivery !== "latest") return;
    const frame = this.readLatest(reader, false);
    if (frame) this.deliver(frame);
  }
}
