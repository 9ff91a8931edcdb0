// The policy runtime around the rule language: questions, learning, and the
// engine that combines grants, rules, defaults, modes and the audit trail.
// Time is a fake clock with a fake scheduler, so nothing here waits.
import assert from "assert";
import { spawnSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { AskQueue, parseAnswer, realScheduler, type AskResolution, type Scheduler } from "../lib/policy/ask";
import { AuditLog, verifyAuditFile } from "../lib/policy/audit";
import { PolicyEngine, policyInfo, type EngineResolution } from "../lib/policy/engine";
import { ruleMatches } from "../lib/policy/evaluate";
import { GrantStore } from "../lib/policy/grants";
import { Learner, type LearnResult } from "../lib/policy/learn";
import { parseRule } from "../lib/policy/parser";
import { RuleSet } from "../lib/policy/ruleset";
import type { PolicyDevice } from "../lib/policy/types";

/** A clock and a scheduler that only move when told to. */
class FakeTime implements Scheduler {
  now = Date.UTC(2025, 5, 1, 12, 0, 0);
  private timers: Array<{ at: number; fn: () => void; seq: number }> = [];
  private seq = 0;
  readonly clock = (): number => this.now;

  setTimeout(fn: () => void, ms: number): unknown {
    const t = { at: this.now + ms, fn, seq: ++this.seq };
    this.timers.push(t);
    return t;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward, running due timers in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
    }
    this.now = end;
  }
}

const uno = (port = "1-1.2", serial = "7563331323335171E0A1"): PolicyDevice => ({
  key: `usb-2341:0043-${serial}`,
  id: "2341:0043",
  serial,
  name: "Arduino Uno",
  viaPort: port,
  withInterface: ["02:02:01", "0a:00:00"],
  subsystem: "tty",
  devnodes: ["/dev/ttyACM0"],
  profile: "Arduino Uno",
});
const mega: PolicyDevice = { key: "usb-2341:0042-55", id: "2341:0042", serial: "55", name: "Arduino Mega", viaPort: "1-1.3", withInterface: ["02:02:01"] };
const ch340 = (port = "1-1.4"): PolicyDevice => ({
  key: port,
  id: "1a86:7523",
  serial: "",
  name: "USB Serial",
  viaPort: port,
  withInterface: ["ff:01:02"],
});
const webcam: PolicyDevice = { key: "usb-046d:0825-ABC", id: "046d:0825", serial: "ABC", name: "Webcam C270", viaPort: "1-1.1", withInterface: ["0e:01:00", "0e:02:00", "01:01:00", "01:02:00"] };
const ftdi: PolicyDevice = { key: "usb-0403:6001-A1", id: "0403:6001", serial: "A1", name: "FT232R", viaPort: "1-1.5", withInterface: ["ff:ff:ff"] };

const RULES = ["allow id 2341:0043", "block id 2341:*", "reject id 1a86:7523"].join("\n");

