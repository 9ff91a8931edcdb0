// npm run bench:v4l2 — camera frames through the fake V4L2 camera, side by
// side in one run: devplane's capture thread handing every frame to
// JavaScript, writing straight into a shared-memory ring (driver-filled slots,
// and one copy), and ffmpeg -f v4l2 piping the same frames into Node (what
// ffmpeg-based Node-RED nodes do). 1080p YUYV at 60 fps and 720p MJPEG at
// 30 fps, BENCH_SECONDS (20) each after two seconds of warm-up; then the cost
// of encoding raw frames as JPEG. One JSON line per run, then the targets.
//
// The fake camera runs inside each measured process (LD_PRELOAD), so each run
// is a child process started with it, and part of every process's CPU time
// is the fake drawing its frames, on a thread of its own (in ffmpeg, its one
// thread besides the main one; in Node, the "dp-v4l2" thread that is not the
// capture thread). cpu_fake_ms_per_frame is that thread's time, measured in
// the same process; cpu_ms_per_frame_net is the rest: what the capture path
// itself costs.
//
// Latency: "dqbuf_to_msg" from the capture thread's VIDIOC_DQBUF to the frame
// reaching JavaScript; "dqbuf_to_readable" from DQBUF to a reader in another
// process seeing the frame in the ring ("…_copied": after copying it out;
// "dqbuf_to_commit": the capture's own part, up to publishing the frame, the
// rest being the reader's wake-up);
// "capture_to_…" from the frame's capture time (the buffer timestamp,
// CLOCK_MONOTONIC), which also applies to ffmpeg.
import { ChildProcess, execFileSync, spawn } from "child_process";
import fs from "fs";
import path from "path";
import { V4l2Capture } from "../lib/capture/v4l2";

const ROOT = path.resolve(__dirname, "..", "..");
const FAKE_DIR = path.join(ROOT, "test", "fakes", "v4l2");
const FAKE = path.join(FAKE_DIR, "build", "libdevplane-fake-v4l2.so");
const PROBE = path.join(FAKE_DIR, "build", "probe");
const READER = path.join(ROOT, "dist", "bench", "v4l2_ring_reader");
const SECONDS = Number(process.env.BENCH_SECONDS || 20);
// Optional filters, comma-separated: BENCH_CASES=1080p-yuyv-60 BENCH_PATHS=fake-only,devplane-every
const ONLY_CASES = (process.env.BENCH_CASES ?? "").split(",").filter(Boolean);
const ONLY_PATHS = (process.env.BENCH_PATHS ?? "").split(",").filter(Boolean);
// "fake-only" (the fake camera with its own probe client) runs only when named.
const wanted = (c: Case, p: Path) =>
  (!ONLY_CASES.length || ONLY_CASES.includes(c.name)) && (ONLY_PATHS.length ? ONLY_PATHS.includes(p) : p !== "fake-only");
const WARMUP = 2;

interface Case {
  name: string;
  format: "YUYV" | "MJPEG";
  width: number;
  height: number;
  fps: number;
}

const CASES: Case[] = [
  { name: "1080p-yuyv-60", format: "YUYV", width: 1920, height: 1080, fps: 60 },
  { name: "720p-mjpeg-30", format: "MJPEG", width: 1280, height: 720, fps: 30 },
];

const JPEG_CASES: Case[] = [
  { name: "720p-yuyv-30-to-jpeg", format: "YUYV", width: 1280, height: 720, fps: 30 },
  { name: "1080p-yuyv-30-to-jpeg", format: "YUYV", width: 1920, height: 1080, fps: 30 },
];

type Path = "fake-only" | "devplane-every" | "devplane-ring" | "devplane-ring-spin" | "devplane-ring-copy" | "ffmpeg-pipe" | "devplane-jpeg";

// The low-latency reader's window either side of a frame's expected arrival.
const SPIN_US = Number(process.env.BENCH_SPIN_US || 300);

