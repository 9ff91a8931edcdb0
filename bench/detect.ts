// npm run bench:detect — device enumeration and hotplug settling, side by side
// with what else would produce the same list: `udevadm info --export-db`
// (spawned and parsed) where udevadm exists, and a naive walk that reads
// every file under the tree. Prints one JSON line per measurement.
//
// The tree is generated: BENCH_DEVICES USB devices (default 500) behind
// hubs, a mix of Arduino-like boards (ttyACM), USB-serial adapters (ttyUSB),
// webcams (capture + metadata node), microphones (ALSA card + hidraw) and
// HID gadgets, written the way the kernel lays sysfs out, with udev records.
//
// settle: a device's burst of udev messages (device, interfaces, children,
// binds) fed through the detector on a manual clock, timed from the first
// message to the emitted add: parsing, the settle bookkeeping, reading the
// device from sysfs and the udev database, and its diagnostics. The quiet
// period itself (settleMs of wall time) is not part of it.
//
// uevent latency: a real kernel uevent (root writes "change <uuid>" into a
// device's uevent file, a synthetic uevent that carries SYNTH_UUID=<uuid>),
// timed from just before the write to the moment JavaScript holds it parsed:
// through the addon's netlink thread into a running DeviceDetector (what
// device-detect uses), and, side by side, through `udevadm monitor
// --property` piped into Node (what a flow would otherwise exec). The device
// is a virtual console, which the detector hands over and leaves out; an
// event it keeps would add settleMs on purpose.
import { ChildProcessByStdio, execFileSync, spawn, spawnSync } from "child_process";
import { randomUUID } from "crypto";
import fs from "fs";
import path from "path";
import { Readable } from "stream";
import { NetlinkUeventSource } from "../lib/hotplug/netlink";
import { DeviceDetector, parseUevent } from "../lib/devices";
import { FakeSysfs, FakeUsbDevice } from "../test/fakes/sysfs";
import { parseDump } from "../test/fakes/udevdump";
import { asUdev, burst, ManualClock, TestUeventSource } from "../test/fakes/uevents";

const DEVICES = Number(process.env.BENCH_DEVICES ?? 500);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
/**
 * Runs before the timed ones, so that the median is the steady state rather
 * than V8 compiling the enumerator; the very first run, which a deploy pays,
 * is printed on its own as first_ms.
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 10);
const SETTLES = Number(process.env.BENCH_SETTLES ?? 1000);
const UEVENTS = Number(process.env.BENCH_UEVENTS ?? 2000);
/** Synthetic uevents go to the first of these that can be written. */
const TRIGGERS = ["/sys/class/tty/tty1/uevent", "/sys/class/mem/null/uevent"];
/** An event not seen by then is counted lost, so that one loss cannot stall the run. */
const LOST_AFTER_MS = 1000;

function out(line: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(line) + "\n");
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function stats(samplesNs: number[]): { median_ms: number; p99_ms: number; min_ms: number } {
  const s = [...samplesNs].sort((a, b) => a - b);
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return { median_ms: ms(quantile(s, 0.5)), p99_ms: ms(quantile(s, 0.99)), min_ms: ms(s[0]) };
}

function time<T>(fn: () => T): [T, number] {
  const t0 = process.hrtime.bigint();
  const v = fn();
  return [v, Number(process.hrtime.bigint() - t0)];
}

