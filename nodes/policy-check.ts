// policy-check: decides whether a device may be used, with the rule (or grant,
// answer or default) that decided and why. Outputs: allowed, denied, questions,
// and audit records (plus replies to grant/learn messages).
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import { AuditLog, deviceFromEvent, EngineDecision, EngineResolution, PolicyEngine, PolicyMode, policyInfo, POLICY_MODES } from "../lib/policy";
import type { PolicyHandle } from "../lib/policy/handle";
import type { PolicyContext } from "../lib/policy/types";
import { translate, Vars } from "./i18n";
import { countUpTo999, statusTicker } from "./status";

interface PolicyCheckDef extends NodeDef {
  policy: string;
  mode: string;
  askTimeout: string | number;
  auditFile: string;
  auditMaxBytes: string | number;
  auditFsync: boolean;
  learnWindow: string | number;
}

type Send = (msg: Array<NodeMessage | null>) => void;
interface Held {
  msg: NodeMessageInFlow;
  send: Send;
  done: (err?: Error) => void;
}

const OUT_ALLOWED = 0;
const OUT_DENIED = 1;
const OUT_QUESTION = 2;
const OUT_AUDIT = 3;

function route(index: number, msg: NodeMessage): Array<NodeMessage | null> {
  const out: Array<NodeMessage | null> = [null, null, null, null];
  out[index] = msg;
  return out;
}

function contextOf(msg: NodeMessageInFlow): PolicyContext | undefined {
  const c = (msg as { context?: unknown }).context;
  if (!c || typeof c !== "object" || Array.isArray(c)) return undefined;
  const out: PolicyContext = {};
  for (const [k, v] of Object.entries(c as Record<string, unknown>)) if (typeof v === "string") out[k] = v;
  return out;
}

