// Bad input: malformed uevents, truncated sysfs files, unreadable
// directories, a missing udev database. Nothing throws; each problem is one
// clear warning, and what can still be read is still reported.
import assert from "assert";
import { spawnSync } from "child_process";
import fs from "fs";
import path from "path";
import { DetectorWarning, DeviceDetector, DeviceEvent, parseUdevRecord } from "../lib/devices";
import { arduinoUno, ch340, FakeSysfs, uvcWebcam } from "./fakes/sysfs";
import { kernelMessage, ManualClock, TestUeventSource, udevMessage } from "./fakes/uevents";
import { ROOT } from "./support/rings";

const trees: FakeSysfs[] = [];
function tree(options?: { udev?: boolean }): FakeSysfs {
  const t = new FakeSysfs(options);
  trees.push(t);
  return t;
}

function run(t: FakeSysfs, options: Partial<ConstructorParameters<typeof DeviceDetector>[0]> = {}): { events: DeviceEvent[]; warnings: DetectorWarning[]; detector: DeviceDetector } {
  const detector = new DeviceDetector({ ...t.roots, probe: t.probe(), clock: new ManualClock(), ...options });
  const warnings: DetectorWarning[] = [];
  detector.on("warning", (w) => warnings.push(w));
  const events = detector.start();
  return { events, warnings, detector };
}

