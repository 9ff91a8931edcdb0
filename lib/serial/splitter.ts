// Cutting a byte stream into messages. Pure: the state goes in and comes out,
// and time is an argument, so every mode is tested without a port or a timer.

export type SplitMode = "delimiter" | "timeout" | "length" | "none";
export const SPLIT_MODES: readonly SplitMode[] = ["delimiter", "timeout", "length", "none"];

export interface SplitOptions {
  mode: SplitMode;
  /** delimiter mode: the bytes that end a frame (one or more) */
  delimiter?: Buffer;
  /** delimiter mode: keep the delimiter at the end of each frame */
  keepDelimiter?: boolean;
  /** timeout mode: this many ms without a byte ends a frame */
  timeoutMs?: number;
  /** length mode: bytes per frame */
  length?: number;
  /** a frame never grows past this; the bytes so far go out marked overflow */
  maxBytes?: number;
}

export interface Frame {
  data: Buffer;
  /** cut at maxBytes before its end was seen */
  overflow?: boolean;
  /** the rest of the stream when it stopped (port closed, device gone) */
  partial?: boolean;
}

export interface SplitState {
  pending: Buffer;
  /** delimiter mode: bytes of pending already searched (less the delimiter's length - 1) */
  scanned: number;
  /** time of the last byte, for timeout mode */
  lastAt: number;
}

export const EMPTY_STATE: SplitState = Object.freeze({ pending: Buffer.alloc(0), scanned: 0, lastAt: 0 }) as SplitState;
export const DEFAULT_MAX_BYTES = 65536;

export interface Step {
  state: SplitState;
  frames: Frame[];
}

/** Checks options once, so that push() need not. Throws RangeError with a sentence. */
export function checkSplitOptions(o: SplitOptions): void {
  if (!SPLIT_MODES.includes(o.mode)) throw new RangeError(`split must be one of ${SPLIT_MODES.join(", ")}, got ${JSON.stringify(o.mode)}`);
  if (o.mode === "delimiter" && (!o.delimiter || o.delimiter.length === 0)) throw new RangeError("split by delimiter needs a delimiter of at least one byte");
  if (o.mode === "timeout" && !(typeof o.timeoutMs === "number" && o.timeoutMs > 0)) throw new RangeError(`split by timeout needs a timeout above 0 ms, got ${o.timeoutMs}`);
  if (o.mode === "length" && !(Number.isInteger(o.length) && (o.length as number) > 0)) throw new RangeError(`split by length needs a whole number of bytes above 0, got ${o.length}`);
  if (o.maxBytes !== undefined && !(Number.isInteger(o.maxBytes) && o.maxBytes > 0)) throw new RangeError(`the buffer size must be a whole number of bytes above 0, got ${o.maxBytes}`);
}

/** Bytes arrived at `now`: the frames they complete, and what waits for more. */
export function pushBytes(o: SplitOptions, s: SplitState, chunk: Buffer, now: number): Step {
  if (chunk.length === 0) return { state: s, frames: [] };
  if (o.mode === "none") return { state: s, frames: [{ data: Buffer.from(chunk) }] };
  const max = o.maxBytes ?? DEFAULT_MAX_BYTES;
  let pending = s.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([s.pending, chunk]);
  const frames: Frame[] = [];

  if (o.mode === "length") {
    const n = o.length as number;
    let at = 0;
    while (pending.length - at >= n) {
      frames.push({ data: pending.subarray(at, at + n) });
      at += n;
    }
    return { state: { pending: Buffer.from(pending.subarray(at)), scanned: 0, lastAt: now }, frames };
  }

  if (o.mode === "timeout") {
    while (pending.length > max) {
      frames.push({ data: pending.subarray(0, max), overflow: true });
      pending = pending.subarray(max);
    }
    return { state: { pending: Buffer.from(pending), scanned: 0, lastAt: now }, frames };
  }

  const delim = o.delimiter as Buffer;
  let start = 0;
  let from = Math.max(0, s.scanned);
  for (;;) {
    const hit = pending.indexOf(delim, from);
    if (hit === -1) break;
    const end = hit + delim.length;
    if (hit - start > max) {
      // The frame outgrew the buffer before its delimiter came: send what
      // fits, as the bytes without a delimiter would have been sent.
      while (hit - start > max) {
        frames.push({ data: pending.subarray(start, start + max), overflow: true });
        start += max;
      }
    }
    frames.push({ data: pending.subarray(start, o.keepDelimiter ? end : hit) });
    start = end;
    from = end;
  }
  while (pending.length - start > max) {
    frames.push({ data: pending.subarray(start, start + max), overflow: true });
    start += max;
  }
  const rest = Buffer.from(pending.subarray(start));
  // A delimiter split across two reads is found on the next push: rescan its possible start.
  return { state: { pending: rest, scanned: Math.max(0, rest.length - delim.length + 1), lastAt: now }, frames };
}

