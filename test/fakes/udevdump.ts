// Turns real recordings into sysfs + udev trees the detector can read:
//
// - `udevadm info --export-db` dumps: blocks of P: (devpath), N: (node),
//   S: (link), L: (link priority), E: (property). They hold no sysfs
//   attributes, so the attributes udev's own properties were made from are
//   written back (idVendor from ID_VENDOR_ID, bInterfaceClass from INTERFACE,
//   a driver link from DRIVER ...), and nothing else is invented.
// - umockdev recordings: the same letters plus A: (attribute, C-escaped),
//   H: (binary attribute, hex) and L: name=target (a sysfs link), which are
//   written as they are.
import fs from "fs";
import path from "path";
import { FakeSysfs } from "./sysfs";

export interface DumpDevice {
  devpath: string;
  node?: string;
  links: string[];
  props: Record<string, string>;
  attrs: Record<string, Buffer>;
  sysLinks: Record<string, string>;
}

function unescapeC(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== "\\" || i + 1 >= s.length) {
      out.push(...Buffer.from(c, "utf8"));
      continue;
    }
    const n = s[++i];
    if (n === "n") out.push(10);
    else if (n === "t") out.push(9);
    else if (n === "r") out.push(13);
    else if (n === "\\") out.push(92);
    else if (n === "x" && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i)) as RegExpExecArray;
      out.push(parseInt(m[0], 8) & 0xff);
      i += m[0].length - 1;
    } else out.push(...Buffer.from("\\" + n, "utf8"));
  }
  return Buffer.from(out);
}

/** udev's \xHH encoding of descriptor strings (ID_VENDOR_ENC). */
export function decodeUdevEnc(s: string): string {
  return unescapeC(s).toString("utf8");
}

export function parseDump(text: string): DumpDevice[] {
  const devices: DumpDevice[] = [];
  let cur: DumpDevice | undefined;
  for (const line of text.split("\n")) {
    if (line.trim() === "") {
      cur = undefined;
      continue;
    }
    const m = /^([A-Z]): ?(.*)$/.exec(line);
    // A property whose value held a newline continues on a bare line; nothing here needs it.
    if (!m) continue;
    const [, letter, value] = m;
    if (letter === "P") {
      cur = { devpath: value, links: [], props: {}, attrs: {}, sysLinks: {} };
      devices.push(cur);
      continue;
    }
    if (!cur) continue;
    const eq = value.indexOf("=");
    switch (letter) {
      case "N":
        cur.node = eq >= 0 ? value.slice(0, eq) : value;
        break;
      case "S":
        cur.links.push(value);
        break;
      case "E":
        if (eq > 0) cur.props[value.slice(0, eq)] = value.slice(eq + 1);
        break;
      case "A":
        if (eq > 0) cur.attrs[value.slice(0, eq)] = unescapeC(value.slice(eq + 1));
        break;
      case "H":
        if (eq > 0) cur.attrs[value.slice(0, eq)] = Buffer.from(value.slice(eq + 1), "hex");
        break;
      case "L":
        // export-db: "L: <priority>"; umockdev: "L: <name>=<target>".
        if (eq > 0) cur.sysLinks[value.slice(0, eq)] = value.slice(eq + 1);
        break;
    }
  }
  return devices;
}

const KERNEL_KEYS = ["MAJOR", "MINOR", "DEVNAME", "DEVTYPE", "DRIVER", "PRODUCT", "TYPE", "BUSNUM", "DEVNUM", "INTERFACE", "MODALIAS", "HID_ID", "HID_NAME", "HID_PHYS", "HID_UNIQ"];
const BUSES = new Set(["usb", "pci", "platform", "hid", "pnp", "i2c", "acpi", "amba", "usb-serial", "serio", "scsi", "serial-base", "spi", "mei", "bluetooth", "sdio", "mmc", "virtio", "nvme", "thunderbolt", "hdaudio", "snd_seq"]);
const NODE_CLASSES = new Set(["tty", "video4linux", "sound", "hidraw", "input"]);

function hex2(dec: string | undefined): string | undefined {
  return dec !== undefined && /^\d+$/.test(dec) ? Number(dec).toString(16).padStart(2, "0") : undefined;
}

