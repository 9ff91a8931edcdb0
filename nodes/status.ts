// How nodes show their state. Status lines that change with traffic are refreshed on a timer, never per
// message: at camera rates a status per frame would flood the editor.
import type { Node, NodeMessageInFlow, NodeStatus } from "node-red";

/** Node-RED's status line is short: texts stay under this many characters. */
export const STATUS_MAX = 19;

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

/** A name (a port, a board) cut to `max` characters, so that it fits a status line. */
export function clip(text: string, max = STATUS_MAX): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join("")}…`;
}

/**
 * A count in at most four characters (9999, 12k, 345k, 6M): counters that only
 * grow, such as lost frames, must not push a status line past its length.
 */
export function compactCount(n: number): string {
  const v = Math.max(0, Math.round(n));
  if (v < 10_000) return String(v);
  if (v < 1_000_000) return `${Math.floor(v / 1000)}k`;
  if (v < 1_000_000_000) return `${Math.floor(v / 1_000_000)}M`;
  return `${Math.min(999, Math.floor(v / 1_000_000_000))}G`;
}

/** A rate per second in at most four characters: one decimal below 10. */
export function compactRate(perSecond: number): string {
  if (!(perSecond > 0)) return "0";
  return perSecond < 10 ? perSecond.toFixed(1) : compactCount(perSecond);
}

/** A count of things a person does or plugs in, in at most three characters. */
export function countUpTo999(n: number): string {
  return n < 1000 ? String(Math.max(0, Math.round(n))) : "1k+";
}

/**
 * A node that cannot run with its settings: it says why once, shows it in its
 * status, and fails every message with it, so that Catch nodes see it too.
 */
export function refuseToRun(node: Node, text: string, statusText: string): void {
  node.error(text);
  node.status({ fill: "red", shape: "ring", text: statusText });
  node.on("input", (_msg: NodeMessageInFlow, _send, done) => done(new Error(text)));
}
