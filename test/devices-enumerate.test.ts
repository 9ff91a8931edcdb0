// Enumeration of fake sysfs/udev trees: one event per physical device, with
// every node it created, exactly as docs/device-event.md describes.
import assert from "assert";
import fs from "fs";
import path from "path";
import { DeviceDetector, DeviceEvent } from "../lib/devices";
import { classNodesOf, scanClassNodes } from "../lib/devices/group";
import { SysfsReader } from "../lib/devices/sysfs";
import { arduinoUno, ch340, FakeSysfs, fullTree } from "./fakes/sysfs";
import { ManualClock } from "./fakes/uevents";

const T0 = 1_700_000_000_000;
const ROOT = "/devices/pci0000:00/0000:00:14.0/usb1";

function usbProps(devpath: string, busnum: number, devnum: number, product: string, type: string, extra: Record<string, string>): Record<string, string> {
  const p: Record<string, string> = {
    BUSNUM: String(busnum).padStart(3, "0"),
    DEVNAME: `/dev/bus/usb/${String(busnum).padStart(3, "0")}/${String(devnum).padStart(3, "0")}`,
    DEVNUM: String(devnum).padStart(3, "0"),
    DEVPATH: devpath,
    DEVTYPE: "usb_device",
    DRIVER: "usb",
    ID_BUS: "usb",
    MAJOR: "189",
    MINOR: String((busnum - 1) * 128 + devnum - 1),
    PRODUCT: product,
    SUBSYSTEM: "usb",
    TYPE: type,
    ...extra,
  };
  return Object.fromEntries(Object.entries(p).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const none = { tty: [], serialById: [], video: [], videoMetadata: [], audio: [], hidraw: [] };

const EXPECTED: DeviceEvent[] = [
  {
    action: "present",
    id: "usb-2341:0043-75630313536351A0F0E1",
    subsystem: "tty",
    path: "/dev/ttyACM0",
    syspath: `/sys${ROOT}/1-1`,
    properties: {
      BUSNUM: "001",
      DEVNAME: "/dev/bus/usb/001/005",
      DEVNUM: "005",
      DEVPATH: `${ROOT}/1-1`,
      DEVTYPE: "usb_device",
      DRIVER: "usb",
      ID_BUS: "usb",
      ID_MODEL: "0043",
      ID_MODEL_ID: "0043",
      ID_SERIAL: "Arduino__www.arduino.cc__0043_75630313536351A0F0E1",
      ID_SERIAL_SHORT: "75630313536351A0F0E1",
      ID_USB_INTERFACES: ":020201:0a0000:",
      ID_VENDOR: "Arduino__www.arduino.cc_",
      ID_VENDOR_ID: "2341",
      MAJOR: "189",
      MINOR: "4",
      PRODUCT: "2341/43/1",
      SUBSYSTEM: "usb",
      TYPE: "2/0/0",
    },
    usb: {
      vid: "2341",
      pid: "0043",
      manufacturer: "Arduino (www.arduino.cc)",
      product: null,
      serial: "75630313536351A0F0E1",
      port: "1-1",
      busnum: 1,
      devnum: 5,
      speed: 12,
      class: "02",
      interfaces: [
        { class: "02", subclass: "02", protocol: "01", driver: "cdc_acm" },
        { class: "0a", subclass: "00", protocol: "00", driver: "cdc_acm" },
      ],
      interfaceTypes: ["02:02:01", "0a:00:00"],
    },
    nodes: { ...none, tty: ["/dev/ttyACM0"], serialById: ["/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_75630313536351A0F0E1-if00"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "usb-1a86:7523-port-1-2",
    subsystem: "tty",
    path: "/dev/ttyUSB0",
    syspath: `/sys${ROOT}/1-2`,
    properties: usbProps(`${ROOT}/1-2`, 1, 6, "1a86/7523/264", "255/0/0", {
      ID_MODEL: "USB2.0-Serial",
      ID_MODEL_ID: "7523",
      ID_SERIAL: "1a86_USB2.0-Serial",
      ID_USB_INTERFACES: ":ff0102:",
      ID_VENDOR: "1a86",
      ID_VENDOR_ID: "1a86",
    }),
    usb: {
      vid: "1a86",
      pid: "7523",
      manufacturer: null,
      product: "USB2.0-Serial",
      serial: null,
      port: "1-2",
      busnum: 1,
      devnum: 6,
      speed: 12,
      class: "ff",
      interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: "ch341" }],
      interfaceTypes: ["ff:01:02"],
    },
    nodes: { ...none, tty: ["/dev/ttyUSB0"], serialById: ["/dev/serial/by-id/usb-1a86_USB2.0-Serial-if00-port0"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "usb-046d:0825-A1B2C3D4",
    subsystem: "video4linux",
    path: "/dev/video0",
    syspath: `/sys${ROOT}/1-3`,
    properties: usbProps(`${ROOT}/1-3`, 1, 7, "46d/825/12", "239/0/0", {
      ID_MODEL: "0825",
      ID_MODEL_ID: "0825",
      ID_SERIAL: "046d_0825_A1B2C3D4",
      ID_SERIAL_SHORT: "A1B2C3D4",
      ID_USB_INTERFACES: ":0e0100:0e0200:",
      ID_VENDOR: "046d",
      ID_VENDOR_ID: "046d",
    }),
    usb: {
      vid: "046d",
      pid: "0825",
      manufacturer: null,
      product: null,
      serial: "A1B2C3D4",
      port: "1-3",
      busnum: 1,
      devnum: 7,
      speed: 480,
      class: "ef",
      interfaces: [
        { class: "0e", subclass: "01", protocol: "00", driver: "uvcvideo" },
        { class: "0e", subclass: "02", protocol: "00", driver: "uvcvideo" },
      ],
      interfaceTypes: ["0e:01:00", "0e:02:00"],
    },
    nodes: { ...none, video: ["/dev/video0"], videoMetadata: ["/dev/video1"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "usb-0d8c:0014-port-1-4",
    subsystem: "sound",
    path: "/dev/snd/pcmC1D0c",
    syspath: `/sys${ROOT}/1-4`,
    properties: usbProps(`${ROOT}/1-4`, 1, 8, "d8c/14/100", "0/0/0", {
      ID_MODEL: "USB_Audio_Device",
      ID_MODEL_ID: "0014",
      ID_SERIAL: "C-Media_Electronics_Inc._USB_Audio_Device",
      ID_USB_INTERFACES: ":010100:010200:030000:",
      ID_VENDOR: "C-Media_Electronics_Inc.",
      ID_VENDOR_ID: "0d8c",
    }),
    usb: {
      vid: "0d8c",
      pid: "0014",
      manufacturer: "C-Media Electronics Inc.",
      product: "USB Audio Device",
      serial: null,
      port: "1-4",
      busnum: 1,
      devnum: 8,
      speed: 12,
      class: "00",
      interfaces: [
        { class: "01", subclass: "01", protocol: "00", driver: "snd-usb-audio" },
        { class: "01", subclass: "02", protocol: "00", driver: "snd-usb-audio" },
        { class: "01", subclass: "02", protocol: "00", driver: "snd-usb-audio" },
        { class: "03", subclass: "00", protocol: "00", driver: "usbhid" },
      ],
      interfaceTypes: ["01:01:00", "01:02:00", "01:02:00", "03:00:00"],
    },
    nodes: {
      ...none,
      audio: [
        { card: 1, device: 0, capture: true, cardId: "Device", path: "/dev/snd/pcmC1D0c" },
        { card: 1, device: 0, capture: false, cardId: "Device", path: "/dev/snd/pcmC1D0p" },
      ],
      hidraw: ["/dev/hidraw0"],
    },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "usb-05e3:0608-port-1-5",
    subsystem: "usb",
    path: "/dev/bus/usb/001/009",
    syspath: `/sys${ROOT}/1-5`,
    properties: usbProps(`${ROOT}/1-5`, 1, 9, "5e3/608/6060", "9/0/0", {
      ID_MODEL: "USB2.0_Hub",
      ID_MODEL_ID: "0608",
      ID_SERIAL: "05e3_USB2.0_Hub",
      ID_USB_INTERFACES: ":090000:",
      ID_VENDOR: "05e3",
      ID_VENDOR_ID: "05e3",
    }),
    usb: {
      vid: "05e3",
      pid: "0608",
      manufacturer: null,
      product: "USB2.0 Hub",
      serial: null,
      port: "1-5",
      busnum: 1,
      devnum: 9,
      speed: 480,
      class: "09",
      interfaces: [{ class: "09", subclass: "00", protocol: "00", driver: "hub" }],
      interfaceTypes: ["09:00:00"],
    },
    nodes: none,
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "usb-1234:5678-port-1-5.1",
    subsystem: "hidraw",
    path: "/dev/hidraw10",
    syspath: `/sys${ROOT}/1-5/1-5.1`,
    properties: usbProps(`${ROOT}/1-5/1-5.1`, 1, 10, "1234/5678/100", "0/0/0", {
      ID_MODEL: "Gadget",
      ID_MODEL_ID: "5678",
      ID_SERIAL: "ACME_Gadget",
      ID_USB_INTERFACES: ":030000:",
      ID_VENDOR: "ACME",
      ID_VENDOR_ID: "1234",
    }),
    usb: {
      vid: "1234",
      pid: "5678",
      manufacturer: "ACME",
      product: "Gadget",
      serial: null,
      port: "1-5.1",
      busnum: 1,
      devnum: 10,
      speed: 1.5,
      class: "00",
      interfaces: [{ class: "03", subclass: "00", protocol: "00", driver: "usbhid" }],
      interfaceTypes: ["03:00:00"],
    },
    nodes: { ...none, hidraw: ["/dev/hidraw10"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    // No udev record at all: the ID_* properties are what udev would have set; no by-id link.
    action: "present",
    id: "usb-1a86:7523-port-1-5.2",
    subsystem: "tty",
    path: "/dev/ttyUSB1",
    syspath: `/sys${ROOT}/1-5/1-5.2`,
    properties: usbProps(`${ROOT}/1-5/1-5.2`, 1, 11, "1a86/7523/264", "255/0/0", {
      ID_MODEL: "USB2.0-Serial",
      ID_MODEL_ID: "7523",
      ID_SERIAL: "1a86_USB2.0-Serial",
      ID_USB_INTERFACES: ":ff0102:",
      ID_VENDOR: "1a86",
      ID_VENDOR_ID: "1a86",
    }),
    usb: {
      vid: "1a86",
      pid: "7523",
      manufacturer: null,
      product: "USB2.0-Serial",
      serial: null,
      port: "1-5.2",
      busnum: 1,
      devnum: 11,
      speed: 12,
      class: "ff",
      interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: "ch341" }],
      interfaceTypes: ["ff:01:02"],
    },
    nodes: { ...none, tty: ["/dev/ttyUSB1"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "usb-2341:0043-9573",
    subsystem: "tty",
    path: "/dev/ttyACM1",
    syspath: `/sys${ROOT}/1-5/1-5.3`,
    properties: usbProps(`${ROOT}/1-5/1-5.3`, 1, 12, "2341/43/1", "2/0/0", {
      ID_MODEL: "0043",
      ID_MODEL_ID: "0043",
      ID_SERIAL: "Arduino__www.arduino.cc__0043_9573",
      ID_SERIAL_SHORT: "9573",
      ID_USB_INTERFACES: ":020201:0a0000:",
      ID_VENDOR: "Arduino__www.arduino.cc_",
      ID_VENDOR_ID: "2341",
    }),
    usb: {
      vid: "2341",
      pid: "0043",
      manufacturer: "Arduino (www.arduino.cc)",
      product: null,
      serial: "9573",
      port: "1-5.3",
      busnum: 1,
      devnum: 12,
      speed: 12,
      class: "02",
      interfaces: [
        { class: "02", subclass: "02", protocol: "01", driver: "cdc_acm" },
        { class: "0a", subclass: "00", protocol: "00", driver: "cdc_acm" },
      ],
      interfaceTypes: ["02:02:01", "0a:00:00"],
    },
    nodes: { ...none, tty: ["/dev/ttyACM1"], serialById: ["/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_9573-if00"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "pci-0000:00:1f.3",
    subsystem: "sound",
    path: "/dev/snd/pcmC0D0c",
    syspath: "/sys/devices/pci0000:00/0000:00:1f.3",
    properties: {
      DEVNAME: "/dev/snd/pcmC0D0c",
      DEVPATH: "/devices/pci0000:00/0000:00:1f.3/sound/card0/pcmC0D0c",
      DRIVER: "snd_hda_intel",
      MAJOR: "116",
      MINOR: "2",
      SUBSYSTEM: "sound",
    },
    usb: null,
    nodes: {
      ...none,
      audio: [
        { card: 0, device: 0, capture: true, cardId: "PCH", path: "/dev/snd/pcmC0D0c" },
        { card: 0, device: 0, capture: false, cardId: "PCH", path: "/dev/snd/pcmC0D0p" },
      ],
    },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "amba-fe201000.serial",
    subsystem: "tty",
    path: "/dev/ttyAMA0",
    syspath: "/sys/devices/platform/soc/fe201000.serial",
    properties: {
      DEVNAME: "/dev/ttyAMA0",
      DEVPATH: "/devices/platform/soc/fe201000.serial/fe201000.serial:0/fe201000.serial:0.0/tty/ttyAMA0",
      DRIVER: "uart-pl011",
      MAJOR: "204",
      MINOR: "64",
      SUBSYSTEM: "tty",
    },
    usb: null,
    nodes: { ...none, tty: ["/dev/ttyAMA0"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "platform-fe801000.csi",
    subsystem: "video4linux",
    path: "/dev/video2",
    syspath: "/sys/devices/platform/soc/fe801000.csi",
    properties: {
      DEVNAME: "/dev/video2",
      DEVPATH: "/devices/platform/soc/fe801000.csi/video4linux/video2",
      DRIVER: "unicam",
      MAJOR: "81",
      MINOR: "2",
      SUBSYSTEM: "video4linux",
    },
    usb: null,
    nodes: { ...none, video: ["/dev/video2"], videoMetadata: ["/dev/video3"] },
    diagnostics: [],
    timestamp: T0,
  },
  {
    action: "present",
    id: "pnp-00:04",
    subsystem: "tty",
    path: "/dev/ttyS0",
    syspath: "/sys/devices/pnp0/00:04",
    properties: { DEVNAME: "/dev/ttyS0", DEVPATH: "/devices/pnp0/00:04/tty/ttyS0", DRIVER: "serial", MAJOR: "4", MINOR: "0", SUBSYSTEM: "tty" },
    usb: null,
    nodes: { ...none, tty: ["/dev/ttyS0"] },
    diagnostics: [],
    timestamp: T0,
  },
];

describe("device enumeration from sysfs and the udev database", () => {
  let tree: FakeSysfs;
  before(() => {
    tree = fullTree();
  });
  after(() => tree.cleanup());

  function detector(options: Partial<ConstructorParameters<typeof DeviceDetector>[0]> = {}): DeviceDetector {
    return new DeviceDetector({ ...tree.roots, clock: new ManualClock(T0), probe: tree.probe(), ...options });
  }

  it("reports each physical device once, with every node it created, exactly", () => {
    const d = detector();
    const warnings: string[] = [];
    d.on("warning", (w) => warnings.push(w.message));
    const events = d.start();
    d.stop();
    assert.deepStrictEqual(warnings, []);
    assert.deepStrictEqual(
      events.map((e) => e.id),
      EXPECTED.map((e) => e.id),
    );
    for (let i = 0; i < EXPECTED.length; i++) assert.deepStrictEqual(events[i], EXPECTED[i], `event ${i} (${EXPECTED[i].id})`);
  });

  it("finds the same nodes walking one device's directory (hotplug) as through the class links (enumeration)", () => {
    const sys = new SysfsReader(tree.sys, (w) => assert.fail(w.message));
    const scanned = scanClassNodes(sys);
    // Every device with a node, and the 8250 port that turns out to be absent.
    assert.strictEqual(scanned.size, 12);
    for (const [devpath, { owner, nodes }] of scanned) {
      const key = (n: { devpath: string }) => n.devpath;
      assert.deepStrictEqual(classNodesOf(sys, owner).map(key).sort(), nodes.map(key).sort(), devpath);
    }
  });

  it("reads drivers from the drivers' directories, and from an interface's own link where its driver does not list it", () => {
    const expected = detector().enumerate();
    assert.ok(expected.some((e) => e.usb?.interfaces.some((i) => i.driver === "cdc_acm")));
    // A copied tree often lacks the drivers' back links: each interface's own link decides.
    const drivers = path.join(tree.sys, "bus/usb/drivers");
    const saved = path.join(tree.base, "drivers-saved");
    fs.cpSync(drivers, saved, { recursive: true, verbatimSymlinks: true });
    try {
      for (const driver of fs.readdirSync(drivers)) {
        const listed = fs.readdirSync(path.join(drivers, driver)).filter((n) => n.includes(":"));
        // cdc_acm loses its list entirely; the others keep all but one entry.
        for (const n of driver === "cdc_acm" ? listed : listed.slice(1)) fs.unlinkSync(path.join(drivers, driver, n));
      }
      assert.deepStrictEqual(detector().enumerate(), expected);
      fs.rmSync(drivers, { recursive: true });
      assert.deepStrictEqual(detector().enumerate(), expected);
    } finally {
      fs.rmSync(drivers, { recursive: true, force: true });
      fs.cpSync(saved, drivers, { recursive: true, verbatimSymlinks: true });
      fs.rmSync(saved, { recursive: true });
    }
  });

  it("keeps the inventory and answers it with the time of asking", () => {
    const clock = new ManualClock(T0);
    const d = detector({ clock });
    d.start();
    clock.advance(5000);
    const inv = d.inventory();
    d.stop();
    assert.strictEqual(inv.length, EXPECTED.length);
    assert.ok(inv.every((e) => e.action === "present" && e.timestamp === T0 + 5000));
  });

  it("takes its roots from DEVPLANE_SYSFS_ROOT and DEVPLANE_UDEV_DATA", () => {
    const saved = { ...process.env };
    try {
      process.env.DEVPLANE_SYSFS_ROOT = tree.sys;
      process.env.DEVPLANE_UDEV_DATA = tree.udevData;
      process.env.DEVPLANE_DEV_ROOT = tree.dev;
      const d = new DeviceDetector({ clock: new ManualClock(T0), diagnostics: false });
      assert.strictEqual(d.sysfsRoot, tree.sys);
      assert.strictEqual(d.udevData, tree.udevData);
      const ids = d.enumerate().map((e) => e.id);
      assert.deepStrictEqual(ids, EXPECTED.map((e) => e.id));
    } finally {
      for (const k of ["DEVPLANE_SYSFS_ROOT", "DEVPLANE_UDEV_DATA", "DEVPLANE_DEV_ROOT"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it("gives the same id to a device on another port when it has a serial number, and a port id when not", () => {
    const t = new FakeSysfs();
    try {
      t.usb(arduinoUno("3-4", 2));
      t.usb(ch340("3-1", 3));
      const ids = new DeviceDetector({ ...t.roots, probe: t.probe(), clock: new ManualClock(T0) }).enumerate().map((e) => e.id);
      assert.deepStrictEqual(ids, ["usb-1a86:7523-port-3-1", "usb-2341:0043-75630313536351A0F0E1"]);
    } finally {
      t.cleanup();
    }
  });

  it("writes odd serial numbers the way udev writes ID_SERIAL_SHORT", () => {
    const t = new FakeSysfs();
    try {
      t.usb({ ...arduinoUno("1-1", 2), serial: "  AB 12/x  ", udev: false });
      t.usb({ ...arduinoUno("1-2", 3), serial: "   ", udev: false, interfaces: [] });
      t.usb({ ...arduinoUno("1-3", 4), serial: "12  ²\u00e9(x)", udev: false, interfaces: [] });
      const [a, b, c] = new DeviceDetector({ ...t.roots, probe: t.probe(), clock: new ManualClock(T0) }).enumerate();
      assert.strictEqual(a.id, "usb-2341:0043-AB_12_x");
      assert.strictEqual(a.usb?.serial, "AB 12/x");
      assert.strictEqual(a.properties.ID_SERIAL_SHORT, "AB_12_x");
      // A serial made of blanks is no serial.
      assert.strictEqual(b.id, "usb-2341:0043-port-1-2");
      assert.strictEqual(b.usb?.serial, null);
      // Runs of blanks become one "_"; letters beyond ASCII stay, as in udev.
      assert.strictEqual(c.id, "usb-2341:0043-12_²é_x_");
    } finally {
      t.cleanup();
    }
  });
});
