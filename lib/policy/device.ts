// From a device-detect event to the device as rules see it, and back from a
// device to a rule that names it (what `usbguard generate-policy` writes).
import { formatRule } from "./format";
import { escapeGlob } from "./glob";
import type { Rule, ValueSet } from "./rule";
import type { PolicyDevice, Target } from "./types";

/** What device-profile puts in msg.profile, as far as rules use it. */
export interface ProfileInfo {
  name?: string;
  interface?: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + "..." : s;
  } catch {
    return String(v);
  }
}

function optString(o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new TypeError(`${where}.${key} must be a string, got ${show(v)}`);
  return v;
}

function hexField(o: Obj, key: string, digits: number, where: string): string {
  const v = o[key];
  if (typeof v === "string" && new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(v)) return v.toLowerCase();
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 16 ** digits) return v.toString(16).padStart(digits, "0");
  const example = digits === 4 ? '"2341"' : '"0a"';
  throw new TypeError(`${where}.${key} must be a ${digits}-digit hex string like ${example}, got ${show(v)}`);
}

/** Every device path under nodes: strings, and string fields of entries that start with "/". */
function devnodes(nodes: unknown): string[] | undefined {
  if (nodes === undefined || nodes === null) return undefined;
  if (!isObj(nodes)) throw new TypeError(`nodes must be an object of device-node lists, got ${show(nodes)}`);
  const out: string[] = [];
  for (const [kind, list] of Object.entries(nodes)) {
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw new TypeError(`nodes.${kind} must be a list, got ${show(list)}`);
    for (const entry of list) {
      if (typeof entry === "string") out.push(entry);
      else if (isObj(entry)) {
        // audio entries are { card, device, capture }: their paths, where given
        for (const key of ["path", "device", "capture", "control", "card"]) {
          const v = entry[key];
          if (typeof v === "string" && v.startsWith("/")) out.push(v);
        }
      } else {
        throw new TypeError(`nodes.${kind} entries must be paths or objects, got ${show(entry)}`);
      }
    }
  }
  return [...new Set(out)];
}

/**
 * The device in a device-detect event (msg.payload), with what
 * device-profile found (msg.profile) if given. Throws TypeError saying what
 * is wrong when the payload is not such an event.
 */
export function deviceFromEvent(payload: unknown, profile?: ProfileInfo): PolicyDevice {
  if (!isObj(payload)) {
    throw new TypeError(`a device event must be an object (msg.payload from device-detect), got ${show(payload)}`);
  }
  const key = payload.id;
  if (typeof key !== "string" || key === "") {
    throw new TypeError(`the device event has no id (a non-empty string such as "usb-2341:0043-7563..."), got ${show(key)}`);
  }
  const device: PolicyDevice = { key, withInterface: [] };
  const subsystem = optString(payload, "subsystem", "the device event");
  if (subsystem !== undefined) device.subsystem = subsystem;
  const props = payload.properties;
  if (props !== undefined && props !== null && !isObj(props)) {
    throw new TypeError(`properties must be an object, got ${show(props)}`);
  }
  const properties: Obj = isObj(props) ? props : {};

  const usb = payload.usb;
  if (usb !== undefined && usb !== null) {
    if (!isObj(usb)) throw new TypeError(`usb must be an object, got ${show(usb)}`);
    device.id = hexField(usb, "vid", 4, "usb") + ":" + hexField(usb, "pid", 4, "usb");
    // USBGuard reads a missing string descriptor as "", so `serial ""` in a
    // generated rule means "no serial number"; the same holds here.
    device.serial = optString(usb, "serial", "usb") ?? "";
    device.name = optString(usb, "product", "usb") ?? "";
    const port = optString(usb, "port", "usb");
    if (port !== undefined && port !== "") device.viaPort = port;
    const ifaces = usb.interfaces;
    if (ifaces !== undefined && ifaces !== null) {
      if (!Array.isArray(ifaces)) throw new TypeError(`usb.interfaces must be a list, got ${show(ifaces)}`);
      device.withInterface = ifaces.map((it, i) => {
        const where = `usb.interfaces[${i}]`;
        if (!isObj(it)) throw new TypeError(`${where} must be an object { class, subclass, protocol }, got ${show(it)}`);
        return `${hexField(it, "class", 2, where)}:${hexField(it, "subclass", 2, where)}:${hexField(it, "protocol", 2, where)}`;
      });
    }
    // USBGuard lists every interface descriptor, alternate settings
    // included; sysfs shows only each interface's current setting. An event
    // that carries the full list (usb.interfaceTypes) is matched as USBGuard
    // would match it.
    const types = usb.interfaceTypes;
    if (types !== undefined && types !== null) {
      if (!Array.isArray(types)) throw new TypeError(`usb.interfaceTypes must be a list of "cc:ss:pp" strings, got ${show(types)}`);
      device.withInterface = types.map((t, i) => {
        if (typeof t !== "string" || !/^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}$/.test(t)) {
          throw new TypeError(`usb.interfaceTypes[${i}] must be "cc:ss:pp" in hex, got ${show(t)}`);
        }
        return t.toLowerCase();
      });
    }
    const hash = optString(usb, "hash", "usb") ?? optString(properties, "USBGUARD_HASH", "properties");
    if (hash !== undefined) device.hash = hash;
    const parentHash = optString(usb, "parentHash", "usb") ?? optString(properties, "USBGUARD_PARENT_HASH", "properties");
    if (parentHash !== undefined) device.parentHash = parentHash;
    const connectType = optString(usb, "connectType", "usb") ?? optString(properties, "USBGUARD_CONNECT_TYPE", "properties");
    if (connectType !== undefined) device.withConnectType = connectType;
  }
  const nodes = devnodes(payload.nodes);
  if (nodes !== undefined) device.devnodes = nodes;

  if (profile !== undefined && profile !== null) {
    if (!isObj(profile)) throw new TypeError(`the profile must be an object (msg.profile from device-profile), got ${show(profile)}`);
    const name = optString(profile, "name", "profile");
    if (name !== undefined) device.profile = name;
    const iface = optString(profile, "interface", "profile");
    if (iface !== undefined) device.profileInterface = iface;
  }
  return device;
}

