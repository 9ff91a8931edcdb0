// The check a capture node makes before it opens a device, when it refers to a
// devplane-policy config node: the same decision as policy-check, without
// asking anyone. It fails closed: a referenced policy that is missing opens nothing.
import type { Node, NodeAPI } from "node-red";
import { checkBeforeOpen } from "../lib/policy/gate";
import type { PolicyHandle } from "../lib/policy/handle";
import type { PolicyDevice } from "../lib/policy/types";

/** Why the device may not be opened, or undefined when it may. */
export type OpenCheck = (device: PolicyDevice) => Promise<string | undefined>;

export function openCheckFor(
  RED: NodeAPI,
  policyId: string | undefined,
  texts: { missing: string; denied: (reason: string) => string },
): OpenCheck | undefined {
  if (!policyId) return undefined;
  return async (device) => {
    const handle = (RED.nodes.getNode(policyId) as (Node & { policy?: PolicyHandle }) | null)?.policy;
    if (!handle) return texts.missing;
    const { allowed, decision } = await checkBeforeOpen(handle, device);
    return allowed ? undefined : texts.denied(decision.reason);
  };
}
