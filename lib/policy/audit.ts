// The audit trail: one JSON line per decision, chained by SHA-256 so that an
// edited, removed or reordered record shows up in `devplane-audit verify`.
//
// Line format (keys always in this order, `hash` always last):
//   {"seq":N,"auditId":...,"ts":...,"host":...,"device":{...},"decision":...,
//    ...,"prev":"<sha256 of the previous line>","hash":"<sha256 of this line without hash>"}
// `prev` of the first record ever is 64 zeros; after a rotation the chain simply
// continues, so the first record of a new file points at the last line of `<file>.1`.
// `hash` makes an edit of the very last record detectable too, which `prev` alone
// cannot do because nothing follows it.
import { createHash, randomUUID } from "crypto";
import { promises as fsp } from "fs";
import os from "os";
import path from "path";
import type { Decision, PolicyContext, PolicyDevice, Target } from "./types";

export const GENESIS = "0".repeat(64);
const HASH_SUFFIX_LENGTH = ',"hash":"'.length + 64 + '"}'.length;
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/** How a decision was reached. */
export type DecisionSource = "grant" | "rule" | "default" | "answer" | "timeout";

/** The device as recorded: its stable key and every attribute the rules could see. */
export interface AuditDevice {
  key: string;
  id?: string;
  serial?: string;
  name?: string;
  hash?: string;
  parentHash?: string;
  viaPort?: string;
  withInterface: string[];
  withConnectType?: string;
  label?: string;
  subsystem?: string;
  devnodes?: string[];
  profile?: string;
  profileInterface?: string;
}

/** What a caller hands to append(); the log adds seq, auditId, ts, prev and hash. */
export interface AuditEntry extends Decision {
  device: PolicyDevice;
  via: DecisionSource;
  dryRun?: boolean;
  wouldBe?: Target;
  mode?: string;
  context?: PolicyContext;
  questionId?: string;
  /** Overrides the log's host for this record. */
  host?: string;
}

export interface AuditRecord {
  seq: number;
  auditId: string;
  /** ISO 8601, UTC. */
  ts: string;
  host: string;
  device: AuditDevice;
  decision: Target;
  dryRun?: boolean;
  wouldBe?: Target;
  via: DecisionSource;
  mode?: string;
  rule: string | null;
  ruleIndex: number;
  reason: string;
  grant?: { id: string; match: string; expires: number };
  questionId?: string;
  context?: PolicyContext;
  prev: string;
  hash: string;
}

export interface AuditLogOptions {
  /** JSONL file to append to; without one, records are only built and chained in memory. */
  file?: string;
  /** Rotate when the next record would take the file past this size; 0 or absent: never. */
  maxBytes?: number;
  /** Rotated files kept (<file>.1 … <file>.keep). Default 5. */
  keep?: number;
  /** fsync after every record. Default false. */
  fsync?: boolean;
  host?: string;
  /** ms since epoch; tests pass their own. */
  clock?: () => number;
  newId?: () => string;
  /** Write errors and startup warnings. The record stays queued and is retried on the next append or flush. */
  onError?: (err: Error) => void;
  /** Records waiting for the disk beyond which the oldest are dropped (and reported). Default 100000. */
  maxPending?: number;
}

export function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function auditDevice(d: PolicyDevice): AuditDevice {
  // Explicit order so that the same device always serialises the same way.
  return {
    key: d.key,
    id: d.id,
    serial: d.serial,
    name: d.name,
    hash: d.hash,
    parentHash: d.parentHash,
    viaPort: d.viaPort,
    withInterface: [...(d.withInterface ?? [])],
    withConnectType: d.withConnectType,
    label: d.label,
    subsystem: d.subsystem,
    devnodes: d.devnodes ? [...d.devnodes] : undefined,
    profile: d.profile,
    profileInterface: d.profileInterface,
  };
}