interface Job {
  c: Case;
  path: Path;
  device: string;
  seconds: number;
}

type Result = Record<string, string | number | boolean>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
}

const us = (ns: number) => Math.round(ns / 100) / 10;
const ms3 = (v: number) => Math.round(v * 1000) / 1000;

/**
 * CPU time of each thread of a process, in ns, with the thread's name. From
 * schedstat (nanoseconds on the CPU) rather than stat's clock ticks: at 30 fps
 * a 10 ms tick is a third of a frame's whole budget.
 */
function threadCpu(pid: number): Map<number, { name: string; ns: number }> {
  const out = new Map<number, { name: string; ns: number }>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const ns = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      out.set(Number(tid), { name, ns });
    } catch {
      /* ended meanwhile */
    }
  }
  return out;
}

/** CPU time of a whole process (its threads alive now), in ns. */
function processCpuNs(pid: number): number {
  let ns = 0;
  for (const t of threadCpu(pid).values()) ns += t.ns;
  return ns;
}

/** CPU time of this process, in ns. */
function cpuNs(): number {
  return processCpuNs(process.pid);
}

/** CPU the threads picked by `isFake` spent between two threadCpu() samples. */
function fakeCpu(before: Map<number, { name: string; ns: number }>, after: Map<number, { name: string; ns: number }>, isFake: (tid: number, name: string) => boolean): number {
  let ns = 0;
  for (const [tid, t] of after) if (isFake(tid, t.name)) ns += t.ns - (before.get(tid)?.ns ?? 0);
  return ns;
}

/** Where the CPU went, per frame: the main (JavaScript) thread, the capture thread, the fake, the rest. */
function byThread(before: Map<number, { name: string; ns: number }>, after: Map<number, { name: string; ns: number }>, captureTid: number | undefined, frames: number): string {
  const sums = new Map<string, number>();
  for (const [tid, t] of after) {
    const role = tid === process.pid ? "js" : tid === captureTid ? "capture" : t.name === "dp-v4l2" ? "fake" : t.name;
    sums.set(role, (sums.get(role) ?? 0) + t.ns - (before.get(tid)?.ns ?? 0));
  }
  return [...sums].filter(([, ns]) => ns > 0).map(([role, ns]) => `${role}=${ms3(ns / 1e6 / Math.max(1, frames))}`).join(" ");
}

function dpfk(frame: Buffer, format: string): { seq: number; ns: number } | undefined {
  const at = format === "MJPEG" ? 24 : 0;
  if (frame.length < at + 32 || frame.toString("latin1", at, at + 4) !== "DPFK") return undefined;
  return { seq: frame.readUInt32LE(at + 4), ns: Number(frame.readBigUInt64LE(at + 8)) };
}

// ---------------------------------------------------------------- child side

