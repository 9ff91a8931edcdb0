// The device-detect node's filters: subsystems, VID:PID patterns and globs on
// the descriptor strings. Parsed once; a mistake is reported with the entry
// that caused it, so the editor and the runtime say the same thing.
import { DeviceEvent, subsystemsOf } from "./model";

export interface FilterSpec {
  /** Comma-separated subsystems; empty for all. */
  subsystems?: string;
  /** VID:PID list (commas or spaces), "*" and "?" allowed in each half. */
  ids?: string;
  /** Comma-separated globs on manufacturer/product/serial, optionally "field=glob". */
  match?: string;
}

export interface DeviceFilter {
  test(event: Pick<DeviceEvent, "usb" | "nodes" | "subsystem" | "properties">): boolean;
  /** One sentence per entry that could not be understood; the filter ignores none of them silently. */
  errors: string[];
}

/** Friendly names for subsystems. */
const ALIASES: Record<string, string> = {
  video: "video4linux",
  v4l: "video4linux",
  v4l2: "video4linux",
  camera: "video4linux",
  audio: "sound",
  alsa: "sound",
  microphone: "sound",
  serial: "tty",
  hid: "hidraw",
};

const KNOWN = new Set(["tty", "video4linux", "sound", "hidraw", "usb"]);
const ID_PART = /^[0-9a-f*?]{1,4}$/;
type Field = "manufacturer" | "product" | "serial";

/** A glob as a whole-string, case-insensitive RegExp: "*" any run, "?" one character. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "is");
}

function split(list: string | undefined, separators: RegExp): string[] {
  return (list ?? "")
    .split(separators)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parseSubsystems(list: string | undefined, errors: string[] = []): string[] {
  const out: string[] = [];
  for (const raw of split(list, /,/)) {
    const name = ALIASES[raw.toLowerCase()] ?? raw.toLowerCase();
    if (!/^[a-z0-9_-]+$/.test(name)) errors.push(`subsystem "${raw}" is not a subsystem name`);
    else if (!KNOWN.has(name)) errors.push(`subsystem "${raw}" is none of tty, video4linux, sound, hidraw, usb`);
    else if (!out.includes(name)) out.push(name);
  }
  return out;
}

export function parseIds(list: string | undefined, errors: string[] = []): Array<{ vid: RegExp; pid: RegExp }> {
  const out: Array<{ vid: RegExp; pid: RegExp }> = [];
  for (const raw of split(list, /[\s,;]+/)) {
    const [vid, pid, extra] = raw.toLowerCase().split(":");
    if (extra !== undefined || vid === undefined || pid === undefined || !ID_PART.test(vid) || !ID_PART.test(pid)) {
      errors.push(`"${raw}" is not VID:PID (4 hex digits each, * and ? allowed, e.g. 2341:0043 or 1a86:*)`);
      continue;
    }
    // A half without wildcards is a number: "43" means "0043".
    const half = (s: string) => globToRegExp(/[*?]/.test(s) ? s : s.padStart(4, "0"));
    out.push({ vid: half(vid), pid: half(pid) });
  }
  return out;
}

export function parseMatch(list: string | undefined, errors: string[] = []): Array<{ field?: Field; re: RegExp }> {
  const out: Array<{ field?: Field; re: RegExp }> = [];
  for (const raw of split(list, /,/)) {
    const m = /^(manufacturer|product|serial)\s*=\s*(.*)$/i.exec(raw);
    const glob = m ? m[2].trim() : raw;
    if (!glob) {
      errors.push(`"${raw}" has no pattern after "="`);
      continue;
    }
    out.push({ field: m ? (m[1].toLowerCase() as Field) : undefined, re: globToRegExp(glob) });
  }
  return out;
}

function strings(event: Pick<DeviceEvent, "usb" | "properties">): Record<Field, string[]> {
  const p = event.properties;
  const out: Record<Field, string[]> = { manufacturer: [], product: [], serial: [] };
  const add = (f: Field, v: string | null | undefined) => {
    if (v) out[f].push(v);
  };
  if (event.usb) {
    add("manufacturer", event.usb.manufacturer);
    add("product", event.usb.product);
    add("serial", event.usb.serial);
  }
  // udev's names, database names and, off USB, what the node's driver reports.
  add("manufacturer", p.ID_VENDOR_FROM_DATABASE);
  add("product", p.ID_MODEL_FROM_DATABASE);
  if (!event.usb) {
    add("manufacturer", p.ID_VENDOR);
    add("product", p.ID_MODEL);
    add("product", p.ID_V4L_PRODUCT);
    add("serial", p.ID_SERIAL_SHORT);
  }
  return out;
}

export function compileFilter(spec: FilterSpec): DeviceFilter {
  const errors: string[] = [];
  const subsystems = parseSubsystems(spec.subsystems, errors);
  const ids = parseIds(spec.ids, errors);
  const match = parseMatch(spec.match, errors);
  return {
    errors,
    test(event) {
      if (subsystems.length) {
        const own = subsystemsOf(event);
        if (!subsystems.some((s) => own.includes(s))) return false;
      }
      if (ids.length) {
        const u = event.usb;
        if (!u || !ids.some((i) => i.vid.test(u.vid) && i.pid.test(u.pid))) return false;
      }
      if (match.length) {
        const s = strings(event);
        const hit = match.some((m) => (m.field ? s[m.field] : [...s.manufacturer, ...s.product, ...s.serial]).some((v) => m.re.test(v)));
        if (!hit) return false;
      }
      return true;
    },
  };
}
