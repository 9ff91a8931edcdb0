// device-inventory in a Node-RED runtime (node-red-node-test-helper).
import assert from "assert";
import type { Node, NodeMessage } from "node-red";
import deviceInventory from "../nodes/device-inventory";
import { discoveryId, hostName } from "../lib/inventory";
import { helper } from "./support/red";
import { eventually } from "./support/rings";

const nodes = [deviceInventory] as unknown as Array<(RED: unknown) => void>;
type Msg = NodeMessage & { retain?: boolean; qos?: number; action?: string; broker?: Record<string, unknown>; error?: { message: string } };

function collect(node: Node): Msg[] {
  const got: Msg[] = [];
  node.on("input", (msg: Msg) => got.push(msg));
  return got;
}

const uno = (action: string) => ({
  action,
  id: "usb-2341:0043-75630313536351A0F0E1",
  subsystem: "tty",
  path: "/dev/ttyACM0",
  usb: { vid: "2341", pid: "0043", manufacturer: "Arduino (www.arduino.cc)", product: null, serial: "75630313536351A0F0E1", port: "1-1" },
  nodes: { tty: ["/dev/ttyACM0"], serialById: [], video: [], videoMetadata: [], audio: [], hidraw: [] },
  diagnostics: [],
  timestamp: 1700000000000,
});

describe("device-inventory in Node-RED", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it("connects the mqtt nodes with this host's birth and last will, then turns events into retained messages", async () => {
    await helper.load(nodes, [
      { id: "inv", type: "device-inventory", host: "attic", topic: "devplane", discovery: true, discoveryPrefix: "homeassistant", announce: true, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect(helper.getNode("out"));
    const connect = await eventually(() => out[0], "the connect action");
    assert.strictEqual(connect.action, "connect");
    assert.deepStrictEqual(connect.broker?.will, { topic: "devplane/attic/status", payload: "offline", qos: 1, retain: true });
    helper.getNode("inv").receive({ payload: uno("add"), profile: { name: "Arduino UNO" } } as NodeMessage);
    await eventually(() => out.length === 4, "state, discovery and summary");
    assert.deepStrictEqual(
      out.slice(1).map((m) => [m.topic, m.retain, m.qos]),
      [
        ["devplane/attic/devices/usb-2341:0043-75630313536351A0F0E1", true, 1],
        [`homeassistant/sensor/devplane_attic/${discoveryId("usb-2341:0043-75630313536351A0F0E1")}/config`, true, 1],
        ["devplane/attic/inventory", true, 1],
      ],
    );
    assert.strictEqual((JSON.parse(out[1].payload as string) as { name: string }).name, "Arduino UNO");
    assert.ok(!("profile" in out[1]), "nothing of the event rides along");
    helper.getNode("inv").receive({ payload: uno("remove") } as NodeMessage);
    await eventually(() => out.length === 7, "the removal");
    assert.deepStrictEqual(out.slice(4, 6).map((m) => m.payload), ["", ""]);
  });

  it("the host defaults to $DEVPLANE_HOST or the machine's name; announce off sends no connect", async () => {
    await helper.load(nodes, [
      { id: "inv", type: "device-inventory", host: "", topic: "", discovery: false, discoveryPrefix: "", announce: false, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect(helper.getNode("out"));
    helper.getNode("inv").receive({ payload: uno("present") } as NodeMessage);
    await eventually(() => out.length === 2, "state and summary");
    assert.deepStrictEqual(out.map((m) => m.topic), [`devplane/${hostName()}/devices/usb-2341:0043-75630313536351A0F0E1`, `devplane/${hostName()}/inventory`]);
  });

  it("a payload that is not a device event fails the message, so Catch nodes see it", async () => {
    await helper.load(nodes, [
      { id: "inv", type: "device-inventory", host: "h", announce: false, wires: [["out"]] },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "out", type: "helper" },
      { id: "caught", type: "helper" },
    ]);
    const caught = collect(helper.getNode("caught"));
    helper.getNode("inv").receive({ payload: "hello" });
    await eventually(() => caught.length === 1, "the caught error");
    assert.match(caught[0].error?.message ?? "", /must be a device event from device-detect .* got a string/);
  });

  it("a wildcard in the topic is a configuration error, and inputs fail with it", async () => {
    await helper.load(nodes, [
      { id: "inv", type: "device-inventory", host: "h", topic: "devplane/#", announce: false, wires: [["out"]] },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "out", type: "helper" },
      { id: "caught", type: "helper" },
    ]);
    const caught = collect(helper.getNode("caught"));
    helper.getNode("inv").receive({ payload: uno("add") } as NodeMessage);
    await eventually(() => caught.length === 1, "the caught error");
    assert.match(caught[0].error?.message ?? "", /bad configuration: the topic "devplane\/#" has a wildcard/);
  });
});
