// The policy engine: grants, then rules (first match wins), then — for unknown
// devices — a question or the default. Every decision is explained and becomes
// an audit record. Modes: enforce, dry-run (everything passes, the record says
// what would have happened) and learn (as dry-run, while collecting rules).
import os from "os";
import { AskQueue, type AskResolution, type Question, type Scheduler, realScheduler } from "./ask";
import { AuditLog, type AuditRecord, type DecisionSource } from "./audit";
import type { GrantStore } from "./grants";
import { Learner, type LearnResult } from "./learn";
import { RuleSet } from "./ruleset";
import type { Decision, PolicyContext, PolicyDevice, Target } from "./types";

export type PolicyMode = "enforce" | "dry-run" | "learn";
export const POLICY_MODES: readonly PolicyMode[] = ["enforce", "dry-run", "learn"];

export interface EngineOptions<T = unknown> {
  ruleSet?: RuleSet;
  /** Applies when nothing matched (and nobody answered). Default "block". */
  defaultTarget?: Target;
  mode?: PolicyMode;
  /** ms since epoch; tests pass their own. */
  clock?: () => number;
  /** Timers for ask timeouts and the learn window. */
  scheduler?: Scheduler;
  grants?: GrantStore;
  /** Where records go; without one they are chained in memory (they still reach the output). */
  audit?: AuditLog;
  /** Recorded in each audit record; default: the audit log's host (os.hostname()). */
  host?: string;
  /** Ask about devices no grant or rule decides (enforce mode only). Needs onResolve. */
  ask?: { timeoutMs: number };
  /** The learn window; learn mode starts one at construction. Default 10 minutes. */
  learn?: { windowMs?: number; withPort?: boolean; withHash?: boolean };
  /** How suggested and remembered rules are written. */
  ruleOptions?: { withPort?: boolean; withHash?: boolean };
  /** Every settled question (answer or timeout), with its decision and the data held for it. */
  onResolve?: (resolution: EngineResolution<T>) => void;
  /** A learn window closed by itself (not by stopLearning()). */
  onLearn?: (result: LearnResult) => void;
}

export interface EngineDecision extends Decision {
  auditId: string;
  via: DecisionSource;
  /** The decision was not enforced (dry-run or learn mode): `decision` is "allow", `wouldBe` what enforce would do. */
  dryRun?: boolean;
  wouldBe?: Target;
  questionId?: string;
  /** The audit record, for the audit output. */
  record: AuditRecord;
}

export interface EngineResolution<T = unknown> {
  decision: EngineDecision;
  question: Question;
  by: "answer" | "timeout";
  /** The remembered rule (answers with remember): now in force, and the text to append to the rules. */
  rule?: string;
  /** Set when the remembered rule could not be added. */
  ruleError?: string;
  /** What check() was given as data for this device, in order. */
  data: T[];
}

export type CheckResult = { kind: "decision"; decision: EngineDecision } | { kind: "question"; question: Question; isNew: boolean };

export type EngineAnswerResult<T = unknown> =
  | { ok: true; resolution: EngineResolution<T> }
  | { ok: false; error: string; questionId?: string };

/** msg.policy */
export interface PolicyInfo {
  decision: Target;
  rule: string | null;
  ruleIndex: number;
  reason: string;
  auditId: string;
  via: DecisionSource;
  grant?: { id: string; match: string; expires: number };
  dryRun?: boolean;
  wouldBe?: Target;
  questionId?: string;
}

export function policyInfo(d: EngineDecision): PolicyInfo {
  const info: PolicyInfo = {
    decision: d.decision,
    rule: d.rule ?? null,
    ruleIndex: d.ruleIndex,
    reason: d.reason,
    auditId: d.auditId,
    via: d.via,
  };
  if (d.grant) info.grant = { ...d.grant };
  if (d.dryRun) {
    info.dryRun = true;
    info.wouldBe = d.wouldBe;
  }
  if (d.questionId) info.questionId = d.questionId;
  return info;
}

interface Verdict {
  target: Target;
  via: DecisionSource;
  rule?: string;
  ruleIndex: number;
  reason: string;
  grant?: { id: string; match: string; expires: number };
  questionId?: string;
}