describe("policy runtime", () => {
  describe("ask", () => {
    let time: FakeTime;
    let resolved: AskResolution<string>[];
    let queue: AskQueue<string>;

    beforeEach(() => {
      time = new FakeTime();
      resolved = [];
      queue = new AskQueue<string>({ timeoutMs: 30_000, clock: time.clock, scheduler: time, onResolve: (r) => resolved.push(r) });
    });

    it("asks with a summary, a suggested rule and an expiry", () => {
      const { question, isNew } = queue.ask(webcam, "msg-1");
      assert.ok(isNew);
      assert.match(question.questionId, /^[0-9a-f-]{36}$/);
      assert.deepStrictEqual(question.device, {
        key: webcam.key,
        id: "046d:0825",
        name: "Webcam C270",
        serial: "ABC",
        viaPort: "1-1.1",
        subsystem: undefined,
        profile: undefined,
        withInterface: webcam.withInterface,
        devnodes: undefined,
      });
      assert.strictEqual(question.asked, time.now);
      assert.strictEqual(question.expires, time.now + 30_000);
      assert.strictEqual(question.defaultTarget, "block");
      assert.strictEqual(question.text, "Allow Webcam C270 (046d:0825, serial ABC) on port 1-1.1?");
      const rule = parseRule(question.suggestedRule);
      assert.strictEqual(rule.target, "allow");
      assert.ok(ruleMatches(rule, webcam));
      assert.deepStrictEqual(queue.pending(), [question]);
      assert.strictEqual(queue.questionFor(webcam.key), question);
    });

    it("settles on an answer before the timeout, once", () => {
      const { question } = queue.ask(webcam, "msg-1");
      time.advance(29_999);
      const r = queue.answer({ questionId: question.questionId, decision: "allow" });
      assert.ok(r.ok);
      assert.strictEqual(r.resolution.decision, "allow");
      assert.strictEqual(r.resolution.by, "answer");
      assert.strictEqual(r.resolution.rule, undefined, "no rule without remember");
      assert.deepStrictEqual(r.resolution.data, ["msg-1"]);
      assert.strictEqual(resolved.length, 1);
      assert.strictEqual(resolved[0], r.resolution);
      assert.strictEqual(time.pending, 0, "the timer is cancelled");
      time.advance(60_000);
      assert.strictEqual(resolved.length, 1);
      assert.strictEqual(queue.size, 0);
    });

    it("applies the default when nobody answers, and refuses a late answer", () => {
      const { question } = queue.ask(webcam, "msg-1");
      time.advance(30_000);
      assert.strictEqual(resolved.length, 1);
      assert.strictEqual(resolved[0].decision, "block");
      assert.strictEqual(resolved[0].by, "timeout");
      const late = queue.answer({ questionId: question.questionId, decision: "allow" });
      assert.deepStrictEqual(late, {
        ok: false,
        error: `no open question ${question.questionId}: it was already answered, timed out, or never asked`,
        questionId: question.questionId,
      });
      assert.strictEqual(resolved.length, 1);
    });

    it("treats an answer after the expiry as late even if the timer has not run yet", () => {
      const { question } = queue.ask(webcam);
      time.now += 30_000; // the clock moved, the timer did not fire (a busy event loop)
      const r = queue.answer({ questionId: question.questionId, decision: "allow" });
      assert.strictEqual(r.ok, false);
      assert.match(!r.ok ? r.error : "", /expired before the answer came; the default \(block\) applied/);
      assert.strictEqual(resolved.length, 1);
      assert.strictEqual(resolved[0].by, "timeout");
      assert.strictEqual(time.pending, 0);
    });

    it("returns the rule to append when asked to remember", () => {
      const a = queue.ask(webcam).question;
      const b = queue.ask(ch340()).question;
      const ra = queue.answer({ questionId: a.questionId, decision: "allow", remember: true });
      const rb = queue.answer({ questionId: b.questionId, decision: "reject", remember: true });
      assert.ok(ra.ok && rb.ok);
      assert.strictEqual(ra.resolution.rule, a.suggestedRule);
      const rejectRule = parseRule(rb.resolution.rule as string);
      assert.strictEqual(rejectRule.target, "reject");
      assert.ok(ruleMatches(rejectRule, ch340()));
      assert.match(rb.resolution.rule as string, /via-port "1-1.4"/, "a device without a serial is pinned to its port");
    });

    it("refuses unknown questions and malformed answers", () => {
      queue.ask(webcam);
      const unknown = queue.answer({ questionId: "nope", decision: "allow" });
      assert.strictEqual(unknown.ok, false);
      assert.match(!unknown.ok ? unknown.error : "", /no open question nope/);
      for (const [bad, why] of [
        [null, /an answer is an object/],
        [{ decision: "allow" }, /no questionId/],
        [{ questionId: "x", decision: "maybe" }, /must be allow, block or reject/],
        [{ questionId: "x", decision: "allow", remember: "yes" }, /remember must be true or false/],
      ] as const) {
        const r = queue.answer(bad);
        assert.strictEqual(r.ok, false);
        assert.match(!r.ok ? r.error : "", why);
        assert.throws(() => parseAnswer(bad), why);
      }
      assert.strictEqual(queue.size, 1);
      assert.strictEqual(resolved.length, 0);
    });

    it("asks once per device and keeps every message for it", () => {
      const first = queue.ask(webcam, "m1");
      const again = queue.ask(webcam, "m2");
      const other = queue.ask(ftdi, "m3");
      assert.ok(!again.isNew);
      assert.strictEqual(again.question.questionId, first.question.questionId);
      assert.ok(other.isNew);
      assert.strictEqual(queue.size, 2);
      const r = queue.answer({ questionId: first.question.questionId, decision: "block" });
      assert.deepStrictEqual(r.ok && r.resolution.data, ["m1", "m2"]);
    });

    it("withdraws and cancels without settling", () => {
      queue.ask(webcam, "m1");
      queue.ask(ftdi, "m2");
      assert.deepStrictEqual(queue.withdraw(webcam.key)?.data, ["m1"]);
      assert.strictEqual(queue.withdraw(webcam.key), undefined);
      assert.deepStrictEqual(
        queue.cancelAll().map((q) => q.data),
        [["m2"]],
      );
      assert.strictEqual(time.pending, 0);
      time.advance(60_000);
      assert.strictEqual(resolved.length, 0);
    });

    it("runs real timers that can be cancelled and do not hold the process", async () => {
      const fired: string[] = [];
      const cancelled = realScheduler.setTimeout(() => fired.push("cancelled"), 1);
      realScheduler.clearTimeout(cancelled);
      realScheduler.clearTimeout(undefined);
      await new Promise<void>((resolve) => realScheduler.setTimeout(() => (fired.push("ran"), resolve()), 5));
      assert.deepStrictEqual(fired, ["ran"]);
      const far = realScheduler.setTimeout(() => fired.push("far"), 40 * 24 * 3600 * 1000) as { timer: NodeJS.Timeout };
      assert.strictEqual(far.timer.hasRef(), false);
      realScheduler.clearTimeout(far);
    });

    it("uses the configured default and rejects a nonsensical timeout", () => {
      const q = new AskQueue({ timeoutMs: 10, defaultTarget: "reject", clock: time.clock, scheduler: time, onResolve: (r) => resolved.push(r as AskResolution<string>) });
      q.ask(webcam);
      time.advance(10);
      assert.strictEqual(resolved[0].decision, "reject");
      assert.throws(() => new AskQueue({ timeoutMs: 0, onResolve: () => undefined }), /ask timeout/);
    });
  });

  describe("learn", () => {
    let time: FakeTime;
    beforeEach(() => {
      time = new FakeTime();
    });

    it("collects devices seen in the window, once per key, and suggests rules that parse", () => {
      const learner = new Learner({ windowMs: 60_000, clock: time.clock });
      assert.strictEqual(learner.observe(uno()), false, "nothing is collected before start");
      learner.start();
      assert.ok(learner.active);
      assert.strictEqual(learner.endsAt, time.now + 60_000);
      const started = time.now;
      learner.observe(uno("1-1.2"));
      time.advance(1000);
      learner.observe(uno("1-1.3"), false); // replugged elsewhere: same key
      learner.observe(ch340("1-1.4"));
      learner.observe(ch340("1-1.5")); // no serial: the key is the port, a second device
      learner.observe(webcam, true);
      time.advance(1000);
      learner.observe(uno("1-1.2"));
      time.advance(58_000);
      assert.ok(!learner.active);
      assert.strictEqual(learner.observe(mega), false, "the window has closed");

      const res = learner.finish();
      assert.strictEqual(res.started, started);
      assert.strictEqual(res.ended, started + 60_000);
      assert.ok(res.complete);
      assert.deepStrictEqual(
        res.devices.map((d) => [d.key, d.seen, d.covered]),
        [
          [uno().key, 3, false],
          ["1-1.4", 1, false],
          ["1-1.5", 1, false],
          [webcam.key, 1, true],
        ],
      );
      const unoEntry = res.devices[0];
      assert.strictEqual(unoEntry.firstSeen, started);
      assert.strictEqual(unoEntry.lastSeen, started + 2000);
      assert.strictEqual(res.rules.length, 3, "the covered webcam gets no rule");
      assert.strictEqual(res.text, res.rules.join("\n") + "\n");
      const devices = [uno(), ch340("1-1.4"), ch340("1-1.5")];
      res.rules.forEach((text, i) => {
        const rule = parseRule(text);
        assert.strictEqual(rule.target, "allow");
        assert.ok(ruleMatches(rule, devices[i]), text);
      });
      assert.ok(!ruleMatches(parseRule(res.rules[1]), ch340("1-1.5")), "port-pinned rules tell serial-less twins apart");
      assert.doesNotThrow(() => RuleSet.parse(res.text));
    });

    it("deduplicates identical rules and can pin ports", () => {
      const learner = new Learner({ windowMs: 1000, clock: time.clock, withPort: false });
      learner.start();
      learner.observe(ch340("1-1.4"));
      learner.observe(ch340("1-1.5"));
      learner.observe(uno());
      const res = learner.finish();
      assert.strictEqual(res.devices.length, 3);
      assert.strictEqual(res.rules.length, 2, "two serial-less twins without ports need one rule");
      assert.ok(!res.complete, "stopped before the window ended");

      const pinned = new Learner({ windowMs: 1000, clock: time.clock, withPort: true });
      pinned.start();
      pinned.observe(uno());
      assert.match(pinned.finish().rules[0], /via-port "1-1.2"/);
    });

    it("starts afresh and reports what it cannot name", () => {
      const learner = new Learner({ windowMs: 1000, clock: time.clock });
      learner.start();
      learner.observe(uno());
      learner.start();
      learner.observe({ key: "mystery", withInterface: [] });
      const res = learner.snapshot();
      assert.deepStrictEqual(
        res.devices.map((d) => d.key),
        ["mystery"],
      );
      assert.strictEqual(res.devices[0].rule, "");
      assert.match(res.devices[0].error ?? "", /nothing a rule could name it by/);
      assert.deepStrictEqual(res.rules, []);
      assert.strictEqual(res.text, "");
      assert.throws(() => new Learner({ windowMs: -1 }), /learn window/);
    });
  });

  describe("engine", () => {
    let time: FakeTime;
    let dir: string;
    const logs: AuditLog[] = [];

    beforeEach(() => {
      time = new FakeTime();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "devplane-engine-"));
    });

    afterEach(async () => {
      for (const l of logs.splice(0)) await l.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function auditLog(name = "audit.jsonl"): Promise<AuditLog> {
      const log = await AuditLog.open({ file: path.join(dir, name), clock: time.clock, host: "pi" });
      logs.push(log);
      return log;
    }

    it("lets the first matching rule decide, and explains it", () => {
      const engine = new PolicyEngine({ ruleSet: RuleSet.parse(RULES), clock: time.clock, scheduler: time, host: "pi" });
      const a = engine.decide(uno());
      assert.strictEqual(a.decision, "allow");
      assert.strictEqual(a.rule, "allow id 2341:0043");
      assert.strictEqual(a.ruleIndex, 0);
      assert.strictEqual(a.via, "rule");
      assert.match(a.reason, /^rule 1 \(allow id 2341:0043\) decided allow/);
      assert.match(a.auditId, /^[0-9a-f-]{36}$/);
      assert.strictEqual(a.record.auditId, a.auditId);

      const b = engine.decide(mega);
      assert.deepStrictEqual([b.decision, b.rule, b.ruleIndex], ["block", "block id 2341:*", 1], "a later, broader rule");
      const c = engine.decide(ch340());
      assert.deepStrictEqual([c.decision, c.ruleIndex], ["reject", 2]);
    });

    it("explains the default too", () => {
      const engine = new PolicyEngine({ ruleSet: RuleSet.parse(RULES), clock: time.clock, scheduler: time });
      const d = engine.decide(webcam);
      assert.deepStrictEqual(policyInfo(d), {
        decision: "block",
        rule: null,
        ruleIndex: -1,
        reason: "no rule matched, default block",
        auditId: d.auditId,
        via: "default",
      });
      assert.strictEqual(d.record.rule, null);
      assert.strictEqual(d.record.reason, "no rule matched, default block");

      const lenient = new PolicyEngine({ ruleSet: RuleSet.parse(RULES), defaultTarget: "allow", clock: time.clock, scheduler: time });
      assert.strictEqual(lenient.decide(webcam).reason, "no rule matched, default allow");
      assert.strictEqual(lenient.decide(mega).decision, "block", "the default only applies when no rule matched");
      assert.strictEqual(new PolicyEngine({ defaultTarget: "reject" }).decide(webcam).decision, "reject");
      assert.throws(() => new PolicyEngine({ defaultTarget: "deny" as never }), /default target must be/);
      assert.throws(() => new PolicyEngine({ mode: "audit" as never }), /mode must be/);
    });

    it("consults grants before rules, until they expire", () => {
      const grants = new GrantStore({ clock: time.clock });
      const engine = new PolicyEngine({ ruleSet: RuleSet.parse(RULES), grants, clock: time.clock, scheduler: time });
      const g = grants.add("id 2341:0042", 120);
      const d = engine.decide(mega);
      assert.strictEqual(d.decision, "allow", "the grant beats the block rule");
      assert.strictEqual(d.via, "grant");
      assert.strictEqual(d.ruleIndex, -1);
      assert.strictEqual(d.rule, undefined);
      assert.deepStrictEqual(d.grant, { id: g.id, match: "id 2341:0042", expires: g.expires });
      assert.deepStrictEqual(policyInfo(d).grant, d.grant);
      assert.match(d.reason, new RegExp(`temporary grant ${g.id} \\(id 2341:0042\\) allows it until 2025-06-01T12:02:00.000Z`));
      assert.deepStrictEqual(d.record.grant, d.grant);
      time.advance(120_000);
      assert.strictEqual(engine.decide(mega).decision, "block");
    });

    it("in dry-run, lets everything pass and records what would have happened", async () => {
      const audit = await auditLog();
      const engine = new PolicyEngine({ ruleSet: RuleSet.parse(RULES), mode: "dry-run", audit, clock: time.clock, scheduler: time });
      const d = engine.decide(webcam);
      assert.strictEqual(d.decision, "allow");
      assert.strictEqual(d.dryRun, true);
      assert.strictEqual(d.wouldBe, "block");
      assert.strictEqual(d.reason, "dry run, would block: no rule matched, default block");
      assert.deepStrictEqual(
        [policyInfo(d).dryRun, policyInfo(d).wouldBe],
        [true, "block"],
      );
      const r = engine.decide(ch340());
      assert.deepStrictEqual([r.decision, r.wouldBe, r.rule], ["allow", "reject", "reject id 1a86:7523"]);
      const ok = engine.decide(uno());
      assert.deepStrictEqual([ok.decision, ok.wouldBe], ["allow", "allow"]);
      await audit.flush();
      const lines = fs.readFileSync(path.join(dir, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      assert.deepStrictEqual(
        lines.map((l) => [l.decision, l.dryRun, l.wouldBe, l.mode]),
        [
          ["allow", true, "block", "dry-run"],
          ["allow", true, "reject", "dry-run"],
          ["allow", true, "allow", "dry-run"],
        ],
      );
      assert.match(lines[0].reason, /would block/);

      engine.setMode("enforce");
      const enforced = engine.decide(webcam);
      assert.deepStrictEqual([enforced.decision, enforced.dryRun, enforced.wouldBe], ["block", undefined, undefined]);
    });

    it("in learn mode, passes devices, and hands over rules when the window closes", () => {
      const learned: LearnResult[] = [];
      const engine = new PolicyEngine({
        ruleSet: RuleSet.parse(RULES),
        mode: "learn",
        learn: { windowMs: 60_000 },
        clock: time.clock,
        scheduler: time,
        onLearn: (r) => learned.push(r),
      });
      assert.ok(engine.learning);
      assert.strictEqual(engine.learnEndsAt, time.now + 60_000);
      const d = engine.decide(webcam);
      assert.deepStrictEqual([d.decision, d.dryRun, d.wouldBe], ["allow", true, "block"]);
      assert.match(d.reason, /^learn mode, would block/);
      engine.decide(uno());
      engine.decide(ftdi);
      engine.decide(webcam);
      assert.strictEqual(engine.learned()?.devices.length, 3);
      time.advance(60_000);
      assert.strictEqual(learned.length, 1);
      assert.ok(!engine.learning);
      assert.strictEqual(engine.learnEndsAt, undefined);
      assert.deepStrictEqual(
        learned[0].devices.map((x) => [x.key, x.seen, x.covered]),
        [
          [webcam.key, 2, false],
          [uno().key, 1, true],
          [ftdi.key, 1, false],
        ],
      );
      assert.strictEqual(learned[0].rules.length, 2, "the Uno already has a rule");
      const next = RuleSet.parse(RULES + "\n" + learned[0].text);
      assert.strictEqual(next.evaluate(webcam)?.target, "allow", "appending the suggestions allows what was seen");
      assert.strictEqual(next.evaluate(ftdi)?.target, "allow");

      assert.strictEqual(engine.decide(mega).decision, "allow", "after the window, learn mode still blocks nothing");
      engine.startLearning(1000);
      engine.decide(mega);
      const early = engine.stopLearning();
      assert.deepStrictEqual(
        early?.devices.map((x) => x.key),
        [mega.key],
      );
      time.advance(5000);
      assert.strictEqual(learned.length, 1, "a window stopped by hand does not report again");
    });

    it("asks about unknown devices and applies answers, remembering them as rules", async () => {
      const audit = await auditLog();
      const resolutions: EngineResolution<string>[] = [];
      const engine = new PolicyEngine<string>({
        ruleSet: RuleSet.parse(RULES),
        audit,
        ask: { timeoutMs: 30_000 },
        clock: time.clock,
        scheduler: time,
        onResolve: (r) => resolutions.push(r),
      });
      const known = engine.check(uno(), { data: "m0" });
      assert.strictEqual(known.kind, "decision", "a device a rule decides is not asked about");

      const asked = engine.check(webcam, { data: "m1", context: { user: "ann" } });
      assert.strictEqual(asked.kind, "question");
      const q = asked.kind === "question" ? asked.question : assert.fail();
      assert.deepStrictEqual(engine.pendingQuestions(), [q]);
      assert.strictEqual(engine.decide(webcam).decision, "block", "decide() never asks");

      const r = engine.answer({ questionId: q.questionId, decision: "allow", remember: true });
      assert.ok(r.ok);
      assert.strictEqual(resolutions.length, 1);
      const res = resolutions[0];
      assert.strictEqual(r.resolution, res);
      assert.strictEqual(res.by, "answer");
      assert.deepStrictEqual(res.data, ["m1"]);
      assert.strictEqual(res.rule, q.suggestedRule);
      assert.strictEqual(res.decision.decision, "allow");
      assert.strictEqual(res.decision.via, "answer");
      assert.strictEqual(res.decision.rule, q.suggestedRule);
      assert.strictEqual(res.decision.ruleIndex, 3);
      assert.strictEqual(res.decision.questionId, q.questionId);
      assert.strictEqual(res.decision.reason, `answered allow, remembered as: ${q.suggestedRule}`);
      assert.deepStrictEqual(res.decision.record.context, { user: "ann" });
      assert.deepStrictEqual(engine.rememberedRules(), [q.suggestedRule]);

      const again = engine.check(webcam);
      assert.strictEqual(again.kind, "decision", "remembered: no second question");
      const d = again.kind === "decision" ? again.decision : assert.fail();
      assert.deepStrictEqual([d.decision, d.ruleIndex, d.rule], ["allow", 3, q.suggestedRule]);

      const second = engine.check(ftdi, { data: "m2" });
      const q2 = second.kind === "question" ? second.question : assert.fail();
      time.advance(30_000);
      assert.strictEqual(resolutions.length, 2);
      assert.strictEqual(resolutions[1].by, "timeout");
      assert.strictEqual(resolutions[1].decision.decision, "block");
      assert.strictEqual(resolutions[1].decision.reason, "no answer within 30 s; no rule matched, default block");
      assert.deepStrictEqual(resolutions[1].data, ["m2"]);
      const late = engine.answer({ questionId: q2.questionId, decision: "allow" });
      assert.strictEqual(late.ok, false);

      await audit.flush();
      const recs = fs.readFileSync(path.join(dir, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      assert.deepStrictEqual(
        recs.map((x) => [x.via, x.decision, x.questionId ?? null]),
        [
          ["rule", "allow", null],
          ["default", "block", null],
          ["answer", "allow", q.questionId],
          ["rule", "allow", null],
          ["timeout", "block", q2.questionId],
        ],
      );
    });

    it("answers without remembering, withdraws on unplug, and asks only in enforce mode", () => {
      const resolutions: EngineResolution<string>[] = [];
      const engine = new PolicyEngine<string>({ ask: { timeoutMs: 1000 }, clock: time.clock, scheduler: time, onResolve: (r) => resolutions.push(r) });
      const q = engine.check(webcam, { data: "a" });
      assert.strictEqual(q.kind, "question");
      const r = engine.answer({ questionId: q.kind === "question" ? q.question.questionId : "", decision: "reject" });
      assert.ok(r.ok);
      assert.deepStrictEqual([r.resolution.decision.decision, r.resolution.decision.ruleIndex, r.resolution.rule], ["reject", -1, undefined]);
      assert.strictEqual(r.resolution.decision.reason, "answered reject");
      assert.strictEqual(engine.check(webcam).kind, "question", "not remembered: asked again");
      assert.deepStrictEqual(engine.deviceRemoved(webcam.key), []);
      engine.check(ftdi, { data: "b" });
      assert.deepStrictEqual(engine.deviceRemoved(ftdi.key), ["b"]);
      assert.strictEqual(engine.pendingQuestions().length, 0);
      engine.check(uno(), { data: "c" });
      assert.deepStrictEqual(engine.close(), ["c"]);
      time.advance(10_000);
      assert.strictEqual(resolutions.length, 1);

      engine.setMode("dry-run");
      const dry = engine.check(mega);
      assert.strictEqual(dry.kind, "decision");
      assert.strictEqual(dry.kind === "decision" && dry.decision.wouldBe, "block");
      assert.throws(() => new PolicyEngine({ ask: { timeoutMs: 1000 } }), /needs onResolve/);
      assert.deepStrictEqual(new PolicyEngine().answer({ questionId: "x", decision: "allow" }), { ok: false, error: "this policy does not ask" });
    });

    it("keeps remembered rules over a rules reload, until the reload contains them", () => {
      const engine = new PolicyEngine({ ruleSet: RuleSet.parse(RULES), clock: time.clock, scheduler: time });
      const text = engine.remember("allow id 046d:0825");
      assert.strictEqual(text, "allow id 046d:0825");
      assert.strictEqual(engine.decide(webcam).ruleIndex, 3);
      engine.setRuleSet(RuleSet.parse("block id 0403:6001"));
      assert.deepStrictEqual(engine.rememberedRules(), ["allow id 046d:0825"]);
      const d = engine.decide(webcam);
      assert.deepStrictEqual([d.decision, d.ruleIndex], ["allow", 1]);
      engine.setRuleSet(RuleSet.parse("allow id 046d:0825\nblock id 0403:6001"));
      assert.deepStrictEqual(engine.rememberedRules(), []);
      assert.strictEqual(engine.decide(webcam).ruleIndex, 0);
      assert.throws(() => engine.remember("allow id nonsense"));
      assert.throws(() => engine.remember("# just a comment"), /not a rule/);
      assert.throws(() => engine.remember("allow id 1:2\nallow"), /one rule/);
      assert.deepStrictEqual(engine.rememberedRules(), []);
    });

    it("tells allowed-matches which devices are allowed", () => {
      const engine = new PolicyEngine({
        ruleSet: RuleSet.parse("allow id 2341:0043\nallow id 0403:6001 if allowed-matches(id 2341:0043)"),
        clock: time.clock,
        scheduler: time,
      });
      assert.strictEqual(engine.decide(ftdi).decision, "block", "the Uno is not there yet");
      engine.decide(uno());
      assert.deepStrictEqual(
        engine.allowedDevices().map((d) => d.key),
        [uno().key],
      );
      assert.strictEqual(engine.decide(ftdi).decision, "allow");
      engine.deviceRemoved(uno().key);
      assert.strictEqual(engine.decide(ftdi).decision, "block");
    });

    it("passes the message's context to the rules and the record", () => {
      const engine = new PolicyEngine({ ruleSet: RuleSet.parse('allow id 046d:0825 context user "ann"'), clock: time.clock, scheduler: time });
      assert.strictEqual(engine.decide(webcam, { user: "bob" }).decision, "block");
      const d = engine.decide(webcam, { user: "ann" });
      assert.strictEqual(d.decision, "allow");
      assert.deepStrictEqual(d.record.context, { user: "ann" });
    });

    it("keeps 1,000 simultaneous decisions in order in the audit file", async () => {
      const audit = await auditLog();
      const grants = new GrantStore({ clock: time.clock });
      grants.add("id 0403:6001", 3600);
      const engine = new PolicyEngine({ ruleSet: RuleSet.parse(RULES), grants, audit, clock: time.clock, scheduler: time });
      const devices = [uno(), mega, ch340(), webcam, ftdi];
      const decisions = await Promise.all(Array.from({ length: 1000 }, async (_, i) => engine.decide(devices[i % devices.length])));
      await audit.flush();
      const lines = fs.readFileSync(path.join(dir, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      assert.strictEqual(lines.length, 1000);
      lines.forEach((l, i) => {
        assert.strictEqual(l.seq, i + 1);
        assert.strictEqual(l.auditId, decisions[i].auditId);
        assert.strictEqual(l.device.key, devices[i % devices.length].key);
        assert.strictEqual(l.decision, decisions[i].decision);
      });
      assert.deepStrictEqual(
        decisions.slice(0, 5).map((d) => d.via),
        ["rule", "rule", "rule", "default", "grant"],
      );
      assert.deepStrictEqual(await verifyAuditFile(path.join(dir, "audit.jsonl")), {
        ok: true,
        records: 1000,
        files: [path.join(dir, "audit.jsonl")],
        firstSeq: 1,
        lastSeq: 1000,
      });
      const cli = spawnSync(process.execPath, [path.join(__dirname, "..", "lib", "policy", "audit-cli.js"), "verify", path.join(dir, "audit.jsonl")], {
        encoding: "utf8",
      });
      assert.strictEqual(cli.stdout, "ok: 1000 records\n");
      assert.strictEqual(cli.status, 0);
    });
  });
});
