// device-detect in a Node-RED runtime (node-red-node-test-helper): the
// inventory on deploy and on request, hotplug events, filters, warnings, the
// admin route, and one shared detector for all nodes.
import assert from "assert";
import fs from "fs";
import path from "path";
import type { Node, NodeMessage } from "node-red";
import { DeviceEvent, netlinkSource, runningDetector, setUeventSourceFactory } from "../lib/devices";
import { addon } from "../lib/native";
import { arduinoUno, ch340, FakeSysfs, fullTree } from "./fakes/sysfs";
import { asUdev, burst, TestUeventSource } from "./fakes/uevents";
import { detectNodes as nodes, helper } from "./support/red";
import { eventually, ROOT } from "./support/rings";
import { collect, statuses } from "./support/flow";

type Msg = NodeMessage & { payload: DeviceEvent; parts?: { id: string; index: number; count: number; type: string } };

/** What the runtime logged at a level (30 warn, 20 error, 40 info). */
function logged(level: number): string[] {
  const spy = helper.log() as unknown as { args: Array<[{ level: number; msg: unknown; type?: string }]> };
  return spy.args.filter((a) => a[0].level === level && a[0].type === "device-detect").map((a) => String(a[0].msg));
}

const ENV = ["DEVPLANE_SYSFS_ROOT", "DEVPLANE_UDEV_DATA", "DEVPLANE_DEV_ROOT"];

