// Checks profiles written by people: the device-profiles config node's list
// and the built-in database files. Each mistake is reported as a sentence that
// names the profile and the field, and a broken profile is left out rather
// than failing the whole list.
import type { MatchSpec, ProfileSpec } from "./types";

type Obj = Record<string, unknown>;

export const INTERFACES = ["uart", "uvc", "uac", "hid", "dfu", "msc", "debug", "auto", "unknown"];
const MATCH_KEYS = ["vid", "pid", "pidMask", "manufacturer", "product", "serial", "interfaceClass", "driver"] as const;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function blank(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === "string" && v.trim() === "") || (Array.isArray(v) && v.length === 0);
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** A string, a comma-separated string, or a list of strings → list of trimmed strings. */
function items(v: unknown, splitCommas: boolean): string[] | null {
  if (typeof v === "string") return (splitCommas ? v.split(",") : [v]).map((s) => s.trim()).filter((s) => s !== "");
  if (typeof v === "number") return [String(v)];
  if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) {
    return v.map((s) => String(s).trim()).filter((s) => s !== "");
  }
  return null;
}

export interface Validated {
  profiles: ProfileSpec[];
  errors: string[];
}

/**
 * Reads a list of profiles: an array, or its JSON text. Entries may be
 * flat ({ name, vid, pid, ... }, as the editor writes them) or carry a
 * `match` object (as the database files do).
 */
export function validateProfiles(raw: unknown, opts: { requireId?: boolean } = {}): Validated {
  const out: Validated = { profiles: [], errors: [] };
  let value = raw;
  if (typeof value === "string") {
    if (value.trim() === "") return out;
    try {
      value = JSON.parse(value);
    } catch (err) {
      out.errors.push(`the profile list is not valid JSON: ${(err as Error).message}`);
      return out;
    }
  }
  if (value === undefined || value === null) return out;
  if (isObj(value) && Array.isArray(value.profiles)) value = value.profiles;
  if (!Array.isArray(value)) {
    out.errors.push(`the profile list must be a list of profiles, got ${show(value)}`);
    return out;
  }
  const ids = new Set<string>();
  value.forEach((entry, i) => {
    const errors: string[] = [];
    const spec = validateOne(entry, i, errors, opts.requireId === true);
    if (spec && spec.id !== undefined) {
      if (ids.has(spec.id)) errors.push(`profile ${i + 1} ("${spec.name}"): id "${spec.id}" is used twice`);
      ids.add(spec.id);
    }
    if (errors.length > 0 || !spec) out.errors.push(...errors);
    else out.profiles.push(spec);
  });
  return out;
}

