// From sysfs entries to physical devices. A USB device owns everything below
// its directory down to the next USB device (a hub's children are devices of
// their own); a device elsewhere (a built-in UART, onboard audio, a platform
// camera) owns the class devices below its bus device. Ownership is decided
// from the devpath text alone, so that a remove event, whose sysfs directory
// is already gone, finds the same owner as the add did.
import path from "path";
import { AudioNode, DeviceEvent, emptyNodes, NODE_SUBSYSTEMS, NodeSubsystem, otherDeviceId, udevSafe, UsbInfo, UsbInterface, usbDeviceId } from "./model";
import { KernelKeys, SysfsReader, WarnFn } from "./sysfs";
import { UdevDatabase, UdevRecord } from "./udevdb";

/**
 * What an event says about a device, before its action, time and
 * diagnostics; `blocked` (authorized=0) only informs the diagnostics.
 */
export type DeviceState = Omit<DeviceEvent, "action" | "timestamp" | "diagnostics"> & { blocked?: boolean };

export interface Owner {
  kind: "usb" | "other";
  /** devpath of the physical device: "/devices/.../1-1.2" */
  devpath: string;
}

export interface ClassNode {
  subsystem: NodeSubsystem;
  name: string;
  devpath: string;
}

const USB_DEVICE = /^\d+-\d+(\.\d+)*$/;
const HID_DEVICE = /^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$/;
const INTERFACE = /:(\d+)\.(\d+)$/;
const PCM = /^pcmC(\d+)D(\d+)([cp])$/;
const VIDEO = /^video(\d+)$/;
const collator = new Intl.Collator("en", { numeric: true });

/** The USB device a devpath belongs to: its deepest "<bus>-<port>[.<port>...]" component. */
export function usbDeviceOf(devpath: string): string | undefined {
  const parts = devpath.split("/");
  let end = -1;
  for (let i = 0; i < parts.length; i++) {
    if (USB_DEVICE.test(parts[i])) end = i;
    // A Bluetooth adapter's connections are other devices, not its functions.
    else if (parts[i] === "bluetooth" && end >= 0) return undefined;
  }
  return end < 0 ? undefined : parts.slice(0, end + 1).join("/");
}

/**
 * The device a non-USB class device hangs off: the directory that holds its
 * "<subsystem>/" container, climbing past HID devices and serial-base ports
 * (".../fe201000.serial/fe201000.serial:0/fe201000.serial:0.0/tty/ttyAMA0"),
 * which are software layers over the same hardware.
 */
export function parentDeviceOf(devpath: string, subsystem: string): string | undefined {
  const at = devpath.lastIndexOf(`/${subsystem}/`);
  let parent = at > 0 ? devpath.slice(0, at) : path.posix.dirname(devpath);
  for (;;) {
    const slash = parent.lastIndexOf("/");
    const name = parent.slice(slash + 1);
    const up = parent.slice(0, slash);
    const upName = up.slice(up.lastIndexOf("/") + 1);
    if (HID_DEVICE.test(name) || (upName && (name.startsWith(upName + ":") || name.startsWith(upName + ".")))) {
      parent = up;
      continue;
    }
    break;
  }
  return parent.startsWith("/devices/") && parent !== "/devices" ? parent : undefined;
}

/** The physical device an event or a class entry belongs to, if devplane reports it. */
export function ownerOf(devpath: string, subsystem?: string): Owner | undefined {
  if (!devpath.startsWith("/devices/") || devpath.startsWith("/devices/virtual/")) return undefined;
  const usb = usbDeviceOf(devpath);
  if (usb) return { kind: "usb", devpath: usb };
  if (subsystem && (NODE_SUBSYSTEMS as readonly string[]).includes(subsystem)) {
    const parent = parentDeviceOf(devpath, subsystem);
    if (parent) return { kind: "other", devpath: parent };
  }
  return undefined;
}

/**
 * USB devices listed in /sys/bus/usb/devices (root hubs and interfaces left
 * out). `known` maps bus ids ("1-1.2") to devpaths already found through the
 * class links; a bus id names one device, so their links need no readlink.
 */
