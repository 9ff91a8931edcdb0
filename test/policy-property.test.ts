// Properties of the rule language over generated input: the parser fails
// only with a positioned PolicyParseError, canonical text reads back to the
// same rule, and the indexed rule set decides exactly as a scan from the top.
import assert from "assert";
import fc from "fast-check";
import { PolicyEvalError } from "../lib/policy/conditions";
import { EvalOptions, ruleMatches } from "../lib/policy/evaluate";
import { formatRule } from "../lib/policy/format";
import { parseRule } from "../lib/policy/parser";
import { RuleSet } from "../lib/policy/ruleset";
import { PolicyDevice, PolicyParseError } from "../lib/policy/types";

const RUNS = Number(process.env.FC_RUNS ?? 400);

/** Parses or fails with a PolicyParseError inside the text; never anything else. */
function checkParse(text: string): void {
  try {
    const rule = parseRule(text);
    const canonical = formatRule(rule);
    assert.strictEqual(formatRule(parseRule(canonical)), canonical);
  } catch (err) {
    if (!(err instanceof PolicyParseError)) throw err;
    assert.strictEqual(err.line, 1);
    assert.ok(err.column >= 1 && err.column <= text.length + 1, `column ${err.column} outside ${JSON.stringify(text)}`);
  }
}

const TOKENS = [
  "allow", "block", "reject", "match", "device", "id", "serial", "name", "hash", "parent-hash", "via-port",
  "with-interface", "with-connect-type", "label", "if", "subsystem", "devnode", "profile", "profile-interface",
  "context", "all-of", "one-of", "none-of", "equals", "equals-ordered", "match-all", "{", "}", "(", ")", "!",
  '"', "\\", "#", "*", ":", "*:*", "2341:0043", "2341:*", "*:0043", "08:*:*", "03:01:01", "03:*:01", "true",
  "false", "localtime", "localtime(08:00-18:00)", "random", "random(0.5)", "rule-applied", "rule-evaluated(10)",
  "allowed-matches", "allowed-matches(id 2341:*)", '"x"', '"a\\"b"', '"\\x41"', '"\\n"', "user", "é", "\u{1F600}",
  "\t", "\n",
];

const SAMPLES = [
  'allow id 2341:0043 serial "7563" name "Arduino Uno" with-interface { 02:02:01 0a:00:00 }',
  "reject with-interface all-of { 08:*:* 03:00:* } if !localtime(08:00-18:00)",
  'block 1d6b:* via-port one-of { "1-1" "1-2" } label "hubs"',
  'allow if one-of { random(0.2) !rule-applied(00:10) allowed-matches(name "x") }',
  'allow subsystem "tty" devnode one-of { "/dev/ttyACM*" } profile "Arduino Uno" context user "alice" # comment',
  'allow name "Caf\\xc3\\xa9 \\"quoted\\" \\\\"',
];

const separator = fc.constantFrom(" ", " ", "  ", "", "\t");
const tokenText = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 3 }), fc.string({ unit: "grapheme", maxLength: 2 })), separator), {
    maxLength: 14,
  })
  .map((parts) => parts.map(([t, s]) => t + s).join(""));

/** A good rule with a few characters inserted, deleted or replaced. */
const mutated = fc
  .tuple(
    fc.constantFrom(...SAMPLES),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 }), fc.string({ unit: "binary-ascii", maxLength: 2 })), { minLength: 1, maxLength: 4 }),
  )
  .map(([text, edits]) => {
    let t = text;
    for (const [at, kind, s] of edits) {
      const i = at % (t.length + 1);
      if (kind === 0) t = t.slice(0, i) + s + t.slice(i);
      else if (kind === 1) t = t.slice(0, i) + t.slice(i + 1);
      else t = t.slice(0, i) + s + t.slice(i + s.length);
    }
    return t;
  });

// Generators of valid rule text, from which canonical text must read back
// to the same tree.
const hex = (n: number) => fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), minLength: n, maxLength: n });
const idValue = fc.oneof(fc.constant("*:*"), hex(4).map((v) => v + ":*"), fc.tuple(hex(4), hex(4)).map(([v, p]) => `${v}:${p}`));
const smallId = fc.tuple(fc.constantFrom("2341", "1d6b", "0781"), fc.constantFrom("0043", "0001", "5567", "*")).map(([v, p]) => `${v}:${p}`);
const ifaceValue = fc
  .tuple(hex(2), hex(2), hex(2), fc.nat({ max: 2 }))
  .map(([c, s, p, w]) => (w === 0 ? `${c}:${s}:${p}` : w === 1 ? `${c}:${s}:*` : `${c}:*:*`));
