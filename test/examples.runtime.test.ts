// Every example flow deployed, one after the other, into a real Node-RED
// runtime (a child process, not the test helper) with this package and the
// dashboard installed, fake devices in its environment and an MQTT broker
// beside it (mosquitto when installed, aedes otherwise). An MQTT client, a
// dashboard client and the Python ring reader check what each flow promises.
//
// The fakes: a sysfs tree and udev database with an Arduino UNO, a CH340 and a
// CP2102 adapter, a UVC camera and a USB microphone; the UNO's serial port is
// a pseudo-terminal (its tty's DEVNAME names the pty, and udev made no by-id
// link, so the profile's port is the pty); the camera is the fake V4L2
// library (LD_PRELOAD) at a path of its own, which the tree's video nodes
// name; microphones are alsa-lib's file plugin (ALSA_CONFIG_PATH), paced like
// a real one. Hotplug uevents come from the test through a socket
// (test/fakes/uevent-socket.ts, loaded into Node-RED with --require) in the
// kernel's wire format, since only the kernel can send on the netlink socket.
//
// What the test changes in each example before deploying it, and nothing
// else: the broker's address (127.0.0.1 and the test broker's port); a
// camera's device (the fake camera's path) and a microphone's ("devplane_sine"
// of the test ALSA configuration); ring names (camera, mic, demo-frames)
// to names of this run; the policy's audit file and the snapshot file to the
// test's directory. Each example's nodes go in a tab of their own.
import assert from "assert";
import { execFile } from "child_process";
import fs from "fs";
import mqtt, { MqttClient } from "mqtt";
import os from "os";
import path from "path";
import { discoveryId, topicLevel } from "../lib/inventory";
import { buildFakeAsound, ALSA_CONFIG } from "./support/alsa";
import { DashboardClient } from "./support/dashboard";
import { Broker, FlowNode, makeDevplaneUserDir, MOSQUITTO, NodeRed, scratch, startBroker, startNodeRed, withTabs } from "./support/node-red";
import { cleanupRings, eventually, ringName, ROOT } from "./support/rings";
import { buildFake, FAKE_LIBRARY } from "./support/v4l2";
import { FakePty, openPty } from "./fakes/pty";
import { sendUevents } from "./fakes/uevent-socket";
import { asKernel, burst } from "./fakes/uevents";
import { arduinoUno, ch340, FakeSysfs, FakeUsbDevice, UNO_SERIAL, usbMicrophone, uvcWebcam } from "./fakes/sysfs";

interface Received {
  topic: string;
  text: string;
  retain: boolean;
}

const UNO = `usb-2341:0043-${UNO_SERIAL}`;
const CH340 = "usb-1a86:7523-port-1-2";
const CP2102 = "usb-10c4:ea60-0001";
const WEBCAM = "usb-046d:0825-A1B2C3D4";
/** The same devices as policies name them (USBGuard's id: vid:pid). */
const RULE_ID = { uno: "2341:0043", ch340: "1a86:7523", cp2102: "10c4:ea60" };

function cp2102(): FakeUsbDevice {
  return {
    port: "1-6",
    vid: "10c4",
    pid: "ea60",
    manufacturer: "Silicon Labs",
    product: "CP2102 USB to UART Bridge Controller",
    serial: "0001",
    deviceClass: "00",
    devnum: 9,
    interfaces: [
      {
        class: "ff",
        driver: "cp210x",
        tty: [{ name: "ttyUSB1", usbSerial: true, links: ["serial/by-id/usb-Silicon_Labs_CP2102_USB_to_UART_Bridge_Controller_0001-if00-port0"] }],
      },
    ],
  };
}

/** The devices the flows see. Device nodes that must really open (the pty, the camera) are named in DEVNAME. */
function devicesTree(ptyPath: string, camera: string[]): { tree: FakeSysfs; cp2102: string } {
  const tree = new FakeSysfs();
  const uno = arduinoUno("1-1", 5);
  uno.interfaces[0].tty = [{ name: "ttyACM0" }];
  const unoPath = tree.usb(uno);
  const ptyName = ptyPath.replace(/^\/dev\//, "");
  tree.uevent(`${unoPath}/1-1:1.0/tty/ttyACM0`, { MAJOR: 166, MINOR: 0, DEVNAME: ptyName });
  tree.devNode(ptyName, 20);
  tree.usb(ch340("1-2", 6));
  const cam = tree.usb(uvcWebcam("1-3", 7));
  camera.forEach((p, i) => {
    const name = p.replace(/^\/dev\//, "");
    tree.uevent(`${cam}/1-3:1.0/video4linux/video${i}`, { MAJOR: 81, MINOR: i, DEVNAME: name });
    tree.devNode(name, 44);
  });
  tree.usb(usbMicrophone("1-4", 8));
  const cp = tree.usb(cp2102());
  return { tree, cp2102: cp };
}

function example(name: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "examples", name), "utf8")) as FlowNode[];
}

