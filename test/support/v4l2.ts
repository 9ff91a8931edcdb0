// Shared by the camera tests: the fake V4L2 camera (an LD_PRELOAD library that
// must be in the environment when a process starts, so the tests that use it
// run in child mocha processes), its control file, and checks of the frames it
// makes (the DPFK header and the gradient after it).
import { execFileSync, spawn } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { devplaneThreads, ROOT } from "./rings";

export const FAKE_DIR = path.join(ROOT, "test", "fakes", "v4l2");
export const FAKE_LIBRARY = path.join(FAKE_DIR, "build", "libdevplane-fake-v4l2.so");
export const JPEG_WALK = path.join(FAKE_DIR, "jpeg_walk.py");

/** Builds the fake camera library (make knows when it is fresh). */
export function buildFake(): string {
  execFileSync("make", ["-s", "-C", FAKE_DIR], { stdio: ["ignore", "ignore", "pipe"] });
  return FAKE_LIBRARY;
}

/** Titles of the tests the child processes run; the parent checks each one passed. */
export const CHILD_TESTS = {
  engine: {
    list: "lists capture and metadata nodes, and describes formats, sizes, rates and controls",
    meta: "refuses the metadata node with an error that names the capture node",
    auto: "auto picks MJPEG for previews and YUYV for rings, at the nearest size and rate",
    named: "a named format the camera lacks is refused with what it offers",
    every: "every frame arrives as a Buffer whose DPFK header and pattern match msg.frame (YUYV)",
    mjpeg: "MJPEG frames are valid JPEG Buffers carrying the DPFK header",
    nv12grey: "NV12 and GREY frames carry the camera's pattern",
    clock: "frame timestamps are on CLOCK_MONOTONIC, the clock of audio chunks",
    throttle: "throttled delivery sends at most rate messages a second",
    snapshot: "snapshot delivery answers each request with one frame, and sends nothing else",
    ringZeroCopy: "ring delivery lets the driver write into ring slots (USERPTR); a reader gets every frame",
    ringCopy: "ring delivery without zero copy copies from mmap buffers, with the same frames",
    ringLagging: "a reader that lags behind a zero-copy ring skips the slots the driver holds and counts them missed",
    shared: "one open device feeds every, throttle, snapshot and ring consumers at once",
    otherSettings: "a second capture with other settings gets an error naming the node that holds the camera",
    controls: "lists controls, sets them by name and menu label, explains inactive ones, reapplies after reopen",
    drops: "when JavaScript falls behind the oldest frames are dropped and counted",
    jpeg: "raw frames are encoded as JPEG on request",
    unplug: "unplug mid-stream: disconnected, then resumed within a second under another path",
    eio: "a frame failing with EIO is counted lost and the stream goes on (mmap and userptr)",
    errorFlag: "a frame the driver flags as broken is dropped and counted",
    busy: "busy: the error names the process holding the camera",
    permission: "permission denied: the error names the group to join",
    missing: "a missing camera is waited for and used once it appears",
  },
  nodes: {
    every: "v4l2-capture node sends every frame with msg.frame",
    throttle: "v4l2-capture node throttles to rate messages a second",
    snapshot: "v4l2-capture node answers each input message with a frame, keeping the message",
    ring: "v4l2-capture node writes a ring a Python reader reads, and sends metadata",
    controls: "v4l2-capture node lists and sets controls from messages",
    unplug: "v4l2-capture node turns red on unplug, says so, and resumes when the camera is back",
    admin: "admin routes list cameras and describe one",
    config: "a bad setting shows an error status and fails input messages",
    policy: "v4l2-capture node never opens a camera its policy denies, and opens it once a rule allows it",
    redeploy: "100 redeploys while streaming leave no fd, mapping or thread behind",
    examples: "the example flows run: preview with snapshots and controls, and a ring a Python client reads",
  },
} as const;

// ---------------------------------------------------------------- in a child

