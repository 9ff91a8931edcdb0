// USBGuard's rule grammar (src/Library/RuleParser/Grammar.hpp) and the checks
// its parser actions make (duplicate attributes, `*:pppp`, `cc:*:pp`,
// unknown conditions), plus devplane's attributes in the same syntax.
import { buildCondition, ConditionArgumentError } from "./conditions";
import { compileGlob } from "./glob";
import { describeChar, isBlank, isHexDigit, Scanner } from "./lexer";
import type {
  Condition,
  ContextTest,
  DeviceIdValue,
  InterfaceValue,
  Rule,
  RuleTarget,
  SetOperator,
  StringAttributeField,
  ValueSet,
} from "./rule";
import { ATTRIBUTE_BY_KEYWORD, RULE_TARGETS, SET_OPERATORS } from "./rule";
import { PolicyParseError } from "./types";

const CONTEXT_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Parses one rule. Errors are PolicyParseError on line 1 with the column. */
export function parseRule(text: string): Rule {
  const rule = parseRuleLine(text, 1);
  if (!rule) {
    const s = new Scanner(text);
    s.skipBlanks();
    return s.fail(s.eof ? "empty rule: a rule starts with allow, block or reject" : "only a comment: a rule starts with allow, block or reject");
  }
  return rule;
}

/**
 * Parses one line of a rules file: undefined for a blank or comment-only
 * line. `line` is used for error positions.
 */
export function parseRuleLine(text: string, line: number): Rule | undefined {
  return parseFrom(new Scanner(text, line, 1));
}

function endOfTarget(ch: string): boolean {
  return ch === "" || isBlank(ch) || ch === "#";
}

function parseFrom(s: Scanner): Rule | undefined {
  s.skipBlanks();
  if (s.eof || s.peek() === "#") return undefined;
  let target: RuleTarget | undefined;
  for (const t of RULE_TARGETS) {
    if (s.takeKeyword(t, endOfTarget)) {
      target = t;
      break;
    }
  }
  if (!target) {
    const w = s.word();
    if (ATTRIBUTE_BY_KEYWORD.has(w)) s.fail(`the rule starts with the attribute "${w}": put a target first (allow, block or reject)`);
    if (w) s.fail(`unknown target "${w}": a rule starts with allow, block, reject, match or device`);
    s.fail(`expected a target (allow, block or reject), found ${describeChar(s.peek())}`);
  }
  const rule: Rule = { target };
  let first = true;
  for (;;) {
    const blanks = s.skipBlanks();
    if (s.eof || s.peek() === "#") break;
    if (blanks === 0) s.fail(`expected a blank, a comment or the end of the rule, found ${describeChar(s.peek())}`);
    if (first && /^(?:[0-9a-fA-F]{4}|\*):|^[0-9*]/.test(s.text.slice(s.pos, s.pos + 5))) {
      // USBGuard's bare id after the target: `allow 1050:0011 ...`
      rule.id = { op: "equals", values: [readDeviceId(s)] };
      first = false;
      continue;
    }
    first = false;
    parseAttribute(s, rule);
  }
  return rule;
}