const smallIface = fc.constantFrom("02:02:01", "0a:00:00", "08:06:50", "03:01:01", "03:00:00", "02:*:*", "08:*:*", "03:*:*", "0a:00:*");
const escapeText = (s: string, hexBytes: boolean[]) =>
  '"' +
  [...s]
    .map((ch, i) => {
      if (ch === '"' || ch === "\\") return "\\" + ch;
      const c = ch.charCodeAt(0);
      if (ch.length === 1 && c < 0x80 && (hexBytes[i % hexBytes.length] || c < 0x20)) return "\\x" + c.toString(16).padStart(2, "0");
      return ch;
    })
    .join("") +
  '"';
const stringValue = fc
  .tuple(fc.string({ unit: "grapheme", maxLength: 8 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }))
  .map(([s, h]) => escapeText(s.replace(/[\r\n]/g, ""), h));
const smallString = fc.constantFrom('"A"', '"B"', '""', '"Arduino Uno"').map((s) => s);
const deterministicCondition = fc.constantFrom(
  "true", "false", "localtime(08:00-18:00)", "localtime(2:00)", "allowed-matches", "allowed-matches(with-interface one-of { 03:*:* })",
);
const anyCondition = fc.oneof(
  deterministicCondition,
  fc.constantFrom("random", "random(0.3)", "rule-applied", "rule-applied(00:01)", "rule-evaluated", "rule-evaluated(5)"),
);
const operator = fc.constantFrom("", "all-of ", "one-of ", "none-of ", "equals ", "equals-ordered ", "match-all ");

function setOf(value: fc.Arbitrary<string>, maxLength = 4): fc.Arbitrary<string> {
  return fc.oneof(
    value,
    fc.tuple(operator, fc.array(value, { minLength: 1, maxLength })).map(([op, vs]) => `${op}{ ${vs.join(" ")} }`),
  );
}

interface Vocabulary {
  id: fc.Arbitrary<string>;
  iface: fc.Arbitrary<string>;
  str: fc.Arbitrary<string>;
  cond: fc.Arbitrary<string>;
}

function ruleText(v: Vocabulary, targets: string[] = ["allow", "block", "reject", "match", "device"], maxAttributes = 6): fc.Arbitrary<string> {
  const negatable = fc.tuple(fc.boolean(), v.cond).map(([n, c]) => (n ? "!" : "") + c);
  const attributes: [string, fc.Arbitrary<string>][] = [
    ["id", setOf(v.id)],
    ["serial", setOf(v.str)],
    ["name", setOf(v.str)],
    ["hash", setOf(v.str)],
    ["parent-hash", setOf(v.str)],
    ["via-port", setOf(v.str)],
    ["with-interface", setOf(v.iface)],
    ["with-connect-type", setOf(v.str)],
    ["label", setOf(v.str)],
    ["if", setOf(negatable, 3)],
    ["subsystem", setOf(v.str)],
    ["devnode", setOf(fc.constantFrom('"/dev/ttyACM*"', '"/dev/tty?*"', '"/dev/video[0-9]"', '"/dev/serial/by-id/*"'))],
    ["profile", setOf(v.str)],
    ["profile-interface", setOf(v.str)],
    ["context user", setOf(v.str)],
    ["context role", setOf(v.str)],
  ];
  return fc
    .tuple(
      fc.constantFrom(...targets),
      fc.shuffledSubarray(attributes, { maxLength: maxAttributes }).chain((chosen) =>
        fc.tuple(...chosen.map(([kw, arb]) => arb.map((val) => `${kw} ${val}`))),
      ),
    )
    .map(([target, attrs]) => [target, ...attrs].join(" "));
}

const wideVocabulary: Vocabulary = { id: idValue, iface: ifaceValue, str: stringValue, cond: anyCondition };

