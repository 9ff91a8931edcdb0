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

export interface NativeAddon {
  platformSupported: boolean;
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
