// usb.ids: parsed lazily, once per file, and used only where udev gave no name.
import assert from "assert";
import fs from "fs";
import os from "os";
import path from "path";
import { clearUsbIdsCache, identify, parseUsbIds, resolveNames, deviceFacts, UsbIds, usbIdsReads } from "../lib/profiles";

// The usb.ids format, as usbutils and hwdata ship it (a few real entries).
const SAMPLE = [
  "#",
  "#\tList of USB ID's",
  "#",
  "# Version: 2024.01.01",
  "",
  "03eb  Atmel Corp.",
  "\t2104  AVR ISP mkII",
  "\t2404  USB CAN FD (sample entry)",
  "0403  Future Technology Devices International, Ltd",
  "\t6001  FT232 Serial (UART) IC",
  "\t6015  Bridge(I2C/SPI/UART/FIFO)",
  "1a86  QinHeng Electronics",
  "\t7523  CH340 serial converter",
  "\t\t00  an interface line that is skipped",
  "3342  Everactive (sample entry)",
  "",
  "# List of known device classes, subclasses and protocols",
  "C 00  (Defined at Interface level)",
  "C 02  Communications",
  "\t02  Abstract (modem)",
  "\t\t01  AT-commands (v.25ter)",
  "C 0e  Video",
  "\t01  Video Control",
  "AT 0409  English (US)",
  "HID 22  Report",
  "",
].join("\n");

describe("profiles: usb.ids", () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dp-usbids-"));
    file = path.join(dir, "usb.ids");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    clearUsbIdsCache();
    fs.writeFileSync(file, SAMPLE);
  });

  it("parses vendors, products and classes, skipping interfaces and other sections", () => {
    const d = parseUsbIds(SAMPLE);
    assert.strictEqual(d.vendors.get("03eb")?.name, "Atmel Corp.");
    assert.strictEqual(d.vendors.get("1a86")?.products.get("7523"), "CH340 serial converter");
    assert.strictEqual(d.vendors.get("1a86")?.products.size, 1);
    assert.strictEqual(d.classes.get("02")?.subclasses.get("02"), "Abstract (modem)");
    assert.strictEqual(d.classes.get("0e")?.name, "Video");
    assert.strictEqual(d.vendors.size, 4);
  });

  it("reads nothing until the first lookup, then parses the file once for every user", () => {
    const before = usbIdsReads();
    const a = new UsbIds([path.join(dir, "missing.ids"), file]);
    const b = new UsbIds(file);
    assert.strictEqual(usbIdsReads(), before, "constructing reads nothing");
    assert.strictEqual(a.vendor("0403"), "Future Technology Devices International, Ltd");
    assert.strictEqual(a.path, file);
    assert.strictEqual(usbIdsReads(), before + 1);
    assert.strictEqual(b.product("1A86", "7523"), "CH340 serial converter");
    assert.strictEqual(a.className("0e", "01"), "Video Control");
    assert.strictEqual(usbIdsReads(), before + 1, "the second instance uses the cached parse");
    // The cache holds: a changed file is not read again in this process.
    fs.writeFileSync(file, "0403  Changed\n");
    assert.strictEqual(new UsbIds(file).vendor("0403"), "Future Technology Devices International, Ltd");
    clearUsbIdsCache();
    assert.strictEqual(new UsbIds(file).vendor("0403"), "Changed");
  });

  it("a system without usb.ids still works, naming devices from their strings", () => {
    const none = new UsbIds([path.join(dir, "nope1"), path.join(dir, "nope2")]);
    assert.strictEqual(none.available, false);
    assert.strictEqual(none.vendor("0403"), undefined);
    const r = identify({ usb: { vid: "1234", pid: "0001", manufacturer: "Acme", product: "Thing" } }, { usbIds: none });
    assert.strictEqual(r.profile.name, "Acme Thing");
  });

  it("fills names udev did not give, and leaves udev's hwdb names alone", () => {
    const ids = new UsbIds(file);
    const facts = deviceFacts({ usb: { vid: "1a86", pid: "7523" } });
    assert.deepStrictEqual(resolveNames(facts, {}, ids), { vendor: "QinHeng Electronics", vendorFrom: "usb.ids", product: "CH340 serial converter", productFrom: "usb.ids" });
    const hw = resolveNames(facts, { ID_VENDOR_FROM_DATABASE: "QinHeng (hwdb)", ID_MODEL_FROM_DATABASE: "CH340 (hwdb)" }, ids);
    assert.deepStrictEqual(hw, { vendor: "QinHeng (hwdb)", vendorFrom: "hwdb", product: "CH340 (hwdb)", productFrom: "hwdb" });
    const r = identify({ usb: { vid: "1a86", pid: "7523" } }, { usbIds: ids });
    assert.strictEqual(r.profile.vendor, "QinHeng Electronics");
    assert.strictEqual(r.profile.product, "CH340 serial converter");
  });
});