function one<T>(v: T): ValueSet<T> {
  return { op: "equals", values: [v] };
}

/**
 * A rule naming the device, in the manner of `usbguard generate-policy`:
 * id, serial, name, hash and parent-hash (when known, unless withHash is
 * false), via-port (by default only for a device without a serial number,
 * as generate-policy does; withPort true/false forces it), with-interface,
 * with-connect-type (when known). A device without a USB id is named by its
 * subsystem and device nodes instead.
 */
export function ruleForDevice(device: PolicyDevice, target: Target, opts?: { withPort?: boolean; withHash?: boolean }): string {
  if (target !== "allow" && target !== "block" && target !== "reject") {
    throw new TypeError(`target must be allow, block or reject, got ${show(target)}`);
  }
  const rule: Rule = { target };
  if (device.id !== undefined) {
    const m = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$/.exec(device.id);
    if (!m) throw new TypeError(`device id must be "vvvv:pppp" in hex, got ${show(device.id)}`);
    rule.id = one({ vendor: m[1].toLowerCase(), product: m[2].toLowerCase() });
  }
  if (device.serial !== undefined) rule.serial = one(device.serial);
  if (device.name !== undefined) rule.name = one(device.name);
  if (opts?.withHash !== false) {
    if (device.hash !== undefined) rule.hash = one(device.hash);
    if (device.parentHash !== undefined) rule.parentHash = one(device.parentHash);
  }
  const port = opts?.withPort ?? (device.serial === undefined || device.serial === "");
  if (port && device.viaPort !== undefined) rule.viaPort = one(device.viaPort);
  const ifaces = device.withInterface ?? [];
  if (ifaces.length > 0) {
    rule.withInterface = {
      op: "equals",
      values: ifaces.map((s) => {
        const m = /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})$/.exec(s);
        if (!m) throw new TypeError(`interface must be "cc:ss:pp" in hex, got ${show(s)}`);
        return { cls: parseInt(m[1], 16), subclass: parseInt(m[2], 16), protocol: parseInt(m[3], 16) };
      }),
    };
  }
  if (device.withConnectType !== undefined) rule.withConnectType = one(device.withConnectType);
  if (device.id === undefined) {
    if (device.subsystem !== undefined) rule.subsystem = one(device.subsystem);
    if (device.devnodes && device.devnodes.length > 0) rule.devnode = { op: "equals", values: device.devnodes.map(escapeGlob) };
  }
  const text = formatRule(rule);
  if (text === target) throw new TypeError(`device ${show(device.key)} has nothing a rule could name it by (no id, subsystem or device node)`);
  return text;
}
