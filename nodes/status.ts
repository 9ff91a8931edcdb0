// Status lines that change with traffic are refreshed on a timer, never per
// message: at camera rates a status per frame would flood the editor.
import type { Node, NodeStatus } from "node-red";

export interface StatusTicker {
  stop(): void;
}

export function statusTicker(compute: () => NodeStatus | undefined, node: Node, periodMs = 1000): StatusTicker {
  let last = "";
  const timer = setInterval(() => {
    const status = compute();
    if (!status) return;
    const key = JSON.stringify(status);
    if (key === last) return;
    last = key;
    node.status(status);
  }, periodMs);
  return { stop: () => clearInterval(timer) };
}
