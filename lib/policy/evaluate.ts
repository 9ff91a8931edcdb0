// Matching a rule against a device. Rules are compiled once into closures
// (string comparisons, Set lookups, bit masks for interfaces, glob
// matchers), because a rule set is consulted far more often than it changes.
//
// Set operators follow USBGuard's documentation (usbguard-rules.conf(5)):
//   one-of     some rule value matches some device value
//   all-of     every rule value matches some device value
//   none-of    no rule value matches any device value
//   match-all  every device value is matched by some rule value
//   equals     all-of and match-all: the same set of values
//   equals-ordered  the same sequence, position by position
// A device value that is unknown (undefined) fails every operator: a rule
// that tests what devplane does not know about a device does not match it.
import { formatCondition, PolicyEvalError, secondsOfDay } from "./conditions";
import { formatDeviceId, formatInterface, formatSet, formatString } from "./format";
import { compileGlob, GlobMatcher } from "./glob";
import type { Condition, DeviceIdValue, InterfaceValue, Rule, SetOperator, StringAttributeField, ValueSet } from "./rule";
import type { PolicyContext, PolicyDevice } from "./types";

export interface EvalOptions {
  /** The time conditions see (localtime, rule-applied(...)); defaults to now. */
  now?: Date;
  /** What the message brings (the `context KEY value` attribute). */
  context?: PolicyContext;
  /**
   * Devices allowed at the moment, for `allowed-matches(...)`. A rule set
   * that uses allowed-matches throws PolicyEvalError without it.
   */
  allowedDevices?: readonly PolicyDevice[];
}

/** A device prepared for matching: computed once per decision. */
export class DeviceView {
  readonly id: string | undefined;
  readonly vendor: string | undefined;
  readonly product: string | undefined;
  private ifaces: number[] | undefined | null = null;

  constructor(
    readonly device: PolicyDevice,
    readonly context: PolicyContext | undefined,
  ) {
    const id = device.id;
    if (typeof id === "string") {
      // Device ids compare without regard to case (USBGuard compares the
      // strings, so its "7Dbb:*" never meets sysfs's lowercase "7dbb").
      const lower = id.toLowerCase();
      this.id = lower;
      const colon = lower.indexOf(":");
      this.vendor = colon < 0 ? lower : lower.slice(0, colon);
      this.product = colon < 0 ? "" : lower.slice(colon + 1);
    }
  }

  /** Interfaces as 0xCCSSPP; undefined when the list is missing or malformed. */
  interfaces(): number[] | undefined {
    if (this.ifaces === null) this.ifaces = parseInterfaces(this.device.withInterface);
    return this.ifaces;
  }
}

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

/** "cc:ss:pp" as 0xCCSSPP, or -1. Runs once per interface per decision, hence no RegExp. */
function parseInterface(s: unknown): number {
  if (typeof s !== "string" || s.length !== 8 || s.charCodeAt(2) !== 0x3a || s.charCodeAt(5) !== 0x3a) return -1;
  const a = hexNibble(s.charCodeAt(0));
  const b = hexNibble(s.charCodeAt(1));
  const c = hexNibble(s.charCodeAt(3));
  const d = hexNibble(s.charCodeAt(4));
  const e = hexNibble(s.charCodeAt(6));
  const f = hexNibble(s.charCodeAt(7));
  if ((a | b | c | d | e | f) < 0) return -1;
  return (a << 20) | (b << 16) | (c << 12) | (d << 8) | (e << 4) | f;
}

function parseInterfaces(list: readonly string[] | undefined): number[] | undefined {
  if (!Array.isArray(list)) return undefined;
  const out = new Array<number>(list.length);
  for (let i = 0; i < list.length; i++) {
    const v = parseInterface(list[i]);
    if (v < 0) return undefined;
    out[i] = v;
  }
  return out;
}

type Test = (d: DeviceView) => boolean;