/** Writes the fake's control file in one go, as its README asks. */
export function setFaults(text: string): void {
  const file = process.env.DEVPLANE_FAKE_V4L2_CONTROL;
  if (!file) throw new Error("DEVPLANE_FAKE_V4L2_CONTROL is not set: run this in a child started by the parent test");
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

let cameraCounter = 0;

export interface FakeCamera {
  capture: string;
  meta: string;
  /** Where it comes back after an unplug (with reappear_after_ms). */
  capture2: string;
  meta2: string;
}

/**
 * A fresh camera (new paths, default format and controls): the fake keeps
 * state per path, and one test's unplug must not reach the next. The paths
 * also go into $DEVPLANE_V4L2_DEVICES, where the capture searches for a
 * camera that came back under another name.
 */
export function freshCamera(): FakeCamera {
  const n = ++cameraCounter;
  const base = `/dev/dpfake-${process.pid}-${n}`;
  const cam = { capture: `${base}-video0`, meta: `${base}-video1`, capture2: `${base}-video2`, meta2: `${base}-video3` };
  process.env.DEVPLANE_FAKE_V4L2 = `${cam.capture},${cam.meta}`;
  process.env.DEVPLANE_FAKE_V4L2_REAPPEAR_AS = `${cam.capture2},${cam.meta2}`;
  process.env.DEVPLANE_V4L2_DEVICES = [cam.capture, cam.meta, cam.capture2, cam.meta2].join(",");
  return cam;
}

// ---------------------------------------------------------------- frames

export interface Dpfk {
  seq: number;
  ns: bigint;
  fourcc: string;
  width: number;
  height: number;
  bytes: number;
  version: number;
  drops: number;
}

/** The fake's 32-byte header: at byte 0 of raw frames, at byte 24 (APP4) of MJPEG. */
export function parseDpfk(frame: Buffer, format: string): Dpfk {
  const at = format === "MJPEG" ? 24 : 0;
  const h = frame.subarray(at, at + 32);
  if (h.length < 32 || h.toString("latin1", 0, 4) !== "DPFK") throw new Error(`no DPFK header at byte ${at}`);
  return {
    seq: h.readUInt32LE(4),
    ns: h.readBigUInt64LE(8),
    fourcc: h.toString("latin1", 16, 20),
    width: h.readUInt16LE(20),
    height: h.readUInt16LE(22),
    bytes: h.readUInt32LE(24),
    version: h.readUInt16LE(28),
    drops: h.readUInt16LE(30),
  };
}

/** Checks the luma gradient (x + y + seq) & 0xff on three rows; undefined when it holds. */
export function patternProblem(frame: Buffer, format: string, width: number, height: number, stride: number, seq: number): string | undefined {
  const rows = [1, height >> 1, height - 1];
  for (const y of rows) {
    for (let x = 0; x < width; x++) {
      const want = (x + y + seq) & 0xff;
      if (format === "YUYV") {
        const o = y * stride + 2 * x;
        if (frame[o] !== want) return `YUYV luma at (${x},${y}) is ${frame[o]}, not ${want}`;
        if (frame[o + 1] !== 128) return `YUYV chroma at (${x},${y}) is ${frame[o + 1]}`;
      } else {
        const o = y * stride + x;
        if (frame[o] !== want) return `${format} luma at (${x},${y}) is ${frame[o]}, not ${want}`;
      }
    }
  }
  if (format === "NV12" && frame[width * height] !== 128) return "NV12 chroma is not neutral";
  return undefined;
}

/** Runs the fake's pure-Python JPEG walker (full Huffman decode) over a frame. */
export function walkJpeg(data: Buffer): { ok: boolean; width?: number; height?: number; error?: string } {
  const file = path.join(os.tmpdir(), `devplane-jpeg-${process.pid}-${Math.random().toString(36).slice(2)}.jpg`);
  fs.writeFileSync(file, data);
  try {
    let out: string;
    try {
      out = execFileSync("python3", [JPEG_WALK, file], { encoding: "utf8" });
    } catch (err) {
      out = (err as { stdout?: string }).stdout ?? "";
    }
    return JSON.parse(out.trim().split("\n")[0]) as { ok: boolean; width?: number; height?: number; error?: string };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

// ---------------------------------------------------------------- leftovers

/** Mappings of the fake's MMAP buffers in this process. */
export function fakeBufferMappings(): number {
  return fs
    .readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l.includes("devplane-fake-v4l2-buf")).length;
}

/** Threads named by the capture code (pthread_setname_np "dp-v4l2"). */
export const captureThreads = (): number => devplaneThreads("dp-v4l2");

/** A /proc with the given processes, each holding the given files open. */
export function fakeProc(procs: Array<{ pid: number; comm: string; fds: string[] }>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "devplane-proc-"));
  for (const p of procs) {
    fs.mkdirSync(path.join(root, String(p.pid), "fd"), { recursive: true });
    fs.writeFileSync(path.join(root, String(p.pid), "comm"), `${p.comm}\n`);
    p.fds.forEach((target, i) => fs.symlinkSync(target, path.join(root, String(p.pid), "fd", String(i + 3))));
  }
  return root;
}

// ---------------------------------------------------------------- in the parent

interface MochaJson {
  tests: Array<{ title: string; fullTitle: string; err: { message?: string; stack?: string } }>;
  passes: Array<{ title: string }>;
}

export interface ChildRun {
  results: MochaJson;
  output: string;
}

const MOCHA = require.resolve("mocha/bin/mocha.js");

/** Runs dist/test/fakes/<file> in a mocha child with the fake camera preloaded. */
export async function runChild(file: string, label: string): Promise<ChildRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `devplane-v4l2-${label}-`));
  const report = path.join(dir, "report.json");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LD_PRELOAD: FAKE_LIBRARY,
    DEVPLANE_FAKE_V4L2: "",
    DEVPLANE_FAKE_V4L2_CONTROL: path.join(dir, "camera.ctl"),
    DEVPLANE_V4L2_DEVICES: "",
  };
  const child = spawn(
    process.execPath,
    [MOCHA, "--no-config", "--timeout", "0", "--exit", "--reporter", "json", "--reporter-option", `output=${report}`, path.join(ROOT, "dist", "test", "fakes", file)],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  await new Promise((resolve) => child.on("exit", resolve));
  try {
    if (!fs.existsSync(report)) throw new Error(`${file} wrote no report:\n${output}`);
    return { results: JSON.parse(fs.readFileSync(report, "utf8")) as MochaJson, output };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function childPassed(run: ChildRun | undefined, title: string): void {
  if (!run) throw new Error("the child process did not run");
  const t = run.results.tests.find((x) => x.title === title);
  if (!t) throw new Error(`the child did not run "${title}"\n${run.output}`);
  if (t.err && t.err.message) throw new Error(`in the child process: ${t.err.stack ?? t.err.message}`);
  if (!run.results.passes.some((x) => x.title === title)) throw new Error(`"${title}" did not pass in the child`);
}
