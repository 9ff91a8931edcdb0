// Hotplug: raw uevent bursts, in both wire formats, through a test source and
// the real parser, settling into one event per physical device on a clock the
// test moves.
import assert from "assert";
import fs from "fs";
import path from "path";
import { DetectorWarning, DeviceDetector, DeviceEvent } from "../lib/devices";
import { arduinoUno, ch340, FakeSysfs, hub, noSerial, uvcWebcam } from "./fakes/sysfs";
import { asKernel, asUdev, burst, kernelMessage, ManualClock, TestUeventSource } from "./fakes/uevents";

const SETTLE = 300;

interface Rig {
  tree: FakeSysfs;
  clock: ManualClock;
  source: TestUeventSource;
  detector: DeviceDetector;
  events: DeviceEvent[];
  warnings: DetectorWarning[];
  /** Sends messages 2 ms apart, as a burst arrives. */
  feed(messages: Buffer[], gapMs?: number): void;
}

function rig(setup?: (t: FakeSysfs) => void, options: Partial<ConstructorParameters<typeof DeviceDetector>[0]> = {}): Rig {
  const tree = new FakeSysfs();
  tree.controller(1);
  setup?.(tree);
  const clock = new ManualClock();
  const source = new TestUeventSource();
  const detector = new DeviceDetector({ ...tree.roots, clock, source, probe: tree.probe(), settleMs: SETTLE, ...options });
  const events: DeviceEvent[] = [];
  const warnings: DetectorWarning[] = [];
  detector.on("device", (e) => events.push(e));
  detector.on("warning", (w) => warnings.push(w));
  detector.start();
  return {
    tree,
    clock,
    source,
    detector,
    events,
    warnings,
    feed(messages, gapMs = 2) {
      for (const m of messages) {
        source.send(m);
        clock.advance(gapMs);
      }
    },
  };
}

const rigs: Rig[] = [];
function make(...args: Parameters<typeof rig>): Rig {
  const r = rig(...args);
  rigs.push(r);
  return r;
}

function strip(e: DeviceEvent): Partial<DeviceEvent> {
  const rest: Partial<DeviceEvent> = { ...e };
  delete rest.action;
  delete rest.timestamp;
  return rest;
}