function parseAttribute(s: Scanner, rule: Rule): void {
  const start = s.pos;
  const word = s.word();
  const spec = ATTRIBUTE_BY_KEYWORD.get(word);
  if (!spec) {
    if ((RULE_TARGETS as readonly string[]).includes(word)) s.fail(`a rule has one target; "${word}" appears again`);
    if (word) s.fail(`unknown attribute "${word}"`);
    s.fail(`expected an attribute, found ${describeChar(s.peek())}`);
  }
  s.pos += word.length;
  if (!isBlank(s.peek())) {
    s.fail(s.eof ? `"${word}" needs a value` : `expected a blank after "${word}", found ${describeChar(s.peek())}`);
  }
  // label's duplicate check in USBGuard looks at the wrong keyword, so
  // repeated labels load there and add up; they do here too.
  if (spec.field !== "label" && spec.field !== "context" && rule[spec.field] !== undefined) {
    s.fail(`${spec.keyword === "if" ? "conditions" : `"${spec.keyword}"`} already given in this rule`, start);
  }
  s.skipBlanks();
  switch (spec.kind) {
    case "id":
      rule.id = readSet(s, () => readDeviceId(s));
      return;
    case "interface":
      rule.withInterface = readSet(s, () => readInterface(s));
      return;
    case "condition":
      rule.conditions = readSet(s, () => readCondition(s));
      return;
    case "context": {
      const keyStart = s.pos;
      const key = s.word();
      if (!CONTEXT_KEY.test(key)) s.fail('context needs a key and a value, e.g. context user "alice"');
      s.pos += key.length;
      if (!isBlank(s.peek())) s.fail(s.eof ? `context ${key} needs a value` : `expected a blank after the context key "${key}"`);
      if (rule.context?.some((c) => c.key === key)) s.fail(`context ${key} already given in this rule`, keyStart);
      s.skipBlanks();
      const test: ContextTest = { key, set: readSet(s, () => readString(s)) };
      rule.context = [...(rule.context ?? []), test].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return;
    }
    case "string": {
      const glob = spec.field === "devnode";
      const set = readSet(s, () => (glob ? readGlob(s) : readString(s)));
      if (spec.field === "label" && rule.label) {
        rule.label = { op: set.op === "equals" ? rule.label.op : set.op, values: [...rule.label.values, ...set.values] };
      } else {
        rule[spec.field as Exclude<StringAttributeField, "label">] = set;
      }
      return;
    }
  }
}

