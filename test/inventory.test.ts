// The fleet inventory's MQTT messages (lib/inventory), from events the real
// detector makes of a fake sysfs tree.
import assert from "assert";
import os from "os";
import { DeviceDetector, DeviceEvent } from "../lib/devices";
import { discoveryId, hostName, Inventory, MqttMessage, topicLevel } from "../lib/inventory";
import { arduinoUno, ch340, FakeSysfs, UNO_SERIAL, usbMicrophone } from "./fakes/sysfs";
import { ManualClock } from "./fakes/uevents";

const UNO = `usb-2341:0043-${UNO_SERIAL}`;
const CH340 = "usb-1a86:7523-port-1-2";

let tree: FakeSysfs;
let events: DeviceEvent[];

const event = (id: string, action: DeviceEvent["action"] = "add"): DeviceEvent => {
  const e = events.find((x) => x.id === id);
  assert.ok(e, `no ${id} in the tree: ${events.map((x) => x.id).join(", ")}`);
  return { ...e, action };
};
const byTopic = (msgs: MqttMessage[], topic: string) => msgs.find((m) => m.topic === topic);
const json = (m: MqttMessage | undefined): Record<string, unknown> => {
  assert.ok(m, "the message is there");
  return JSON.parse(m.payload) as Record<string, unknown>;
};

