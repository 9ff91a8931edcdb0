// The netlink wire formats through the real parser: the kernel's
// "ACTION@DEVPATH\0KEY=VALUE..." and udevd's "libudev" header.
import assert from "assert";
import { parseUevent, UeventParseError } from "../lib/devices";
import { kernelMessage, udevMessage } from "./fakes/uevents";

const DEV = "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/tty/ttyACM0";

function rejects(buf: Buffer, reason: RegExp): void {
  assert.throws(
    () => parseUevent(buf),
    (err: unknown) => err instanceof UeventParseError && reason.test(err.message),
  );
}

describe("uevent wire formats", () => {
  it("parses a kernel message as the kernel writes it", () => {
    const raw = Buffer.from(`add@${DEV}\0ACTION=add\0DEVPATH=${DEV}\0SUBSYSTEM=tty\0MAJOR=166\0MINOR=0\0DEVNAME=ttyACM0\0SEQNUM=4711\0`, "latin1");
    const ev = parseUevent(raw);
    assert.deepStrictEqual(ev, {
      format: "kernel",
      action: "add",
      devpath: DEV,
      subsystem: "tty",
      seqnum: 4711,
      properties: { ACTION: "add", DEVPATH: DEV, SUBSYSTEM: "tty", MAJOR: "166", MINOR: "0", DEVNAME: "ttyACM0", SEQNUM: "4711" },
    });
  });

  it("takes ACTION and DEVPATH from the header when the body leaves them out", () => {
    const ev = parseUevent(Buffer.from(`bind@/devices/x/1-1\0SUBSYSTEM=usb\0DEVTYPE=usb_device\0DRIVER=usb`));
    assert.strictEqual(ev.action, "bind");
    assert.strictEqual(ev.devpath, "/devices/x/1-1");
    assert.strictEqual(ev.devtype, "usb_device");
    assert.strictEqual(ev.properties.DRIVER, "usb");
  });

  it("parses udevd's message: header, magic in network order, properties at their offset", () => {
    const buf = udevMessage("add", DEV, { SUBSYSTEM: "tty", DEVNAME: "/dev/ttyACM0", DEVLINKS: "/dev/serial/by-id/x /dev/serial/by-path/y", ID_VENDOR_ID: "2341", SEQNUM: 9, USEC_INITIALIZED: 123 });
    assert.strictEqual(buf.readUInt32BE(8), 0xfeedcafe);
    const ev = parseUevent(buf);
    assert.strictEqual(ev.format, "udev");
    assert.strictEqual(ev.action, "add");
    assert.strictEqual(ev.devpath, DEV);
    assert.strictEqual(ev.subsystem, "tty");
    assert.strictEqual(ev.seqnum, 9);
    assert.strictEqual(ev.properties.DEVLINKS, "/dev/serial/by-id/x /dev/serial/by-path/y");
    assert.strictEqual(ev.properties.ID_VENDOR_ID, "2341");
  });

  it("follows properties_off rather than assuming the header is 40 bytes", () => {
    // A later udev with a longer header: 8 bytes more, then the same properties.
    const plain = udevMessage("remove", DEV, { SUBSYSTEM: "tty" });
    const bigger = Buffer.concat([plain.subarray(0, 40), Buffer.alloc(8), plain.subarray(40)]);
    const le = bigger.readUInt32LE(8 + 4) === 40;
    const set = (at: number, v: number) => (le ? bigger.writeUInt32LE(v, at) : bigger.writeUInt32BE(v, at));
    set(12, 48);
    set(16, 48);
    const ev = parseUevent(bigger);
    assert.strictEqual(ev.action, "remove");
    assert.strictEqual(ev.subsystem, "tty");
  });

  it("keeps a value's '=' signs and non-ASCII bytes", () => {
    const ev = parseUevent(kernelMessage("change", "/devices/x", { SUBSYSTEM: "sound", NAME: "a=b=c", ID_MODEL: "Cámara" }));
    assert.strictEqual(ev.properties.NAME, "a=b=c");
    assert.strictEqual(ev.properties.ID_MODEL, "Cámara");
  });

  it("accepts every action the kernel sends, move with its old path", () => {
    for (const action of ["add", "remove", "change", "move", "online", "offline", "bind", "unbind"]) {
      assert.strictEqual(parseUevent(kernelMessage(action, "/devices/x", { SUBSYSTEM: "usb" })).action, action);
    }
    const mv = parseUevent(kernelMessage("move", "/devices/virtual/net/eth1", { DEVPATH_OLD: "/devices/virtual/net/eth0" }));
    assert.strictEqual(mv.properties.DEVPATH_OLD, "/devices/virtual/net/eth0");
  });

  describe("refuses malformed messages, saying why", () => {
    it("empty, or neither format", () => {
      rejects(Buffer.alloc(0), /empty/);
      rejects(Buffer.from("hello world\0A=B"), /neither a kernel uevent.*nor a libudev/);
      rejects(Buffer.from("@/devices/x\0A=B"), /neither/);
      rejects(Buffer.from("add@\0A=B"), /neither/);
    });

    it("kernel: a field that is not KEY=VALUE, a header that contradicts the body", () => {
      rejects(Buffer.from("add@/devices/x\0ACTION=add\0garbage\0"), /"garbage" is not KEY=VALUE/);
      rejects(Buffer.from("add@/devices/x\0=value\0"), /not KEY=VALUE/);
      rejects(Buffer.from("add@/devices/x\0BAD KEY=1\0"), /not a property name/);
      rejects(Buffer.from("add@/devices/x\0ACTION=remove\0"), /header says "add" but ACTION="remove"/);
      rejects(Buffer.from("add@/devices/x\0DEVPATH=/devices/y\0"), /header names/);
    });

    it("kernel: unknown actions, unclean paths, a SEQNUM that is not a number", () => {
      rejects(kernelMessage("explode", "/devices/x"), /unknown action "explode"/);
      rejects(kernelMessage("add", "/devices/../../etc"), /not a clean absolute path/);
      rejects(kernelMessage("add", "devices/x"), /not a clean absolute path/);
      rejects(kernelMessage("add", "/devices//x"), /not a clean absolute path/);
      rejects(kernelMessage("add", "/devices/x", { SEQNUM: "12a" }), /SEQNUM "12a" is not a number/);
    });

    it("udev: truncated header, wrong magic, properties outside the message", () => {
      const good = udevMessage("add", DEV, { SUBSYSTEM: "tty" });
      rejects(good.subarray(0, 20), /shorter than its 40-byte header/);
      rejects(udevMessage("add", DEV, {}, (h) => h.writeUInt32LE(0xfeedcafe, 8)), /magic 0xfecaedfe is not 0xfeedcafe/);
      const le = good.readUInt32LE(12) === 40;
      const patch = (at: number, v: number) => (h: Buffer) => (le ? h.writeUInt32LE(v, at) : h.writeUInt32BE(v, at));
      rejects(udevMessage("add", DEV, {}, patch(20, 100000)), /do not fit/);
      rejects(udevMessage("add", DEV, {}, patch(20, 0)), /do not fit/);
      rejects(udevMessage("add", DEV, {}, patch(16, 8)), /do not fit/);
      rejects(udevMessage("add", DEV, {}, patch(12, 4)), /header_size 4/);
      rejects(good.subarray(0, good.length - 10), /do not fit/);
    });

    it("udev: a body without ACTION or DEVPATH", () => {
      const body = Buffer.from("SUBSYSTEM=tty\0", "latin1");
      const m = udevMessage("add", DEV, {});
      const header = Buffer.from(m.subarray(0, 40));
      const le = header.readUInt32LE(12) === 40;
      if (le) header.writeUInt32LE(body.length, 20);
      else header.writeUInt32BE(body.length, 20);
      rejects(Buffer.concat([header, body]), /no ACTION/);
    });
  });
});
