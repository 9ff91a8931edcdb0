// Temporary grants: "allow devices matching these attributes for N seconds".
// A grant remembers the stable key of each device it matched, so the same
// device is still allowed after a replug at another port (its via-port changed,
// its key did not). Grants live in a JSON file, replaced atomically on change.
import { randomBytes } from "crypto";
import { promises as fsp } from "fs";
import path from "path";
import { ruleMatches } from "./evaluate";
import type { EvalOptions } from "./ruleset";
import { parseRule } from "./parser";
import type { PolicyDevice } from "./types";

type Rule = ReturnType<typeof parseRule>;

export interface Grant {
  id: string;
  /** The rule attributes as given, e.g. `id 2341:0043 serial "7563..."`. */
  match: string;
  /** ms since epoch */
  created: number;
  /** ms since epoch; the grant no longer applies from this instant on. */
  expires: number;
  /** Stable keys of the devices this grant has matched. */
  keys: string[];
}

export interface GrantStoreOptions {
  /** JSON file the grants persist to; without one they live in memory only. */
  file?: string;
  /** ms since epoch; tests pass their own. */
  clock?: () => number;
  /** Errors while saving in the background (the grants stay in force in memory). */
  onError?: (err: Error) => void;
  newId?: () => string;
}

export interface GrantLoadResult {
  loaded: number;
  /** Grants in the file that had already expired. */
  expired: number;
  /** Entries that could not be used, with why. */
  skipped: string[];
  /** Set when the file could not be used as it was; it was kept aside at `error.keptAt`. */
  error?: GrantsFileError;
}

/** The grants file could not be read as grants. Nothing is lost: it was renamed or copied aside. */
export class GrantsFileError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly keptAt: string | undefined,
  ) {
    super(message);
    this.name = "GrantsFileError";
  }
}

const FILE_VERSION = 1;
const TARGET_WORD = /^\s*(allow|block|reject|match|device)\b/;

/**
 * Parses a grant's match text into a rule. The text is rule attributes without
 * a target; a leading "allow" is tolerated, any other target is an error.
 * Throws PolicyParseError (from the parser) or RangeError.
 */
export function parseGrantMatch(match: unknown): { match: string; rule: Rule } {
  if (typeof match !== "string") throw new RangeError("grant match must be a string of rule attributes, e.g. 'id 2341:0043'");
  let text = match.trim();
  const target = TARGET_WORD.exec(text);
  if (target) {
    if (target[1] !== "allow") throw new RangeError(`a grant can only allow; give the attributes without "${target[1]}"`);
    text = text.slice(target[0].length).trim();
  }
  // An empty match would allow every device; that is a policy change, not a grant.
  if (text === "") throw new RangeError("grant match is empty: it would allow every device; name at least one attribute");
  return { match: text, rule: parseRule(`allow ${text}`) };
}

/** Accepts seconds as a number or a numeric string; must be positive and finite. */
export function parseTtl(ttl: unknown): number {
  const n = typeof ttl === "string" && ttl.trim() !== "" ? Number(ttl) : ttl;
  if (typeof n !== "number" || !Number.isFinite(n) || n <= 0) {
    throw new RangeError(`grant ttl must be a positive number of seconds (got ${JSON.stringify(ttl)})`);
  }
  return n;
}

