// The device-detect event (docs/device-event.md is the contract). One event
// describes one physical device and every device node it created.

export type DeviceAction = "present" | "add" | "remove" | "change";

/** Subsystems whose device nodes an event lists, in order of precedence for `subsystem`. */
export const NODE_SUBSYSTEMS = ["tty", "video4linux", "sound", "hidraw"] as const;
export type NodeSubsystem = (typeof NODE_SUBSYSTEMS)[number];

export interface UsbInterface {
  /** bInterfaceClass, 2-digit lowercase hex ("02"). */
  class: string;
  subclass: string;
  protocol: string;
  /** The bound kernel driver ("cdc_acm"), or null when none is bound. */
  driver: string | null;
}

export interface UsbInfo {
  /** idVendor, 4-digit lowercase hex ("2341"). */
  vid: string;
  pid: string;
  manufacturer: string | null;
  product: string | null;
  serial: string | null;
  /** sysfs port path ("1-1.2"): bus, then the hub ports down to the device. */
  port: string;
  busnum: number | null;
  devnum: number | null;
  /** Mbit/s as sysfs reports it: 1.5, 12, 480, 5000, 10000, 20000. */
  speed: number | null;
  /** bDeviceClass, 2-digit lowercase hex ("ef"); "00" means per interface. */
  class: string | null;
  interfaces: UsbInterface[];
  /**
   * Every interface descriptor as "cc:ss:pp", alternate settings included, in
   * descriptor order: what USBGuard's with-interface lists. Without the
   * descriptors, the interfaces' current settings.
   */
  interfaceTypes: string[];
}

export interface AudioNode {
  /** ALSA card number: hw:<card>,<device>. It can change across replug; cardId does not. */
  card: number;
  device: number;
  /** true for a capture (microphone) PCM, false for playback. */
  capture: boolean;
  /** The card's ALSA id ("C920"), as in plughw:CARD=<cardId>,DEV=<device>; null if unknown. */
  cardId: string | null;
  /** "/dev/snd/pcmC1D0c" */
  path: string;
}

export interface DeviceNodes {
  tty: string[];
  serialById: string[];
  /** Video capture nodes ("/dev/video0"). */
  video: string[];
  /** Further nodes of the same video function: UVC metadata nodes. */
  videoMetadata: string[];
  audio: AudioNode[];
  hidraw: string[];
}

export type DiagnosticCode =
  | "permission"
  | "missing-node"
  | "busy"
  | "may-be-busy"
  | "brltty"
  | "no-driver"
  | "claimed"
  | "blocked";

export interface Diagnostic {
  code: DiagnosticCode;
  /** "error": the device cannot be used as is; "warning": it may not work reliably. */
  severity: "error" | "warning";
  /** What to do, in a sentence or two a user can act on. */
  message: string;
  /** The device node concerned, if any. */
  node?: string;
  /** For "permission": the group that owns the node. */
  group?: string;
  /** For "busy", "may-be-busy", "brltty", "claimed": the process. */
  process?: { pid: number; name: string };
}

export interface DeviceEvent {
  action: DeviceAction;
  /** Stable across replug and reboot (see deviceId()). */
  id: string;
  subsystem: string;
  /** The main device node ("/dev/ttyACM0"), else the USB device node, else null. */
  path: string | null;
  /** "/sys/devices/..." of the physical device. */
  syspath: string;
  properties: Record<string, string>;
  /** null for a device that is not on USB. */
  usb: UsbInfo | null;
  nodes: DeviceNodes;
  diagnostics: Diagnostic[];
  /** ms since epoch */
  timestamp: number;
}

export function emptyNodes(): DeviceNodes {
  return { tty: [], serialById: [], video: [], videoMetadata: [], audio: [], hidraw: [] };
}

/** Every device node path an event lists (the by-id links excluded). */
export function nodePaths(nodes: DeviceNodes): string[] {
  return [...nodes.tty, ...nodes.video, ...nodes.videoMetadata, ...nodes.audio.map((a) => a.path), ...nodes.hidraw];
}

/** The subsystems a device belongs to: its bus and those of its nodes. */
export function subsystemsOf(event: Pick<DeviceEvent, "usb" | "nodes" | "subsystem">): string[] {
  const set = new Set<string>();
  if (event.usb) set.add("usb");
  if (event.nodes.tty.length) set.add("tty");
  if (event.nodes.video.length || event.nodes.videoMetadata.length) set.add("video4linux");
  if (event.nodes.audio.length) set.add("sound");
  if (event.nodes.hidraw.length) set.add("hidraw");
  set.add(event.subsystem);
  return [...set];
}

/**
 * udev's rendering of a descriptor string (udev_replace_whitespace, then
 * udev_replace_chars): trimmed, each run of white space becomes one "_", and
 * each ASCII character outside `0-9A-Za-z#+-.:=@_` becomes "_"; other
 * Unicode characters stay (bytes that were not UTF-8 arrive as U+FFFD and
 * become "_"). ID_SERIAL_SHORT and the by-id links use it, so ids built with
 * it line up with /dev/serial/by-id.
 */
const ALREADY_SAFE = /^[0-9A-Za-z#+\-.:=@_]*$/;

export function udevSafe(s: string): string {
  // Most serial numbers need nothing done: spare them the three replaces.
  if (ALREADY_SAFE.test(s)) return s;
  return s
    .replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, "")
    .replace(/[ \t\n\v\f\r]+/g, "_")
    .replace(/[^0-9A-Za-z#+\-.:=@_\u0080-\ufffc\u{10000}-\u{10ffff}]/gu, "_");
}

/**
 * `usb-<vid>:<pid>-<serial>` when the device has a serial number, else
 * `usb-<vid>:<pid>-port-<port>`.
 */
export function usbDeviceId(vid: string, pid: string, serial: string | null, port: string): string {
  const s = serial === null ? "" : udevSafe(serial);
  return s ? `usb-${vid}:${pid}-${s}` : `usb-${vid}:${pid}-port-${port}`;
}

/** `<bus>-<sysname>` of the parent device, e.g. "platform-fe201000.serial", "pci-0000:00:1f.3". */
export function otherDeviceId(bus: string | null, devpath: string): string {
  const sysname = devpath.slice(devpath.lastIndexOf("/") + 1);
  return `${bus ?? "sys"}-${sysname}`;
}

/** The fields that make two events describe the same state (action and time aside). */
export function sameState(a: DeviceEvent, b: DeviceEvent): boolean {
  const strip = (e: DeviceEvent) => JSON.stringify({ ...e, action: "", timestamp: 0 });
  return strip(a) === strip(b);
}
