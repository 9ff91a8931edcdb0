// From a device event to the facts profiles match on. The usb object is
// preferred; udev properties fill what it lacks, so that an event built from
// udev data alone (or a recorded `udevadm info` dump) is still understood.
import type { DeviceEvent, DeviceFacts } from "./types";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function hex(v: unknown, digits: number): string | undefined {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 16 ** digits) return v.toString(16).padStart(digits, "0");
  if (typeof v !== "string") return undefined;
  const s = v.trim().toLowerCase().replace(/^0x/, "");
  return new RegExp(`^[0-9a-f]{1,${digits}}$`).test(s) ? s.padStart(digits, "0") : undefined;
}

/** udev's \xHH escapes (ID_MODEL_ENC and friends); bytes, so UTF-8 survives. */
export function decodeUdevString(s: string): string {
  if (!s.includes("\\x")) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && s[i + 1] === "x" && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      bytes.push(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      bytes.push(...Buffer.from(s[i], "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * A descriptor string from udev properties. udev writes the hex id into
 * ID_VENDOR/ID_MODEL when the device has no string, and replaces spaces
 * with "_" in the plain form, so the _ENC form is read first.
 */
function udevString(props: Obj, key: string, idKey: string): string | undefined {
  const enc = str(props[`${key}_ENC`]);
  const plain = str(props[key]);
  const value = enc !== undefined ? decodeUdevString(enc).trim() : plain;
  if (value === undefined || value === "") return undefined;
  const id = hex(props[idKey], 4);
  if (id !== undefined && value.toLowerCase() === id) return undefined;
  return value;
}

/** ":020201:0a0000:" → [{class "02", subclass "02", protocol "01"}, ...] */
export function parseUdevInterfaces(v: unknown): DeviceFacts["interfaces"] {
  if (typeof v !== "string") return [];
  const out: DeviceFacts["interfaces"] = [];
  for (const part of v.split(":")) {
    if (/^[0-9a-fA-F]{6}$/.test(part)) {
      const p = part.toLowerCase();
      out.push({ class: p.slice(0, 2), subclass: p.slice(2, 4), protocol: p.slice(4, 6) });
    }
  }
  return out;
}

export function deviceFacts(event: DeviceEvent): DeviceFacts {
  const usb: Obj = isObj(event.usb) ? (event.usb as Obj) : {};
  const props: Obj = isObj(event.properties) ? event.properties : {};
  const facts: DeviceFacts = { interfaces: [], drivers: [] };
  facts.vid = hex(usb.vid, 4) ?? hex(props.ID_VENDOR_ID, 4);
  facts.pid = hex(usb.pid, 4) ?? hex(props.ID_MODEL_ID, 4);
  facts.manufacturer = str(usb.manufacturer) ?? udevString(props, "ID_VENDOR", "ID_VENDOR_ID");
  facts.product = str(usb.product) ?? udevString(props, "ID_MODEL", "ID_MODEL_ID");
  facts.serial = str(usb.serial) ?? str(props.ID_SERIAL_SHORT);
  facts.deviceClass = hex(usb.class, 2);
  if (Array.isArray(usb.interfaces)) {
    for (const it of usb.interfaces) {
      if (!isObj(it)) continue;
      const cls = hex(it.class, 2);
      if (cls === undefined) continue;
      facts.interfaces.push({
        class: cls,
        subclass: hex(it.subclass, 2) ?? "00",
        protocol: hex(it.protocol, 2) ?? "00",
        driver: str(it.driver),
      });
    }
  }
  if (facts.interfaces.length === 0) facts.interfaces = parseUdevInterfaces(props.ID_USB_INTERFACES);
  const drivers = new Set<string>();
  for (const it of facts.interfaces) if (it.driver) drivers.add(it.driver);
  // A tty's udev properties name the driver of its own interface.
  const driver = str(props.ID_USB_DRIVER);
  if (driver !== undefined) drivers.add(driver);
  facts.drivers = [...drivers];
  return facts;
}

/** Is this payload a device event at all (as opposed to data to write, say)? */
export function isDeviceEvent(v: unknown): v is DeviceEvent {
  if (!isObj(v)) return false;
  const hasAction = typeof v.action === "string" && ["present", "add", "remove", "change"].includes(v.action);
  return hasAction && typeof v.id === "string";
}

function withDev(p: string): string {
  return p.startsWith("/") ? p : `/dev/${p}`;
}

/** The serial port of a device: its stable /dev/serial/by-id link when it has one. */
export function serialPathOf(event: DeviceEvent): string | undefined {
  const nodes = isObj(event.nodes) ? event.nodes : {};
  const byId = Array.isArray(nodes.serialById) ? nodes.serialById.filter((p) => typeof p === "string" && p !== "") : [];
  const tty = Array.isArray(nodes.tty) ? nodes.tty.filter((p) => typeof p === "string" && p !== "") : [];
  if (byId.length > 0) return withDev(byId[0]);
  if (tty.length > 0) return withDev(tty[0]);
  if (event.subsystem === "tty" && typeof event.path === "string" && event.path.startsWith("/dev/")) return event.path;
  return undefined;
}

/** Every path that names this device's serial ports. */
export function serialPathsOf(event: DeviceEvent): string[] {
  const nodes = isObj(event.nodes) ? event.nodes : {};
  const out: string[] = [];
  for (const list of [nodes.serialById, nodes.tty]) {
    if (Array.isArray(list)) for (const p of list) if (typeof p === "string" && p !== "") out.push(withDev(p));
  }
  if (event.subsystem === "tty" && typeof event.path === "string" && event.path.startsWith("/dev/")) out.push(event.path);
  return [...new Set(out)];
}

/** The node a capture or HID program opens, for the interface a profile names. */
export function devicePathFor(event: DeviceEvent, iface: string): string | null {
  const nodes = isObj(event.nodes) ? event.nodes : {};
  const first = (list: unknown): string | undefined =>
    Array.isArray(list) ? list.find((p): p is string => typeof p === "string" && p !== "") : undefined;
  switch (iface) {
    case "uvc": {
      const v = first(nodes.video);
      return v ? withDev(v) : null;
    }
    case "uac": {
      const audio = Array.isArray(nodes.audio) ? nodes.audio.filter(isObj) : [];
      const pick = audio.find((a) => a.capture === true || (typeof a.capture === "string" && a.capture !== "")) ?? audio[0];
      if (!pick) return null;
      // The card id survives replug; the card number may not.
      if (typeof pick.cardId === "string" && pick.cardId !== "" && pick.device !== undefined && pick.device !== null) {
        return `plughw:CARD=${pick.cardId},DEV=${pick.device}`;
      }
      if (pick.card !== undefined && pick.card !== null && pick.device !== undefined && pick.device !== null) {
        return `plughw:${pick.card},${pick.device}`;
      }
      return typeof pick.path === "string" ? pick.path : null;
    }
    case "hid": {
      const h = first(nodes.hidraw);
      return h ? withDev(h) : null;
    }
    default:
      return serialPathOf(event) ?? (typeof event.path === "string" && event.path !== "" ? event.path : null);
  }
}
