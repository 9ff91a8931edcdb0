// Diagnostics: the problems hobbyists hit most, found from sysfs, /dev, /proc
// and the group database, each phrased as what to do.
import assert from "assert";
import { spawnSync } from "child_process";
import fs from "fs";
import path from "path";
import { DeviceDetector, DeviceEvent, HostProbe, SystemProbe } from "../lib/devices";
import { arduinoUno, ch340, FakeSysfs, hub, noSerial, usbMicrophone } from "./fakes/sysfs";
import { ManualClock } from "./fakes/uevents";
import { ROOT } from "./support/rings";

const trees: FakeSysfs[] = [];
function tree(): FakeSysfs {
  const t = new FakeSysfs();
  trees.push(t);
  return t;
}

function enumerate(t: FakeSysfs, probe: HostProbe = t.probe()): DeviceEvent[] {
  return new DeviceDetector({ ...t.roots, probe, clock: new ManualClock() }).enumerate();
}

/** A process in the fake /proc with these files open. */
function fakeProcess(t: FakeSysfs, pid: number, comm: string, open: string[] | "hidden"): void {
  const dir = path.join(t.proc, String(pid));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "comm"), comm + "\n");
  if (open === "hidden") {
    // What a root process's fd directory is to an ordinary user: not listable.
    fs.writeFileSync(path.join(dir, "fd"), "");
    return;
  }
  fs.mkdirSync(path.join(dir, "fd"));
  fs.symlinkSync("/dev/null", path.join(dir, "fd", "0"));
  open.forEach((target, i) => fs.symlinkSync(target, path.join(dir, "fd", String(i + 3))));
}

/** The real probe, except for what access() and user() answer. */
function probeWith(t: FakeSysfs, over: Partial<HostProbe>): HostProbe {
  const real = t.probe();
  return {
    access: over.access ?? ((n) => real.access(n)),
    nodeGroup: over.nodeGroup ?? ((n) => real.nodeGroup(n)),
    user: over.user ?? (() => real.user()),
    groupMembers: over.groupMembers ?? ((g) => real.groupMembers(g)),
    scanProcesses: over.scanProcesses ?? ((n) => real.scanProcesses(n)),
  };
}