const DEFAULT_LEARN_MS = 10 * 60 * 1000;

export class PolicyEngine<T = unknown> {
  private rules: RuleSet;
  private remembered: string[] = [];
  private rememberedSet: RuleSet = RuleSet.empty();
  private currentMode: PolicyMode;
  private defaultTargetValue: Target;
  private readonly clock: () => number;
  private readonly scheduler: Scheduler;
  private readonly audit: AuditLog;
  private readonly asker: AskQueue<T> | undefined;
  private learner: Learner | undefined;
  private learnTimer: unknown;
  private lastResolution: EngineResolution<T> | undefined;
  /** Devices whose latest verdict was allow, for rules using allowed-matches(...). */
  private readonly allowed = new Map<string, PolicyDevice>();

  constructor(private readonly options: EngineOptions<T> = {}) {
    this.rules = options.ruleSet ?? RuleSet.empty();
    this.currentMode = checkMode(options.mode ?? "enforce");
    this.defaultTargetValue = checkDefault(options.defaultTarget ?? "block");
    this.clock = options.clock ?? Date.now;
    this.scheduler = options.scheduler ?? realScheduler;
    this.audit = options.audit ?? AuditLog.memory({ clock: this.clock, host: options.host ?? os.hostname() });
    if (options.ask) {
      if (!options.onResolve) throw new RangeError("asking needs onResolve to hand back the answered devices");
      this.asker = new AskQueue<T>({
        timeoutMs: options.ask.timeoutMs,
        defaultTarget: this.defaultTargetValue,
        clock: this.clock,
        scheduler: this.scheduler,
        ruleOptions: options.ruleOptions,
        onResolve: (r) => this.resolved(r),
      });
    }
    if (this.currentMode === "learn") this.startLearning();
  }

  get mode(): PolicyMode {
    return this.currentMode;
  }

  /** Switching to learn opens a learn window. */
  setMode(mode: PolicyMode): void {
    this.currentMode = checkMode(mode);
    if (mode === "learn" && !this.learner?.active) this.startLearning();
  }

  get defaultTarget(): Target {
    return this.defaultTargetValue;
  }

  /** The rule set in force (without remembered rules). */
  get ruleSet(): RuleSet {
    return this.rules;
  }

  /** Replaces the rules (a reloaded rules file); remembered rules it now contains are no longer kept apart. */
  setRuleSet(ruleSet: RuleSet): void {
    this.rules = ruleSet;
    const have = new Set(ruleSet.rules());
    const keep = this.remembered.filter((r) => !have.has(r));
    if (keep.length !== this.remembered.length) {
      this.remembered = keep;
      this.rememberedSet = keep.length > 0 ? RuleSet.parse(keep.join("\n")) : RuleSet.empty();
    }
  }

  /** Rules added by "remember" answers since start, evaluated after the rule set. */
  rememberedRules(): string[] {
    return [...this.remembered];
  }

  /**
   * Adds a rule after the rule set (and after earlier remembered rules); returns
   * its canonical text. Throws PolicyParseError when it does not parse.
   */
  remember(ruleText: string): string {
    if (/[\r\n]/.test(ruleText)) throw new RangeError("remember takes one rule, without line breaks");
    const next = RuleSet.parse([...this.remembered, ruleText].join("\n"));
    if (next.size !== this.remembered.length + 1) throw new RangeError(`not a rule: ${JSON.stringify(ruleText)}`);
    const all = next.rules();
    const canonical = all[all.length - 1];
    this.remembered = all;
    this.rememberedSet = next;
    return canonical;
  }

  /** Decides now: grants, rules, then the default. Never asks. */
  decide(device: PolicyDevice, context?: PolicyContext): EngineDecision {
    const verdict = this.match(device, context) ?? this.byDefault(`no rule matched, default ${this.defaultTargetValue}`);
    return this.record(device, verdict, context);
  }

