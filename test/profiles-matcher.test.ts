// The profile matcher and the built-in database, without Node-RED.
import assert from "assert";
import {
  builtinProfiles,
  compileUserProfiles,
  deviceFacts,
  globMatch,
  identify,
  readDatabase,
  validateProfiles,
} from "../lib/profiles";
import type { DeviceEvent } from "../lib/profiles";

function usbEvent(usb: NonNullable<DeviceEvent["usb"]>, nodes: DeviceEvent["nodes"] = { tty: ["/dev/ttyACM0"] }): DeviceEvent {
  return { action: "add", id: `usb-${usb.vid}:${usb.pid}-${usb.serial ?? "1-1"}`, subsystem: "usb", usb, nodes, properties: {} };
}

const noIds = { usbIds: null };

describe("profiles: built-in database", () => {
  it("every database file is valid, with unique ids", () => {
    const files = readDatabase();
    assert.ok(files.length >= 8, "the database has its files");
    for (const f of files) assert.deepStrictEqual(f.errors, [], f.file);
    const ids = files.flatMap((f) => f.profiles.map((p) => p.id));
    assert.strictEqual(new Set(ids).size, ids.length);
    assert.ok(builtinProfiles().length > 80);
  });

  it("every profile has a confidence between 0 and 1 and generic ones are low", () => {
    for (const f of readDatabase()) {
      for (const p of f.profiles) {
        assert.ok(typeof p.confidence === "number" && p.confidence >= 0 && p.confidence <= 1, `${p.id} confidence`);
        if (p.generic) assert.ok(p.confidence <= 0.4, `${p.id} is generic, so its confidence stays low`);
      }
    }
  });

  it("an official Arduino UNO is named with high confidence and the contract fields", () => {
    const r = identify(usbEvent({ vid: "2341", pid: "0043", serial: "8573531393235151E0D1" }), noIds);
    assert.strictEqual(r.matched, true);
    assert.strictEqual(r.profile.name, "Arduino UNO");
    assert.strictEqual(r.profile.interface, "uart");
    assert.strictEqual(r.profile.baudrate, 9600);
    assert.strictEqual(r.profile.protocol, "lines");
    assert.ok(r.profile.confidence >= 0.9);
    assert.match(r.profile.why, /2341:0043 is Arduino UNO/);
    assert.deepStrictEqual(r.profile.matched, ["vid", "pid"]);
    assert.deepStrictEqual(r.config, { device: "/dev/ttyACM0", auto_reconnect: true, buffer_size: 65536, timeout: 100 });
  });

  it("msg.config.device prefers the stable /dev/serial/by-id link", () => {
    const r = identify(usbEvent({ vid: "2341", pid: "0043" }, { tty: ["ttyACM3"], serialById: ["/dev/serial/by-id/usb-Arduino_UNO_123-if00"] }), noIds);
    assert.strictEqual(r.config.device, "/dev/serial/by-id/usb-Arduino_UNO_123-if00");
    const bare = identify(usbEvent({ vid: "2341", pid: "0043" }, { tty: ["ttyACM3"] }), noIds);
    assert.strictEqual(bare.config.device, "/dev/ttyACM3");
  });

  it("a CH340 gets a low confidence, and why says the id names the chip, not the board", () => {
    const r = identify(usbEvent({ vid: "1a86", pid: "7523", product: "USB Serial" }), noIds);
    assert.strictEqual(r.matched, true);
    assert.strictEqual(r.profile.name, "WCH CH340 USB-serial bridge");
    assert.ok(r.profile.confidence <= 0.3);
    assert.match(r.profile.why, /names the chip, not the board/);
    assert.match(r.profile.why, /factory defaults/);
  });

  it("a bridge whose strings a board maker changed says so", () => {
    const r = identify(usbEvent({ vid: "10c4", pid: "ea60", manufacturer: "Acme", product: "Weather Station" }), noIds);
    assert.ok(r.profile.confidence <= 0.3);
    assert.match(r.profile.why, /not the chip's factory defaults/);
    assert.match(r.profile.why, /"Weather Station"/);
  });

  it("descriptor strings settle a shared id: micro:bit versus another DAPLink board", () => {
    const bit = identify(usbEvent({ vid: "0d28", pid: "0204", product: "BBC micro:bit CMSIS-DAP" }), noIds);
    assert.strictEqual(bit.profile.name, "BBC micro:bit");
    assert.ok(bit.profile.confidence >= 0.9);
    assert.deepStrictEqual(bit.profile.matched, ["vid", "pid", "product"]);
    const other = identify(usbEvent({ vid: "0d28", pid: "0204", product: "DAPLink CMSIS-DAP" }), noIds);
    assert.strictEqual(other.profile.name, "Arm Mbed DAPLink board");
    assert.ok(other.profile.confidence < bit.profile.confidence);
  });

  it("the FTDI module with its own product string rises above the bare chip", () => {
    const mod = identify(usbEvent({ vid: "0403", pid: "6015", manufacturer: "FTDI", product: "UMFT230XB" }), noIds);
    assert.strictEqual(mod.profile.name, "FTDI UMFT230XB USB-serial module");
    const chip = identify(usbEvent({ vid: "0403", pid: "6015", manufacturer: "FTDI", product: "FT230X Basic UART" }), noIds);
    assert.strictEqual(chip.profile.name, "FTDI FT-X USB-serial bridge (FT230X, FT231X, FT234XD)");
    assert.ok(mod.profile.confidence > chip.profile.confidence);
  });

  it("Teensy is certain only with the Teensyduino manufacturer string", () => {
    const sure = identify(usbEvent({ vid: "16c0", pid: "0483", manufacturer: "Teensyduino", product: "USB Serial" }), noIds);
    const unsure = identify(usbEvent({ vid: "16c0", pid: "0483" }), noIds);
    assert.strictEqual(sure.profile.name, "Teensy (USB Serial)");
    assert.strictEqual(unsure.profile.name, "Teensy (USB Serial)");
    assert.ok(sure.profile.confidence > unsure.profile.confidence);
  });

  it("arduino-pico's keyboard/mouse/joystick pid bits still mean the same board", () => {
    for (const pid of ["000a", "800a", "410a", "c10a"]) {
      assert.strictEqual(identify(usbEvent({ vid: "2e8a", pid }), noIds).profile.name, "Raspberry Pi Pico", pid);
    }
    assert.strictEqual(identify(usbEvent({ vid: "2e8a", pid: "0003" }), noIds).profile.interface, "msc");
  });

  it("an interface class tells the RP2350 boot ROM from a Pico 2 with the same id", () => {
    const boot = identify({ ...usbEvent({ vid: "2e8a", pid: "000f", interfaces: [{ class: "08", subclass: "06", protocol: "50" }, { class: "ff", subclass: "00", protocol: "00" }] }), nodes: {} }, noIds);
    assert.strictEqual(boot.profile.name, "Raspberry Pi RP2350 in BOOTSEL mode");
    const sketch = identify(usbEvent({ vid: "2e8a", pid: "000f", interfaces: [{ class: "02", subclass: "02", protocol: "00" }, { class: "0a", subclass: "00", protocol: "00" }] }), noIds);
    assert.strictEqual(sketch.profile.name, "Raspberry Pi Pico 2");
  });

  it("class-level profiles: a webcam with a microphone is a camera; audio; HID; CDC", () => {
    const cam = identify(
      usbEvent(
        { vid: "046d", pid: "082d", interfaces: [{ class: "0e", subclass: "01", protocol: "00" }, { class: "0e", subclass: "02", protocol: "00" }, { class: "01", subclass: "01", protocol: "00" }, { class: "01", subclass: "02", protocol: "00" }] },
        { video: ["/dev/video0", "/dev/video1"], audio: [{ card: 1, device: 0, capture: true }] },
      ),
      noIds,
    );
    assert.strictEqual(cam.profile.interface, "uvc");
    assert.strictEqual(cam.profile.baudrate, null);
    assert.strictEqual(cam.config.device, "/dev/video0");
    assert.match(cam.profile.why, /0e \(video\)/);
    const mic = identify(usbEvent({ vid: "0d8c", pid: "0014", interfaces: [{ class: "01", subclass: "01", protocol: "00" }, { class: "01", subclass: "02", protocol: "00" }, { class: "03", subclass: "00", protocol: "00" }] }, { audio: [{ card: 2, device: 0, capture: true }] }), noIds);
    assert.strictEqual(mic.profile.interface, "uac");
    assert.strictEqual(mic.config.device, "plughw:2,0");
    const named = identify(usbEvent({ vid: "0d8c", pid: "0014", interfaces: [{ class: "01", subclass: "01", protocol: "00" }] }, { audio: [{ card: 3, device: 0, capture: false, cardId: "Device", path: "/dev/snd/pcmC3D0p" }, { card: 3, device: 0, capture: true, cardId: "Device", path: "/dev/snd/pcmC3D0c" }] }), noIds);
    assert.strictEqual(named.config.device, "plughw:CARD=Device,DEV=0");
    const kbd = identify(usbEvent({ vid: "413c", pid: "2113", interfaces: [{ class: "03", subclass: "01", protocol: "01" }] }, { hidraw: ["hidraw0"] }), noIds);
    assert.strictEqual(kbd.profile.name, "USB keyboard");
    assert.strictEqual(kbd.config.device, "/dev/hidraw0");
    const acm = identify(usbEvent({ vid: "3342", pid: "0001", interfaces: [{ class: "02", subclass: "02", protocol: "01" }, { class: "0a", subclass: "00", protocol: "00" }] }), noIds);
    assert.strictEqual(acm.profile.name, "USB CDC serial device");
    assert.strictEqual(acm.profile.interface, "uart");
  });

  it("a device nothing knows goes to unknown, with a name and a guessed interface", () => {
    const r = identify(usbEvent({ vid: "1234", pid: "5678", manufacturer: "Acme", product: "Gadget", interfaces: [{ class: "ff", subclass: "00", protocol: "00" }] }, {}), noIds);
    assert.strictEqual(r.matched, false);
    assert.strictEqual(r.profile.name, "Acme Gadget");
    assert.strictEqual(r.profile.confidence, 0);
    assert.strictEqual(r.profile.source, "none");
    assert.strictEqual(r.profile.interface, "unknown");
    assert.match(r.profile.why, /no built-in or user profile matches 1234:5678/);
  });

  it("a serial port that is not on USB (a Raspberry Pi's GPIO UART) is unknown but still openable", () => {
    const r = identify({ action: "present", id: "platform-fe201000.serial", subsystem: "tty", path: "/dev/ttyAMA0", usb: null, properties: {}, nodes: { tty: ["/dev/ttyAMA0"], serialById: [] } }, noIds);
    assert.strictEqual(r.matched, false);
    assert.strictEqual(r.profile.interface, "uart");
    assert.strictEqual(r.profile.baudrate, 9600);
    assert.strictEqual(r.config.device, "/dev/ttyAMA0");
    assert.match(r.profile.why, /no USB ids in the event/);
  });

  it("a vendor id alone gives the maker's family, at a middling confidence", () => {
    const r = identify(usbEvent({ vid: "2341", pid: "7777" }), noIds);
    assert.strictEqual(r.profile.name, "Arduino board");
    assert.strictEqual(r.profile.confidence, 0.5);
    assert.match(r.profile.why, /2341 is the vendor id of Arduino/);
  });
});

describe("profiles: user profiles", () => {
  const user = (list: unknown) => compileUserProfiles(list).profiles;

  it("override built-ins, matching on vid, pid and a glob on the serial number", () => {
    const profiles = user([{ name: "Greenhouse sensor", vid: "1a86", pid: "7523", serial: "GH-*", baudrate: "57600", protocol: "json-lines" }]);
    const r = identify(usbEvent({ vid: "1a86", pid: "7523", serial: "GH-0042", product: "USB Serial" }), { user: profiles, usbIds: null });
    assert.strictEqual(r.profile.name, "Greenhouse sensor");
    assert.strictEqual(r.profile.source, "user");
    assert.strictEqual(r.profile.baudrate, 57600);
    assert.strictEqual(r.profile.protocol, "json-lines");
    assert.match(r.profile.why, /over the built-in profile "WCH CH340 USB-serial bridge"/);
    assert.deepStrictEqual(r.profile.matched, ["vid", "pid", "serial"]);
    const other = identify(usbEvent({ vid: "1a86", pid: "7523", serial: "XX-1" }), { user: profiles, usbIds: null });
    assert.strictEqual(other.profile.source, "builtin");
  });

  it("priority decides between user profiles before specificity", () => {
    const profiles = user([
      { name: "specific", vid: "2341", pid: "0043" },
      { name: "preferred", vid: "2341", priority: 5 },
    ]);
    assert.strictEqual(identify(usbEvent({ vid: "2341", pid: "0043" }), { user: profiles, usbIds: null }).profile.name, "preferred");
    const equal = user([
      { name: "vendor only", vid: "2341" },
      { name: "vid and pid", vid: "2341", pid: "0043" },
    ]);
    assert.strictEqual(identify(usbEvent({ vid: "2341", pid: "0043" }), { user: equal, usbIds: null }).profile.name, "vid and pid");
  });

  it("match on descriptor-string globs and interface class without ids", () => {
    const profiles = user([{ name: "Any Acme camera", manufacturer: "acme*", interfaceClass: "0e", interface: "uvc" }]);
    const r = identify(usbEvent({ vid: "9999", pid: "0001", manufacturer: "ACME Corp", interfaces: [{ class: "0e", subclass: "01", protocol: "00" }] }, { video: ["/dev/video4"] }), { user: profiles, usbIds: null });
    assert.strictEqual(r.profile.name, "Any Acme camera");
    assert.strictEqual(r.config.device, "/dev/video4");
  });

  it("accept a JSON string, ranges and comma lists, and report broken entries by name", () => {
    const { profiles, errors } = compileUserProfiles(
      JSON.stringify([
        { name: "ok", vid: "0x2E8A", pid: "1000-1fff, 0005" },
        { name: "bad vid", vid: "xyz" },
        { name: "nothing to match" },
        { vid: "2341" },
        { name: "bad class", vid: "2341", interfaceClass: "video" },
        { name: "bad baud", vid: "2341", baudrate: "fast" },
      ]),
    );
    assert.strictEqual(profiles.length, 1);
    assert.deepStrictEqual(profiles[0].spec.match, { vid: "2e8a", pid: ["1000-1fff", "0005"] });
    assert.strictEqual(identify(usbEvent({ vid: "2e8a", pid: "105e" }), { user: profiles, usbIds: null }).profile.name, "ok");
    assert.strictEqual(errors.length, 5);
    assert.match(errors[0], /profile 2 \("bad vid"\): vid must be hex ids/);
    assert.match(errors[1], /"nothing to match"\): says nothing to match on/);
    assert.match(errors[2], /profile 4: a name is required/);
    assert.match(errors[3], /interfaceClass must be a 2-digit hex class/);
    assert.match(errors[4], /baudrate must be a whole number/);
    assert.match(validateProfiles("{not json").errors[0], /not valid JSON/);
    assert.match(validateProfiles({ a: 1 }).errors[0], /must be a list/);
  });
});

