// Canonical text, as USBGuard's Rule::toString() prints it: attributes in a
// fixed order, `equals` with one value in the single-value form, interface
// hex in lowercase, device-id hex as written, condition arguments as written,
// strings with \" \\ and \xHH for every byte outside printable ASCII.
import { formatCondition } from "./conditions";
import type { DeviceIdValue, InterfaceValue, Rule, ValueSet } from "./rule";
import { ATTRIBUTES } from "./rule";

export function formatRule(rule: Rule): string {
  let out: string = rule.target;
  for (const spec of ATTRIBUTES) {
    switch (spec.kind) {
      case "id":
        if (rule.id) out += " id " + formatSet(rule.id, formatDeviceId);
        break;
      case "interface":
        if (rule.withInterface) out += " with-interface " + formatSet(rule.withInterface, formatInterface);
        break;
      case "condition":
        if (rule.conditions) out += " if " + formatSet(rule.conditions, formatCondition);
        break;
      case "context":
        for (const c of rule.context ?? []) out += ` context ${c.key} ` + formatSet(c.set, formatString);
        break;
      case "string": {
        const set = rule[spec.field as Exclude<typeof spec.field, "id" | "withInterface" | "conditions" | "context">];
        if (set) out += ` ${spec.keyword} ` + formatSet(set, formatString);
        break;
      }
    }
  }
  return out;
}

export function formatSet<T>(set: ValueSet<T>, formatValue: (v: T) => string): string {
  if (set.op === "equals" && set.values.length === 1) return formatValue(set.values[0]);
  return (set.op === "equals" ? "" : set.op + " ") + "{ " + set.values.map(formatValue).join(" ") + " }";
}

export function formatDeviceId(id: DeviceIdValue): string {
  return id.vendor + ":" + id.product;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

export function formatInterface(i: InterfaceValue): string {
  return hex2(i.cls) + ":" + (i.subclass === null ? "*" : hex2(i.subclass)) + ":" + (i.protocol === null ? "*" : hex2(i.protocol));
}

export function formatString(value: string): string {
  if (/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(value)) return '"' + value + '"';
  let out = '"';
  for (const b of Buffer.from(value, "utf8")) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += "\\\\";
    else if (b >= 0x20 && b <= 0x7e) out += String.fromCharCode(b);
    else out += "\\x" + hex2(b);
  }
  return out + '"';
}