/** Serialises a record body (without hash) and seals it; returns the line and its hash. */
function seal(body: Omit<AuditRecord, "hash">): { line: string; hash: string } {
  const json = JSON.stringify(body);
  const hash = sha256(json);
  return { line: json.slice(0, -1) + `,"hash":"${hash}"}`, hash };
}

/** Recomputes a line's own hash; undefined when the line carries none. */
export function checkLineHash(line: Buffer): { stated: string; actual: string } | undefined {
  const text = line.toString("latin1");
  const m = HASH_SUFFIX.exec(text);
  if (!m) return undefined;
  const body = Buffer.concat([line.subarray(0, line.length - HASH_SUFFIX_LENGTH), Buffer.from("}")]);
  return { stated: m[1], actual: sha256(body) };
}

interface Pending {
  line: Buffer;
  seq: number;
}

/**
 * The part that owns a file: the chain's head and the write queue. Every AuditLog
 * opened on the same path in this process shares one, so that two policy nodes
 * pointed at one file still produce a single unbroken chain.
 */
class ChainWriter {
  seq = 0;
  lastHash = GENESIS;
  readonly handles = new Set<AuditLog>();
  private fh: fsp.FileHandle | undefined;
  private size = 0;
  /** Bytes past `size` may hold a failed partial write; cut them before the next one. */
  private dirtyTail = false;
  private leadingNewline = false;
  private readonly queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private lastError: Error | undefined;
  private closed = false;

