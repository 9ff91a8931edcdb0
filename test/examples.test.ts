// The example files as files: what Node-RED's import needs, what each flow
// must show, and that together they use every node of the package. That they
// run is test/examples.runtime.test.ts's part.
import assert from "assert";
import fs from "fs";
import path from "path";
import type { FlowNode } from "./support/flows";
import { ROOT } from "./support/rings";

const DIR = path.join(ROOT, "examples");
const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
const load = (f: string) => JSON.parse(fs.readFileSync(path.join(DIR, f), "utf8")) as unknown;
const flows = new Map(files.map((f) => [f, load(f) as FlowNode[]]));

function typesOf(pkgDir: string): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")) as { "node-red": { nodes: Record<string, string> } };
  return Object.keys(pkg["node-red"].nodes);
}

/** Every type Node-RED's core nodes register. */
function coreTypes(): Set<string> {
  const core = path.join(path.dirname(require.resolve("@node-red/nodes/package.json")), "core");
  const out = new Set<string>(["tab", "group"]);
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".js")) for (const m of fs.readFileSync(p, "utf8").matchAll(/registerType\(\s*["']([^"']+)["']/g)) out.add(m[1]);
    }
  };
  walk(core);
  return out;
}

const OURS = typesOf(ROOT);
const DASHBOARD = typesOf(path.dirname(require.resolve("@flowfuse/node-red-dashboard/package.json")));
const CORE = coreTypes();

/** The flows the package promises, each with a dashboard and MQTT. */
const PROMISED = {
  "arduino-serial.json": ["device-detect", "device-profile", "device-profiles", "policy-check", "devplane-policy", "serial-stream", "mqtt out", "mqtt in", "ui-chart"],
  "camera-preview.json": ["v4l2-capture", "ui-template"],
  "camera-to-python.json": ["v4l2-capture", "mqtt out"],
  "alsa-level-mqtt.json": ["alsa-capture", "mqtt out", "mqtt in", "ui-gauge"],
  "alsa-to-ring.json": ["alsa-capture", "mqtt out"],
  "policy-ask-audit.json": ["device-detect", "policy-check", "devplane-policy", "ui-button", "ui-text", "mqtt out", "mqtt in"],
  "fleet-inventory.json": ["device-detect", "device-profile", "device-inventory", "mqtt out", "mqtt in", "status", "ui-table"],
};

describe("example files", () => {
  for (const [file, flow] of flows) {
    describe(file, () => {
      it("is a top-level array of nodes with unique ids, each wire going to a node of the file", () => {
        assert.ok(Array.isArray(flow));
        const ids = new Set(flow.map((n) => n.id));
        assert.strictEqual(ids.size, flow.length, "ids are unique");
        for (const n of flow) {
          assert.ok(typeof n.id === "string" && typeof n.type === "string", JSON.stringify(n).slice(0, 80));
          for (const out of n.wires ?? []) for (const to of out) assert.ok(ids.has(to), `${n.type} ${n.id} is wired to ${to}, which is not in the file`);
        }
        // One tab's worth: Node-RED imports it into the tab the user is on.
        assert.strictEqual(new Set(flow.filter((n) => n.z).map((n) => n.z)).size, 1, "every flow node is on one tab");
        assert.ok(!flow.some((n) => n.type === "tab"), "no tab of its own");
      });

      it("explains itself in a Comment node", () => {
        const comments = flow.filter((n) => n.type === "comment");
        assert.ok(comments.length >= 1);
        assert.ok(comments.some((c) => typeof c.info === "string" && c.info.length > 200), "a comment with a description");
      });

      it("uses only core, dashboard and devplane nodes", () => {
        for (const n of flow) assert.ok(CORE.has(n.type) || OURS.includes(n.type) || DASHBOARD.includes(n.type), `${n.type} is not a core, dashboard or devplane node`);
      });

      it("shares the broker and dashboard configuration with the other examples", () => {
        for (const n of flow.filter((x) => x.type === "mqtt-broker")) {
          assert.deepStrictEqual([n.id, n.broker, n.port, n.autoConnect], ["de0b0c0ffee00001", "localhost", "1883", true]);
        }
        for (const n of flow.filter((x) => x.type === "ui-base")) assert.deepStrictEqual([n.id, n.path], ["de0b0c0ffee00002", "/dashboard"]);
        for (const n of flow.filter((x) => x.type === "mqtt in" || x.type === "mqtt out")) assert.strictEqual(n.broker, "de0b0c0ffee00001");
        const byId = new Map(flow.map((n) => [n.id, n]));
        for (const n of flow.filter((x) => x.type.startsWith("ui-") && !["ui-base", "ui-page", "ui-group", "ui-theme"].includes(x.type))) {
          const group = byId.get(String(n.group));
          assert.strictEqual(group?.type, "ui-group", `${n.type} ${n.name} has its group in the file`);
          const page = byId.get(String(group.page));
          assert.strictEqual(page?.type, "ui-page", `group ${group.name} has its page in the file`);
          assert.strictEqual(page.ui, "de0b0c0ffee00002");
        }
      });

      it("publishes through mqtt out nodes that take topic, QoS and retain from each message", () => {
        for (const n of flow.filter((x) => x.type === "mqtt out")) assert.deepStrictEqual([n.topic, n.qos, n.retain], ["", "", ""], `${n.name}`);
      });
    });
  }

  it("the promised flows exist, each with its pieces", () => {
    for (const [file, types] of Object.entries(PROMISED)) {
      const flow = flows.get(file);
      assert.ok(flow, `${file} exists`);
      for (const t of types) assert.ok(flow.some((n) => n.type === t), `${file} has a ${t} node`);
    }
  });

  it("together they use every node of the package", () => {
    const used = new Set([...flows.values()].flat().map((n) => n.type));
    assert.deepStrictEqual(OURS.filter((t) => !used.has(t)), []);
  });

  it("nodes that appear in several files are the shared configuration, the same in each", () => {
    const seen = new Map<string, { file: string; node: FlowNode }>();
    for (const [file, flow] of flows) {
      for (const n of flow) {
        const before = seen.get(n.id);
        if (!before) {
          seen.set(n.id, { file, node: n });
          continue;
        }
        // Flow nodes with the same id in two files would clash when both are imported.
        assert.ok(!n.z, `${n.type} ${n.id} is in ${before.file} and ${file}`);
        assert.deepStrictEqual(n, before.node, `${n.type} ${n.id} differs between ${before.file} and ${file}`);
      }
    }
  });
});
