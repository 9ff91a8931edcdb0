// Fake sysfs and udev database trees in a temp dir, laid out the way the
// kernel and udevd lay out the real ones: device directories nested by
// topology, attribute files ending in "\n", `subsystem`/`driver`/`device`
// links, /sys/class/* and /sys/bus/usb/devices links, a `uevent` file per
// device, and udev records /run/udev/data/c<major>:<minor> with S:/E: lines.
// Device nodes are regular files under <tmp>/dev, owned by the right group.
import fs from "fs";
import os from "os";
import path from "path";
import { SystemProbe } from "../../lib/devices/diagnostics";

export interface FakeTty {
  name: string;
  major?: number;
  minor?: number;
  /** A usb-serial port (ttyUSB*): <interface>/<name>/tty/<name>, else cdc_acm's <interface>/tty/<name>. */
  usbSerial?: boolean;
  /** udev record: symlinks relative to /dev and properties; false for no record. */
  links?: string[];
  udev?: Record<string, string> | false;
}

export interface FakeVideo {
  name: string;
  /** The `index` attribute; omitted from sysfs when undefined. */
  index?: number;
  label?: string;
  minor?: number;
  links?: string[];
  udev?: Record<string, string> | false;
}

export interface FakeSound {
  card: number;
  id: string;
  pcm: Array<{ device: number; capture: boolean }>;
}

export interface FakeHidraw {
  name: string;
  minor?: number;
  /** The HID device between the interface and the hidraw node: "0003:1050:0120.000A". */
  hid: string;
}

export interface FakeInterface {
  class: string;
  subclass?: string;
  protocol?: string;
  /** Bound driver; null for none. */
  driver?: string | null;
  tty?: FakeTty[];
  video?: FakeVideo[];
  sound?: FakeSound;
  hidraw?: FakeHidraw[];
}

export interface FakeUsbDevice {
  /** sysfs port path: "1-1.2". Its parent (hub or root hub) must exist. */
  port: string;
  vid: string;
  pid: string;
  bcdDevice?: string;
  manufacturer?: string;
  product?: string;
  serial?: string;
  speed?: string;
  deviceClass?: string;
  devnum: number;
  interfaces: FakeInterface[];
  /** Extra properties of the device's udev record; false for no record. */
  udev?: Record<string, string> | false;
}

/**
 * Where trees go: tmpfs when there is one, since a tree is thousands of tiny
 * files and links, like sysfs itself, and a disk makes that slow.
 */
