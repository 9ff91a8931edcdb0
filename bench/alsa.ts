// npm run bench:alsa — microphone capture, side by side, from the same fake
// device (alsa-lib's file plugin reading a wave), 48 kHz stereo S16_LE in
// 10 ms chunks:
//
//   devplane  the alsa-capture engine (lib/capture): the native capture
//             thread, levels per chunk, a message object per chunk in Node;
//   arecord   what existing microphone nodes do: spawn
//             `arecord -D dev -f S16_LE -r 48000 -c 2 -t raw`, read its stdout
//             and cut it into 10 ms chunks, a message object per chunk.
//
// Two runs of each, every one in a process of its own:
//
//   unpaced   the file plugin as it is: it hands over audio as fast as it is
//             read, so both sides run flat out. CPU per second of audio is
//             CPU time (all threads; for arecord its process plus the Node
//             reader, from /proc/<pid>/stat) divided by the audio delivered.
//             Latency means nothing here and is not given.
//   paced     the same device behind test/fakes/fake-asound.c, which makes
//             each read take as long as the audio it returns (10 ms pieces,
//             as a device with 10 ms periods) and stamps every piece with the
//             time it was complete; loaded with DEVPLANE_LIBASOUND for
//             devplane and LD_PRELOAD for arecord. Chunk-to-message latency is
//             from that stamp to the message in Node (p50/p99), and CPU per
//             second of audio is what a real microphone would cost.
//
// One JSON line per run, then one per mode comparing CPU (target: devplane at
// most half of the arecord pipe). BENCH_ALSA_SECONDS="60,20" sets the audio
// lengths of the unpaced and paced runs.
import { ChildProcess, execFileSync, spawn } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { AlsaCapture } from "../lib/capture";

const ROOT = path.resolve(__dirname, "..", "..");
const SHIM_SOURCE = path.join(ROOT, "test", "fakes", "fake-asound.c");
const SHIM = path.join(ROOT, "dist", "bench", "libdevplane-fake-asound.so");
const [UNPACED_S, PACED_S] = (process.env.BENCH_ALSA_SECONDS ?? "300,10").split(",").map(Number);
const REPEAT = Number(process.env.BENCH_ALSA_REPEAT ?? 5);
const RATE = 48000;
const CHANNELS = 2;
const CHUNK_MS = 10;
const CHUNK_BYTES = (RATE * CHUNK_MS * CHANNELS * 2) / 1000;
/** Chunks left out at the start of every run: opening the device, first allocations, JIT. */
const WARMUP = 50;

type Mode = "unpaced" | "paced";
type PathName = "devplane" | "arecord" | "arecord+levels";

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
  extra: Partial<Result> = {},
): Result {
  const audio = (chunks * CHUNK_MS) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    bench: "alsa",
    mode,
    path: pathName,
    audio_s: audio,
    chunks,
    wall_s: round(Number(wallNs) / 1e9),
    cpu_ms: round(cpu, 1),
    cpu_ms_per_audio_s: round(cpu / audio, 3),
    p50_ms: latencies.length ? round(percentile(latencies, 50)) : null,
    p99_ms: latencies.length ? round(percentile(latencies, 99)) : null,
    ...extra,
  };
}

/** The 8-byte stamp the pacing wrapper puts at the start of each 10 ms piece. */
function stampLatencyMs(chunk: Buffer, at: bigint): number {
  return Number(at - chunk.readBigUInt64LE(0)) / 1e6;
}

// Messages are kept in a small ring so that building them cannot be optimised away.
const kept: unknown[] = new Array(64);