/** The generic set solver, for attributes with several values per device. */
export function solveSet<R, D>(op: SetOperator, rule: readonly R[], device: readonly D[], m: (r: R, d: D) => boolean): boolean {
  const someFor = (r: R) => {
    for (const d of device) if (m(r, d)) return true;
    return false;
  };
  const coveredByRule = (d: D) => {
    for (const r of rule) if (m(r, d)) return true;
    return false;
  };
  switch (op) {
    case "one-of":
      return rule.some(someFor);
    case "none-of":
      return !rule.some(someFor);
    case "all-of":
      return rule.every(someFor);
    case "match-all":
      return device.every(coveredByRule);
    case "equals":
      return rule.every(someFor) && device.every(coveredByRule);
    case "equals-ordered":
      if (rule.length !== device.length) return false;
      for (let i = 0; i < rule.length; i++) if (!m(rule[i], device[i])) return false;
      return true;
  }
}

/**
 * For an attribute the device has exactly one value of, the operators
 * reduce to: one-of/match-all = some rule value matches; all-of/equals =
 * every rule value matches; equals-ordered = the rule has one value and it
 * matches; none-of = no rule value matches.
 */
function compileSingle<R, D>(set: ValueSet<R>, m: (r: R, d: D) => boolean, get: (d: DeviceView) => D | undefined): Test {
  const values = set.values;
  switch (set.op) {
    case "one-of":
    case "match-all":
      return (d) => {
        const x = get(d);
        if (x === undefined) return false;
        for (const r of values) if (m(r, x)) return true;
        return false;
      };
    case "none-of":
      return (d) => {
        const x = get(d);
        if (x === undefined) return false;
        for (const r of values) if (m(r, x)) return false;
        return true;
      };
    case "all-of":
    case "equals":
      return (d) => {
        const x = get(d);
        if (x === undefined) return false;
        for (const r of values) if (!m(r, x)) return false;
        return true;
      };
    case "equals-ordered": {
      if (values.length !== 1) return () => false;
      const r0 = values[0];
      return (d) => {
        const x = get(d);
        return x !== undefined && m(r0, x);
      };
    }
  }
}

/** Exact strings: the common single-value case becomes one comparison. */
function compileSingleString(set: ValueSet<string>, get: (d: DeviceView) => string | undefined): Test {
  const distinct = [...new Set(set.values)];
  switch (set.op) {
    case "one-of":
    case "match-all": {
      if (distinct.length === 1) {
        const v = distinct[0];
        return (d) => get(d) === v;
      }
      const s = new Set(distinct);
      return (d) => {
        const x = get(d);
        return x !== undefined && s.has(x);
      };
    }
    case "all-of":
    case "equals": {
      if (distinct.length !== 1) return () => false;
      const v = distinct[0];
      return (d) => get(d) === v;
    }
    case "equals-ordered": {
      if (set.values.length !== 1) return () => false;
      const v = set.values[0];
      return (d) => get(d) === v;
    }
    case "none-of": {
      const s = new Set(distinct);
      return (d) => {
        const x = get(d);
        return x !== undefined && !s.has(x);
      };
    }
  }
}

interface IdPattern {
  vendor: string | null;
  product: string | null;
  id: string | null;
}

function idPattern(v: DeviceIdValue): IdPattern {
  const vendor = v.vendor === "*" ? null : v.vendor.toLowerCase();
  const product = v.product === "*" ? null : v.product.toLowerCase();
  return { vendor, product, id: vendor !== null && product !== null ? vendor + ":" + product : null };
}

function compileId(set: ValueSet<DeviceIdValue>): Test {
  const pats = set.values.map(idPattern);
  if (pats.every((p) => p.id !== null)) {
    return compileSingleString({ op: set.op, values: pats.map((p) => p.id as string) }, (d) => d.id);
  }
  // Wildcards: compare halves. `vvvv:*` needs the vendor, `*:*` anything.
  const m = (p: IdPattern, d: DeviceView) => p.vendor === null || (d.vendor === p.vendor && (p.product === null || d.product === p.product));
  return compileSingle<IdPattern, DeviceView>({ op: set.op, values: pats }, m, (d) => (d.id === undefined ? undefined : d));
}

interface IfacePattern {
  mask: number;
  value: number;
}

