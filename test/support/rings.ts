// Shared by the ring tests: unique names, cleanup of /dev/shm, and waiting
// for conditions that other processes bring about.
import { ChildProcess, spawn } from "child_process";
import fs from "fs";
import path from "path";

export const ROOT = path.resolve(__dirname, "..", "..", "..");
let counter = 0;
const made: string[] = [];

/** A ring name no other test or run uses; removed by cleanupRings(). */
export function ringName(label: string): string {
  const name = `dp-test-${process.pid}-${label}-${++counter}`;
  made.push(name);
  return name;
}

export function shmPath(name: string): string {
  return `/dev/shm/${name}`;
}

export function cleanupRings(): void {
  for (const name of made.splice(0)) {
    for (const p of [shmPath(name), `${shmPath(name)}.creating-${process.pid}`]) {
      try {
        fs.unlinkSync(p);
      } catch {
        /* already gone */
      }
    }
  }
}

/** The bytes a test writer puts in frame `seq`: easy to check, different per frame. */
export function patternFrame(seq: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seq * 31 + i) & 0xff;
  return b;
}

/**
 * Polls until `check` returns a value. The guard only keeps a broken run
 * from hanging forever; it is not a performance expectation.
 */
export async function eventually<T>(check: () => T | undefined | false, what: string, guardMs = 30000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > guardMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Child {
  proc: ChildProcess;
  lines: string[];
  stderr: string[];
  exited: Promise<number | null>;
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp, what?: string): Promise<string>;
}

export function spawnChild(command: string, args: string[], env?: NodeJS.ProcessEnv): Child {
  const proc = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
  const lines: string[] = [];
  const stderr: string[] = [];
  let partial = "";
  proc.stdout?.on("data", (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
  });
  proc.stderr?.on("data", (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return {
    proc,
    lines,
    stderr,
    exited,
    line: (pattern, what) =>
      eventually(() => lines.find((l) => pattern.test(l)), what ?? `a line matching ${pattern} from ${command}`),
  };
}

/** Runs dist/test/fakes/ring-writer.js in its own process. */
export function spawnWriter(args: string[]): Child {
  return spawnChild(process.execPath, [path.join(ROOT, "dist", "test", "fakes", "ring-writer.js"), ...args]);
}

export function openFds(): number {
  return fs.readdirSync("/proc/self/fd").length;
}

export function threadCount(): number {
  return fs.readdirSync("/proc/self/task").length;
}

/** Threads the addon started, by the "dp-" names it gives them; a name counts only that kind. */
export function devplaneThreads(name?: string): number {
  let n = 0;
  for (const tid of fs.readdirSync("/proc/self/task")) {
    try {
      const comm = fs.readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
      if (name === undefined ? comm.startsWith("dp-") : comm === name) n++;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return n;
}

/**
 * The runtime starts some threads lazily (libuv's pool, V8's platform workers), so a
 * count taken once may rise by a few without any leak. A leak of one thread per cycle
 * rises by the number of cycles; this allows the first and catches the second.
 */
export function assertThreadsBounded(baseline: number, cycles: number): void {
  const slack = Math.min(4, Math.floor(cycles / 4));
  const now = threadCount();
  if (now > baseline + slack) throw new Error(`threads grew from ${baseline} to ${now} over ${cycles} cycles`);
}

export function shmEntries(): string[] {
  return fs.readdirSync("/dev/shm").filter((n) => n.startsWith(`dp-test-${process.pid}-`));
}
