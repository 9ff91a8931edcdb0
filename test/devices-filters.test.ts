// The device-detect filters: subsystems, VID:PID with wildcards, globs on
// the descriptor strings.
import assert from "assert";
import { compileFilter, DeviceDetector, DeviceEvent, globToRegExp } from "../lib/devices";
import { FakeSysfs, fullTree } from "./fakes/sysfs";
import { ManualClock } from "./fakes/uevents";

describe("device filters", () => {
  let tree: FakeSysfs;
  let all: DeviceEvent[];
  before(() => {
    tree = fullTree();
    all = new DeviceDetector({ ...tree.roots, probe: tree.probe(), clock: new ManualClock() }).enumerate();
  });
  after(() => tree.cleanup());

  function pick(spec: Parameters<typeof compileFilter>[0]): string[] {
    const f = compileFilter(spec);
    assert.deepStrictEqual(f.errors, []);
    return all.filter((e) => f.test(e)).map((e) => e.id);
  }

  it("lets everything through when empty", () => {
    assert.strictEqual(pick({}).length, all.length);
    assert.strictEqual(pick({ subsystems: " ", ids: "", match: "" }).length, all.length);
  });

  it("subsystems: any node's subsystem or the bus counts, with friendly aliases", () => {
    assert.deepStrictEqual(pick({ subsystems: "tty" }), [
      "usb-2341:0043-75630313536351A0F0E1",
      "usb-1a86:7523-port-1-2",
      "usb-1a86:7523-port-1-5.2",
      "usb-2341:0043-9573",
      "amba-fe201000.serial",
      "pnp-00:04",
    ]);
    assert.deepStrictEqual(pick({ subsystems: "video" }), ["usb-046d:0825-A1B2C3D4", "platform-fe801000.csi"]);
    // The USB microphone also has a hidraw node (its volume buttons).
    assert.deepStrictEqual(pick({ subsystems: "audio" }), ["usb-0d8c:0014-port-1-4", "pci-0000:00:1f.3"]);
    assert.deepStrictEqual(pick({ subsystems: "hidraw" }), ["usb-0d8c:0014-port-1-4", "usb-1234:5678-port-1-5.1"]);
    assert.deepStrictEqual(pick({ subsystems: "sound, video4linux" }).length, 4);
    assert.strictEqual(pick({ subsystems: "usb" }).length, 8);
  });

  it("ids: VID:PID, with * and ? in either half, case and leading zeros forgiven", () => {
    assert.deepStrictEqual(pick({ ids: "2341:0043" }), ["usb-2341:0043-75630313536351A0F0E1", "usb-2341:0043-9573"]);
    assert.deepStrictEqual(pick({ ids: "1A86:*" }), ["usb-1a86:7523-port-1-2", "usb-1a86:7523-port-1-5.2"]);
    assert.deepStrictEqual(pick({ ids: "*:0825, 05e3:06??" }), ["usb-046d:0825-A1B2C3D4", "usb-05e3:0608-port-1-5"]);
    assert.deepStrictEqual(pick({ ids: "2341:43" }), ["usb-2341:0043-75630313536351A0F0E1", "usb-2341:0043-9573"]);
    assert.deepStrictEqual(pick({ ids: "*:*" }).length, 8, "devices off USB have no ids");
  });

  it("match: globs on manufacturer, product and serial; field= narrows to one", () => {
    assert.deepStrictEqual(pick({ match: "arduino*" }), ["usb-2341:0043-75630313536351A0F0E1", "usb-2341:0043-9573"]);
    assert.deepStrictEqual(pick({ match: "*serial*" }), ["usb-1a86:7523-port-1-2", "usb-1a86:7523-port-1-5.2"]);
    assert.deepStrictEqual(pick({ match: "serial=95?3" }), ["usb-2341:0043-9573"]);
    assert.deepStrictEqual(pick({ match: "product=ACME" }), []);
    assert.deepStrictEqual(pick({ match: "manufacturer=ACME, product=*Hub" }), ["usb-05e3:0608-port-1-5", "usb-1234:5678-port-1-5.1"]);
  });

  it("all three together must hold", () => {
    assert.deepStrictEqual(pick({ subsystems: "tty", ids: "2341:*", match: "serial=7563*" }), ["usb-2341:0043-75630313536351A0F0E1"]);
  });

  it("reports each entry it cannot understand", () => {
    assert.deepStrictEqual(compileFilter({ subsystems: "tty, bluetooth, a/b", ids: "2341, 12345:1, 2341:0043:1, xyz:*, 2341:0043", match: "product=" }).errors, [
      'subsystem "bluetooth" is none of tty, video4linux, sound, hidraw, usb',
      'subsystem "a/b" is not a subsystem name',
      '"2341" is not VID:PID (4 hex digits each, * and ? allowed, e.g. 2341:0043 or 1a86:*)',
      '"12345:1" is not VID:PID (4 hex digits each, * and ? allowed, e.g. 2341:0043 or 1a86:*)',
      '"2341:0043:1" is not VID:PID (4 hex digits each, * and ? allowed, e.g. 2341:0043 or 1a86:*)',
      '"xyz:*" is not VID:PID (4 hex digits each, * and ? allowed, e.g. 2341:0043 or 1a86:*)',
      '"product=" has no pattern after "="',
    ]);
  });

  it("globs treat regular-expression characters literally", () => {
    assert.ok(globToRegExp("Arduino (www.arduino.cc)").test("arduino (www.arduino.cc)"));
    assert.ok(!globToRegExp("a.c").test("abc"));
    assert.ok(globToRegExp("a*c").test("a\nb\nc"));
  });
});
