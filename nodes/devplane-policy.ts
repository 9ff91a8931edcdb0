// devplane-policy: the rule set (text and/or file) and the grants that
// policy-check nodes, and capture and serial nodes that reference it, share.
import os from "os";
import path from "path";
import type { Node, NodeAPI, NodeDef } from "node-red";
import { checkTarget, RuleSet } from "../lib/policy";
import { openPolicy, PolicyHandle } from "../lib/policy/handle";

interface PolicyConfigDef extends NodeDef {
  rules: string;
  rulesFile: string;
  defaultTarget: string;
}

type PolicyConfigNode = Node & { policy?: PolicyHandle; policyError?: string };

export = function (RED: NodeAPI): void {
  function DevplanePolicyNode(this: PolicyConfigNode, config: PolicyConfigDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let defaultTarget;
    try {
      defaultTarget = checkTarget(config.defaultTarget);
    } catch (err) {
      node.policyError = (err as Error).message;
      node.error(node.policyError);
      return;
    }
    // Grants outlive restarts: they live in the user directory, one file per policy.
    const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? os.tmpdir();
    const grantsFile = path.join(userDir, ".devplane", `grants-${node.id.replace(/[^A-Za-z0-9._-]/g, "_")}.json`);
    const { handle, error } = openPolicy({
      rules: config.rules,
      rulesFile: config.rulesFile,
      defaultTarget,
      grantsFile,
      warn: (m) => node.warn(m),
    });
    node.policy = handle;
    // Nodes using the policy show this; the last good rules (none yet) stay in force.
    node.policyError = error;
    if (error) node.error(error);
    handle.source.on("change", () => (node.policyError = undefined));
    handle.source.on("error", () => (node.policyError = handle.source.error ? `${handle.source.error.message}` : undefined));

    node.on("close", (_removed: boolean, done: () => void) => {
      handle.close().then(done, () => done());
    });
  }

  RED.nodes.registerType("devplane-policy", DevplanePolicyNode);

  // Lets the editor check rule text as it is typed, with the line and column of an error.
  RED.httpAdmin.post("/devplane/policy/validate", RED.auth.needsPermission("devplane-policy.read"), (req, res) => {
    const text = typeof req.body?.rules === "string" ? (req.body.rules as string) : "";
    try {
      const set = RuleSet.parse(text);
      res.json({ ok: true, rules: set.size });
    } catch (err) {
      const e = err as Error & { line?: number; column?: number };
      res.json({ ok: false, error: e.message, line: e.line, column: e.column });
    }
  });
};
