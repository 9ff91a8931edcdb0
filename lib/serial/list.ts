// The serial ports the editor offers: stable /dev/serial/by-id links first
// (they survive replug), then the plain tty names.
import fs from "fs";
import path from "path";
import { SerialPort } from "serialport";
import { BY_ID_DIR } from "./follow";

export interface PortListing {
  path: string;
  /** what it is: "Arduino UNO (2341:0043) → /dev/ttyACM0" */
  label: string;
  /** the tty a by-id link points at */
  target?: string;
}

const TTY = /^tty(ACM|USB|AMA|S|XRUSB|WCH|MFD)\d+$|^serial\d$|^rfcomm\d+$/;

export async function listPorts(opts: { byIdDir?: string; devDir?: string; list?: () => Promise<Array<{ path: string; manufacturer?: string; vendorId?: string; productId?: string }>> } = {}): Promise<PortListing[]> {
  const byIdDir = opts.byIdDir ?? BY_ID_DIR;
  const devDir = opts.devDir ?? "/dev";
  const out: PortListing[] = [];
  const seen = new Set<string>();
  try {
    for (const name of fs.readdirSync(byIdDir).sort()) {
      const p = path.join(byIdDir, name);
      let target: string | undefined;
      try {
        target = fs.realpathSync(p);
      } catch {
        continue;
      }
      out.push({ path: p, label: `${name} → ${target}`, target });
      seen.add(p);
    }
  } catch {
    /* no USB serial device plugged in: udev has not made the directory */
  }
  let described: Awaited<ReturnType<NonNullable<typeof opts.list>>> = [];
  try {
    described = await (opts.list ?? (() => SerialPort.list()))();
  } catch {
    described = [];
  }
  const about = new Map(described.map((d) => [d.path, d]));
  let ttys: string[] = [];
  try {
    ttys = fs.readdirSync(devDir).filter((n) => TTY.test(n)).sort().map((n) => path.join(devDir, n));
  } catch {
    ttys = [];
  }
  for (const p of [...new Set([...described.map((d) => d.path), ...ttys])]) {
    if (seen.has(p)) continue;
    seen.add(p);
    const d = about.get(p);
    const ids = d?.vendorId && d.productId ? ` (${d.vendorId}:${d.productId})` : "";
    out.push({ path: p, label: d?.manufacturer ? `${p} - ${d.manufacturer}${ids}` : `${p}${ids}` });
  }
  return out;
}
