// Profile matching: pure functions from a device's facts and a list of
// profiles to the profile that applies, with a confidence and a sentence
// saying why. Nothing here touches a device or the file system.
import { globMatch } from "./glob";
import type { DeviceFacts, MatchSpec, ProfileSource, ProfileSpec } from "./types";

export interface CompiledProfile {
  spec: ProfileSpec;
  source: Exclude<ProfileSource, "none">;
  /** position in its list: the earlier of two equal profiles wins */
  index: number;
  specificity: number;
  /** the fields that held, or undefined when the profile does not apply */
  test(facts: DeviceFacts): string[] | undefined;
}

export interface MatchOutcome {
  best?: CompiledProfile;
  matched: string[];
  /** the best built-in, when a user profile beat it */
  overridden?: CompiledProfile;
}

const list = (v: string | string[] | undefined): string[] | undefined =>
  v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map((s) => String(s));

interface PidTest {
  lo: number;
  hi: number;
}

function parsePid(s: string): PidTest {
  const range = /^([0-9a-f]{1,4})-([0-9a-f]{1,4})$/i.exec(s.trim());
  if (range) return { lo: parseInt(range[1], 16), hi: parseInt(range[2], 16) };
  const n = parseInt(s.trim().replace(/^0x/i, ""), 16);
  return { lo: n, hi: n };
}

function classTest(spec: string): (i: DeviceFacts["interfaces"][number]) => boolean {
  const [c, s, p] = spec.toLowerCase().split("/");
  return (i) => i.class === c && (s === undefined || i.subclass === s) && (p === undefined || i.protocol === p);
}

/** Turns a profile into a test; throws on a malformed spec (validate user input first). */
export function compileProfile(spec: ProfileSpec, source: "builtin" | "user", index: number): CompiledProfile {
  const m: MatchSpec = spec.match ?? {};
  const vids = list(m.vid)?.map((v) => v.toLowerCase().replace(/^0x/, "").padStart(4, "0"));
  const pids = list(m.pid)?.map(parsePid);
  const mask = m.pidMask !== undefined ? parseInt(m.pidMask, 16) : 0xffff;
  const strings = (["manufacturer", "product", "serial"] as const)
    .map((key) => ({ key, globs: list(m[key]) }))
    .filter((s): s is { key: "manufacturer" | "product" | "serial"; globs: string[] } => s.globs !== undefined);
  const classes = list(m.interfaceClass)?.map(classTest);
  const drivers = list(m.driver);

  let specificity = 0;
  if (vids) specificity += 10;
  if (pids) specificity += mask !== 0xffff ? 15 : pids.every((p) => p.lo === p.hi) ? 20 : 12;
  for (const s of strings) specificity += s.globs.every((g) => /^\**$/.test(g)) ? 0 : 5;
  // Flat on purpose: between class profiles, list order decides (a camera
  // with a microphone is a camera), not how many class digits are given.
  if (classes) specificity += 2;
  if (drivers) specificity += 1;

  const test = (facts: DeviceFacts): string[] | undefined => {
    const held: string[] = [];
    if (vids) {
      if (!facts.vid || !vids.includes(facts.vid)) return undefined;
      held.push("vid");
    }
    if (pids) {
      if (!facts.pid) return undefined;
      const pid = parseInt(facts.pid, 16) & mask;
      if (!pids.some((p) => (p.lo === p.hi ? (p.lo & mask) === pid : pid >= p.lo && pid <= p.hi))) return undefined;
      held.push("pid");
    }
    for (const s of strings) {
      if (!s.globs.some((g) => globMatch(g, facts[s.key]))) return undefined;
      held.push(s.key);
    }
    if (classes) {
      if (!facts.interfaces.some((i) => classes.some((t) => t(i)))) return undefined;
      held.push("interfaceClass");
    }
    if (drivers) {
      if (!facts.drivers.some((d) => drivers.some((g) => globMatch(g, d)))) return undefined;
      held.push("driver");
    }
    return held.length > 0 ? held : undefined;
  };
  return { spec, source, index, specificity, test };
}

/** User profiles beat built-ins; then higher priority; then the more specific match; then list order. */
export function rank(a: CompiledProfile, b: CompiledProfile): number {
  if (a.source !== b.source) return a.source === "user" ? -1 : 1;
  const pa = a.spec.priority ?? 0;
  const pb = b.spec.priority ?? 0;
  if (pa !== pb) return pb - pa;
  if (a.specificity !== b.specificity) return b.specificity - a.specificity;
  return a.index - b.index;
}

export function bestMatch(facts: DeviceFacts, profiles: readonly CompiledProfile[]): MatchOutcome {
  const hits: Array<{ p: CompiledProfile; held: string[] }> = [];
  for (const p of profiles) {
    const held = p.test(facts);
    if (held) hits.push({ p, held });
  }
  if (hits.length === 0) return { matched: [] };
  hits.sort((x, y) => rank(x.p, y.p));
  const outcome: MatchOutcome = { best: hits[0].p, matched: hits[0].held };
  if (hits[0].p.source === "user") outcome.overridden = hits.find((h) => h.p.source === "builtin")?.p;
  return outcome;
}

const SERIAL_DRIVERS = ["cdc_acm", "ftdi_sio", "ch341", "cp210x", "pl2303", "usbserial", "usb_serial_simple", "qcserial", "option"];

/** The interface a device offers, from its classes and drivers (for "auto" and unknown devices). */
export function interfaceFromFacts(facts: DeviceFacts, has: { tty?: boolean; video?: boolean; audio?: boolean; hidraw?: boolean } = {}): string {
  const any = (c: string, s?: string) => facts.interfaces.some((i) => i.class === c && (s === undefined || i.subclass === s));
  if (any("0e") || has.video) return "uvc";
  if (any("02", "02") || any("0a") || facts.drivers.some((d) => SERIAL_DRIVERS.includes(d)) || has.tty) return "uart";
  if (any("01") || has.audio) return "uac";
  if (any("03") || has.hidraw) return "hid";
  if (any("fe", "01")) return "dfu";
  if (any("08")) return "msc";
  return "unknown";
}