async function runDevplane(job: Job): Promise<Result> {
  const { c } = job;
  const jpeg = job.path === "devplane-jpeg";
  const capture = new V4l2Capture({ device: job.device, format: c.format, width: c.width, height: c.height, fps: c.fps, extraPaths: [], jpeg });
  const dq: number[] = [];
  const cap: number[] = [];
  let frames = 0;
  let first: { seq: number; dropped: number } | undefined;
  let last: { seq: number; dropped: number } | undefined;
  let measuring = false;
  capture.on("error", (e) => console.error(`${job.path}: ${e.message}`));
  capture.on("frame", (f) => {
    if (!measuring) return;
    const now = Number(process.hrtime.bigint());
    dq.push(now - f.dqbufNs);
    cap.push(now - f.frame.monotonicNs);
    frames++;
    if (!first) first = { seq: f.frame.seq, dropped: f.frame.dropped };
    last = { seq: f.frame.seq, dropped: f.frame.dropped };
  });
  capture.start();
  await sleep(WARMUP * 1000);
  const stats0 = capture.stats();
  measuring = true;
  const cpu0 = cpuNs();
  const threads0 = threadCpu(process.pid);
  const t0 = Date.now();
  await sleep(job.seconds * 1000);
  const cpu = cpuNs() - cpu0;
  const captureTid = stats0?.threadId;
  const threads1 = threadCpu(process.pid);
  const fake = fakeCpu(threads0, threads1, (tid, name) => name === "dp-v4l2" && tid !== captureTid);
  const elapsed = (Date.now() - t0) / 1000;
  measuring = false;
  const stats = capture.stats();
  capture.stop();
  const dropped = last && first ? last.dropped - first.dropped : 0;
  const out: Result = {
    fps: Math.round((frames / elapsed) * 100) / 100,
    frames,
    dropped,
    seq_gaps: last && first ? last.seq - first.seq + 1 - frames : 0,
    cpu_ms_per_frame: ms3(cpu / 1e6 / Math.max(1, frames)),
    cpu_fake_ms_per_frame: ms3(fake / 1e6 / Math.max(1, frames)),
    cpu_ms_per_frame_net: ms3((cpu - fake) / 1e6 / Math.max(1, frames)),
    dqbuf_to_msg_p50_us: us(pct(dq, 50)),
    dqbuf_to_msg_p99_us: us(pct(dq, 99)),
    capture_to_msg_p50_us: us(pct(cap, 50)),
    capture_to_msg_p99_us: us(pct(cap, 99)),
    memory: stats?.memory ?? "",
    cpu_by_thread: byThread(threads0, threads1, captureTid, frames),
  };
  if (stats?.memory === "userptr" && stats0) {
    out.pool_hits = (stats.poolHits ?? 0) - (stats0.poolHits ?? 0);
    out.pool_misses = (stats.poolMisses ?? 0) - (stats0.poolMisses ?? 0);
  }
  if (jpeg && stats && stats0) {
    out.encoded = stats.encoded - stats0.encoded;
    out.encode_ms_per_frame = ms3(stats.encodeMs);
    out.captured_frames = (stats.captured ?? 0) - (stats0.captured ?? 0);
  }
  return out;
}

async function runRing(job: Job): Promise<Result> {
  const { c } = job;
  const name = `dp-bench-v4l2-${process.pid}`;
  const zeroCopy = job.path !== "devplane-ring-copy";
  const capture = new V4l2Capture({
    device: job.device,
    format: c.format,
    width: c.width,
    height: c.height,
    fps: c.fps,
    delivery: "ring",
    ring: name,
    ringSlots: 8,
    metadata: false,
    zeroCopy,
    extraPaths: [],
  });
  capture.on("error", (e) => console.error(`${job.path}: ${e.message}`));
  capture.start();
  await new Promise<void>((resolve) => capture.once("state", () => resolve()));
  const args = [name, String(job.seconds), String(WARMUP)];
  if (job.path === "devplane-ring-spin") args.push(String(SPIN_US));
  const reader = spawn(READER, args, { stdio: ["ignore", "pipe", "inherit"] });
  let line = "";
  reader.stdout.on("data", (d: Buffer) => (line += d.toString()));
  await sleep(WARMUP * 1000);
  const cpu0 = cpuNs();
  const threads0 = threadCpu(process.pid);
  const captureTid = capture.stats()?.threadId;
  const exited = new Promise<void>((resolve) => reader.on("exit", () => resolve()));
  await exited;
  const cpu = cpuNs() - cpu0;
  const fake = fakeCpu(threads0, threadCpu(process.pid), (tid, name) => name === "dp-v4l2" && tid !== captureTid);
  const stats = capture.stats();
  capture.stop();
  const r = JSON.parse(line) as Record<string, number>;
  const frames = r.frames;
  return {
    fps: Math.round((frames / job.seconds) * 100) / 100,
    frames,
    dropped: r.lost + r.missed,
    reader_missed: r.missed,
    errors: r.errors,
    cpu_ms_per_frame: ms3((cpu + r.cpu_ns) / 1e6 / Math.max(1, frames)),
    cpu_fake_ms_per_frame: ms3(fake / 1e6 / Math.max(1, frames)),
    cpu_ms_per_frame_net: ms3((cpu + r.cpu_ns - fake) / 1e6 / Math.max(1, frames)),
    cpu_reader_ms_per_frame: ms3(r.cpu_ns / 1e6 / Math.max(1, frames)),
    dqbuf_to_readable_p50_us: us(r.ready_p50_ns),
    dqbuf_to_readable_p99_us: us(r.ready_p99_ns),
    dqbuf_to_readable_max_us: us(r.ready_max_ns),
    dqbuf_to_copied_p50_us: us(r.copied_p50_ns),
    dqbuf_to_copied_p99_us: us(r.copied_p99_ns),
    dqbuf_to_commit_p50_us: us(r.commit_p50_ns),
    dqbuf_to_commit_p99_us: us(r.commit_p99_ns),
    capture_to_readable_p50_us: us(r.capture_p50_ns),
    capture_to_readable_p99_us: us(r.capture_p99_ns),
    memory: stats?.memory ?? "",
  };
}

