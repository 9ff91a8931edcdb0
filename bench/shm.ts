// npm run bench:shm — frames from Node to another process, side by side:
// the devplane ring, memcpy (the physical limit), a pipe to a child (how
// ffmpeg-based nodes move frames) and MQTT (aedes, and mosquitto if present).
// Prints one JSON line per transport and payload size.
//
// "memcpy" copies each frame into the next of eight frame-sized buffers (the
// footprint of the ring), which is what moving a frame through memory costs
// once it no longer fits in cache; hot_MBps beside it is the same copy
// between two cache-resident buffers.
//
// Latency: frames sent at a gentle pace, measured from the publishing call in
// Node to the frame being copied out in the other process (p50/p99).
// Throughput: frames sent back to back; fps and MB/s as the receiver saw them.
import { ChildProcess, execFileSync, spawn } from "child_process";
import fs from "fs";
import net from "net";
import os from "os";
import path from "path";
import mqtt from "mqtt";
import { addon } from "../lib/native";
import { RingPublisher } from "../lib/shm";

const ROOT = path.resolve(__dirname, "..", "..");
const BIN = path.join(ROOT, "dist", "bench", "ring_bench");
const SIZES = process.env.BENCH_SIZES ? process.env.BENCH_SIZES.split(",").map(Number) : [65536, 614400, 4147200];

interface Received {
  transport: string;
  bytes: number;
  frames: number;
  missed: number;
  elapsed_ns: number;
  p50_ns: number;
  p99_ns: number;
}

interface Plan {
  latencyFrames: number;
  gapMs: number;
  throughputFrames: number;
}

function plan(bytes: number): Plan {
  if (bytes <= 65536) return { latencyFrames: 500, gapMs: 2, throughputFrames: 20000 };
  if (bytes <= 1 << 20) return { latencyFrames: 200, gapMs: 4, throughputFrames: 4000 };
  return { latencyFrames: 100, gapMs: 20, throughputFrames: 600 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function build(): void {
  fs.mkdirSync(path.dirname(BIN), { recursive: true });
  execFileSync("cc", ["-O2", "-I", path.join(ROOT, "native", "include"), "-o", BIN, path.join(ROOT, "bench", "ring_bench.c")]);
}

/** A child that prints {"ready":true} when it can receive, then one result line. */
function child(cmd: string, args: string[]): { proc: ChildProcess; ready: Promise<void>; result: Promise<Received> } {
  const proc = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  let readyResolve: () => void = () => undefined;
  const ready = new Promise<void>((r) => (readyResolve = r));
  const result = new Promise<Received>((resolve, reject) => {
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      for (;;) {
        const nl = out.indexOf("\n");
        if (nl < 0) break;
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const v = JSON.parse(line) as Received & { ready?: boolean };
        if (v.ready) readyResolve();
        else resolve(v);
      }
    });
    proc.on("exit", (code) => reject(new Error(`${cmd} ${args.join(" ")} exited with ${code} before reporting`)));
  });
  return { proc, ready, result };
}

function stamp(buf: Buffer): void {
  buf.writeBigUInt64LE(BigInt(Math.round(addon().monotonicNowNs())), 0);
}

function line(transport: string, bytes: number, latency: Received, throughput: Received, extra: object = {}): void {
  const seconds = throughput.elapsed_ns / 1e9;
  const fps = seconds > 0 ? throughput.frames / seconds : 0;
  console.log(
    JSON.stringify({
      bench: "shm",
      transport,
      bytes,
      fps: Math.round(fps),
      MBps: Math.round((fps * bytes) / 1e6),
      p50_us: Math.round(latency.p50_ns / 100) / 10,
      p99_us: Math.round(latency.p99_ns / 100) / 10,
      ...extra,
    }),
  );
  return;
}

async function memcpyCase(bytes: number): Promise<number> {
  const p = plan(bytes);
  const hot = await child(BIN, ["memcpy-hot", String(bytes), String(p.throughputFrames)]).result;
  const res = await child(BIN, ["memcpy", String(bytes), String(p.throughputFrames)]).result;
  const hotMBps = Math.round((hot.frames * bytes) / (hot.elapsed_ns / 1e9) / 1e6);
  line("memcpy", bytes, res, res, { hot_MBps: hotMBps });
  return (res.frames * bytes) / (res.elapsed_ns / 1e9);
}

