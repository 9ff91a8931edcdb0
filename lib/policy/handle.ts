// A policy as the nodes share it: the rules in force (text and/or file, with
// the file watched) and the grants, persisted. Made by the devplane-policy
// config node; used by policy-check and by capture and serial nodes that
// must not open a device the policy denies.
import { GrantStore } from "./grants";
import { PolicyLoadError, PolicySource } from "./source";
import { Target } from "./types";

export interface PolicyHandle {
  source: PolicySource;
  grants: GrantStore;
  defaultTarget: Target;
  /** Resolves once the grants file has been read. */
  ready: Promise<void>;
  close(): Promise<void>;
}

export interface PolicyHandleOptions {
  rules?: string;
  rulesFile?: string;
  defaultTarget: Target;
  grantsFile?: string;
  /** Problems that leave the policy working: a rules file that broke, a grants file set aside. */
  warn: (message: string) => void;
}

export function describeLoadError(e: PolicyLoadError): string {
  const where = e.line !== undefined ? `${e.origin === "text" ? "rules" : e.origin}:${e.line}:${e.column}` : e.origin;
  return e.message.startsWith(where) ? e.message : `${where}: ${e.message}`;
}

/** Starts a policy. The first load's error, if any, is in `error` (the rule set is then empty). */
export function openPolicy(options: PolicyHandleOptions): { handle: PolicyHandle; error?: string } {
  const source = new PolicySource({ text: options.rules ?? "", file: options.rulesFile, defaultTarget: options.defaultTarget });
  source.on("error", (e) => options.warn(describeLoadError(e)));
  const first = source.start();
  const grants = new GrantStore({ file: options.grantsFile, onError: (err) => options.warn(err.message) });
  const ready = grants.load().then((load) => {
    if (load.error) options.warn(load.error.message);
  });
  const handle: PolicyHandle = {
    source,
    grants,
    defaultTarget: options.defaultTarget,
    ready,
    close: async () => {
      source.stop();
      source.removeAllListeners();
      await ready.catch(() => undefined);
      await grants.flush();
    },
  };
  return { handle, error: first ? describeLoadError(first) : undefined };
}