function readSet<T>(s: Scanner, readValue: () => T): ValueSet<T> {
  let op: SetOperator = "equals";
  const word = s.word();
  if ((SET_OPERATORS as readonly string[]).includes(word)) {
    s.pos += word.length;
    if (!isBlank(s.peek())) s.fail(`expected a blank and "{" after "${word}"`);
    s.skipBlanks();
    if (s.peek() !== "{") s.fail(`expected "{" after "${word}", found ${describeChar(s.peek())}`);
    op = word as SetOperator;
  } else if (/^[a-z][a-z-]*$/.test(word) && /^[ \t]+\{/.test(s.text.slice(s.pos + word.length))) {
    s.fail(`unknown set operator "${word}" (known: ${SET_OPERATORS.join(", ")})`);
  }
  if (s.peek() !== "{") return { op, values: [readValue()] };
  const open = s.pos;
  s.pos++;
  s.skipBlanks();
  if (s.peek() === "}") s.fail("empty set: a set needs at least one value", open);
  const values: T[] = [];
  for (;;) {
    if (s.eof) s.fail('missing "}" to close the set', open);
    values.push(readValue());
    const blanks = s.skipBlanks();
    if (s.peek() === "}") {
      s.pos++;
      return { op, values };
    }
    if (s.eof) s.fail('missing "}" to close the set', open);
    if (blanks === 0) s.fail(`expected a blank or "}" after a value, found ${describeChar(s.peek())}`);
  }
}

/** After an atom, only a separator may follow; this names the atom in the error. */
function expectEndOfValue(s: Scanner, what: string): void {
  const ch = s.peek();
  if (ch === "" || isBlank(ch) || ch === "}" || ch === "#") return;
  s.fail(`unexpected ${describeChar(ch)} after ${what}`);
}

function readString(s: Scanner): string {
  if (s.peek() !== '"') {
    s.fail(s.eof ? "expected a quoted string" : `expected a quoted string, found ${describeChar(s.peek())}`);
  }
  const v = s.readString();
  expectEndOfValue(s, "a string");
  return v;
}

function readGlob(s: Scanner): string {
  const start = s.pos;
  const v = readString(s);
  try {
    compileGlob(v);
  } catch (err) {
    s.fail((err as Error).message, start);
  }
  return v;
}

function readHexOrStar(s: Scanner, digits: number): string | undefined {
  if (s.peek() === "*") {
    s.pos++;
    return "*";
  }
  const t = s.text.slice(s.pos, s.pos + digits);
  if (t.length !== digits || ![...t].every(isHexDigit)) return undefined;
  s.pos += digits;
  return t;
}

const ID_FORM = "a device id is vvvv:pppp, 4 hex digits or * on each side";

function readDeviceId(s: Scanner): DeviceIdValue {
  const start = s.pos;
  if (s.peek() === '"') s.fail("device ids are written without quotes, e.g. 2341:0043");
  const vendor = readHexOrStar(s, 4);
  if (vendor === undefined || s.peek() !== ":") s.fail(`invalid device id: ${ID_FORM}`, start);
  s.pos++;
  const product = readHexOrStar(s, 4);
  if (product === undefined || isHexDigit(s.peek())) s.fail(`invalid device id: ${ID_FORM}`, start);
  if (vendor === "*" && product !== "*") {
    s.fail(`invalid device id "*:${product}": a wildcard vendor needs a wildcard product (*:*)`, start);
  }
  expectEndOfValue(s, "the device id");
  return { vendor, product };
}

const IFACE_FORM = "an interface is cc:ss:pp in hex, with * allowed for ss and pp";

function readInterface(s: Scanner): InterfaceValue {
  const start = s.pos;
  if (s.peek() === '"') s.fail("interfaces are written without quotes, e.g. 03:01:01");
  const cls = readHexOrStar(s, 2);
  if (cls === "*") s.fail(`invalid interface: the class cannot be *; ${IFACE_FORM}`, start);
  if (cls === undefined || s.peek() !== ":") s.fail(`invalid interface: ${IFACE_FORM}`, start);
  s.pos++;
  const sub = readHexOrStar(s, 2);
  if (sub === undefined || s.peek() !== ":") s.fail(`invalid interface: ${IFACE_FORM}`, start);
  s.pos++;
  const proto = readHexOrStar(s, 2);
  if (proto === undefined || isHexDigit(s.peek())) s.fail(`invalid interface: ${IFACE_FORM}`, start);
  if (sub === "*" && proto !== "*") {
    s.fail(`invalid interface "${cls}:*:${proto}": a wildcard subclass needs a wildcard protocol (${cls}:*:*)`, start);
  }
  expectEndOfValue(s, "the interface");
  return {
    cls: parseInt(cls, 16),
    subclass: sub === "*" ? null : parseInt(sub, 16),
    protocol: proto === "*" ? null : parseInt(proto, 16),
  };
}

function readCondition(s: Scanner): Condition {
  const start = s.pos;
  let negated = false;
  if (s.peek() === "!") {
    negated = true;
    s.pos++;
  }
  const idStart = s.pos;
  const m = /^[a-zA-Z-][a-zA-Z0-9-]*/.exec(s.text.slice(s.pos));
  if (!m) s.fail(`expected a condition (true, false, localtime(...), ...), found ${describeChar(s.peek())}`);
  const identifier = m[0];
  s.pos += identifier.length;
  let arg: string | undefined;
  let argStart = idStart;
  if (s.peek() === "(") {
    argStart = s.pos + 1;
    arg = s.readConditionArgument();
  }
  expectEndOfValue(s, "the condition");
  const end = s.pos;
  try {
    return buildCondition(identifier, arg, negated, (q) => parseQuery(s, q, argStart));
  } catch (err) {
    if (err instanceof PolicyParseError) throw err;
    if (err instanceof ConditionArgumentError) {
      s.fail(err.message, arg === undefined || err.message.startsWith("unknown condition") ? idStart : argStart + err.offset);
    }
    s.pos = end;
    s.fail((err as Error).message, start);
  }
}

/** allowed-matches(query): USBGuard parses "allow " + query as a rule. */
function parseQuery(outer: Scanner, query: string, argStart: number): Rule {
  const prefix = "allow ";
  const q = new Scanner(prefix + query, outer.line, outer.column + argStart - prefix.length, outer.prefix + "in the allowed-matches query: ");
  const rule = parseFrom(q);
  if (!rule) return q.fail("allowed-matches needs a device query, e.g. allowed-matches(with-interface one-of { 03:00:01 })");
  return rule;
}