/** The generated tree: DEVICES devices, ten per hub, hubs spread over buses. */
export function generate(): { tree: FakeSysfs; devpaths: string[]; hubs: number } {
  const tree = new FakeSysfs();
  const devpaths: string[] = [];
  let tty = 0;
  let usbTty = 0;
  let video = 0;
  let card = 1;
  let hid = 0;
  let hubs = 0;
  for (let i = 0; i < DEVICES; i++) {
    const bus = 1 + Math.floor(i / 100);
    const hub = 1 + Math.floor((i % 100) / 10);
    const slot = 1 + (i % 10);
    if (slot === 1) {
      tree.usb({ port: `${bus}-${hub}`, vid: "05e3", pid: "0608", product: "USB2.0 Hub", speed: "480", deviceClass: "09", devnum: 1 + hub, interfaces: [{ class: "09", driver: "hub" }] });
      hubs++;
    }
    const port = `${bus}-${hub}.${slot}`;
    const devnum = 20 + (i % 100);
    let d: FakeUsbDevice;
    switch (i % 5) {
      case 0: {
        const name = `ttyACM${tty++}`;
        const serial = `SN${i.toString(16).padStart(8, "0")}`;
        d = {
          port,
          vid: "2341",
          pid: "0043",
          manufacturer: "Arduino (www.arduino.cc)",
          serial,
          devnum,
          deviceClass: "02",
          interfaces: [
            { class: "02", subclass: "02", protocol: "01", driver: "cdc_acm", tty: [{ name, minor: tty, links: [`serial/by-id/usb-Arduino__www.arduino.cc__0043_${serial}-if00`] }] },
            { class: "0a", driver: "cdc_acm" },
          ],
        };
        break;
      }
      case 1: {
        const name = `ttyUSB${usbTty++}`;
        d = { port, vid: "1a86", pid: "7523", product: "USB2.0-Serial", devnum, deviceClass: "ff", interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: "ch341", tty: [{ name, minor: usbTty, usbSerial: true, links: [`serial/by-path/x-${i}-port0`] }] }] };
        break;
      }
      case 2: {
        const v0 = video++;
        const v1 = video++;
        d = {
          port,
          vid: "046d",
          pid: "0825",
          serial: `CAM${i}`,
          speed: "480",
          deviceClass: "ef",
          devnum,
          interfaces: [
            {
              class: "0e",
              subclass: "01",
              driver: "uvcvideo",
              video: [
                { name: `video${v0}`, minor: v0, index: 0 },
                { name: `video${v1}`, minor: v1, index: 1 },
              ],
            },
            { class: "0e", subclass: "02", driver: "uvcvideo" },
          ],
        };
        break;
      }
      case 3: {
        const c = card++;
        d = {
          port,
          vid: "0d8c",
          pid: "0014",
          product: "USB Audio Device",
          devnum,
          interfaces: [
            { class: "01", subclass: "01", driver: "snd-usb-audio", sound: { card: c, id: `Device${c}`, pcm: [{ device: 0, capture: true }, { device: 0, capture: false }] } },
            { class: "01", subclass: "02", driver: "snd-usb-audio" },
            { class: "03", driver: "usbhid", hidraw: [{ name: `hidraw${hid}`, minor: hid, hid: `0003:0D8C:0014.${(hid++).toString(16).padStart(4, "0").toUpperCase()}` }] },
          ],
        };
        break;
      }
      default:
        d = {
          port,
          vid: "1234",
          pid: "5678",
          manufacturer: "ACME",
          product: "Gadget",
          devnum,
          interfaces: [{ class: "03", driver: "usbhid", hidraw: [{ name: `hidraw${hid}`, minor: hid, hid: `0003:1234:5678.${(hid++).toString(16).padStart(4, "0").toUpperCase()}` }] }],
        };
    }
    devpaths.push(tree.usb(d));
  }
  return { tree, devpaths, hubs };
}

/** What a naive implementation does: read every file under /sys/devices and /run/udev/data. */
function naiveWalk(tree: FakeSysfs): number {
  let files = 0;
  const walk = (dir: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.isFile()) {
        fs.readFileSync(p, "utf8");
        files++;
      } else if (d.isSymbolicLink()) fs.readlinkSync(p);
    }
  };
  walk(path.join(tree.sys, "devices"));
  walk(tree.udevData);
  return files;
}

function hasUdevadm(): boolean {
  try {
    execFileSync("udevadm", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Where a synthetic uevent can be written, or why none can. */
function ueventTrigger(): { file: string } | { skipped: string } {
  if (process.getuid?.() !== 0) return { skipped: "not root: only root may write a synthetic uevent into /sys/.../uevent" };
  for (const file of TRIGGERS) {
    try {
      fs.accessSync(file, fs.constants.W_OK);
      fs.writeFileSync(file, `change ${randomUUID()}`);
      return { file };
    } catch {
      // Absent, or /sys is read-only here (a container): try the next.
    }
  }
  return { skipped: `cannot write a synthetic uevent into any of ${TRIGGERS.join(", ")} (read-only /sys, as in most containers?)` };
}

/** Resolvers of the uevents in flight, by the uuid each carries. */
type Waiters = Map<string, (at: bigint) => void>;

/** Triggers one uevent and resolves with its latency in ms, or undefined when it never came. */
function roundTrip(file: string, waiters: Waiters): Promise<number | undefined> {
  const uuid = randomUUID();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiters.delete(uuid);
      resolve(undefined);
    }, LOST_AFTER_MS);
    const t0 = process.hrtime.bigint();
    waiters.set(uuid, (at) => {
      clearTimeout(timer);
      waiters.delete(uuid);
      resolve(Number(at - t0) / 1e6);
    });
    fs.writeFileSync(file, `change ${uuid}`);
  });
}