  constructor(
    readonly file: string | undefined,
    readonly maxBytes: number,
    readonly keep: number,
    readonly fsync: boolean,
    readonly maxPending: number,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  async open(): Promise<string[]> {
    const warnings: string[] = [];
    if (!this.file) return warnings;
    await fsp.mkdir(path.dirname(this.file), { recursive: true });
    let tail = await readTail(this.file);
    if (tail.partial !== undefined) {
      // A crash or a full disk cut the last write short. The fragment stays as
      // evidence (verify will name it); new records start on a fresh line.
      warnings.push(`${this.file} ends with an incomplete record; appending after it, verify will report it`);
      this.leadingNewline = true;
    }
    if (tail.last === undefined && tail.partial === undefined) {
      // An empty or missing file continues the chain of the file rotated before it.
      const older = await readTail(`${this.file}.1`);
      tail = { ...older, size: tail.size };
    }
    if (tail.last !== undefined) {
      this.lastHash = sha256(tail.last);
      try {
        const rec = JSON.parse(tail.last.toString("utf8")) as { seq?: unknown };
        if (typeof rec.seq === "number" && Number.isInteger(rec.seq)) this.seq = rec.seq;
        else warnings.push(`the last record of ${this.file} has no seq; numbering restarts`);
      } catch {
        warnings.push(`the last line of ${this.file} is not a record; numbering restarts`);
      }
    }
    this.fh = await fsp.open(this.file, "a", 0o640);
    this.size = (await this.fh.stat()).size;
    return warnings;
  }

  append(body: Omit<AuditRecord, "seq" | "prev" | "hash">): AuditRecord {
    if (this.closed) throw new Error("audit log is closed");
    const seq = this.seq + 1;
    const prev = this.lastHash;
    const full: Omit<AuditRecord, "hash"> = {
      seq,
      auditId: body.auditId,
      ts: body.ts,
      host: body.host,
      device: body.device,
      decision: body.decision,
      dryRun: body.dryRun,
      wouldBe: body.wouldBe,
      via: body.via,
      mode: body.mode,
      rule: body.rule,
      ruleIndex: body.ruleIndex,
      reason: body.reason,
      grant: body.grant,
      questionId: body.questionId,
      context: body.context,
      prev,
    };
    const { line, hash } = seal(full);
    this.seq = seq;
    this.lastHash = sha256(line);
    if (this.file) {
      this.queue.push({ line: Buffer.from(line + "\n", "utf8"), seq });
      if (this.queue.length > this.maxPending) {
        const lost = this.queue.splice(0, this.queue.length - this.maxPending);
        this.report(new Error(`audit: ${lost.length} record(s) (seq ${lost[0].seq}…${lost[lost.length - 1].seq}) dropped: the disk has not accepted writes (${this.lastError?.message ?? "unknown error"})`));
      }
      this.kick();
    }
    return { ...full, hash };
  }

  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Writes queued records one at a time, in order; stops at the first failure. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const item = this.queue[0];
      try {
        await this.writeOne(item.line);
        this.queue.shift();
        this.lastError = undefined;
      } catch (err) {
        this.lastError = err as Error;
        this.dirtyTail = true;
        this.report(new Error(`audit: cannot write record seq ${item.seq} to ${this.file}: ${(err as Error).message}`));
        return;
      }
    }
  }

  private async writeOne(line: Buffer): Promise<void> {
    if (!this.fh) {
      // Only after a failed rotation: whatever file is there now is the one we continue.
      this.fh = await fsp.open(this.file as string, "a", 0o640);
      this.size = (await this.fh.stat()).size;
      this.dirtyTail = false;
    }
    if (this.dirtyTail) {
      if ((await this.fh.stat()).size > this.size) await this.fh.truncate(this.size);
      this.dirtyTail = false;
    }
    let data = line;
    if (this.leadingNewline) data = Buffer.concat([Buffer.from("\n"), line]);
    if (this.maxBytes > 0 && this.size > 0 && this.size + data.length > this.maxBytes) {
      await this.rotate();
      data = line;
    }
    const { bytesWritten } = await this.fh.write(data, 0, data.length);
    if (bytesWritten !== data.length) throw new Error(`short write (${bytesWritten} of ${data.length} bytes)`);
    if (this.fsync) await this.fh.sync();
    this.size += data.length;
    this.leadingNewline = false;
  }

  private async rotate(): Promise<void> {
    const file = this.file as string;
    await this.fh?.close();
    this.fh = undefined;
    for (let i = this.keep - 1; i >= 1; i--) {
      await fsp.rename(`${file}.${i}`, `${file}.${i + 1}`).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
    }
    await fsp.rename(file, `${file}.1`);
    this.fh = await fsp.open(file, "a", 0o640);
    this.size = 0;
    this.leadingNewline = false;
    if (this.fsync) await syncDir(path.dirname(file));
  }

  async flush(): Promise<void> {
    this.kick();
    while (this.running) await this.running;
    if (this.queue.length > 0) {
      throw new Error(`audit: ${this.queue.length} record(s) not written: ${this.lastError?.message ?? "unknown error"}`);
    }
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.closed = true;
      const fh = this.fh;
      this.fh = undefined;
      await fh?.close();
    }
  }

  private report(err: Error): void {
    for (const h of this.handles) h.reportError(err);
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, "r");
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself still happened.
  } finally {
    await fh?.close();
  }
}

/** The last complete line of a file (without "\n") and any fragment after it. */
export async function readTail(file: string): Promise<{ last?: Buffer; partial?: Buffer; size: number }> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { size: 0 };
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    if (size === 0) return { size };
    // Read backwards in growing chunks until two newlines (or the start) bracket the last line.
    let chunk = 8192;
    for (;;) {
      const start = Math.max(0, size - chunk);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      const endsWithNewline = buf[buf.length - 1] === 0x0a;
      const lastNl = buf.lastIndexOf(0x0a);
      let partial: Buffer | undefined;
      let body = buf;
      if (!endsWithNewline) {
        if (lastNl < 0 && start > 0) {
          chunk *= 4;
          continue;
        }
        partial = buf.subarray(lastNl + 1);
        body = buf.subarray(0, lastNl + 1);
        if (body.length === 0) return { partial, size };
      }
      const before = body.length >= 2 ? body.lastIndexOf(0x0a, body.length - 2) : -1;
      if (before < 0 && start > 0) {
        chunk *= 4;
        continue;
      }
      return { last: body.subarray(before + 1, body.length - 1), partial, size };
    }
  } finally {
    await fh.close();
  }
}

