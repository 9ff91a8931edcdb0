// npm run bench:alsa — microphone capture, side by side, from the same fake
// device (alsa-lib's file plugin reading a wave), 48 kHz stereo S16_LE in
// 10 ms chunks, a message object per chunk in Node on every path:
//
//   devplane             the alsa-capture engine (lib/capture) as a node uses
//                        it by default: the native capture thread with 10 ms
//                        periods, levels per chunk, chunks handed to Node as
//                        soon as they are read;
//   devplane-batch12     the same with batch 12: a 120 ms period, twelve
//                        chunks handed over per wake-up, still one message
//                        per 10 ms chunk; the latency of arecord's default;
//   arecord              what existing microphone nodes do: spawn
//                        `arecord -D dev -f S16_LE -r 48000 -c 2 -t raw`, read
//                        its stdout and cut it into 10 ms chunks. arecord's
//                        default periods are 125 ms (a 500 ms buffer in four),
//                        so Node hears from it 8 times a second and a chunk
//                        waits up to 125 ms;
//   arecord-10ms         the same with `--period-time=10000
//                        --buffer-time=500000`, what a flow that needs each
//                        10 ms chunk when it is captured has to run: the
//                        latency devplane gives by default;
//   ...+levels           the arecord paths also computing the RMS and peak
//                        levels devplane puts in every message, in JavaScript.
//
// Two runs of each, every one in a process of its own:
//
//   unpaced   the file plugin as it is: it hands over audio as fast as it is
//             read, so every path runs flat out. CPU per second of audio is
//             CPU time (all threads; for arecord its process plus the Node
//             reader) divided by the audio delivered. Latency means nothing
//             here and is not given.
//   paced     the same device behind test/fakes/fake-asound.c, which makes
//             audio readable a period at a time, in real time, as a sound
//             card does, and stamps every 10 ms piece with the time it was
//             complete; loaded with DEVPLANE_LIBASOUND for devplane and
//             LD_PRELOAD for arecord. Chunk-to-message latency is from that
//             stamp to the message in Node (p50/p99), and CPU per second of
//             audio is what a real microphone would cost.
//
// CPU time is exact on both sides: getrusage for the Node processes, the
// scheduler's runtime (/proc/<pid>/schedstat, nanoseconds) for arecord.
// Each line also gives the period the reader woke on and how many times a
// second Node was handed audio.
//
// One JSON line per path (the median of several runs, interleaved), then one
// per comparison. The target (devplane at most half the CPU of the arecord
// pipe) is for paths of the same latency: "matched_latency" says which
// comparisons those are. BENCH_ALSA_SECONDS="300,10" sets the audio lengths
// of the unpaced and paced runs, BENCH_ALSA_REPEAT="5,3" how many of each.
import { ChildProcess, execFileSync, spawn } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { AlsaCapture } from "../lib/capture";

const ROOT = path.resolve(__dirname, "..", "..");
const SHIM_SOURCE = path.join(ROOT, "test", "fakes", "fake-asound.c");
const SHIM = path.join(ROOT, "dist", "bench", "libdevplane-fake-asound.so");
const [UNPACED_S, PACED_S] = (process.env.BENCH_ALSA_SECONDS ?? "300,10").split(",").map(Number);
const [UNPACED_RUNS, PACED_RUNS] = (process.env.BENCH_ALSA_REPEAT ?? "5,3").split(",").map(Number);
const RATE = 48000;
const CHANNELS = 2;
const CHUNK_MS = 10;
const CHUNK_BYTES = (RATE * CHUNK_MS * CHANNELS * 2) / 1000;
/** Chunks left out at the start of every run: opening the device, first allocations, JIT. */
const WARMUP = 50;

type Mode = "unpaced" | "paced";

interface PathSpec {
  kind: "devplane" | "arecord";
  /** devplane: chunks per wake-up. */
  batch?: number;
  /** arecord: extra arguments, and whether Node computes the levels too. */
  arecordArgs?: string[];
  levels?: boolean;
  /** Paths of the same latency class are compared against each other for the target. */
  latency: "10 ms" | "125 ms";
}

const PATHS = {
  devplane: { kind: "devplane", latency: "10 ms" },
  "devplane-batch12": { kind: "devplane", batch: 12, latency: "125 ms" },
  arecord: { kind: "arecord", latency: "125 ms" },
  "arecord+levels": { kind: "arecord", levels: true, latency: "125 ms" },
  "arecord-10ms": { kind: "arecord", arecordArgs: ["--period-time=10000", "--buffer-time=500000"], latency: "10 ms" },
  "arecord-10ms+levels": {
    kind: "arecord",
    arecordArgs: ["--period-time=10000", "--buffer-time=500000"],
    levels: true,
    latency: "10 ms",
  },
} satisfies Record<string, PathSpec>;
type PathName = keyof typeof PATHS;
const PATH_NAMES = Object.keys(PATHS) as PathName[];