  /**
   * Like decide(), except that in enforce mode with asking on, a device that no
   * grant or rule decides gets a question instead (and `data` waits with it).
   */
  check(device: PolicyDevice, opts: { context?: PolicyContext; data?: T } = {}): CheckResult {
    const verdict = this.match(device, opts.context);
    if (verdict) return { kind: "decision", decision: this.record(device, verdict, opts.context) };
    if (this.asker && this.currentMode === "enforce") {
      const { question, isNew } = this.asker.ask(device, opts.data, opts.context);
      return { kind: "question", question, isNew };
    }
    return { kind: "decision", decision: this.record(device, this.byDefault(`no rule matched, default ${this.defaultTargetValue}`), opts.context) };
  }

  /** Applies an answer message's payload ({questionId, decision, remember?}). onResolve is called too. */
  answer(input: unknown): EngineAnswerResult<T> {
    if (!this.asker) return { ok: false, error: "this policy does not ask" };
    this.lastResolution = undefined;
    const r = this.asker.answer(input);
    if (!r.ok) return r;
    // The queue settled it synchronously through resolved(), which kept the engine's view of it.
    return { ok: true, resolution: this.takeResolution() };
  }

  private takeResolution(): EngineResolution<T> {
    const r = this.lastResolution as EngineResolution<T>;
    this.lastResolution = undefined;
    return r;
  }

  /** Open questions, oldest first. */
  pendingQuestions(): Question[] {
    return this.asker?.pending() ?? [];
  }

  /**
   * A device was unplugged: it no longer counts for allowed-matches(...), and
   * any open question about it is withdrawn. Returns the data that question held.
   */
  deviceRemoved(key: string): T[] {
    this.allowed.delete(key);
    return this.asker?.withdraw(key)?.data ?? [];
  }

  /** Devices whose latest verdict was allow and that were not reported removed. */
  allowedDevices(): PolicyDevice[] {
    return [...this.allowed.values()];
  }

  /** Opens a learn window (any mode); an open one restarts. */
  startLearning(windowMs?: number): void {
    const learn = this.options.learn ?? {};
    this.scheduler.clearTimeout(this.learnTimer);
    this.learner = new Learner({
      windowMs: windowMs ?? learn.windowMs ?? DEFAULT_LEARN_MS,
      clock: this.clock,
      withPort: learn.withPort ?? this.options.ruleOptions?.withPort,
      withHash: learn.withHash ?? this.options.ruleOptions?.withHash,
    });
    this.learner.start();
    this.learnTimer = this.scheduler.setTimeout(() => {
      this.learnTimer = undefined;
      const result = this.learner?.finish();
      if (result) this.options.onLearn?.(result);
    }, this.learner.windowMs);
  }

  /** Closes the learn window early; returns what it collected. */
  stopLearning(): LearnResult | undefined {
    this.scheduler.clearTimeout(this.learnTimer);
    this.learnTimer = undefined;
    return this.learner?.finish();
  }

  /** What the open (or last) learn window has collected. */
  learned(): LearnResult | undefined {
    return this.learner?.snapshot();
  }

  get learning(): boolean {
    return this.learner?.active ?? false;
  }

  /** When the open learn window closes (ms since epoch), if one is open. */
  get learnEndsAt(): number | undefined {
    return this.learning ? this.learner?.endsAt : undefined;
  }

  /** Stops timers; returns the data of questions left unanswered. The audit log and grants stay open (the caller owns them). */
  close(): T[] {
    this.scheduler.clearTimeout(this.learnTimer);
    this.learnTimer = undefined;
    const left = this.asker?.cancelAll() ?? [];
    return left.flatMap((q) => q.data);
  }

