// Enumeration under umockdev (Debian package umockdev): each recording of a
// real machine in ../shared/peer-tests is loaded by `umockdev-run`, which
// builds its own sysfs testbed from it and preloads its redirection library,
// and the production detector enumerates it in that process
// (test/fakes/umockdev-child.ts). Unlike test/devices-peer.test.ts, which
// writes the trees itself, the tree here is umockdev's, and the expected
// event of each USB device is read off the recording: ids, descriptor
// strings, bus numbers, speed, interfaces, device nodes and subsystem.
//
// Which of Node's file calls umockdev redirects, and why the detector is
// pointed at $UMOCKDEV_DIR/sys when readdir is not, is in the child script.
//
// Hotplug: the preload also gives the addon's netlink socket to the testbed,
// so the uevents umockdev_testbed_uevent() sends (through the umockdev
// library's Python binding, test/fakes/umockdev-hotplug.py) reach the real
// monitor thread and the detector settles them into events.
import assert from "assert";
import { spawnSync } from "child_process";
import fs from "fs";
import path from "path";
import type { DetectorWarning, DeviceEvent } from "../lib/devices";
import { NetlinkUeventSource } from "../lib/hotplug/netlink";
import { DumpDevice, parseDump } from "./fakes/udevdump";
import { ROOT } from "./support/rings";

const PEER = path.resolve(ROOT, "..", "shared", "peer-tests");
const CHILD = path.join(ROOT, "dist", "test", "fakes", "umockdev-child.js");
const USB_DEVICE = /^\d+-\d+(\.\d+)*$/;
const INTERFACE = /:(\d+)\.(\d+)$/;

interface ChildReport {
  sysfsRoot: string;
  redirected: Record<"readdir" | "opendir" | "access" | "stat" | "readlink" | "open", boolean>;
  events: DeviceEvent[];
  warnings: DetectorWarning[];
}

/** Why this machine cannot run the test, if it cannot. */
function unavailable(): string | undefined {
  if (!fs.existsSync(PEER)) return `${PEER} is absent (the recordings live in the shared folder beside the repository)`;
  const r = spawnSync("umockdev-run", ["--version"], { encoding: "utf8" });
  if (r.error) return "umockdev-run is not installed (Debian: apt-get install umockdev)";
  return undefined;
}

function recordings(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.name.endsWith(".umockdev") || d.name === "device") out.push(p);
    }
  };
  if (fs.existsSync(path.join(PEER, "umockdev"))) walk(path.join(PEER, "umockdev"));
  if (fs.existsSync(path.join(PEER, "usbguard", "devices.umockdev"))) out.push(path.join(PEER, "usbguard", "devices.umockdev"));
  return out;
}