interface Result {
  bench: "alsa";
  mode: Mode;
  path: PathName;
  audio_s: number;
  chunks: number;
  wall_s: number;
  cpu_ms: number;
  cpu_ms_per_audio_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  /** The period the reading thread woke on, as the device was configured. */
  period_ms: number | null;
  /** How many times a second Node was handed audio. */
  deliveries_per_s: number;
  arecord_cpu_ms?: number;
  node_cpu_ms?: number;
  runs?: number;
}

const nowNs = (): bigint => process.hrtime.bigint();
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function result(
  mode: Mode,
  pathName: PathName,
  chunks: number,
  wallNs: bigint,
  cpu: number,
  latencies: number[],
  periodFrames: number | undefined,
  deliveries: number,
  extra: Partial<Result> = {},
): Result {
  const audio = (chunks * CHUNK_MS) / 1000;
  const wall = Number(wallNs) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    bench: "alsa",
    mode,
    path: pathName,
    audio_s: audio,
    chunks,
    wall_s: round(wall),
    cpu_ms: round(cpu, 1),
    cpu_ms_per_audio_s: round(cpu / audio, 3),
    p50_ms: latencies.length ? round(percentile(latencies, 50)) : null,
    p99_ms: latencies.length ? round(percentile(latencies, 99)) : null,
    period_ms: periodFrames ? round((periodFrames * 1000) / RATE, 1) : null,
    deliveries_per_s: round(deliveries / audio, 1),
    ...extra,
  };
}

/** The 8-byte stamp the pacing wrapper puts at the start of each 10 ms piece. */
function stampLatencyMs(chunk: Buffer, at: bigint): number {
  return Number(at - chunk.readBigUInt64LE(0)) / 1e6;
}

// Messages are kept in a small ring so that building them cannot be optimised away.
const kept: unknown[] = new Array(64);

function runDevplane(mode: Mode, pathName: PathName, spec: PathSpec, chunks: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const capture = new AlsaCapture({ device: "bench", rate: RATE, channels: CHANNELS, format: "S16_LE", chunkMs: CHUNK_MS, batch: spec.batch });
    const latencies: number[] = [];
    let n = 0;
    let periodFrames: number | undefined;
    // Chunks handed over together share the time they were read.
    let deliveries = 0;
    let lastRead = -1;
    let cpu0 = process.cpuUsage();
    let t0 = nowNs();
    capture.on("error", (e) => reject(e));
    capture.on("state", (s) => {
      if (s.state === "running") periodFrames = s.periodFrames;
    });
    capture.on("chunk", (chunk) => {
      const at = nowNs();
      // What the node sends for each chunk.
      kept[n & 63] = { topic: "audio", payload: chunk.payload, audio: chunk.audio };
      n++;
      if (chunk.readNs !== lastRead) {
        lastRead = chunk.readNs;
        deliveries++;
      }
      if (n === WARMUP) {
        cpu0 = process.cpuUsage();
        t0 = nowNs();
        deliveries = 0;
      } else if (n > WARMUP) {
        if (mode === "paced" && chunk.payload) latencies.push(stampLatencyMs(chunk.payload, at));
        if (n === WARMUP + chunks) {
          const cpu = cpuMs(process.cpuUsage(cpu0));
          const wall = nowNs() - t0;
          capture.stop();
          resolve(result(mode, pathName, chunks, wall, cpu, latencies, periodFrames, deliveries));
        }
      }
    });
    capture.start();
  });
}

function clockTicks(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
}

/**
 * CPU time of a single-threaded process, in ms: the scheduler's runtime in
 * nanoseconds where the kernel keeps it, else utime + stime in clock ticks.
 */
function processCpuMs(pid: number, ticks: number): number {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
  } catch {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command may contain spaces; fields resume after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
  }
}

/**
 * What a flow behind the arecord pipe needs to show the level devplane puts
 * in every message: RMS and peak per channel of each chunk, in dBFS.
 */
