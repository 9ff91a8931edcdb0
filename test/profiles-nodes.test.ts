// device-profile and device-profiles in a Node-RED runtime.
import assert from "assert";
import type { Node, NodeMessage } from "node-red";
import { helper, profileNodes as nodes } from "./support/red";
import { eventually } from "./support/rings";
import { collect } from "./support/flow";

type Msg = NodeMessage & { profile?: Record<string, unknown>; config?: Record<string, unknown>; error?: { message: string } };

function event(vid: string, pid: string, extra: Record<string, unknown> = {}) {
  return {
    action: "add",
    id: `usb-${vid}:${pid}-SER1`,
    subsystem: "tty",
    path: "/dev/ttyACM0",
    syspath: "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1",
    properties: {},
    usb: { vid, pid, manufacturer: null, product: null, serial: "SER1", port: "1-1", interfaces: [{ class: "02", subclass: "02", protocol: "01", driver: "cdc_acm" }], ...extra },
    nodes: { tty: ["/dev/ttyACM0"], serialById: [], video: [], videoMetadata: [], audio: [], hidraw: [] },
    timestamp: Date.now(),
  };
}

describe("device-profile nodes in Node-RED", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it("sends a known board out of 'matched' with msg.profile and msg.config, an unknown device out of 'unknown'", async () => {
    await helper.load(nodes, [
      { id: "p", type: "device-profile", name: "", profiles: "", wires: [["matched"], ["unknown"]] },
      { id: "matched", type: "helper" },
      { id: "unknown", type: "helper" },
    ]);
    const matched = collect<Msg>(helper.getNode("matched"));
    const unknown = collect<Msg>(helper.getNode("unknown"));
    const p = helper.getNode("p");
    p.receive({ payload: event("2341", "0043"), topic: "add/tty" });
    p.receive({ payload: event("1234", "abcd", { interfaces: [{ class: "ff", subclass: "00", protocol: "00", driver: null }] }) });
    await eventually(() => matched.length === 1 && unknown.length === 1, "one message on each output");
    const m = matched[0];
    assert.strictEqual(m.topic, "add/tty", "the rest of the message is kept");
    assert.deepStrictEqual(
      { name: m.profile?.name, interface: m.profile?.interface, baudrate: m.profile?.baudrate, protocol: m.profile?.protocol },
      { name: "Arduino UNO", interface: "uart", baudrate: 9600, protocol: "lines" },
    );
    assert.ok((m.profile?.confidence as number) > 0.9);
    assert.strictEqual(typeof m.profile?.why, "string");
    assert.deepStrictEqual(m.config, { device: "/dev/ttyACM0", auto_reconnect: true, buffer_size: 65536, timeout: 100 });
    assert.strictEqual(unknown[0].profile?.confidence, 0);
    assert.strictEqual(unknown[0].profile?.name, "USB device 1234:abcd");
  });

  it("user profiles from a device-profiles node override the built-ins; broken ones are left out with a warning", async () => {
    await helper.load(nodes, [
      {
        id: "cfg",
        type: "device-profiles",
        name: "lab",
        profiles: [
          { name: "Greenhouse sensor", vid: "2341", pid: "0043", serial: "SER*", baudrate: 115200, protocol: "json-lines", priority: 1 },
          { name: "broken", vid: "not hex" },
        ],
      },
      { id: "p", type: "device-profile", profiles: "cfg", wires: [["matched"], []] },
      { id: "matched", type: "helper" },
    ]);
    const matched = collect<Msg>(helper.getNode("matched"));
    helper.getNode("p").receive({ payload: event("2341", "0043") });
    await eventually(() => matched.length === 1, "the matched message");
    assert.strictEqual(matched[0].profile?.name, "Greenhouse sensor");
    assert.strictEqual(matched[0].profile?.baudrate, 115200);
    assert.strictEqual(matched[0].profile?.source, "user");
    assert.match(String(matched[0].profile?.why), /over the built-in profile "Arduino UNO"/);
    const cfg = helper.getNode("cfg") as Node & { profileErrors?: string[] };
    assert.strictEqual(cfg.profileErrors?.length, 1);
    assert.match(cfg.profileErrors?.[0] ?? "", /profile 2 \("broken"\): vid must be hex ids/);
  });

  it("accepts the profile list as JSON text too", async () => {
    await helper.load(nodes, [
      { id: "cfg", type: "device-profiles", profiles: JSON.stringify([{ name: "Any CH340 here", vid: "1a86", pid: "7523" }]) },
      { id: "p", type: "device-profile", profiles: "cfg", wires: [["matched"], []] },
      { id: "matched", type: "helper" },
    ]);
    const matched = collect<Msg>(helper.getNode("matched"));
    helper.getNode("p").receive({ payload: event("1a86", "7523") });
    await eventually(() => matched.length === 1, "the matched message");
    assert.strictEqual(matched[0].profile?.name, "Any CH340 here");
  });

  it("fails a message that is not a device event through done(err)", async () => {
    await helper.load(nodes, [
      { id: "p", type: "device-profile", wires: [["matched"], ["unknown"]] },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "matched", type: "helper" },
      { id: "unknown", type: "helper" },
      { id: "caught", type: "helper" },
    ]);
    const caught = collect<Msg>(helper.getNode("caught"));
    const p = helper.getNode("p");
    p.receive({ payload: "hello" });
    p.receive({ payload: 42 });
    p.receive({ payload: { foo: 1 } });
    await eventually(() => caught.length === 3, "three caught errors");
    const texts = caught.map((m) => m.error?.message ?? "");
    assert.match(texts[0], /msg.payload must be a device event from device-detect .* got a string/);
    assert.match(texts[1], /got a number/);
    assert.match(texts[2], /got an object without usb, properties or nodes/);
  });
});