export = function (RED: NodeAPI): void {
  function PolicyCheckNode(this: Node, config: PolicyCheckDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const t = (key: string, vars?: Vars): string =>
      translate(RED, `policy-check.${key}`, vars);

    const policyNode = RED.nodes.getNode(config.policy) as (Node & { policy?: PolicyHandle; policyError?: string }) | null;
    const handle = policyNode?.policy;
    const mode = (config.mode || "enforce") as PolicyMode;
    const askSeconds = Number(config.askTimeout) || 0;
    let setupError: string | undefined;
    if (!handle) setupError = policyNode?.policyError ?? t("errors.noPolicy");
    else if (!POLICY_MODES.includes(mode)) setupError = t("errors.mode", { mode });
    if (setupError || !handle) {
      node.error(setupError);
      node.status({ fill: "red", shape: "ring", text: t("status.error") });
      node.on("input", (_m: NodeMessageInFlow, _s, done) => done(new Error(setupError)));
      return;
    }

    const counts = { allowed: 0, denied: 0 };
    const emitDecision = (held: Held, d: EngineDecision, extra?: { rule?: string }) => {
      const msg = held.msg as NodeMessageInFlow & { policy?: unknown };
      msg.policy = { ...policyInfo(d), ...(extra?.rule ? { remembered: extra.rule } : {}) };
      // In dry-run and learn everything passes; the status counts what enforce would have done.
      if ((d.dryRun ? d.wouldBe : d.decision) === "allow") counts.allowed++;
      else counts.denied++;
      held.send(route(d.decision === "allow" ? OUT_ALLOWED : OUT_DENIED, msg));
      held.send(route(OUT_AUDIT, { topic: "audit", payload: d.record }));
      held.done();
    };

    let audit: AuditLog | undefined;
    const auditFile = (config.auditFile ?? "").trim();
    const auditReady: Promise<void> = auditFile
      ? AuditLog.open({
          file: auditFile,
          // 0 turns rotation off; empty means the default.
          maxBytes: config.auditMaxBytes === "" || config.auditMaxBytes === undefined ? 10 * 1024 * 1024 : Number(config.auditMaxBytes),
          fsync: config.auditFsync === true,
          onError: (err) => node.warn(t("errors.audit", { error: err.message })),
        }).then((log) => {
          audit = log;
        })
      : Promise.resolve();

    let engine: PolicyEngine<Held> | undefined;
    const ready = Promise.all([handle.ready, auditReady]).then(() => {
      engine = new PolicyEngine<Held>({
        ruleSet: handle.source.rules,
        defaultTarget: handle.defaultTarget,
        mode,
        grants: handle.grants,
        audit,
        ask: askSeconds > 0 ? { timeoutMs: askSeconds * 1000 } : undefined,
        learn: { windowMs: (Number(config.learnWindow) || 600) * 1000 },
        onResolve: (r: EngineResolution<Held>) => {
          for (const held of r.data) emitDecision(held, r.decision, { rule: r.rule });
          if (r.rule) node.send(route(OUT_AUDIT, { topic: "remember", payload: r.rule }));
        },
        onLearn: (result) => node.send(route(OUT_AUDIT, { topic: "learned", payload: result })),
      });
    });
    const onRules = (rules: typeof handle.source.rules) => engine?.setRuleSet(rules);
    handle.source.on("change", onRules);
    ready.catch((err: Error) => {
      node.error(t("errors.audit", { error: err.message }));
      node.status({ fill: "red", shape: "ring", text: t("status.error") });
    });

    const control = (e: PolicyEngine<Held>, msg: NodeMessageInFlow, send: Send): boolean => {
      const p = msg.payload as Record<string, unknown> | undefined;
      switch (msg.topic) {
        case "grant": {
          const grant = handle.grants.add(p?.match, p?.ttl);
          send(route(OUT_AUDIT, { topic: "grant", payload: grant }));
          return true;
        }
        case "revoke": {
          const ok = typeof p?.id === "string" ? handle.grants.revoke(p.id) : typeof p?.key === "string" ? handle.grants.revokeDevice(p.key).length > 0 : false;
          send(route(OUT_AUDIT, { topic: "revoke", payload: { ok, ...(p ?? {}) } }));
          return true;
        }
        case "grants":
          send(route(OUT_AUDIT, { topic: "grants", payload: handle.grants.list() }));
          return true;
        case "answer": {
          const res = e.answer(msg.payload);
          if (!res.ok) throw new Error(res.error);
          return true;
        }
        case "learn":
          e.startLearning(typeof msg.payload === "number" && msg.payload > 0 ? msg.payload * 1000 : undefined);
          return true;
        case "learn-stop":
          send(route(OUT_AUDIT, { topic: "learned", payload: e.stopLearning() ?? null }));
          return true;
        case "questions":
          send(route(OUT_AUDIT, { topic: "questions", payload: e.pendingQuestions() }));
          return true;
        default:
          return false;
      }
    };

    node.on("input", (msg: NodeMessageInFlow, send, done) => {
      // Decisions wait for the grants and the audit log; order is kept.
      ready.then(() => {
        const e = engine;
        if (!e) return done(new Error(t("errors.notReady")));
        try {
          if (control(e, msg, send)) return done();
          const payload = msg.payload as { action?: unknown; id?: unknown } | undefined;
          const device = deviceFromEvent(msg.payload, (msg as { profile?: { name?: string; interface?: string } }).profile);
          if (payload?.action === "remove") {
            // Downstream nodes close what they opened; nothing to decide.
            for (const held of e.deviceRemoved(device.key)) held.done();
            send(route(OUT_ALLOWED, msg));
            return done();
          }
          const held: Held = { msg, send, done };
          const result = e.check(device, { context: contextOf(msg), data: held });
          if (result.kind === "decision") emitDecision(held, result.decision);
          else if (result.isNew) send(route(OUT_QUESTION, { topic: "question", payload: result.question }));
        } catch (err) {
          done(err as Error);
        }
      }, (err: Error) => done(err));
    });

    const ticker = statusTicker(() => {
      // The policy node has logged the whole message; the status only points at it.
      if (policyNode?.policyError) return { fill: "red", shape: "ring", text: t("status.policyError") };
      const e = engine;
      if (!e) return undefined;
      if (e.learning) return { fill: "blue", shape: "dot", text: t("status.learning", { n: countUpTo999(e.learned()?.devices.length ?? 0) }) };
      const asking = e.pendingQuestions().length;
      if (asking) return { fill: "yellow", shape: "dot", text: t("status.asking", { n: countUpTo999(asking) }) };
      const vars = { allowed: countUpTo999(counts.allowed), denied: countUpTo999(counts.denied) };
      const text = e.mode === "enforce"
        ? t("status.counts", vars)
        : t("status.dryRun", vars);
      return { fill: e.mode === "enforce" ? "green" : "grey", shape: "dot", text };
    }, node);

    node.on("close", (_removed: boolean, done: () => void) => {
      ticker.stop();
      handle.source.off("change", onRules);
      ready
        .then(async () => {
          // Messages still waiting for an answer end here, rather than never.
          for (const held of engine?.close() ?? []) held.done(new Error(t("errors.closed")));
          await audit?.close();
        })
        .catch(() => undefined)
        .then(() => done());
    });
  }

  RED.nodes.registerType("policy-check", PolicyCheckNode);
};