function levelsOf(payload: Buffer): { rmsDbfs: number[]; peakDbfs: number[] } {
  // A view when the chunk is aligned (it is, cut at 1920-byte steps of a read), else a copy.
  const samples =
    payload.byteOffset % 2 === 0
      ? new Int16Array(payload.buffer, payload.byteOffset, payload.length >> 1)
      : new Int16Array(Uint8Array.from(payload).buffer);
  let sum0 = 0;
  let sum1 = 0;
  let peak0 = 0;
  let peak1 = 0;
  for (let i = 0; i < samples.length; i += 2) {
    const l = samples[i];
    const r = samples[i + 1];
    sum0 += l * l;
    sum1 += r * r;
    if (l > peak0) peak0 = l;
    else if (-l > peak0) peak0 = -l;
    if (r > peak1) peak1 = r;
    else if (-r > peak1) peak1 = -r;
  }
  const frames = samples.length >> 1;
  const db = (x: number) => (x > 0 ? Math.round(2000 * Math.log10(x)) / 100 : -120);
  return {
    rmsDbfs: [db(Math.sqrt(sum0 / frames) / 32768), db(Math.sqrt(sum1 / frames) / 32768)],
    peakDbfs: [db(peak0 / 32768), db(peak1 / 32768)],
  };
}

function runArecord(mode: Mode, pathName: PathName, spec: PathSpec, chunks: number): Promise<Result> {
  const ticks = clockTicks();
  const withLevels = spec.levels === true;
  return new Promise((resolve, reject) => {
    const env = mode === "paced" ? { ...process.env, LD_PRELOAD: SHIM } : process.env;
    // -v prints the configuration arecord settled on, period size included.
    const args = ["-v", "-D", "bench", "-f", "S16_LE", "-r", String(RATE), "-c", String(CHANNELS), "-t", "raw", ...(spec.arecordArgs ?? [])];
    const ar: ChildProcess = spawn("arecord", args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let setup = "";
    ar.stderr?.on("data", (d: Buffer) => {
      if (setup.length < 65536) setup += d.toString();
    });
    const latencies: number[] = [];
    let n = 0;
    let deliveries = 0;
    let rest: Buffer | undefined;
    let cpu0 = process.cpuUsage();
    let arCpu0 = 0;
    let t0 = nowNs();
    let done = false;
    ar.on("error", reject);
    ar.on("exit", (code) => {
      if (!done) reject(new Error(`arecord exited with ${code} after ${n} chunks: ${setup}`));
    });
    // One message per 10 ms chunk, cutting the stream as it comes: only a
    // chunk split between two reads is copied together.
    const onChunk = (payload: Buffer, at: bigint): boolean => {
      kept[n & 63] = withLevels ? { topic: "audio", payload, audio: { level: levelsOf(payload) } } : { topic: "audio", payload };
      n++;
      if (n === WARMUP) {
        cpu0 = process.cpuUsage();
        arCpu0 = processCpuMs(ar.pid as number, ticks);
        t0 = nowNs();
        deliveries = 0;
      } else if (n > WARMUP) {
        if (mode === "paced") latencies.push(stampLatencyMs(payload, at));
        if (n === WARMUP + chunks) {
          const nodeCpu = cpuMs(process.cpuUsage(cpu0));
          const arCpu = processCpuMs(ar.pid as number, ticks) - arCpu0;
          const wall = nowNs() - t0;
          done = true;
          ar.kill("SIGKILL");
          const period = /period_size\s*:\s*(\d+)/.exec(setup);
          resolve(
            result(mode, pathName, chunks, wall, nodeCpu + arCpu, latencies, period ? Number(period[1]) : undefined, deliveries, {
              arecord_cpu_ms: round(arCpu, 1),
              node_cpu_ms: round(nodeCpu, 1),
            }),
          );
          return false;
        }
      }
      return true;
    };
    ar.stdout?.on("data", (data: Buffer) => {
      if (done) return;
      const at = nowNs();
      deliveries++;
      let o = 0;
      if (rest) {
        const need = CHUNK_BYTES - rest.length;
        if (data.length < need) {
          rest = Buffer.concat([rest, data]);
          return;
        }
        if (!onChunk(Buffer.concat([rest, data.subarray(0, need)], CHUNK_BYTES), at)) return;
        rest = undefined;
        o = need;
      }
      for (; o + CHUNK_BYTES <= data.length; o += CHUNK_BYTES) {
        if (!onChunk(data.subarray(o, o + CHUNK_BYTES), at)) return;
      }
      rest = o < data.length ? data.subarray(o) : undefined;
    });
  });
}

function buildShim(): void {
  fs.mkdirSync(path.dirname(SHIM), { recursive: true });
  execFileSync("cc", ["-O2", "-std=gnu99", "-shared", "-fPIC", "-o", SHIM, SHIM_SOURCE, "-ldl"]);
}

/** A wave longer than the longest run, and the configuration naming it "bench". */
function writeDevice(dir: string, seconds: number): string {
  const wave = path.join(dir, "bench-s16-48000-2.raw");
  const second = Buffer.alloc(RATE * CHANNELS * 2);
  for (let i = 0; i < RATE; i++) {
    // A 1 kHz tone at -20 dBFS.
    const v = Math.round(3277 * Math.sin((2 * Math.PI * 1000 * i) / RATE));
    second.writeInt16LE(v, i * 4);
    second.writeInt16LE(v, i * 4 + 2);
  }
  const fd = fs.openSync(wave, "w");
  for (let s = 0; s < seconds; s++) fs.writeSync(fd, second);
  fs.closeSync(fd);
  const conf = path.join(dir, "asound.conf");
  fs.writeFileSync(
    conf,
    `pcm.bench {\n    type file\n    slave.pcm { type null }\n    file "/dev/null"\n    infile "${wave}"\n    format "raw"\n}\n`,
  );
  return conf;
}

function child(mode: Mode, pathName: PathName, env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [__filename, "--run", pathName, mode], { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    p.on("exit", (code) => {
      try {
        if (code !== 0) throw new Error(`${pathName} ${mode} exited with ${code}: ${out}`);
        resolve(JSON.parse(out.trim().split("\n").pop() as string) as Result);
      } catch (err) {
        reject(err);
      }
    });
  });
}

