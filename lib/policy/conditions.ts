// Rule conditions (`if ...`): turning an identifier and its argument into a
// checked condition. Anything USBGuard would refuse is refused here too, and
// arguments USBGuard would read loosely (it uses strptime and stod, which
// ignore trailing junk) are read strictly, so that a typo is an error rather
// than a condition that quietly means something else.
import type { Condition, ConditionKind, Rule } from "./rule";
import { CONDITION_KINDS } from "./rule";

/** Why an argument was refused, and where in the argument (0-based). */
export class ConditionArgumentError extends Error {
  constructor(
    message: string,
    readonly offset = 0,
  ) {
    super(message);
  }
}

/**
 * Thrown while evaluating when a rule needs something the caller did not
 * give: `allowed-matches` needs the list of allowed devices.
 */
export class PolicyEvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyEvalError";
  }
}

const TIME = /^(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?$/;

/** "HH:MM[:SS]" as seconds since midnight. */
export function parseDaytime(text: string): number {
  const m = TIME.exec(text);
  if (!m) throw new ConditionArgumentError(`"${text}" is not a time of day: write HH:MM or HH:MM:SS`);
  const h = Number(m[1]);
  const min = Number(m[2]);
  const s = m[3] === undefined ? 0 : Number(m[3]);
  if (h > 23 || min > 59 || s > 59) throw new ConditionArgumentError(`"${text}" is not a time of day: hours 0-23, minutes and seconds 0-59`);
  return h * 3600 + min * 60 + s;
}

export function parseTimeRange(arg: string): { begin: number; end: number } {
  const dash = arg.indexOf("-");
  const beginText = dash < 0 ? arg : arg.slice(0, dash);
  const endText = dash < 0 ? "" : arg.slice(dash + 1);
  let begin: number;
  try {
    begin = parseDaytime(beginText);
  } catch (err) {
    throw new ConditionArgumentError((err as Error).message, 0);
  }
  let end = begin;
  if (dash >= 0) {
    try {
      end = parseDaytime(endText);
    } catch (err) {
      throw new ConditionArgumentError((err as Error).message, dash + 1);
    }
  }
  if (begin > end) {
    throw new ConditionArgumentError(
      `time range "${arg}" begins after it ends; for a window across midnight negate its complement, e.g. !localtime(06:00-22:00)`,
    );
  }
  return { begin, end };
}

/** rule-applied/rule-evaluated durations: HH:MM:SS, HH:MM or a number of seconds. */
export function parseDuration(arg: string): number {
  if (/^\d{1,9}$/.test(arg)) return Number(arg);
  const m = TIME.exec(arg);
  if (!m) throw new ConditionArgumentError(`"${arg}" is not a duration: write HH:MM:SS, HH:MM or a number of seconds`);
  const h = Number(m[1]);
  const min = Number(m[2]);
  const s = m[3] === undefined ? 0 : Number(m[3]);
  if (h > 23 || min > 59 || s > 59) throw new ConditionArgumentError(`"${arg}" is not a duration: hours 0-23, minutes and seconds 0-59`);
  return h * 3600 + min * 60 + s;
}

export function parseProbability(arg: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(arg)) {
    throw new ConditionArgumentError(`"${arg}" is not a probability: write a number from 0 to 1, e.g. random(0.25)`);
  }
  const p = Number(arg);
  if (!(p >= 0 && p <= 1)) throw new ConditionArgumentError(`probability ${arg} is outside 0 to 1`);
  return p;
}

export function isConditionKind(identifier: string): identifier is ConditionKind {
  return (CONDITION_KINDS as readonly string[]).includes(identifier);
}

/**
 * Builds a condition. `parseQuery` parses the argument of allowed-matches
 * as a rule (it is given "allow " + the argument, as USBGuard does).
 */
export function buildCondition(
  identifier: string,
  arg: string | undefined,
  negated: boolean,
  parseQuery: (arg: string) => Rule,
): Condition {
  if (!isConditionKind(identifier)) {
    throw new ConditionArgumentError(`unknown condition "${identifier}" (known: ${CONDITION_KINDS.join(", ")})`);
  }
  if (arg === "") throw new ConditionArgumentError(`empty argument: write ${identifier} without parentheses or give a value`);
  switch (identifier) {
    case "true":
    case "false":
      if (arg !== undefined) throw new ConditionArgumentError(`condition "${identifier}" takes no argument`);
      return { kind: identifier, negated };
    case "localtime": {
      if (arg === undefined) throw new ConditionArgumentError("localtime needs a time or range, e.g. localtime(08:00-18:00)");
      const { begin, end } = parseTimeRange(arg);
      return { kind: "localtime", negated, arg, begin, end };
    }
    case "rule-applied":
    case "rule-evaluated":
      if (arg === undefined) return { kind: identifier, negated, withinSeconds: 0 };
      return { kind: identifier, negated, arg, withinSeconds: parseDuration(arg) };
    case "random":
      if (arg === undefined) return { kind: "random", negated, probability: 0.5 };
      return { kind: "random", negated, arg, probability: parseProbability(arg) };
    case "allowed-matches": {
      const query = parseQuery(arg ?? "");
      return arg === undefined ? { kind: "allowed-matches", negated, query } : { kind: "allowed-matches", negated, arg, query };
    }
  }
}

export function formatCondition(c: Condition): string {
  return (c.negated ? "!" : "") + c.kind + (c.arg === undefined ? "" : `(${c.arg})`);
}

export function secondsOfDay(d: Date): number {
  return d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds();
}
