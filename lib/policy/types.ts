// Shared vocabulary of the policy engine: the device as rules see it, the
// targets, and the decision with its explanation.

/** USBGuard's rule targets. "match" and "device" parse but never decide. */
export type Target = "allow" | "block" | "reject";

/** One interface as USBGuard writes it: "cc:ss:pp", lowercase hex. */
export type InterfaceType = string;

/**
 * A device's attributes in USBGuard's terms, plus devplane's extensions.
 * Built from a device-detect event by deviceFromEvent() (lib/policy/device.ts).
 */
export interface PolicyDevice {
  /** Stable devplane id ("usb-2341:0043-7563..."), the key for grants. */
  key: string;
  /** "vvvv:pppp", lowercase hex; undefined for non-USB devices. */
  id?: string;
  serial?: string;
  name?: string;
  /** USBGuard's descriptor hash, when known. */
  hash?: string;
  parentHash?: string;
  /** sysfs port path, e.g. "1-1.2". */
  viaPort?: string;
  withInterface: InterfaceType[];
  /** "hotplug", "hardwired", "unknown" or "" as USBGuard reports it. */
  withConnectType?: string;
  label?: string;
  /** devplane extensions */
  subsystem?: string;
  devnodes?: string[];
  profile?: string;
  profileInterface?: string;
}

/** What the message brings that rules may test (devplane's `context` attribute). */
export type PolicyContext = Record<string, string>;

export interface Decision {
  decision: Target;
  /** The rule text in canonical form, or undefined when the default applied. */
  rule?: string;
  /** 0-based index of the rule in the rule set; -1 for the default or a grant. */
  ruleIndex: number;
  /** Why, in one sentence a user can read. */
  reason: string;
  /** Set when a temporary grant allowed the device. */
  grant?: { id: string; match: string; expires: number };
}

/** A parse error with its place in the text (1-based line and column). */
export class PolicyParseError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${message} (line ${line}, column ${column})`);
    this.name = "PolicyParseError";
  }
}
