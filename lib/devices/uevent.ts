// The two wire formats on a NETLINK_KOBJECT_UEVENT socket, and the source
// interface the native monitor satisfies.
//
// Kernel (multicast group 1): "ACTION@DEVPATH\0KEY=VALUE\0KEY=VALUE\0...".
// udevd (group 2), after its rules ran: a 40-byte header, then the properties
// as "KEY=VALUE\0..." at properties_off for properties_len bytes:
//
//   char     prefix[8];             "libudev\0"
//   uint32_t magic;                 0xfeedcafe, network byte order
//   uint32_t header_size;           host byte order, like the three below
//   uint32_t properties_off;
//   uint32_t properties_len;
//   uint32_t filter_subsystem_hash; network byte order (socket filters)
//   uint32_t filter_devtype_hash;
//   uint32_t filter_tag_bloom_hi;
//   uint32_t filter_tag_bloom_lo;
import { EventEmitter } from "events";
import os from "os";

/**
 * Where raw uevent messages come from. The native monitor (a thread reading
 * the netlink socket) implements it, and tests feed Buffers through their
 * own. Events: "message" (one datagram's bytes), optionally "overflow" (the
 * kernel or a queue dropped that many messages: the inventory may be stale)
 * and "error".
 */
export interface UeventSource extends EventEmitter {
  start(): void;
  stop(): void;
}

export type UeventFormat = "kernel" | "udev";

export interface Uevent {
  format: UeventFormat;
  action: string;
  devpath: string;
  subsystem?: string;
  devtype?: string;
  seqnum?: number;
  /** Every KEY=VALUE of the message, ACTION and DEVPATH included. */
  properties: Record<string, string>;
}

export const UEVENT_ACTIONS = ["add", "remove", "change", "move", "online", "offline", "bind", "unbind"] as const;

export const UDEV_PREFIX = "libudev\0";
export const UDEV_MAGIC = 0xfeedcafe;
export const UDEV_HEADER_SIZE = 40;

export class UeventParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UeventParseError";
  }
}

const LE = os.endianness() === "LE";
const KEY = /^[A-Za-z0-9_.]+$/;

function hostU32(buf: Buffer, offset: number): number {
  return LE ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
}

function printable(s: string): string {
  return JSON.stringify(s.length > 60 ? s.slice(0, 60) + "..." : s);
}

function parseProperties(text: string, what: string): Record<string, string> {
  const props: Record<string, string> = {};
  for (const field of text.split("\0")) {
    if (field === "") continue;
    const eq = field.indexOf("=");
    if (eq <= 0) throw new UeventParseError(`${what}: field ${printable(field)} is not KEY=VALUE`);
    const key = field.slice(0, eq);
    if (!KEY.test(key)) throw new UeventParseError(`${what}: ${printable(key)} is not a property name`);
    props[key] = field.slice(eq + 1);
  }
  return props;
}

/**
 * A devpath we are willing to join to the sysfs root: absolute, and without
 * "." or ".." components, since a forged message must not steer reads.
 */
export function safeDevpath(devpath: string): boolean {
  if (!devpath.startsWith("/") || devpath.length > 4096) return false;
  return devpath
    .slice(1)
    .split("/")
    .every((c) => c !== "" && c !== "." && c !== "..");
}

function finish(format: UeventFormat, props: Record<string, string>, what: string): Uevent {
  const action = props.ACTION;
  const devpath = props.DEVPATH;
  if (!action) throw new UeventParseError(`${what}: no ACTION`);
  if (!devpath) throw new UeventParseError(`${what}: no DEVPATH`);
  if (!(UEVENT_ACTIONS as readonly string[]).includes(action)) {
    throw new UeventParseError(`${what}: unknown action ${printable(action)}`);
  }
  if (!safeDevpath(devpath)) throw new UeventParseError(`${what}: DEVPATH ${printable(devpath)} is not a clean absolute path`);
  const ev: Uevent = { format, action, devpath, properties: props };
  if (props.SUBSYSTEM) ev.subsystem = props.SUBSYSTEM;
  if (props.DEVTYPE) ev.devtype = props.DEVTYPE;
  if (props.SEQNUM !== undefined) {
    const n = Number(props.SEQNUM);
    if (!/^\d+$/.test(props.SEQNUM) || !Number.isSafeInteger(n)) {
      throw new UeventParseError(`${what}: SEQNUM ${printable(props.SEQNUM)} is not a number`);
    }
    ev.seqnum = n;
  }
  return ev;
}

function parseUdev(buf: Buffer): Uevent {
  const what = "udev message";
  if (buf.length < UDEV_HEADER_SIZE) {
    throw new UeventParseError(`${what}: ${buf.length} bytes, shorter than its ${UDEV_HEADER_SIZE}-byte header`);
  }
  const magic = buf.readUInt32BE(8);
  if (magic !== UDEV_MAGIC) {
    throw new UeventParseError(`${what}: magic 0x${magic.toString(16)} is not 0xfeedcafe (a different udev build, or garbage)`);
  }
  const headerSize = hostU32(buf, 12);
  const off = hostU32(buf, 16);
  const len = hostU32(buf, 20);
  if (headerSize < UDEV_HEADER_SIZE || headerSize > buf.length) {
    throw new UeventParseError(`${what}: header_size ${headerSize} does not fit a ${buf.length}-byte message`);
  }
  if (off < headerSize || len === 0 || off + len > buf.length) {
    throw new UeventParseError(`${what}: properties at ${off}+${len} do not fit a ${buf.length}-byte message`);
  }
  return finish("udev", parseProperties(buf.toString("utf8", off, off + len), what), what);
}

function parseKernel(buf: Buffer): Uevent {
  const what = "kernel uevent";
  const text = buf.toString("utf8");
  const nul = text.indexOf("\0");
  const head = nul < 0 ? text : text.slice(0, nul);
  const at = head.indexOf("@");
  if (at <= 0 || at === head.length - 1) {
    throw new UeventParseError(`message is neither a kernel uevent (ACTION@DEVPATH) nor a libudev one: starts ${printable(head)}`);
  }
  const props = parseProperties(nul < 0 ? "" : text.slice(nul + 1), what);
  const action = head.slice(0, at);
  const devpath = head.slice(at + 1);
  if (props.ACTION !== undefined && props.ACTION !== action) {
    throw new UeventParseError(`${what}: header says ${printable(action)} but ACTION=${printable(props.ACTION)}`);
  }
  if (props.DEVPATH !== undefined && props.DEVPATH !== devpath) {
    throw new UeventParseError(`${what}: header names ${printable(devpath)} but DEVPATH=${printable(props.DEVPATH)}`);
  }
  props.ACTION = action;
  props.DEVPATH = devpath;
  return finish("kernel", props, what);
}

/** Parses one netlink datagram in either format. Throws UeventParseError with the reason. */
export function parseUevent(buf: Buffer): Uevent {
  if (buf.length === 0) throw new UeventParseError("empty message");
  if (buf.length >= 8 && buf.toString("latin1", 0, 8) === UDEV_PREFIX) return parseUdev(buf);
  return parseKernel(buf);
}