const deviceArb: fc.Arbitrary<PolicyDevice> = fc
  .record({
    key: fc.constantFrom("k1", "k2", "k3"),
    id: fc.option(fc.tuple(fc.constantFrom("2341", "1d6b", "0781", "2342"), fc.constantFrom("0043", "0001", "5567")).map(([v, p]) => `${v}:${p}`), { nil: undefined }),
    serial: fc.option(fc.constantFrom("A", "B", "", "Arduino Uno"), { nil: undefined }),
    name: fc.option(fc.constantFrom("A", "B", "", "Arduino Uno"), { nil: undefined }),
    hash: fc.option(fc.constantFrom("A", "B"), { nil: undefined }),
    viaPort: fc.option(fc.constantFrom("A", "1-1"), { nil: undefined }),
    withInterface: fc.array(fc.constantFrom("02:02:01", "0a:00:00", "08:06:50", "03:01:01", "03:00:00"), { maxLength: 4 }),
    withConnectType: fc.option(fc.constantFrom("A", "hotplug"), { nil: undefined }),
    subsystem: fc.option(fc.constantFrom("A", "tty"), { nil: undefined }),
    devnodes: fc.option(fc.array(fc.constantFrom("/dev/ttyACM0", "/dev/tty1", "/dev/video0", "/dev/serial/by-id/x"), { maxLength: 3 }), { nil: undefined }),
    profile: fc.option(fc.constantFrom("A", "Arduino Uno"), { nil: undefined }),
  })
  .map((d) => {
    const out: PolicyDevice = { key: d.key, withInterface: d.withInterface };
    for (const [k, v] of Object.entries(d)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
    return out;
  });

const contextArb = fc.record({ user: fc.constantFrom("A", "B"), role: fc.constantFrom("A", "B") }, { requiredKeys: [] });

describe("policy language properties", () => {
  it("random token soup parses or fails with a positioned PolicyParseError", () => {
    fc.assert(fc.property(tokenText, checkParse), { numRuns: RUNS * 5 });
  });

  it("arbitrary strings parse or fail with a positioned PolicyParseError", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 40 }), checkParse), { numRuns: RUNS * 2 });
  });

  it("good rules with random edits parse or fail with a positioned PolicyParseError", () => {
    fc.assert(fc.property(mutated, checkParse), { numRuns: RUNS * 5 });
  });

  it("a rules file fails on a line that exists, at a column inside it", () => {
    const fileText = fc.array(fc.oneof(tokenText, mutated, fc.constantFrom("", "# comment", "  allow")), { maxLength: 8 }).map((ls) => ls.join("\n"));
    fc.assert(
      fc.property(fileText, (text) => {
        try {
          RuleSet.parse(text);
        } catch (err) {
          if (!(err instanceof PolicyParseError)) throw err;
          const lines = text.split("\n");
          assert.ok(err.line >= 1 && err.line <= lines.length);
          assert.ok(err.column >= 1 && err.column <= lines[err.line - 1].length + 1);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("formatting a rule and parsing it again gives the same rule", () => {
    fc.assert(
      fc.property(ruleText(wideVocabulary), (text) => {
        const rule = parseRule(text);
        const canonical = formatRule(rule);
        const again = parseRule(canonical);
        assert.deepStrictEqual(again, rule);
        assert.strictEqual(formatRule(again), canonical);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it("random devices against random rule sets never crash", () => {
    const vocabulary: Vocabulary = { id: smallId, iface: smallIface, str: smallString, cond: anyCondition };
    fc.assert(
      fc.property(fc.array(ruleText(vocabulary), { maxLength: 40, size: "medium" }), fc.array(deviceArb, { minLength: 1, maxLength: 5 }), contextArb, (rules, devices, context) => {
        const set = RuleSet.parse(rules.join("\n"));
        for (const d of devices) {
          const m = set.evaluate(d, { context, allowedDevices: devices });
          if (m) assert.ok(["allow", "block", "reject"].includes(m.target) && typeof m.reason === "string");
          try {
            set.evaluate(d, { context });
          } catch (err) {
            assert.ok(err instanceof PolicyEvalError && set.usesAllowedMatches);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("the indexed rule set decides as a first-match scan from the top", () => {
    const vocabulary: Vocabulary = { id: smallId, iface: smallIface, str: smallString, cond: deterministicCondition };
    fc.assert(
      fc.property(
        // Past 24 deciding rules the set is indexed; smaller sets are scanned.
        // Few attributes per rule, so that rules match often enough for
        // their order to matter.
        fc.array(ruleText(vocabulary, ["allow", "block", "reject", "match"], 2), { minLength: 20, maxLength: 60, size: "max" }),
        fc.array(deviceArb, { minLength: 1, maxLength: 6 }),
        contextArb,
        fc.integer({ min: 0, max: 86399 }),
        (rules, devices, context, second) => {
          const set = RuleSet.parse(rules.join("\n"));
          const opts: EvalOptions = { context, allowedDevices: devices.slice(1), now: new Date(2025, 0, 1, 0, 0, second) };
          for (const d of devices) {
            let expected = -1;
            for (let i = 0; i < set.size && expected < 0; i++) {
              const r = set.ruleAt(i);
              if (r.target !== "match" && r.target !== "device" && ruleMatches(r, d, opts)) expected = i;
            }
            assert.strictEqual(set.evaluate(d, opts)?.ruleIndex ?? -1, expected);
          }
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });
});