function validateOne(entry: unknown, i: number, errors: string[], requireId: boolean): ProfileSpec | undefined {
  if (!isObj(entry)) {
    errors.push(`profile ${i + 1} must be an object, got ${show(entry)}`);
    return undefined;
  }
  const name = typeof entry.name === "string" ? entry.name.trim() : "";
  const where = `profile ${i + 1}${name ? ` ("${name}")` : ""}`;
  if (!name) errors.push(`${where}: a name is required`);
  const source: Obj = isObj(entry.match) ? entry.match : entry;
  const match: MatchSpec = {};

  const hexList = (key: "vid" | "pid", allowRange: boolean): void => {
    const v = source[key];
    if (blank(v)) return;
    const list = items(v, true);
    const re = allowRange ? /^(0x)?[0-9a-f]{1,4}(-[0-9a-f]{1,4})?$/i : /^(0x)?[0-9a-f]{1,4}$/i;
    if (!list || list.length === 0 || !list.every((s) => re.test(s))) {
      errors.push(`${where}: ${key} must be hex ids such as "2341"${allowRange ? ', "0043" or a range "1000-1fff"' : ""}, got ${show(v)}`);
      return;
    }
    const norm = list.map((s) =>
      s
        .toLowerCase()
        .replace(/^0x/, "")
        .split("-")
        .map((p) => p.padStart(4, "0"))
        .join("-"),
    );
    match[key] = norm.length === 1 ? norm[0] : norm;
  };
  hexList("vid", false);
  hexList("pid", true);

  if (!blank(source.pidMask)) {
    const v = String(source.pidMask);
    if (!/^(0x)?[0-9a-f]{1,4}$/i.test(v)) errors.push(`${where}: pidMask must be a hex number such as "3eff", got ${show(source.pidMask)}`);
    else match.pidMask = v.toLowerCase().replace(/^0x/, "").padStart(4, "0");
  }

  for (const key of ["manufacturer", "product", "serial", "driver"] as const) {
    const v = source[key];
    if (blank(v)) continue;
    const list = items(v, false);
    if (!list || list.length === 0) errors.push(`${where}: ${key} must be a glob such as "Arduino*" or a list of them, got ${show(v)}`);
    else match[key] = list.length === 1 ? list[0] : list;
  }

  if (!blank(source.interfaceClass)) {
    const list = items(source.interfaceClass, true);
    if (!list || list.length === 0 || !list.every((s) => /^[0-9a-f]{2}(\/[0-9a-f]{2}){0,2}$/i.test(s))) {
      errors.push(`${where}: interfaceClass must be a 2-digit hex class such as "02", "02/02" or "0e", got ${show(source.interfaceClass)}`);
    } else {
      const norm = list.map((s) => s.toLowerCase());
      match.interfaceClass = norm.length === 1 ? norm[0] : norm;
    }
  }

  if (MATCH_KEYS.every((k) => match[k] === undefined) && !errors.some((e) => e.startsWith(`${where}: `))) {
    errors.push(`${where}: says nothing to match on: give at least a vid, a string glob or an interface class`);
  }
  if (match.pidMask !== undefined && match.pid === undefined) errors.push(`${where}: pidMask needs a pid`);

  const spec: ProfileSpec = { name, match };
  if (!blank(entry.id)) {
    if (typeof entry.id !== "string") errors.push(`${where}: id must be a string`);
    else spec.id = entry.id;
  } else if (requireId) errors.push(`${where}: an id is required`);

  if (!blank(entry.interface)) {
    const v = String(entry.interface).toLowerCase();
    if (!INTERFACES.includes(v)) errors.push(`${where}: interface must be one of ${INTERFACES.join(", ")}, got ${show(entry.interface)}`);
    else spec.interface = v;
  }
  if (!blank(entry.baudrate)) {
    const n = Number(entry.baudrate);
    if (!Number.isInteger(n) || n < 50 || n > 20000000) errors.push(`${where}: baudrate must be a whole number of bits per second such as 115200, got ${show(entry.baudrate)}`);
    else spec.baudrate = n;
  }
  for (const key of ["protocol", "family", "why"] as const) {
    if (blank(entry[key])) continue;
    if (typeof entry[key] !== "string") errors.push(`${where}: ${key} must be text`);
    else spec[key] = (entry[key] as string).trim();
  }
  if (!blank(entry.priority)) {
    const n = Number(entry.priority);
    if (!Number.isFinite(n)) errors.push(`${where}: priority must be a number, got ${show(entry.priority)}`);
    else spec.priority = n;
  }
  if (!blank(entry.confidence)) {
    const n = Number(entry.confidence);
    if (!(n >= 0 && n <= 1)) errors.push(`${where}: confidence must be between 0 and 1, got ${show(entry.confidence)}`);
    else spec.confidence = n;
  }
  if (entry.generic !== undefined) spec.generic = entry.generic === true;
  if (!blank(entry.candidates)) {
    const list = items(entry.candidates, false);
    if (!list) errors.push(`${where}: candidates must be a list of board names`);
    else spec.candidates = list;
  }
  if (isObj(entry.defaultStrings)) {
    const ds: ProfileSpec["defaultStrings"] = {};
    for (const key of ["manufacturer", "product"] as const) {
      const list = items(entry.defaultStrings[key], false);
      if (list) ds[key] = list;
    }
    spec.defaultStrings = ds;
  }
  if (isObj(entry.config)) {
    const c = entry.config;
    spec.config = {};
    if (c.auto_reconnect !== undefined) spec.config.auto_reconnect = c.auto_reconnect !== false;
    for (const key of ["buffer_size", "timeout"] as const) {
      if (blank(c[key])) continue;
      const n = Number(c[key]);
      if (!Number.isInteger(n) || n <= 0) errors.push(`${where}: config.${key} must be a positive whole number`);
      else spec.config[key] = n;
    }
  }
  return spec;
}