const writers = new Map<string, Promise<ChainWriter>>();
/** Files whose last handle is still flushing; a reopen (a redeploy) waits for it so the chain continues. */
const closing = new Map<string, Promise<void>>();

/**
 * A handle on the audit trail. `AuditLog.open({file})` before the first append
 * (it reads the file's tail to continue the chain); `AuditLog.memory()` needs no file.
 */
export class AuditLog {
  private readonly host: string;
  private readonly clock: () => number;
  private readonly newId: () => string;
  private closed = false;
  /** Warnings from opening (an incomplete last line, an unreadable tail). */
  readonly warnings: string[] = [];
  private lastErr: Error | undefined;

  private constructor(
    private readonly writer: ChainWriter,
    private readonly options: AuditLogOptions,
  ) {
    this.host = options.host ?? os.hostname();
    this.clock = options.clock ?? Date.now;
    this.newId = options.newId ?? randomUUID;
    writer.handles.add(this);
  }

  /** Opens (or joins, when the path is already open in this process) a file-backed log. */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    if (!options.file) return AuditLog.memory(options);
    const file = path.resolve(options.file);
    let pending = writers.get(file);
    let warnings: string[] = [];
    if (!pending) {
      await closing.get(file);
      pending = writers.get(file);
    }
    if (!pending) {
      const keep = options.keep ?? 5;
      if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`audit keep must be an integer >= 1 (got ${keep})`);
      const maxBytes = options.maxBytes ?? 0;
      if (!(maxBytes >= 0)) throw new RangeError(`audit maxBytes must be >= 0 (got ${maxBytes})`);
      const w = new ChainWriter(file, maxBytes, keep, options.fsync ?? false, options.maxPending ?? 100000);
      pending = w.open().then((ws) => {
        warnings = ws;
        return w;
      });
      writers.set(file, pending);
      pending.catch(() => writers.delete(file));
    }
    const writer = await pending;
    const log = new AuditLog(writer, { ...options, file });
    log.warnings.push(...warnings);
    for (const w of warnings) log.reportError(new Error(`audit: ${w}`));
    return log;
  }

  /** A log that chains records in memory only (records still go on the node's output). */
  static memory(options: Omit<AuditLogOptions, "file"> = {}): AuditLog {
    return new AuditLog(new ChainWriter(undefined, 0, 1, false, 0), { ...options, file: undefined });
  }

  get file(): string | undefined {
    return this.writer.file;
  }

  /** Records built but not yet on disk. */
  get pending(): number {
    return this.writer.pending;
  }

  /** The latest write error, cleared once a write succeeds. */
  get lastError(): Error | undefined {
    return this.lastErr;
  }

  /**
   * Builds, chains and queues one record, synchronously: the record (with its
   * auditId and hashes) is final when this returns, and records reach the file
   * in the order append() was called.
   */
  append(entry: AuditEntry): AuditRecord {
    if (this.closed) throw new Error("audit log is closed");
    return this.writer.append({
      auditId: this.newId(),
      ts: new Date(this.clock()).toISOString(),
      host: entry.host ?? this.host,
      device: auditDevice(entry.device),
      decision: entry.decision,
      dryRun: entry.dryRun || undefined,
      wouldBe: entry.wouldBe,
      via: entry.via,
      mode: entry.mode,
      rule: entry.rule ?? null,
      ruleIndex: entry.ruleIndex,
      reason: entry.reason,
      grant: entry.grant ? { id: entry.grant.id, match: entry.grant.match, expires: entry.grant.expires } : undefined,
      questionId: entry.questionId,
      context: entry.context && Object.keys(entry.context).length > 0 ? { ...entry.context } : undefined,
    });
  }

  /** Resolves once every record appended so far is written; rejects if the disk refuses them. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Flushes and lets go of the file (the last handle on a path closes it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writer.handles.delete(this);
    if (this.writer.handles.size > 0) {
      await this.writer.flush();
      return;
    }
    const file = this.writer.file;
    if (!file) return this.writer.close();
    writers.delete(file);
    const done = this.writer.close();
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    closing.set(file, settled);
    void settled.then(() => {
      if (closing.get(file) === settled) closing.delete(file);
    });
    await done;
  }

  /** @internal */
  reportError(err: Error): void {
    this.lastErr = err;
    this.options.onError?.(err);
  }
}

