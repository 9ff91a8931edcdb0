// serial-stream (and device-profile in front of it) in a Node-RED runtime,
// over pseudo-terminals.
import assert from "assert";
import type { NodeMessage } from "node-red";
import { FakePty, lockIsFree, openPty, ttyFds } from "./fakes/pty";
import { helper, profileNodes as nodes } from "./support/red";
import { eventually } from "./support/rings";
import { collect, statuses } from "./support/flow";

type Msg = NodeMessage & { serial?: Record<string, unknown>; device?: Record<string, unknown>; error?: { message: string } };

const data = (msgs: Msg[]) => msgs.filter((m) => m.serial?.event === "data");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deviceEvent(action: string, tty: string[], serial = "85735313932351") {
  return {
    action,
    id: `usb-2341:0043-${serial}`,
    subsystem: "tty",
    path: tty[0] ?? null,
    syspath: "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1",
    properties: { ID_VENDOR_ID: "2341", ID_MODEL_ID: "0043" },
    usb: { vid: "2341", pid: "0043", manufacturer: "Arduino (www.arduino.cc)", product: null, serial, port: "1-1", interfaces: [{ class: "02", subclass: "02", protocol: "01", driver: "cdc_acm" }, { class: "0a", subclass: "00", protocol: "00", driver: "cdc_acm" }] },
    nodes: { tty, serialById: [], video: [], videoMetadata: [], audio: [], hidraw: [] },
    timestamp: Date.now(),
  };
}

function stream(extra: Record<string, unknown>) {
  return { id: "s", type: "serial-stream", name: "", device: "", baudrate: "", split: "delimiter", delimiter: "\\n", timeout: "", length: "", output: "string", keepDelimiter: false, addDelimiter: false, reconnect: true, wires: [["out"]], ...extra };
}

