// A rules file, compiled and indexed. First match wins, as in USBGuard; the
// index only narrows which rules are tried. Each rule goes into buckets
// keyed by something every device it can match must have: the exact
// "vvvv:pppp" or the vendor its id requires; failing an id, the class of an
// interface its with-interface requires; failing that, its via-port. Rules
// with none of these (`*:*`, none-of, match-all, nothing) go to a fallback
// list. A decision merges the device's buckets and the fallback in rule
// order, so the first rule that matches is the one a scan from the top
// would have found.
import { compiledFor, CompiledRule, ConditionEnv, DeviceView, EvalOptions, explainRule } from "./evaluate";
import { formatRule } from "./format";
import { parseRuleLine } from "./parser";
import type { Rule, SetOperator } from "./rule";
import type { PolicyDevice, Target } from "./types";

export type { EvalOptions } from "./evaluate";

export interface RuleMatch {
  target: Target;
  /** Canonical text of the rule. */
  rule: string;
  /** 0-based index among the rules of the set. */
  ruleIndex: number;
  /** Why the rule matched, attribute by attribute (computed when first read). */
  readonly reason?: string;
}

class Match implements RuleMatch {
  private why: string | undefined;

  constructor(
    readonly target: Target,
    readonly rule: string,
    readonly ruleIndex: number,
    private readonly ast: Rule,
    private readonly device: PolicyDevice,
    private readonly opts: EvalOptions | undefined,
  ) {}

  get reason(): string {
    this.why ??= `rule ${this.ruleIndex + 1} (${this.rule}) decided ${this.target}: ${explainRule(this.ast, this.device, this.opts, true)}`;
    return this.why;
  }

  toJSON(): object {
    return { target: this.target, rule: this.rule, ruleIndex: this.ruleIndex, reason: this.reason };
  }
}

function isDeciding(rule: Rule): rule is Rule & { target: Target } {
  return rule.target === "allow" || rule.target === "block" || rule.target === "reject";
}

type Keys = { kind: "id"; exact: string[]; vendors: string[] } | { kind: "class"; classes: number[] } | { kind: "port"; ports: string[] };

/** Operators under which any single matching value is enough (so each is a key). */
function anyValueSuffices(op: SetOperator): boolean {
  return op === "one-of" || op === "match-all";
}

/**
 * Keys a rule can only match under, or undefined when it may match a device
 * that has none of them. With one-of (and, for a single-valued attribute,
 * match-all) any value may be the one that matches, so every value is a key;
 * with all-of, equals and equals-ordered every value must match, so any one
 * value is a sufficient key.
 */
function indexKeys(rule: Rule): Keys | undefined {
  const id = rule.id;
  if (id && id.op !== "none-of") {
    const exact: string[] = [];
    const vendors: string[] = [];
    const add = (v: { vendor: string; product: string }) => {
      if (v.product === "*") vendors.push(v.vendor.toLowerCase());
      else exact.push((v.vendor + ":" + v.product).toLowerCase());
    };
    if (anyValueSuffices(id.op)) {
      if (id.values.every((v) => v.vendor !== "*")) {
        id.values.forEach(add);
        return { kind: "id", exact: [...new Set(exact)], vendors: [...new Set(vendors)] };
      }
    } else {
      const pick = id.values.find((v) => v.product !== "*") ?? id.values.find((v) => v.vendor !== "*");
      if (pick) {
        add(pick);
        return { kind: "id", exact, vendors };
      }
    }
  }
  // match-all is vacuously true for a device without interfaces: no key.
  const wi = rule.withInterface;
  if (wi && wi.op !== "none-of" && wi.op !== "match-all") {
    const classes = wi.op === "one-of" ? [...new Set(wi.values.map((v) => v.cls))] : [wi.values[0].cls];
    return { kind: "class", classes };
  }
  const port = rule.viaPort;
  if (port && port.op !== "none-of") {
    return { kind: "port", ports: anyValueSuffices(port.op) ? [...new Set(port.values)] : [port.values[0]] };
  }
  return undefined;
}