export function scratchDir(): string {
  if (process.env.DEVPLANE_TEST_TMP) return process.env.DEVPLANE_TEST_TMP;
  try {
    fs.accessSync("/dev/shm", fs.constants.W_OK);
    if (fs.statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    /* no tmpfs to use */
  }
  return os.tmpdir();
}

/** The `descriptors` attribute: device descriptor, one configuration, its interfaces (alternate settings 0). */
function descriptors(d: FakeUsbDevice): Buffer {
  const h = (v: string | undefined, fallback = 0) => (v === undefined ? fallback : parseInt(v, 16));
  const le16 = (v: number) => [v & 0xff, v >> 8];
  const device = [18, 1, 0x00, 0x02, h(d.deviceClass), 0, 0, 64, ...le16(h(d.vid)), ...le16(h(d.pid)), ...le16(h(d.bcdDevice, 0x100)), d.manufacturer ? 1 : 0, d.product ? 2 : 0, d.serial ? 3 : 0, 1];
  const interfaces = d.interfaces.flatMap((itf, n) => [9, 4, n, 0, 0, h(itf.class), h(itf.subclass), h(itf.protocol), 0]);
  const total = 9 + interfaces.length;
  const config = [9, 2, ...le16(total), d.interfaces.length, 1, 0, 0x80, 50];
  return Buffer.from([...device, ...config, ...interfaces]);
}

const GROUPS = "root:x:0:\ndialout:x:20:\naudio:x:29:\nvideo:x:44:\nplugdev:x:46:\nnogroup:x:65534:\n";
const GID: Record<string, number> = { tty: 20, video4linux: 44, sound: 29, hidraw: 0 };

export class FakeSysfs {
  readonly base: string;
  readonly sys: string;
  readonly udevData: string;
  readonly dev: string;
  readonly proc: string;
  readonly groupFile: string;
  private readonly controllers = new Map<number, string>();

  constructor(options: { udev?: boolean } = {}) {
    this.base = fs.mkdtempSync(path.join(scratchDir(), "dp-sysfs-"));
    this.sys = path.join(this.base, "sys");
    this.udevData = path.join(this.base, "run", "udev", "data");
    this.dev = path.join(this.base, "dev");
    this.proc = path.join(this.base, "proc");
    this.groupFile = path.join(this.base, "etc", "group");
    for (const d of [this.sys, this.dev, this.proc, path.dirname(this.groupFile)]) fs.mkdirSync(d, { recursive: true });
    for (const d of ["devices", "class", "bus/usb/devices", "bus/usb/drivers", "bus/pci", "bus/platform", "bus/amba", "bus/pnp"]) {
      fs.mkdirSync(path.join(this.sys, d), { recursive: true });
    }
    if (options.udev !== false) fs.mkdirSync(this.udevData, { recursive: true });
    fs.writeFileSync(this.groupFile, GROUPS);
  }

  /** Host checks against this tree's /dev, /proc and group file. */
  probe(): SystemProbe {
    return new SystemProbe({ devRoot: this.dev, procRoot: this.proc, groupFile: this.groupFile });
  }

  /** Roots for a DeviceDetector. */
  get roots(): { sysfsRoot: string; udevData: string; devRoot: string } {
    return { sysfsRoot: this.sys, udevData: this.udevData, devRoot: this.dev };
  }

  cleanup(): void {
    fs.rmSync(this.base, { recursive: true, force: true });
  }

  /** Absolute path in the fake /sys of a devpath. */
  abs(devpath: string): string {
    return path.join(this.sys, devpath);
  }

  // ---- primitives ----------------------------------------------------------

  mkdir(devpath: string): void {
    fs.mkdirSync(this.abs(devpath), { recursive: true });
  }

  attr(devpath: string, name: string, value: string): void {
    fs.mkdirSync(this.abs(devpath), { recursive: true });
    fs.writeFileSync(path.join(this.abs(devpath), name), value + "\n");
  }

  attrBytes(devpath: string, name: string, value: Buffer): void {
    fs.mkdirSync(this.abs(devpath), { recursive: true });
    fs.writeFileSync(path.join(this.abs(devpath), name), value);
  }

  uevent(devpath: string, props: Record<string, string | number>): void {
    const text = Object.entries(props)
      .map(([k, v]) => `${k}=${v}\n`)
      .join("");
    fs.mkdirSync(this.abs(devpath), { recursive: true });
    fs.writeFileSync(path.join(this.abs(devpath), "uevent"), text);
  }

  /** A relative symlink at `from` (relative to /sys) pointing at `to` (relative to /sys). */
  link(from: string, to: string): void {
    const f = path.join(this.sys, from);
    const t = path.join(this.sys, to);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    try {
      fs.unlinkSync(f);
    } catch {
      /* not there yet */
    }
    fs.symlinkSync(path.relative(path.dirname(f), t), f);
  }

  /** Writes /run/udev/data/<id>. */
  udevRecord(id: string, props: Record<string, string>, links: string[] = [], tags: string[] = []): void {
    if (!fs.existsSync(this.udevData)) return;
    const lines = [
      ...links.map((l) => `S:${l}`),
      ...(links.length ? ["L:0"] : []),
      "I:1700000000000000",
      ...Object.entries(props).map(([k, v]) => `E:${k}=${v}`),
      ...tags.map((t) => `G:${t}`),
      "V:1",
    ];
    fs.writeFileSync(path.join(this.udevData, id), lines.join("\n") + "\n");
  }

  /** A device node standing in for /dev/<rel>: a regular file with the node's group and mode. */
  devNode(rel: string, gid: number, mode = 0o660): void {
    const p = path.join(this.dev, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, "");
    fs.chmodSync(p, mode);
    try {
      fs.chownSync(p, 0, gid);
    } catch {
      /* not root: the group stays ours */
    }
  }

  /** A class device: <parent>/<container>/<name> with dev, uevent, subsystem and device links. */
  classDevice(parent: string, container: string, subsystem: string, name: string, major: number, minor: number, devname: string): string {
    const devpath = container ? `${parent}/${container}/${name}` : `${parent}/${name}`;
    this.attr(devpath, "dev", `${major}:${minor}`);
    this.uevent(devpath, { MAJOR: major, MINOR: minor, DEVNAME: devname });
    this.link(`${devpath.slice(1)}/subsystem`, `class/${subsystem}`);
    this.link(`${devpath.slice(1)}/device`, parent.slice(1));
    this.link(`class/${subsystem}/${name}`, devpath.slice(1));
    return devpath;
  }

  private busLink(devpath: string, bus: string): void {
    fs.mkdirSync(path.join(this.sys, "bus", bus), { recursive: true });
    this.link(`${devpath.slice(1)}/subsystem`, `bus/${bus}`);
  }

  private driverLink(devpath: string, bus: string, driver: string): void {
    fs.mkdirSync(path.join(this.sys, "bus", bus, "drivers", driver), { recursive: true });
    this.link(`${devpath.slice(1)}/driver`, `bus/${bus}/drivers/${driver}`);
    // The kernel links each bound device back from its driver's directory.
    this.link(`bus/${bus}/drivers/${driver}/${devpath.slice(devpath.lastIndexOf("/") + 1)}`, devpath.slice(1));
  }

  // ---- USB -----------------------------------------------------------------

  /** A host controller and its root hub usb<bus>. */
  controller(bus: number, pci = "pci0000:00/0000:00:14.0"): string {
    const devpath = `/devices/${pci}/usb${bus}`;
    this.mkdir(devpath);
    this.attr(devpath, "idVendor", "1d6b");
    this.attr(devpath, "idProduct", "0002");
    this.attr(devpath, "busnum", String(bus));
    this.attr(devpath, "devpath", "0");
    this.uevent(devpath, { MAJOR: 189, MINOR: (bus - 1) * 128, DEVNAME: `bus/usb/${String(bus).padStart(3, "0")}/001`, DEVTYPE: "usb_device", DRIVER: "usb" });
    this.busLink(devpath, "usb");
    this.link(`bus/usb/devices/usb${bus}`, devpath.slice(1));
    this.controllers.set(bus, devpath);
    return devpath;
  }

  /** Where a port's directory goes: below its hub, or below the root hub. */
  devpathOf(port: string): string {
    const m = /^(\d+)-([\d.]+)$/.exec(port);
    if (!m) throw new Error(`bad port ${port}`);
    const bus = Number(m[1]);
    const root = this.controllers.get(bus) ?? this.controller(bus);
    const chain = m[2].split(".");
    let p = root;
    for (let i = 1; i <= chain.length; i++) p += `/${bus}-${chain.slice(0, i).join(".")}`;
    return p;
  }

  usb(d: FakeUsbDevice): string {
    const devpath = this.devpathOf(d.port);
    const parent = path.posix.dirname(devpath);
    if (!fs.existsSync(this.abs(parent))) throw new Error(`${d.port}: plug its hub in first`);
    const bus = Number(d.port.split("-")[0]);
    const minor = (bus - 1) * 128 + d.devnum - 1;
    const busnum = String(bus).padStart(3, "0");
    const devnum = String(d.devnum).padStart(3, "0");
    const bcd = d.bcdDevice ?? "0100";
    const cls = d.deviceClass ?? "00";
    const product = `${parseInt(d.vid, 16).toString(16)}/${parseInt(d.pid, 16).toString(16)}/${parseInt(bcd, 16).toString(16)}`;
    const type = `${parseInt(cls, 16)}/0/0`;
    this.mkdir(devpath);
    const attrs: Record<string, string | undefined> = {
      idVendor: d.vid,
      idProduct: d.pid,
      bcdDevice: bcd,
      manufacturer: d.manufacturer,
      product: d.product,
      serial: d.serial,
      speed: d.speed ?? "12",
      busnum: String(bus),
      devnum: String(d.devnum),
      devpath: d.port.split("-")[1],
      bDeviceClass: cls,
      bNumInterfaces: ` ${d.interfaces.length}`,
      bConfigurationValue: "1",
      dev: `189:${minor}`,
    };
    this.attrBytes(devpath, "descriptors", descriptors(d));
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) this.attr(devpath, k, v);
    this.uevent(devpath, { MAJOR: 189, MINOR: minor, DEVNAME: `bus/usb/${busnum}/${devnum}`, DEVTYPE: "usb_device", DRIVER: "usb", PRODUCT: product, TYPE: type, BUSNUM: busnum, DEVNUM: devnum });
    this.busLink(devpath, "usb");
    this.driverLink(devpath, "usb", "usb");
    this.link(`bus/usb/devices/${d.port}`, devpath.slice(1));
    if (d.udev !== false) this.udevRecord(`c189:${minor}`, d.udev ?? {});
    this.devNode(`bus/usb/${busnum}/${devnum}`, 0, 0o664);

    d.interfaces.forEach((itf, n) => {
      const name = `${d.port}:1.${n}`;
      const ip = `${devpath}/${name}`;
      const sub = itf.subclass ?? "00";
      const proto = itf.protocol ?? "00";
      this.attr(ip, "bInterfaceNumber", n.toString(16).padStart(2, "0"));
      this.attr(ip, "bInterfaceClass", itf.class);
      this.attr(ip, "bInterfaceSubClass", sub);
      this.attr(ip, "bInterfaceProtocol", proto);
      this.attr(ip, "bAlternateSetting", " 0");
      const ue: Record<string, string> = { DEVTYPE: "usb_interface" };
      if (itf.driver) ue.DRIVER = itf.driver;
      Object.assign(ue, { PRODUCT: product, TYPE: type, INTERFACE: `${parseInt(itf.class, 16)}/${parseInt(sub, 16)}/${parseInt(proto, 16)}` });
      this.uevent(ip, ue);
      this.busLink(ip, "usb");
      if (itf.driver) this.driverLink(ip, "usb", itf.driver);
      this.link(`bus/usb/devices/${name}`, ip.slice(1));
      this.mkdir(`${ip}/power`);
      this.mkdir(`${ip}/ep_81`);

      for (const t of itf.tty ?? []) this.tty(ip, t);
      for (const v of itf.video ?? []) this.video(ip, v);
      if (itf.sound) this.sound(ip, itf.sound);
      for (const h of itf.hidraw ?? []) this.hidraw(ip, h);
    });
    return devpath;
  }

  tty(parent: string, t: FakeTty): string {
    const acm = !t.usbSerial && /^ttyACM/.test(t.name);
    const major = t.major ?? (acm ? 166 : t.usbSerial ? 188 : 4);
    const minor = t.minor ?? Number(/\d+$/.exec(t.name)?.[0] ?? 0);
    let holder = parent;
    if (t.usbSerial) {
      holder = `${parent}/${t.name}`;
      this.mkdir(holder);
      fs.mkdirSync(path.join(this.sys, "bus", "usb-serial"), { recursive: true });
      this.link(`${holder.slice(1)}/subsystem`, "bus/usb-serial");
    }
    const devpath = this.classDevice(holder, "tty", "tty", t.name, major, minor, t.name);
    if (t.udev !== false) this.udevRecord(`c${major}:${minor}`, t.udev ?? {}, t.links ?? []);
    this.devNode(t.name, GID.tty);
    return devpath;
  }

  video(parent: string, v: FakeVideo): string {
    const minor = v.minor ?? Number(/\d+$/.exec(v.name)?.[0] ?? 0);
    const devpath = this.classDevice(parent, "video4linux", "video4linux", v.name, 81, minor, v.name);
    if (v.index !== undefined) this.attr(devpath, "index", String(v.index));
    this.attr(devpath, "name", v.label ?? "Camera");
    if (v.udev !== false) this.udevRecord(`c81:${minor}`, v.udev ?? {}, v.links ?? []);
    this.devNode(v.name, GID.video4linux);
    return devpath;
  }

  sound(parent: string, s: FakeSound): string {
    const card = `${parent}/sound/card${s.card}`;
    this.mkdir(card);
    this.attr(card, "id", s.id);
    this.attr(card, "number", String(s.card));
    this.uevent(card, {});
    this.link(`${card.slice(1)}/subsystem`, "class/sound");
    this.link(`class/sound/card${s.card}`, card.slice(1));
    let minor = s.card * 32;
    this.classDevice(card, "", "sound", `controlC${s.card}`, 116, minor, `snd/controlC${s.card}`);
    this.devNode(`snd/controlC${s.card}`, GID.sound);
    for (const p of s.pcm) {
      const name = `pcmC${s.card}D${p.device}${p.capture ? "c" : "p"}`;
      this.classDevice(card, "", "sound", name, 116, ++minor, `snd/${name}`);
      this.udevRecord(`c116:${minor}`, {});
      this.devNode(`snd/${name}`, GID.sound);
    }
    return card;
  }

  hidraw(parent: string, h: FakeHidraw): string {
    const hid = `${parent}/${h.hid}`;
    this.mkdir(hid);
    this.busLink(hid, "hid");
    const minor = h.minor ?? Number(/\d+$/.exec(h.name)?.[0] ?? 0);
    const devpath = this.classDevice(hid, "hidraw", "hidraw", h.name, 240, minor, h.name);
    this.udevRecord(`c240:${minor}`, {});
    this.devNode(h.name, GID.hidraw, 0o600);
    return devpath;
  }

  /** A device off USB: <devpath> on <bus> with <driver>. */
  platform(devpath: string, bus: string, driver?: string): string {
    this.mkdir(devpath);
    this.uevent(devpath, driver ? { DRIVER: driver } : {});
    this.busLink(devpath, bus);
    if (driver) this.driverLink(devpath, bus, driver);
    return devpath;
  }

  /** A virtual tty (/devices/virtual/tty/<name>), which detection leaves out. */
  virtualTty(name: string, minor: number): void {
    this.mkdir("/devices/virtual/tty");
    this.classDevice("/devices/virtual", "tty", "tty", name, 4, minor, name);
  }

  /** Detaches a device's driver: its driver link and the DRIVER line of its uevent go. */
  unbind(devpath: string): void {
    const link = path.join(this.abs(devpath), "driver");
    if (fs.existsSync(link)) fs.rmSync(path.join(fs.realpathSync(link), path.basename(devpath)), { force: true });
    fs.rmSync(link, { force: true });
    const ue = path.join(this.abs(devpath), "uevent");
    const text = fs.readFileSync(ue, "utf8");
    fs.writeFileSync(ue, text.split("\n").filter((l) => !l.startsWith("DRIVER=")).join("\n"));
  }

  /** Unplugs a device: its directory, and every class or bus link that pointed into it. */
  unplug(devpath: string): void {
    fs.rmSync(this.abs(devpath), { recursive: true, force: true });
    const sweep = (dir: string) => {
      for (const name of fs.readdirSync(dir)) {
        const p = path.join(dir, name);
        const st = fs.lstatSync(p);
        if (st.isSymbolicLink()) {
          if (!fs.existsSync(p)) fs.unlinkSync(p);
        } else if (st.isDirectory() && dir.split(path.sep).length < this.sys.split(path.sep).length + 4) {
          sweep(p);
        }
      }
    };
    sweep(path.join(this.sys, "class"));
    sweep(path.join(this.sys, "bus"));
  }
}

