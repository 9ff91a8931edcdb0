// The shapes device-profile reads and writes. The device event is declared
// here structurally (only the fields read), so that profiles do not depend on
// how device-detect builds it.

export interface UsbInterfaceInfo {
  class?: string;
  subclass?: string;
  protocol?: string;
  driver?: string | null;
}

export interface AudioNode {
  card?: number | string;
  device?: number | string;
  capture?: boolean | string;
  /** the card's ALSA id, stable across replug where the card number is not */
  cardId?: string | null;
  path?: string;
}

/** msg.payload of device-detect (docs: DESIGN.md, "Messages"). */
export interface DeviceEvent {
  action?: string;
  id?: string;
  subsystem?: string;
  path?: string | null;
  syspath?: string;
  properties?: Record<string, unknown>;
  usb?: {
    vid?: string;
    pid?: string;
    manufacturer?: string | null;
    product?: string | null;
    serial?: string | null;
    port?: string;
    class?: string | null;
    interfaces?: UsbInterfaceInfo[];
  } | null;
  nodes?: {
    tty?: string[];
    serialById?: string[];
    video?: string[];
    audio?: AudioNode[];
    hidraw?: string[];
  };
  timestamp?: number;
}

/** What a profile can be matched against, gathered from usb and properties. */
export interface DeviceFacts {
  vid?: string;
  pid?: string;
  manufacturer?: string;
  product?: string;
  serial?: string;
  deviceClass?: string;
  interfaces: Array<{ class: string; subclass: string; protocol: string; driver?: string }>;
  /** kernel drivers bound to its interfaces, as far as the event tells */
  drivers: string[];
}

/** The match part of a profile: every given field must hold. */
export interface MatchSpec {
  vid?: string | string[];
  /** exact ids ("0043") or inclusive ranges ("1000-1fff") */
  pid?: string | string[];
  /** compare pids under this mask: bits a firmware sets for optional features */
  pidMask?: string;
  manufacturer?: string | string[];
  product?: string | string[];
  serial?: string | string[];
  /** "cc", "cc/ss" or "cc/ss/pp": some interface has it */
  interfaceClass?: string | string[];
  driver?: string | string[];
}

export interface ConfigDefaults {
  auto_reconnect?: boolean;
  buffer_size?: number;
  timeout?: number;
}

/** A profile as written in lib/profiles/db/*.json or in a device-profiles node. */
export interface ProfileSpec {
  id?: string;
  name: string;
  family?: string;
  /** every board known to present this id, when it is more than one */
  candidates?: string[];
  match: MatchSpec;
  /** uart, uvc, uac, hid, dfu, msc, debug; "auto" reads it from the interface classes */
  interface?: string;
  baudrate?: number | null;
  protocol?: string;
  confidence?: number;
  /** a chip that sits on many boards: the id names the chip, never the board */
  generic?: boolean;
  /** the chip's factory strings; other strings were written by a board maker */
  defaultStrings?: { manufacturer?: string[]; product?: string[] };
  why?: string;
  priority?: number;
  config?: ConfigDefaults;
}

export type ProfileSource = "builtin" | "user" | "none";

/** msg.profile. The first six fields are the contract; the rest explain them. */
export interface ProfileResult {
  name: string;
  interface: string;
  baudrate: number | null;
  protocol: string;
  confidence: number;
  why: string;
  family?: string;
  candidates?: string[];
  vendor?: string;
  product?: string;
  source: ProfileSource;
  profileId?: string;
  /** the fields the profile matched on: vid, pid, manufacturer, product, serial, interfaceClass, driver */
  matched: string[];
}

/** msg.config */
export interface DeviceConfig {
  device: string | null;
  auto_reconnect: boolean;
  buffer_size: number;
  timeout: number;
}
