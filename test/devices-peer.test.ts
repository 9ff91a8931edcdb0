// Conformance with data nobody here wrote: udevadm --export-db dumps of real
// machines (checkbox's fixtures), umockdev recordings of real devices, and
// what USBGuard's own tool made of those recordings. Each is converted into a
// sysfs + udev tree and enumerated; the grouping into physical devices is
// checked against the expectations stated in the recordings' SOURCE.md.
import assert from "assert";
import fs from "fs";
import path from "path";
import { DeviceDetector, DeviceEvent, parseUevent } from "../lib/devices";
import { classNodesOf, scanClassNodes } from "../lib/devices/group";
import { SysfsReader } from "../lib/devices/sysfs";
import { FakeSysfs } from "./fakes/sysfs";
import { DumpDevice, treeFromDump } from "./fakes/udevdump";
import { ROOT } from "./support/rings";

const PEER = path.resolve(ROOT, "..", "shared", "peer-tests");
const CHECKBOX = path.join(PEER, "udevadm-checkbox");
const UMOCKDEV = path.join(PEER, "umockdev");

interface Loaded {
  tree: FakeSysfs;
  devices: DumpDevice[];
  events: DeviceEvent[];
  warnings: string[];
}

const trees: FakeSysfs[] = [];
const converted = new Map<string, { tree: FakeSysfs; devices: DumpDevice[] }>();

/** Converts a recording once per run, then enumerates it (with or without its udev data). */
function load(file: string, options: { udev?: boolean } = {}): Loaded {
  let c = converted.get(file);
  if (!c) {
    c = treeFromDump(file);
    converted.set(file, c);
    trees.push(c.tree);
  }
  const { tree, devices } = c;
  const d = new DeviceDetector({ ...tree.roots, ...(options.udev === false ? { udevData: path.join(tree.base, "no-udev") } : {}), diagnostics: false });
  const warnings: string[] = [];
  d.on("warning", (w) => warnings.push(`${w.code}: ${w.message}`));
  return { tree, devices, events: d.enumerate(), warnings };
}

function byPort(events: DeviceEvent[], port: string): DeviceEvent {
  const e = events.find((x) => x.usb?.port === port);
  assert.ok(e, `a device at port ${port}`);
  return e;
}

const short = (e: DeviceEvent) => ({
  id: e.id,
  subsystem: e.subsystem,
  tty: e.nodes.tty,
  video: e.nodes.video,
  videoMetadata: e.nodes.videoMetadata,
  audio: e.nodes.audio.map((a) => `${a.path}${a.capture ? " capture" : ""}`),
  hidraw: e.nodes.hidraw,
});