function ifacePattern(v: InterfaceValue): IfacePattern {
  let mask = 0xff0000;
  let value = v.cls << 16;
  if (v.subclass !== null) {
    mask |= 0xff00;
    value |= v.subclass << 8;
  }
  if (v.protocol !== null) {
    mask |= 0xff;
    value |= v.protocol;
  }
  return { mask, value };
}

function compileInterfaces(set: ValueSet<InterfaceValue>): Test {
  const pats = set.values.map(ifacePattern);
  const masks = pats.map((p) => p.mask);
  const values = pats.map((p) => p.value);
  const n = pats.length;
  // "does rule value r match some device interface" / "is device interface
  // x matched by some rule value", written out because this runs on every
  // candidate rule of every decision.
  const ruleHit = (r: number, list: number[]) => {
    const mask = masks[r];
    const value = values[r];
    for (let k = 0; k < list.length; k++) if ((list[k] & mask) === value) return true;
    return false;
  };
  const covered = (x: number) => {
    for (let r = 0; r < n; r++) if ((x & masks[r]) === values[r]) return true;
    return false;
  };
  switch (set.op) {
    case "one-of":
      return (d) => {
        const list = d.interfaces();
        if (list === undefined) return false;
        for (let r = 0; r < n; r++) if (ruleHit(r, list)) return true;
        return false;
      };
    case "none-of":
      return (d) => {
        const list = d.interfaces();
        if (list === undefined) return false;
        for (let r = 0; r < n; r++) if (ruleHit(r, list)) return false;
        return true;
      };
    case "all-of":
      return (d) => {
        const list = d.interfaces();
        if (list === undefined) return false;
        for (let r = 0; r < n; r++) if (!ruleHit(r, list)) return false;
        return true;
      };
    case "match-all":
      return (d) => {
        const list = d.interfaces();
        if (list === undefined) return false;
        for (let k = 0; k < list.length; k++) if (!covered(list[k])) return false;
        return true;
      };
    case "equals":
      return (d) => {
        const list = d.interfaces();
        if (list === undefined) return false;
        for (let k = 0; k < list.length; k++) if (!covered(list[k])) return false;
        for (let r = 0; r < n; r++) if (!ruleHit(r, list)) return false;
        return true;
      };
    case "equals-ordered":
      return (d) => {
        const list = d.interfaces();
        if (list === undefined || list.length !== n) return false;
        for (let k = 0; k < n; k++) if ((list[k] & masks[k]) !== values[k]) return false;
        return true;
      };
  }
}

function compileDevnodes(set: ValueSet<string>): Test {
  const globs = set.values.map((g) => compileGlob(g));
  const m = (g: GlobMatcher, x: string) => g(x);
  const op = set.op;
  return (d) => {
    const list = d.device.devnodes;
    return Array.isArray(list) && solveSet(op, globs, list, m);
  };
}

const STRING_GETTERS: Record<Exclude<StringAttributeField, "label" | "devnode">, (d: DeviceView) => string | undefined> = {
  serial: (d) => d.device.serial,
  name: (d) => d.device.name,
  hash: (d) => d.device.hash,
  parentHash: (d) => d.device.parentHash,
  viaPort: (d) => d.device.viaPort,
  withConnectType: (d) => d.device.withConnectType,
  subsystem: (d) => d.device.subsystem,
  profile: (d) => d.device.profile,
  profileInterface: (d) => d.device.profileInterface,
};

const STRING_KEYWORDS: Record<keyof typeof STRING_GETTERS, string> = {
  serial: "serial",
  name: "name",
  hash: "hash",
  parentHash: "parent-hash",
  viaPort: "via-port",
  withConnectType: "with-connect-type",
  subsystem: "subsystem",
  profile: "profile",
  profileInterface: "profile-interface",
};

/** One tested attribute: how it reads in the rule, its test, and the device's side for explanations. */
export interface AttributePart {
  text: string;
  test: Test;
  deviceSide(d: DeviceView): string | undefined;
}

function quoted(x: string | undefined): string | undefined {
  return x === undefined ? undefined : formatString(x);
}