// ---- the fixtures the tests share --------------------------------------------

export const UNO_SERIAL = "75630313536351A0F0E1";

export function arduinoUno(port = "1-1", devnum = 5): FakeUsbDevice {
  return {
    port,
    vid: "2341",
    pid: "0043",
    bcdDevice: "0001",
    manufacturer: "Arduino (www.arduino.cc)",
    serial: UNO_SERIAL,
    speed: "12",
    deviceClass: "02",
    devnum,
    udev: { ID_VENDOR: "Arduino__www.arduino.cc_", ID_MODEL: "0043", ID_SERIAL: `Arduino__www.arduino.cc__0043_${UNO_SERIAL}` },
    interfaces: [
      {
        class: "02",
        subclass: "02",
        protocol: "01",
        driver: "cdc_acm",
        tty: [{ name: "ttyACM0", links: [`serial/by-id/usb-Arduino__www.arduino.cc__0043_${UNO_SERIAL}-if00`, "serial/by-path/pci-0000:00:14.0-usb-0:1:1.0"] }],
      },
      { class: "0a", driver: "cdc_acm" },
    ],
  };
}

export function ch340(port = "1-2", devnum = 6): FakeUsbDevice {
  return {
    port,
    vid: "1a86",
    pid: "7523",
    bcdDevice: "0264",
    product: "USB2.0-Serial",
    speed: "12",
    deviceClass: "ff",
    devnum,
    udev: { ID_VENDOR: "1a86", ID_MODEL: "USB2.0-Serial", ID_SERIAL: "1a86_USB2.0-Serial" },
    interfaces: [
      {
        class: "ff",
        subclass: "01",
        protocol: "02",
        driver: "ch341",
        tty: [{ name: "ttyUSB0", usbSerial: true, links: ["serial/by-id/usb-1a86_USB2.0-Serial-if00-port0", "serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0"] }],
      },
    ],
  };
}

