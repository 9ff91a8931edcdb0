// Reading sysfs under an injectable root. Every read is synchronous and small:
// enumerating a few hundred devices means thousands of tiny files, where the
// cost is syscalls, so each attribute is one open/read/close into a shared
// buffer rather than readFileSync's open/fstat/read/close and allocation.
import fs from "fs";
import path from "path";

export type WarningCode =
  | "sysfs-missing"
  | "sysfs-unreadable"
  | "sysfs-malformed"
  | "udev-missing"
  | "udev-unreadable"
  | "udev-malformed"
  | "uevent-malformed"
  | "hotplug-unavailable"
  | "hotplug-overflow"
  | "hotplug-error";

export interface DetectorWarning {
  code: WarningCode;
  message: string;
  /** The file or directory concerned, if any. */
  path?: string;
}

export type WarnFn = (w: DetectorWarning) => void;

/**
 * A uevent file's KEY=value lines. A Map, not an object: the keys are fresh
 * strings from every file read, which an object would intern one by one.
 */
export type KernelKeys = Map<string, string>;

const ABSENT = new Set(["ENOENT", "ENOTDIR"]);
const buffer = Buffer.allocUnsafe(16384);

/** Reads a small file whole; throws like fs does. */
export function readSmallFile(file: string): string {
  const fd = fs.openSync(file, "r");
  try {
    const n = fs.readSync(fd, buffer, 0, buffer.length, 0);
    if (n < buffer.length) return buffer.toString("utf8", 0, n);
  } finally {
    fs.closeSync(fd);
  }
  return fs.readFileSync(file, "utf8");
}