describe("serial-stream in Node-RED", () => {
  const ptys: FakePty[] = [];
  const pty = async () => {
    const p = await openPty();
    ptys.push(p);
    return p;
  };
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    for (const p of ptys.splice(0)) p.dispose();
  });

  it("splits by a multi-byte delimiter, with the device path as topic", async () => {
    const dev = await pty();
    await helper.load(nodes, [stream({ device: dev.path, delimiter: "\\r\\n" }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    await dev.send("T=21.5\r");
    await dev.send("\nH=40\r\nP=10");
    await eventually(() => data(out).length === 2, "two frames");
    assert.deepStrictEqual(data(out).map((m) => m.payload), ["T=21.5", "H=40"]);
    assert.strictEqual(data(out)[0].topic, dev.path);
    assert.deepStrictEqual(data(out)[0].device, { path: dev.path });
  });

  it("splits by silence (timeout)", async () => {
    const dev = await pty();
    await helper.load(nodes, [stream({ device: dev.path, split: "timeout", timeout: 400 }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    await dev.send("ab");
    await sleep(20);
    await dev.send("cd");
    await eventually(() => data(out).length === 1, "the first frame");
    await dev.send("ef");
    await eventually(() => data(out).length === 2, "the second frame");
    assert.deepStrictEqual(data(out).map((m) => m.payload), ["abcd", "ef"]);
  });

  it("splits by fixed length into Buffers", async () => {
    const dev = await pty();
    await helper.load(nodes, [stream({ device: dev.path, split: "length", length: 3, output: "buffer" }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    await dev.send(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    await eventually(() => data(out).length === 2, "two frames");
    assert.deepStrictEqual(data(out).map((m) => [...(m.payload as Buffer)]), [[1, 2, 3], [4, 5, 6]]);
  });

  it("does not split at all with split none", async () => {
    const dev = await pty();
    await helper.load(nodes, [stream({ device: dev.path, split: "none" }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    await dev.send("no\nsplit\nhere");
    await eventually(() => data(out).map((m) => m.payload).join("") === "no\nsplit\nhere", "all the bytes");
  });

  it("writes strings, Buffers and byte arrays, with the delimiter added when asked", async () => {
    const dev = await pty();
    await helper.load(nodes, [stream({ device: dev.path, addDelimiter: true }), { id: "out", type: "helper" }]);
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    const s = helper.getNode("s");
    s.receive({ payload: "LED ON" });
    await eventually(() => dev.received().length === 7, "the first write");
    s.receive({ payload: Buffer.from([0x41, 0x42]) });
    await eventually(() => dev.received().length === 10, "the second write");
    s.receive({ payload: [0x43] });
    await eventually(() => dev.received().length === 12, "the third write");
    assert.strictEqual(dev.received().toString(), "LED ON\nAB\nC\n");
  });

  it("follows a device-profile message; unplug sends disconnected; replug at a new path resumes; remove closes", async () => {
    const first = await pty();
    await helper.load(nodes, [
      { id: "p", type: "device-profile", profiles: "", wires: [["s"], ["s"]] },
      stream({}),
      { id: "out", type: "helper" },
    ]);
    const out = collect<Msg>(helper.getNode("out"));
    const seen = statuses(helper.getNode("s"), ["fill", "shape", "text"]);
    const p = helper.getNode("p");
    p.receive({ payload: deviceEvent("present", [first.path]) });
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    const id = "usb-2341:0043-85735313932351";
    assert.deepStrictEqual(out[0].device, { path: first.path, id, name: "Arduino UNO" });
    assert.ok(seen.some((st) => st.fill === "green" && st.text?.endsWith(" 9600")), "the profile's rate, shown in the status");
    await first.send("hello\n");
    await eventually(() => data(out).length === 1, "data");
    assert.strictEqual(data(out)[0].topic, id, "data carries the device's stable id");

    const second = await pty();
    await first.unplug();
    await eventually(() => out.some((m) => m.serial?.event === "disconnected"), "the disconnected message");
    const gone = out.find((m) => m.serial?.event === "disconnected") as Msg;
    assert.strictEqual(gone.payload, "disconnected");
    assert.strictEqual(gone.topic, id);
    assert.strictEqual(gone.serial?.reason, "unplugged");
    await eventually(() => seen.some((st) => st.fill === "red" && st.text === "disconnected"), "the status");

    p.receive({ payload: deviceEvent("add", [second.path]) });
    await eventually(() => out.filter((m) => m.serial?.event === "connected").length === 2, "reconnected");
    await second.send("back\n");
    await eventually(() => data(out).length === 2, "data after replug");
    assert.strictEqual(data(out)[1].device?.path, second.path);

    p.receive({ payload: deviceEvent("remove", []) });
    await eventually(() => out.some((m) => m.serial?.reason === "removed"), "the removed message");
    assert.ok(!ttyFds().includes(second.path), "no fd to the tty after remove");
    assert.ok(await lockIsFree(second.path));
  });

  it("leaves no fd and no lock behind after a redeploy, and the next deploy opens the port again", async () => {
    const dev = await pty();
    const flow = [stream({ device: dev.path }), { id: "out", type: "helper" }];
    await helper.load(nodes, flow);
    let out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    assert.ok(ttyFds().includes(dev.path));
    await helper.unload();
    assert.ok(!ttyFds().includes(dev.path), "no fd to the tty remains");
    assert.ok(await lockIsFree(dev.path), "the port is not locked");
    await helper.load(nodes, flow);
    out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected after redeploy");
    await dev.send("ok\n");
    await eventually(() => data(out).length === 1, "data after redeploy");
  });

  it("fails wrong payloads and writes without a device through done(err); a missing device waits", async () => {
    await helper.load(nodes, [
      { id: "st", type: "status", scope: null, wires: [["status"]] },
      stream({ device: "/dev/ttyDEVPLANE-ABSENT" }),
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "out", type: "helper" },
      { id: "caught", type: "helper" },
      { id: "status", type: "helper" },
    ]);
    const caught = collect<Msg>(helper.getNode("caught"));
    const status = collect<Msg>(helper.getNode("status")) as Array<Msg & { status?: { fill?: string; text?: string } }>;
    const s = helper.getNode("s");
    await eventually(() => status.some((m) => m.status?.fill === "yellow" && m.status.text === "waiting for device"), "the waiting status");
    s.receive({ payload: 42 });
    s.receive({ payload: true });
    s.receive({ payload: { hello: "world" } });
    s.receive({ payload: [1, 300] });
    s.receive({ payload: "hello" });
    await eventually(() => caught.length === 5, "five caught errors");
    const texts = caught.map((m) => m.error?.message ?? "");
    assert.match(texts[0], /msg.payload must be a Buffer, a string or an array of bytes \(0-255\) to write, or a device event; got a number/);
    assert.match(texts[1], /got a boolean/);
    assert.match(texts[2], /got an object that is not a device event/);
    assert.match(texts[3], /got an array with non-byte values/);
    assert.match(texts[4], /not connected: waiting for \/dev\/ttyDEVPLANE-ABSENT/);
  });

  it("refuses a bad delimiter at deploy with a clear status and error", async () => {
    await helper.load(nodes, [stream({ delimiter: "\\q" }), { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] }, { id: "out", type: "helper" }, { id: "caught", type: "helper" }]);
    const caught = collect<Msg>(helper.getNode("caught"));
    helper.getNode("s").receive({ payload: "x" });
    await eventually(() => caught.length === 1, "the caught error");
    assert.match(caught[0].error?.message ?? "", /bad configuration: the delimiter "\\\\q" has an unknown escape/);
  });

  it("lists serial ports for the editor", async () => {
    await helper.load(nodes, [stream({})]);
    const res = await helper.request().get("/serial-stream/ports");
    assert.strictEqual(res.status, 200);
    assert.ok(Array.isArray(res.body));
  });
});
