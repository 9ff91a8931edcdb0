// devplane-policy and policy-check in a Node-RED runtime.
import assert from "assert";
import { execFileSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import type { Node, NodeMessage } from "node-red";
import { helper, policyNodes as nodes } from "./support/red";
import { eventually, ROOT } from "./support/rings";

const uno = (overrides: Record<string, unknown> = {}) => ({
  action: "add",
  id: "usb-2341:0043-75830333238351F0E1B2",
  subsystem: "tty",
  usb: {
    vid: "2341",
    pid: "0043",
    manufacturer: "Arduino (www.arduino.cc)",
    product: "Arduino Uno",
    serial: "75830333238351F0E1B2",
    port: "1-1.2",
    interfaces: [
      { class: "02", subclass: "02", protocol: "01", driver: "cdc_acm" },
      { class: "0a", subclass: "00", protocol: "00", driver: "cdc_acm" },
    ],
  },
  nodes: { tty: ["/dev/ttyACM0"], serialById: [], video: [], audio: [], hidraw: [] },
  timestamp: Date.now(),
  ...overrides,
});

const ch340 = {
  action: "add",
  id: "usb-1a86:7523-port-1-1.3",
  subsystem: "tty",
  usb: { vid: "1a86", pid: "7523", product: "USB2.0-Serial", port: "1-1.3", interfaces: [{ class: "ff", subclass: "01", protocol: "02", driver: "ch341" }] },
  nodes: { tty: ["/dev/ttyUSB0"], serialById: [], video: [], audio: [], hidraw: [] },
  timestamp: Date.now(),
};

function outputs(): { allowed: NodeMessage[]; denied: NodeMessage[]; questions: NodeMessage[]; audit: NodeMessage[] } {
  const o = { allowed: [] as NodeMessage[], denied: [] as NodeMessage[], questions: [] as NodeMessage[], audit: [] as NodeMessage[] };
  for (const [id, list] of [["allowed", o.allowed], ["denied", o.denied], ["questions", o.questions], ["audit", o.audit]] as const) {
    helper.getNode(id).on("input", (m: NodeMessage) => list.push(m));
  }
  return o;
}

function flow(policy: Record<string, unknown>, check: Record<string, unknown> = {}) {
  return [
    { id: "pol", type: "devplane-policy", rules: "", rulesFile: "", defaultTarget: "block", ...policy },
    { id: "check", type: "policy-check", policy: "pol", mode: "enforce", askTimeout: 0, auditFile: "", wires: [["allowed"], ["denied"], ["questions"], ["audit"]], ...check },
    { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
    { id: "allowed", type: "helper" },
    { id: "denied", type: "helper" },
    { id: "questions", type: "helper" },
    { id: "audit", type: "helper" },
    { id: "caught", type: "helper" },
  ];
}

describe("policy nodes in Node-RED", () => {
  let dir: string;
  before(() => helper.startServer());
  after(() => helper.stopServer());
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "dp-policy-"))));
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("routes by the first matching rule and explains every decision, the default too", async () => {
    await helper.load(nodes, flow({ rules: 'allow id 2341:* with-interface one-of { 02:*:* }\nreject id 1a86:7523' }));
    const o = outputs();
    const check = helper.getNode("check");
    check.receive({ payload: uno() });
    check.receive({ payload: ch340 });
    check.receive({ payload: uno({ id: "usb-2341:0043-other", usb: { ...uno().usb, serial: "other", interfaces: [{ class: "ff", subclass: "00", protocol: "00" }] } }) });
    await eventually(() => o.allowed.length === 1 && o.denied.length === 2, "three decisions");
    const allowed = o.allowed[0].policy as { decision: string; ruleIndex: number; rule: string; reason: string; auditId: string };
    assert.strictEqual(allowed.decision, "allow");
    assert.strictEqual(allowed.ruleIndex, 0);
    assert.match(allowed.rule, /^allow id 2341:\*/);
    assert.ok(allowed.auditId);
    const [rejected, defaulted] = o.denied.map((m) => m.policy as { decision: string; ruleIndex: number; reason: string });
    assert.strictEqual(rejected.decision, "reject");
    assert.strictEqual(rejected.ruleIndex, 1);
    assert.strictEqual(defaulted.decision, "block");
    assert.strictEqual(defaulted.ruleIndex, -1);
    assert.match(defaulted.reason, /no rule matched, default block/);
    await eventually(() => o.audit.length === 3, "three audit records");
    const recorded = o.audit.map((m) => (m.payload as { auditId: string }).auditId).sort();
    const decided = [...o.allowed, ...o.denied].map((m) => (m.policy as { auditId: string }).auditId).sort();
    assert.deepStrictEqual(recorded, decided);
  });

  it("a grant message allows a matching device until it expires, and survives replug", async () => {
    await helper.load(nodes, flow({ rules: "", defaultTarget: "block" }));
    const o = outputs();
    const check = helper.getNode("check");
    check.receive({ topic: "grant", payload: { match: 'id 1a86:7523 name "USB2.0-Serial"', ttl: 3600 } });
    await eventually(() => o.audit.some((m) => m.topic === "grant"), "the grant reply");
    check.receive({ payload: ch340 });
    check.receive({ payload: { ...ch340, usb: { ...ch340.usb, port: "1-1.4" } } });
    await eventually(() => o.allowed.length === 2, "both plugs allowed");
    for (const m of o.allowed) assert.strictEqual((m.policy as { via: string }).via, "grant");
    check.receive({ topic: "grants" });
    await eventually(() => o.audit.some((m) => m.topic === "grants"), "the grant list");
    const list = o.audit.find((m) => m.topic === "grants")?.payload as Array<{ id: string }>;
    assert.strictEqual(list.length, 1);
    check.receive({ topic: "revoke", payload: { id: list[0].id } });
    check.receive({ payload: ch340 });
    await eventually(() => o.denied.length === 1, "denied after revoke");
  });

  it("asks about an unknown device and follows the answer; remember adds a rule", async () => {
    await helper.load(nodes, flow({ rules: "" }, { askTimeout: 60 }));
    const o = outputs();
    const check = helper.getNode("check");
    check.receive({ payload: uno() });
    await eventually(() => o.questions.length === 1, "a question");
    const q = o.questions[0].payload as { questionId: string; text: string; suggestedRule: string };
    assert.match(q.text, /Arduino Uno/);
    assert.match(q.suggestedRule, /^allow id 2341:0043/);
    assert.strictEqual(o.allowed.length + o.denied.length, 0);
    check.receive({ topic: "answer", payload: { questionId: q.questionId, decision: "allow", remember: true } });
    await eventually(() => o.allowed.length === 1, "the held message, allowed");
    assert.strictEqual((o.allowed[0].policy as { via: string }).via, "answer");
    await eventually(() => o.audit.some((m) => m.topic === "remember"), "the remembered rule");
    // Remembered: the next plug is decided by the rule without asking.
    check.receive({ payload: uno() });
    await eventually(() => o.allowed.length === 2, "allowed by the remembered rule");
    assert.strictEqual(o.questions.length, 1);
  });

  it("applies the default when nobody answers before the timeout", async () => {
    await helper.load(nodes, flow({ rules: "" }, { askTimeout: 0.2 }));
    const o = outputs();
    helper.getNode("check").receive({ payload: ch340 });
    await eventually(() => o.denied.length === 1, "the default after the timeout");
    assert.strictEqual((o.denied[0].policy as { via: string }).via, "timeout");
  });

  it("dry-run lets everything through and records what enforce would do", async () => {
    await helper.load(nodes, flow({ rules: "reject id 1a86:7523" }, { mode: "dry-run" }));
    const o = outputs();
    helper.getNode("check").receive({ payload: ch340 });
    await eventually(() => o.allowed.length === 1, "passed");
    const p = o.allowed[0].policy as { dryRun: boolean; wouldBe: string; reason: string };
    assert.strictEqual(p.dryRun, true);
    assert.strictEqual(p.wouldBe, "reject");
    assert.match(p.reason, /would reject/);
  });

  it("writes a chained audit file that devplane-audit verifies", async () => {
    const auditFile = path.join(dir, "audit.jsonl");
    await helper.load(nodes, flow({ rules: "allow id 2341:*" }, { auditFile }));
    const o = outputs();
    const check = helper.getNode("check");
    for (let i = 0; i < 5; i++) check.receive({ payload: i % 2 ? ch340 : uno() });
    await eventually(() => o.audit.length === 5, "five records");
    await helper.unload();
    const lines = fs.readFileSync(auditFile, "utf8").trim().split("\n");
    assert.strictEqual(lines.length, 5);
    const cli = path.join(ROOT, "dist", "lib", "policy", "audit-cli.js");
    assert.match(execFileSync(process.execPath, [cli, "verify", auditFile]).toString(), /ok: 5 records/);
  });

  it("keeps the last good rules when the rules file breaks, and names the line", async () => {
    const rulesFile = path.join(dir, "rules.conf");
    fs.writeFileSync(rulesFile, "allow id 2341:0043\n");
    await helper.load(nodes, flow({ rules: "", rulesFile }));
    const o = outputs();
    const pol = helper.getNode("pol") as Node & { policyError?: string };
    const warnings: string[] = [];
    const origWarn = pol.warn.bind(pol);
    pol.warn = (m: unknown) => {
      warnings.push(String(m));
      origWarn(m);
    };
    const check = helper.getNode("check");
    check.receive({ payload: uno() });
    await eventually(() => o.allowed.length === 1, "allowed by the file's rule");
    fs.writeFileSync(rulesFile, "allow id 2341:0043\nallow frobnicate 12\n");
    await eventually(() => warnings.some((w) => /:2:/.test(w)), "a warning naming line 2");
    check.receive({ payload: uno() });
    await eventually(() => o.allowed.length === 2, "still allowed by the last good rules");
  });

  it("answers the editor's validation route with the error's position", async () => {
    await helper.load(nodes, flow({ rules: "" }));
    const ok = await helper.request().post("/devplane/policy/validate").send({ rules: "allow id 2341:0043\nblock" });
    assert.deepStrictEqual(ok.body, { ok: true, rules: 2 });
    const bad = await helper.request().post("/devplane/policy/validate").send({ rules: "allow id 2341:0043\nallow id 12" });
    assert.strictEqual(bad.body.ok, false);
    assert.strictEqual(bad.body.line, 2);
    assert.ok(Number(bad.body.column) >= 1);
  });

  it("fails a message that is not a device with a clear error", async () => {
    await helper.load(nodes, flow({ rules: "" }));
    const o = outputs();
    const caught: NodeMessage[] = [];
    helper.getNode("caught").on("input", (m: NodeMessage) => caught.push(m));
    helper.getNode("check").receive({ payload: "hello" });
    await eventually(() => caught.length === 1, "the error");
    assert.ok((caught[0].error as { message: string }).message.length > 10);
    assert.strictEqual(o.allowed.length + o.denied.length, 0);
  });
});