async function ringCase(bytes: number, memcpyBps: number): Promise<void> {
  const p = plan(bytes);
  const run = async (frames: number, gapMs: number, label: string): Promise<Received> => {
    const name = `dp-bench-${process.pid}-${label}`;
    const pub = new RingPublisher({ name, slots: 8, slotSize: bytes });
    try {
      const c = child(BIN, ["ring", name, String(frames)]);
      await c.ready;
      const payload = Buffer.alloc(bytes, 0x5a);
      for (let i = 0; i < frames; i++) {
        payload.writeUInt32LE(i, 8);
        pub.publish({ payload, frame: { monotonicNs: addon().monotonicNowNs() } });
        if (gapMs) await sleep(gapMs);
      }
      return await c.result;
    } finally {
      pub.close();
    }
  };
  const latency = await run(p.latencyFrames, p.gapMs, `lat-${bytes}`);
  const throughput = await run(p.throughputFrames, 0, `tput-${bytes}`);
  const seconds = throughput.elapsed_ns / 1e9;
  line("shm", bytes, latency, throughput, {
    missed: throughput.missed,
    x_memcpy: Math.round(((throughput.frames * bytes) / seconds / memcpyBps) * 100) / 100,
  });
}

async function pipeCase(bytes: number): Promise<void> {
  const p = plan(bytes);
  const run = async (frames: number, gapMs: number): Promise<Received> => {
    const c = child(BIN, ["pipe", String(bytes), String(frames)]);
    await c.ready;
    const stdin = c.proc.stdin;
    if (!stdin) throw new Error("no stdin");
    for (let i = 0; i < frames; i++) {
      // A fresh Buffer per frame: a stream may still hold the previous one.
      const frame = Buffer.alloc(bytes, 0x5a);
      stamp(frame);
      if (!stdin.write(frame)) await new Promise((r) => stdin.once("drain", r));
      if (gapMs) await sleep(gapMs);
    }
    stdin.end();
    return c.result;
  };
  const latency = await run(p.latencyFrames, p.gapMs);
  const throughput = await run(p.throughputFrames, 0);
  line("pipe", bytes, latency, throughput);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1", () => {
        sock.end();
        resolve(true);
      });
      sock.on("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(10);
  }
  throw new Error(`broker on ${port} did not start`);
}

async function mqttCase(transport: string, port: number, bytes: number): Promise<void> {
  const p = plan(bytes);
  // MQTT moves big frames slowly; fewer frames keep the run short without changing the rate.
  const tputFrames = Math.max(50, Math.round(p.throughputFrames / 10));
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `bench-pub-${process.pid}` });
  const run = async (frames: number, gapMs: number): Promise<Received> => {
    const topic = `bench/${process.pid}/${bytes}/${gapMs}`;
    const c = child(process.execPath, [path.join(ROOT, "dist", "bench", "mqtt-subscriber.js"), String(port), topic]);
    await c.ready;
    for (let i = 0; i < frames; i++) {
      const frame = Buffer.alloc(bytes, 0x5a);
      stamp(frame);
      await client.publishAsync(topic, frame, { qos: 0 });
      if (gapMs) await sleep(gapMs);
    }
    return c.result;
  };
  try {
    const latency = await run(p.latencyFrames, p.gapMs);
    const throughput = await run(tputFrames, 0);
    line(transport, bytes, latency, throughput);
  } finally {
    await client.endAsync();
  }
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  build();
  const brokers: Array<{ transport: string; port: number; proc: ChildProcess }> = [];
  const aedesPort = await freePort();
  const aedes = spawn(process.execPath, [path.join(ROOT, "bench", "mqtt-broker.mjs"), String(aedesPort)], {
    stdio: ["pipe", "ignore", "inherit"],
  });
  brokers.push({ transport: "mqtt-aedes", port: aedesPort, proc: aedes });
  const mosquitto = ["/usr/sbin/mosquitto", "mosquitto"].find((c) => c.startsWith("/") ? fs.existsSync(c) : hasCommand(c));
  if (mosquitto) {
    const port = await freePort();
    const conf = path.join(os.tmpdir(), `dp-bench-mosquitto-${process.pid}.conf`);
    fs.writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n`);
    brokers.push({ transport: "mqtt-mosquitto", port, proc: spawn(mosquitto, ["-c", conf], { stdio: "ignore" }) });
  }
  try {
    for (const b of brokers) await waitForPort(b.port);
    for (const bytes of SIZES) {
      const memcpyBps = await memcpyCase(bytes);
      await ringCase(bytes, memcpyBps);
      await pipeCase(bytes);
      if (!process.env.BENCH_NO_MQTT) for (const b of brokers) await mqttCase(b.transport, b.port, bytes);
    }
  } finally {
    for (const b of brokers) b.proc.kill("SIGTERM");
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