describe("device diagnostics", () => {
  after(() => {
    for (const t of trees.splice(0)) t.cleanup();
  });

  describe("a node this user cannot open", () => {
    it("names the group to join", () => {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      const probe = probeWith(t, { access: (n) => (n === "/dev/ttyACM0" ? "EACCES" : undefined), user: () => ({ name: "pi", gids: [1000] }) });
      const [ev] = enumerate(t, probe);
      assert.deepStrictEqual(ev.diagnostics, [
        {
          code: "permission",
          severity: "error",
          node: "/dev/ttyACM0",
          group: "dialout",
          message: "pi cannot open /dev/ttyACM0, which belongs to group dialout: run sudo usermod -aG dialout pi, then restart Node-RED (log out and back in if you start it by hand).",
        },
      ]);
    });

    it("says to restart when the user joined the group after Node-RED started", () => {
      const t = tree();
      t.usb(uvcWebcamLike());
      fs.writeFileSync(t.groupFile, "root:x:0:\ndialout:x:20:\nvideo:x:44:pi,alice\n");
      const probe = probeWith(t, { access: (n) => (n === "/dev/video0" ? "EACCES" : undefined), user: () => ({ name: "pi", gids: [1000, 20] }) });
      const [ev] = enumerate(t, probe);
      assert.strictEqual(ev.diagnostics.length, 1);
      assert.strictEqual(ev.diagnostics[0].group, "video");
      assert.match(ev.diagnostics[0].message, /^pi is already in group video, which owns \/dev\/video0, but Node-RED was started before that: restart Node-RED/);
    });

    it("for a root-only node (hidraw), gives the udev rule that opens it to a group", () => {
      const t = tree();
      t.usb(noSerial("1-1", 4));
      const probe = probeWith(t, { access: (n) => (n.startsWith("/dev/hidraw") ? "EACCES" : undefined), user: () => ({ name: "pi", gids: [1000] }) });
      const [ev] = enumerate(t, probe);
      assert.strictEqual(ev.diagnostics[0].code, "permission");
      assert.match(ev.diagnostics[0].message, /^Only root can open \/dev\/hidraw4\./);
      assert.match(ev.diagnostics[0].message, /SUBSYSTEM=="hidraw", ATTRS\{idVendor\}=="1234", ATTRS\{idProduct\}=="5678", MODE="0660", GROUP="plugdev"/);
      assert.match(ev.diagnostics[0].message, /sudo udevadm control --reload && sudo udevadm trigger/);
    });

    it("is found for real by an ordinary user (a child process without root)", function () {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      const script = path.join(ROOT, "dist", "test", "fakes", "detect-child.js");
      const args = [script, t.sys, t.udevData, t.dev, t.proc, t.groupFile];
      let out: string;
      if (process.getuid?.() === 0) {
        fs.chmodSync(t.base, 0o755);
        const r = spawnSync(process.execPath, args, { uid: 65534, gid: 65534, encoding: "utf8" });
        if (r.status !== 0) this.skip(); // nobody cannot run node from here
        out = r.stdout;
      } else {
        fs.chmodSync(path.join(t.dev, "ttyACM0"), 0);
        out = spawnSync(process.execPath, args, { encoding: "utf8" }).stdout;
      }
      const result = JSON.parse(out) as { uid: number; events: DeviceEvent[] };
      assert.notStrictEqual(result.uid, 0);
      const [d] = result.events[0].diagnostics;
      assert.strictEqual(d.code, "permission");
      assert.strictEqual(d.node, "/dev/ttyACM0");
      if (process.getuid?.() === 0) assert.strictEqual(d.group, "dialout");
      assert.match(d.message, /cannot open \/dev\/ttyACM0/);
    });
  });

  it("a node sysfs lists but /dev lacks: says to pass it into the container", () => {
    const t = tree();
    t.usb(arduinoUno("1-1", 5));
    fs.unlinkSync(path.join(t.dev, "ttyACM0"));
    const [ev] = enumerate(t);
    assert.deepStrictEqual(
      ev.diagnostics.map((d) => [d.code, d.node]),
      [["missing-node", "/dev/ttyACM0"]],
    );
    assert.match(ev.diagnostics[0].message, /docker run --device=\/dev\/ttyACM0/);
  });

  describe("a port another process holds (found in /proc/*/fd)", () => {
    it("ModemManager: names it and says how to stop it or keep it away", () => {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      fakeProcess(t, 812, "ModemManager", ["socket:[1234]", "/dev/ttyACM0"]);
      const [ev] = enumerate(t);
      assert.deepStrictEqual(ev.diagnostics, [
        {
          code: "busy",
          severity: "error",
          node: "/dev/ttyACM0",
          process: { pid: 812, name: "ModemManager" },
          message:
            "ModemManager (pid 812) has /dev/ttyACM0 open: it probes new serial ports for modems. Stop it with sudo systemctl stop ModemManager " +
            "(and sudo systemctl disable ModemManager to keep it off), or keep it away from this device with a udev rule: " +
            'ATTRS{idVendor}=="2341", ATTRS{idProduct}=="0043", ENV{ID_MM_DEVICE_IGNORE}="1".',
        },
      ]);
    });

    it("brltty, a login console, any other program; never this process", () => {
      const t = tree();
      t.usb(ch340("1-2", 6));
      t.usb(arduinoUno("1-1", 5));
      t.platform("/devices/pnp0/00:04", "pnp", "serial");
      t.attr(t.tty("/devices/pnp0/00:04", { name: "ttyS0" }), "type", "4");
      fakeProcess(t, 700, "brltty", ["/dev/ttyUSB0"]);
      fakeProcess(t, 701, "agetty", ["/dev/ttyS0"]);
      fakeProcess(t, 702, "minicom", ["/dev/ttyACM0"]);
      fakeProcess(t, process.pid, "node-red", ["/dev/ttyACM0"]);
      const byId = Object.fromEntries(enumerate(t).map((e) => [e.id, e.diagnostics]));
      const uno = byId["usb-2341:0043-75630313536351A0F0E1"];
      assert.deepStrictEqual(uno.map((d) => [d.code, d.process]), [["busy", { pid: 702, name: "minicom" }]]);
      assert.strictEqual(uno[0].message, "minicom (pid 702) has /dev/ttyACM0 open: close that program, or stop it with kill 702, before using the device here.");
      assert.match(byId["usb-1a86:7523-port-1-2"][0].message, /^brltty \(pid 700\), the braille display daemon, has \/dev\/ttyUSB0 open\. If you use no braille display: sudo systemctl stop brltty-udev.service brltty.service && sudo systemctl mask brltty-udev.service/);
      assert.match(byId["pnp-00:04"][0].message, /^A login console \(agetty, pid 701\) runs on \/dev\/ttyS0: turn it off with sudo systemctl disable --now serial-getty@ttyS0.service/);
    });

    it("ModemManager running as root, its files hidden from this user: a warning that it may hold new ports", () => {
      const t = tree();
      t.usb(arduinoUno("1-1", 5));
      fakeProcess(t, 812, "ModemManager", "hidden");
      const [ev] = enumerate(t);
      assert.deepStrictEqual(
        ev.diagnostics.map((d) => [d.code, d.severity, d.process?.name]),
        [["may-be-busy", "warning", "ModemManager"]],
      );
      assert.match(ev.diagnostics[0].message, /ENV\{ID_MM_DEVICE_IGNORE\}="1"/);
    });
  });

  describe("a device without a driver", () => {
    it("a CH340 whose interface brltty took (usbfs): names brltty and how to remove it", () => {
      const t = tree();
      const dev = t.usb({ ...ch340("1-2", 6), interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: "usbfs" }] });
      assert.ok(dev);
      fakeProcess(t, 700, "brltty", ["/dev/bus/usb/001/006"]);
      const [ev] = enumerate(t);
      assert.deepStrictEqual(ev.nodes.tty, []);
      assert.deepStrictEqual(
        ev.diagnostics.map((d) => [d.code, d.process]),
        [["brltty", { pid: 700, name: "brltty" }]],
      );
      assert.match(ev.diagnostics[0].message, /^brltty \(pid 700\), the braille display daemon, has taken USB2.0-Serial \(1a86:7523\), so no serial port appears\./);
    });

    it("a CH340 with no driver while brltty runs: brltty", () => {
      const t = tree();
      t.usb({ ...ch340("1-2", 6), interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: null }] });
      fakeProcess(t, 700, "brltty", []);
      assert.deepStrictEqual(
        enumerate(t)[0].diagnostics.map((d) => d.code),
        ["brltty"],
      );
    });

    it("a CH340 with no driver and no brltty: the module to load", () => {
      const t = tree();
      t.usb({ ...ch340("1-2", 6), interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: null }] });
      const [d] = enumerate(t)[0].diagnostics;
      assert.strictEqual(d.code, "no-driver");
      assert.match(d.message, /^No kernel driver is bound to USB2.0-Serial \(1a86:7523\): load it with sudo modprobe ch341;/);
    });

    it("a vendor-specific device without a driver: says that libusb programs need none", () => {
      const t = tree();
      t.usb({ ...noSerial("1-1", 4), interfaces: [{ class: "ff", driver: null }] });
      const [d] = enumerate(t)[0].diagnostics;
      assert.strictEqual(d.code, "no-driver");
      assert.match(d.message, /a program that talks to it through libusb needs none/);
    });

    it("another program claimed it through libusb: names that program", () => {
      const t = tree();
      t.usb({ ...noSerial("1-1", 4), interfaces: [{ class: "ff", driver: "usbfs" }] });
      fakeProcess(t, 900, "rtl_sdr", ["/dev/bus/usb/001/004"]);
      const [d] = enumerate(t)[0].diagnostics;
      assert.deepStrictEqual([d.code, d.process], ["claimed", { pid: 900, name: "rtl_sdr" }]);
      assert.match(d.message, /^rtl_sdr \(pid 900\) has claimed Gadget \(1234:5678\) through libusb/);
    });

    it("a device with some interfaces driven is fine, and a hub's own interface does not count", () => {
      const t = tree();
      t.usb({ ...usbMicrophone("1-4", 8) });
      const [ev] = enumerate(t);
      assert.deepStrictEqual(ev.diagnostics, []);
    });
  });

  it("looks at /proc once for all devices, and not at all when no device needs it", () => {
    const t = tree();
    t.usb(arduinoUno("1-1", 5));
    t.usb(ch340("1-2", 6));
    let scans = 0;
    const real = t.probe();
    const counting = probeWith(t, {
      scanProcesses: (n) => {
        scans++;
        return real.scanProcesses(n);
      },
    });
    enumerate(t, counting);
    assert.strictEqual(scans, 1);
    const quiet = tree();
    quiet.usb(hub("1-5", 9));
    quiet.usb({ ...usbMicrophone("1-5.1", 10), interfaces: [{ class: "01", subclass: "01", driver: "snd-usb-audio", sound: { card: 2, id: "Mic", pcm: [{ device: 0, capture: true }] } }] });
    scans = 0;
    enumerate(quiet, probeWith(quiet, { scanProcesses: (n) => (scans++, quiet.probe().scanProcesses(n)) }));
    assert.strictEqual(scans, 0);
  });

  it("the real probe maps /dev paths under its dev root and reads the group file", () => {
    const t = tree();
    t.usb(arduinoUno("1-1", 5));
    const probe = new SystemProbe({ devRoot: t.dev, procRoot: t.proc, groupFile: t.groupFile });
    assert.strictEqual(probe.local("/dev/ttyACM0"), path.join(t.dev, "ttyACM0"));
    assert.strictEqual(probe.access("/dev/ttyACM0"), undefined);
    assert.strictEqual(probe.access("/dev/nothing"), "ENOENT");
    if (process.getuid?.() === 0) assert.deepStrictEqual(probe.nodeGroup("/dev/ttyACM0"), { gid: 20, name: "dialout" });
    assert.deepStrictEqual(probe.groupMembers("video"), []);
  });
});

function uvcWebcamLike() {
  return {
    port: "1-3",
    vid: "046d",
    pid: "0825",
    serial: "X1",
    devnum: 7,
    interfaces: [{ class: "0e", subclass: "01", driver: "uvcvideo", video: [{ name: "video0", index: 0 }] }],
  };
}