const SMALL = 24;

export class RuleSet {
  readonly size: number;
  /** True when some rule uses allowed-matches: evaluate() then needs opts.allowedDevices. */
  readonly usesAllowedMatches: boolean;
  private readonly texts: string[];
  private readonly compiled: (CompiledRule | undefined)[];
  private readonly exact = new Map<string, number[]>();
  private readonly vendor = new Map<string, number[]>();
  private readonly byClass = new Map<number, number[]>();
  private readonly byPort = new Map<string, number[]>();
  private readonly fallback: number[] = [];
  private readonly lists: (readonly number[])[] = [];
  private positions = new Int32Array(8);
  /** ms of the last application / evaluation per rule; NaN = never. */
  private readonly applied: Float64Array;
  private readonly evaluated: Float64Array;
  private readonly tracksApplied: boolean;
  /** Rules whose conditions ask whether they were evaluated before, ascending. */
  private readonly tracksEvaluated: number[] = [];

  private constructor(private readonly asts: readonly Rule[]) {
    this.size = asts.length;
    this.texts = asts.map(formatRule);
    this.compiled = asts.map((r) => (isDeciding(r) ? compiledFor(r) : undefined));
    let applied = false;
    let allowed = false;
    // Below a few dozen rules, bucket lookups and merging cost more than
    // trying every rule.
    const indexed = this.compiled.filter((c) => c !== undefined).length > SMALL;
    this.compiled.forEach((c, i) => {
      if (!c) return;
      applied ||= c.uses.applied;
      allowed ||= c.uses.allowedMatches;
      if (c.uses.evaluated) this.tracksEvaluated.push(i);
      const keys = indexed ? indexKeys(c.rule) : undefined;
      if (!keys) {
        this.fallback.push(i);
      } else if (keys.kind === "id") {
        for (const k of keys.exact) push(this.exact, k, i);
        for (const k of keys.vendors) push(this.vendor, k, i);
      } else if (keys.kind === "class") {
        for (const k of keys.classes) push(this.byClass, k, i);
      } else {
        for (const k of keys.ports) push(this.byPort, k, i);
      }
    });
    this.tracksApplied = applied;
    this.usesAllowedMatches = allowed;
    this.applied = new Float64Array(asts.length).fill(NaN);
    this.evaluated = new Float64Array(asts.length).fill(NaN);
  }

  /**
   * A rules file: one rule per line; blank lines, `#` comments (whole-line
   * or after a rule) and surrounding blanks are allowed. Throws
   * PolicyParseError with the line and column of the first error.
   */
  static parse(text: string): RuleSet {
    const rules: Rule[] = [];
    const lines = text.replace(/^\uFEFF/, "").split("\n");
    lines.forEach((raw, i) => {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      const rule = parseRuleLine(line, i + 1);
      if (rule) rules.push(rule);
    });
    return new RuleSet(rules);
  }

  static empty(): RuleSet {
    return new RuleSet([]);
  }

  /** A set from rules already parsed (they are not copied; do not change them afterwards). */
  static fromRules(rules: readonly Rule[]): RuleSet {
    return new RuleSet([...rules]);
  }

  /** Canonical text of each rule, in order. */
  rules(): string[] {
    return [...this.texts];
  }

  /** The parsed rule at a 0-based index. */
  ruleAt(index: number): Rule {
    const r = this.asts[index];
    if (!r) throw new RangeError(`no rule at index ${index} (the set has ${this.size})`);
    return r;
  }