export function scanUsbDevices(sys: SysfsReader, known?: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const name of sys.list("bus/usb/devices") ?? []) {
    if (!USB_DEVICE.test(name)) continue;
    const devpath = known?.get(name) ?? sys.resolve("bus/usb/devices", name);
    if (devpath) out.push(devpath);
  }
  return out;
}

function relevant(subsystem: NodeSubsystem, name: string): boolean {
  if (subsystem === "sound") return PCM.test(name);
  if (subsystem === "video4linux") return VIDEO.test(name);
  return true;
}

/** The class devices of interest, grouped by owner devpath. */
export function scanClassNodes(sys: SysfsReader): Map<string, { owner: Owner; nodes: ClassNode[] }> {
  const owners = new Map<string, { owner: Owner; nodes: ClassNode[] }>();
  for (const subsystem of NODE_SUBSYSTEMS) {
    const dir = `class/${subsystem}`;
    for (const name of sys.list(dir) ?? []) {
      if (!relevant(subsystem, name)) continue;
      const devpath = sys.resolve(dir, name);
      if (!devpath) continue;
      const owner = ownerOf(devpath, subsystem);
      if (!owner) continue;
      let entry = owners.get(owner.devpath);
      if (!entry) owners.set(owner.devpath, (entry = { owner, nodes: [] }));
      entry.nodes.push({ subsystem, name, devpath });
    }
  }
  return owners;
}

const CONTAINERS = new Set<string>(NODE_SUBSYSTEMS);

/**
 * The class devices below one owner, found by walking its directory rather
 * than every class link: a hotplug re-read of one device then costs a few
 * directory reads, however many devices the machine has. The walk stops at
 * USB devices below (a hub's children) and at a Bluetooth adapter's
 * connections; ownerOf() has the last word, as in scanClassNodes().
 */
export function classNodesOf(sys: SysfsReader, owner: Owner): ClassNode[] {
  const out: ClassNode[] = [];
  const collect = (container: string, subsystem: NodeSubsystem) => {
    for (const name of sys.subdirs(container) ?? []) {
      const p = `${container}/${name}`;
      if (subsystem === "sound" && /^card\d+$/.test(name)) {
        // PCMs sit in the card, or one level down in an HDA codec (card0/hdaudioC0D0/pcmC0D0c).
        for (const n of sys.subdirs(p) ?? []) {
          if (relevant("sound", n)) out.push({ subsystem, name: n, devpath: `${p}/${n}` });
          else if (/^hdaudioC\d+D\d+$/.test(n)) {
            for (const m of sys.subdirs(`${p}/${n}`) ?? []) if (relevant("sound", m)) out.push({ subsystem, name: m, devpath: `${p}/${n}/${m}` });
          }
        }
      } else if (relevant(subsystem, name)) {
        out.push({ subsystem, name, devpath: p });
      }
    }
  };
  const visit = (dir: string, depth: number) => {
    for (const name of sys.subdirs(dir) ?? []) {
      if (name === "power" || name === "bluetooth" || name.startsWith("ep_") || USB_DEVICE.test(name)) continue;
      const p = `${dir}/${name}`;
      if (CONTAINERS.has(name)) collect(p, name as NodeSubsystem);
      else if (depth < 5) visit(p, depth + 1);
    }
  };
  visit(owner.devpath, 0);
  return out.filter((n) => ownerOf(n.devpath, n.subsystem)?.devpath === owner.devpath);
}

export interface BuildContext {
  sys: SysfsReader;
  udev: UdevDatabase;
  warn: WarnFn;
  /** Bound USB interfaces by bus id ("1-1.2:1.0" -> "cdc_acm"), when a whole-system scan has listed them. */
  usbDrivers?: ReadonlyMap<string, string>;
}

/**
 * Every bound USB interface's driver, from the drivers' own directories
 * (/sys/bus/usb/drivers/<driver>/<bus id>): a dozen directory reads in place
 * of one readlink per interface, which is what an enumeration of hundreds of
 * devices pays for. Undefined when the tree has no such links (a copied
 * tree, a recording), so each interface's own link is read instead.
 */
