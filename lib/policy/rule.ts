// The parsed form of one rule. Values keep what the canonical text needs
// (a device id's hex case, a condition's argument as written) so that
// formatting reproduces USBGuard's own output; matchers are built from this
// elsewhere (evaluate.ts), so the tree stays plain data.
import type { Target } from "./types";

/** Every target the grammar accepts; "match" and "device" never decide. */
export type RuleTarget = Target | "match" | "device";

export const RULE_TARGETS: readonly RuleTarget[] = ["allow", "block", "reject", "match", "device"];

export const SET_OPERATORS = ["all-of", "one-of", "none-of", "equals", "equals-ordered", "match-all"] as const;
export type SetOperator = (typeof SET_OPERATORS)[number];

/** An attribute's values and how they compare with the device's values. */
export interface ValueSet<T> {
  op: SetOperator;
  /** Never empty: the grammar has no empty set. */
  values: T[];
}

/** "vvvv:pppp" as written; either half may be "*" (but not "*:pppp"). */
export interface DeviceIdValue {
  vendor: string;
  product: string;
}

/** cc:ss:pp; null stands for "*". A null subclass implies a null protocol. */
export interface InterfaceValue {
  cls: number;
  subclass: number | null;
  protocol: number | null;
}

interface ConditionBase {
  negated: boolean;
  /** The argument between the parentheses exactly as written, if any. */
  arg?: string;
}

export interface FixedCondition extends ConditionBase {
  kind: "true" | "false";
}

export interface LocaltimeCondition extends ConditionBase {
  kind: "localtime";
  arg: string;
  /** Seconds since local midnight, both ends inclusive. */
  begin: number;
  end: number;
}

export interface HistoryCondition extends ConditionBase {
  kind: "rule-applied" | "rule-evaluated";
  /** 0 means "ever". */
  withinSeconds: number;
}

export interface RandomCondition extends ConditionBase {
  kind: "random";
  probability: number;
}

export interface AllowedMatchesCondition extends ConditionBase {
  kind: "allowed-matches";
  /** The query as a rule (target "allow"); its own conditions are never evaluated. */
  query: Rule;
}

export type Condition = FixedCondition | LocaltimeCondition | HistoryCondition | RandomCondition | AllowedMatchesCondition;
export type ConditionKind = Condition["kind"];

/** devplane's `context KEY value`: tests a value the message carries. */
export interface ContextTest {
  key: string;
  set: ValueSet<string>;
}

export interface Rule {
  target: RuleTarget;
  id?: ValueSet<DeviceIdValue>;
  serial?: ValueSet<string>;
  name?: ValueSet<string>;
  hash?: ValueSet<string>;
  parentHash?: ValueSet<string>;
  viaPort?: ValueSet<string>;
  withInterface?: ValueSet<InterfaceValue>;
  conditions?: ValueSet<Condition>;
  withConnectType?: ValueSet<string>;
  /** Never used for matching, as in USBGuard. */
  label?: ValueSet<string>;
  // devplane extensions
  subsystem?: ValueSet<string>;
  /** Globs: `*` and `?` never cross a `/`, `[...]` is a character class. */
  devnode?: ValueSet<string>;
  profile?: ValueSet<string>;
  profileInterface?: ValueSet<string>;
  /** Sorted by key; a key appears once. */
  context?: ContextTest[];
}

export type StringAttributeField =
  | "serial"
  | "name"
  | "hash"
  | "parentHash"
  | "viaPort"
  | "withConnectType"
  | "label"
  | "subsystem"
  | "devnode"
  | "profile"
  | "profileInterface";

export type AttributeField = StringAttributeField | "id" | "withInterface" | "conditions" | "context";

export interface AttributeSpec {
  keyword: string;
  field: AttributeField;
  kind: "id" | "string" | "interface" | "condition" | "context";
  /** Not part of USBGuard's language. */
  extension: boolean;
}

/**
 * In USBGuard's printing order (RulePrivate::toString prints `if` before
 * `with-connect-type`), then devplane's extensions.
 */
export const ATTRIBUTES: readonly AttributeSpec[] = [
  { keyword: "id", field: "id", kind: "id", extension: false },
  { keyword: "serial", field: "serial", kind: "string", extension: false },
  { keyword: "name", field: "name", kind: "string", extension: false },
  { keyword: "hash", field: "hash", kind: "string", extension: false },
  { keyword: "parent-hash", field: "parentHash", kind: "string", extension: false },
  { keyword: "via-port", field: "viaPort", kind: "string", extension: false },
  { keyword: "with-interface", field: "withInterface", kind: "interface", extension: false },
  { keyword: "if", field: "conditions", kind: "condition", extension: false },
  { keyword: "with-connect-type", field: "withConnectType", kind: "string", extension: false },
  { keyword: "label", field: "label", kind: "string", extension: false },
  { keyword: "subsystem", field: "subsystem", kind: "string", extension: true },
  { keyword: "devnode", field: "devnode", kind: "string", extension: true },
  { keyword: "profile", field: "profile", kind: "string", extension: true },
  { keyword: "profile-interface", field: "profileInterface", kind: "string", extension: true },
  { keyword: "context", field: "context", kind: "context", extension: true },
];

export const ATTRIBUTE_BY_KEYWORD: ReadonlyMap<string, AttributeSpec> = new Map(ATTRIBUTES.map((a) => [a.keyword, a]));

export const CONDITION_KINDS: readonly ConditionKind[] = [
  "true",
  "false",
  "localtime",
  "allowed-matches",
  "rule-applied",
  "rule-evaluated",
  "random",
];
