// The real netlink monitor: a uevent the kernel sends arrives as raw bytes.
import assert from "assert";
import fs from "fs";
import { NetlinkUeventSource } from "../lib/hotplug/netlink";
import { assertThreadsBounded, devplaneThreads, eventually, openFds, threadCount } from "./support/rings";

const TRIGGER = "/sys/class/tty/tty1/uevent";

function canTrigger(): boolean {
  try {
    fs.accessSync(TRIGGER, fs.constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

describe("netlink uevent monitor", () => {
  it("receives the kernel's event for a synthetic change (as root, where /sys allows it)", async function () {
    if (!canTrigger()) this.skip();
    const source = new NetlinkUeventSource("kernel");
    const got: Buffer[] = [];
    source.on("message", (m) => got.push(m));
    source.start();
    try {
      assert.strictEqual(source.listening, "kernel");
      fs.writeFileSync(TRIGGER, "change");
      const msg = await eventually(
        () => got.find((m) => m.toString("latin1").startsWith("change@/devices/virtual/tty/tty1\0")),
        "the change event",
      );
      const fields = msg.toString("latin1").split("\0");
      assert.ok(fields.includes("ACTION=change"));
      assert.ok(fields.includes("SUBSYSTEM=tty"));
      assert.ok(fields.includes("DEVNAME=tty1"));
    } finally {
      source.stop();
    }
  });

  it("stops its thread and closes its socket, again and again", async function () {
    if (!NetlinkUeventSource.available()) this.skip();
    const source = new NetlinkUeventSource("kernel");
    source.start();
    source.stop();
    const fds = openFds();
    const threads = threadCount();
    for (let i = 0; i < 50; i++) {
      const s = new NetlinkUeventSource("kernel");
      s.start();
      s.stop();
    }
    assert.ok(openFds() <= fds, `fds grew from ${fds} to ${openFds()}`);
    await eventually(() => devplaneThreads("dp-uevent") === 0, "the monitor threads to end");
    assertThreadsBounded(threads, 50);
  });

  it("rejects an unknown group with a clear error", function () {
    if (!NetlinkUeventSource.available()) this.skip();
    assert.throws(() => new NetlinkUeventSource("sometimes" as "auto").start(), /group must be/);
  });
});
