// The rule language: parsing, canonical text, every set operator, conditions,
// devplane's extensions, first-match over a rule set, and the device mapping.
import assert from "assert";
import { PolicyEvalError } from "../lib/policy/conditions";
import { deviceFromEvent, ruleForDevice } from "../lib/policy/device";
import { explainRule, ruleMatches } from "../lib/policy/evaluate";
import { formatRule } from "../lib/policy/format";
import { compileGlob, escapeGlob } from "../lib/policy/glob";
import { parseRule } from "../lib/policy/parser";
import { RuleSet } from "../lib/policy/ruleset";
import { PolicyDevice, PolicyParseError } from "../lib/policy/types";

function dev(over: Partial<PolicyDevice> = {}): PolicyDevice {
  return { key: "usb-test", withInterface: [], ...over };
}

const arduino = dev({
  key: "usb-2341:0043-7563331313335171A0C1",
  id: "2341:0043",
  serial: "7563331313335171A0C1",
  name: "Arduino Uno",
  viaPort: "1-1.2",
  withInterface: ["02:02:01", "0a:00:00"],
  subsystem: "tty",
  devnodes: ["/dev/ttyACM0", "/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_7563331313335171A0C1-if00"],
  profile: "Arduino Uno",
  profileInterface: "uart",
});
const flashDisk = dev({ key: "usb-0781:5567-1", id: "0781:5567", serial: "1", name: "Cruzer Blade", viaPort: "1-3", withInterface: ["08:06:50"] });
const flashWithKeyboard = dev({ key: "usb-1234:5678", id: "1234:5678", serial: "", name: "Totally a disk", viaPort: "1-4", withInterface: ["08:06:50", "03:01:01"] });
const keyboard = dev({ key: "usb-046d:c31c", id: "046d:c31c", serial: "", name: "USB Keyboard", viaPort: "1-5", withInterface: ["03:01:01", "03:00:00"] });

function matches(rule: string, device: PolicyDevice, opts?: Parameters<typeof ruleMatches>[2]): boolean {
  return ruleMatches(parseRule(rule), device, opts);
}

/** Rules that match nothing here, appended so that a set is large enough to be indexed. */
function padded(text: string): string {
  const filler = Array.from({ length: 40 }, (_, i) => `block id ffff:${(0xf000 + i).toString(16)} serial "never"`);
  return [text, ...filler].join("\n");
}