describe("bad input", () => {
  after(() => {
    for (const t of trees.splice(0)) t.cleanup();
  });

  describe("malformed uevents", () => {
    it("each is one warning saying what is wrong; nothing is emitted; good messages still work", () => {
      const t = tree();
      t.controller(1);
      const source = new TestUeventSource();
      const clock = new ManualClock();
      const { warnings, detector } = run(t, { source, clock });
      const events: DeviceEvent[] = [];
      detector.on("device", (e) => events.push(e));
      const bad: Buffer[] = [
        Buffer.alloc(0),
        Buffer.from("garbage without at sign"),
        Buffer.from("add@/devices/x\0NOEQUALS\0"),
        Buffer.from("add@/devices/../../etc/passwd\0SUBSYSTEM=tty\0"),
        Buffer.from("libudev\0\xfe\xed", "latin1"),
        udevMessage("add", "/devices/x", {}, (h) => h.writeUInt32BE(0xdeadbeef, 8)),
        kernelMessage("frobnicate", "/devices/x"),
        Buffer.from([0xff, 0xfe, 0x00, 0x40]),
      ];
      source.send(...bad);
      (source as unknown as { emit(e: string, v: unknown): void }).emit("message", "not a buffer");
      clock.advance(1000);
      assert.strictEqual(events.length, 0);
      assert.deepStrictEqual(
        warnings.map((w) => w.message),
        [
          "ignored a malformed uevent: empty message",
          'ignored a malformed uevent: message is neither a kernel uevent (ACTION@DEVPATH) nor a libudev one: starts "garbage without at sign"',
          'ignored a malformed uevent: kernel uevent: field "NOEQUALS" is not KEY=VALUE',
          'ignored a malformed uevent: kernel uevent: DEVPATH "/devices/../../etc/passwd" is not a clean absolute path',
          "ignored a malformed uevent: udev message: 10 bytes, shorter than its 40-byte header",
          "ignored a malformed uevent: udev message: magic 0xdeadbeef is not 0xfeedcafe (a different udev build, or garbage)",
          'ignored a malformed uevent: kernel uevent: unknown action "frobnicate"',
          'ignored a malformed uevent: message is neither a kernel uevent (ACTION@DEVPATH) nor a libudev one: starts "��"',
          "ignored a hotplug message that is not bytes (string)",
        ],
      );
      assert.ok(warnings.every((w) => w.code === "uevent-malformed"));
      // After all that, a real device still arrives.
      const dev = t.usb(arduinoUno("1-1", 5));
      source.send(udevMessage("add", dev, { SUBSYSTEM: "usb", DEVTYPE: "usb_device" }));
      clock.advance(1000);
      assert.deepStrictEqual(
        events.map((e) => e.action),
        ["add"],
      );
      detector.stop();
    });

    it("the same bad message repeated is reported once a minute, with a count", () => {
      const t = tree();
      const source = new TestUeventSource();
      const clock = new ManualClock();
      const { warnings, detector } = run(t, { source, clock });
      for (let i = 0; i < 100; i++) source.send(Buffer.from("spam"));
      assert.strictEqual(warnings.length, 1);
      clock.advance(61000);
      source.send(Buffer.from("spam"));
      assert.strictEqual(warnings.length, 2);
      assert.match(warnings[1].message, /\(99 more like it since the last report\)$/);
      detector.stop();
    });
  });

  describe("truncated sysfs files", () => {
    it("a uevent whose PRODUCT line is cut short: the ids come from idVendor and idProduct", () => {
      const t = tree();
      const dev = t.usb(arduinoUno("1-1", 5));
      const ue = path.join(t.abs(dev), "uevent");
      fs.writeFileSync(ue, fs.readFileSync(ue, "utf8").replace(/PRODUCT=.*\n/, "PRODUCT=2341/4\n"));
      const { events, warnings } = run(t);
      assert.strictEqual(events[0].id, "usb-2341:0043-75630313536351A0F0E1");
      assert.deepStrictEqual(warnings, []);
    });

    it("no PRODUCT and an idVendor cut short: warned, and the id comes from udev's ID_VENDOR_ID", () => {
      const t = tree();
      const dev = t.usb({ ...arduinoUno("1-1", 5), udev: { ID_VENDOR_ID: "2341", ID_MODEL_ID: "0043" } });
      fs.writeFileSync(path.join(t.abs(dev), "idVendor"), "23");
      const ue = path.join(t.abs(dev), "uevent");
      fs.writeFileSync(ue, fs.readFileSync(ue, "utf8").replace(/PRODUCT=.*\n/, ""));
      const { events, warnings } = run(t);
      assert.strictEqual(events[0].id, "usb-2341:0043-75630313536351A0F0E1");
      assert.deepStrictEqual(
        warnings.map((w) => [w.code, w.message]),
        [["sysfs-malformed", `${path.join(t.abs(dev), "idVendor")} holds "23", not a 4-digit hex id: the file looks truncated`]],
      );
    });

    it("no usable id anywhere: the device is left out with a warning, the others stay", () => {
      const t = tree();
      const dev = t.usb({ ...arduinoUno("1-1", 5), udev: false });
      t.usb(ch340("1-2", 6));
      fs.writeFileSync(path.join(t.abs(dev), "idVendor"), "");
      fs.writeFileSync(path.join(t.abs(dev), "uevent"), "MAJOR=189\nMINOR=4\nDEVNAME=bus/usb/001/005\nDEVTYPE=usb_device\n");
      const { events, warnings } = run(t);
      assert.deepStrictEqual(events.map((e) => e.id), ["usb-1a86:7523-port-1-2"]);
      assert.deepStrictEqual(
        warnings.map((w) => w.code),
        ["sysfs-malformed", "sysfs-malformed"],
      );
      assert.match(warnings[1].message, /has no usable idVendor\/idProduct \(nor PRODUCT in its uevent\): the device is left out$/);
    });

    it("a uevent file cut mid-line: the whole lines are used, the broken one is warned about", () => {
      const t = tree();
      const dev = t.usb(arduinoUno("1-1", 5));
      const tty = `${dev}/1-1:1.0/tty/ttyACM0`;
      fs.writeFileSync(path.join(t.abs(tty), "uevent"), "MAJOR=166\nMINOR=0\nDEVNA");
      const { events, warnings } = run(t);
      assert.deepStrictEqual(events[0].nodes.tty, ["/dev/ttyACM0"]);
      assert.deepStrictEqual(events[0].nodes.serialById.length, 1);
      assert.deepStrictEqual(
        warnings.map((w) => w.message),
        [`${path.join(t.abs(tty), "uevent")} has a line without "=" ("DEVNA"): the file looks truncated, that line is ignored`],
      );
    });

    it("an interface uevent without INTERFACE: the class comes from the attributes, the driver from its link", () => {
      const t = tree();
      const dev = t.usb(uvcWebcam("1-3", 7));
      fs.writeFileSync(path.join(t.abs(`${dev}/1-3:1.1`), "uevent"), "DEVTYPE=usb_interface\n");
      const { events } = run(t);
      assert.deepStrictEqual(events[0].usb?.interfaces[1], { class: "0e", subclass: "02", protocol: "00", driver: "uvcvideo" });
    });

    it("garbage lines in a udev record: warned (once for the file), the good lines used", () => {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      const rec = path.join(t.udevData, "c166:0");
      fs.writeFileSync(rec, "S:serial/by-id/usb-X-if00\nthis is not udev\nE:NOEQUALS\nE:ID_MM_CANDIDATE=1\n");
      const { events, warnings } = run(t);
      assert.deepStrictEqual(events[0].nodes.serialById, ["/dev/serial/by-id/usb-X-if00"]);
      assert.deepStrictEqual(
        warnings.map((w) => w.message),
        [`${rec} has a line udev never writes ("this is not udev"): ignored`],
      );
      assert.deepStrictEqual(parseUdevRecord("E:A=1=2\nG:uaccess\nQ:seat\nL:10\nV:1\n"), { properties: { A: "1=2" }, links: [], tags: ["uaccess"] });
    });
  });

  describe("unreadable files and directories", () => {
    it("an attribute that is a directory, a link loop: warned by path and cause", () => {
      const t = tree();
      const dev = t.usb(arduinoUno("1-1", 5));
      fs.unlinkSync(path.join(t.abs(dev), "manufacturer"));
      fs.mkdirSync(path.join(t.abs(dev), "manufacturer"));
      fs.unlinkSync(path.join(t.abs(dev), "speed"));
      fs.symlinkSync("speed", path.join(t.abs(dev), "speed"));
      const { events, warnings } = run(t);
      assert.strictEqual(events[0].usb?.manufacturer, null);
      assert.strictEqual(events[0].usb?.speed, null);
      assert.deepStrictEqual(
        warnings.map((w) => w.message),
        [`cannot read attribute ${path.join(t.abs(dev), "manufacturer")}: EISDIR.`, `cannot read attribute ${path.join(t.abs(dev), "speed")}: ELOOP.`],
      );
    });

    it("a class directory an ordinary user may not read: warned, the other devices listed", function () {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      t.usb(uvcWebcam("1-3", 7));
      const locked = path.join(t.sys, "class", "video4linux");
      fs.chmodSync(locked, 0);
      const script = path.join(ROOT, "dist", "test", "fakes", "detect-child.js");
      const args = [script, t.sys, t.udevData, t.dev, t.proc, t.groupFile];
      let r;
      if (process.getuid?.() === 0) {
        fs.chmodSync(t.base, 0o755);
        r = spawnSync(process.execPath, args, { uid: 65534, gid: 65534, encoding: "utf8" });
      } else {
        r = spawnSync(process.execPath, args, { encoding: "utf8" });
      }
      if (r.status !== 0) this.skip();
      const out = JSON.parse(r.stdout) as { events: DeviceEvent[]; warnings: DetectorWarning[] };
      // The webcam is still a USB device; only its video nodes could not be found.
      assert.deepStrictEqual(
        out.events.map((e) => [e.id, e.nodes.video]),
        [
          ["usb-2341:0043-75630313536351A0F0E1", []],
          ["usb-046d:0825-A1B2C3D4", []],
        ],
      );
      assert.deepStrictEqual(
        out.warnings.map((w) => [w.code, w.message]),
        [["sysfs-unreadable", `cannot read directory ${locked}: permission denied. sysfs is normally readable by every user: is Node-RED confined (snap, AppArmor, a container)?`]],
      );
    });

    it("a udev record that cannot be read", () => {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      const rec = path.join(t.udevData, "c166:0");
      fs.unlinkSync(rec);
      fs.mkdirSync(rec);
      const { events, warnings } = run(t);
      assert.deepStrictEqual(events[0].nodes.serialById, []);
      assert.deepStrictEqual(
        warnings.map((w) => w.message),
        [`cannot read the udev record ${rec}: EISDIR`],
      );
    });
  });

  describe("missing roots", () => {
    it("no /run/udev: one warning that says what is lost; ids and nodes from sysfs alone", () => {
      const t = tree({ udev: false });
      t.usb(arduinoUno("1-1", 5));
      t.usb(ch340("1-2", 6));
      const { events, warnings, detector } = run(t);
      assert.deepStrictEqual(
        events.map((e) => [e.id, e.nodes.tty, e.nodes.serialById, e.properties.ID_SERIAL]),
        [
          ["usb-2341:0043-75630313536351A0F0E1", ["/dev/ttyACM0"], [], "Arduino__www.arduino.cc__0043_75630313536351A0F0E1"],
          ["usb-1a86:7523-port-1-2", ["/dev/ttyUSB0"], [], "1a86_USB2.0-Serial"],
        ],
      );
      assert.deepStrictEqual(
        warnings.map((w) => w.code),
        ["udev-missing"],
      );
      assert.match(warnings[0].message, /udevd is not running here .* so \/dev\/serial\/by-id links and udev's properties are not reported; ids and device nodes come from sysfs alone$/);
      detector.resync();
      assert.strictEqual(warnings.length, 1, "said once, not at every look");
      detector.stop();
    });

    it("a sysfs root that is not sysfs: one warning, no devices", () => {
      const t = tree();
      const { events, warnings } = run(t, { sysfsRoot: path.join(t.base, "nowhere") });
      assert.deepStrictEqual(events, []);
      assert.deepStrictEqual(
        warnings.map((w) => w.code),
        ["sysfs-missing"],
      );
    });

    it("a class link that points outside /sys/devices is ignored with a warning", () => {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      fs.symlinkSync("/etc", path.join(t.sys, "class", "tty", "evil"));
      const { events, warnings } = run(t);
      assert.strictEqual(events.length, 1);
      assert.deepStrictEqual(
        warnings.map((w) => w.code),
        ["sysfs-malformed"],
      );
      assert.match(warnings[0].message, /points to \/etc, outside \/sys\/devices: ignored$/);
    });
  });
});
