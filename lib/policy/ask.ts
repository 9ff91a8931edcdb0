// Asking a person about an unknown device: a question goes out, the device's
// messages wait, and an answer (or the timeout, which applies the default)
// settles it. Timers go through an injectable scheduler so tests drive time.
import { randomUUID } from "crypto";
import { ruleForDevice } from "./device";
import type { PolicyContext, PolicyDevice, Target } from "./types";

export const ANSWER_TARGETS: readonly Target[] = ["allow", "block", "reject"];

/** What a person needs to recognise the device. */
export interface DeviceSummary {
  key: string;
  id?: string;
  name?: string;
  serial?: string;
  viaPort?: string;
  subsystem?: string;
  profile?: string;
  withInterface: string[];
  devnodes?: string[];
}

export interface Question {
  questionId: string;
  device: DeviceSummary;
  /** One line for a dashboard: "Allow Arduino Uno (2341:0043) on port 1-1.2?" */
  text: string;
  /** The rule that answering "allow" with remember would add; "" when the device has nothing a rule could name. */
  suggestedRule: string;
  /** ms since epoch */
  asked: number;
  /** ms since epoch; after this the default applies. */
  expires: number;
  /** What happens without an answer. */
  defaultTarget: Target;
}

export interface Answer {
  questionId: string;
  decision: Target;
  /** Keep the answer as a rule, so the device is not asked about again. */
  remember?: boolean;
}

export interface AskResolution<T = unknown> {
  question: Question;
  device: PolicyDevice;
  context?: PolicyContext;
  decision: Target;
  by: "answer" | "timeout";
  /** The rule to append (answers with remember only). */
  rule?: string;
  /** Why remember produced no rule. */
  ruleError?: string;
  /** Whatever the caller attached to each ask() for this device, in order (e.g. held messages). */
  data: T[];
}

export type AnswerResult<T = unknown> = { ok: true; resolution: AskResolution<T> } | { ok: false; error: string; questionId?: string };

/** setTimeout/clearTimeout, or a test's fake. */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's timers fire at once for delays past 2^31-1 ms (~24.8 days); longer ones are re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => {
    const handle: { timer?: NodeJS.Timeout } = {};
    const arm = (left: number): void => {
      const step = Math.min(Math.max(left, 0), MAX_TIMER_MS);
      handle.timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), step);
      // A pending question or learn window must not keep a stopping Node-RED alive.
      handle.timer.unref();
    };
    arm(ms);
    return handle;
  },
  clearTimeout: (h) => {
    const timer = (h as { timer?: NodeJS.Timeout } | undefined)?.timer;
    if (timer) clearTimeout(timer);
  },
};

export interface AskOptions<T> {
  /** How long a question waits for an answer, in ms. */
  timeoutMs: number;
  defaultTarget?: Target;
  clock?: () => number;
  scheduler?: Scheduler;
  newId?: () => string;
  /** Called for every settled question, whether by answer or by timeout. */
  onResolve: (resolution: AskResolution<T>) => void;
  /** Options for the suggested/remembered rule. */
  ruleOptions?: { withPort?: boolean; withHash?: boolean };
}

export function summarize(device: PolicyDevice): DeviceSummary {
  return {
    key: device.key,
    id: device.id,
    name: device.name,
    serial: device.serial,
    viaPort: device.viaPort,
    subsystem: device.subsystem,
    profile: device.profile,
    withInterface: [...(device.withInterface ?? [])],
    devnodes: device.devnodes ? [...device.devnodes] : undefined,
  };
}

function describe(device: PolicyDevice): string {
  const label = device.profile || device.name || device.id || device.key;
  const details = [device.id && device.id !== label ? device.id : undefined, device.serial ? `serial ${device.serial}` : undefined]
    .filter(Boolean)
    .join(", ");
  const port = device.viaPort ? ` on port ${device.viaPort}` : "";
  return `Allow ${label}${details ? ` (${details})` : ""}${port}?`;
}

/** Validates an answer message's payload; throws RangeError saying what is wrong. */
export function parseAnswer(input: unknown): Answer {
  if (!input || typeof input !== "object") throw new RangeError("an answer is an object {questionId, decision, remember?}");
  const a = input as Record<string, unknown>;
  if (typeof a.questionId !== "string" || a.questionId === "") throw new RangeError("answer has no questionId");
  if (!(ANSWER_TARGETS as readonly unknown[]).includes(a.decision)) {
    throw new RangeError(`answer decision must be allow, block or reject (got ${JSON.stringify(a.decision)})`);
  }
  if (a.remember !== undefined && typeof a.remember !== "boolean") throw new RangeError("answer remember must be true or false");
  return { questionId: a.questionId, decision: a.decision as Target, remember: a.remember === true };
}

interface Open<T> {
  question: Question;
  device: PolicyDevice;
  context?: PolicyContext;
  data: T[];
  timer: unknown;
}

/**
 * Open questions, one per device key: asking again about a device that already
 * has an open question joins it (its data queues behind) rather than asking twice.
 */