function attributeParts(rule: Rule): AttributePart[] {
  const parts: AttributePart[] = [];
  if (rule.id) {
    parts.push({ text: "id " + formatSet(rule.id, formatDeviceId), test: compileId(rule.id), deviceSide: (d) => d.device.id });
  }
  for (const field of Object.keys(STRING_GETTERS) as (keyof typeof STRING_GETTERS)[]) {
    const set = rule[field];
    if (!set) continue;
    const get = STRING_GETTERS[field];
    parts.push({
      text: STRING_KEYWORDS[field] + " " + formatSet(set, formatString),
      test: compileSingleString(set, get),
      deviceSide: (d) => quoted(get(d)),
    });
  }
  if (rule.withInterface) {
    parts.push({
      text: "with-interface " + formatSet(rule.withInterface, formatInterface),
      test: compileInterfaces(rule.withInterface),
      deviceSide: (d) => (d.interfaces() === undefined ? undefined : "{ " + d.device.withInterface.join(" ") + " }"),
    });
  }
  if (rule.devnode) {
    parts.push({
      text: "devnode " + formatSet(rule.devnode, formatString),
      test: compileDevnodes(rule.devnode),
      deviceSide: (d) => (Array.isArray(d.device.devnodes) ? "{ " + d.device.devnodes.map(formatString).join(" ") + " }" : undefined),
    });
  }
  for (const c of rule.context ?? []) {
    const key = c.key;
    const get = (d: DeviceView) => {
      const v = d.context?.[key];
      return typeof v === "string" ? v : undefined;
    };
    parts.push({ text: `context ${key} ` + formatSet(c.set, formatString), test: compileSingleString(c.set, get), deviceSide: (d) => quoted(get(d)) });
  }
  return parts;
}

/** What conditions may consult while a rule set decides. */
export interface ConditionEnv {
  now(): Date;
  /** Index of the rule being evaluated in its rule set. */
  ruleIndex: number;
  /** ms timestamps; undefined when the rule never applied / was never evaluated. */
  lastApplied(index: number): number | undefined;
  lastEvaluated(index: number): number | undefined;
  allowedDevices: readonly PolicyDevice[] | undefined;
  deviceKey: string;
  context: PolicyContext | undefined;
}

type CondTest = (env: ConditionEnv) => boolean;

function compileCondition(c: Condition): CondTest {
  const base = compileConditionBody(c);
  return c.negated ? (env) => !base(env) : base;
}

function compileConditionBody(c: Condition): CondTest {
  switch (c.kind) {
    case "true":
      return () => true;
    case "false":
      return () => false;
    case "localtime": {
      const { begin, end } = c;
      return (env) => {
        const s = secondsOfDay(env.now());
        return s >= begin && s <= end;
      };
    }
    case "random": {
      const p = c.probability;
      return () => Math.random() < p;
    }
    case "rule-applied":
    case "rule-evaluated": {
      const within = c.withinSeconds * 1000;
      const applied = c.kind === "rule-applied";
      return (env) => {
        const last = applied ? env.lastApplied(env.ruleIndex) : env.lastEvaluated(env.ruleIndex);
        if (last === undefined) return false;
        return within === 0 || env.now().getTime() - last <= within;
      };
    }
    case "allowed-matches": {
      // The query's own conditions are not evaluated, as in USBGuard.
      const query = compileAttributes(c.query);
      const text = formatCondition(c);
      return (env) => {
        if (!env.allowedDevices) {
          throw new PolicyEvalError(`${text} needs the list of allowed devices, and none was given (EvalOptions.allowedDevices)`);
        }
        for (const dev of env.allowedDevices) {
          if (dev.key !== env.deviceKey && query(new DeviceView(dev, env.context))) return true;
        }
        return false;
      };
    }
  }
}

function compileConditions(set: ValueSet<Condition>): CondTest {
  const tests = set.values.map(compileCondition);
  const op = set.op;
  // Every condition is evaluated, as USBGuard does, so that a condition
  // that cannot be evaluated is reported whatever its neighbours say.
  return (env) => {
    let trues = 0;
    for (const t of tests) if (t(env)) trues++;
    if (op === "one-of") return trues > 0;
    if (op === "none-of") return trues === 0;
    return trues === tests.length;
  };
}

