// Where a policy's rules come from: the config node's text and/or a rules
// file. The file is watched; a version that does not parse leaves the last
// good rules in force and reports where it broke.
import { EventEmitter } from "events";
import fs from "fs";
import path from "path";
import { RuleSet } from "./ruleset";
import { PolicyParseError, Target } from "./types";

export interface PolicySourceOptions {
  text?: string;
  file?: string;
  defaultTarget?: Target;
  /** How often to look at the file when the platform's watcher misses changes (ms). */
  pollMs?: number;
}

export interface PolicyLoadError {
  /** "text" or the file's path. */
  origin: string;
  message: string;
  line?: number;
  column?: number;
}

export interface PolicySourceEvents {
  change: [RuleSet];
  error: [PolicyLoadError];
}

export const TARGETS: readonly Target[] = ["allow", "block", "reject"];

export function checkTarget(value: unknown, fallback: Target = "block"): Target {
  if (value === undefined || value === "") return fallback;
  if (!(TARGETS as readonly unknown[]).includes(value)) {
    throw new RangeError(`default target must be allow, block or reject (got ${JSON.stringify(value)})`);
  }
  return value as Target;
}

function loadError(origin: string, err: unknown): PolicyLoadError {
  if (err instanceof PolicyParseError) {
    return { origin, message: err.message, line: err.line, column: err.column };
  }
  return { origin, message: (err as Error).message };
}

export class PolicySource extends EventEmitter<PolicySourceEvents> {
  readonly defaultTarget: Target;
  private current: RuleSet = RuleSet.empty();
  private lastError: PolicyLoadError | undefined;
  private readonly text: string;
  private readonly file: string | undefined;
  private fileText: string | undefined;
  private watcher: fs.FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private lastMtime = 0;

  constructor(private readonly options: PolicySourceOptions) {
    super();
    this.text = options.text ?? "";
    this.file = options.file && options.file.trim() !== "" ? options.file.trim() : undefined;
    this.defaultTarget = checkTarget(options.defaultTarget);
  }

  /** The rules in force: the last set that loaded completely. */
  get rules(): RuleSet {
    return this.current;
  }

  /** Why the latest attempt to load failed, while the previous rules stay in force. */
  get error(): PolicyLoadError | undefined {
    return this.lastError;
  }

  /** Loads once and, with a file, starts watching it. Returns the first load's error, if any. */
  start(): PolicyLoadError | undefined {
    this.reload();
    if (this.file) {
      try {
        // The directory, not the file: editors replace files by rename.
        this.watcher = fs.watch(path.dirname(this.file), () => this.reloadIfChanged());
        this.watcher.on("error", () => undefined);
      } catch {
        this.watcher = undefined;
      }
      this.poller = setInterval(() => this.reloadIfChanged(), this.options.pollMs ?? 2000);
      this.poller.unref();
    }
    return this.lastError;
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  private reloadIfChanged(): void {
    if (!this.file) return;
    let mtime = 0;
    try {
      mtime = fs.statSync(this.file).mtimeMs;
    } catch {
      mtime = -1;
    }
    if (mtime === this.lastMtime) return;
    this.reload();
  }

  /** Parses text and file; on success the new rules replace the old. */
  reload(): void {
    let fileText = "";
    if (this.file) {
      try {
        this.lastMtime = fs.statSync(this.file).mtimeMs;
        fileText = fs.readFileSync(this.file, "utf8");
      } catch (err) {
        this.lastMtime = -1;
        this.fail({ origin: this.file, message: `cannot read rules file: ${(err as Error).message}` });
        return;
      }
      if (fileText === this.fileText && !this.lastError) return;
    }
    // Each part is parsed alone first so that an error's line is the line in that part.
    for (const [origin, part] of [["text", this.text], [this.file ?? "", fileText]] as const) {
      if (!part) continue;
      try {
        RuleSet.parse(part);
      } catch (err) {
        this.fail(loadError(origin, err));
        return;
      }
    }
    this.fileText = fileText;
    this.current = RuleSet.parse(this.text + "\n" + fileText);
    this.lastError = undefined;
    this.emit("change", this.current);
  }

  private fail(error: PolicyLoadError): void {
    this.lastError = error;
    if (this.listenerCount("error") > 0) this.emit("error", error);
  }
}