function runDevplane(mode: Mode, chunks: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const capture = new AlsaCapture({ device: "bench", rate: RATE, channels: CHANNELS, format: "S16_LE", chunkMs: CHUNK_MS });
    const latencies: number[] = [];
    let n = 0;
    let cpu0 = process.cpuUsage();
    let t0 = nowNs();
    capture.on("error", (e) => reject(e));
    capture.on("chunk", (chunk) => {
      const at = nowNs();
      // What the node sends for each chunk.
      kept[n & 63] = { topic: "audio", payload: chunk.payload, audio: chunk.audio };
      n++;
      if (n === WARMUP) {
        cpu0 = process.cpuUsage();
        t0 = nowNs();
      } else if (n > WARMUP) {
        if (mode === "paced" && chunk.payload) latencies.push(stampLatencyMs(chunk.payload, at));
        if (n === WARMUP + chunks) {
          const cpu = cpuMs(process.cpuUsage(cpu0));
          const wall = nowNs() - t0;
          capture.stop();
          resolve(result(mode, "devplane", chunks, wall, cpu, latencies));
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

/** utime + stime of a process, in ms. */
function processCpuMs(pid: number, ticks: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command may contain spaces; fields resume after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
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

function runArecord(mode: Mode, chunks: number, withLevels: boolean): Promise<Result> {
  const ticks = clockTicks();
  return new Promise((resolve, reject) => {
    const env = mode === "paced" ? { ...process.env, LD_PRELOAD: SHIM } : process.env;
    const ar: ChildProcess = spawn("arecord", ["-D", "bench", "-f", "S16_LE", "-r", String(RATE), "-c", String(CHANNELS), "-t", "raw"], {
      env,
      stdio: ["ignore", "pipe", "ignore"],
    });
    const latencies: number[] = [];
    let n = 0;
    let rest: Buffer | undefined;
    let cpu0 = process.cpuUsage();
    let arCpu0 = 0;
    let t0 = nowNs();
    let done = false;
    ar.on("error", reject);
    ar.on("exit", (code) => {
      if (!done) reject(new Error(`arecord exited with ${code} after ${n} chunks`));
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
      } else if (n > WARMUP) {
        if (mode === "paced") latencies.push(stampLatencyMs(payload, at));
        if (n === WARMUP + chunks) {
          const nodeCpu = cpuMs(process.cpuUsage(cpu0));
          const arCpu = processCpuMs(ar.pid as number, ticks) - arCpu0;
          const wall = nowNs() - t0;
          done = true;
          ar.kill("SIGKILL");
          resolve(
            result(mode, withLevels ? "arecord+levels" : "arecord", chunks, wall, nodeCpu + arCpu, latencies, {
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

async function main(): Promise<void> {
  const runAt = process.argv.indexOf("--run");
  if (runAt > 0) {
    const pathName = process.argv[runAt + 1] as PathName;
    const mode = process.argv[runAt + 2] as Mode;
    const chunks = ((mode === "unpaced" ? UNPACED_S : PACED_S) * 1000) / CHUNK_MS;
    const r = pathName === "devplane" ? await runDevplane(mode, chunks) : await runArecord(mode, chunks, pathName === "arecord+levels");
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
    const paths: PathName[] = ["devplane", "arecord", "arecord+levels"];
    for (const mode of ["unpaced", "paced"] as const) {
      // Unpaced runs are short and share the machine with whatever else runs:
      // several, interleaved, and the median of each.
      const rounds = mode === "unpaced" ? REPEAT : 1;
      const runs = new Map<PathName, Result[]>(paths.map((p) => [p, []]));
      for (let i = 0; i < rounds; i++) {
        for (const p of paths) {
          const env = mode === "paced" ? (p === "devplane" ? { ...paced, DEVPLANE_LIBASOUND: SHIM } : paced) : base;
          (runs.get(p) as Result[]).push(await child(mode, p, env));
        }
      }
      const m = new Map(paths.map((p) => [p, median(runs.get(p) as Result[])]));
      for (const p of paths) console.log(JSON.stringify(m.get(p)));
      const dp = m.get("devplane") as Result;
      for (const other of ["arecord", "arecord+levels"] as const) {
        const ar = m.get(other) as Result;
        const ratio = dp.cpu_ms_per_audio_s / ar.cpu_ms_per_audio_s;
        console.log(
          JSON.stringify({
            bench: "alsa",
            mode,
            compare: `devplane/${other}`,
            cpu_ratio: round(ratio, 3),
            target_cpu_ratio: 0.5,
            met: ratio <= 0.5,
            latency_p50_ms: [dp.p50_ms, ar.p50_ms],
            latency_p99_ms: [dp.p99_ms, ar.p99_ms],
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