describe("device-detect node", () => {
  let tree: FakeSysfs;
  let source: TestUeventSource;
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    await helper.startServer();
    tree = fullTree();
    for (const k of ENV) saved[k] = process.env[k];
    process.env.DEVPLANE_SYSFS_ROOT = tree.sys;
    process.env.DEVPLANE_UDEV_DATA = tree.udevData;
    process.env.DEVPLANE_DEV_ROOT = tree.dev;
  });
  after(async () => {
    await helper.stopServer();
    setUeventSourceFactory(undefined);
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    tree.cleanup();
  });
  beforeEach(() => {
    source = new TestUeventSource();
    setUeventSourceFactory(() => source);
  });
  afterEach(async () => {
    await helper.unload();
    assert.strictEqual(runningDetector(), undefined, "the last node out stops the detector");
  });

  it("sends the devices present on deploy, one message each, topic present/<subsystem>, joinable by msg.parts", async () => {
    await helper.load(nodes, [
      { id: "d", type: "device-detect", subsystems: "tty", ids: "", match: "", enumerate: true, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.length === 6, "six serial devices");
    assert.deepStrictEqual(
      out.map((m) => [m.topic, m.payload.id, m.payload.action]),
      [
        ["present/tty", "usb-2341:0043-75630313536351A0F0E1", "present"],
        ["present/tty", "usb-1a86:7523-port-1-2", "present"],
        ["present/tty", "usb-1a86:7523-port-1-5.2", "present"],
        ["present/tty", "usb-2341:0043-9573", "present"],
        ["present/tty", "amba-fe201000.serial", "present"],
        ["present/tty", "pnp-00:04", "present"],
      ],
    );
    assert.deepStrictEqual(
      out.map((m) => [m.parts?.index, m.parts?.count, m.parts?.type]),
      out.map((_m, i) => [i, 6, "array"]),
    );
    assert.strictEqual(new Set(out.map((m) => m.parts?.id)).size, 1);
    assert.deepStrictEqual(out[0].payload.nodes.tty, ["/dev/ttyACM0"]);
    assert.strictEqual(source.started, 1);
  });

  it("follows hotplug: one add, then one remove, through the filters", async () => {
    const t = new FakeSysfs();
    process.env.DEVPLANE_SYSFS_ROOT = t.sys;
    process.env.DEVPLANE_UDEV_DATA = t.udevData;
    process.env.DEVPLANE_DEV_ROOT = t.dev;
    try {
      t.controller(1);
      await helper.load(nodes, [
        { id: "d", type: "device-detect", subsystems: "", ids: "2341:*", match: "", enumerate: true, wires: [["out"]] },
        { id: "out", type: "helper" },
      ]);
      const d = helper.getNode("d");
      const seen = statuses(d);
      const out = collect<Msg>(helper.getNode("out"));
      const other = t.usb(ch340("1-2", 6));
      const uno = t.usb(arduinoUno("1-1", 5));
      source.send(...asUdev(burst(t.sys, other, "add")), ...asUdev(burst(t.sys, uno, "add")));
      await eventually(() => out.length === 1, "the Arduino's add");
      assert.deepStrictEqual([out[0].topic, out[0].payload.id], ["add/tty", "usb-2341:0043-75630313536351A0F0E1"]);
      assert.deepStrictEqual(seen.at(-1), { fill: "green", text: "1 found" });
      const removal = asUdev(burst(t.sys, uno, "remove"));
      t.unplug(uno);
      source.send(...removal);
      await eventually(() => out.length === 2, "the Arduino's remove");
      assert.deepStrictEqual([out[1].topic, out[1].payload.action, out[1].payload.nodes.tty], ["remove/tty", "remove", ["/dev/ttyACM0"]]);
      await new Promise((r) => setTimeout(r, 400));
      assert.strictEqual(out.length, 2, "the CH340 is filtered out");
    } finally {
      process.env.DEVPLANE_SYSFS_ROOT = tree.sys;
      process.env.DEVPLANE_UDEV_DATA = tree.udevData;
      process.env.DEVPLANE_DEV_ROOT = tree.dev;
      await helper.unload();
      t.cleanup();
    }
  });

  it("answers an input message with the current inventory, keeping its _msgid", async () => {
    await helper.load(nodes, [
      { id: "d", type: "device-detect", subsystems: "video", ids: "", match: "", enumerate: false, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    await new Promise((r) => setTimeout(r, 100));
    assert.strictEqual(out.length, 0, "enumerate off: nothing on deploy");
    helper.getNode("d").receive({ _msgid: "m1", payload: "inventory" });
    await eventually(() => out.length === 2, "two video devices");
    assert.deepStrictEqual(
      out.map((m) => [m._msgid, m.topic, m.payload.id, m.payload.nodes.video]),
      [
        ["m1", "present/video4linux", "usb-046d:0825-A1B2C3D4", ["/dev/video0"]],
        ["m1", "present/video4linux", "platform-fe801000.csi", ["/dev/video2"]],
      ],
    );
  });

  it("filters on strings with globs", async () => {
    await helper.load(nodes, [
      { id: "d", type: "device-detect", subsystems: "", ids: "", match: "product=*Hub, manufacturer=C-Media*", enumerate: true, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.length === 2, "hub and microphone");
    assert.deepStrictEqual(
      out.map((m) => m.payload.id),
      ["usb-0d8c:0014-port-1-4", "usb-05e3:0608-port-1-5"],
    );
  });

  it("puts each diagnostic in the node's warnings once, phrased as what to do", async () => {
    const t = new FakeSysfs();
    process.env.DEVPLANE_SYSFS_ROOT = t.sys;
    process.env.DEVPLANE_UDEV_DATA = t.udevData;
    process.env.DEVPLANE_DEV_ROOT = t.dev;
    try {
      t.usb(arduinoUno("1-1", 5));
      fs.unlinkSync(`${t.dev}/ttyACM0`);
      (helper.log() as { resetHistory?(): void }).resetHistory?.();
      await helper.load(nodes, [
        { id: "d", type: "device-detect", subsystems: "", ids: "", match: "", enumerate: true, wires: [["out"]] },
        { id: "out", type: "helper" },
      ]);
      const d = helper.getNode("d");
      const seen = statuses(d);
      const out = collect<Msg>(helper.getNode("out"));
      await eventually(() => out.length === 1, "the Arduino");
      assert.deepStrictEqual(out[0].payload.diagnostics.map((x) => x.code), ["missing-node"]);
      d.receive({ payload: "" });
      await eventually(() => out.length === 2, "the inventory");
      const warnings = logged(30).filter((m) => m.includes("/dev/ttyACM0"));
      assert.strictEqual(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /^Arduino \(www.arduino.cc\) \(2341:0043, 1-1\): The kernel created \/dev\/ttyACM0 but it does not exist here: in a container, pass it in/);
      d.receive({ payload: "" });
      await eventually(() => out.length === 3, "the inventory again");
      assert.deepStrictEqual(seen.at(-1), { fill: "yellow", text: "1 of 1 to fix" });
    } finally {
      process.env.DEVPLANE_SYSFS_ROOT = tree.sys;
      process.env.DEVPLANE_UDEV_DATA = tree.udevData;
      process.env.DEVPLANE_DEV_ROOT = tree.dev;
      await helper.unload();
      t.cleanup();
    }
  });

  it("without hotplug: lists the devices, grey status, logs the reason once, never throws", async () => {
    setUeventSourceFactory(() => ({ unavailable: "this build of the devplane addon has no uevent monitor" }));
    (helper.log() as { resetHistory?(): void }).resetHistory?.();
    await helper.load(nodes, [
      { id: "d1", type: "device-detect", subsystems: "sound", ids: "", match: "", enumerate: true, wires: [["out"]] },
      { id: "d2", type: "device-detect", subsystems: "hidraw", ids: "", match: "", enumerate: true, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.length === 4, "two sound and two hidraw devices");
    const d1 = helper.getNode("d1") as Node & { status: unknown };
    const seen = statuses(d1);
    d1.receive({ payload: "" });
    await eventually(() => out.length === 6, "the inventory");
    assert.deepStrictEqual(seen.at(-1), { fill: "grey", text: "no hotplug (2)" });
    // Two nodes, one line in the log.
    assert.deepStrictEqual(
      logged(40).filter((m) => /hotplug is unavailable/.test(m)),
      ["hotplug is unavailable (this build of the devplane addon has no uevent monitor): devices are listed on deploy and on request, changes are not followed"],
    );
  });

  it("without hotplug, an input message looks again: what changed goes out first, then the inventory", async () => {
    setUeventSourceFactory(() => ({ unavailable: "no monitor in this test" }));
    const t = new FakeSysfs();
    process.env.DEVPLANE_SYSFS_ROOT = t.sys;
    process.env.DEVPLANE_UDEV_DATA = t.udevData;
    process.env.DEVPLANE_DEV_ROOT = t.dev;
    try {
      t.usb(ch340("1-2", 6));
      await helper.load(nodes, [
        { id: "d", type: "device-detect", subsystems: "tty", wires: [["out"]] },
        { id: "out", type: "helper" },
      ]);
      const out = collect<Msg>(helper.getNode("out"));
      await eventually(() => out.length === 1, "the CH340");
      t.unplug(t.devpathOf("1-2"));
      t.usb(arduinoUno("1-1", 5));
      helper.getNode("d").receive({ payload: "" });
      await eventually(() => out.length === 4, "remove, add, then the inventory");
      assert.deepStrictEqual(
        out.map((m) => `${m.topic} ${m.payload.id}`),
        [
          "present/tty usb-1a86:7523-port-1-2",
          "remove/tty usb-1a86:7523-port-1-2",
          "add/tty usb-2341:0043-75630313536351A0F0E1",
          "present/tty usb-2341:0043-75630313536351A0F0E1",
        ],
      );
    } finally {
      process.env.DEVPLANE_SYSFS_ROOT = tree.sys;
      process.env.DEVPLANE_UDEV_DATA = tree.udevData;
      process.env.DEVPLANE_DEV_ROOT = tree.dev;
      await helper.unload();
      t.cleanup();
    }
  });

  it("what the first look warned about (no udev database here) is a warning of the node that started it", async () => {
    const t = new FakeSysfs({ udev: false });
    process.env.DEVPLANE_SYSFS_ROOT = t.sys;
    process.env.DEVPLANE_UDEV_DATA = t.udevData;
    process.env.DEVPLANE_DEV_ROOT = t.dev;
    try {
      t.usb(arduinoUno("1-1", 5));
      (helper.log() as { resetHistory?(): void }).resetHistory?.();
      await helper.load(nodes, [
        { id: "d1", type: "device-detect", wires: [["out"]] },
        { id: "d2", type: "device-detect", wires: [["out"]] },
        { id: "out", type: "helper" },
      ]);
      const out = collect<Msg>(helper.getNode("out"));
      await eventually(() => out.length === 2, "the Arduino, from each node");
      assert.deepStrictEqual(out[0].payload.nodes.serialById, []);
      const said = logged(30).filter((m) => /udevd is not running here/.test(m));
      assert.strictEqual(said.length, 1, said.join("\n"));
    } finally {
      process.env.DEVPLANE_SYSFS_ROOT = tree.sys;
      process.env.DEVPLANE_UDEV_DATA = tree.udevData;
      process.env.DEVPLANE_DEV_ROOT = tree.dev;
      await helper.unload();
      t.cleanup();
    }
  });

  it("the native monitor's absence is reported, not thrown, by the default source factory", () => {
    const made = netlinkSource();
    let has = false;
    try {
      has = typeof addon().UeventMonitor === "function";
    } catch {
      has = false;
    }
    if (has) {
      assert.ok(!("unavailable" in made));
    } else {
      assert.ok("unavailable" in made);
      assert.match(made.unavailable, /no uevent monitor|did not load/);
    }
  });

  it("shares one detector and one source between nodes, and stops them with the last", async () => {
    await helper.load(nodes, [
      { id: "a", type: "device-detect", subsystems: "tty", wires: [[]] },
      { id: "b", type: "device-detect", subsystems: "video4linux", wires: [[]] },
      { id: "c", type: "device-detect", wires: [[]] },
    ]);
    assert.strictEqual(source.started, 1);
    assert.ok(runningDetector());
    await helper.unload();
    assert.strictEqual(source.stopped, 1);
    assert.strictEqual(source.listenerCount("message"), 0);
  });

  it("a filter it cannot understand: an error on deploy, and inputs fail so Catch nodes see it", async () => {
    await helper.load(nodes, [
      { id: "d", type: "device-detect", subsystems: "tty", ids: "2341", match: "", wires: [["out"]] },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "out", type: "helper" },
      { id: "caught", type: "helper" },
    ]);
    const caught = collect<Msg>(helper.getNode("caught"));
    helper.getNode("d").receive({ payload: "" });
    await eventually(() => caught.length === 1, "the caught error");
    assert.match((caught[0].error as { message: string }).message, /the filter is not valid: "2341" is not VID:PID/);
  });

  it("the example flow: the inventory joined into one array, serial ports with the name to open", async () => {
    const flow = JSON.parse(fs.readFileSync(path.join(ROOT, "examples", "device-detect-inventory.json"), "utf8")) as Array<Record<string, unknown> & { id: string; type: string; wires?: string[][] }>;
    const join = flow.find((n) => n.type === "join");
    const change = flow.find((n) => n.type === "change");
    assert.ok(join && change);
    join.wires = [["inventory"]];
    change.wires = [["ports"]];
    const z = String(join.z);
    const core = path.dirname(require.resolve("@node-red/nodes/package.json"));
    const coreNodes = await Promise.all(
      ["common/20-inject.js", "common/21-debug.js", "function/10-switch.js", "function/15-change.js", "sequence/17-split.js"].map(
        async (f) => ((await import(path.join(core, "core", f))) as { default: (RED: unknown) => void }).default,
      ),
    );
    await helper.load([...nodes, ...coreNodes], [{ id: z, type: "tab" }, ...flow.filter((n) => n.type !== "comment"), { id: "inventory", type: "helper", z }, { id: "ports", type: "helper", z }]);
    const inventory = collect<Msg>(helper.getNode("inventory"));
    const ports = collect<Msg>(helper.getNode("ports"));
    await eventually(() => inventory.length === 1 && ports.length === 4, "the joined inventory and the four boards and adapters");
    const all = inventory[0].payload as unknown as DeviceEvent[];
    assert.ok(Array.isArray(all));
    assert.strictEqual(all.length, 12);
    assert.deepStrictEqual(
      ports.map((m) => (m as Msg & { port: string }).port),
      [
        "/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_75630313536351A0F0E1-if00",
        "/dev/serial/by-id/usb-1a86_USB2.0-Serial-if00-port0",
        "/dev/ttyUSB1",
        "/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_9573-if00",
      ],
    );
  });

  describe("admin route GET /devplane/devices", () => {
    it("lists every device as events, without a node deployed", async () => {
      await helper.load(nodes, []);
      const res = await helper.request().get("/devplane/devices");
      assert.strictEqual(res.status, 200);
      const list = res.body as unknown as DeviceEvent[];
      assert.strictEqual(list.length, 12);
      assert.ok(list.every((e) => e.action === "present" && typeof e.id === "string" && e.nodes));
    });

    it("?subsystem=tty narrows it, from the running detector's inventory", async () => {
      await helper.load(nodes, [{ id: "d", type: "device-detect", wires: [[]] }]);
      const res = await helper.request().get("/devplane/devices?subsystem=tty");
      assert.strictEqual(res.status, 200);
      assert.deepStrictEqual(
        (res.body as unknown as DeviceEvent[]).map((e) => e.path),
        ["/dev/ttyACM0", "/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyACM1", "/dev/ttyAMA0", "/dev/ttyS0"],
      );
      const bad = await helper.request().get("/devplane/devices?subsystem=floppy");
      assert.strictEqual(bad.status, 400);
      assert.match(String(bad.body.error), /subsystem "floppy" is none of/);
    });
  });
});