export function scanUsbDrivers(sys: SysfsReader): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const driver of sys.list("bus/usb/drivers") ?? []) {
    for (const name of sys.list(`bus/usb/drivers/${driver}`) ?? []) {
      if (INTERFACE.test(name)) out.set(name, driver);
    }
  }
  return out.size ? out : undefined;
}

/** An interface's driver: the scan's map, else (unbound there, or no map) its own link. */
function interfaceDriver(ctx: BuildContext, devpath: string): string | undefined {
  const known = ctx.usbDrivers?.get(devpath.slice(devpath.lastIndexOf("/") + 1));
  return known ?? ctx.sys.linkName(devpath, "driver");
}

const HEX_DIGITS: Record<number, RegExp> = { 2: /^[0-9a-f]{2}$/, 4: /^[0-9a-f]{4}$/ };

function hex(value: string | undefined, digits: 2 | 4): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  return HEX_DIGITS[digits].test(v) ? v : undefined;
}

function decToHex(value: string | undefined, digits: number): string | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return n < 16 ** digits ? n.toString(16).padStart(digits, "0") : undefined;
}

function text(value: string | undefined): string | null {
  const v = value?.trim();
  return v ? v : null;
}

function int(value: string | undefined): number | null {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return null;
  return Number(value);
}

function udevRecordFor(ctx: BuildContext, ue: KernelKeys | undefined, subsystem: string, sysname: string): UdevRecord | undefined {
  const major = ue?.get("MAJOR");
  const minor = ue?.get("MINOR");
  if (major && minor) return ctx.udev.read(`c${major}:${minor}`);
  return ctx.udev.read(`+${subsystem}:${sysname}`);
}

function devnodeOf(ue: KernelKeys | undefined, subsystem: NodeSubsystem, name: string): string {
  const devname = ue?.get("DEVNAME");
  if (devname) return devname.startsWith("/") ? devname : `/dev/${devname}`;
  return subsystem === "sound" ? `/dev/snd/${name}` : `/dev/${name}`;
}

function malformed(ctx: BuildContext, devpath: string, attr: string, value: string, expect: string): void {
  const file = ctx.sys.abs(devpath, attr);
  ctx.warn({ code: "sysfs-malformed", message: `${file} holds ${JSON.stringify(value)}, not ${expect}: the file looks truncated`, path: file });
}

interface NodeInfo {
  tty: Array<{ node: string; links: string[] }>;
  video: Array<{ node: string; index: number | undefined; minor: number; parent: string; devpath: string }>;
  audio: Array<AudioNode & { devpath: string }>;
  hidraw: string[];
  /** What was read for each device node, by node path. */
  read: Map<string, NodeRead>;
}

interface NodeRead {
  devpath: string;
  subsystem: NodeSubsystem;
  /** The node's uevent, read on first use. */
  ue(): KernelKeys | undefined;
  /** The node's udev record, read on first use: most nodes never need theirs. */
  record(): UdevRecord | undefined;
}

function nodeRead(ctx: BuildContext, n: ClassNode): NodeRead {
  let ue: KernelKeys | undefined | null = null;
  let rec: UdevRecord | undefined | null = null;
  const read: NodeRead = {
    devpath: n.devpath,
    subsystem: n.subsystem,
    ue() {
      if (ue === null) ue = ctx.sys.uevent(n.devpath);
      return ue;
    },
    record() {
      if (rec === null) rec = udevRecordFor(ctx, read.ue(), n.subsystem, n.name);
      return rec;
    },
  };
  return read;
}

/**
 * Whether a node's path needs its uevent: the kernel names video, hidraw and
 * ALSA nodes after their sysfs entry (video0, hidraw3, snd/pcmC1D0c), and
 * nothing else of theirs is needed unless the node stands for the whole
 * device, so cameras, microphones and HID gadgets cost no read per node.
 * A tty's uevent holds the device number its udev record is filed under.
 */
function pathNeedsUevent(subsystem: NodeSubsystem): boolean {
  return subsystem === "tty";
}