function timestampForName(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

export class GrantStore {
  private readonly grants = new Map<string, { grant: Grant; rule: Rule }>();
  private readonly clock: () => number;
  private readonly newId: () => string;
  readonly file: string | undefined;
  private saving: Promise<void> | undefined;
  private dirty = false;
  private lastSaveError: Error | undefined;

  constructor(private readonly options: GrantStoreOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.newId = options.newId ?? (() => `g-${randomBytes(4).toString("hex")}`);
    this.file = options.file ? path.resolve(options.file) : undefined;
  }

  /** Creates a store and loads its file. */
  static async open(options: GrantStoreOptions = {}): Promise<{ store: GrantStore; load: GrantLoadResult }> {
    const store = new GrantStore(options);
    const load = await store.load();
    return { store, load };
  }

  /** Active grants (expired ones are dropped first), oldest first. Copies. */
  list(): Grant[] {
    this.prune();
    return [...this.grants.values()].map(({ grant }) => copy(grant));
  }

  get size(): number {
    this.prune();
    return this.grants.size;
  }

  get(id: string): Grant | undefined {
    this.prune();
    const g = this.grants.get(id);
    return g ? copy(g.grant) : undefined;
  }

  /**
   * Adds a grant for `ttlSeconds`. Throws PolicyParseError for a match that
   * does not parse, RangeError for an empty match or a bad ttl.
   */
  add(match: unknown, ttlSeconds: unknown): Grant {
    const parsed = parseGrantMatch(match);
    const ttl = parseTtl(ttlSeconds);
    const now = this.clock();
    let id = this.newId();
    while (this.grants.has(id)) id = this.newId();
    const grant: Grant = { id, match: parsed.match, created: now, expires: now + ttl * 1000, keys: [] };
    this.grants.set(id, { grant, rule: parsed.rule });
    this.changed();
    return copy(grant);
  }

  /**
   * The first active grant that allows this device: one already bound to its
   * key, else one whose attributes match (which then binds to the key).
   */
  match(device: PolicyDevice, opts: EvalOptions = {}): Grant | undefined {
    this.prune();
    for (const { grant } of this.grants.values()) {
      if (grant.keys.includes(device.key)) return copy(grant);
    }
    const now = this.clock();
    for (const { grant, rule } of this.grants.values()) {
      if (ruleMatches(rule, device, { now: new Date(now), ...opts })) {
        if (device.key) {
          grant.keys.push(device.key);
          this.changed();
        }
        return copy(grant);
      }
    }
    return undefined;
  }

  /** Removes a grant; returns it, or undefined when there was none with that id. */
  revoke(id: string): Grant | undefined {
    const g = this.grants.get(id);
    if (!g) return undefined;
    this.grants.delete(id);
    this.changed();
    return copy(g.grant);
  }

  /** Removes every grant bound to a device key (e.g. "revoke whatever allows this device"). */
  revokeDevice(key: string): Grant[] {
    const out: Grant[] = [];
    for (const [id, g] of this.grants) {
      if (g.grant.keys.includes(key)) {
        this.grants.delete(id);
        out.push(copy(g.grant));
      }
    }
    if (out.length > 0) this.changed();
    return out;
  }

  /** Removes every grant; returns how many there were. */
  clear(): number {
    const n = this.grants.size;
    this.grants.clear();
    if (n > 0) this.changed();
    return n;
  }

  /** Drops expired grants; returns them. */
  prune(): Grant[] {
    const now = this.clock();
    const out: Grant[] = [];
    for (const [id, g] of this.grants) {
      if (g.grant.expires <= now) {
        this.grants.delete(id);
        out.push(g.grant);
      }
    }
    if (out.length > 0) this.changed();
    return out;
  }

  /**
   * Reads the file. A missing file is an empty store. A file that is not valid
   * grants is renamed aside (kept for the user) and the store starts empty; an
   * entry that is unusable is skipped, and the original copied aside so that the
   * next save does not lose it.
   */
  async load(): Promise<GrantLoadResult> {
    const result: GrantLoadResult = { loaded: 0, expired: 0, skipped: [] };
    if (!this.file) return result;
    this.grants.clear();
    let text: string;
    try {
      text = await fsp.readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return result;
      throw err;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      result.error = await this.setAside(`not valid JSON (${(err as Error).message})`, true);
      return result;
    }
    const entries = (doc as { grants?: unknown } | null)?.grants;
    if (!doc || typeof doc !== "object" || !Array.isArray(entries)) {
      result.error = await this.setAside('not a grants file (expected {"version":1,"grants":[...]})', true);
      return result;
    }
    const now = this.clock();
    entries.forEach((e: unknown, i: number) => {
      const why = this.restore(e, now);
      if (why === "expired") result.expired++;
      else if (why) result.skipped.push(`entry ${i}: ${why}`);
      else result.loaded++;
    });
    if (result.skipped.length > 0) {
      result.error = await this.setAside(`${result.skipped.length} unusable entr${result.skipped.length === 1 ? "y" : "ies"}: ${result.skipped.join("; ")}`, false);
    }
    if (result.expired > 0 || result.skipped.length > 0) this.changed();
    return result;
  }

  private restore(e: unknown, now: number): string | undefined {
    if (!e || typeof e !== "object") return "not an object";
    const g = e as Partial<Grant>;
    if (typeof g.id !== "string" || g.id === "") return "no id";
    if (typeof g.expires !== "number" || !Number.isFinite(g.expires)) return "no expiry";
    if (g.keys !== undefined && !(Array.isArray(g.keys) && g.keys.every((k) => typeof k === "string"))) return "keys is not a list of strings";
    if (this.grants.has(g.id)) return `duplicate id ${g.id}`;
    if (g.expires <= now) return "expired";
    let parsed;
    try {
      parsed = parseGrantMatch(g.match);
    } catch (err) {
      return `match ${JSON.stringify(g.match)} does not parse: ${(err as Error).message}`;
    }
    const grant: Grant = {
      id: g.id,
      match: parsed.match,
      created: typeof g.created === "number" ? g.created : now,
      expires: g.expires,
      keys: [...(g.keys ?? [])],
    };
    this.grants.set(grant.id, { grant, rule: parsed.rule });
    return undefined;
  }

  private async setAside(why: string, move: boolean): Promise<GrantsFileError> {
    const file = this.file as string;
    const keptAt = `${file}.corrupt-${timestampForName(this.clock())}-${randomBytes(2).toString("hex")}`;
    let where: string | undefined = keptAt;
    try {
      if (move) await fsp.rename(file, keptAt);
      else await fsp.copyFile(file, keptAt);
    } catch {
      where = undefined;
    }
    const kept = where ? `kept as ${where}` : "could not be set aside, left in place";
    const start = move ? "starting with no grants" : "the other grants are in force";
    return new GrantsFileError(`grants file ${file}: ${why}; ${start}; the original is ${kept}`, file, where);
  }

  /** Resolves when the current state is on disk; rejects with the save error otherwise. */
  async save(): Promise<void> {
    if (!this.file) return;
    this.dirty = true;
    this.kick();
    await this.settle();
  }

  /** Waits for background saves; rejects if the latest one failed. */
  async flush(): Promise<void> {
    await this.settle();
  }

  private async settle(): Promise<void> {
    while (this.saving) await this.saving;
    if (this.lastSaveError) throw this.lastSaveError;
  }

  private changed(): void {
    if (!this.file) return;
    this.dirty = true;
    this.kick();
  }

  private kick(): void {
    if (this.saving) return;
    this.saving = this.drain().finally(() => {
      this.saving = undefined;
    });
  }

  /** Saves until no change is left unsaved; bursts of changes collapse into one write. */
  private async drain(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      const doc = {
        version: FILE_VERSION,
        grants: [...this.grants.values()].map(({ grant }) => copy(grant)),
      };
      try {
        await writeAtomic(this.file as string, JSON.stringify(doc, null, 2) + "\n");
        this.lastSaveError = undefined;
      } catch (err) {
        this.lastSaveError = new Error(`cannot save grants to ${this.file}: ${(err as Error).message}`);
        this.options.onError?.(this.lastSaveError);
        return;
      }
    }
  }
}

let tmpCounter = 0;

/** Writes a temp file beside the target, syncs it, then renames it over the target. */
export async function writeAtomic(file: string, data: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${++tmpCounter}`;
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, "w", 0o600);
    await fh.writeFile(data, "utf8");
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

function copy(g: Grant): Grant {
  return { ...g, keys: [...g.keys] };
}