function runUnderUmockdev(file: string): ChildReport {
  const r = spawnSync("umockdev-run", ["-d", file, "--", process.execPath, CHILD], { encoding: "utf8", maxBuffer: 64 << 20 });
  assert.strictEqual(r.status, 0, `umockdev-run -d ${file} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ChildReport;
}

// ---- what the recording says -------------------------------------------------

const str = (d: DumpDevice, name: string): string | undefined => d.attrs[name]?.toString("utf8").replace(/\n$/, "");
const text = (v: string | undefined): string | null => (v?.trim() ? v.trim() : null);
const num = (v: string | undefined): number | null => (v !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : null);
const hex2 = (v: string | undefined): string | undefined => (v === undefined ? undefined : v.trim().toLowerCase());

interface Expected {
  port: string;
  vid: string;
  pid: string;
  manufacturer: string | null;
  product: string | null;
  serial: string | null;
  busnum: number | null;
  devnum: number | null;
  speed: number | null;
  interfaces: Array<{ class: string | undefined; subclass: string | undefined; protocol: string | undefined; driver: string | null }> | undefined;
  nodes: Record<"tty" | "video" | "audio" | "hidraw", string[]>;
  subsystem: string;
  path: string | null;
}

function nodeOf(d: DumpDevice): string | undefined {
  const name = d.props.DEVNAME ?? d.node;
  if (!name) return undefined;
  return name.startsWith("/") ? name : `/dev/${name}`;
}

/** The USB devices of a recording, root hubs aside, as an event should describe them. */
function expectedDevices(devices: DumpDevice[]): Expected[] {
  const usb = devices.filter((d) => d.props.DEVTYPE === "usb_device" && USB_DEVICE.test(path.posix.basename(d.devpath)));
  const ownerOf = (devpath: string) =>
    usb
      .map((u) => u.devpath)
      .filter((u) => devpath.startsWith(u + "/"))
      .sort((a, b) => b.length - a.length)[0];
  return usb.map((u) => {
    const port = path.posix.basename(u.devpath);
    const [pv, pp] = (u.props.PRODUCT ?? "").split("/");
    const nodes: Expected["nodes"] = { tty: [], video: [], audio: [], hidraw: [] };
    for (const d of devices) {
      const node = nodeOf(d);
      if (!node || ownerOf(d.devpath) !== u.devpath) continue;
      const sub = d.props.SUBSYSTEM;
      if (sub === "tty") nodes.tty.push(node);
      else if (sub === "video4linux" && /\/video\d+$/.test(d.devpath)) nodes.video.push(node);
      else if (sub === "sound" && /\/pcmC\d+D\d+[cp]$/.test(d.devpath)) nodes.audio.push(node);
      else if (sub === "hidraw") nodes.hidraw.push(node);
    }
    const itfs = devices
      .filter((d) => d.props.DEVTYPE === "usb_interface" && path.posix.dirname(d.devpath) === u.devpath && INTERFACE.test(d.devpath))
      .sort((a, b) => {
        const ma = INTERFACE.exec(a.devpath) as RegExpExecArray;
        const mb = INTERFACE.exec(b.devpath) as RegExpExecArray;
        return Number(ma[1]) - Number(mb[1]) || Number(ma[2]) - Number(mb[2]);
      });
    const main = nodes.tty[0] ?? nodes.video[0] ?? nodes.audio[0] ?? nodes.hidraw[0];
    return {
      port,
      vid: hex2(str(u, "idVendor")) ?? pv.padStart(4, "0"),
      pid: hex2(str(u, "idProduct")) ?? pp.padStart(4, "0"),
      manufacturer: text(str(u, "manufacturer")),
      product: text(str(u, "product")),
      serial: text(str(u, "serial")),
      busnum: num(str(u, "busnum")) ?? num(u.props.BUSNUM),
      devnum: num(str(u, "devnum")) ?? num(u.props.DEVNUM),
      speed: num(str(u, "speed")),
      interfaces: itfs.length
        ? itfs.map((i) => ({
            class: hex2(str(i, "bInterfaceClass")),
            subclass: hex2(str(i, "bInterfaceSubClass")),
            protocol: hex2(str(i, "bInterfaceProtocol")),
            driver: i.sysLinks.driver ? path.posix.basename(i.sysLinks.driver) : (i.props.DRIVER ?? null),
          }))
        : undefined,
      nodes,
      subsystem: nodes.tty.length ? "tty" : nodes.video.length ? "video4linux" : nodes.audio.length ? "sound" : nodes.hidraw.length ? "hidraw" : "usb",
      path: main ?? nodeOf(u) ?? null,
    };
  });
}

describe("umockdev: enumeration inside umockdev-run's testbed (reads ../shared/peer-tests)", function () {
  const why = unavailable();
  const files = why ? [] : recordings();
  if (why || files.length === 0) {
    it(`enumerates every recording [skipped: ${why ?? `no recording under ${PEER}`}]`, function () {
      this.skip();
    });
    return;
  }

  const reports = new Map<string, ChildReport>();
  const report = (file: string): ChildReport => {
    let r = reports.get(file);
    if (!r) reports.set(file, (r = runUnderUmockdev(file)));
    return r;
  };

  it("reaches the testbed: umockdev redirects open, readlink and access for Node's fs", function () {
    const r = report(path.join(PEER, "umockdev", "martinpitt-umockdev", "devices", "hidraw", "fido2.umockdev"));
    assert.deepStrictEqual({ open: r.redirected.open, readlink: r.redirected.readlink, access: r.redirected.access }, { open: true, readlink: true, access: true });
    // Without readdir, /sys cannot be listed through the preload: the detector then reads the testbed's directory.
    assert.strictEqual(r.sysfsRoot, r.redirected.readdir ? "/sys" : "$UMOCKDEV_DIR/sys");
  });

  for (const file of files) {
    it(`${path.relative(PEER, file)}: each USB device once, as the recording describes it`, function () {
      const { events, warnings } = report(file);
      assert.deepStrictEqual(warnings, []);
      const expected = expectedDevices(parseDump(fs.readFileSync(file, "utf8")));
      // Nothing but the recording's USB devices: its input devices off USB have no node devplane reports.
      assert.deepStrictEqual(events.map((e) => e.usb?.port).sort(), expected.map((x) => x.port).sort());
      for (const x of expected) {
        const e = events.find((ev) => ev.usb?.port === x.port) as DeviceEvent;
        const usb = e.usb;
        assert.ok(usb, x.port);
        assert.deepStrictEqual(
          {
            vid: usb.vid,
            pid: usb.pid,
            manufacturer: usb.manufacturer,
            product: usb.product,
            serial: usb.serial,
            busnum: usb.busnum,
            devnum: usb.devnum,
            speed: usb.speed,
            subsystem: e.subsystem,
            path: e.path,
            nodes: { tty: e.nodes.tty, video: e.nodes.video, audio: e.nodes.audio.map((a) => a.path), hidraw: e.nodes.hidraw },
          },
          {
            vid: x.vid,
            pid: x.pid,
            manufacturer: x.manufacturer,
            product: x.product,
            serial: x.serial,
            busnum: x.busnum,
            devnum: x.devnum,
            speed: x.speed,
            subsystem: x.subsystem,
            path: x.path,
            nodes: x.nodes,
          },
          `${x.port} (${x.vid}:${x.pid})`,
        );
        if (x.interfaces) assert.deepStrictEqual(usb.interfaces, x.interfaces, `${x.port}: interfaces`);
        assert.strictEqual(e.syspath.endsWith(`/${x.port}`), true, e.syspath);
        // The testbed has every node the recording has, so none is reported missing.
        assert.deepStrictEqual(
          e.diagnostics.filter((d) => d.code === "missing-node"),
          [],
        );
      }
    });
  }
});

/** A Python that has umockdev's GObject binding (Debian: python3-gi, gir1.2-umockdev-1.0). */
function pythonWithUmockdev(): string | undefined {
  for (const py of ["python3", "/usr/bin/python3"]) {
    const r = spawnSync(py, ["-c", "import gi; gi.require_version('UMockdev', '1.0'); from gi.repository import UMockdev"], { encoding: "utf8" });
    if (r.status === 0) return py;
  }
  return undefined;
}

describe("umockdev: hotplug through the netlink monitor, with the testbed's uevents", function () {
  const FIDO = path.join(PEER, "umockdev", "martinpitt-umockdev", "devices", "hidraw", "fido2.umockdev");
  const KEY = "/devices/pci0000:00/0000:00:08.1/0000:05:00.3/usb1/1-2/1-2.3";

  function hotplugUnavailable(): string | undefined {
    const why = unavailable();
    if (why) return why;
    if (!fs.existsSync(FIDO)) return `${FIDO} is absent`;
    let monitor = false;
    try {
      monitor = NetlinkUeventSource.available();
    } catch {
      monitor = false;
    }
    if (!monitor) return "the addon has no uevent monitor (or did not load)";
    // The monitor accepts uevents only from root, and the testbed's come from this process's user.
    if (process.getuid?.() !== 0) return "not root: the monitor takes uevents from root senders only";
    if (!pythonWithUmockdev()) return "no Python with umockdev's binding (Debian: apt-get install python3-gi gir1.2-umockdev-1.0)";
    return undefined;
  }

  it("unplug then replug of the Yubico key: one remove, then one add, each with its hidraw node", function () {
    const why = hotplugUnavailable();
    if (why) {
      if (this.test) this.test.title += ` [skipped: ${why}]`;
      this.skip();
    }
    const r = spawnSync(
      pythonWithUmockdev() as string,
      [path.join(ROOT, "test", "fakes", "umockdev-hotplug.py"), FIDO, KEY, process.execPath, path.join(ROOT, "dist", "test", "fakes", "umockdev-hotplug-child.js")],
      { encoding: "utf8", maxBuffer: 64 << 20, env: { ...process.env, LD_PRELOAD: "libumockdev-preload.so.0" } },
    );
    assert.strictEqual(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const lines = r.stdout.split("\n").filter(Boolean);
    assert.strictEqual(lines[lines.length - 1], "DONE");
    const ready = lines.find((l) => l.startsWith("READY ")) as string;
    const present = JSON.parse(ready.slice(6)) as DeviceEvent[];
    const id = "usb-1050:0120-port-1-2.3";
    assert.ok(present.some((e) => e.id === id), "the key is present at start");
    const events = lines.filter((l) => l.startsWith("EVENT ")).map((l) => JSON.parse(l.slice(6)) as DeviceEvent);
    assert.deepStrictEqual(
      events.map((e) => [e.action, e.id, e.subsystem, e.path, e.nodes.hidraw, `${e.usb?.vid}:${e.usb?.pid}`, e.usb?.product]),
      [
        ["remove", id, "hidraw", "/dev/hidraw5", ["/dev/hidraw5"], "1050:0120", "Security Key by Yubico"],
        ["add", id, "hidraw", "/dev/hidraw5", ["/dev/hidraw5"], "1050:0120", "Security Key by Yubico"],
      ],
    );
    assert.deepStrictEqual(
      lines.filter((l) => l.startsWith("WARN ")),
      [],
    );
  });
});
