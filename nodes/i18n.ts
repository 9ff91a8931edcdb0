import type { NodeAPI } from "node-red";

/**
 * RED._ with an English fallback: when no catalog answers (RED._ hands the key
 * back, as under node-red-node-test-helper), the engine's own sentence is used
 * rather than a bare key.
 */
export function translate(RED: NodeAPI, key: string, vars: Record<string, string | number>, fallback: string): string {
  const text = RED._(key, vars);
  return text && text !== key ? text : fallback;
}