/** The same for bytes; the result is a copy, the shared buffer is reused. */
export function readSmallBytes(file: string): Buffer {
  const fd = fs.openSync(file, "r");
  try {
    const n = fs.readSync(fd, buffer, 0, buffer.length, 0);
    if (n < buffer.length) return Buffer.from(buffer.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return fs.readFileSync(file);
}

export function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? "EIO";
}

function unreadable(what: string, file: string, err: unknown): DetectorWarning {
  const code = errorCode(err);
  const why =
    code === "EACCES" || code === "EPERM"
      ? "permission denied. sysfs is normally readable by every user: is Node-RED confined (snap, AppArmor, a container)?"
      : `${code}.`;
  return { code: "sysfs-unreadable", message: `cannot read ${what} ${file}: ${why}`, path: file };
}

/** A path with a "." or ".." component, an empty one, or a slash at either end. */
const UNCLEAN = /(^|\/)\.\.?(\/|$)|\/\/|^\/|\/$/;

/**
 * path.posix.resolve("/", base, rel) for a relative `rel`: what a link's target names.
 * Written out because path.resolve's generality costs more than the
 * readlink it follows, for every class and bus link.
 */
export function resolveLink(base: string, rel: string): string {
  // The kernel's links are "../../devices/...": climb, then a clean rest.
  let at = 0;
  let up = 0;
  while (rel.startsWith("../", at)) {
    at += 3;
    up++;
  }
  const rest = rel.slice(at);
  if (rest !== "" && !UNCLEAN.test(rest) && !UNCLEAN.test(base)) {
    let end = base.length;
    while (up > 0 && end > 0) {
      end = base.lastIndexOf("/", end - 1);
      up--;
      if (end < 0) end = 0;
    }
    return end > 0 ? `/${base.slice(0, end)}/${rest}` : `/${rest}`;
  }
  const out: string[] = [];
  const push = (seg: string) => {
    if (seg === "" || seg === ".") return;
    if (seg === "..") out.pop();
    else out.push(seg);
  };
  for (const seg of base.split("/")) push(seg);
  for (const seg of rel.split("/")) push(seg);
  return "/" + out.join("/");
}

export class SysfsReader {
  /** The directory that plays /sys (no trailing slash). */
  readonly root: string;

  constructor(
    root: string,
    private readonly warn: WarnFn,
  ) {
    this.root = path.resolve(root);
  }

  /** The file system path of a devpath ("/devices/...") or of a path relative to /sys. */
  abs(devpath: string, ...rest: string[]): string {
    // Devpaths are clean (absolute, no "." or ".."), so plain concatenation
    // does what path.join would, without its cost on every attribute.
    let p = devpath.startsWith("/") ? this.root + devpath : `${this.root}/${devpath}`;
    for (const r of rest) p += `/${r}`;
    return p;
  }

  exists(devpath: string): boolean {
    return fs.existsSync(this.abs(devpath));
  }

  /** An attribute's value without its trailing newline; undefined when absent or unreadable. */
  attr(devpath: string, name: string): string | undefined {
    const file = this.abs(devpath, name);
    try {
      const v = readSmallFile(file);
      return v.endsWith("\n") ? v.slice(0, -1) : v;
    } catch (err) {
      if (!ABSENT.has(errorCode(err))) this.warn(unreadable("attribute", file, err));
      return undefined;
    }
  }

  /** A binary attribute ("descriptors"); undefined when absent or unreadable. */
  attrBytes(devpath: string, name: string): Buffer | undefined {
    const file = this.abs(devpath, name);
    try {
      return readSmallBytes(file);
    } catch (err) {
      if (!ABSENT.has(errorCode(err))) this.warn(unreadable("attribute", file, err));
      return undefined;
    }
  }

  /** The `uevent` file as key/value pairs; lines without "=" are reported and skipped. */
  uevent(devpath: string): KernelKeys | undefined {
    const text = this.attr(devpath, "uevent");
    if (text === undefined) return undefined;
    const out: KernelKeys = new Map();
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const eq = line.indexOf("=");
      if (eq <= 0) {
        const file = this.abs(devpath, "uevent");
        this.warn({ code: "sysfs-malformed", message: `${file} has a line without "=" (${JSON.stringify(line.slice(0, 40))}): the file looks truncated, that line is ignored`, path: file });
        continue;
      }
      out.set(line.slice(0, eq), line.slice(eq + 1));
    }
    return out;
  }

  /** The last component of a symbolic link's target ("driver" -> "cdc_acm"). */
  linkName(devpath: string, name: string): string | undefined {
    const file = this.abs(devpath, name);
    try {
      const target = fs.readlinkSync(file);
      return target.slice(target.lastIndexOf("/") + 1) || undefined;
    } catch (err) {
      const code = errorCode(err);
      if (!ABSENT.has(code) && code !== "EINVAL") this.warn(unreadable("link", file, err));
      return undefined;
    }
  }

  /** Names in a directory relative to the root ("class/tty"); undefined when absent or unreadable. */
  list(dir: string): string[] | undefined {
    const file = this.abs(dir);
    try {
      return fs.readdirSync(file);
    } catch (err) {
      if (!ABSENT.has(errorCode(err))) this.warn(unreadable("directory", file, err));
      return undefined;
    }
  }

  /**
   * A directory's names; undefined when it is gone. Knowing which attributes
   * exist spares the failed opens of absent ones, whose exceptions cost more
   * than the reads. Names only: file types would cost a Dirent per entry.
   */
  names(devpath: string): Set<string> | undefined {
    const file = this.abs(devpath);
    try {
      return new Set(fs.readdirSync(file));
    } catch (err) {
      if (!ABSENT.has(errorCode(err))) this.warn(unreadable("directory", file, err));
      return undefined;
    }
  }

  /** Subdirectories (not links) of a device directory. */
  subdirs(devpath: string): string[] | undefined {
    const file = this.abs(devpath);
    try {
      return fs
        .readdirSync(file, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch (err) {
      if (!ABSENT.has(errorCode(err))) this.warn(unreadable("directory", file, err));
      return undefined;
    }
  }

  /**
   * Where a link such as class/tty/ttyACM0 points, as a devpath. The target is
   * resolved by its text, relative to the link, so that a tree under any root
   * behaves like /sys; realpath would also follow links above the root.
   */
  resolve(dir: string, name: string): string | undefined {
    const file = this.abs(dir, name);
    let target: string;
    try {
      target = fs.readlinkSync(file);
    } catch (err) {
      const code = errorCode(err);
      // A plain directory in place of a link (some trees are copied without links).
      if (code === "EINVAL") return path.posix.join("/", dir, name);
      if (!ABSENT.has(code)) this.warn(unreadable("link", file, err));
      return undefined;
    }
    let devpath: string;
    if (!target.startsWith("/")) devpath = resolveLink(dir, target);
    else if (target.startsWith(this.root + "/")) devpath = target.slice(this.root.length);
    else if (target.startsWith("/sys/")) devpath = target.slice(4);
    else devpath = target;
    if (!devpath.startsWith("/devices/")) {
      this.warn({ code: "sysfs-malformed", message: `${file} points to ${target}, outside /sys/devices: ignored`, path: file });
      return undefined;
    }
    return devpath;
  }
}