/** The id of the node of this type and name. */
function idOf(flow: FlowNode[], type: string, name: string): string {
  const n = flow.find((x) => x.type === type && x.name === name);
  assert.ok(n, `no ${type} node named "${name}"`);
  return n.id;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { cwd: ROOT }, (err, stdout, stderr) => (err ? reject(new Error(`${command} ${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(stdout))),
  );
}

interface RingLine {
  length: number;
  content_type: string;
  meta: Record<string, unknown>;
}

async function readRing(ring: string, count: number): Promise<RingLine[]> {
  const out = await run("python3", [path.join(ROOT, "clients", "python", "devplane_shm.py"), "read", ring, "--count", String(count), "--timeout", "10"]);
  return out.trim().split("\n").map((l) => JSON.parse(l) as RingLine);
}

describe(`example flows in a real Node-RED runtime, with ${MOSQUITTO ? "mosquitto" : "aedes"}`, () => {
  const dir = scratch("examples");
  const host = topicLevel(os.hostname());
  const camera = [`/dev/dpfake-examples-${process.pid}-video0`, `/dev/dpfake-examples-${process.pid}-video1`];
  const rings = { camera: ringName("camera"), mic: ringName("mic"), "demo-frames": ringName("demo") };
  const received: Received[] = [];
  let broker: Broker | undefined;
  let red: NodeRed | undefined;
  let client: MqttClient | undefined;
  let pty: FakePty | undefined;
  let tree: FakeSysfs | undefined;
  let cp2102Path = "";
  const uevents = path.join(dir, "uevents.sock");
  const dashboards: DashboardClient[] = [];

  const runtime = (): NodeRed => {
    assert.ok(red, "Node-RED is running");
    return red;
  };

  /** An example as the test deploys it (see the top of this file). */
  function prepare(name: string): FlowNode[] {
    const flow = example(name);
    for (const n of flow) {
      if (n.type === "mqtt-broker") Object.assign(n, { broker: "127.0.0.1", port: String(broker?.port) });
      if (n.type === "v4l2-capture") n.device = camera[0];
      if (n.type === "alsa-capture") n.device = "devplane_sine";
      if (["v4l2-capture", "alsa-capture", "shm-publish", "shm-subscribe"].includes(n.type) && typeof n.ring === "string" && n.ring !== "") {
        const to = rings[n.ring as keyof typeof rings];
        assert.ok(to, `ring ${String(n.ring)} has no test name`);
        n.ring = to;
      }
      if (n.type === "policy-check" && n.auditFile) n.auditFile = path.join(dir, "audit.jsonl");
      if (n.type === "file") n.filename = path.join(dir, path.basename(String(n.filename)));
    }
    return flow;
  }

  async function deploy(...flows: FlowNode[][]): Promise<void> {
    received.length = 0;
    for (const d of dashboards.splice(0)) await d.close();
    await runtime().deploy(withTabs(...flows));
  }

  async function dashboard(): Promise<DashboardClient> {
    const d = await DashboardClient.connect(`${runtime().url}dashboard`);
    dashboards.push(d);
    await eventually(() => d.isConnected, "the dashboard connection");
    return d;
  }

  function noErrors(): void {
    assert.deepStrictEqual(runtime().errors(), [], "node errors");
  }

  const messages = (topic: string): Received[] => received.filter((m) => m.topic === topic);
  const json = <T>(m: Received): T => JSON.parse(m.text) as T;

  /** What a client that subscribes now gets: the retained messages. */
  async function retained(filter: string, until: (msgs: Received[]) => boolean): Promise<Received[]> {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker?.port}`, { reconnectPeriod: 0 });
    const got: Received[] = [];
    c.on("message", (topic, payload, packet) => got.push({ topic, text: payload.toString(), retain: packet.retain }));
    try {
      await c.subscribeAsync(filter, { qos: 1 });
      await eventually(() => until(got), `retained messages on ${filter}`);
      return got;
    } finally {
      await c.endAsync();
    }
  }

  before(async () => {
    buildFake();
    const asound = buildFakeAsound();
    pty = await openPty();
    const built = devicesTree(pty.path, camera);
    tree = built.tree;
    cp2102Path = built.cp2102;
    broker = await startBroker(dir);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DEVPLANE_SYSFS_ROOT: tree.sys,
      DEVPLANE_UDEV_DATA: tree.udevData,
      DEVPLANE_DEV_ROOT: tree.dev,
      LD_PRELOAD: FAKE_LIBRARY,
      DEVPLANE_FAKE_V4L2: camera.join(","),
      DEVPLANE_FAKE_V4L2_CONTROL: path.join(dir, "camera.ctl"),
      DEVPLANE_V4L2_DEVICES: camera.join(","),
      ALSA_CONFIG_PATH: ALSA_CONFIG,
      // Paced like a microphone, so that a flow gets audio at the pace it would.
      DEVPLANE_LIBASOUND: asound,
      DEVPLANE_FAKE_ASOUND_PACE: "1",
      DEVPLANE_TEST_UEVENT_SOCKET: uevents,
    };
    // The examples' own default: the machine's name.
    delete env.DEVPLANE_HOST;
    red = await startNodeRed(makeDevplaneUserDir("examples", path.join(dir, "user")), env, ["--require", path.join(ROOT, "dist", "test", "fakes", "uevent-socket.js")]);
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`);
    client.on("message", (topic, payload, packet) => received.push({ topic, text: payload.toString(), retain: packet.retain }));
    await client.subscribeAsync(["devplane/#", "homeassistant/#"], { qos: 1 });
  });

  after(async () => {
    for (const d of dashboards.splice(0)) await d.close();
    await client?.endAsync();
    await red?.stop();
    await broker?.stop();
    pty?.dispose();
    tree?.cleanup();
    cleanupRings();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("arduino-serial: the board's lines reach MQTT and the dashboard chart; other adapters are denied", async () => {
    const flow = prepare("arduino-serial.json");
    await deploy(flow);
    const dash = await dashboard();
    const topic = `devplane/${host}/serial/${UNO}`;
    // The sketch prints a reading every 100 ms, as long as it takes the flow to open the port.
    const sketch = setInterval(() => void pty?.send("21.5\r\n"), 100);
    try {
      await eventually(() => messages(topic).find((m) => m.text === "21.5"), `a reading on ${topic}`);
    } finally {
      clearInterval(sketch);
    }
    await retained(`${topic}/status`, (got) => got.some((m) => m.retain && m.text === "connected"));
    const chart = idOf(flow, "ui-chart", "readings");
    const point = await eventually(() => dash.inputs(chart).find((m) => m.payload === 21.5), "the reading on the chart");
    assert.strictEqual(point.topic, `${host} ${UNO}`);
    await eventually(() => dash.inputs(idOf(flow, "ui-text", "last line")).find((m) => m.payload === `${host} ${UNO}: 21.5`), "the last line");
    // The CH340 and the CP2102 are profiled but not allowed, so never opened.
    const denied = await eventually(() => (runtime().debug(idOf(flow, "debug", "denied")).length === 2 ? runtime().debug(idOf(flow, "debug", "denied")) : undefined), "two denied adapters");
    assert.ok(denied.every((d) => /"decision":"block"/.test(d.msg)), JSON.stringify(denied));
    await runtime().inject(idOf(flow, "inject", "ping"));
    await eventually(() => pty?.received().toString().includes("ping\r\n"), "ping written to the board");
    noErrors();
  });

  it("camera-preview: JPEG frames on the dashboard, a snapshot from its button, brightness from its slider", async () => {
    const flow = prepare("camera-preview.json");
    await deploy(flow);
    const dash = await dashboard();
    const preview = idOf(flow, "ui-template", "preview");
    const frame = await eventually(() => dash.inputs(preview).find((m) => typeof m.payload === "string"), "a frame in the preview");
    assert.match(String(frame.payload), /^data:image\/jpeg;base64,\/9j\//);
    await dash.action(idOf(flow, "ui-button", "snapshot button"));
    const file = path.join(dir, "devplane-snapshot.jpg");
    await eventually(() => fs.existsSync(file) && fs.statSync(file).size > 0, "the saved snapshot");
    assert.deepStrictEqual([...fs.readFileSync(file).subarray(0, 2)], [0xff, 0xd8]);
    await dash.emit("widget-change", idOf(flow, "ui-slider", "brightness"), 20);
    const said = idOf(flow, "debug", "device and controls");
    await eventually(() => runtime().debug(said).some((d) => /"topic":"controls"/.test(d.msg) && /"brightness"/.test(d.msg) && /"value":20/.test(d.msg)), "brightness set to 20");
    noErrors();
  });

  it("camera-to-python: the Python reader reads the camera's ring; the camera's state and frame metadata reach MQTT", async () => {
    const flow = prepare("camera-to-python.json");
    await deploy(flow);
    const meta = await eventually(() => messages(`devplane/${host}/camera/frames`)[0], "frame metadata on MQTT");
    assert.deepStrictEqual(
      (({ ring, width, height, format }) => ({ ring, width, height, format }))(json<Record<string, unknown>>(meta)),
      { ring: rings.camera, width: 640, height: 480, format: "YUYV" },
    );
    await retained(`devplane/${host}/camera/status`, (got) => got.some((m) => m.retain && m.text === "connected"));
    const frames = await readRing(rings.camera, 5);
    assert.strictEqual(frames.length, 5);
    for (const f of frames) {
      assert.deepStrictEqual([f.length, f.content_type, (f.meta.frame as { format: string }).format], [640 * 480 * 2, "video/x-raw,format=YUY2,width=640,height=480,stride=1280", "YUYV"]);
    }
    noErrors();
  });

  it("alsa-level-mqtt: the microphone's level and state reach MQTT and the dashboard's gauge", async () => {
    const flow = prepare("alsa-level-mqtt.json");
    await deploy(flow);
    const dash = await dashboard();
    const level = await eventually(() => messages(`devplane/${host}/mic/level`)[0], "a level on MQTT");
    const payload = json<{ rms: number; peak: number; ts: number }>(level);
    assert.deepStrictEqual(Object.keys(payload), ["rms", "peak", "ts"]);
    assert.ok(payload.rms > -30 && payload.rms < 0, `rms ${payload.rms}`);
    await retained(`devplane/${host}/mic/status`, (got) => got.some((m) => m.retain && m.text === "connected"));
    const gauge = await eventually(() => dash.inputs(idOf(flow, "ui-gauge", "level"))[0], "a level on the gauge");
    assert.ok(typeof gauge.payload === "number" && gauge.payload > -30 && gauge.payload < 0, `gauge ${String(gauge.payload)}`);
    const state = idOf(flow, "ui-text", "microphone state");
    await dash.requestLoad(state);
    await eventually(() => dash.loaded(state)?.payload === `${host}: connected`, "the microphone's state on the dashboard");
    noErrors();
  });

  it("alsa-to-ring: the Python reader reads the microphone's ring; speech events reach MQTT", async () => {
    const flow = prepare("alsa-to-ring.json");
    await deploy(flow);
    const speech = await eventually(() => messages(`devplane/${host}/mic/speech`)[0], "speech on MQTT");
    assert.strictEqual(json<{ event: string }>(speech).event, "start");
    const chunks = await readRing(rings.mic, 3);
    for (const c of chunks) {
      assert.deepStrictEqual([c.length, c.content_type], [640, "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved"]);
    }
    noErrors();
  });

  it("policy-ask-audit: questions on the dashboard and MQTT, answered by its Allow button and over MQTT; audit to the file and MQTT", async () => {
    const flow = prepare("policy-ask-audit.json");
    await deploy(flow);
    const dash = await dashboard();
    const questionsTopic = `devplane/${host}/policy/questions`;
    await eventually(() => messages(questionsTopic).length === 2, "two questions on MQTT");
    const questions = messages(questionsTopic).map((m) => json<{ questionId: string; text: string; device: { id: string } }>(m));
    assert.deepStrictEqual(questions.map((q) => q.device.id).sort(), [RULE_ID.ch340, RULE_ID.cp2102].sort());
    const audit = () => messages(`devplane/${host}/policy/audit`).map((m) => json<{ device: { id: string }; decision: string; via: string }>(m));
    await eventually(() => audit().find((r) => r.device.id === RULE_ID.uno && r.decision === "allow" && r.via === "rule"), "the UNO allowed by a rule");

    const shown = idOf(flow, "ui-text", "question");
    await dash.requestLoad(shown);
    const first = await eventually(() => dash.loaded(shown), "the question on the dashboard");
    assert.match(String(first.payload), /^Allow .*\(1 more waiting\)$/);

    // Another host answers one question over MQTT...
    const cp = questions.find((q) => q.device.id === RULE_ID.cp2102);
    assert.ok(cp);
    await client?.publishAsync(`devplane/${host}/policy/answer`, JSON.stringify({ questionId: cp.questionId, decision: "block" }));
    await eventually(() => audit().find((r) => r.device.id === RULE_ID.cp2102 && r.decision === "block" && r.via === "answer"), "the CP2102 blocked by the answer");
    // ...and the dashboard's Allow button the other.
    await dash.action(idOf(flow, "ui-button", "allow button"));
    await eventually(() => audit().find((r) => r.device.id === RULE_ID.ch340 && r.decision === "allow" && r.via === "answer"), "the CH340 allowed from the dashboard");
    await eventually(() => dash.inputs(shown).some((m) => m.payload === "No question waiting"), "no question left on the dashboard");
    const table = await eventually(() => dash.inputs(idOf(flow, "ui-table", "decisions")).find((m) => Array.isArray(m.payload) && m.payload.length === 3), "three decisions in the table");
    assert.deepStrictEqual((table.payload as Array<{ decision: string }>).map((r) => r.decision), ["allow", "block", "allow"]);

    const file = path.join(dir, "audit.jsonl");
    const records = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { device: { id: string }; decision: string });
    assert.deepStrictEqual(records.map((r) => [r.device.id, r.decision]), audit().map((r) => [r.device.id, r.decision]));
    await run(process.execPath, [path.join(ROOT, "dist", "lib", "policy", "audit-cli.js"), "verify", file]);
    noErrors();
  });

  it("device-detect-inventory: the inventory as one array, and the serial ports with the name to open", async () => {
    const flow = prepare("device-detect-inventory.json");
    await deploy(flow);
    const inventory = await eventually(() => runtime().debug(idOf(flow, "debug", "inventory"))[0], "the inventory");
    const list = JSON.parse(inventory.msg) as Array<{ id: string }>;
    assert.deepStrictEqual(list.map((e) => e.id).sort(), [UNO, CH340, WEBCAM, CP2102, expectMicrophone()].sort());
    await eventually(() => runtime().debug(idOf(flow, "debug", "serial ports")).length === 3, "three serial ports");
    assert.deepStrictEqual(
      runtime().debug(idOf(flow, "debug", "serial ports")).map((d) => d.msg).sort(),
      [pty?.path, "/dev/serial/by-id/usb-1a86_USB2.0-Serial-if00-port0", "/dev/serial/by-id/usb-Silicon_Labs_CP2102_USB_to_UART_Bridge_Controller_0001-if00-port0"].sort(),
    );
    noErrors();
  });

  it("shm-publish-frames and shm-subscribe-frames: frames through a ring to Node-RED and to the Python reader", async () => {
    const publish = prepare("shm-publish-frames.json");
    const subscribe = prepare("shm-subscribe-frames.json");
    await deploy(publish, subscribe);
    const shm = await eventually(() => runtime().debug(idOf(subscribe, "debug", "msg.shm"))[0], "msg.shm from shm-subscribe");
    const info = JSON.parse(shm.msg) as { name: string; contentType: string };
    assert.deepStrictEqual([info.name, info.contentType], [rings["demo-frames"], "video/x-raw,format=GRAY8,width=640,height=480,stride=640"]);
    const frames = await readRing(rings["demo-frames"], 3);
    assert.ok(frames.every((f) => f.length === 640 * 480));
    noErrors();
  });

  describe("fleet-inventory", () => {
    let flow: FlowNode[] = [];
    const state = (id: string) => `devplane/${host}/devices/${topicLevel(id)}`;
    const config = (id: string) => `homeassistant/sensor/devplane_${discoveryId(host)}/${discoveryId(id)}/config`;

    it("publishes each device's state retained, Home Assistant discovery, and the host online", async () => {
      flow = prepare("fleet-inventory.json");
      await deploy(flow);
      const uno = await eventually(() => messages(state(UNO)).find((m) => m.text !== ""), "the UNO's state");
      const s = json<Record<string, unknown>>(uno);
      assert.deepStrictEqual([s.id, s.host, s.vid, s.pid, s.serial, s.name], [UNO, os.hostname(), "2341", "0043", UNO_SERIAL, "Arduino UNO"]);
      for (const id of [CH340, CP2102, WEBCAM, expectMicrophone()]) await eventually(() => messages(state(id)).length > 0, `the state of ${id}`);
      const ha = json<Record<string, unknown>>(await eventually(() => messages(config(UNO))[0], "the UNO's discovery config"));
      assert.deepStrictEqual([ha.state_topic, ha.availability_topic], [state(UNO), `devplane/${host}/status`]);
      assert.deepStrictEqual((ha.device as { identifiers: string[] }).identifiers, [`devplane_${discoveryId(host)}_${discoveryId(UNO)}`]);
      // What a client (a dashboard, Home Assistant) that connects later gets.
      const later = await retained(`devplane/${host}/#`, (got) => [state(UNO), `devplane/${host}/status`].every((t) => got.some((m) => m.retain && m.topic === t)));
      assert.strictEqual(later.find((m) => m.retain && m.topic === `devplane/${host}/status`)?.text, "online");
      const dash = await dashboard();
      const devices = idOf(flow, "ui-table", "devices");
      await dash.requestLoad(devices);
      const rows = await eventually(() => {
        const m = dash.loaded(devices) ?? dash.inputs(devices).slice(-1)[0];
        return Array.isArray(m?.payload) && m.payload.length === 5 ? (m.payload as Array<{ host: string; device: string }>) : undefined;
      }, "five devices on the dashboard");
      assert.ok(rows.some((r) => r.host === os.hostname() && r.device === "Arduino UNO"), JSON.stringify(rows));
      noErrors();
    });

    it("a device unplugged: its retained state and discovery config emptied; plugged in again: back", async () => {
      assert.ok(tree);
      const dash = await dashboard();
      const devices = idOf(flow, "ui-table", "devices");
      const gone = asKernel(burst(tree.sys, cp2102Path, "remove"));
      tree.unplug(cp2102Path);
      await eventually(() => fs.existsSync(uevents), "the hotplug socket");
      await sendUevents(uevents, gone);
      await eventually(() => messages(config(CP2102)).some((m) => m.text === ""), "the CP2102's discovery config emptied");
      await eventually(() => messages(state(CP2102)).some((m) => m.text === ""), "the CP2102's state emptied");
      const summary = await retained(`devplane/${host}/inventory`, (got) => got.some((m) => json<{ count: number }>(m).count === 4));
      assert.ok(!json<{ devices: string[] }>(summary[summary.length - 1]).devices.includes(CP2102));
      await eventually(() => dash.inputs(devices).some((m) => Array.isArray(m.payload) && m.payload.length === 4), "four devices left on the dashboard");

      received.length = 0;
      tree.usb(cp2102());
      await sendUevents(uevents, asKernel(burst(tree.sys, cp2102Path, "add")));
      const back = await eventually(() => messages(state(CP2102)).find((m) => m.text !== ""), "the CP2102's state again");
      assert.strictEqual(json<{ product: string }>(back).product, "CP2102 USB to UART Bridge Controller");
      await eventually(() => messages(config(CP2102)).some((m) => m.text !== ""), "the CP2102's discovery config again");
      noErrors();
    });

    it("Node-RED killed: the broker publishes the host's last will, offline", async () => {
      await runtime().stop("SIGKILL");
      red = undefined;
      await retained(`devplane/${host}/status`, (got) => got.some((m) => m.text === "offline"));
    });
  });

  /** The microphone's id: it has no serial number, so its port names it. */
  function expectMicrophone(): string {
    return "usb-0d8c:0014-port-1-4";
  }

  it("every example was deployed here", () => {
    const covered = [
      "arduino-serial.json",
      "camera-preview.json",
      "camera-to-python.json",
      "alsa-level-mqtt.json",
      "alsa-to-ring.json",
      "policy-ask-audit.json",
      "device-detect-inventory.json",
      "shm-publish-frames.json",
      "shm-subscribe-frames.json",
      "fleet-inventory.json",
    ];
    assert.deepStrictEqual(fs.readdirSync(path.join(ROOT, "examples")).sort(), covered.sort());
  });
});

