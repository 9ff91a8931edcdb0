// Finding a device again after replug. Its tty name may change (ttyACM0 comes
// back as ttyACM1 when something still held the old one), but its stable id
// and serial number do not, and udev names /dev/serial/by-id links after them.
import fs from "fs";
import path from "path";
import { deviceFacts, serialPathsOf } from "../profiles/device";
import type { DeviceEvent } from "../profiles/types";

export const BY_ID_DIR = "/dev/serial/by-id";

/** What a stable id says: usb-<vid>:<pid>-<serial>, or the port path where the device has none. */
export function parseStableId(id: string): { vid?: string; pid?: string; serial?: string; port?: string } {
  const m = /^usb-([0-9a-f]{4}):([0-9a-f]{4})-(.+)$/i.exec(id);
  if (!m) return {};
  const rest = m[3];
  const out = { vid: m[1].toLowerCase(), pid: m[2].toLowerCase() };
  return /^\d+-\d+(\.\d+)*$/.test(rest) ? { ...out, port: rest } : { ...out, serial: rest };
}

/** udev's by-id names keep [0-9A-Za-z#+-.:=@_] and turn everything else into "_". */
export function udevSafe(s: string): string {
  return s.trim().replace(/\s+/g, "_").replace(/[^0-9A-Za-z#+\-.:=@_]/g, "_");
}

/** Does a /dev/serial/by-id name (usb-<vendor>_<model>_<serial>-if00[-port0]) carry this serial? */
export function byIdNameHasSerial(name: string, serial: string): boolean {
  const s = udevSafe(serial);
  if (s === "") return false;
  let at = name.indexOf(s);
  while (at !== -1) {
    const before = name[at - 1];
    const after = name[at + s.length];
    if ((before === "_" || before === "-") && (after === undefined || after === "-")) return true;
    at = name.indexOf(s, at + 1);
  }
  return false;
}

/**
 * The by-id link of the device with this serial, or undefined. Of several
 * (one per interface), the one for the same interface as `previous` wins.
 */
export function findBySerial(serial: string, dir = BY_ID_DIR, previous?: string): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => byIdNameHasSerial(n, serial));
  } catch {
    return undefined;
  }
  if (names.length === 0) return undefined;
  names.sort();
  const suffix = previous ? /-if\d+(-port\d+)?$/.exec(path.basename(previous))?.[0] : undefined;
  const pick = (suffix && names.find((n) => n.endsWith(suffix))) || names[0];
  return path.join(dir, pick);
}

/** The serial number of the device an event describes, from its usb data, properties or id. */
export function serialOf(event: DeviceEvent): string | undefined {
  const facts = deviceFacts(event);
  if (facts.serial) return facts.serial;
  return typeof event.id === "string" ? parseStableId(event.id).serial : undefined;
}

function real(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** Does the event describe the device at `devicePath` (a tty or a by-id link)? */
export function eventHasPath(event: DeviceEvent, devicePath: string): boolean {
  const paths = serialPathsOf(event);
  if (paths.includes(devicePath)) return true;
  const target = real(devicePath);
  return paths.some((p) => real(p) === target);
}
