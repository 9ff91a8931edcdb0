// Name resolution and profiles from real `udevadm info --export-db` dumps
// (reads ../shared/peer-tests/udevadm-checkbox; see its SOURCE.md). Events are
// built from udev properties alone, as device-detect may pass them through.
import assert from "assert";
import fs from "fs";
import os from "os";
import path from "path";
import { clearUsbIdsCache, identify, UsbIds } from "../lib/profiles";
import type { DeviceEvent } from "../lib/profiles";
import { ROOT } from "./support/rings";

const DIR = path.join(path.resolve(ROOT, "..", "shared", "peer-tests"), "udevadm-checkbox");

interface Block {
  devpath: string;
  devname?: string;
  links: string[];
  props: Record<string, string>;
}

function parseExport(text: string): Block[] {
  return text
    .split(/\n\s*\n/)
    .map((chunk) => {
      const b: Block = { devpath: "", links: [], props: {} };
      for (const line of chunk.split("\n")) {
        const m = /^([PNSLE]): (.*)$/.exec(line);
        if (!m) continue;
        if (m[1] === "P") b.devpath = m[2];
        else if (m[1] === "N") b.devname = `/dev/${m[2]}`;
        else if (m[1] === "S") b.links.push(`/dev/${m[2]}`);
        else if (m[1] === "E") {
          const eq = m[2].indexOf("=");
          b.props[m[2].slice(0, eq)] = m[2].slice(eq + 1);
        }
      }
      return b;
    })
    .filter((b) => b.devpath !== "");
}

function load(file: string): Block[] {
  return parseExport(fs.readFileSync(path.join(DIR, file), "utf8"));
}

function event(b: Block): DeviceEvent {
  const tty = b.props.SUBSYSTEM === "tty" && b.devname ? [b.devname] : [];
  return {
    action: "present",
    id: `usb-${b.props.ID_VENDOR_ID}:${b.props.ID_MODEL_ID}-${b.props.ID_SERIAL_SHORT ?? b.devpath}`,
    subsystem: b.props.SUBSYSTEM,
    path: b.devname,
    syspath: `/sys${b.devpath}`,
    properties: b.props,
    nodes: { tty, serialById: b.links.filter((l) => l.startsWith("/dev/serial/by-id/")) },
  };
}

const isUsbDevice = (b: Block) => b.props.SUBSYSTEM === "usb" && b.props.DEVTYPE === "usb_device" && /^[0-9a-f]{4}$/.test(b.props.ID_VENDOR_ID ?? "");
const isUsbTty = (b: Block) => b.props.SUBSYSTEM === "tty" && b.props.ID_BUS === "usb";

function find(blocks: Block[], vidpid: string, pred: (b: Block) => boolean): Block {
  const [vid, pid] = vidpid.split(":");
  const b = blocks.find((x) => pred(x) && x.props.ID_VENDOR_ID === vid && x.props.ID_MODEL_ID === pid);
  assert.ok(b, `${vidpid} in the dump`);
  return b;
}

const noIds = { usbIds: null };

