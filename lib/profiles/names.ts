// Human names for a device's vendor and product: udev's hwdb properties when
// they can be trusted, else usb.ids, else the device's own descriptor strings.
import type { DeviceFacts } from "./types";
import type { UsbIds } from "./usb-ids";

export type NameSource = "hwdb" | "usb.ids" | "descriptor";

export interface DeviceNames {
  vendor?: string;
  product?: string;
  vendorFrom?: NameSource;
  productFrom?: NameSource;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
}

/**
 * On a child of a USB device (a tty, a video node), udev imports the hwdb
 * entry of every ancestor: when a PCI ancestor's import runs last,
 * ID_VENDOR_FROM_DATABASE/ID_MODEL_FROM_DATABASE name the host controller
 * ("Intel Corporation", "... USB xHCI") instead of the device. The PCI
 * properties beside them give that mix-up away.
 */
export function hwdbTrusted(props: Record<string, unknown>): boolean {
  return !Object.keys(props).some((k) => k.startsWith("ID_PCI_") && k.endsWith("_FROM_DATABASE"));
}

export function resolveNames(facts: DeviceFacts, properties: Record<string, unknown> | undefined, usbIds?: UsbIds): DeviceNames {
  const props = properties ?? {};
  const names: DeviceNames = {};
  if (hwdbTrusted(props)) {
    const v = str(props.ID_VENDOR_FROM_DATABASE);
    const p = str(props.ID_MODEL_FROM_DATABASE);
    if (v) Object.assign(names, { vendor: v, vendorFrom: "hwdb" });
    if (p) Object.assign(names, { product: p, productFrom: "hwdb" });
  }
  if (facts.vid && usbIds && (!names.vendor || (!names.product && facts.pid))) {
    if (!names.vendor) {
      const v = usbIds.vendor(facts.vid);
      if (v) Object.assign(names, { vendor: v, vendorFrom: "usb.ids" });
    }
    if (!names.product && facts.pid) {
      const p = usbIds.product(facts.vid, facts.pid);
      if (p) Object.assign(names, { product: p, productFrom: "usb.ids" });
    }
  }
  if (!names.vendor && facts.manufacturer) Object.assign(names, { vendor: facts.manufacturer, vendorFrom: "descriptor" });
  if (!names.product && facts.product) Object.assign(names, { product: facts.product, productFrom: "descriptor" });
  return names;
}

/** "Atmel Corp. 2404", "FTDI FT232R USB UART", "USB device 1234:5678" */
export function displayName(facts: DeviceFacts, names: DeviceNames): string {
  const id = facts.vid ? `${facts.vid}:${facts.pid ?? "????"}` : undefined;
  if (names.vendor && names.product) {
    // "Sierra Wireless, Inc." + "Sierra Wireless EM7411": the product already says who made it.
    const maker = names.vendor.split(/[\s,]+/)[0].toLowerCase();
    return maker.length >= 3 && names.product.toLowerCase().includes(maker) ? names.product : `${names.vendor} ${names.product}`;
  }
  if (names.product) return names.product;
  if (names.vendor) return `${names.vendor} device${facts.pid ? ` ${facts.pid}` : ""}`;
  return id ? `USB device ${id}` : "unknown device";
}