function median(results: Result[]): Result {
  const sorted = [...results].sort((a, b) => a.cpu_ms_per_audio_s - b.cpu_ms_per_audio_s);
  return { ...sorted[Math.floor(sorted.length / 2)], runs: results.length } as Result;
}

/** devplane against each arecord path: the target holds for those of its own latency. */
const COMPARISONS: Array<[PathName, PathName]> = [
  ["devplane", "arecord-10ms"],
  ["devplane", "arecord-10ms+levels"],
  ["devplane-batch12", "arecord"],
  ["devplane-batch12", "arecord+levels"],
  ["devplane", "arecord"],
  ["devplane", "arecord+levels"],
];

async function main(): Promise<void> {
  const runAt = process.argv.indexOf("--run");
  if (runAt > 0) {
    const pathName = process.argv[runAt + 1] as PathName;
    const mode = process.argv[runAt + 2] as Mode;
    const chunks = ((mode === "unpaced" ? UNPACED_S : PACED_S) * 1000) / CHUNK_MS;
    const spec: PathSpec = PATHS[pathName];
    const r = spec.kind === "devplane" ? await runDevplane(mode, pathName, spec, chunks) : await runArecord(mode, pathName, spec, chunks);
    console.log(JSON.stringify(r));
    process.exit(0);
  }

  try {
    execFileSync("arecord", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("arecord is not installed (Debian: apt install alsa-utils)");
  }
  buildShim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "devplane-bench-alsa-"));
  try {
    const conf = writeDevice(dir, Math.max(UNPACED_S, PACED_S) + 10);
    const base = { ...process.env, ALSA_CONFIG_PATH: conf };
    const paced = { ...base, DEVPLANE_FAKE_ASOUND_PACE: "1", DEVPLANE_FAKE_ASOUND_STAMP: "1" };
    for (const mode of ["unpaced", "paced"] as const) {
      // Runs share the machine with whatever else runs on it: several,
      // interleaved, and the median of each.
      const rounds = mode === "unpaced" ? UNPACED_RUNS : PACED_RUNS;
      const runs = new Map<PathName, Result[]>(PATH_NAMES.map((p) => [p, []]));
      for (let i = 0; i < rounds; i++) {
        for (const p of PATH_NAMES) {
          const env = mode === "paced" ? (PATHS[p].kind === "devplane" ? { ...paced, DEVPLANE_LIBASOUND: SHIM } : paced) : base;
          (runs.get(p) as Result[]).push(await child(mode, p, env));
        }
      }
      const m = new Map(PATH_NAMES.map((p) => [p, median(runs.get(p) as Result[])]));
      for (const p of PATH_NAMES) console.log(JSON.stringify(m.get(p)));
      for (const [ours, other] of COMPARISONS) {
        const dp = m.get(ours) as Result;
        const ar = m.get(other) as Result;
        const ratio = dp.cpu_ms_per_audio_s / ar.cpu_ms_per_audio_s;
        const matched = PATHS[ours].latency === PATHS[other].latency;
        console.log(
          JSON.stringify({
            bench: "alsa",
            mode,
            compare: `${ours}/${other}`,
            latency: [PATHS[ours].latency, PATHS[other].latency],
            matched_latency: matched,
            cpu_ratio: round(ratio, 3),
            target_cpu_ratio: 0.5,
            met: ratio <= 0.5,
            latency_p50_ms: [dp.p50_ms, ar.p50_ms],
            latency_p99_ms: [dp.p99_ms, ar.p99_ms],
            deliveries_per_s: [dp.deliveries_per_s, ar.deliveries_per_s],
          }),
        );
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