export function uvcWebcam(port = "1-3", devnum = 7): FakeUsbDevice {
  return {
    port,
    vid: "046d",
    pid: "0825",
    bcdDevice: "0012",
    serial: "A1B2C3D4",
    speed: "480",
    deviceClass: "ef",
    devnum,
    interfaces: [
      {
        class: "0e",
        subclass: "01",
        protocol: "00",
        driver: "uvcvideo",
        video: [
          { name: "video0", index: 0, label: "UVC Camera (046d:0825)", links: ["v4l/by-id/usb-046d_0825_A1B2C3D4-video-index0"] },
          { name: "video1", index: 1, label: "UVC Camera (046d:0825)", links: ["v4l/by-id/usb-046d_0825_A1B2C3D4-video-index1"] },
        ],
      },
      { class: "0e", subclass: "02", protocol: "00", driver: "uvcvideo" },
    ],
  };
}

export function usbMicrophone(port = "1-4", devnum = 8): FakeUsbDevice {
  return {
    port,
    vid: "0d8c",
    pid: "0014",
    manufacturer: "C-Media Electronics Inc.",
    product: "USB Audio Device",
    speed: "12",
    devnum,
    interfaces: [
      { class: "01", subclass: "01", driver: "snd-usb-audio", sound: { card: 1, id: "Device", pcm: [{ device: 0, capture: false }, { device: 0, capture: true }] } },
      { class: "01", subclass: "02", driver: "snd-usb-audio" },
      { class: "01", subclass: "02", driver: "snd-usb-audio" },
      { class: "03", driver: "usbhid", hidraw: [{ name: "hidraw0", hid: "0003:0D8C:0014.0001" }] },
    ],
  };
}