// ---------------------------------------------------------------------------
// Verification

export type VerifyProblem =
  | "truncated"
  | "malformed"
  | "altered"
  | "missing"
  | "reordered"
  | "chain"
  | "genesis";

export interface VerifyFailure {
  ok: false;
  /** Records that checked out before the failure. */
  records: number;
  file: string;
  /** 1-based line in `file`. */
  line: number;
  auditId?: string;
  seq?: number;
  problem: VerifyProblem;
  message: string;
}

export interface VerifySuccess {
  ok: true;
  records: number;
  files: string[];
  firstSeq?: number;
  lastSeq?: number;
}

export type VerifyResult = VerifySuccess | VerifyFailure;

export interface VerifyOptions {
  /** Verify the whole set: <file>.N … <file>.1 then <file>, as one chain. */
  rotated?: boolean;
}

interface ParsedLine {
  raw: Buffer;
  lineNo: number;
  complete: boolean;
  rec?: { seq?: unknown; auditId?: unknown; prev?: unknown };
}

async function* lines(file: string): AsyncGenerator<ParsedLine> {
  const fh = await fsp.open(file, "r");
  try {
    let rest: Buffer = Buffer.alloc(0);
    let lineNo = 0;
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      let data = Buffer.concat([rest, buf.subarray(0, bytesRead)]);
      let nl: number;
      while ((nl = data.indexOf(0x0a)) >= 0) {
        const raw = data.subarray(0, nl);
        data = data.subarray(nl + 1);
        yield parseLine(raw, ++lineNo, true);
      }
      rest = Buffer.from(data);
    }
    if (rest.length > 0) yield parseLine(rest, ++lineNo, false);
  } finally {
    await fh.close();
  }
}

function parseLine(raw: Buffer, lineNo: number, complete: boolean): ParsedLine {
  let rec: ParsedLine["rec"];
  try {
    const v: unknown = JSON.parse(raw.toString("utf8"));
    if (v && typeof v === "object" && !Array.isArray(v)) rec = v as ParsedLine["rec"];
  } catch {
    rec = undefined;
  }
  return { raw, lineNo, complete, rec };
}

/** Files of a rotated set, oldest first: <file>.N … <file>.1, <file>. */
async function rotatedSet(file: string): Promise<string[]> {
  const older: string[] = [];
  for (let i = 1; ; i++) {
    try {
      await fsp.access(`${file}.${i}`);
      older.unshift(`${file}.${i}`);
    } catch {
      break;
    }
  }
  return [...older, file];
}