describe("hotplug: uevent bursts settle into one event per device", () => {
  afterEach(() => {
    for (const r of rigs.splice(0)) {
      r.detector.stop();
      r.tree.cleanup();
    }
  });

  it("an Arduino's kernel events (device, interfaces, tty, binds) become one add, equal to what enumeration reports", () => {
    const r = make();
    assert.strictEqual(r.source.started, 1);
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    const messages = burst(r.tree.sys, devpath, "add");
    assert.deepStrictEqual(
      messages.map((m) => `${m.action} ${path.basename(m.devpath)}`),
      ["add 1-1", "add 1-1:1.0", "add ttyACM0", "bind 1-1:1.0", "add 1-1:1.1", "bind 1-1:1.1", "bind 1-1"],
    );
    r.feed(asKernel(messages));
    assert.strictEqual(r.events.length, 0, "nothing before the burst is quiet");
    r.clock.advance(SETTLE);
    assert.strictEqual(r.events.length, 1);
    const [add] = r.events;
    assert.strictEqual(add.action, "add");
    assert.strictEqual(add.id, "usb-2341:0043-75630313536351A0F0E1");
    assert.deepStrictEqual(add.nodes.tty, ["/dev/ttyACM0"]);
    const enumerated = new DeviceDetector({ ...r.tree.roots, probe: r.tree.probe() }).enumerate();
    assert.deepStrictEqual(strip(add), strip(enumerated[0]));
    assert.deepStrictEqual(r.detector.inventory().map((e) => e.id), [add.id]);
    r.clock.advance(10 * SETTLE);
    assert.strictEqual(r.events.length, 1, "and nothing more");
  });

  it("the same burst in udev's format gives the same single add", () => {
    const r = make();
    const devpath = r.tree.usb(uvcWebcam("1-3", 7));
    r.feed(asUdev(burst(r.tree.sys, devpath, "add")));
    r.clock.advance(SETTLE);
    assert.deepStrictEqual(
      r.events.map((e) => [e.action, e.id, e.nodes.video, e.nodes.videoMetadata]),
      [["add", "usb-046d:0825-A1B2C3D4", ["/dev/video0"], ["/dev/video1"]]],
    );
  });

  it("a remove burst gives one remove, as soon as the device itself goes, with what the device had", () => {
    const r = make((t) => t.usb(ch340("1-2", 6)));
    assert.strictEqual(r.detector.inventory().length, 1);
    const devpath = r.tree.devpathOf("1-2");
    const messages = burst(r.tree.sys, devpath, "remove");
    assert.deepStrictEqual(messages.at(-1)?.action, "remove");
    assert.strictEqual(path.basename(messages.at(-1)?.devpath ?? ""), "1-2");
    r.tree.unplug(devpath);
    r.feed(asKernel(messages));
    assert.deepStrictEqual(
      r.events.map((e) => [e.action, e.id, e.nodes.tty]),
      [["remove", "usb-1a86:7523-port-1-2", ["/dev/ttyUSB0"]]],
    );
    r.clock.advance(10 * SETTLE);
    assert.strictEqual(r.events.length, 1);
    assert.deepStrictEqual(r.detector.inventory(), []);
  });

  it("a device plugged and pulled within the settle time is never reported", () => {
    const r = make();
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    const add = burst(r.tree.sys, devpath, "add");
    const remove = burst(r.tree.sys, devpath, "remove");
    r.feed(asKernel(add));
    r.tree.unplug(devpath);
    r.feed(asKernel(remove));
    r.clock.advance(10 * SETTLE);
    assert.deepStrictEqual(r.events, []);
  });

  it("a hub and its three devices, their bursts interleaved, give four adds", () => {
    const r = make();
    const paths = [r.tree.usb(hub("1-5", 9)), r.tree.usb(noSerial("1-5.1", 10)), r.tree.usb(ch340("1-5.2", 11)), r.tree.usb(arduinoUno("1-5.3", 12))];
    const bursts = paths.map((p) => asUdev(burst(r.tree.sys, p, "add")));
    const merged: Buffer[] = [];
    for (let i = 0; bursts.some((b) => i < b.length); i++) for (const b of bursts) if (i < b.length) merged.push(b[i]);
    r.feed(merged);
    r.clock.advance(SETTLE);
    assert.deepStrictEqual(r.events.map((e) => `${e.action} ${e.usb?.port}`).sort(), ["add 1-5", "add 1-5.1", "add 1-5.2", "add 1-5.3"]);
    assert.deepStrictEqual(r.events.find((e) => e.usb?.port === "1-5")?.nodes.tty, [], "the hub owns none of its children's nodes");
  });

  it("a child's events after the add (driver unbound, tty gone) give one change", () => {
    const r = make((t) => t.usb(arduinoUno("1-1", 5)));
    const dev = r.tree.devpathOf("1-1");
    const itf = `${dev}/1-1:1.0`;
    const tty = `${itf}/tty/ttyACM0`;
    r.tree.unplug(tty);
    r.tree.unbind(itf);
    r.feed([kernelMessage("remove", tty, { SUBSYSTEM: "tty", DEVNAME: "ttyACM0" }), kernelMessage("unbind", itf, { SUBSYSTEM: "usb", DEVTYPE: "usb_interface" })]);
    r.clock.advance(SETTLE);
    assert.strictEqual(r.events.length, 1);
    const [change] = r.events;
    assert.strictEqual(change.action, "change");
    assert.deepStrictEqual(change.nodes.tty, []);
    assert.deepStrictEqual(change.usb?.interfaces.map((i) => i.driver), [null, "cdc_acm"]);
  });

  it("events that change nothing (a udev 'change' re-run) emit nothing", () => {
    const r = make((t) => t.usb(arduinoUno("1-1", 5)));
    const dev = r.tree.devpathOf("1-1");
    r.feed([kernelMessage("change", `${dev}/1-1:1.0/tty/ttyACM0`, { SUBSYSTEM: "tty" })]);
    r.clock.advance(SETTLE);
    assert.deepStrictEqual(r.events, []);
  });

  it("with kernel events, an add waits until its nodes are usable, then goes", () => {
    const r = make();
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    const node = path.join(r.tree.dev, "ttyACM0");
    fs.unlinkSync(node);
    r.feed(asKernel(burst(r.tree.sys, devpath, "add")));
    r.clock.advance(SETTLE + 500);
    assert.strictEqual(r.events.length, 0, "no /dev/ttyACM0 yet");
    r.tree.devNode("ttyACM0", 20);
    r.clock.advance(50);
    assert.deepStrictEqual(r.events.map((e) => [e.action, e.diagnostics]), [["add", []]]);
  });

  it("the wait is bounded: after nodeWaitMs the add goes anyway, saying what is wrong", () => {
    const r = make(undefined, { nodeWaitMs: 1000 });
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    fs.unlinkSync(path.join(r.tree.dev, "ttyACM0"));
    r.feed(asKernel(burst(r.tree.sys, devpath, "add")));
    r.clock.advance(SETTLE + 900);
    assert.strictEqual(r.events.length, 0);
    r.clock.advance(100);
    assert.strictEqual(r.events.length, 1);
    assert.deepStrictEqual(r.events[0].diagnostics.map((d) => [d.code, d.node]), [["missing-node", "/dev/ttyACM0"]]);
  });

  it("udev's events come after the nodes exist, so an add does not wait", () => {
    const r = make();
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    fs.unlinkSync(path.join(r.tree.dev, "ttyACM0"));
    r.feed(asUdev(burst(r.tree.sys, devpath, "add")));
    r.clock.advance(SETTLE);
    assert.strictEqual(r.events.length, 1);
  });

  it("a burst that never goes quiet is read after maxSettleMs", () => {
    const r = make(undefined, { maxSettleMs: 2000 });
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    const change = kernelMessage("change", `${devpath}/1-1:1.0`, { SUBSYSTEM: "usb" });
    r.feed(asUdev(burst(r.tree.sys, devpath, "add")));
    for (let i = 0; i < 30 && r.events.length === 0; i++) r.feed([change], 100);
    assert.strictEqual(r.events.length, 1);
    assert.ok(r.clock.now() - 1_700_000_000_000 <= 2000 + 100, `emitted at +${r.clock.now() - 1_700_000_000_000} ms`);
  });

  it("the same device on the same port after an unseen remove: remove, then add", () => {
    const r = make((t) => t.usb(arduinoUno("1-1", 5)));
    const dev = r.tree.devpathOf("1-1");
    r.tree.unplug(dev);
    const other = r.tree.usb(ch340("1-1", 7));
    r.feed(asUdev(burst(r.tree.sys, other, "add")));
    r.clock.advance(SETTLE);
    assert.deepStrictEqual(
      r.events.map((e) => `${e.action} ${e.id}`),
      ["remove usb-2341:0043-75630313536351A0F0E1", "add usb-1a86:7523-port-1-1"],
    );
  });

  it("lost messages (overflow) make it read everything again and report the difference", () => {
    const r = make((t) => {
      t.usb(arduinoUno("1-1", 5));
      t.usb(ch340("1-2", 6));
    });
    r.tree.unplug(r.tree.devpathOf("1-2"));
    r.tree.usb(uvcWebcam("1-3", 7));
    r.source.emit("overflow", 12);
    assert.deepStrictEqual(r.events.map((e) => `${e.action} ${e.id}`).sort(), ["add usb-046d:0825-A1B2C3D4", "remove usb-1a86:7523-port-1-2"]);
    assert.match(r.warnings.map((w) => w.message).join("\n"), /12 uevents were lost/);
  });

  it("ignores events for devices it does not report, and root hubs", () => {
    const r = make();
    r.feed([
      kernelMessage("add", "/devices/pci0000:00/0000:00:14.0/usb1", { SUBSYSTEM: "usb", DEVTYPE: "usb_device" }),
      kernelMessage("add", "/devices/virtual/net/lo", { SUBSYSTEM: "net" }),
      kernelMessage("add", "/module/cdc_acm", { SUBSYSTEM: "module" }),
      kernelMessage("add", "/devices/virtual/tty/tty5", { SUBSYSTEM: "tty" }),
      kernelMessage("change", "/devices/system/cpu/cpu1", { SUBSYSTEM: "cpu" }),
    ]);
    r.clock.advance(10 * SETTLE);
    assert.deepStrictEqual(r.events, []);
    assert.deepStrictEqual(r.warnings, []);
  });

  it("stops the source and its timers on stop, and starts clean again", () => {
    const r = make();
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    r.feed(asKernel(burst(r.tree.sys, devpath, "add")));
    r.detector.stop();
    assert.strictEqual(r.source.stopped, 1);
    assert.strictEqual(r.clock.pending, 0);
    r.clock.advance(10 * SETTLE);
    assert.deepStrictEqual(r.events, []);
    assert.strictEqual(r.source.listenerCount("message"), 0);
    const again = r.detector.start();
    assert.deepStrictEqual(again.map((e) => e.id), ["usb-2341:0043-75630313536351A0F0E1"]);
  });

  it("a source that cannot start: devices are still listed, with one warning", () => {
    const tree = new FakeSysfs();
    try {
      tree.usb(arduinoUno("1-1", 5));
      const source = new TestUeventSource();
      source.failStart = new Error("netlink: permission denied");
      const d = new DeviceDetector({ ...tree.roots, source, probe: tree.probe(), clock: new ManualClock() });
      const warnings: string[] = [];
      d.on("warning", (w) => warnings.push(`${w.code}: ${w.message}`));
      assert.strictEqual(d.start().length, 1);
      assert.strictEqual(d.hotplug, false);
      assert.deepStrictEqual(warnings, ["hotplug-unavailable: hotplug is unavailable (netlink: permission denied): devices are listed, changes are not followed"]);
      d.stop();
    } finally {
      tree.cleanup();
    }
  });

  it("a device listener that throws does not stop the detector", () => {
    const r = make();
    r.detector.on("device", () => {
      throw new Error("flow bug");
    });
    const devpath = r.tree.usb(arduinoUno("1-1", 5));
    r.feed(asUdev(burst(r.tree.sys, devpath, "add")));
    r.clock.advance(SETTLE);
    assert.strictEqual(r.events.length, 1);
    assert.match(r.warnings.map((w) => w.message).join(), /a device listener failed: flow bug/);
  });
});