export class AskQueue<T = unknown> {
  private readonly open = new Map<string, Open<T>>();
  private readonly byKey = new Map<string, string>();
  private readonly clock: () => number;
  private readonly scheduler: Scheduler;
  private readonly newId: () => string;
  readonly defaultTarget: Target;

  constructor(private readonly options: AskOptions<T>) {
    if (!(options.timeoutMs > 0) || !Number.isFinite(options.timeoutMs)) {
      throw new RangeError(`ask timeout must be a positive number of ms (got ${options.timeoutMs})`);
    }
    this.clock = options.clock ?? Date.now;
    this.scheduler = options.scheduler ?? realScheduler;
    this.newId = options.newId ?? randomUUID;
    this.defaultTarget = options.defaultTarget ?? "block";
  }

  /** Open questions, oldest first. */
  pending(): Question[] {
    return [...this.open.values()].map((o) => o.question);
  }

  get size(): number {
    return this.open.size;
  }

  /** The open question about a device, if any. */
  questionFor(key: string): Question | undefined {
    const id = this.byKey.get(key);
    return id ? this.open.get(id)?.question : undefined;
  }

  /** Asks about a device, or joins the open question about it. */
  ask(device: PolicyDevice, data?: T, context?: PolicyContext): { question: Question; isNew: boolean } {
    const existing = this.byKey.get(device.key);
    if (existing) {
      const o = this.open.get(existing) as Open<T>;
      if (data !== undefined) o.data.push(data);
      return { question: o.question, isNew: false };
    }
    const now = this.clock();
    let questionId = this.newId();
    while (this.open.has(questionId)) questionId = this.newId();
    const question: Question = {
      questionId,
      device: summarize(device),
      text: describe(device),
      suggestedRule: this.ruleFor(device, "allow").rule ?? "",
      asked: now,
      expires: now + this.options.timeoutMs,
      defaultTarget: this.defaultTarget,
    };
    const o: Open<T> = { question, device, context, data: data === undefined ? [] : [data], timer: undefined };
    o.timer = this.scheduler.setTimeout(() => this.expire(questionId), this.options.timeoutMs);
    this.open.set(questionId, o);
    this.byKey.set(device.key, questionId);
    return { question, isNew: true };
  }

  /**
   * Applies an answer. A question that is unknown, already settled, or past its
   * expiry (its timer not yet run) is refused; in the last case the default is
   * applied now, as the timer would have.
   */
  answer(input: unknown): AnswerResult<T> {
    let a: Answer;
    try {
      a = parseAnswer(input);
    } catch (err) {
      const qid = (input as { questionId?: unknown } | null)?.questionId;
      return { ok: false, error: (err as Error).message, questionId: typeof qid === "string" ? qid : undefined };
    }
    const o = this.open.get(a.questionId);
    if (!o) {
      return { ok: false, error: `no open question ${a.questionId}: it was already answered, timed out, or never asked`, questionId: a.questionId };
    }
    if (this.clock() >= o.question.expires) {
      this.expire(a.questionId);
      return { ok: false, error: `question ${a.questionId} expired before the answer came; the default (${this.defaultTarget}) applied`, questionId: a.questionId };
    }
    const made = a.remember ? this.ruleFor(o.device, a.decision) : {};
    const resolution = this.settle(o, a.decision, "answer", made.rule, made.error);
    return { ok: true, resolution };
  }

  private ruleFor(device: PolicyDevice, target: Target): { rule?: string; error?: string } {
    try {
      return { rule: ruleForDevice(device, target, this.options.ruleOptions) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /** Withdraws the question about a device (e.g. it was unplugged); returns what it held. */
  withdraw(key: string): { question: Question; data: T[] } | undefined {
    const id = this.byKey.get(key);
    const o = id ? this.open.get(id) : undefined;
    if (!o) return undefined;
    this.drop(o);
    return { question: o.question, data: o.data };
  }

  /** Drops every open question without settling it (a node closing); returns them. */
  cancelAll(): Array<{ question: Question; data: T[] }> {
    const out = [...this.open.values()].map((o) => ({ question: o.question, data: o.data }));
    for (const o of [...this.open.values()]) this.drop(o);
    return out;
  }

  private expire(questionId: string): void {
    const o = this.open.get(questionId);
    if (!o) return;
    this.settle(o, this.defaultTarget, "timeout");
  }

  private settle(o: Open<T>, decision: Target, by: "answer" | "timeout", rule?: string, ruleError?: string): AskResolution<T> {
    this.drop(o);
    const resolution: AskResolution<T> = { question: o.question, device: o.device, context: o.context, decision, by, data: o.data };
    if (rule !== undefined) resolution.rule = rule;
    if (ruleError !== undefined) resolution.ruleError = ruleError;
    this.options.onResolve(resolution);
    return resolution;
  }

  private drop(o: Open<T>): void {
    this.scheduler.clearTimeout(o.timer);
    this.open.delete(o.question.questionId);
    if (this.byKey.get(o.device.key) === o.question.questionId) this.byKey.delete(o.device.key);
  }
}