describe("profiles: facts from udev properties and globs", () => {
  it("decodes udev's _ENC strings and treats a hex id in ID_VENDOR as no string", () => {
    const f = deviceFacts({
      properties: {
        ID_VENDOR_ID: "03eb",
        ID_MODEL_ID: "2404",
        ID_VENDOR: "03eb",
        ID_VENDOR_ENC: "03eb",
        ID_MODEL: "Weather_Station",
        ID_MODEL_ENC: "Weather\\x20Station\\x2c\\x20v2",
        ID_SERIAL_SHORT: "ABC",
        ID_USB_INTERFACES: ":020201:0a0000:",
        ID_USB_DRIVER: "cdc_acm",
      },
    });
    assert.strictEqual(f.vid, "03eb");
    assert.strictEqual(f.manufacturer, undefined);
    assert.strictEqual(f.product, "Weather Station, v2");
    assert.strictEqual(f.serial, "ABC");
    assert.deepStrictEqual(f.interfaces.map((i) => `${i.class}${i.subclass}${i.protocol}`), ["020201", "0a0000"]);
    assert.deepStrictEqual(f.drivers, ["cdc_acm"]);
  });

  it("globs ignore case and support sets", () => {
    assert.ok(globMatch("arduino*", "Arduino LLC"));
    assert.ok(globMatch("CP210? USB to UART*", "CP2102 USB to UART Bridge Controller"));
    assert.ok(globMatch("ttyACM[0-3]", "ttyACM2"));
    assert.ok(!globMatch("ttyACM[!0-3]", "ttyACM2"));
    assert.ok(globMatch("a\\*b", "a*b"));
    assert.ok(!globMatch("a\\*b", "axb"));
    assert.ok(!globMatch("*", undefined));
  });
});