/** When a timeout-mode frame is due, if one waits. */
export function nextDeadline(o: SplitOptions, s: SplitState): number | undefined {
  if (o.mode !== "timeout" || s.pending.length === 0) return undefined;
  return s.lastAt + (o.timeoutMs as number);
}

/** Time passed: in timeout mode, the frame whose silence has lasted long enough. */
export function tick(o: SplitOptions, s: SplitState, now: number): Step {
  const due = nextDeadline(o, s);
  if (due === undefined || now < due) return { state: s, frames: [] };
  return { state: { ...EMPTY_STATE, lastAt: s.lastAt }, frames: [{ data: s.pending }] };
}

/** The stream ended: whatever waits goes out as a partial frame. */
export function flush(o: SplitOptions, s: SplitState): Step {
  if (s.pending.length === 0) return { state: s, frames: [] };
  const partial = o.mode !== "timeout";
  return { state: { ...EMPTY_STATE }, frames: [partial ? { data: s.pending, partial } : { data: s.pending }] };
}

/** A stateful wrapper for the port code; the logic stays in the functions above. */
export class Splitter {
  private state: SplitState = { ...EMPTY_STATE };
  constructor(readonly options: SplitOptions) {
    checkSplitOptions(options);
  }
  push(chunk: Buffer, now: number): Frame[] {
    const step = pushBytes(this.options, this.state, chunk, now);
    this.state = step.state;
    return step.frames;
  }
  tick(now: number): Frame[] {
    const step = tick(this.options, this.state, now);
    this.state = step.state;
    return step.frames;
  }
  deadline(): number | undefined {
    return nextDeadline(this.options, this.state);
  }
  flush(): Frame[] {
    const step = flush(this.options, this.state);
    this.state = step.state;
    return step.frames;
  }
  get pendingBytes(): number {
    return this.state.pending.length;
  }
}

const NAMED: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, "0": 0x00, e: 0x1b, "\\": 0x5c };

/**
 * The delimiter as typed in the editor: text with \n \r \t \0 \e \\ and
 * \xHH escapes ("\r\n", "\x03"), or hex bytes written "0x0d0a" or
 * "0x0D 0x0A". Throws RangeError with a sentence when it cannot be read.
 */
export function parseDelimiter(text: string): Buffer {
  if (typeof text !== "string" || text === "") throw new RangeError("the delimiter is empty: give at least one byte, such as \\n");
  const hex = text.trim();
  if (/^0x[0-9a-f]{2}([0-9a-f]{2})*$/i.test(hex)) return Buffer.from(hex.slice(2), "hex");
  if (/^(0x[0-9a-f]{2}[\s,]*)+$/i.test(hex)) return Buffer.from(hex.match(/0x([0-9a-f]{2})/gi)!.map((h) => parseInt(h.slice(2), 16)));
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "\\") {
      bytes.push(...Buffer.from(c, "utf8"));
      continue;
    }
    const next = text[i + 1];
    if (next === undefined) throw new RangeError(`the delimiter ${JSON.stringify(text)} ends with a lone backslash; write \\\\ for a backslash`);
    if (next === "x") {
      const h = text.slice(i + 2, i + 4);
      if (!/^[0-9a-f]{2}$/i.test(h)) throw new RangeError(`\\x in the delimiter ${JSON.stringify(text)} needs two hex digits, as in \\x03`);
      bytes.push(parseInt(h, 16));
      i += 3;
    } else if (next in NAMED) {
      bytes.push(NAMED[next]);
      i += 1;
    } else {
      throw new RangeError(`the delimiter ${JSON.stringify(text)} has an unknown escape \\${next}; use \\n, \\r, \\t, \\0, \\e, \\\\ or \\xHH`);
    }
  }
  return Buffer.from(bytes);
}