/** Splits ffmpeg's output into frames: fixed-size raw frames, or JPEGs ending in FF D9. */
class FrameSplitter {
  private chunks: Buffer[] = [];
  private size = 0;
  private lastByte = -1;

  constructor(
    private readonly frameBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.frameBytes) {
      let rest = chunk;
      while (this.size + rest.length >= this.frameBytes) {
        const take = this.frameBytes - this.size;
        this.chunks.push(rest.subarray(0, take));
        this.emit();
        rest = rest.subarray(take);
      }
      if (rest.length) {
        this.chunks.push(rest);
        this.size += rest.length;
      }
      return;
    }
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const prev = i === 0 ? this.lastByte : chunk[i - 1];
      if (prev === 0xff && chunk[i] === 0xd9) {
        this.chunks.push(chunk.subarray(from, i + 1));
        this.emit();
        from = i + 1;
      }
    }
    if (from < chunk.length) {
      this.chunks.push(chunk.subarray(from));
      this.size += chunk.length - from;
    }
    this.lastByte = chunk[chunk.length - 1];
  }

  private emit(): void {
    const frame = this.chunks.length === 1 ? Buffer.from(this.chunks[0]) : Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    this.onFrame(frame);
  }
}

async function runFfmpeg(job: Job): Promise<Result> {
  const { c } = job;
  const args = [
    "-hide_banner",
    "-loglevel",
    "error",
    "-f",
    "v4l2",
    "-input_format",
    c.format === "MJPEG" ? "mjpeg" : "yuyv422",
    "-video_size",
    `${c.width}x${c.height}`,
    "-framerate",
    String(c.fps),
    "-i",
    job.device,
    "-c",
    "copy",
    "-f",
    c.format === "MJPEG" ? "mjpeg" : "rawvideo",
    "pipe:1",
  ];
  const ff: ChildProcess = spawn("ffmpeg", args, { stdio: ["ignore", "pipe", "pipe"] });
  // Stopping ffmpeg mid-stream makes it complain about its buffers; say only what matters.
  let errors = "";
  ff.stderr?.on("data", (d: Buffer) => (errors += d.toString()));
  let measuring = false;
  const lat: number[] = [];
  let frames = 0;
  let firstSeq = -1;
  let lastSeq = -1;
  const splitter = new FrameSplitter(c.format === "MJPEG" ? 0 : c.width * c.height * 2, (frame) => {
    if (!measuring) return;
    const h = dpfk(frame, c.format);
    if (!h) return;
    lat.push(Number(process.hrtime.bigint()) - h.ns);
    frames++;
    if (firstSeq < 0) firstSeq = h.seq;
    lastSeq = h.seq;
  });
  ff.stdout?.on("data", (d: Buffer) => splitter.push(d));
  await sleep(WARMUP * 1000);
  measuring = true;
  const ffPid = ff.pid as number;
  const cpu0 = cpuNs();
  const ff0 = processCpuNs(ffPid);
  const threads0 = threadCpu(ffPid);
  const t0 = Date.now();
  await sleep(job.seconds * 1000);
  const ffCpu = processCpuNs(ffPid) - ff0;
  // With -c copy ffmpeg runs on its main thread; the other one is the fake camera's.
  const fake = fakeCpu(threads0, threadCpu(ffPid), (tid) => tid !== ffPid);
  const cpu = cpuNs() - cpu0;
  const elapsed = (Date.now() - t0) / 1000;
  measuring = false;
  ff.kill("SIGINT");
  await new Promise((resolve) => ff.on("exit", resolve));
  if (frames === 0) process.stderr.write(errors);
  return {
    fps: Math.round((frames / elapsed) * 100) / 100,
    frames,
    dropped: lastSeq >= 0 ? lastSeq - firstSeq + 1 - frames : 0,
    cpu_ms_per_frame: ms3((cpu + ffCpu) / 1e6 / Math.max(1, frames)),
    cpu_fake_ms_per_frame: ms3(fake / 1e6 / Math.max(1, frames)),
    cpu_ms_per_frame_net: ms3((cpu + ffCpu - fake) / 1e6 / Math.max(1, frames)),
    cpu_ffmpeg_ms_per_frame: ms3((ffCpu - fake) / 1e6 / Math.max(1, frames)),
    cpu_node_ms_per_frame: ms3(cpu / 1e6 / Math.max(1, frames)),
    capture_to_msg_p50_us: us(pct(lat, 50)),
    capture_to_msg_p99_us: us(pct(lat, 99)),
  };
}

