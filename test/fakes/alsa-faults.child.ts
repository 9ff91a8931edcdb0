// Run by test/alsa-faults.test.ts in a process whose alsa-lib is the
// fault-injecting wrapper (DEVPLANE_LIBASOUND=libdevplane-fake-asound.so,
// DEVPLANE_FAKE_ASOUND_DIR=<faults>): overruns, unplugs and busy devices that
// alsa-lib's file plugin cannot produce, through the production code.
import assert from "assert";
import fs from "fs";
import os from "os";
import path from "path";
import type { NodeMessage } from "node-red";
import type { AudioInfo } from "../../lib/capture";
import { addon } from "../../lib/native";
import { CHILD_TESTS, record, Recorded } from "../support/alsa";
import { counterFrames, WAVES } from "./alsa-wave";
import { alsaNodes as nodes, helper } from "../support/red";
import { eventually } from "../support/rings";
import { collect, statuses } from "../support/flow";

const FAULTS = process.env.DEVPLANE_FAKE_ASOUND_DIR as string;
const T = CHILD_TESTS.faults;

type Msg = NodeMessage & { audio?: AudioInfo; device?: Record<string, unknown> };

function fault(name: string, on: boolean): void {
  const p = path.join(FAULTS, name);
  if (on) fs.writeFileSync(p, "");
  else fs.rmSync(p, { force: true });
}

const audioOf = (msgs: Msg[]) => msgs.filter((m) => m.topic === "audio");

/** How many chunks each delivery held: chunks handed over together were read together. */
function deliveries(r: Recorded): number[] {
  const sizes: number[] = [];
  let last = -1;
  for (const c of r.chunks) {
    if (c.readNs !== last) sizes.push(0);
    last = c.readNs;
    sizes[sizes.length - 1]++;
  }
  return sizes;
}

/** Every chunk within the counter wave holds the frames its seq says. */
function assertExact(r: Recorded): void {
  const inWave = r.chunks.filter((c) => c.audio.seq * 480 <= WAVES.counter.seconds * 48000);
  assert.ok(inWave.length > 0);
  for (const c of inWave) assert.ok(c.payload?.equals(counterFrames((c.audio.seq - 1) * 480, 480)), `chunk ${c.audio.seq}`);
}

/** A /proc with the given processes, each holding the given files open. */
function fakeProc(procs: Array<{ pid: number; comm: string; fds: string[] }>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "devplane-proc-"));
  for (const p of procs) {
    fs.mkdirSync(path.join(root, String(p.pid), "fd"), { recursive: true });
    fs.writeFileSync(path.join(root, String(p.pid), "comm"), `${p.comm}\n`);
    p.fds.forEach((target, i) => fs.symlinkSync(target, path.join(root, String(p.pid), "fd", String(i + 3))));
  }
  return root;
}

