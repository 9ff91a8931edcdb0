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

export interface OpenOutcome {
  /** Opens the device; runs at once without a policy, else once the policy allows it. */
  open(): void;
  /** The policy said no (or is missing): the sentence why. */
  denied(text: string): void;
  /** The policy could not decide, or opening after its check threw. */
  failed(err: Error): void;
}

/**
 * A capture node's start, through its policy when it references one. A check
 * in flight is cancelled by a stop or a close: its answer then opens nothing.
 */
export class GatedOpen {
  private token = 0;
  private pending = false;

  constructor(
    private readonly check: OpenCheck | undefined,
    private readonly device: () => PolicyDevice,
  ) {}

  /** True while the policy is being asked. */
  get checking(): boolean {
    return this.pending;
  }

  request(outcome: OpenOutcome): void {
    if (!this.check) {
      outcome.open();
      return;
    }
    const token = ++this.token;
    this.pending = true;
    this.check(this.device()).then(
      (denied) => {
        if (token !== this.token) return;
        this.pending = false;
        if (denied) return outcome.denied(denied);
        try {
          outcome.open();
        } catch (err) {
          outcome.failed(err as Error);
        }
      },
      (err: Error) => {
        if (token !== this.token) return;
        this.pending = false;
        outcome.failed(err);
      },
    );
  }

  cancel(): void {
    this.token++;
    this.pending = false;
  }
}