/** Invariants every recording must satisfy, from the dump's own view of the tree. */
function checkGrouping(l: Loaded): void {
  const usbDevices = l.devices.filter((d) => d.props.DEVTYPE === "usb_device" && !/\/usb\d+$/.test(d.devpath));
  const ports = l.events.filter((e) => e.usb).map((e) => e.usb?.port);
  assert.deepStrictEqual([...ports].sort(), usbDevices.map((d) => path.posix.basename(d.devpath)).sort(), "every USB device once, no root hub");
  for (const d of usbDevices) {
    const e = byPort(l.events, path.posix.basename(d.devpath));
    assert.strictEqual(`${e.usb?.vid}:${e.usb?.pid}`, `${d.props.ID_VENDOR_ID}:${d.props.ID_MODEL_ID}`);
  }
  // Each node of the dump under a USB device is listed by that device and no other.
  const listed = new Map<string, string>();
  for (const e of l.events) {
    for (const n of [...e.nodes.tty, ...e.nodes.video, ...e.nodes.videoMetadata, ...e.nodes.hidraw, ...e.nodes.audio.map((a) => a.path)]) {
      assert.ok(!listed.has(n), `${n} listed by ${listed.get(n)} and ${e.id}`);
      listed.set(n, e.syspath);
    }
  }
  for (const d of l.devices) {
    const node = d.props.DEVNAME ?? (d.node ? `/dev/${d.node}` : undefined);
    const kind = d.props.SUBSYSTEM;
    const interesting =
      (kind === "tty" && !d.devpath.startsWith("/devices/virtual/")) ||
      (kind === "video4linux" && /\/video\d+$/.test(d.devpath)) ||
      kind === "hidraw" ||
      (kind === "sound" && /\/pcmC\d+D\d+[cp]$/.test(d.devpath));
    if (!interesting || !node || !/\/\d+-[\d.]+\//.test(d.devpath)) continue;
    const owner = usbDevices
      .map((u) => u.devpath)
      .filter((u) => d.devpath.startsWith(u + "/"))
      .sort((a, b) => b.length - a.length)[0];
    assert.strictEqual(listed.get(node), `/sys${owner}`, `${node} belongs to ${owner}`);
  }
  assert.strictEqual(new Set(l.events.map((e) => e.id)).size, l.events.length, "ids are unique");
  // A hotplug re-read walks the device's directory; it must find what enumeration found.
  const sys = new SysfsReader(l.tree.sys, () => undefined);
  for (const [devpath, { owner, nodes }] of scanClassNodes(sys)) {
    const key = (n: { devpath: string }) => n.devpath;
    assert.deepStrictEqual(classNodesOf(sys, owner).map(key).sort(), nodes.map(key).sort(), devpath);
  }
}

describe("conformance with real recordings (reads ../shared/peer-tests)", function () {
  before(function () {
    if (!fs.existsSync(PEER)) this.skip();
  });
  after(() => {
    for (const t of trees.splice(0)) t.cleanup();
    converted.clear();
  });

  describe("udevadm --export-db dumps (../shared/peer-tests/udevadm-checkbox)", () => {
    it("every dump: each USB device once, each node under its own device, nothing twice, no warning", function () {
      if (!fs.existsSync(CHECKBOX)) this.skip();
      const files = fs.readdirSync(CHECKBOX).filter((f) => f.endsWith(".txt"));
      assert.strictEqual(files.length, 6);
      for (const f of files) {
        const l = load(path.join(CHECKBOX, f));
        assert.deepStrictEqual(l.warnings, [], f);
        checkGrouping(l);
      }
    });

    it("LENOVO_T430S: the C920's video0 and its microphone card0 are one device; the rest as SOURCE.md lists", function () {
      if (!fs.existsSync(CHECKBOX)) this.skip();
      const { events } = load(path.join(CHECKBOX, "LENOVO_T430S.txt"));
      assert.deepStrictEqual(short(byPort(events, "1-1.2")), {
        id: "usb-046d:082d-73BD39DF",
        subsystem: "video4linux",
        tty: [],
        video: ["/dev/video0"],
        videoMetadata: [],
        audio: ["/dev/snd/pcmC0D0c capture"],
        hidraw: [],
      });
      const c920 = byPort(events, "1-1.2");
      assert.deepStrictEqual(
        c920.usb?.interfaces.map((i) => `${i.class}:${i.subclass}:${i.protocol} ${i.driver}`),
        ["0e:01:00 uvcvideo", "0e:02:00 uvcvideo", "01:01:00 snd-usb-audio", "01:02:00 snd-usb-audio"],
      );
      assert.strictEqual(c920.usb?.product, "HD Pro Webcam C920");
      assert.strictEqual(c920.properties.ID_USB_INTERFACES, ":0e0100:0e0200:010100:010200:");
      assert.deepStrictEqual(short(byPort(events, "1-1.6")).video, ["/dev/video1"]);
      assert.strictEqual(byPort(events, "1-1.6").id, "usb-04f2:b2da-port-1-1.6");
      const headset = byPort(events, "3-2");
      assert.deepStrictEqual(short(headset).audio, ["/dev/snd/pcmC1D0c capture", "/dev/snd/pcmC1D0p"]);
      assert.strictEqual(headset.usb?.product, "Logitech USB Headset");
      const wwan = byPort(events, "3-4");
      assert.strictEqual(`${wwan.usb?.vid}:${wwan.usb?.pid} ${wwan.usb?.product}`, "0bdb:1926 H5321 gw");
      assert.deepStrictEqual(wwan.nodes.tty, ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyACM2"]);
      assert.strictEqual(wwan.nodes.serialById.length, 3);
      // Behind the ALCOR hub: keyboard, mouse, KVM, each a device of its own.
      assert.deepStrictEqual(
        ["3-1", "3-1.1", "3-1.2", "3-1.3"].map((p) => `${byPort(events, p).usb?.vid}:${byPort(events, p).usb?.pid}`),
        ["058f:9254", "046d:c318", "045e:0047", "10d5:55a2"],
      );
      assert.strictEqual(byPort(events, "1-1.4").id, "usb-0a5c:21e6-F4B7E2E8A8EF");
      // checkbox counts CAPTURE 2: the two capture video nodes.
      assert.strictEqual(events.reduce((n, e) => n + e.nodes.video.length, 0), 2);
      // Onboard HDA audio is reported too, off USB.
      assert.ok(events.some((e) => e.id === "pci-0000:00:1b.0" && e.usb === null && e.nodes.audio.some((a) => a.capture)));
    });

    it("CAPTURE_METADATA: four video nodes, one device; video1 and video3 are metadata nodes", function () {
      if (!fs.existsSync(CHECKBOX)) this.skip();
      const { events } = load(path.join(CHECKBOX, "CAPTURE_METADATA.txt"));
      const cam = byPort(events, "1-5");
      assert.strictEqual(cam.id, "usb-0bda:58f5-200901010001");
      assert.strictEqual(cam.usb?.product, "Integrated_Webcam_HD");
      // No `index` attribute in a dump: udev's by-path links (...-video-index<N>) tell.
      // checkbox keeps only video0 (video2's by-id link duplicates video0's); video2
      // is the capture node of the second (IR) function on interface 1.2.
      assert.deepStrictEqual(cam.nodes.video, ["/dev/video0", "/dev/video2"]);
      assert.deepStrictEqual(cam.nodes.videoMetadata, ["/dev/video1", "/dev/video3"]);
      assert.strictEqual(cam.path, "/dev/video0");
      assert.deepStrictEqual(short(byPort(events, "1-8")).hidraw, ["/dev/hidraw0"]);
      // The I2C touchpad's hidraw node is off USB: its I2C device owns it.
      assert.ok(events.some((e) => e.usb === null && e.nodes.hidraw.includes("/dev/hidraw1")));
    });

    it("ONE_CDROM_ONLY: the C270-family webcam's video0 and card1 capture are one device", function () {
      if (!fs.existsSync(CHECKBOX)) this.skip();
      const { events } = load(path.join(CHECKBOX, "ONE_CDROM_ONLY.txt"));
      assert.deepStrictEqual(short(byPort(events, "3-1.3")), {
        id: "usb-046d:0825-9C96B560",
        subsystem: "video4linux",
        tty: [],
        video: ["/dev/video0"],
        videoMetadata: [],
        audio: ["/dev/snd/pcmC1D0c capture"],
        hidraw: [],
      });
      assert.deepStrictEqual(
        ["3-1", "3-1.1", "3-1.4", "3-2"].map((p) => byPort(events, p).id),
        ["usb-0424:2514-port-3-1", "usb-093a:2510-port-3-1.1", "usb-046d:c52b-port-3-1.4", "usb-0e8d:1956-port-3-2"],
      );
    });

    it("USB serial: FTDI ttyUSB0, Atmel and Everactive ttyACM0, Sierra's three qcserial ports, an STM32 in DFU without a driver", function () {
      if (!fs.existsSync(CHECKBOX)) this.skip();
      const element = load(path.join(CHECKBOX, "ELEMENT_BIOSCIENCES_INSTRUMENT.txt")).events;
      const ftdi = byPort(element, "1-10");
      assert.deepStrictEqual([ftdi.id, ftdi.nodes.tty, ftdi.usb?.interfaces[0].driver, ftdi.usb?.product], ["usb-0403:6015-FT50KUPS", ["/dev/ttyUSB0"], "ftdi_sio", "UMFT230XB"]);
      assert.deepStrictEqual(ftdi.nodes.serialById, ["/dev/serial/by-id/usb-FTDI_UMFT230XB_FT50KUPS-if00-port0"]);

      const cara = load(path.join(CHECKBOX, "CARA_T.txt")).events;
      const atmel = byPort(cara, "1-4");
      assert.deepStrictEqual([atmel.usb?.vid, atmel.usb?.pid, atmel.nodes.tty, atmel.usb?.class], ["03eb", "2404", ["/dev/ttyACM0"], "02"]);

      const fde = load(path.join(CHECKBOX, "CRYPTO_FDE.txt")).events;
      assert.deepStrictEqual(byPort(fde, "1-1").nodes.tty, ["/dev/ttyACM0"]);
      assert.strictEqual(`${byPort(fde, "1-1").usb?.vid}:${byPort(fde, "1-1").usb?.pid}`, "3342:0001");
      const sierra = byPort(fde, "2-6");
      assert.deepStrictEqual(sierra.nodes.tty, ["/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyUSB2"]);
      assert.ok(sierra.usb?.interfaces.filter((i) => i.driver === "qcserial").length === 3);
      const dfu = byPort(fde, "1-8.3");
      assert.deepStrictEqual([dfu.usb?.vid, dfu.usb?.pid, dfu.subsystem], ["0483", "df11", "usb"]);
      assert.deepStrictEqual(dfu.usb?.interfaces.map((i) => [i.class, i.driver]), [["fe", null]]);
      assert.deepStrictEqual(
        ["1-8", "1-8.4"].map((p) => `${byPort(fde, p).usb?.vid}:${byPort(fde, p).usb?.pid}`),
        ["0424:2514", "413c:2113"],
      );
    });
  });

  describe("umockdev recordings (../shared/peer-tests/umockdev, ../shared/peer-tests/usbguard)", () => {
    function recordings(): string[] {
      const out: string[] = [];
      const walk = (dir: string) => {
        for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
          const p = path.join(dir, d.name);
          if (d.isDirectory()) walk(p);
          else if (d.name.endsWith(".umockdev") || d.name === "device") out.push(p);
        }
      };
      if (fs.existsSync(UMOCKDEV)) walk(UMOCKDEV);
      const guard = path.join(PEER, "usbguard", "devices.umockdev");
      if (fs.existsSync(guard)) out.push(guard);
      return out;
    }

    it("every recording enumerates without a warning, each USB device once, nodes with their device", function () {
      const files = recordings();
      if (files.length === 0) this.skip();
      for (const f of files) {
        const l = load(f);
        assert.deepStrictEqual(l.warnings, [], f);
        checkGrouping(l);
      }
    });

    it("the Yubico key: hidraw5 belongs to 1050:0120 behind its hub, which has no serial", function () {
      const f = path.join(UMOCKDEV, "martinpitt-umockdev", "devices", "hidraw", "fido2.umockdev");
      if (!fs.existsSync(f)) this.skip();
      const { events } = load(f);
      assert.deepStrictEqual(
        events.map((e) => [e.id, e.subsystem, e.path, e.nodes.hidraw, e.usb?.speed]),
        [
          ["usb-0bda:5411-port-1-2", "usb", "/dev/bus/usb/001/002", [], 480],
          ["usb-1050:0120-port-1-2.3", "hidraw", "/dev/hidraw5", ["/dev/hidraw5"], 12],
        ],
      );
    });

    it("devices off USB (PS/2 touchpad, AT keyboard, a touchscreen) give no event", function () {
      const files = recordings().filter((f) => /(synaptics-touchpad|laptop-keyboard|laptop-mouse|mt-screen-detection)\.umockdev$/.test(f));
      if (files.length === 0) this.skip();
      for (const f of files) assert.deepStrictEqual(load(f).events, [], f);
    });

    it("agrees with USBGuard's generate-policy on ids, serials, ports, names and with-interface lists", function () {
      const dir = path.join(UMOCKDEV, "generated-usbguard-1.1.2-generate-policy");
      if (!fs.existsSync(dir)) this.skip();
      let compared = 0;
      for (const rulesFile of fs.readdirSync(dir).filter((f) => f.endsWith(".rules"))) {
        const [folder, ...rest] = rulesFile.replace(/\.rules$/, "").split("__");
        const recording = folder === "usbguard" ? path.join(PEER, "usbguard", ...rest) : path.join(UMOCKDEV, folder, ...rest);
        assert.ok(fs.existsSync(recording), recording);
        // Without udev's ID_USB_INTERFACES, it is read from the descriptors, as USBGuard does.
        const { events } = load(recording, { udev: false });
        for (const line of fs.readFileSync(path.join(dir, rulesFile), "utf8").split("\n").filter(Boolean)) {
          const str = (attr: string) => new RegExp(`${attr} "((?:[^"\\\\]|\\\\.)*)"`).exec(line)?.[1];
          const id = /^allow id ([0-9a-f]{4}:[0-9a-f]{4})/.exec(line)?.[1];
          const withIf = /with-interface (\{ ([^}]*) \}|[0-9a-f:]+)/.exec(line);
          const ifaces = new Set((withIf?.[2] ?? withIf?.[1] ?? "").split(" ").filter(Boolean).map((s) => s.replace(/:/g, "")));
          if (id === "1d6b:0002" || id === "1d6b:0003") {
            assert.ok(!events.some((e) => `${e.usb?.vid}:${e.usb?.pid}` === id), "no root hub");
            continue;
          }
          const viaPort = str("via-port");
          const candidates = events.filter((e) => `${e.usb?.vid}:${e.usb?.pid}` === id && (viaPort === undefined || e.usb?.port === viaPort));
          assert.strictEqual(candidates.length, 1, `${rulesFile}: ${line}`);
          const e = candidates[0];
          assert.strictEqual(e.usb?.serial ?? "", str("serial"), `${rulesFile}: serial of ${id}`);
          assert.strictEqual(e.usb?.product ?? "", str("name"), `${rulesFile}: name of ${id}`);
          // The same list, alternate settings and repeats included, in the same order.
          const listed = (withIf?.[2] ?? withIf?.[1] ?? "").split(" ").filter(Boolean);
          assert.deepStrictEqual(e.usb?.interfaceTypes, listed, `${rulesFile}: with-interface of ${id}`);
          const ours = new Set((e.properties.ID_USB_INTERFACES ?? "").split(":").filter(Boolean));
          assert.deepStrictEqual([...ours].sort(), [...ifaces].sort(), `${rulesFile}: interfaces of ${id}`);
          for (const i of e.usb?.interfaces ?? []) assert.ok(ifaces.has(i.class + i.subclass + i.protocol), `${rulesFile}: ${id} interface ${i.class}${i.subclass}${i.protocol}`);
          compared++;
        }
      }
      assert.ok(compared >= 30, `compared ${compared} devices`);
    });
  });

  it("without udev, the ID_* properties computed from sysfs equal those udev recorded", function () {
    const files = [
      ...(fs.existsSync(CHECKBOX) ? fs.readdirSync(CHECKBOX).filter((f) => f.endsWith(".txt")).map((f) => path.join(CHECKBOX, f)) : []),
      ...(fs.existsSync(UMOCKDEV) ? [path.join(UMOCKDEV, "martinpitt-umockdev", "devices", "hidraw", "fido2.umockdev"), path.join(UMOCKDEV, "martinpitt-umockdev", "devices", "input", "usbkbd.umockdev")] : []),
    ].filter((f) => fs.existsSync(f));
    if (files.length === 0) this.skip();
    let compared = 0;
    for (const f of files) {
      const { devices, events } = load(f, { udev: false });
      for (const d of devices.filter((x) => x.props.DEVTYPE === "usb_device" && !/\/usb\d+$/.test(x.devpath))) {
        const e = byPort(events, path.posix.basename(d.devpath));
        for (const k of ["ID_VENDOR", "ID_MODEL", "ID_SERIAL", "ID_SERIAL_SHORT", "ID_VENDOR_ID", "ID_MODEL_ID"]) {
          assert.strictEqual(e.properties[k], d.props[k], `${path.basename(f)} ${d.devpath} ${k}`);
        }
        compared++;
      }
    }
    assert.ok(compared >= 40, `compared ${compared}`);
  });

  it("USBGuard's uevent fuzzer seed parses as the kernel message it is (../shared/peer-tests/usbguard)", function () {
    const f = path.join(PEER, "usbguard", "fuzzer-uevent_corpus", "0001.bin");
    if (!fs.existsSync(f)) this.skip();
    const ev = parseUevent(fs.readFileSync(f));
    assert.strictEqual(ev.format, "kernel");
    assert.strictEqual(ev.action, "add");
    assert.strictEqual(ev.devpath, "/devices/platform/dummy_hcd.0/usb1");
    assert.strictEqual(ev.subsystem, "usb");
    assert.strictEqual(ev.properties.PRODUCT, "1d6b/2/401");
    assert.strictEqual(ev.properties.TYPE, "9/0/1");
  });
});
