// The check a capture or serial node makes before it opens a device: the same
// grants, rules and default as policy-check, without asking anyone. A device
// the policy does not allow is never opened.
import { PolicyEngine } from "./engine";
import type { PolicyHandle } from "./handle";
import type { Decision, PolicyContext, PolicyDevice } from "./types";

export interface GateResult {
  allowed: boolean;
  decision: Decision;
}

export async function checkBeforeOpen(handle: PolicyHandle, device: PolicyDevice, context?: PolicyContext): Promise<GateResult> {
  await handle.ready;
  const engine = new PolicyEngine({ ruleSet: handle.source.rules, defaultTarget: handle.defaultTarget, grants: handle.grants });
  try {
    const decision = engine.decide(device, context);
    return { allowed: decision.decision === "allow", decision };
  } finally {
    engine.close();
  }
}

/** A device known only by its path (a typed /dev/ttyACM0, an ALSA name), as rules see it. */
export function deviceFromPath(devnode: string, subsystem: string): PolicyDevice {
  return { key: `${subsystem}:${devnode}`, subsystem, devnodes: [devnode], withInterface: [] };
}
