// A device event in, msg.profile and msg.config out. Only the event is read:
// the device is never opened or probed.
import { builtinProfiles } from "./database";
import { deviceFacts, devicePathFor } from "./device";
import { globMatch } from "./glob";
import { bestMatch, CompiledProfile, interfaceFromFacts, MatchOutcome } from "./matcher";
import { DeviceNames, displayName, resolveNames } from "./names";
import type { DeviceConfig, DeviceEvent, DeviceFacts, ProfileResult, ProfileSpec } from "./types";
import type { UsbIds } from "./usb-ids";

export interface IdentifyOptions {
  /** compiled user profiles (device-profiles config node) */
  user?: readonly CompiledProfile[];
  /** defaults to the database in lib/profiles/db */
  builtins?: readonly CompiledProfile[];
  /** names for devices that udev did not name; null to never read usb.ids */
  usbIds?: UsbIds | null;
}

export interface Identification {
  /** a profile applied; false sends the message to the "unknown" output */
  matched: boolean;
  profile: ProfileResult;
  config: DeviceConfig;
  facts: DeviceFacts;
  names: DeviceNames;
}

export const DEFAULT_BAUDRATE = 9600;
export const DEFAULT_CONFIG = { auto_reconnect: true, buffer_size: 65536, timeout: 100 };

const DEFAULT_PROTOCOL: Record<string, string> = { uart: "serial", uvc: "uvc", uac: "uac", hid: "hid", dfu: "dfu", msc: "msc", debug: "debug" };

const CLASS_NAMES: Record<string, string> = {
  "01": "audio",
  "02": "communications",
  "03": "HID",
  "08": "mass storage",
  "0a": "CDC data",
  "0e": "video",
  fe: "application specific",
  ff: "vendor specific",
};

function quote(s: string): string {
  return `"${s}"`;
}

function idOf(facts: DeviceFacts): string | undefined {
  return facts.vid ? `${facts.vid}:${facts.pid ?? "????"}` : undefined;
}

function stringsText(facts: DeviceFacts): string {
  const parts: string[] = [];
  if (facts.manufacturer) parts.push(`manufacturer ${quote(facts.manufacturer)}`);
  if (facts.product) parts.push(`product ${quote(facts.product)}`);
  return parts.join(", ");
}

/** Are the strings a board maker could have changed still the chip's own? */
function stringsAreDefaults(spec: ProfileSpec, facts: DeviceFacts): boolean {
  const defaults = spec.defaultStrings ?? {};
  const isDefault = (value: string | undefined, globs: string[] | undefined): boolean =>
    value === undefined || (globs ?? []).some((g) => globMatch(g, value));
  return isDefault(facts.manufacturer, defaults.manufacturer) && isDefault(facts.product, defaults.product);
}

function explain(facts: DeviceFacts, outcome: MatchOutcome, names: DeviceNames, iface: string): string {
  const id = idOf(facts);
  const best = outcome.best;
  if (!best) {
    const who = id ? `${id}${names.vendor || names.product ? ` (${displayName(facts, names)})` : ""}` : "this device (no USB ids in the event)";
    return `no built-in or user profile matches ${who}; the interface, ${iface}, is read from its interface classes and device nodes`;
  }
  const spec = best.spec;
  const matched = outcome.matched;
  const extra = spec.why ? ` ${spec.why}` : "";
  if (best.source === "user") {
    const over = outcome.overridden ? `, over the built-in profile ${quote(outcome.overridden.spec.name)}` : "";
    const prio = spec.priority ? ` (priority ${spec.priority})` : "";
    return `user profile ${quote(spec.name)}${prio} matched ${id ?? "the device"} on ${matched.join(", ")}${over}.${extra}`;
  }
  if (spec.generic) {
    const strings = stringsText(facts);
    const clause = !strings
      ? "the device has no descriptor strings that could say which board it is on"
      : stringsAreDefaults(spec, facts)
        ? `its descriptor strings (${strings}) are the chip's factory defaults and do not say which board it is on`
        : `its descriptor strings (${strings}) are not the chip's factory defaults, so the board maker set them: a user profile matching them can name the board`;
    return `${id} is the ${spec.name}, a chip found on many different boards, so the id names the chip, not the board; ${clause}.${extra}`;
  }
  if (!matched.includes("vid") && matched.includes("interfaceClass")) {
    const classes = [...new Set(facts.interfaces.map((i) => i.class))].map((c) => `${c} (${CLASS_NAMES[c] ?? "other"})`);
    return `no profile names ${id ?? "this device"}; by its interface classes, ${classes.join(", ")}, it is ${spec.name}.${extra}`;
  }
  if (matched.length === 1 && matched[0] === "vid") {
    return `${facts.vid} is the vendor id of ${spec.family ?? spec.name}; product id ${facts.pid ?? "?"} is not in the built-in list.${extra}`;
  }
  const strings = matched.filter((m) => m === "manufacturer" || m === "product" || m === "serial").map((m) => `${m} ${quote(facts[m as "product"] ?? "")}`);
  const others = (spec.candidates ?? []).filter((c) => c !== spec.name);
  const shared = others.length > 0 ? `; boards that present the same id: ${(spec.candidates ?? []).join(", ")}` : "";
  return `${id}${strings.length ? ` with ${strings.join(", ")}` : ""} is ${spec.name}${shared}.${extra}`;
}

export function identify(event: DeviceEvent, opts: IdentifyOptions = {}): Identification {
  const facts = deviceFacts(event);
  const names = resolveNames(facts, event.properties, opts.usbIds ?? undefined);
  const profiles = [...(opts.user ?? []), ...(opts.builtins ?? builtinProfiles())];
  const outcome = bestMatch(facts, profiles);
  const spec = outcome.best?.spec;
  const nodes = event.nodes ?? {};
  const has = {
    tty: (nodes.tty?.length ?? 0) > 0 || (nodes.serialById?.length ?? 0) > 0,
    video: (nodes.video?.length ?? 0) > 0,
    audio: (nodes.audio?.length ?? 0) > 0,
    hidraw: (nodes.hidraw?.length ?? 0) > 0,
  };
  const iface = spec?.interface && spec.interface !== "auto" ? spec.interface : interfaceFromFacts(facts, has);
  const profile: ProfileResult = {
    name: spec?.name ?? displayName(facts, names),
    interface: iface,
    baudrate: iface === "uart" ? (spec?.baudrate ?? DEFAULT_BAUDRATE) : null,
    protocol: spec?.protocol ?? DEFAULT_PROTOCOL[iface] ?? "unknown",
    confidence: spec ? (spec.confidence ?? (outcome.best?.source === "user" ? 0.9 : 0.8)) : 0,
    why: explain(facts, outcome, names, iface),
    source: outcome.best?.source ?? "none",
    matched: outcome.matched,
  };
  if (spec?.family) profile.family = spec.family;
  if (spec?.candidates && spec.candidates.length > 0) profile.candidates = [...spec.candidates];
  if (names.vendor) profile.vendor = names.vendor;
  if (names.product) profile.product = names.product;
  if (spec?.id) profile.profileId = spec.id;
  const config: DeviceConfig = {
    device: devicePathFor(event, iface),
    auto_reconnect: spec?.config?.auto_reconnect ?? DEFAULT_CONFIG.auto_reconnect,
    buffer_size: spec?.config?.buffer_size ?? DEFAULT_CONFIG.buffer_size,
    timeout: spec?.config?.timeout ?? DEFAULT_CONFIG.timeout,
  };
  return { matched: spec !== undefined, profile, config, facts, names };
}
