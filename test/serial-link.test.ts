// SerialLink over pseudo-terminals: the real serialport code on a real tty,
// with unplug (the pty master closes) and replug (a new pty, a new path).
import assert from "assert";
import { spawn } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { byIdNameHasSerial, classifyOpenError, DisconnectInfo, findBySerial, Frame, groupName, LinkState, parseStableId, permissionError, SerialLink } from "../lib/serial";
import { FakePty, lockIsFree, openPty, ttyFds } from "./fakes/pty";
import { eventually, ROOT } from "./support/rings";

interface Recorder {
  frames: string[];
  states: LinkState[];
  disconnects: DisconnectInfo[];
  failures: string[];
  connects: string[];
}

function record(link: SerialLink): Recorder {
  const r: Recorder = { frames: [], states: [], disconnects: [], failures: [], connects: [] };
  link.on("data", (f: Frame) => r.frames.push(f.data.toString()));
  link.on("state", (s) => r.states.push(s));
  link.on("disconnected", (d) => r.disconnects.push(d));
  link.on("failure", (e) => r.failures.push(e.message));
  link.on("connected", (i) => r.connects.push(i.path ?? ""));
  return r;
}

const lines = { mode: "delimiter" as const, delimiter: Buffer.from("\n") };

describe("serial: following a device over a pty", () => {
  const ptys: FakePty[] = [];
  const links: SerialLink[] = [];
  let tmp: string;
  const pty = async () => {
    const p = await openPty();
    ptys.push(p);
    return p;
  };
  const link = (opts: Partial<ConstructorParameters<typeof SerialLink>[0]> = {}) => {
    const l = new SerialLink({ settings: { baudRate: 115200 }, split: lines, retryMs: 50, ...opts });
    links.push(l);
    return l;
  };
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dp-serial-"));
  });
  afterEach(async () => {
    for (const l of links.splice(0)) await l.close();
    for (const p of ptys.splice(0)) p.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("opens the port, splits what the device sends, and writes to it", async () => {
    const dev = await pty();
    const l = link();
    const r = record(l);
    await l.follow({ path: dev.path });
    await eventually(() => l.state === "open", "the port to open");
    await dev.send("temp=21.5\nhum=40");
    await dev.send("\n");
    await eventually(() => r.frames.length === 2, "two lines");
    assert.deepStrictEqual(r.frames, ["temp=21.5", "hum=40"]);
    await l.write(Buffer.from("LED ON\n"));
    await eventually(() => dev.received().toString() === "LED ON\n", "the write at the device");
  });

  it("unplug: disconnected; replug at a new path announced by an add event with the same id: resumes", async () => {
    const id = "usb-2341:0043-85735313932351";
    const first = await pty();
    const l = link();
    const r = record(l);
    await l.deviceEvent({ action: "present", id, nodes: { tty: [first.path] } });
    await eventually(() => l.state === "open", "the first open");
    await first.send("a\n");
    await eventually(() => r.frames.includes("a"), "data before unplug");
    // The new pty exists before the old one goes, so it gets another number.
    const second = await pty();
    assert.notStrictEqual(second.path, first.path);
    await first.sendRead("cut-off");
    await first.unplug();
    await eventually(() => l.state === "disconnected", "the disconnect");
    assert.deepStrictEqual(r.disconnects, [{ path: first.path, id, reason: "unplugged" }]);
    assert.ok(r.frames.includes("cut-off"), "bytes without a delimiter are not lost at unplug");
    assert.ok(!ttyFds().includes(first.path), "the old tty is closed");
    // Another device's add event does not take its place while it waits for its own.
    assert.strictEqual(await l.deviceEvent({ action: "add", id: "usb-1a86:7523-x", nodes: { tty: ["/dev/ttyUSB9"] } }), false);
    await l.deviceEvent({ action: "add", id, nodes: { tty: [second.path] } });
    await eventually(() => l.state === "open" && l.info.path === second.path, "the reopen at the new path");
    await second.send("b\n");
    await eventually(() => r.frames.includes("b"), "data after replug");
    assert.deepStrictEqual(r.connects, [first.path, second.path]);
  });

  it("unplug while a read is queued (bytes came just before): the read finds the tty hung up, and that is a disconnect", async () => {
    // The child holds libuv's only pool thread so that serialport's read runs after the hangup, where it returns 0.
    const child = spawn(process.execPath, [path.join(ROOT, "dist", "test", "fakes", "hangup-child.js")], {
      env: { ...process.env, UV_THREADPOOL_SIZE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.strictEqual(code, 0, err);
    const result = JSON.parse(out) as { disconnected: boolean; states: LinkState[]; error?: string };
    assert.deepStrictEqual(result, { disconnected: true, states: ["opening", "open", "disconnected", "closed"] });
  });

  it("replug found by rescanning /dev/serial/by-id for the serial number", async () => {
    const byId = path.join(tmp, "by-id");
    fs.mkdirSync(byId);
    const first = await pty();
    const l = link({ byIdDir: byId });
    const r = record(l);
    await l.follow({ id: "usb-2341:0043-SN 42/A", path: first.path });
    await eventually(() => l.state === "open", "the first open");
    const second = await pty();
    await first.unplug();
    await eventually(() => l.state === "disconnected", "the disconnect");
    // udev names the link after the serial, with unsafe characters replaced.
    fs.symlinkSync(second.path, path.join(byId, "usb-Arduino__www.arduino.cc__0043_SN_42_A-if00"));
    await eventually(() => l.state === "open", "the reopen through the by-id link");
    assert.strictEqual(l.info.path, path.join(byId, "usb-Arduino__www.arduino.cc__0043_SN_42_A-if00"));
    await second.send("again\n");
    await eventually(() => r.frames.includes("again"), "data after replug");
  });

  it("a remove event closes the port and releases it; it stays closed", async () => {
    const dev = await pty();
    const id = "usb-2341:0043-RMV1";
    const l = link();
    const r = record(l);
    await l.deviceEvent({ action: "add", id, nodes: { tty: [dev.path] } });
    await eventually(() => l.state === "open", "the open");
    assert.ok(ttyFds().includes(dev.path));
    await l.deviceEvent({ action: "remove", id, nodes: {} });
    assert.strictEqual(l.state, "removed");
    assert.deepStrictEqual(r.disconnects, [{ path: dev.path, id, reason: "removed" }]);
    assert.ok(!ttyFds().includes(dev.path), "no fd to the tty remains");
    assert.ok(await lockIsFree(dev.path), "no lock remains");
    await new Promise((res) => setTimeout(res, 300));
    assert.strictEqual(l.state, "removed", "a removed device is not reopened by polling");
  });

  it("after a remove event the next serial device announced takes the place; without reconnect nothing reopens", async () => {
    const a = await pty();
    const b = await pty();
    const l = link();
    await l.deviceEvent({ action: "present", id: "usb-2341:0043-A", nodes: { tty: [a.path] } });
    await eventually(() => l.state === "open", "the first device");
    assert.strictEqual(await l.deviceEvent({ action: "present", id: "usb-2341:0043-B", nodes: { tty: [b.path] } }), false, "ignored while the first is open");
    await l.deviceEvent({ action: "remove", id: "usb-2341:0043-A" });
    assert.strictEqual(await l.deviceEvent({ action: "add", id: "usb-2341:0043-B", nodes: { tty: [b.path] } }), true);
    await eventually(() => l.state === "open" && l.info.id === "usb-2341:0043-B", "the second device");

    const c = await pty();
    const once = link({ autoReconnect: false });
    await once.deviceEvent({ action: "add", id: "usb-2341:0043-C", nodes: { tty: [c.path] } });
    await eventually(() => once.state === "open", "the open");
    await once.deviceEvent({ action: "remove", id: "usb-2341:0043-C" });
    await once.deviceEvent({ action: "add", id: "usb-2341:0043-C", nodes: { tty: [c.path] } });
    await new Promise((res) => setTimeout(res, 200));
    assert.strictEqual(once.state, "removed", "reconnect is off");
  });

  it("close() leaves no fd and no lock, even with an open in flight", async () => {
    const dev = await pty();
    const l = link();
    void l.follow({ path: dev.path });
    await l.close();
    assert.ok(!ttyFds().includes(dev.path));
    assert.ok(await lockIsFree(dev.path));
    const l2 = link();
    await l2.follow({ path: dev.path });
    await eventually(() => l2.state === "open", "the open");
    await l2.close();
    assert.strictEqual(l2.state, "closed");
    assert.ok(!ttyFds().includes(dev.path));
    assert.ok(await lockIsFree(dev.path));
  });

  it("a missing device: waits, then opens when it appears", async () => {
    const dev = await pty();
    const later = path.join(tmp, "ttyLATER");
    const l = link();
    const r = record(l);
    await l.follow({ path: later });
    await eventually(() => l.state === "waiting", "waiting");
    await new Promise((res) => setTimeout(res, 120));
    assert.deepStrictEqual(r.failures, [], "a missing device is not an error");
    fs.symlinkSync(dev.path, later);
    await eventually(() => l.state === "open", "the open once it appears");
  });

  it("a port another program holds is reported as in use, once", async () => {
    const dev = await pty();
    const a = link();
    await a.follow({ path: dev.path });
    await eventually(() => a.state === "open", "the first open");
    const b = link();
    const r = record(b);
    await b.follow({ path: dev.path });
    await eventually(() => r.failures.length > 0, "the failure");
    assert.match(r.failures[0], /in use by another program/);
    await new Promise((res) => setTimeout(res, 400));
    assert.strictEqual(r.failures.length, 1, "retries do not repeat the same error");
    assert.strictEqual(b.state, "error");
  });

  it("permission denied names the group that owns the device (a real EACCES, opened as nobody)", async function () {
    if (process.getuid?.() !== 0) this.skip();
    const dev = await pty();
    const dialout = 20;
    fs.chownSync(dev.path, 0, dialout);
    fs.chmodSync(dev.path, 0o660);
    const script = path.join(ROOT, "dist", "test", "fakes", "open-as.js");
    const child = spawn(process.execPath, [script, dev.path], { uid: 65534, gid: 65534, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((res) => child.on("exit", res));
    assert.strictEqual(code, 0, err);
    const result = JSON.parse(out) as { code: string; message: string; details: Record<string, string> };
    assert.strictEqual(result.code, "EACCES");
    assert.strictEqual(result.details.group, groupName(dialout));
    assert.match(result.message, new RegExp(`belongs to the group ${groupName(dialout)}; add the user \\S+ to it \\(sudo usermod -aG ${groupName(dialout)} `));
  });
});

describe("serial: errors and device names, without a port", () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dp-serial-err-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("the permission advice follows the node's group and mode", function () {
    const file = path.join(tmp, "ttyFAKE");
    fs.writeFileSync(file, "");
    const groups = path.join(tmp, "group");
    fs.writeFileSync(groups, "root:x:0:\ndialout:x:20:pi\nplugdev:x:46:\n");
    if (process.getuid?.() !== 0) this.skip();
    fs.chownSync(file, 0, 20);
    fs.chmodSync(file, 0o660);
    const e = permissionError(file, groups);
    assert.strictEqual(e.code, "EACCES");
    assert.strictEqual(e.details.group, "dialout");
    assert.match(e.message, /belongs to the group dialout; add the user \S+ to it \(sudo usermod -aG dialout /);
    fs.chmodSync(file, 0o600);
    assert.match(permissionError(file, groups).message, /its mode 600 gives its group dialout no read and write access; a udev rule/);
    assert.match(classifyOpenError(new Error("Error: Permission denied, cannot open " + file), file, groups).message, /group dialout/);
    assert.match(permissionError(path.join(tmp, "gone")).message, /usually dialout/);
  });

  it("open errors are classified from the binding's wording", () => {
    assert.strictEqual(classifyOpenError(new Error("Error: No such file or directory, cannot open /dev/ttyX"), "/dev/ttyX").code, "ENOENT");
    assert.strictEqual(classifyOpenError(new Error("Error Resource temporarily unavailable Cannot lock port"), "/dev/ttyX").code, "EBUSY");
    assert.strictEqual(classifyOpenError(new Error("Error: Inappropriate ioctl for device, cannot open /dev/null"), "/dev/null").code, "ENOTTY");
    assert.strictEqual(classifyOpenError(new Error("something else"), "/dev/ttyX").code, "EOPEN");
  });

  it("stable ids and /dev/serial/by-id names", () => {
    assert.deepStrictEqual(parseStableId("usb-2341:0043-8573531393235151E0D1"), { vid: "2341", pid: "0043", serial: "8573531393235151E0D1" });
    assert.deepStrictEqual(parseStableId("usb-1a86:7523-1-1.2"), { vid: "1a86", pid: "7523", port: "1-1.2" });
    assert.ok(byIdNameHasSerial("usb-Arduino__www.arduino.cc__0043_8573531393235151E0D1-if00", "8573531393235151E0D1"));
    assert.ok(byIdNameHasSerial("usb-FTDI_UMFT230XB_FT50KUPS-if00-port0", "FT50KUPS"));
    assert.ok(!byIdNameHasSerial("usb-FTDI_UMFT230XB_FT50KUPS2-if00-port0", "FT50KUPS"), "a longer serial is another device");
    const dir = path.join(tmp, "by-id");
    fs.mkdirSync(dir);
    for (const n of ["usb-Acme_Dual_SER1-if00", "usb-Acme_Dual_SER1-if02", "usb-Other_SER2-if00"]) fs.symlinkSync("/dev/null", path.join(dir, n));
    assert.strictEqual(findBySerial("SER1", dir), path.join(dir, "usb-Acme_Dual_SER1-if00"));
    assert.strictEqual(findBySerial("SER1", dir, "/dev/serial/by-id/usb-Acme_Dual_SER1-if02"), path.join(dir, "usb-Acme_Dual_SER1-if02"), "the same interface as before");
    assert.strictEqual(findBySerial("NOPE", dir), undefined);
    assert.strictEqual(findBySerial("SER1", path.join(tmp, "absent")), undefined);
  });
});