  /** Grants, then rules, then remembered rules; undefined when none decides. */
  private match(device: PolicyDevice, context?: PolicyContext): Verdict | undefined {
    const now = this.clock();
    const opts = { now: new Date(now), context, allowedDevices: [...this.allowed.values()] };
    const grant = this.options.grants?.match(device, opts);
    let verdict: Verdict | undefined;
    if (grant) {
      verdict = {
        target: "allow",
        via: "grant",
        ruleIndex: -1,
        reason: `temporary grant ${grant.id} (${grant.match}) allows it until ${new Date(grant.expires).toISOString()}`,
        grant: { id: grant.id, match: grant.match, expires: grant.expires },
      };
    } else {
      const hit = this.rules.evaluate(device, opts);
      if (hit) {
        verdict = {
          target: hit.target,
          via: "rule",
          rule: hit.rule,
          ruleIndex: hit.ruleIndex,
          reason: hit.reason ?? `rule ${hit.ruleIndex + 1} (${hit.rule}) decided ${hit.target}`,
        };
      } else if (this.remembered.length > 0) {
        const r = this.rememberedSet.evaluate(device, opts);
        if (r) {
          verdict = {
            target: r.target,
            via: "rule",
            rule: r.rule,
            ruleIndex: this.rules.size + r.ruleIndex,
            reason: `remembered rule ${r.rule} decided ${r.target}`,
          };
        }
      }
    }
    if (this.learner?.active) this.learner.observe(device, verdict !== undefined);
    return verdict;
  }

  private byDefault(reason: string): Verdict {
    return { target: this.defaultTargetValue, via: "default", ruleIndex: -1, reason };
  }

  private record(device: PolicyDevice, v: Verdict, context: PolicyContext | undefined): EngineDecision {
    const enforce = this.currentMode === "enforce";
    // The verdict, not what dry-run let through: allowed-matches should see the policy as it would enforce.
    if (v.target === "allow") this.allowed.set(device.key, device);
    else this.allowed.delete(device.key);
    const decision: Decision = {
      decision: enforce ? v.target : "allow",
      rule: v.rule,
      ruleIndex: v.ruleIndex,
      reason: enforce ? v.reason : `${this.currentMode === "learn" ? "learn mode" : "dry run"}, would ${v.target}: ${v.reason}`,
      grant: v.grant,
    };
    const record = this.audit.append({
      ...decision,
      device,
      via: v.via,
      dryRun: enforce ? undefined : true,
      wouldBe: enforce ? undefined : v.target,
      mode: this.currentMode,
      context,
      questionId: v.questionId,
      host: this.options.host,
    });
    const out: EngineDecision = { ...decision, auditId: record.auditId, via: v.via, record };
    if (decision.grant === undefined) delete out.grant;
    if (decision.rule === undefined) delete out.rule;
    if (!enforce) {
      out.dryRun = true;
      out.wouldBe = v.target;
    }
    if (v.questionId) out.questionId = v.questionId;
    return out;
  }

  private resolved(r: AskResolution<T>): void {
    let rule: string | undefined;
    let ruleError: string | undefined = r.ruleError;
    if (r.rule) {
      try {
        rule = this.remember(r.rule);
      } catch (err) {
        ruleError = `the remembered rule ${JSON.stringify(r.rule)} was not added: ${(err as Error).message}`;
      }
    }
    const seconds = Math.round((r.question.expires - r.question.asked) / 1000);
    const reason =
      r.by === "timeout"
        ? `no answer within ${seconds} s; no rule matched, default ${r.decision}`
        : `answered ${r.decision}${rule ? `, remembered as: ${rule}` : ""}`;
    const verdict: Verdict = {
      target: r.decision,
      via: r.by,
      rule,
      ruleIndex: rule ? this.rules.size + this.remembered.length - 1 : -1,
      reason,
      questionId: r.question.questionId,
    };
    const decision = this.record(r.device, verdict, r.context);
    const resolution: EngineResolution<T> = { decision, question: r.question, by: r.by, rule, ruleError, data: r.data };
    if (ruleError === undefined) delete resolution.ruleError;
    if (rule === undefined) delete resolution.rule;
    this.lastResolution = resolution;
    this.options.onResolve?.(resolution);
  }
}

function checkMode(mode: unknown): PolicyMode {
  if (!(POLICY_MODES as readonly unknown[]).includes(mode)) {
    throw new RangeError(`mode must be enforce, dry-run or learn (got ${JSON.stringify(mode)})`);
  }
  return mode as PolicyMode;
}

function checkDefault(target: unknown): Target {
  if (!["allow", "block", "reject"].includes(target as string)) {
    throw new RangeError(`default target must be allow, block or reject (got ${JSON.stringify(target)})`);
  }
  return target as Target;
}