function readNodes(ctx: BuildContext, nodes: ClassNode[]): NodeInfo {
  const info: NodeInfo = { tty: [], video: [], audio: [], hidraw: [], read: new Map() };
  const cardIds = new Map<string, string | null>();
  const sorted = nodes.length > 1 ? [...nodes].sort((a, b) => collator.compare(a.name, b.name)) : nodes;
  for (const n of sorted) {
    if (n.subsystem === "tty" && /^ttyS\d+$/.test(n.name) && ctx.sys.attr(n.devpath, "type") === "0") {
      // The 8250 driver registers ports that do not exist; type 0 is "no UART here".
      continue;
    }
    const read = nodeRead(ctx, n);
    let ue: KernelKeys | undefined;
    if (pathNeedsUevent(n.subsystem)) {
      ue = read.ue();
      if (ue === undefined && !ctx.sys.exists(n.devpath)) continue;
    }
    const node = devnodeOf(ue, n.subsystem, n.name);
    info.read.set(node, read);
    switch (n.subsystem) {
      case "tty":
        info.tty.push({ node, links: read.record()?.links ?? [] });
        break;
      case "video4linux": {
        let index = int(ctx.sys.attr(n.devpath, "index")) ?? undefined;
        let minor: number | null = null;
        if (index === undefined) {
          // udev names links after the index attribute: ...-video-index<N>.
          for (const l of read.record()?.links ?? []) {
            const m = /-video-index(\d+)$/.exec(l);
            if (m) index = Number(m[1]);
          }
          // The minors decide which node captures when nothing else says.
          minor = int(read.ue()?.get("MINOR"));
        }
        minor ??= Number(VIDEO.exec(n.name)?.[1] ?? 0);
        info.video.push({ node, index, minor, parent: path.posix.dirname(path.posix.dirname(n.devpath)), devpath: n.devpath });
        break;
      }
      case "sound": {
        const m = PCM.exec(n.name);
        if (!m) break;
        const cardPath = /^(.*\/sound\/card\d+)\//.exec(n.devpath)?.[1] ?? path.posix.dirname(n.devpath);
        if (!cardIds.has(cardPath)) cardIds.set(cardPath, text(ctx.sys.attr(cardPath, "id")));
        info.audio.push({ card: Number(m[1]), device: Number(m[2]), capture: m[3] === "c", cardId: cardIds.get(cardPath) ?? null, path: node, devpath: n.devpath });
        break;
      }
      case "hidraw":
        info.hidraw.push(node);
        break;
    }
  }
  return info;
}

function finishNodes(info: NodeInfo): DeviceEvent["nodes"] {
  const nodes = emptyNodes();
  for (const t of info.tty) {
    nodes.tty.push(t.node);
    for (const l of t.links) if (l.startsWith("serial/by-id/")) nodes.serialById.push(`/dev/${l}`);
  }
  nodes.serialById.sort();
  // Without an index (neither the attribute nor udev's links), the lowest
  // minor of each parent is the capture node, as UVC registers it first.
  const lowest = new Map<string, number>();
  for (const v of info.video) if (v.index === undefined) lowest.set(v.parent, Math.min(lowest.get(v.parent) ?? Infinity, v.minor));
  for (const v of [...info.video].sort((a, b) => a.minor - b.minor)) {
    const index = v.index ?? (lowest.get(v.parent) === v.minor ? 0 : 1);
    (index === 0 ? nodes.video : nodes.videoMetadata).push(v.node);
  }
  nodes.audio = info.audio
    .sort((a, b) => a.card - b.card || a.device - b.device || Number(b.capture) - Number(a.capture))
    .map(({ card, device, capture, cardId, path: p }) => ({ card, device, capture, cardId, path: p }));
  nodes.hidraw = info.hidraw;
  return nodes;
}

function primarySubsystem(nodes: DeviceEvent["nodes"], fallback: string): string {
  if (nodes.tty.length) return "tty";
  if (nodes.video.length || nodes.videoMetadata.length) return "video4linux";
  if (nodes.audio.length) return "sound";
  if (nodes.hidraw.length) return "hidraw";
  return fallback;
}