/** The fake camera with its own probe client, which barely looks at the frames: a reference. */
async function runFakeOnly(job: Job): Promise<Result> {
  const { c } = job;
  const total = Math.round((WARMUP + job.seconds) * c.fps);
  const probe = spawn(
    PROBE,
    ["-d", job.device, "-f", c.format === "MJPEG" ? "MJPG" : "YUYV", "-s", `${c.width}x${c.height}`, "-r", String(c.fps), "-n", String(total), "--no-frame-lines", "--timeout-ms", "5000"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  probe.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  await sleep(WARMUP * 1000);
  const cpu0 = processCpuNs(probe.pid as number);
  const t0 = Date.now();
  await sleep(job.seconds * 1000 - 200);
  const cpu = processCpuNs(probe.pid as number) - cpu0;
  const elapsed = (Date.now() - t0) / 1000;
  await new Promise((resolve) => probe.on("exit", resolve));
  const summary = JSON.parse(out.trim().split("\n").pop() ?? "{}") as { frames?: number; gaps?: number; content_errors?: number };
  const frames = elapsed * c.fps;
  return {
    fps: c.fps,
    frames: summary.frames ?? 0,
    dropped: summary.gaps ?? 0,
    cpu_ms_per_frame: ms3(cpu / 1e6 / frames),
  };
}

async function child(job: Job): Promise<void> {
  let r: Result;
  switch (job.path) {
    case "fake-only":
      r = await runFakeOnly(job);
      break;
    case "ffmpeg-pipe":
      r = await runFfmpeg(job);
      break;
    case "devplane-ring":
    case "devplane-ring-spin":
    case "devplane-ring-copy":
      r = await runRing(job);
      break;
    default:
      r = await runDevplane(job);
  }
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

// ---------------------------------------------------------------- parent side

let counter = 0;

function runJob(c: Case, p: Path, seconds = SECONDS): Promise<Result> {
  const device = `/dev/dpbench-${process.pid}-${++counter}`;
  const job: Job = { c, path: p, device, seconds };
  const proc = spawn(process.execPath, [__filename, "--child", JSON.stringify(job)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, LD_PRELOAD: FAKE, DEVPLANE_FAKE_V4L2: `${device}:capture`, DEVPLANE_FAKE_V4L2_CONTROL: "", DEVPLANE_V4L2_DEVICES: "" },
  });
  let out = "";
  proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    proc.on("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line) as Result);
      } catch {
        reject(new Error(`${p} ${c.name} exited with ${code}: ${out}`));
      }
    }),
  );
}

