// Uevent messages in both wire formats, the bursts the kernel sends when a
// device in a fake sysfs tree arrives or leaves, a source to feed them
// through, and a clock the test moves by hand.
import { EventEmitter } from "events";
import fs from "fs";
import os from "os";
import path from "path";
import type { Clock } from "../../lib/devices/detector";
import type { UeventSource } from "../../lib/devices/uevent";

export type Props = Record<string, string | number>;

/** "ACTION@DEVPATH\0KEY=VALUE\0..." as the kernel multicasts it. */
export function kernelMessage(action: string, devpath: string, props: Props = {}): Buffer {
  const fields = [`${action}@${devpath}`, `ACTION=${action}`, `DEVPATH=${devpath}`];
  for (const [k, v] of Object.entries(props)) if (k !== "ACTION" && k !== "DEVPATH") fields.push(`${k}=${v}`);
  return Buffer.from(fields.join("\0") + "\0", "utf8");
}

/** udevd's message: the "libudev" header (magic in network order, sizes in host order), then the properties. */
export function udevMessage(action: string, devpath: string, props: Props = {}, patch?: (header: Buffer) => void): Buffer {
  const fields = [`ACTION=${action}`, `DEVPATH=${devpath}`];
  for (const [k, v] of Object.entries(props)) if (k !== "ACTION" && k !== "DEVPATH") fields.push(`${k}=${v}`);
  const body = Buffer.from(fields.join("\0") + "\0", "utf8");
  const header = Buffer.alloc(40);
  header.write("libudev\0", 0, "latin1");
  header.writeUInt32BE(0xfeedcafe, 8);
  const le = os.endianness() === "LE";
  const u32 = (v: number, at: number) => (le ? header.writeUInt32LE(v, at) : header.writeUInt32BE(v, at));
  u32(40, 12);
  u32(40, 16);
  u32(body.length, 20);
  header.writeUInt32BE(0x1234abcd, 24);
  patch?.(header);
  return Buffer.concat([header, body]);
}

/** A UeventSource whose messages the test sends. */
export class TestUeventSource extends EventEmitter implements UeventSource {
  started = 0;
  stopped = 0;
  failStart: Error | undefined;

  start(): void {
    if (this.failStart) throw this.failStart;
    this.started++;
  }

  stop(): void {
    this.stopped++;
  }

  send(...messages: Buffer[]): void {
    for (const m of messages) this.emit("message", m);
  }
}

/** A clock that moves only when told; due timers run in order, including those they schedule. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pending(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

interface SysDevice {
  devpath: string;
  subsystem: string | undefined;
  props: Record<string, string>;
  driver: string | undefined;
  children: SysDevice[];
}

function readDevice(sysRoot: string, devpath: string): SysDevice {
  const dir = path.join(sysRoot, devpath);
  const props: Record<string, string> = {};
  for (const line of fs.readFileSync(path.join(dir, "uevent"), "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const link = (name: string) => {
    try {
      return path.basename(fs.readlinkSync(path.join(dir, name)));
    } catch {
      return undefined;
    }
  };
  const children: SysDevice[] = [];
  const walk = (rel: string) => {
    for (const d of fs.readdirSync(path.join(sysRoot, rel), { withFileTypes: true })) {
      if (!d.isDirectory() || d.name === "power" || d.name.startsWith("ep_")) continue;
      const child = `${rel}/${d.name}`;
      if (fs.existsSync(path.join(sysRoot, child, "uevent"))) children.push(readDevice(sysRoot, child));
      else walk(child);
    }
  };
  walk(devpath);
  return { devpath, subsystem: link("subsystem"), props, driver: link("driver"), children };
}

export interface BurstMessage {
  action: string;
  devpath: string;
  props: Props;
}

/**
 * The uevents the kernel sends for a device and everything below it, in its
 * order: on add, each device before its children and "bind" once its driver
 * took it; on remove, the reverse. USB devices of their own below it (a
 * hub's children) are left out.
 */
export function burst(sysRoot: string, devpath: string, action: "add" | "remove", seq = { n: 1000 }): BurstMessage[] {
  const out: BurstMessage[] = [];
  const msg = (a: string, d: SysDevice) => {
    const props: Props = { SUBSYSTEM: d.subsystem ?? "", ...d.props, SEQNUM: ++seq.n };
    if (a !== "add" && a !== "bind") {
      delete props.DRIVER;
    }
    out.push({ action: a, devpath: d.devpath, props });
  };
  const top = readDevice(sysRoot, devpath);
  const own = (d: SysDevice) => d === top || !/^\d+-[\d.]+$/.test(path.basename(d.devpath));
  const add = (d: SysDevice) => {
    if (!own(d)) return;
    msg("add", d);
    for (const c of d.children) add(c);
    if (d.driver) msg("bind", d);
  };
  const remove = (d: SysDevice) => {
    if (!own(d)) return;
    for (const c of [...d.children].reverse()) remove(c);
    if (d.driver) msg("unbind", d);
    msg("remove", d);
  };
  if (action === "add") add(top);
  else remove(top);
  return out;
}

export function asKernel(messages: BurstMessage[]): Buffer[] {
  return messages.map((m) => kernelMessage(m.action, m.devpath, m.props));
}

export function asUdev(messages: BurstMessage[]): Buffer[] {
  return messages.map((m) => udevMessage(m.action, m.devpath, { ...m.props, USEC_INITIALIZED: 1234 }));
}