async function measureLatency(file: string, waiters: Waiters): Promise<{ events: number; lost: number; p50_ms: number; p99_ms: number; max_ms: number }> {
  for (let i = 0; i < 200; i++) await roundTrip(file, waiters);
  const samples: number[] = [];
  let lost = 0;
  for (let i = 0; i < UEVENTS; i++) {
    const ms = await roundTrip(file, waiters);
    if (ms === undefined) lost++;
    else samples.push(ms);
  }
  const s = samples.sort((a, b) => a - b);
  const r = (v: number | undefined) => (v === undefined ? NaN : Math.round(v * 1000) / 1000);
  return { events: samples.length, lost, p50_ms: r(quantile(s, 0.5)), p99_ms: r(quantile(s, 0.99)), max_ms: r(s[s.length - 1]) };
}

/** Kernel uevent to parsed message in JavaScript: device-detect's path, then udevadm's. */
async function latency(): Promise<void> {
  const bench = "uevent latency";
  const trigger = ueventTrigger();
  let noMonitor: string | undefined;
  try {
    if (!NetlinkUeventSource.available()) noMonitor = "this build of the addon has no uevent monitor";
  } catch (err) {
    noMonitor = `the addon did not load (${(err as Error).message})`;
  }
  if (noMonitor) out({ bench, via: "devplane: netlink thread -> DeviceDetector -> parsed", skipped: noMonitor });
  if ("skipped" in trigger) {
    out({ bench, skipped: trigger.skipped });
    return;
  }
  const waiters: Waiters = new Map();
  let group: "udev" | "kernel" = fs.existsSync("/run/udev/control") ? "udev" : "kernel";

  if (!noMonitor) {
    const source = new NetlinkUeventSource("auto");
    // The detector a device-detect node runs, on this machine's /sys: every
    // message goes through it first (listeners run in order), then here.
    const detector = new DeviceDetector({ source, diagnostics: false });
    try {
      detector.start();
      group = source.listening ?? group;
      source.on("message", (buf) => {
        let uuid: string | undefined;
        try {
          uuid = parseUevent(buf).properties.SYNTH_UUID;
        } catch {
          return; // not ours: the detector has warned about it
        }
        const done = waiters.get(uuid ?? "");
        if (done) done(process.hrtime.bigint());
      });
      out({ bench, via: "devplane: netlink thread -> DeviceDetector -> parsed", group, trigger: trigger.file, ...(await measureLatency(trigger.file, waiters)), target_p99_ms: 5 });
    } catch (err) {
      out({ bench, via: "devplane: netlink thread -> DeviceDetector -> parsed", skipped: `the uevent socket could not be opened: ${(err as Error).message}` });
    } finally {
      detector.stop();
    }
  }

  const command = ["udevadm", "monitor", group === "udev" ? "--udev" : "--kernel", "--property"];
  const via = `${command.join(" ")} | node`;
  if (!hasUdevadm()) {
    out({ bench, via, skipped: "udevadm is not installed (Debian package udev: apt-get install udev)" });
    return;
  }
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  try {
    // udevadm prints "KERNEL - ..." (or "UDEV - ...") once its socket listens,
    // then one block per event: a summary line, KEY=value lines, a blank line.
    const ready = new Promise<void>((resolve, reject) => {
      let text = "";
      const onData = (chunk: string) => {
        text += chunk;
        if (/^(KERNEL|UDEV) - /m.test(text)) {
          child.stdout.off("data", onData);
          resolve();
        }
      };
      child.stdout.setEncoding("latin1");
      child.stdout.on("data", onData);
      child.on("error", reject);
      child.on("exit", (code) => reject(new Error(`udevadm monitor exited (${code})`)));
    });
    await ready;
    let pending = "";
    child.stdout.on("data", (chunk: string) => {
      const at = process.hrtime.bigint();
      pending += chunk;
      let end: number;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const props: Record<string, string> = {};
        for (const line of block.split("\n")) {
          const eq = line.indexOf("=");
          if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
        }
        const done = waiters.get(props.SYNTH_UUID ?? "");
        if (done) done(at);
      }
    });
    out({ bench, via, group, trigger: trigger.file, ...(await measureLatency(trigger.file, waiters)) });
  } catch (err) {
    out({ bench, via, skipped: (err as Error).message });
  } finally {
    child.removeAllListeners("exit");
    child.kill();
  }
}

