// Example flows in node-red-node-test-helper, which knows only the nodes a
// test registers: the dashboard's widgets become test nodes (so a test can
// see what they would show) and its configuration nodes go.
export type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string; wires?: string[][] };

const DASHBOARD_CONFIG = ["ui-base", "ui-page", "ui-group", "ui-theme"];

export function withoutDashboard(flow: FlowNode[]): FlowNode[] {
  return flow
    .filter((n) => !DASHBOARD_CONFIG.includes(n.type))
    .map((n) => (n.type.startsWith("ui-") ? { id: n.id, z: n.z, name: n.name, type: "helper", wires: [] } : n));
}

/** Without the broker and the nodes that use it, for a test that has no broker. */
export function withoutMqtt(flow: FlowNode[]): FlowNode[] {
  const gone = new Set(flow.filter((n) => ["mqtt-broker", "mqtt in", "mqtt out"].includes(n.type)).map((n) => n.id));
  // A status node watching only MQTT nodes has nothing left to watch.
  for (const n of flow) if (n.type === "status" && Array.isArray(n.scope) && n.scope.every((id) => gone.has(String(id)))) gone.add(n.id);
  return flow.filter((n) => !gone.has(n.id)).map((n) => (n.wires ? { ...n, wires: n.wires.map((out) => out.filter((id) => !gone.has(id))) } : n));
}