describe("alsa faults (child process)", () => {
  const captures: Recorded[] = [];
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    for (const c of captures.splice(0)) c.capture.stop();
    await helper.unload();
    for (const f of ["overrun", "unplugged", "busy", "recover.log"]) fault(f, false);
    assert.strictEqual(addon().alsaActiveCaptures(), 0);
  });

  it(T.overrun, async () => {
    await helper.load(nodes, [
      { id: "m", type: "alsa-capture", device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10, output: "pcm", autostart: true, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const seen = statuses(helper.getNode("m"));
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => audioOf(out).length >= 10, "chunks before the overrun");
    for (let n = 1; n <= 2; n++) {
      fault("overrun", true);
      await eventually(() => !fs.existsSync(path.join(FAULTS, "overrun")), `overrun ${n} to happen`);
      await eventually(() => audioOf(out).some((m) => m.audio?.overruns === n), `a chunk counting overrun ${n}`);
    }
    const recovered = fs.readFileSync(path.join(FAULTS, "recover.log"), "utf8").trim().split("\n");
    assert.deepStrictEqual(recovered, ["-32", "-32"], "snd_pcm_recover(-EPIPE) per overrun");
    const count = audioOf(out).length;
    await eventually(() => audioOf(out).length > count + 100, "chunks keep coming");
    const overruns = audioOf(out).map((m) => m.audio?.overruns as number);
    for (let i = 1; i < overruns.length; i++) assert.ok(overruns[i] >= overruns[i - 1], "the count never goes back");
    assert.ok(!out.some((m) => m.payload === "disconnected"), "an overrun is not an unplug");
    await eventually(() => seen.some((s) => s.fill === "yellow" && /2 lost/.test(s.text ?? "")), "the status counting the losses");
  });

  it(T.unplug, async () => {
    await helper.load(nodes, [
      { id: "m", type: "alsa-capture", device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10, output: "pcm", autostart: true, wires: [["out"]] },
      { id: "out", type: "helper" },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const seen = statuses(helper.getNode("m"));
    const out = collect<Msg>(helper.getNode("out"));
    const caught = collect<Msg>(helper.getNode("caught"));
    await eventually(() => audioOf(out).length >= 10, "chunks before the unplug");
    fault("unplugged", true);
    const gone = await eventually(() => out.find((m) => m.topic === "device" && m.payload === "disconnected"), "the disconnected message");
    assert.strictEqual(gone.device?.name, "devplane_counter");
    assert.match(gone.device?.message as string, /ALSA device "devplane_counter" disconnected \(.*\); waiting for it to come back/);
    await eventually(() => seen.some((s) => s.fill === "red" && s.text === "disconnected"), "the red status");
    const before = audioOf(out);
    const lastSeq = before[before.length - 1].audio?.seq as number;
    // Unplugged for a while: reopening fails quietly, nothing else is sent.
    await new Promise((r) => setTimeout(r, 2500));
    assert.strictEqual(audioOf(out).length, before.length, "no audio while unplugged");
    assert.deepStrictEqual(caught, [], "an unplug is not an error");
    fault("unplugged", false);
    const back = await eventually(() => out.find((m) => m.topic === "device" && m.payload === "connected" && m.device?.resumed), "the connected message");
    assert.strictEqual(back.device?.name, "devplane_counter");
    await eventually(() => audioOf(out).length > before.length + 10, "audio again");
    const after = audioOf(out).slice(before.length);
    assert.ok((after[0].audio?.seq as number) > lastSeq, "seq carries on");
    await eventually(() => seen.some((s) => s.fill === "green"), "a green status again");
    assert.strictEqual(addon().alsaActiveCaptures(), 1);
  });

  it(T.batch, async () => {
    const r = record({ device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10, batch: 4 });
    captures.push(r);
    await eventually(() => r.chunks.length >= 80, "80 chunks");
    assert.strictEqual(r.states[0]?.state === "running" && r.states[0].periodFrames, 1920, "a period per batch");
    // The device hands over a period at a time; the last delivery may still be arriving.
    const sizes = deliveries(r).slice(0, -1);
    assert.ok(sizes.length >= 15 && sizes.every((n) => n === 4), `deliveries of ${sizes.join(" ")} chunks`);
    assert.deepStrictEqual(
      r.chunks.map((c) => c.audio.seq),
      r.chunks.map((_, i) => i + 1),
    );
    assertExact(r);
  });

  it(T.batchOverrun, async () => {
    // One chunk per period, four per batch: an overrun finds chunks held back.
    const r = record({ device: "devplane_counter", chunkMs: 10, batch: 4, periodFrames: 480 });
    captures.push(r);
    await eventually(() => r.chunks.length >= 20, "chunks before the overruns");
    for (let n = 1; n <= 3; n++) {
      fault("overrun", true);
      await eventually(() => r.chunks.some((c) => c.audio.overruns === n), `a chunk after overrun ${n}`);
    }
    const count = r.chunks.length;
    await eventually(() => r.chunks.length >= count + 20, "chunks after the overruns");
    // The injected overrun loses no audio, so neither may the capture: the
    // chunks held when it came are handed over, and the stream still lines
    // up with seq.
    assertExact(r);
    assert.deepStrictEqual(
      r.chunks.map((c) => c.audio.seq),
      r.chunks.map((_, i) => i + 1),
    );
    assert.ok(deliveries(r).slice(0, -1).every((n) => n <= 4));
  });

  it(T.busy, async () => {
    const proc = fakeProc([
      { pid: 4242, comm: "arecord", fds: ["/dev/null", "/dev/snd/pcmC1D0c"] },
      { pid: 4343, comm: "aplay", fds: ["/dev/snd/pcmC1D0p"] },
      { pid: 4444, comm: "pipewire", fds: ["/dev/snd/pcmC2D0c"] },
    ]);
    try {
      fault("busy", true);
      const byNumber = record({ device: "hw:1,0", procRoot: proc });
      const byName = record({ device: "dsnoop", procRoot: proc });
      captures.push(byNumber, byName);
      await eventually(() => byNumber.errors.length > 0 && byName.errors.length > 0, "the busy errors");
      const e = byNumber.errors[0] as Error & { code: string };
      assert.strictEqual(e.code, "EBUSY");
      assert.strictEqual(e.message, 'ALSA device "hw:1,0" is busy: held by arecord (pid 4242)');
      // A name that does not say which card: every process holding a capture device.
      assert.strictEqual(byName.errors[0].message, 'ALSA device "dsnoop" is busy: held by arecord (pid 4242), pipewire (pid 4444)');
      fault("busy", false);
      await eventually(() => byNumber.states.length > 0 || byNumber.errors.length > 1, "the next attempt");
    } finally {
      fs.rmSync(proc, { recursive: true, force: true });
    }
  });

  it(T.busySelf, async () => {
    const proc = fakeProc([{ pid: process.pid, comm: "node-red", fds: ["/dev/snd/pcmC0D0c"] }]);
    try {
      fault("busy", true);
      const r = record({ device: "plughw:0,0", procRoot: proc });
      captures.push(r);
      await eventually(() => r.errors.length > 0, "the busy error");
      assert.match(
        r.errors[0].message,
        new RegExp(`^ALSA device "plughw:0,0" is busy: held by node-red \\(pid ${process.pid}\\); this Node-RED holds it through another alsa-capture node with different settings`),
      );
    } finally {
      fs.rmSync(proc, { recursive: true, force: true });
    }
  });
});