function hasFfmpeg(): boolean {
  try {
    execFileSync("ffmpeg", ["-hide_banner", "-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  execFileSync("make", ["-s", "-C", FAKE_DIR], { stdio: ["ignore", "ignore", "inherit"] });
  fs.mkdirSync(path.dirname(READER), { recursive: true });
  execFileSync("cc", ["-O2", "-I", path.join(ROOT, "native", "include"), "-o", READER, path.join(ROOT, "bench", "v4l2_ring_reader.c")]);
  const ffmpeg = hasFfmpeg();
  const results: Record<string, Record<string, Result>> = {};
  const print = (c: Case, p: Path, r: Result) => {
    (results[c.name] ??= {})[p] = r;
    process.stdout.write(`${JSON.stringify({ bench: "v4l2", case: c.name, path: p, seconds: SECONDS, ...r })}\n`);
  };
  for (const c of CASES) {
    const paths: Path[] = ["devplane-every", "devplane-ring", "devplane-ring-spin", "devplane-ring-copy"];
    if (ffmpeg) paths.push("ffmpeg-pipe");
    if (wanted(c, "fake-only")) print(c, "fake-only", await runJob(c, "fake-only"));
    for (const p of paths) if (wanted(c, p)) print(c, p, await runJob(c, p));
  }
  for (const c of JPEG_CASES) {
    if (wanted(c, "devplane-jpeg")) print(c, "devplane-jpeg", await runJob(c, "devplane-jpeg", Math.min(SECONDS, 10)));
  }
  // The targets, from the figures above.
  const hd = results["1080p-yuyv-60"];
  const ratio = (name: string) => {
    const r = results[name];
    const ours = Number(r?.["devplane-every"]?.cpu_ms_per_frame_net);
    const theirs = Number(r?.["ffmpeg-pipe"]?.cpu_ms_per_frame_net);
    return theirs > 0 ? Math.round((ours / theirs) * 1000) / 1000 : null;
  };
  const ringP99 = Number(hd?.["devplane-ring"]?.dqbuf_to_readable_p99_us);
  const spinP99 = Number(hd?.["devplane-ring-spin"]?.dqbuf_to_readable_p99_us);
  const targets = {
    zero_drops_1080p60: {
      every: hd?.["devplane-every"]?.dropped ?? null,
      ring: hd?.["devplane-ring"]?.dropped ?? null,
      pass: hd?.["devplane-every"]?.dropped === 0 && hd?.["devplane-ring"]?.dropped === 0,
    },
    cpu_per_frame_vs_ffmpeg: {
      "1080p-yuyv-60": ratio("1080p-yuyv-60"),
      "720p-mjpeg-30": ratio("720p-mjpeg-30"),
      pass: ffmpeg ? [ratio("1080p-yuyv-60"), ratio("720p-mjpeg-30")].every((x) => x !== null && x <= 1 / 3) : null,
    },
    ring_dqbuf_to_readable_p99_us: { sleeping_reader: ringP99, spinning_reader: spinP99, spin_us: SPIN_US, pass: ringP99 < 200 || spinP99 < 200 },
  };
  process.stdout.write(`${JSON.stringify({ bench: "v4l2", targets })}\n`);
}

if (process.argv[2] === "--child") {
  child(JSON.parse(process.argv[3]) as Job).then(
    () => process.exit(0),
    (err: Error) => {
      console.error(err.stack ?? err.message);
      process.exit(1);
    },
  );
} else {
  main().catch((err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
  });
}