export function hub(port: string, devnum: number): FakeUsbDevice {
  return {
    port,
    vid: "05e3",
    pid: "0608",
    bcdDevice: "6060",
    product: "USB2.0 Hub",
    speed: "480",
    deviceClass: "09",
    devnum,
    interfaces: [{ class: "09", driver: "hub" }],
  };
}

/** A keyboard-like gadget without a serial number. */
export function noSerial(port: string, devnum: number): FakeUsbDevice {
  return {
    port,
    vid: "1234",
    pid: "5678",
    manufacturer: "ACME",
    product: "Gadget",
    speed: "1.5",
    devnum,
    interfaces: [{ class: "03", subclass: "00", protocol: "00", driver: "usbhid", hidraw: [{ name: `hidraw${devnum}`, hid: `0003:1234:5678.00${devnum.toString(16).padStart(2, "0").toUpperCase()}` }] }],
  };
}

/** A tree with every fixture: the USB devices, a hub with three, and devices off USB. */
export function fullTree(): FakeSysfs {
  const t = new FakeSysfs();
  t.usb(arduinoUno("1-1", 5));
  t.usb(ch340("1-2", 6));
  t.usb(uvcWebcam("1-3", 7));
  t.usb(usbMicrophone("1-4", 8));
  t.usb(hub("1-5", 9));
  t.usb(noSerial("1-5.1", 10));
  t.usb({ ...ch340("1-5.2", 11), udev: false, interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: "ch341", tty: [{ name: "ttyUSB1", usbSerial: true, udev: false }] }] });
  t.usb({
    ...arduinoUno("1-5.3", 12),
    serial: "9573",
    udev: {},
    interfaces: [
      { class: "02", subclass: "02", protocol: "01", driver: "cdc_acm", tty: [{ name: "ttyACM1", links: ["serial/by-id/usb-Arduino__www.arduino.cc__0043_9573-if00"] }] },
      { class: "0a", driver: "cdc_acm" },
    ],
  });
  // A Raspberry Pi's PL011 UART, behind the serial-base layer of recent kernels.
  t.platform("/devices/platform/soc/fe201000.serial", "amba", "uart-pl011");
  t.tty("/devices/platform/soc/fe201000.serial/fe201000.serial:0/fe201000.serial:0.0", { name: "ttyAMA0", major: 204, minor: 64, udev: {} });
  // Onboard HDA audio.
  t.platform("/devices/pci0000:00/0000:00:1f.3", "pci", "snd_hda_intel");
  t.sound("/devices/pci0000:00/0000:00:1f.3", { card: 0, id: "PCH", pcm: [{ device: 0, capture: false }, { device: 0, capture: true }] });
  // A CSI camera: image node and embedded-data node.
  t.platform("/devices/platform/soc/fe801000.csi", "platform", "unicam");
  t.video("/devices/platform/soc/fe801000.csi", { name: "video2", index: 0, label: "unicam-image" });
  t.video("/devices/platform/soc/fe801000.csi", { name: "video3", index: 1, label: "unicam-embedded" });
  // A PC's COM1, and an 8250 port that is not there (type 0).
  t.platform("/devices/pnp0/00:04", "pnp", "serial");
  t.attr(t.tty("/devices/pnp0/00:04", { name: "ttyS0", udev: {} }), "type", "4");
  t.platform("/devices/platform/serial8250", "platform", "serial8250");
  t.attr(t.tty("/devices/platform/serial8250", { name: "ttyS1" }), "type", "0");
  t.virtualTty("tty0", 0);
  t.virtualTty("ptmx", 2);
  return t;
}
