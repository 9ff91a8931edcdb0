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
import { execFileSync, spawnSync } from "child_process";
import fs from "fs";
import path from "path";
import { DeviceDetector, parseUevent } from "../lib/devices";
import { FakeSysfs, FakeUsbDevice } from "../test/fakes/sysfs";
import { parseDump } from "../test/fakes/udevdump";
import { asUdev, burst, ManualClock, TestUeventSource } from "../test/fakes/uevents";

const DEVICES = Number(process.env.BENCH_DEVICES ?? 500);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const SETTLES = Number(process.env.BENCH_SETTLES ?? 1000);

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
function generate(): { tree: FakeSysfs; devpaths: string[]; hubs: number } {
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

function main(): void {
  const [{ tree, devpaths, hubs }, genNs] = time(generate);
  try {
    out({ bench: "generate", devices: DEVICES, hubs, ms: Math.round(genNs / 1e5) / 10, where: path.dirname(tree.base) });

    for (const diagnostics of [true, false]) {
      const detector = new DeviceDetector({ ...tree.roots, diagnostics, probe: tree.probe() });
      const samples: number[] = [];
      let events = 0;
      for (let i = 0; i < RUNS; i++) {
        const [list, ns] = time(() => detector.enumerate());
        events = list.length;
        samples.push(ns);
      }
      out({ bench: "enumerate", devices: DEVICES, events, diagnostics, runs: RUNS, first_ms: Math.round(samples[0] / 1e4) / 100, ...stats(samples.slice(1)), target_ms: 100 });
    }
    // Diagnostics against this machine's /proc, as the node runs them.
    {
      const detector = new DeviceDetector({ ...tree.roots, diagnostics: true });
      const samples: number[] = [];
      for (let i = 0; i < RUNS; i++) samples.push(time(() => detector.enumerate())[1]);
      out({ bench: "enumerate", devices: DEVICES, diagnostics: "real /proc", runs: RUNS, ...stats(samples) });
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
}

main();