function parseError(fn: () => unknown): PolicyParseError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PolicyParseError, `expected a PolicyParseError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected a PolicyParseError");
}

describe("policy language", () => {
  describe("parsing and canonical text", () => {
    it("prints attributes in USBGuard's order, with single values unwrapped", () => {
      assert.strictEqual(
        formatRule(parseRule('allow with-interface equals { 08:*:* } name { "x" } id 1D6B:* serial "s" label "l" if true')),
        'allow id 1D6B:* serial "s" name "x" with-interface 08:*:* if true label "l"',
      );
      assert.strictEqual(formatRule(parseRule("allow id one-of { 2341:0043 }")), "allow id one-of { 2341:0043 }");
      assert.strictEqual(formatRule(parseRule("  block   # trailing comment")), "block");
    });

    it("reads the bare device id after the target as the id attribute", () => {
      const r = parseRule('allow 1050:0011 name "Yubico Yubikey II"');
      assert.deepStrictEqual(r.id, { op: "equals", values: [{ vendor: "1050", product: "0011" }] });
      assert.strictEqual(formatRule(r), 'allow id 1050:0011 name "Yubico Yubikey II"');
      parseError(() => parseRule("allow 1050:0011 id 1050:0011"));
    });

    it('reads \\" \\\\ and \\xHH in strings, and prints bytes outside printable ASCII as \\xHH', () => {
      const r = parseRule('allow name "a\\"b\\\\c\\x41 Caf\\xc3\\xa9" serial "Café"');
      assert.deepStrictEqual(r.name?.values, ['a"b\\cA Café']);
      assert.deepStrictEqual(r.serial?.values, ["Café"]);
      assert.strictEqual(formatRule(r), 'allow serial "Caf\\xc3\\xa9" name "a\\"b\\\\cA Caf\\xc3\\xa9"');
    });

    it("refuses escapes USBGuard refuses, naming them, with the column", () => {
      const e = parseError(() => parseRule('allow name "line\\nbreak"'));
      assert.match(e.message, /unsupported escape '\\n'/);
      assert.strictEqual(e.line, 1);
      assert.strictEqual(e.column, 17);
    });

    it("reports the line and column of an error in a rules file", () => {
      const e = parseError(() => RuleSet.parse('allow id 2341:0043\n# fine\nallow with-interface 03:*:01\n'));
      assert.strictEqual(e.line, 3);
      assert.strictEqual(e.column, 22);
      assert.match(e.message, /a wildcard subclass needs a wildcard protocol/);
    });

    it("names what it does not know", () => {
      assert.match(parseError(() => parseRule('allow vendor "x"')).message, /unknown attribute "vendor"/);
      assert.match(parseError(() => parseRule("allow if sometimes")).message, /unknown condition "sometimes"/);
      assert.match(parseError(() => parseRule("allow with-interface any-of { 03:*:* }")).message, /unknown set operator "any-of"/);
      assert.match(parseError(() => parseRule("permit")).message, /unknown target "permit"/);
      assert.match(parseError(() => parseRule("allow if localtime(18:00-08:00)")).message, /begins after it ends/);
      assert.match(parseError(() => parseRule("allow if random(1.5)")).message, /outside 0 to 1/);
      const q = parseError(() => parseRule("allow if allowed-matches(colour 3)"));
      assert.match(q.message, /in the allowed-matches query: unknown attribute "colour"/);
      assert.strictEqual(q.column, 26);
    });

    it("merges repeated labels as USBGuard does, and never matches on them", () => {
      const r = parseRule('allow label "a" label "b"');
      assert.strictEqual(formatRule(r), 'allow label { "a" "b" }');
      assert.ok(ruleMatches(r, keyboard));
    });

    it("parses match and device rules, which never decide", () => {
      const set = RuleSet.parse('match id 2341:*\ndevice id 2341:0043\nblock id 2341:0043');
      assert.strictEqual(set.size, 3);
      const m = set.evaluate(arduino);
      assert.deepStrictEqual(m && { target: m.target, rule: m.rule, ruleIndex: m.ruleIndex }, { target: "block", rule: "block id 2341:0043", ruleIndex: 2 });
    });

    it("keeps rule-evaluated as written (USBGuard 1.x prints it back as rule-applied)", () => {
      assert.strictEqual(formatRule(parseRule("allow if rule-evaluated(10)")), "allow if rule-evaluated(10)");
    });
  });

  describe("set operators", () => {
    // The Arduino has two interfaces: CDC control 02:02:01 and CDC data 0a:00:00.
    const table: [string, boolean][] = [
      ["with-interface one-of { 02:*:* 08:*:* }", true],
      ["with-interface one-of { 08:*:* }", false],
      ["with-interface all-of { 02:02:01 0a:*:* }", true],
      ["with-interface all-of { 02:02:01 08:*:* }", false],
      ["with-interface none-of { 08:*:* 03:*:* }", true],
      ["with-interface none-of { 08:*:* 0a:*:* }", false],
      ["with-interface equals { 0a:00:00 02:02:01 }", true],
      ["with-interface equals { 02:*:* }", false],
      ["with-interface equals { 02:*:* 0a:*:* 08:*:* }", false],
      ["with-interface equals-ordered { 02:02:01 0a:00:00 }", true],
      ["with-interface equals-ordered { 0a:00:00 02:02:01 }", false],
      ["with-interface match-all { 02:*:* 0a:*:* 08:*:* }", true],
      ["with-interface match-all { 02:*:* 08:*:* }", false],
      ["with-interface { 02:02:01 0a:00:00 }", true],
    ];
    for (const [attr, expected] of table) {
      it(`allow ${attr} → ${expected ? "matches" : "does not match"} a device with { 02:02:01 0a:00:00 }`, () => {
        assert.strictEqual(matches(`allow ${attr}`, arduino), expected);
      });
    }

    it("equals is not one-of: a single value means the device has that and nothing else", () => {
      // The trap: "block anything with a mass-storage interface" written with
      // the default operator lets a disk with a hidden keyboard through.
      assert.strictEqual(matches("block with-interface 08:*:*", flashWithKeyboard), false);
      assert.strictEqual(matches("block with-interface { 08:*:* }", flashWithKeyboard), false);
      assert.strictEqual(matches("block with-interface one-of { 08:*:* }", flashWithKeyboard), true);
      // ...and the other way round: "allow mass storage only" wants equals.
      assert.strictEqual(matches("allow with-interface 08:*:*", flashDisk), true);
      assert.strictEqual(matches("allow with-interface 08:*:*", flashWithKeyboard), false);
      assert.strictEqual(matches("allow with-interface one-of { 08:*:* }", flashWithKeyboard), true);
    });

    it("compares sets, not counts: repeated interfaces (USBGuard lists alternate settings) still match", () => {
      const camera = dev({ id: "5986:0706", withInterface: ["0e:01:00", "0e:02:00"] });
      assert.ok(matches("allow with-interface { 0e:01:00 0e:02:00 0e:02:00 0e:02:00 }", camera));
      assert.ok(matches("allow with-interface 0e:*:*", camera));
      assert.ok(!matches("allow with-interface { 0e:01:00 0e:01:00 }", camera));
    });

    it("applies set operators to single-valued attributes", () => {
      assert.ok(matches('allow name one-of { "Arduino Uno" "Arduino Mega" }', arduino));
      assert.ok(!matches('allow name { "Arduino Uno" "Arduino Mega" }', arduino)); // equals: the device has one name
      assert.ok(matches('allow name none-of { "Arduino Mega" }', arduino));
      assert.ok(!matches('allow name none-of { "Arduino Uno" }', arduino));
      assert.ok(matches('allow name all-of { "Arduino Uno" "Arduino Uno" }', arduino));
      assert.ok(!matches('allow name all-of { "Arduino Uno" "Arduino Mega" }', arduino));
      assert.ok(matches('allow name match-all { "Arduino Mega" "Arduino Uno" }', arduino));
      assert.ok(matches('allow name equals-ordered { "Arduino Uno" }', arduino));
      assert.ok(!matches('allow name equals-ordered { "Arduino Uno" "Arduino Uno" }', arduino));
      assert.ok(matches("allow id one-of { 1d6b:* 2341:0043 }", arduino));
      assert.ok(matches("allow id none-of { 1d6b:* 2341:0001 }", arduino));
      assert.ok(!matches("allow id none-of { 2341:* }", arduino));
    });

    it("matches id wildcards, and device-id hex in any case", () => {
      assert.ok(matches("allow id 2341:*", arduino));
      assert.ok(matches("allow id *:*", arduino));
      assert.ok(matches("allow id 2341:0043", arduino));
      assert.ok(matches("allow id 2341:0043", dev({ id: "2341:0043".toUpperCase() })));
      assert.ok(matches("allow id 7DBB:00aB", dev({ id: "7dbb:00ab" })));
      assert.ok(!matches("allow id 2341:0042", arduino));
      assert.ok(!matches("allow id 2342:*", arduino));
    });

    it("matches interface wildcards per field", () => {
      assert.ok(matches("allow with-interface one-of { 02:02:* }", arduino));
      assert.ok(!matches("allow with-interface one-of { 02:03:* }", arduino));
      assert.ok(matches("allow with-interface one-of { 0A:00:00 }", arduino));
    });

    it("does not match on an attribute the device lacks, whatever the operator", () => {
      assert.ok(!matches('allow hash "abc"', arduino));
      assert.ok(!matches('allow hash none-of { "abc" }', arduino));
      assert.ok(!matches('allow with-connect-type none-of { "hardwired" }', arduino));
      assert.ok(!matches("allow id none-of { 2341:* }", dev({ subsystem: "tty" })));
      assert.ok(matches('allow with-connect-type "hotplug"', dev({ withConnectType: "hotplug" })));
    });

    it("matches an empty serial, which is how USBGuard names a device without one", () => {
      assert.ok(matches('allow id 046d:c31c serial ""', keyboard));
      assert.ok(!matches('allow id 046d:c31c serial ""', dev({ id: "046d:c31c" })));
    });
  });

  describe("conditions", () => {
    const at = (h: number, m: number, s = 0) => new Date(2025, 0, 15, h, m, s);

    it("evaluates true, false and negation, and the condition set operators", () => {
      assert.ok(matches("allow if true", keyboard));
      assert.ok(!matches("allow if false", keyboard));
      assert.ok(matches("allow if !false", keyboard));
      assert.ok(!matches("allow if { true false }", keyboard));
      assert.ok(!matches("allow if all-of { true false }", keyboard));
      assert.ok(!matches("allow if equals-ordered { true false !true false }", keyboard));
      assert.ok(matches("allow if one-of { true false }", keyboard));
      assert.ok(matches("allow if none-of { false !true }", keyboard));
      assert.ok(!matches("allow if none-of { false true }", keyboard));
    });

    it("evaluates localtime in local time, ends included", () => {
      const r = "allow if localtime(08:00-18:00:30)";
      assert.ok(matches(r, keyboard, { now: at(8, 0) }));
      assert.ok(matches(r, keyboard, { now: at(18, 0, 30) }));
      assert.ok(!matches(r, keyboard, { now: at(18, 0, 31) }));
      assert.ok(!matches(r, keyboard, { now: at(7, 59, 59) }));
      assert.ok(matches("allow if !localtime(08:00-18:00)", keyboard, { now: at(23, 0) }));
      // A single time is a one-second window, as in USBGuard.
      assert.ok(matches("allow if localtime(2:00)", keyboard, { now: at(2, 0, 0) }));
      assert.ok(!matches("allow if localtime(2:00)", keyboard, { now: at(2, 0, 1) }));
    });

    it("evaluates random with its probability", () => {
      assert.ok(!matches("allow if random(0)", keyboard));
      assert.ok(matches("allow if random(1)", keyboard));
      let hits = 0;
      const r = parseRule("allow if random(0.25)");
      for (let i = 0; i < 4000; i++) if (ruleMatches(r, keyboard)) hits++;
      assert.ok(hits > 800 && hits < 1200, `random(0.25) held ${hits} times in 4000`);
    });

    it("remembers, per rule set, which rules applied and when", () => {
      const set = RuleSet.parse("allow id 046d:c31c if !rule-applied\nblock id 046d:c31c\nreject if rule-applied(00:01:00)");
      const t0 = at(12, 0);
      assert.strictEqual(set.evaluate(keyboard, { now: t0 })?.ruleIndex, 0, "first time: never applied");
      assert.strictEqual(set.evaluate(keyboard, { now: at(12, 5) })?.ruleIndex, 1, "rule 0 applied before");
      // rule 2 has never applied, so it does not match.
      assert.strictEqual(set.evaluate(flashDisk, { now: at(12, 5) }), undefined);
      const set2 = RuleSet.parse("reject if !rule-applied(30)\nallow");
      assert.strictEqual(set2.evaluate(keyboard, { now: at(12, 0, 0) })?.ruleIndex, 0);
      assert.strictEqual(set2.evaluate(keyboard, { now: at(12, 0, 20) })?.ruleIndex, 1, "applied 20 s ago");
      assert.strictEqual(set2.evaluate(keyboard, { now: at(12, 0, 40) })?.ruleIndex, 0, "applied 40 s ago");
      assert.strictEqual(set2.evaluate(keyboard, { now: at(12, 1, 0) })?.ruleIndex, 1, "applied again 20 s ago");
    });

    it("remembers which rules were evaluated, including those the index skipped", () => {
      const set = RuleSet.parse("block id 1111:1111\nallow if rule-evaluated\nreject");
      assert.strictEqual(set.evaluate(keyboard)?.target, "reject", "rule 1 never evaluated before");
      assert.strictEqual(set.evaluate(keyboard)?.target, "allow");
      const set2 = RuleSet.parse("block id 046d:c31c\nallow if rule-evaluated\nreject");
      assert.strictEqual(set2.evaluate(keyboard)?.target, "block", "rule 0 decides; rule 1 not reached");
      assert.strictEqual(set2.evaluate(flashDisk)?.target, "reject", "rule 1 reached for the first time");
      assert.strictEqual(set2.evaluate(flashDisk)?.target, "allow");
    });

    it("evaluates allowed-matches against the allowed devices it is given, and refuses to guess without them", () => {
      const r = parseRule("allow with-interface one-of { 03:00:01 03:01:01 } if !allowed-matches(with-interface one-of { 03:00:01 03:01:01 })");
      assert.ok(ruleMatches(r, keyboard, { allowedDevices: [flashDisk] }));
      assert.ok(!ruleMatches(r, keyboard, { allowedDevices: [flashDisk, flashWithKeyboard] }));
      assert.ok(ruleMatches(r, keyboard, { allowedDevices: [keyboard] }), "the device itself does not count");
      assert.throws(() => ruleMatches(r, keyboard), PolicyEvalError);
      assert.ok(RuleSet.parse(formatRule(r)).usesAllowedMatches);
      // A bare allowed-matches asks whether any device is allowed.
      assert.ok(matches("allow if allowed-matches", keyboard, { allowedDevices: [flashDisk] }));
      assert.ok(!matches("allow if allowed-matches", keyboard, { allowedDevices: [] }));
    });
  });

  describe("devplane extensions", () => {
    it("matches subsystem, profile and profile-interface", () => {
      assert.ok(matches('allow subsystem "tty" profile "Arduino Uno" profile-interface "uart"', arduino));
      assert.ok(!matches('allow subsystem "video4linux"', arduino));
      assert.ok(!matches('allow profile "Arduino Uno"', flashDisk), "no profile known");
    });

    it("matches devnode globs, with the same set operators", () => {
      assert.ok(matches('allow devnode one-of { "/dev/ttyACM*" }', arduino));
      assert.ok(matches('allow devnode one-of { "/dev/serial/by-id/usb-Arduino*" }', arduino));
      assert.ok(!matches('allow devnode one-of { "/dev/ttyUSB?" }', arduino));
      assert.ok(matches('allow devnode one-of { "/dev/*" }', arduino));
      assert.ok(!matches('allow devnode one-of { "/dev/serial/*" }', arduino), "* stops at /");
      // equals again: every device node must be covered.
      assert.ok(!matches('allow devnode "/dev/ttyACM*"', arduino));
      assert.ok(matches('allow devnode { "/dev/ttyACM[0-9]" "/dev/serial/by-id/*" }', arduino));
      assert.match(parseError(() => parseRule('allow devnode "/dev/tty[0-9"')).message, /without a closing/);
      assert.match(parseError(() => parseRule('allow devnode "/dev/tty[9-0]"')).message, /reversed range/);
      assert.ok(matches('allow devnode one-of { "/dev/tty[!0-9]*" }', arduino));
      assert.ok(matches('allow devnode one-of { "/dev/serial/by-id/usb-Arduino\\\\_*" }', arduino));
      const odd = "/dev/a*b?[c]\\d";
      assert.ok(compileGlob(escapeGlob(odd))(odd) && !compileGlob(escapeGlob(odd))("/dev/aXb?[c]\\d"));
      assert.ok(!matches('allow devnode one-of { "/dev/ttyACM\\\\*" }', arduino), "an escaped * is literal");
      // Patterns that make a backtracking RegExp explode stay linear.
      const slow = `allow devnode one-of { "${"*a".repeat(30)}b" }`;
      const t0 = Date.now();
      assert.ok(!matches(slow, dev({ devnodes: ["a".repeat(60)] })));
      assert.ok(Date.now() - t0 < 200);
    });

    it("matches the message's context", () => {
      const r = 'allow context user one-of { "alice" "bob" } context role "admin"';
      assert.ok(matches(r, keyboard, { context: { user: "alice", role: "admin" } }));
      assert.ok(!matches(r, keyboard, { context: { user: "carol", role: "admin" } }));
      assert.ok(!matches(r, keyboard, { context: { user: "alice" } }), "no role given");
      assert.ok(!matches(r, keyboard));
      assert.strictEqual(formatRule(parseRule(r)), 'allow context role "admin" context user one-of { "alice" "bob" }');
      assert.match(parseError(() => parseRule('allow context user "a" context user "b"')).message, /already given/);
    });
  });

  describe("rule sets", () => {
    it("lets the first matching rule decide, and none decide when nothing matches", () => {
      const set = RuleSet.parse(
        [
          "# policy",
          'allow id 2341:0043 serial "7563331313335171A0C1"',
          "reject with-interface all-of { 08:*:* 03:*:* }",
          "allow with-interface 08:*:*",
          "block id 2341:*",
          "",
        ].join("\n"),
      );
      assert.strictEqual(set.size, 4);
      assert.deepStrictEqual(set.rules()[0], 'allow id 2341:0043 serial "7563331313335171A0C1"');
      assert.strictEqual(set.evaluate(arduino)?.ruleIndex, 0);
      assert.strictEqual(set.evaluate({ ...arduino, serial: "other" })?.ruleIndex, 3);
      assert.strictEqual(set.evaluate(flashWithKeyboard)?.target, "reject");
      assert.strictEqual(set.evaluate(flashDisk)?.target, "allow");
      assert.strictEqual(set.evaluate(keyboard), undefined);
      assert.strictEqual(RuleSet.empty().evaluate(keyboard), undefined);
    });

    it("keeps rule order across index buckets", () => {
      const set = RuleSet.parse(padded("block id 2341:*\nallow id 2341:0043\nallow id *:*\nallow id one-of { 2341:0043 2341:* }"));
      assert.strictEqual(set.evaluate(arduino)?.ruleIndex, 0);
      const set2 = RuleSet.parse(
        padded(
          [
            "allow id 1111:2222",
            "reject with-interface one-of { 02:*:* }",
            'block via-port one-of { "1-9" "1-1.2" }',
            "allow id 2341:0043",
            "block with-interface all-of { ff:*:* 03:*:* }",
            "block id 2341:*",
            "allow with-interface match-all { ff:*:* }",
            "reject",
          ].join("\n"),
        ),
      );
      assert.strictEqual(set2.evaluate(arduino)?.ruleIndex, 1, "by interface class");
      assert.strictEqual(set2.evaluate({ ...arduino, withInterface: ["ff:00:00"] })?.ruleIndex, 2, "by port");
      assert.strictEqual(set2.evaluate({ ...arduino, withInterface: ["ff:00:00"], viaPort: "1-3" })?.ruleIndex, 3, "by exact id");
      const other = { ...arduino, id: "2341:0001", viaPort: "1-3" };
      assert.strictEqual(set2.evaluate({ ...other, withInterface: ["ff:00:00", "03:00:00"] })?.ruleIndex, 4, "by the first class of an all-of");
      assert.strictEqual(set2.evaluate({ ...other, withInterface: [] })?.ruleIndex, 5, "by vendor");
      assert.strictEqual(set2.evaluate({ ...other, id: "1234:0001", withInterface: [] })?.ruleIndex, 6, "match-all holds for no interfaces");
      assert.strictEqual(set2.evaluate({ ...other, id: "1234:0001", withInterface: ["08:06:50"] })?.ruleIndex, 7, "fallback");
    });

    it("explains the decision attribute by attribute", () => {
      const set = RuleSet.parse('allow id 2341:0043 with-interface one-of { 02:*:* } if localtime(00:00-23:59:59)');
      const m = set.evaluate(arduino);
      assert.ok(m);
      assert.strictEqual(
        m.reason,
        "rule 1 (allow id 2341:0043 with-interface one-of { 02:*:* } if localtime(00:00-23:59:59)) decided allow: it matched: " +
          "id 2341:0043 fits the device's 2341:0043; with-interface one-of { 02:*:* } fits the device's { 02:02:01 0a:00:00 }; " +
          "if localtime(00:00-23:59:59) held",
      );
      assert.strictEqual(
        explainRule(parseRule('allow serial "X" hash "h"'), arduino),
        'it did not match: serial "X" does not fit the device\'s "7563331313335171A0C1"; hash "h" is not known for this device',
      );
    });
  });

  describe("USBGuard's documented example policies", () => {
    it("1: allows a plain flash disk and nothing with an extra interface", () => {
      const set = RuleSet.parse("allow with-interface equals { 08:*:* }");
      assert.strictEqual(set.evaluate(flashDisk)?.target, "allow");
      assert.strictEqual(set.evaluate(flashWithKeyboard), undefined, "implicit block");
      assert.strictEqual(set.evaluate(keyboard), undefined);
    });

    it("2: allows one Yubikey on one port and rejects anything else there", () => {
      const set = RuleSet.parse(
        'allow 1050:0011 name "Yubico Yubikey II" serial "0001234567" via-port "1-2" hash "044b5e168d40ee0245478416caf3d998"\nreject via-port "1-2"',
      );
      const yubikey = dev({
        id: "1050:0011",
        name: "Yubico Yubikey II",
        serial: "0001234567",
        viaPort: "1-2",
        hash: "044b5e168d40ee0245478416caf3d998",
        withInterface: ["03:01:01"],
      });
      assert.strictEqual(set.evaluate(yubikey)?.target, "allow");
      assert.strictEqual(set.evaluate({ ...yubikey, serial: "0007654321" })?.target, "reject");
      assert.strictEqual(set.evaluate({ ...yubikey, viaPort: "1-3" }), undefined);
      assert.strictEqual(set.evaluate({ ...keyboard, viaPort: "1-2" })?.target, "reject");
    });

    it("3: rejects flash disks with suspicious extra interfaces", () => {
      const set = RuleSet.parse(
        [
          "allow with-interface equals { 08:*:* }",
          "reject with-interface all-of { 08:*:* 03:00:* }",
          "reject with-interface all-of { 08:*:* 03:01:* }",
          "reject with-interface all-of { 08:*:* e0:*:* }",
          "reject with-interface all-of { 08:*:* 02:*:* }",
        ].join("\n"),
      );
      assert.strictEqual(set.evaluate(flashDisk)?.target, "allow");
      assert.strictEqual(set.evaluate(flashWithKeyboard)?.ruleIndex, 2);
      assert.strictEqual(set.evaluate(dev({ id: "1111:2222", withInterface: ["08:06:50", "e0:01:01"] }))?.ruleIndex, 3);
      assert.strictEqual(set.evaluate(dev({ id: "1111:2222", withInterface: ["08:06:50", "02:02:01", "0a:00:00"] }))?.ruleIndex, 4);
      assert.strictEqual(set.evaluate(keyboard), undefined);
    });

    it("4: allows a keyboard only while no other keyboard is allowed", () => {
      const set = RuleSet.parse(
        "allow with-interface one-of { 03:00:01 03:01:01 } if !allowed-matches(with-interface one-of { 03:00:01 03:01:01 })",
      );
      assert.strictEqual(set.evaluate(keyboard, { allowedDevices: [] })?.target, "allow");
      const other = dev({ key: "usb-other", id: "04d9:1603", withInterface: ["03:01:01", "03:00:00"] });
      assert.strictEqual(set.evaluate(keyboard, { allowedDevices: [flashDisk, other] }), undefined);
    });

    it("5: plays Russian roulette", () => {
      const set = RuleSet.parse("allow if random(0.1666)\nreject");
      let allowed = 0;
      for (let i = 0; i < 6000; i++) if (set.evaluate(keyboard)?.target === "allow") allowed++;
      assert.ok(allowed > 800 && allowed < 1200, `allowed ${allowed} of 6000`);
    });
  });

  describe("devices from device-detect events", () => {
    const event = {
      action: "add",
      id: "usb-2341:0043-7563331313335171A0C1",
      subsystem: "tty",
      path: "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2",
      syspath: "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2",
      properties: { ID_VENDOR_ID: "2341", ID_MODEL_ID: "0043" },
      usb: {
        vid: "2341",
        pid: "0043",
        manufacturer: "Arduino (www.arduino.cc)",
        product: "Arduino Uno",
        serial: "7563331313335171A0C1",
        port: "1-1.2",
        busnum: 1,
        devnum: 7,
        speed: "12",
        class: "02",
        interfaces: [
          { class: "02", subclass: "02", protocol: "01", driver: "cdc_acm" },
          { class: "0a", subclass: "00", protocol: "00", driver: "cdc_acm" },
        ],
      },
      nodes: {
        tty: ["/dev/ttyACM0"],
        serialById: ["/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_7563331313335171A0C1-if00"],
        video: [],
        audio: [],
        hidraw: [],
      },
      timestamp: 1700000000000,
    };

    it("maps the event's fields to rule attributes", () => {
      assert.deepStrictEqual(deviceFromEvent(event, { name: "Arduino Uno", interface: "uart" }), arduino);
    });

    it("reads audio device paths, a missing serial as empty, and hashes where given", () => {
      const d = deviceFromEvent({
        id: "usb-1-4",
        subsystem: "sound",
        properties: { USBGUARD_HASH: "h1", USBGUARD_PARENT_HASH: "h0" },
        usb: { vid: "0D8C", pid: "0014", product: "USB Audio Device", port: "1-4", interfaces: [{ class: "01", subclass: "01", protocol: "00" }] },
        nodes: { audio: [{ card: 1, device: "/dev/snd/pcmC1D0c", capture: true }] },
      });
      assert.strictEqual(d.id, "0d8c:0014");
      assert.strictEqual(d.serial, "");
      assert.strictEqual(d.hash, "h1");
      assert.strictEqual(d.parentHash, "h0");
      assert.deepStrictEqual(d.devnodes, ["/dev/snd/pcmC1D0c"]);
      assert.strictEqual(d.withConnectType, undefined);
    });

    it("says what is wrong with a malformed event", () => {
      assert.throws(() => deviceFromEvent("usb-1"), /must be an object/);
      assert.throws(() => deviceFromEvent({}), /has no id/);
      assert.throws(() => deviceFromEvent({ id: "x", usb: { vid: "23410", pid: "0043" } }), /usb\.vid must be a 4-digit hex string/);
      assert.throws(() => deviceFromEvent({ id: "x", usb: { vid: "2341", pid: "0043", interfaces: [{ class: "2" }] } }), TypeError);
      assert.throws(() => deviceFromEvent({ id: "x", nodes: { tty: "/dev/ttyACM0" } }), /nodes\.tty must be a list/);
    });

    it("writes a rule for a device that matches it, as generate-policy would", () => {
      assert.strictEqual(
        ruleForDevice(arduino, "allow"),
        'allow id 2341:0043 serial "7563331313335171A0C1" name "Arduino Uno" with-interface { 02:02:01 0a:00:00 }',
      );
      assert.strictEqual(
        ruleForDevice(keyboard, "block"),
        'block id 046d:c31c serial "" name "USB Keyboard" via-port "1-5" with-interface { 03:01:01 03:00:00 }',
      );
      assert.strictEqual(ruleForDevice(keyboard, "block", { withPort: false }), 'block id 046d:c31c serial "" name "USB Keyboard" with-interface { 03:01:01 03:00:00 }');
      const hashed = { ...flashDisk, hash: "H", parentHash: "P", withConnectType: "hotplug" };
      assert.strictEqual(
        ruleForDevice(hashed, "allow", { withPort: true }),
        'allow id 0781:5567 serial "1" name "Cruzer Blade" hash "H" parent-hash "P" via-port "1-3" with-interface 08:06:50 with-connect-type "hotplug"',
      );
      assert.strictEqual(ruleForDevice(hashed, "allow", { withHash: false }), 'allow id 0781:5567 serial "1" name "Cruzer Blade" with-interface 08:06:50 with-connect-type "hotplug"');
      const uart = dev({ key: "platform-ttyAMA0", subsystem: "tty", devnodes: ["/dev/ttyAMA0"] });
      assert.strictEqual(ruleForDevice(uart, "allow"), 'allow subsystem "tty" devnode "/dev/ttyAMA0"');
      for (const d of [arduino, keyboard, flashDisk, flashWithKeyboard, uart, hashed]) {
        assert.ok(matches(ruleForDevice(d, "allow"), d), ruleForDevice(d, "allow"));
      }
      assert.throws(() => ruleForDevice(dev(), "allow"), /nothing a rule could name it by/);
    });
  });
});