describe("lib/inventory", () => {
  before(() => {
    tree = new FakeSysfs();
    tree.usb(arduinoUno("1-1", 5));
    tree.usb(ch340("1-2", 6));
    tree.usb(usbMicrophone("1-4", 8));
    events = new DeviceDetector({ ...tree.roots, probe: tree.probe(), clock: new ManualClock(1700000000000) }).enumerate();
  });
  after(() => tree.cleanup());

  it("names the host after $DEVPLANE_HOST, else the machine", () => {
    assert.strictEqual(hostName({ DEVPLANE_HOST: " kitchen-pi " }, () => "x"), "kitchen-pi");
    assert.strictEqual(hostName({}, () => "garage"), "garage");
    assert.strictEqual(hostName({ DEVPLANE_HOST: "" }, () => "garage"), "garage");
    assert.strictEqual(hostName({}), os.hostname());
    assert.strictEqual(new Inventory({ host: "" }).host, hostName());
    assert.strictEqual(new Inventory({ host: "attic" }).host, "attic");
  });

  it("keeps topic levels and Home Assistant ids free of what they cannot hold", () => {
    assert.strictEqual(topicLevel("usb-2341:0043-A#1+2/3"), "usb-2341:0043-A_1_2_3");
    assert.strictEqual(topicLevel(""), "_");
    assert.strictEqual(discoveryId("usb-2341:0043-75630313536351A0F0E1"), "usb-2341_0043-75630313536351A0F0E1");
    assert.strictEqual(discoveryId("devplane_my.pi"), "devplane_my_pi");
  });

  it("a device that arrives: retained state, then a Home Assistant sensor, then the host's summary", () => {
    const inv = new Inventory({ host: "kitchen-pi" }, () => 42);
    const out = inv.update({ event: event(UNO), profile: { name: "Arduino UNO", interface: "uart", confidence: 0.95 } });
    assert.deepStrictEqual(
      out.map((m) => m.topic),
      [
        `devplane/kitchen-pi/devices/${UNO}`,
        `homeassistant/sensor/devplane_kitchen-pi/${discoveryId(UNO)}/config`,
        "devplane/kitchen-pi/inventory",
      ],
    );
    assert.ok(out.every((m) => m.retain && m.qos === 1));
    const state = json(out[0]);
    assert.deepStrictEqual(
      [state.id, state.host, state.name, state.vid, state.pid, state.serial, state.usbPort, state.path, state.subsystem],
      [UNO, "kitchen-pi", "Arduino UNO", "2341", "0043", UNO_SERIAL, "1-1", "/dev/ttyACM0", "tty"],
    );
    assert.deepStrictEqual(state.profile, { name: "Arduino UNO", interface: "uart", confidence: 0.95 });
    assert.deepStrictEqual((state.nodes as { tty: string[] }).tty, ["/dev/ttyACM0"]);
    assert.deepStrictEqual([state.since, state.updated], [42, 1700000000000]);

    const config = json(out[1]);
    assert.strictEqual(config.state_topic, `devplane/kitchen-pi/devices/${UNO}`);
    assert.strictEqual(config.json_attributes_topic, config.state_topic);
    assert.strictEqual(config.value_template, "{{ value_json.path }}");
    assert.strictEqual(config.availability_topic, "devplane/kitchen-pi/status");
    assert.deepStrictEqual([config.payload_available, config.payload_not_available], ["online", "offline"]);
    assert.strictEqual(config.unique_id, `devplane_kitchen-pi_${discoveryId(UNO)}`);
    assert.deepStrictEqual(config.device, {
      identifiers: [`devplane_kitchen-pi_${discoveryId(UNO)}`],
      name: "Arduino UNO on kitchen-pi",
      via_device: "devplane_kitchen-pi",
      manufacturer: "Arduino (www.arduino.cc)",
      model: "Arduino UNO",
      serial_number: UNO_SERIAL,
    });
    assert.deepStrictEqual(json(out[2]), { host: "kitchen-pi", count: 1, devices: [UNO], updated: 42 });
  });

  it("without a profile a device is named by its strings, and policy decisions ride along", () => {
    const inv = new Inventory({ host: "h" });
    const state = json(inv.update({ event: event(usbMicrophoneId()), policy: { decision: "allow", rule: "allow id 0d8c:*", reason: "rule 1" } })[0]);
    assert.strictEqual(state.name, "USB Audio Device");
    assert.deepStrictEqual(state.policy, { decision: "allow", rule: "allow id 0d8c:*", reason: "rule 1" });
    assert.strictEqual(state.profile, undefined);
  });

  it("a device that goes: its sensor config emptied first, then its state, both retained", () => {
    let now = 1;
    const inv = new Inventory({ host: "h" }, () => now);
    inv.update({ event: event(UNO) });
    inv.update({ event: event(CH340) });
    now = 5;
    const out = inv.update({ event: event(CH340, "remove") });
    assert.deepStrictEqual(
      out.map((m) => [m.topic, m.payload, m.retain]),
      [
        [`homeassistant/sensor/devplane_h/${discoveryId(CH340)}/config`, "", true],
        [`devplane/h/devices/${CH340}`, "", true],
        ["devplane/h/inventory", JSON.stringify({ host: "h", count: 1, devices: [UNO], updated: 5 }), true],
      ],
    );
  });

  it("a change keeps when the device was first seen", () => {
    let now = 10;
    const inv = new Inventory({ host: "h" }, () => now);
    inv.update({ event: event(UNO) });
    now = 20;
    assert.strictEqual(json(inv.update({ event: event(UNO, "change") })[0]).since, 10);
  });

  it("an inventory, once complete, removes what it no longer lists and announces the host", () => {
    const inv = new Inventory({ host: "h" });
    inv.update({ event: event(UNO) });
    inv.update({ event: event(CH340) });
    const first = inv.update({ event: event(UNO, "present"), parts: { id: "round", index: 0, count: 2 } });
    assert.deepStrictEqual(first.map((m) => m.topic), [`devplane/h/devices/${UNO}`, `homeassistant/sensor/devplane_h/${discoveryId(UNO)}/config`]);
    const mic = usbMicrophoneId();
    const last = inv.update({ event: event(mic, "present"), parts: { id: "round", index: 1, count: 2 } });
    assert.deepStrictEqual(
      last.map((m) => [m.topic, m.payload === "" ? "" : "json"]),
      [
        [`devplane/h/devices/${mic}`, "json"],
        [`homeassistant/sensor/devplane_h/${discoveryId(mic)}/config`, "json"],
        [`homeassistant/sensor/devplane_h/${discoveryId(CH340)}/config`, ""],
        [`devplane/h/devices/${CH340}`, ""],
        ["homeassistant/binary_sensor/devplane_h/status/config", "json"],
        ["homeassistant/sensor/devplane_h/devices/config", "json"],
        ["devplane/h/inventory", "json"],
      ],
    );
    assert.deepStrictEqual(inv.devices(), [UNO, mic]);
    const status = json(byTopic(last, "homeassistant/binary_sensor/devplane_h/status/config"));
    assert.deepStrictEqual([status.state_topic, status.payload_on, status.payload_off, status.device_class], ["devplane/h/status", "online", "offline", "connectivity"]);
    assert.deepStrictEqual((status.device as { identifiers: string[] }).identifiers, ["devplane_h"]);
    const count = json(byTopic(last, "homeassistant/sensor/devplane_h/devices/config"));
    assert.deepStrictEqual([count.state_topic, count.value_template], ["devplane/h/inventory", "{{ value_json.count }}"]);
  });

  it("an inventory cut short removes nothing", () => {
    const inv = new Inventory({ host: "h" });
    inv.update({ event: event(CH340) });
    const out = inv.update({ event: event(UNO, "present"), parts: { id: "r", index: 0, count: 3 } });
    assert.ok(out.every((m) => m.payload !== ""));
    assert.deepStrictEqual(inv.devices(), [CH340, UNO]);
  });

  it("without discovery only the devplane topics; another base topic and prefix", () => {
    const plain = new Inventory({ host: "h", discovery: false });
    assert.deepStrictEqual(plain.update({ event: event(UNO) }).map((m) => m.topic), [`devplane/h/devices/${UNO}`, "devplane/h/inventory"]);
    assert.deepStrictEqual(plain.hostMessages(), []);
    const other = new Inventory({ host: "h", baseTopic: "home/usb/", discoveryPrefix: "ha/" });
    assert.deepStrictEqual(other.update({ event: event(UNO) }).map((m) => m.topic), [
      `home/usb/h/devices/${UNO}`,
      `ha/sensor/devplane_h/${discoveryId(UNO)}/config`,
      "home/usb/h/inventory",
    ]);
    assert.throws(() => new Inventory({ baseTopic: "devplane/#" }), /wildcard/);
    assert.throws(() => new Inventory({ discoveryPrefix: "home+" }), /wildcard/);
  });

  it("ids with MQTT's separators or wildcards go into one topic level; the payload keeps the id", () => {
    const inv = new Inventory({ host: "my/host" });
    const odd = { ...event(UNO), id: "usb-2341:0043-A#1+2" };
    const out = inv.update({ event: odd });
    assert.strictEqual(out[0].topic, "devplane/my_host/devices/usb-2341:0043-A_1_2");
    assert.strictEqual(json(out[0]).id, "usb-2341:0043-A#1+2");
    assert.strictEqual(out[1].topic, "homeassistant/sensor/devplane_my_host/usb-2341_0043-A_1_2/config");
  });

  it("birth, close and last will on the host's status topic, for the broker connection", () => {
    assert.deepStrictEqual(new Inventory({ host: "h" }).connectAction(), {
      action: "connect",
      broker: {
        force: true,
        birth: { topic: "devplane/h/status", payload: "online", qos: 1, retain: true },
        close: { topic: "devplane/h/status", payload: "offline", qos: 1, retain: true },
        will: { topic: "devplane/h/status", payload: "offline", qos: 1, retain: true },
      },
    });
  });
});

function usbMicrophoneId(): string {
  const e = events.find((x) => x.usb?.vid === "0d8c");
  assert.ok(e);
  return e.id;
}