  /**
   * The first rule whose target is allow, block or reject and that matches
   * the device, or undefined (the caller's default target then applies).
   * Records what rule-applied and rule-evaluated conditions ask about.
   */
  evaluate(device: PolicyDevice, opts?: EvalOptions): RuleMatch | undefined {
    const view = new DeviceView(device, opts?.context);
    // Scratch space reused across calls (a decision never re-enters
    // evaluate()); only the first k entries are this decision's.
    const lists = this.lists;
    let k = 0;
    if (view.id !== undefined) {
      const a = this.exact.get(view.id);
      if (a) lists[k++] = a;
      const b = this.vendor.get(view.vendor as string);
      if (b) lists[k++] = b;
    }
    if (this.byClass.size > 0) {
      const ifaces = view.interfaces();
      if (ifaces) {
        for (const x of ifaces) {
          const l = this.byClass.get(x >>> 16);
          if (!l) continue;
          let seen = false;
          for (let q = 0; q < k; q++) if (lists[q] === l) seen = true;
          if (!seen) lists[k++] = l;
        }
      }
    }
    if (this.byPort.size > 0 && typeof device.viaPort === "string") {
      const l = this.byPort.get(device.viaPort);
      if (l) lists[k++] = l;
    }
    if (this.fallback.length > 0) lists[k++] = this.fallback;
    let env: ConditionEnv | undefined;
    const matches = (idx: number): boolean => {
      const rule = this.compiled[idx] as CompiledRule;
      if (!rule.attributes(view)) return false;
      if (!rule.conditions) return true;
      env ??= this.env(device, opts);
      env.ruleIndex = idx;
      return rule.conditions(env);
    };
    let winner = -1;
    if (k === 1) {
      const l = lists[0];
      for (let p = 0; p < l.length; p++) {
        if (matches(l[p])) {
          winner = l[p];
          break;
        }
      }
    } else if (k > 1) {
      const pos = this.positions.length >= k ? this.positions : (this.positions = new Int32Array(k * 2));
      pos.fill(0, 0, k);
      for (;;) {
        // The lowest rule index at the head of any list; a rule in several
        // lists (an exact id and its vendor, two interface classes) is taken once.
        let idx = 0x7fffffff;
        for (let q = 0; q < k; q++) {
          const l = lists[q];
          const p = pos[q];
          if (p < l.length && l[p] < idx) idx = l[p];
        }
        if (idx === 0x7fffffff) break;
        for (let q = 0; q < k; q++) if (pos[q] < lists[q].length && lists[q][pos[q]] === idx) pos[q]++;
        if (matches(idx)) {
          winner = idx;
          break;
        }
      }
    }
    if (this.tracksApplied || this.tracksEvaluated.length > 0) this.record(winner, env ? env.now() : (opts?.now ?? new Date()));
    if (winner < 0) return undefined;
    const ast = this.asts[winner] as Rule & { target: Target };
    return new Match(ast.target, this.texts[winner], winner, ast, device, opts);
  }

  private record(winner: number, now: Date): void {
    const t = now.getTime();
    // Every rule up to the winner was evaluated (the index only skipped
    // rules that could not match); none after it was.
    const last = winner < 0 ? Infinity : winner;
    for (const i of this.tracksEvaluated) {
      if (i > last) break;
      this.evaluated[i] = t;
    }
    if (winner >= 0) this.applied[winner] = t;
  }

  private env(device: PolicyDevice, opts: EvalOptions | undefined): ConditionEnv {
    let now = opts?.now;
    return {
      now: () => (now ??= new Date()),
      ruleIndex: -1,
      lastApplied: (i) => (Number.isNaN(this.applied[i]) ? undefined : this.applied[i]),
      lastEvaluated: (i) => (Number.isNaN(this.evaluated[i]) ? undefined : this.evaluated[i]),
      allowedDevices: opts?.allowedDevices,
      deviceKey: device.key,
      context: opts?.context,
    };
  }
}

function push<K>(map: Map<K, number[]>, key: K, index: number): void {
  const list = map.get(key);
  if (!list) map.set(key, [index]);
  else if (list[list.length - 1] !== index) list.push(index);
}