function conjunction(tests: Test[]): Test {
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0];
  if (tests.length === 2) {
    const [a, b] = tests;
    return (d) => a(d) && b(d);
  }
  if (tests.length === 3) {
    const [a, b, c] = tests;
    return (d) => a(d) && b(d) && c(d);
  }
  return (d) => {
    for (const t of tests) if (!t(d)) return false;
    return true;
  };
}

function compileAttributes(rule: Rule): Test {
  return conjunction(attributeParts(rule).map((p) => p.test));
}

export interface CompiledRule {
  rule: Rule;
  attributes: Test;
  conditions: CondTest | undefined;
  uses: { applied: boolean; evaluated: boolean; allowedMatches: boolean };
}

export function compileRule(rule: Rule): CompiledRule {
  const kinds = new Set((rule.conditions?.values ?? []).map((c) => c.kind));
  return {
    rule,
    attributes: compileAttributes(rule),
    conditions: rule.conditions ? compileConditions(rule.conditions) : undefined,
    uses: { applied: kinds.has("rule-applied"), evaluated: kinds.has("rule-evaluated"), allowedMatches: kinds.has("allowed-matches") },
  };
}

const compiledCache = new WeakMap<Rule, CompiledRule>();

/** Compiles once per rule object; rules are treated as immutable. */
export function compiledFor(rule: Rule): CompiledRule {
  let c = compiledCache.get(rule);
  if (!c) {
    c = compileRule(rule);
    compiledCache.set(rule, c);
  }
  return c;
}

export function makeEnv(device: PolicyDevice, opts: EvalOptions | undefined): ConditionEnv {
  let now = opts?.now;
  return {
    now: () => (now ??= new Date()),
    ruleIndex: -1,
    lastApplied: () => undefined,
    lastEvaluated: () => undefined,
    allowedDevices: opts?.allowedDevices,
    deviceKey: device.key,
    context: opts?.context,
  };
}

/**
 * Whether one rule, on its own, matches the device. Its target is not
 * considered. A lone rule has no history, so rule-applied and
 * rule-evaluated are false here; RuleSet keeps that history.
 */
export function ruleMatches(rule: Rule, device: PolicyDevice, opts?: EvalOptions): boolean {
  const c = compiledFor(rule);
  if (!c.attributes(new DeviceView(device, opts?.context))) return false;
  return c.conditions === undefined || c.conditions(makeEnv(device, opts));
}

/**
 * One sentence on why the rule matches the device or not, attribute by
 * attribute. With `conditionsHeld`, the conditions are reported as given
 * instead of being evaluated again (random would give another answer).
 */
export function explainRule(rule: Rule, device: PolicyDevice, opts?: EvalOptions, conditionsHeld?: boolean): string {
  const view = new DeviceView(device, opts?.context);
  const parts = attributeParts(rule);
  const fits: string[] = [];
  const misses: string[] = [];
  for (const p of parts) {
    const side = p.deviceSide(view);
    if (p.test(view)) fits.push(`${p.text} fits the device's ${side}`);
    else if (side === undefined) misses.push(`${p.text} is not known for this device`);
    else misses.push(`${p.text} does not fit the device's ${side}`);
  }
  let conds = "";
  let condOk = true;
  if (rule.conditions) {
    const text = "if " + formatSet(rule.conditions, formatCondition);
    if (conditionsHeld === undefined) {
      try {
        condOk = compiledFor(rule).conditions?.(makeEnv(device, opts)) ?? true;
      } catch (err) {
        condOk = false;
        conds = `${text} could not be evaluated: ${(err as Error).message}`;
      }
    } else {
      condOk = conditionsHeld;
    }
    if (!conds) conds = `${text} ${condOk ? "held" : "did not hold"}`;
  }
  if (misses.length === 0 && condOk) {
    const all = [...fits, ...(conds ? [conds] : [])];
    return all.length === 0 ? "it names no attribute, so it matches every device" : "it matched: " + all.join("; ");
  }
  const why = [...misses, ...(conds && !condOk ? [conds] : [])];
  return "it did not match: " + why.join("; ");
}