/** The file rotated just before this one: X → X.1, X.n → X.(n+1). */
function predecessorOf(file: string): string {
  const m = /^(.*)\.(\d+)$/.exec(file);
  return m ? `${m[1]}.${Number(m[2]) + 1}` : `${file}.1`;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a file (or, with `rotated`, the whole rotated set) record by record and
 * names the first record that fails: altered (its content no longer matches its
 * hash, or the chain to the next breaks), removed (a seq is missing), reordered
 * (a seq comes back later) or truncated (the last line is cut short). What a hash
 * chain cannot show: records removed from the very end of the newest file.
 */
export async function verifyAuditFile(file: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const files = options.rotated ? await rotatedSet(file) : [file];
  let records = 0;
  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  let firstSeq: number | undefined;

  // Without --rotated, the first record still has to link to the file before it.
  if (!options.rotated) {
    const pred = predecessorOf(file);
    if (await exists(pred)) {
      const tail = await readTail(pred);
      if (tail.last) {
        prevHash = sha256(tail.last);
        try {
          const s = (JSON.parse(tail.last.toString("utf8")) as { seq?: unknown }).seq;
          if (typeof s === "number") prevSeq = s;
        } catch {
          prevSeq = undefined;
        }
      }
    }
  }

  for (let fi = 0; fi < files.length; fi++) {
    const f = files[fi];
    const isBase = !/\.\d+$/.test(f);
    const fail = (l: ParsedLine, problem: VerifyProblem, message: string): VerifyFailure => {
      const auditId = typeof l.rec?.auditId === "string" ? l.rec.auditId : undefined;
      const seq = typeof l.rec?.seq === "number" ? l.rec.seq : undefined;
      const who = [auditId ? `auditId ${auditId}` : undefined, seq !== undefined ? `seq ${seq}` : undefined].filter(Boolean).join(", ");
      return {
        ok: false,
        records,
        file: f,
        line: l.lineNo,
        auditId,
        seq,
        problem,
        message: `line ${l.lineNo} of ${f}${who ? ` (${who})` : ""}: ${message}`,
      };
    };

    const it = lines(f);
    try {
      for await (const l of it) {
        if (!l.complete) {
          return fail(l, "truncated", "the last record is cut short (no end of line): truncated or partly written");
        }
        if (!l.rec) {
          return fail(l, "malformed", l.raw.length === 0 ? "empty line where a record should be" : "not a JSON record: altered or damaged");
        }
        const sealCheck = checkLineHash(l.raw);
        if (!sealCheck) return fail(l, "malformed", "the record has no hash: altered or not an audit record");
        if (sealCheck.stated !== sealCheck.actual) {
          return fail(l, "altered", "altered: its content does not match its hash");
        }
        const seq = l.rec.seq;
        const prev = l.rec.prev;
        if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 1) return fail(l, "malformed", "the record has no valid seq");
        if (typeof prev !== "string" || !/^[0-9a-f]{64}$/.test(prev)) return fail(l, "malformed", "the record has no valid prev hash");

        if (prevSeq === undefined && prevHash === undefined) {
          // The start of what we can see.
          if (seq === 1) {
            if (prev !== GENESIS) return fail(l, "genesis", "the first record of the chain does not start from the genesis hash: altered");
          } else if (isBase) {
            return fail(l, "missing", `the chain starts at seq ${seq} and no rotated file precedes it: records 1–${seq - 1} were removed`);
          }
          // else: the oldest kept file of a rotated set; what came before was rotated away.
        } else {
          const expected = (prevSeq ?? seq - 1) + 1;
          if (seq < expected) {
            return fail(l, "reordered", `seq ${seq} comes after seq ${expected - 1}: a record copied or moved here`);
          }
          if (seq !== expected) {
            const later = await findSeq(it, expected);
            if (later !== undefined) {
              return fail(l, "reordered", `out of order: expected seq ${expected}, which comes later at line ${later}`);
            }
            const gap = seq - expected === 1 ? `seq ${expected} is` : `seqs ${expected}–${seq - 1} are`;
            return fail(l, "missing", `the record(s) before it were removed: ${gap} missing`);
          }
          if (prevHash !== undefined && prev !== prevHash) {
            const before = l.lineNo > 1 ? `line ${l.lineNo - 1}` : "the last record of the previous file";
            return fail(l, "chain", `chain broken: its prev does not match ${before}; one of the two was rewritten`);
          }
        }
        if (firstSeq === undefined) firstSeq = seq;
        prevSeq = seq;
        prevHash = sha256(l.raw);
        records++;
      }
    } finally {
      await it.return(undefined);
    }
  }
  return { ok: true, records, files, firstSeq, lastSeq: prevSeq };
}

/** Scans the rest of a file for a seq; the line it is on, if there. */
async function findSeq(it: AsyncGenerator<ParsedLine>, seq: number): Promise<number | undefined> {
  for await (const l of it) {
    if (l.rec && l.rec.seq === seq) return l.lineNo;
  }
  return undefined;
}
