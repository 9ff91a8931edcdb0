// udevd's database: one file per device under /run/udev/data, named
// c<major>:<minor> (character devices), b<major>:<minor> (block devices),
// n<ifindex> (network interfaces) or +<subsystem>:<sysname> (the rest). Lines:
// S: a symlink under /dev, L: link priority, E: a property, G:/Q: tags,
// I: initialization time, V: format version. Read directly, so that neither
// libudev nor an udevadm process is needed.
import fs from "fs";
import path from "path";
import { errorCode, readSmallFile, WarnFn } from "./sysfs";

export interface UdevRecord {
  properties: Record<string, string>;
  /** Symlinks relative to /dev ("serial/by-id/usb-..."). */
  links: string[];
  tags: string[];
}

/** Parses one database file. `bad` hears about each line that is not understood. */
export function parseUdevRecord(text: string, bad?: (line: string) => void): UdevRecord {
  const record: UdevRecord = { properties: {}, links: [], tags: [] };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.length < 2 || line[1] !== ":") {
      bad?.(line);
      continue;
    }
    const value = line.slice(2);
    switch (line[0]) {
      case "S":
        if (value) record.links.push(value);
        break;
      case "E": {
        const eq = value.indexOf("=");
        if (eq <= 0) bad?.(line);
        else record.properties[value.slice(0, eq)] = value.slice(eq + 1);
        break;
      }
      case "G":
        if (value && !record.tags.includes(value)) record.tags.push(value);
        break;
      default:
        // L:, I:, V:, Q:, W: and future letters carry nothing an event needs.
        break;
    }
  }
  return record;
}

export class UdevDatabase {
  readonly root: string;
  private present: boolean | undefined;

  constructor(
    root: string,
    private readonly warn: WarnFn,
  ) {
    this.root = path.resolve(root);
  }

  /**
   * Whether the database exists. Checked again on each call, since udevd may
   * start after Node-RED; a missing database is reported once per absence.
   */
  available(): boolean {
    let ok: boolean;
    try {
      ok = fs.statSync(this.root).isDirectory();
    } catch {
      ok = false;
    }
    if (!ok && this.present !== false) {
      this.warn({
        code: "udev-missing",
        message:
          `the udev database ${this.root} does not exist: udevd is not running here (a container, or a minimal system), ` +
          "so /dev/serial/by-id links and udev's properties are not reported; ids and device nodes come from sysfs alone",
        path: this.root,
      });
    }
    this.present = ok;
    return ok;
  }

  /** The record for "c166:0", "+usb:1-1.2:1.0", ...; undefined when there is none. */
  read(id: string): UdevRecord | undefined {
    if (this.present === false) return undefined;
    // Ids never hold "/" or name "." or "..", so this is path.join without its cost.
    const file = this.root.endsWith("/") ? this.root + id : `${this.root}/${id}`;
    let text: string;
    try {
      text = readSmallFile(file);
    } catch (err) {
      const code = errorCode(err);
      if (code !== "ENOENT" && code !== "ENOTDIR") {
        this.warn({ code: "udev-unreadable", message: `cannot read the udev record ${file}: ${code}`, path: file });
      }
      return undefined;
    }
    return parseUdevRecord(text, (line) =>
      this.warn({
        code: "udev-malformed",
        message: `${file} has a line udev never writes (${JSON.stringify(line.slice(0, 40))}): ignored`,
        path: file,
      }),
    );
  }
}