describe("profiles: names and profiles from real udevadm dumps (reads ../shared)", function () {
  let tmp: string;
  before(function () {
    if (!fs.existsSync(path.join(DIR, "CARA_T.txt"))) this.skip();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dp-udevadm-"));
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("FTDI 0403:6015: hwdb names on the USB device, the module's own product string settles which module", () => {
    const blocks = load("ELEMENT_BIOSCIENCES_INSTRUMENT.txt");
    const r = identify(event(find(blocks, "0403:6015", isUsbDevice)), noIds);
    assert.strictEqual(r.names.vendor, "Future Technology Devices International, Ltd");
    assert.strictEqual(r.names.vendorFrom, "hwdb");
    assert.strictEqual(r.names.product, "Bridge(I2C/SPI/UART/FIFO)");
    assert.strictEqual(r.facts.product, "UMFT230XB");
    assert.strictEqual(r.facts.serial, "FT50KUPS");
    assert.strictEqual(r.profile.name, "FTDI UMFT230XB USB-serial module");
    assert.strictEqual(r.profile.interface, "uart");
    const tty = identify(event(find(blocks, "0403:6015", isUsbTty)), noIds);
    assert.strictEqual(tty.profile.name, "FTDI UMFT230XB USB-serial module");
    assert.strictEqual(tty.config.device, "/dev/serial/by-id/usb-FTDI_UMFT230XB_FT50KUPS-if00-port0");
  });

  it("Atmel 03eb:2404: the vendor from hwdb, no product name, a CDC serial port by class", () => {
    const blocks = load("CARA_T.txt");
    const r = identify(event(find(blocks, "03eb:2404", isUsbDevice)), noIds);
    assert.strictEqual(r.names.vendor, "Atmel Corp.");
    assert.strictEqual(r.names.product, undefined, "ID_MODEL is only the hex id: no product string");
    assert.strictEqual(r.profile.name, "USB CDC serial device");
    assert.strictEqual(r.profile.interface, "uart");
    assert.strictEqual(r.profile.product, undefined);
  });

  it("on a tty, hwdb names that belong to the PCI host controller are not taken for the device's", () => {
    const cara = load("CARA_T.txt");
    const atmelTty = find(cara, "03eb:2404", isUsbTty);
    assert.match(atmelTty.props.ID_MODEL_FROM_DATABASE, /Atom Processor/, "the dump has the mix-up");
    const r = identify(event(atmelTty), noIds);
    assert.doesNotMatch(r.profile.name, /Atom|xHCI/);
    assert.strictEqual(r.names.product, undefined);
    assert.strictEqual(r.config.device, "/dev/serial/by-id/usb-03eb_2404_USB_CAN_FD_Application-if00");

    const fde = load("CRYPTO_FDE.txt");
    const everTty = find(fde, "3342:0001", isUsbTty);
    assert.strictEqual(everTty.props.ID_VENDOR_FROM_DATABASE, "Intel Corporation", "the dump has the mix-up");
    const e = identify(event(everTty), noIds);
    assert.strictEqual(e.names.vendor, "Everactive");
    assert.strictEqual(e.names.vendorFrom, "descriptor");
    assert.strictEqual(e.names.product, "apex-management-controller");

    // With a usb.ids on the system, the right names come from it instead.
    const ids = path.join(tmp, "usb.ids");
    fs.writeFileSync(ids, "03eb  Atmel Corp.\n\t2404  CAN FD adapter (sample)\n");
    clearUsbIdsCache();
    const withIds = identify(event(atmelTty), { usbIds: new UsbIds(ids) });
    assert.strictEqual(withIds.names.vendor, "Atmel Corp.");
    assert.strictEqual(withIds.names.vendorFrom, "usb.ids");
    assert.strictEqual(withIds.names.product, "CAN FD adapter (sample)");
  });

  it("Sierra 1199:9091: udev's escaped product string decodes, and an unknown modem goes to unknown", () => {
    const blocks = load("CRYPTO_FDE.txt");
    const r = identify(event(find(blocks, "1199:9091", isUsbDevice)), noIds);
    assert.strictEqual(r.matched, false);
    assert.strictEqual(r.names.vendor, "Sierra Wireless, Inc.");
    assert.strictEqual(r.names.product, "Sierra Wireless EM7411 Qualcomm® Snapdragon™ X16 LTE-A");
    assert.strictEqual(r.profile.name, "Sierra Wireless EM7411 Qualcomm® Snapdragon™ X16 LTE-A");
    const tty = identify(event(find(blocks, "1199:9091", isUsbTty)), noIds);
    assert.strictEqual(tty.profile.interface, "uart", "its tty's qcserial driver makes it a serial port");
    assert.doesNotMatch(tty.profile.name, /Celeron|xHCI/);
  });

  it("STM32 0483:df11 in DFU mode", () => {
    const r = identify(event(find(load("CRYPTO_FDE.txt"), "0483:df11", isUsbDevice)), noIds);
    assert.strictEqual(r.profile.name, "STM32 in DFU bootloader mode");
    assert.strictEqual(r.profile.interface, "dfu");
    assert.strictEqual(r.names.product, "STM Device in DFU Mode");
    assert.strictEqual(r.facts.product, "STM32  BOOTLOADER");
  });

  it("webcams and a headset by class, named from their descriptor strings where udev had no hwdb", () => {
    const lenovo = load("LENOVO_T430S.txt");
    const cam = identify(event(find(lenovo, "046d:082d", isUsbDevice)), noIds);
    assert.strictEqual(cam.profile.interface, "uvc");
    assert.strictEqual(cam.names.product, "HD Pro Webcam C920");
    assert.strictEqual(cam.names.vendor, undefined, "ID_VENDOR is the hex id");
    const headset = identify(event(find(lenovo, "046d:0a0b", isUsbDevice)), noIds);
    assert.strictEqual(headset.profile.interface, "uac");
    assert.strictEqual(headset.names.vendor, "Logitech");
    const c270 = identify(event(find(load("ONE_CDROM_ONLY.txt"), "046d:0825", isUsbDevice)), noIds);
    assert.strictEqual(c270.profile.interface, "uvc");
    const ir = identify(event(find(load("CAPTURE_METADATA.txt"), "0bda:58f5", isUsbDevice)), noIds);
    assert.strictEqual(ir.profile.interface, "uvc");
  });

  it("every USB device and USB tty in every dump resolves without error, and never to its PCI controller's names", () => {
    let devices = 0;
    for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith(".txt"))) {
      const blocks = load(file);
      const byPath = new Map(blocks.map((b) => [b.devpath, b]));
      for (const b of blocks.filter((x) => isUsbDevice(x) || isUsbTty(x))) {
        devices++;
        const r = identify(event(b), noIds);
        assert.ok(r.profile.name.length > 0, `${file} ${b.devpath}`);
        assert.ok(r.profile.confidence >= 0 && r.profile.confidence <= 1);
        if (isUsbDevice(b) && b.props.ID_VENDOR_FROM_DATABASE) assert.strictEqual(r.names.vendor, b.props.ID_VENDOR_FROM_DATABASE, `${file} ${b.devpath}`);
        if (isUsbTty(b)) {
          // The USB device above the tty holds the device's true hwdb names.
          let up = path.dirname(b.devpath);
          while (up !== "/" && !(byPath.get(up) && isUsbDevice(byPath.get(up) as Block))) up = path.dirname(up);
          const dev = byPath.get(up);
          const wrong = b.props.ID_MODEL_FROM_DATABASE;
          if (dev && wrong && wrong !== dev.props.ID_MODEL_FROM_DATABASE) {
            assert.notStrictEqual(r.names.product, wrong, `${file} ${b.devpath} took its controller's name`);
          }
        }
      }
    }
    assert.ok(devices > 30, `${devices} devices`);
  });
});