function primaryPath(nodes: DeviceEvent["nodes"]): string | undefined {
  return nodes.tty[0] ?? nodes.video[0] ?? nodes.videoMetadata[0] ?? nodes.audio.find((a) => a.capture)?.path ?? nodes.audio[0]?.path ?? nodes.hidraw[0];
}

function sortedProps(props: Map<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...props.keys()].sort()) out[k] = props.get(k) as string;
  return out;
}

// A Map while the properties are gathered: every device has its own set of
// keys, and adding them one by one to an object costs far more than the
// reads they come from.
function kernelProps(ue: KernelKeys | undefined, devpath: string, subsystem: string, rec: UdevRecord | undefined): Map<string, string> {
  const props = new Map<string, string>(ue);
  const devname = props.get("DEVNAME");
  if (devname && !devname.startsWith("/")) props.set("DEVNAME", `/dev/${devname}`);
  props.set("DEVPATH", devpath);
  props.set("SUBSYSTEM", subsystem);
  if (rec) {
    for (const k in rec.properties) props.set(k, rec.properties[k]);
    if (rec.links.length) props.set("DEVLINKS", rec.links.map((l) => `/dev/${l}`).join(" "));
  }
  return props;
}

function setDefault(props: Map<string, string>, key: string, value: string): void {
  if (!props.has(key)) props.set(key, value);
}

export interface DescriptorInterface {
  /** bConfigurationValue of the configuration it belongs to (0 before any). */
  config: number;
  number: number;
  alt: number;
  class: string;
  subclass: string;
  protocol: string;
}

/**
 * The interface descriptors in a `descriptors` file (the device descriptor,
 * then the configurations' descriptors), every alternate setting included,
 * as udev's usb_id and USBGuard read them.
 */
export function parseUsbDescriptors(buf: Buffer): DescriptorInterface[] {
  const out: DescriptorInterface[] = [];
  const h = (n: number) => n.toString(16).padStart(2, "0");
  let i = 0;
  let config = 0;
  while (i + 2 <= buf.length) {
    const len = buf[i];
    if (len < 2 || i + len > buf.length) break;
    if (buf[i + 1] === 2 && len >= 9) config = buf[i + 5];
    else if (buf[i + 1] === 4 && len >= 9) {
      out.push({ config, number: buf[i + 2], alt: buf[i + 3], class: h(buf[i + 5]), subclass: h(buf[i + 6]), protocol: h(buf[i + 7]) });
    }
    i += len;
  }
  return out;
}

function readInterface(ctx: BuildContext, devpath: string, only: DescriptorInterface | undefined): UsbInterface {
  if (only) {
    // The interface has a single setting in the descriptors, so the current
    // one is that: its driver link (a readlink, no file to open) is all that
    // is left to read.
    return { class: only.class, subclass: only.subclass, protocol: only.protocol, driver: interfaceDriver(ctx, devpath) ?? null };
  }
  // One read: the uevent holds INTERFACE=<class>/<subclass>/<protocol> (decimal) and DRIVER.
  const ue = ctx.sys.uevent(devpath);
  const parts = ue?.get("INTERFACE")?.split("/");
  let cls = decToHex(parts?.[0], 2);
  let sub = decToHex(parts?.[1], 2);
  let proto = decToHex(parts?.[2], 2);
  let driver: string | undefined = ue?.get("DRIVER");
  if (cls === undefined || sub === undefined || proto === undefined) {
    cls = hex(ctx.sys.attr(devpath, "bInterfaceClass"), 2) ?? cls;
    sub = hex(ctx.sys.attr(devpath, "bInterfaceSubClass"), 2) ?? sub;
    proto = hex(ctx.sys.attr(devpath, "bInterfaceProtocol"), 2) ?? proto;
    driver ??= interfaceDriver(ctx, devpath);
  }
  return { class: cls ?? "ff", subclass: sub ?? "00", protocol: proto ?? "00", driver: driver ?? null };
}

