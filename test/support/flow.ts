// What a node under test sends and shows, recorded for assertions.
import type { Node, NodeMessage } from "node-red";

/** Every message a (helper) node receives, in order. */
export function collect<T extends NodeMessage = NodeMessage>(node: Node): T[] {
  const got: T[] = [];
  node.on("input", (msg: NodeMessage) => got.push(msg as T));
  return got;
}

export interface SeenStatus {
  fill?: string;
  shape?: string;
  text?: string;
}

/** Every status a node shows, in order, with the fields asked for; the node still shows them. */
export function statuses(node: Node, fields: Array<keyof SeenStatus> = ["fill", "text"]): SeenStatus[] {
  const seen: SeenStatus[] = [];
  const original = node.status.bind(node);
  node.status = (s: Parameters<Node["status"]>[0]) => {
    const full: SeenStatus = typeof s === "string" ? { text: s } : { fill: s.fill, shape: s.shape, text: s.text === undefined ? undefined : String(s.text) };
    const picked: SeenStatus = {};
    for (const f of fields) if (f in full || typeof s !== "string") picked[f] = full[f];
    seen.push(picked);
    original(s);
  };
  return seen;
}

/** The texts of recorded statuses. */
export const statusTexts = (seen: SeenStatus[]): string[] => seen.map((s) => s.text ?? "");