/** What sysfs would hold for a device of an export-db dump, from the properties udev derived from it. */
function synthesizedAttrs(d: DumpDevice): Record<string, string> {
  const p = d.props;
  const out: Record<string, string> = {};
  const name = path.posix.basename(d.devpath);
  if (p.DEVTYPE === "usb_device") {
    if (p.ID_VENDOR_ID) out.idVendor = p.ID_VENDOR_ID;
    if (p.ID_MODEL_ID) out.idProduct = p.ID_MODEL_ID;
    if (p.ID_SERIAL_SHORT) out.serial = p.ID_SERIAL_SHORT;
    // udev falls back to the hex id when the device has no string; that is no string.
    if (p.ID_VENDOR_ENC && p.ID_VENDOR_ENC !== p.ID_VENDOR_ID) out.manufacturer = decodeUdevEnc(p.ID_VENDOR_ENC);
    if (p.ID_MODEL_ENC && p.ID_MODEL_ENC !== p.ID_MODEL_ID) out.product = decodeUdevEnc(p.ID_MODEL_ENC);
    if (p.BUSNUM) out.busnum = String(Number(p.BUSNUM));
    if (p.DEVNUM) out.devnum = String(Number(p.DEVNUM));
    const cls = hex2(p.TYPE?.split("/")[0]);
    if (cls) out.bDeviceClass = cls;
    if (/^\d+-/.test(name)) out.devpath = name.slice(name.indexOf("-") + 1);
  } else if (p.DEVTYPE === "usb_interface" && p.INTERFACE) {
    const [c, s, pr] = p.INTERFACE.split("/");
    const cls = hex2(c);
    const sub = hex2(s);
    const proto = hex2(pr);
    if (cls && sub && proto) Object.assign(out, { bInterfaceClass: cls, bInterfaceSubClass: sub, bInterfaceProtocol: proto });
  }
  if (p.MAJOR && p.MINOR) out.dev = `${p.MAJOR}:${p.MINOR}`;
  return out;
}

function symlink(from: string, target: string): void {
  fs.mkdirSync(path.dirname(from), { recursive: true });
  try {
    fs.unlinkSync(from);
  } catch {
    /* none yet */
  }
  fs.symlinkSync(target, from);
}

/** Writes the recorded devices into a fake tree. */
export function writeDump(devices: DumpDevice[], tree: FakeSysfs): void {
  const sys = tree.sys;
  for (const d of devices) {
    if (!d.devpath.startsWith("/devices/")) continue;
    const dir = path.join(sys, d.devpath);
    fs.mkdirSync(dir, { recursive: true });
    const p = d.props;
    const sub = p.SUBSYSTEM;
    const name = path.posix.basename(d.devpath);

    const recorded = Object.keys(d.attrs).length > 0;
    const attrs: Record<string, Buffer> = recorded ? d.attrs : Object.fromEntries(Object.entries(synthesizedAttrs(d)).map(([k, v]) => [k, Buffer.from(v + "\n")]));
    for (const [k, v] of Object.entries(attrs)) {
      const f = path.join(dir, k);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      if (!fs.existsSync(f)) fs.writeFileSync(f, v);
    }

    const ue: string[] = [];
    for (const k of KERNEL_KEYS) {
      let v = p[k];
      if (k === "DEVNAME" && v === undefined && d.node) v = d.node;
      if (v === undefined) continue;
      if (k === "DEVNAME" && v.startsWith("/dev/")) v = v.slice(5);
      ue.push(`${k}=${v}\n`);
    }
    fs.writeFileSync(path.join(dir, "uevent"), ue.join(""));

    const isBus = p.DEVTYPE === "usb_device" || p.DEVTYPE === "usb_interface" || (sub !== undefined && BUSES.has(sub));
    if (sub) {
      const where = isBus ? path.join(sys, "bus", sub) : path.join(sys, "class", sub);
      fs.mkdirSync(where, { recursive: true });
      symlink(path.join(dir, "subsystem"), path.relative(dir, where));
      if (!isBus && NODE_CLASSES.has(sub)) symlink(path.join(sys, "class", sub, name), path.relative(path.join(sys, "class", sub), dir));
      if (sub === "usb") symlink(path.join(sys, "bus", "usb", "devices", name), path.relative(path.join(sys, "bus", "usb", "devices"), dir));
    }
    for (const [k, target] of Object.entries(d.sysLinks)) symlink(path.join(dir, k), target);
    if (p.DRIVER && !d.sysLinks.driver && isBus && sub) {
      const drv = path.join(sys, "bus", sub, "drivers", p.DRIVER);
      fs.mkdirSync(drv, { recursive: true });
      symlink(path.join(dir, "driver"), path.relative(dir, drv));
    }

    // The udev record: what udev added (every E: not from the kernel) and the links.
    const id = p.MAJOR && p.MINOR ? `c${p.MAJOR}:${p.MINOR}` : sub ? `+${sub}:${name}` : undefined;
    if (id && fs.existsSync(tree.udevData)) {
      const lines = [...d.links.map((l) => `S:${l}`), ...Object.entries(p).filter(([k]) => !KERNEL_KEYS.includes(k) && k !== "DEVPATH" && k !== "SUBSYSTEM" && k !== "DEVLINKS").map(([k, v]) => `E:${k}=${v}`)];
      fs.writeFileSync(path.join(tree.udevData, id), lines.join("\n") + "\n");
    }
  }
}

/** A fake tree holding one recording. */
export function treeFromDump(file: string): { tree: FakeSysfs; devices: DumpDevice[] } {
  const devices = parseDump(fs.readFileSync(file, "utf8"));
  const tree = new FakeSysfs();
  writeDump(devices, tree);
  return { tree, devices };
}