/** A USB device as an event describes it; undefined when it is gone or cannot be identified. */
export function buildUsbDevice(ctx: BuildContext, devpath: string, classNodes: ClassNode[]): DeviceState | undefined {
  const { sys } = ctx;
  const sysname = devpath.slice(devpath.lastIndexOf("/") + 1);
  const names = sys.names(devpath);
  if (!names) return undefined;
  const has = (name: string) => names.has(name);
  const attr = (name: string) => (has(name) ? sys.attr(devpath, name) : undefined);
  const ue = has("uevent") ? sys.uevent(devpath) : undefined;
  const devtype = ue?.get("DEVTYPE");
  if (devtype && devtype !== "usb_device") return undefined;
  const rec = udevRecordFor(ctx, ue, "usb", sysname);

  // All three parts, or a line cut short could pass for a short id.
  const productKey = ue?.get("PRODUCT");
  const product = productKey && /^[0-9a-fA-F]{1,4}\/[0-9a-fA-F]{1,4}\/[0-9a-fA-F]{1,4}$/.test(productKey) ? productKey.split("/") : undefined;
  const padded = (v: string | undefined) => (v && /^[0-9a-fA-F]{1,4}$/.test(v) ? v.toLowerCase().padStart(4, "0") : undefined);
  // PRODUCT=<idVendor>/<idProduct>/<bcdDevice> in hex carries the same
  // values as the attributes, so they are read only when it is missing.
  const idAttr = (name: string, fromProduct: string | undefined, fromUdev: string | undefined): string | undefined => {
    const v = padded(fromProduct);
    if (v) return v;
    const raw = attr(name);
    const a = hex(raw, 4);
    if (raw !== undefined && a === undefined) malformed(ctx, devpath, name, raw, "a 4-digit hex id");
    return a ?? hex(fromUdev, 4);
  };
  const vid = idAttr("idVendor", product?.[0], rec?.properties.ID_VENDOR_ID);
  const pid = idAttr("idProduct", product?.[1], rec?.properties.ID_MODEL_ID);
  if (!vid || !pid) {
    ctx.warn({
      code: "sysfs-malformed",
      message: `${sys.abs(devpath)} has no usable idVendor/idProduct (nor PRODUCT in its uevent): the device is left out`,
      path: sys.abs(devpath),
    });
    return undefined;
  }

  const manufacturer = text(attr("manufacturer"));
  const productName = text(attr("product"));
  const serial = text(attr("serial"));
  const speedRaw = attr("speed");
  const speed = speedRaw !== undefined && /^\d+(\.\d+)?$/.test(speedRaw.trim()) ? Number(speedRaw) : null;
  // TYPE=<class>/<subclass>/<protocol> in the uevent spares reading bDeviceClass.
  const deviceClass = decToHex(ue?.get("TYPE")?.split("/")[0], 2) ?? hex(attr("bDeviceClass"), 2) ?? null;

  let descriptors: DescriptorInterface[] | undefined;
  const readDescriptors = (): DescriptorInterface[] => {
    if (descriptors === undefined) {
      const raw = has("descriptors") ? sys.attrBytes(devpath, "descriptors") : undefined;
      descriptors = raw ? parseUsbDescriptors(raw) : [];
    }
    return descriptors;
  };
  const interfaceDirs: Array<{ name: string; config: number; number: number }> = [];
  // "<sysname>:<config>.<interface>" entries are always the interface directories.
  for (const n of names) {
    if (!n.startsWith(sysname + ":")) continue;
    const m = INTERFACE.exec(n);
    if (m) interfaceDirs.push({ name: n, config: Number(m[1]), number: Number(m[2]) });
  }
  interfaceDirs.sort((a, b) => a.config - b.config || a.number - b.number);
  // Settings per interface of each configuration: "<config>.<number>".
  const settings = new Map<string, DescriptorInterface[]>();
  if (interfaceDirs.length) {
    for (const d of readDescriptors()) {
      const key = `${d.config}.${d.number}`;
      const list = settings.get(key);
      if (list) list.push(d);
      else settings.set(key, [d]);
    }
  }
  const interfaces = interfaceDirs.map((d) => {
    const list = settings.get(`${d.config}.${d.number}`);
    return readInterface(ctx, `${devpath}/${d.name}`, list?.length === 1 ? list[0] : undefined);
  });

  // An unconfigured device (not authorized, or no power budget) has no
  // interface directories; its descriptors still say what it would offer.
  let blocked = false;
  if (interfaces.length === 0) {
    blocked = attr("authorized") === "0";
    const seen = new Set<number>();
    for (const d of readDescriptors()) {
      if (d.alt !== 0 || seen.has(d.number)) continue;
      seen.add(d.number);
      interfaces.push({ class: d.class, subclass: d.subclass, protocol: d.protocol, driver: null });
    }
  }

  const usb: UsbInfo = {
    vid,
    pid,
    manufacturer,
    product: productName,
    serial,
    port: sysname,
    busnum: int(ue?.get("BUSNUM")) ?? int(attr("busnum")),
    devnum: int(ue?.get("DEVNUM")) ?? int(attr("devnum")),
    speed,
    class: deviceClass,
    interfaces,
    interfaceTypes: (readDescriptors().length ? readDescriptors() : interfaces).map((i) => `${i.class}:${i.subclass}:${i.protocol}`),
  };

  const nodes = finishNodes(readNodes(ctx, classNodes));
  const props = kernelProps(ue, devpath, "usb", rec);
  // What udev's usb_id builtin would have added, for systems without udev.
  const vendorName = manufacturer ? udevSafe(manufacturer) : vid;
  const modelName = productName ? udevSafe(productName) : pid;
  const serialShort = serial ? udevSafe(serial) : "";
  setDefault(props, "ID_BUS", "usb");
  setDefault(props, "ID_VENDOR_ID", vid);
  setDefault(props, "ID_MODEL_ID", pid);
  setDefault(props, "ID_VENDOR", vendorName);
  setDefault(props, "ID_MODEL", modelName);
  setDefault(props, "ID_SERIAL", serialShort ? `${vendorName}_${modelName}_${serialShort}` : `${vendorName}_${modelName}`);
  if (serialShort) setDefault(props, "ID_SERIAL_SHORT", serialShort);
  if (!props.has("ID_USB_INTERFACES")) {
    // udev lists every alternate setting; the interface directories show only the current one.
    const all = readDescriptors().map((d) => d.class + d.subclass + d.protocol);
    const types = all.length ? all : interfaces.map((i) => i.class + i.subclass + i.protocol);
    if (types.length) props.set("ID_USB_INTERFACES", `:${[...new Set(types)].join(":")}:`);
  }

  return {
    id: usbDeviceId(vid, pid, serial, sysname),
    subsystem: primarySubsystem(nodes, "usb"),
    path: primaryPath(nodes) ?? props.get("DEVNAME") ?? null,
    syspath: `/sys${devpath}`,
    properties: sortedProps(props),
    usb,
    nodes,
    ...(blocked ? { blocked } : {}),
  };
}