async function main(): Promise<void> {
  const [{ tree, devpaths, hubs }, genNs] = time(generate);
  try {
    out({ bench: "generate", devices: DEVICES, hubs, ms: Math.round(genNs / 1e5) / 10, where: path.dirname(tree.base) });

    for (const diagnostics of [true, false]) {
      const detector = new DeviceDetector({ ...tree.roots, diagnostics, probe: tree.probe() });
      const firstNs = time(() => detector.enumerate())[1];
      for (let i = 1; i < WARMUP; i++) detector.enumerate();
      const samples: number[] = [];
      let events = 0;
      for (let i = 0; i < RUNS; i++) {
        const [list, ns] = time(() => detector.enumerate());
        events = list.length;
        samples.push(ns);
      }
      out({ bench: "enumerate", devices: DEVICES, events, diagnostics, runs: RUNS, warmup: WARMUP, first_ms: Math.round(firstNs / 1e4) / 100, ...stats(samples), target_ms: 100 });
    }
    // Diagnostics against this machine's /proc, as the node runs them.
    {
      const detector = new DeviceDetector({ ...tree.roots, diagnostics: true });
      for (let i = 0; i < WARMUP; i++) detector.enumerate();
      const samples: number[] = [];
      for (let i = 0; i < RUNS; i++) samples.push(time(() => detector.enumerate())[1]);
      out({ bench: "enumerate", devices: DEVICES, diagnostics: "real /proc", runs: RUNS, warmup: WARMUP, ...stats(samples) });
    }

    if (hasUdevadm()) {
      const samples: number[] = [];
      let devices = 0;
      for (let i = 0; i < Math.min(RUNS, 10); i++) {
        const [n, ns] = time(() => {
          const r = spawnSync("udevadm", ["info", "--export-db"], { encoding: "utf8", maxBuffer: 1 << 28 });
          return parseDump(r.stdout).length;
        });
        devices = n;
        samples.push(ns);
      }
      out({ bench: "udevadm info --export-db + parse", of: "this machine", records: devices, ...stats(samples) });
    } else {
      const samples: number[] = [];
      let files = 0;
      for (let i = 0; i < Math.min(RUNS, 10); i++) {
        const [n, ns] = time(() => naiveWalk(tree));
        files = n;
        samples.push(ns);
      }
      out({ bench: "naive walk (read every file)", of: "the same tree", files, note: "no udevadm here", ...stats(samples) });
    }

    // Parsing alone.
    const messages = devpaths.slice(0, 50).flatMap((d) => asUdev(burst(tree.sys, d, "add")));
    {
      const n = 200;
      const [, ns] = time(() => {
        for (let i = 0; i < n; i++) for (const m of messages) parseUevent(m);
      });
      out({ bench: "parse", format: "udev", messages: n * messages.length, per_message_us: Math.round((ns / (n * messages.length)) * 10) / 1e4 });
    }

    // The settle path: a remove, then the device's add burst, on a manual clock.
    {
      const clock = new ManualClock();
      const source = new TestUeventSource();
      const detector = new DeviceDetector({ ...tree.roots, clock, source, probe: tree.probe(), settleMs: 300 });
      detector.start();
      let emitted = 0;
      detector.on("device", () => emitted++);
      const bursts = devpaths.map((d) => ({ d, add: asUdev(burst(tree.sys, d, "add")), remove: asUdev(burst(tree.sys, d, "remove")) }));
      const addNs: number[] = [];
      const removeNs: number[] = [];
      for (let i = 0; i < SETTLES; i++) {
        const b = bursts[(i * 7919) % bursts.length];
        const before = emitted;
        let t0 = process.hrtime.bigint();
        for (const m of b.remove) source.emit("message", m);
        removeNs.push(Number(process.hrtime.bigint() - t0));
        t0 = process.hrtime.bigint();
        for (const m of b.add) source.emit("message", m);
        clock.advance(300);
        addNs.push(Number(process.hrtime.bigint() - t0));
        if (emitted !== before + 2) throw new Error(`expected a remove and an add for ${b.d}, got ${emitted - before} events`);
      }
      const us = (v: number[]) => {
        const s = [...v].sort((a, b) => a - b);
        return { p50_us: Math.round(quantile(s, 0.5) / 1e3), p99_us: Math.round(quantile(s, 0.99) / 1e3) };
      };
      out({ bench: "settle", path: "add (burst of udev messages -> one event)", messages_per_burst: Math.round(bursts.reduce((n, b) => n + b.add.length, 0) / bursts.length), iterations: SETTLES, devices: DEVICES, ...us(addNs) });
      out({ bench: "settle", path: "remove (burst -> one event)", iterations: SETTLES, ...us(removeNs) });
      detector.stop();
    }
  } finally {
    tree.cleanup();
  }
  await latency();
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
