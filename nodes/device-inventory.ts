// device-inventory: device-detect events in, the MQTT messages that keep this
// host's inventory on a broker out (for an mqtt out node).
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import { Inventory, inventoryParts, isInventoryEvent } from "../lib/inventory";
import type { PolicySummary, ProfileSummary } from "../lib/inventory";
import { translate } from "./i18n";
import { refuseToRun } from "./status";

interface DeviceInventoryDef extends NodeDef {
  host: string;
  topic: string;
  discovery: boolean | string;
  discoveryPrefix: string;
  announce: boolean | string;
}

// Flows may start late; if the runtime never says they did, the connection is set up after this long.
const START_FALLBACK_MS = 5000;

const waitingForFlows = new Set<() => void>();
let flowsStarted: { events: NodeAPI["events"]; listener: () => void } | undefined;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (Buffer.isBuffer(v)) return "a Buffer";
  return typeof v === "object" ? "an object without id and action" : `a ${typeof v}`;
}

export = function (RED: NodeAPI): void {
  function DeviceInventoryNode(this: Node, config: DeviceInventoryDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const t = (key: string, vars: Record<string, string | number> = {}) => translate(RED, `device-inventory.${key}`, vars);

    let inventory: Inventory;
    try {
      inventory = new Inventory({
        host: config.host,
        baseTopic: config.topic,
        discovery: config.discovery !== false && config.discovery !== "false",
        discoveryPrefix: config.discoveryPrefix,
      });
    } catch (err) {
      const text = t("errors.config", { error: (err as Error).message });
      refuseToRun(node, text, t("status.badConfig"));
      return;
    }
    const announce = config.announce !== false && config.announce !== "false";

    const status = (): void => {
      const vars = { host: inventory.host, count: inventory.devices().length };
      node.status({ fill: "green", shape: "dot", text: t("status.devices", vars) });
    };

    let started = false;
    let closed = false;
    const begin = (): void => {
      if (started || closed) return;
      started = true;
      clearTimeout(fallback);
      waitingForFlows.delete(begin);
      // The connection is set up once every node of the flow exists, or the mqtt out node would miss it.
      if (announce) node.send(inventory.connectAction() as unknown as NodeMessage);
    };
    waitingForFlows.add(begin);
    const fallback = setTimeout(begin, START_FALLBACK_MS);
    status();

    node.on("input", (msg: NodeMessageInFlow, send, done) => {
      if (!isInventoryEvent(msg.payload)) {
        const got = describe(msg.payload);
        done(new Error(t("errors.notEvent", { got })));
        return;
      }
      const extra = msg as NodeMessageInFlow & { profile?: ProfileSummary; policy?: PolicySummary; parts?: unknown };
      const out = inventory.update({ event: msg.payload, profile: extra.profile, policy: extra.policy, parts: inventoryParts(extra.parts) });
      // One output message per MQTT message, in order; each a new message, so nothing of the event rides along.
      send([out as unknown as NodeMessage[]]);
      status();
      done();
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      closed = true;
      clearTimeout(fallback);
      waitingForFlows.delete(begin);
      done();
    });
  }

  RED.nodes.registerType("device-inventory", DeviceInventoryNode);
  // Registering the module again (a test runtime does) replaces the listener rather than adding one.
  if (flowsStarted) flowsStarted.events.removeListener("flows:started", flowsStarted.listener);
  flowsStarted = {
    events: RED.events,
    listener: () => {
      for (const begin of [...waitingForFlows]) begin();
    },
  };
  RED.events.on("flows:started", flowsStarted.listener);
};