/** A device that is not on USB, described by its class devices; undefined when none is left. */
export function buildOtherDevice(ctx: BuildContext, devpath: string, classNodes: ClassNode[]): DeviceState | undefined {
  const info = readNodes(ctx, classNodes);
  const nodes = finishNodes(info);
  const primary = primaryPath(nodes);
  const main = primary === undefined ? undefined : info.read.get(primary);
  if (!primary || !main) return undefined;
  // Without a USB device to describe, the main node's properties stand for the device.
  const props = kernelProps(main.ue(), main.devpath, main.subsystem, main.record());
  const bus = ctx.sys.linkName(devpath, "subsystem") ?? null;
  const driver = ctx.sys.linkName(devpath, "driver");
  if (driver) setDefault(props, "DRIVER", driver);
  return {
    id: otherDeviceId(bus, devpath),
    subsystem: primarySubsystem(nodes, main.subsystem),
    path: primary,
    syspath: `/sys${devpath}`,
    properties: sortedProps(props),
    usb: null,
    nodes,
  };
}

/** Builds the device an owner stands for, reading its class devices afresh. */
export function buildOwner(ctx: BuildContext, owner: Owner, classNodes?: ClassNode[]): DeviceState | undefined {
  const nodes = classNodes ?? classNodesOf(ctx.sys, owner);
  return owner.kind === "usb" ? buildUsbDevice(ctx, owner.devpath, nodes) : buildOtherDevice(ctx, owner.devpath, nodes);
}
