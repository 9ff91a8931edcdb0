// Vendor and product names from the usb.ids file that usbutils/hwdata
// install. The file is large (~750 kB) and most flows never need it, so it is
// read on the first lookup only, and parsed once per process per path.
import fs from "fs";

export const DEFAULT_USB_IDS_PATHS = ["/usr/share/hwdata/usb.ids", "/usr/share/misc/usb.ids", "/var/lib/usbutils/usb.ids"];

export interface UsbIdsData {
  vendors: Map<string, { name: string; products: Map<string, string> }>;
  classes: Map<string, { name: string; subclasses: Map<string, string> }>;
}

/** Parses the usb.ids text format: vendors, their products, and the "C" class section. */
export function parseUsbIds(text: string): UsbIdsData {
  const data: UsbIdsData = { vendors: new Map(), classes: new Map() };
  let section: "vendors" | "classes" | "other" = "vendors";
  let vendor: { name: string; products: Map<string, string> } | undefined;
  let cls: { name: string; subclasses: Map<string, string> } | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line === "" || line.startsWith("#")) continue;
    if (!line.startsWith("\t")) {
      const classHead = /^C ([0-9a-fA-F]{2})\s+(.*)$/.exec(line);
      if (classHead) {
        section = "classes";
        cls = { name: classHead[2].trim(), subclasses: new Map() };
        data.classes.set(classHead[1].toLowerCase(), cls);
        continue;
      }
      // Other sections (AT, HID, R, BIAS, PHY, HUT, L, HCC, VT) start with a tag.
      if (/^[A-Z]+ /.test(line)) {
        section = "other";
        continue;
      }
      const head = /^([0-9a-fA-F]{4})\s+(.*)$/.exec(line);
      if (head && section === "vendors") {
        vendor = { name: head[2].trim(), products: new Map() };
        data.vendors.set(head[1].toLowerCase(), vendor);
      } else {
        vendor = undefined;
      }
      continue;
    }
    if (line.startsWith("\t\t")) continue;
    const item = /^\t([0-9a-fA-F]{2,4})\s+(.*)$/.exec(line);
    if (!item) continue;
    if (section === "vendors" && vendor && item[1].length === 4) vendor.products.set(item[1].toLowerCase(), item[2].trim());
    else if (section === "classes" && cls && item[1].length === 2) cls.subclasses.set(item[1].toLowerCase(), item[2].trim());
  }
  return data;
}

const parsed = new Map<string, UsbIdsData | null>();
let reads = 0;

/** How many times a usb.ids file was read and parsed in this process (tests check the cache with it). */
export function usbIdsReads(): number {
  return reads;
}

/** Forgets parsed files, so that a changed file is read again. */
export function clearUsbIdsCache(): void {
  parsed.clear();
}

function load(path: string): UsbIdsData | null {
  if (parsed.has(path)) return parsed.get(path) ?? null;
  let data: UsbIdsData | null = null;
  try {
    const text = fs.readFileSync(path, "utf8");
    reads++;
    data = parseUsbIds(text);
  } catch {
    data = null;
  }
  parsed.set(path, data);
  return data;
}

/** Lookups in the first of `paths` that exists; nothing is read until the first lookup. */
export class UsbIds {
  private readonly paths: string[];
  private data: UsbIdsData | null | undefined;
  private chosen: string | undefined;

  constructor(paths: string | string[] = DEFAULT_USB_IDS_PATHS) {
    this.paths = Array.isArray(paths) ? paths : [paths];
  }

  /** The file used, once a lookup has happened; undefined when the system has none. */
  get path(): string | undefined {
    this.ensure();
    return this.chosen;
  }

  get available(): boolean {
    return this.ensure() !== null;
  }

  vendor(vid: string): string | undefined {
    return this.ensure()?.vendors.get(vid.toLowerCase())?.name;
  }

  product(vid: string, pid: string): string | undefined {
    return this.ensure()?.vendors.get(vid.toLowerCase())?.products.get(pid.toLowerCase());
  }

  className(cls: string, subclass?: string): string | undefined {
    const c = this.ensure()?.classes.get(cls.toLowerCase());
    if (!c) return undefined;
    return (subclass !== undefined ? c.subclasses.get(subclass.toLowerCase()) : undefined) ?? c.name;
  }

  private ensure(): UsbIdsData | null {
    if (this.data !== undefined) return this.data;
    this.data = null;
    for (const p of this.paths) {
      if (!fs.existsSync(p)) continue;
      const d = load(p);
      if (d) {
        this.data = d;
        this.chosen = p;
        break;
      }
    }
    return this.data;
  }
}
