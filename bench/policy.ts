// npm run bench:policy — decisions per second and latency of the rule
// engine with 10, 1,000 and 10,000 rules, side by side with what a user
// would otherwise write: a first-match scan from the top over the same
// parsed rules, both with the same compiled matchers ("alternative") and
// calling ruleMatches() rule after rule ("naive"). One JSON line per rule
// count.
//
// The rules look like a real policy grown by `generate-policy` and hand
// edits: mostly `allow id vvvv:pppp serial "..." name "..." with-interface
// {...}` (several boards of one model, told apart by serial), some exact
// block rules, some vendor wildcards, and a few generic rules without an id
// spread through the file. The devices: 70% have their own allow rule, 20%
// are unknown, 10% fall to a vendor wildcard or a generic rule.
//
// Throughput is a tight loop over a pool of devices for about a second.
// Latency times single decisions with process.hrtime.bigint(), whose own
// cost (tens of ns) is included in p50/p99.
import os from "os";
import { CompiledRule, compiledFor, ConditionEnv, DeviceView, EvalOptions, makeEnv, ruleMatches } from "../lib/policy/evaluate";
import type { Rule } from "../lib/policy/rule";
import { RuleSet } from "../lib/policy/ruleset";
import type { PolicyDevice } from "../lib/policy/types";

const COUNTS = process.env.BENCH_RULES ? process.env.BENCH_RULES.split(",").map(Number) : [10, 1000, 10000];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const TARGET = 500_000;

/** Deterministic, so runs compare. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS: { name: string; interfaces: string[] }[] = [
  { name: "Arduino Uno", interfaces: ["02:02:01", "0a:00:00"] },
  { name: "FT232R USB UART", interfaces: ["ff:ff:ff"] },
  { name: "USB Keyboard", interfaces: ["03:01:01", "03:00:00"] },
  { name: "Flash Disk", interfaces: ["08:06:50"] },
  { name: "HD Webcam", interfaces: ["0e:01:00", "0e:02:00", "01:01:00", "01:02:00"] },
  { name: "USB Audio", interfaces: ["01:01:00", "01:02:00", "03:00:00"] },
];

interface Workload {
  text: string;
  devices: PolicyDevice[];
}

function hex4(r: () => number): string {
  return Math.floor(r() * 0x10000)
    .toString(16)
    .padStart(4, "0");
}

export function workload(n: number): Workload {
  const r = rng(n * 7919 + 1);
  const ids = Array.from({ length: Math.max(1, Math.round(n / 4)) }, () => ({
    vendor: hex4(r),
    product: hex4(r),
    kind: KINDS[Math.floor(r() * KINDS.length)],
  }));
  const lines: string[] = [];
  const allowed: PolicyDevice[] = [];
  const wildcardVendors: string[] = [];
  const generic = [
    "reject with-interface all-of { 08:*:* 03:*:* }",
    "block with-interface one-of { e0:*:* }",
    "allow with-interface equals { 08:*:* } if localtime(08:00-18:00)",
    'block via-port "1-9"',
  ];
  const genericCount = Math.max(2, Math.round(n * 0.005));
  for (let i = 0; i < n; i++) {
    const roll = r();
    if (roll < genericCount / n) {
      lines.push(generic[i % generic.length]);
      continue;
    }
    const id = ids[Math.floor(r() * ids.length)];
    if (roll < 0.05) {
      lines.push(`block id ${id.vendor}:${id.product}`);
    } else if (roll < 0.1) {
      lines.push(`allow id ${id.vendor}:* with-interface one-of { 02:*:* ff:*:* }`);
      wildcardVendors.push(id.vendor);
    } else {
      const serial = hex4(r) + hex4(r) + hex4(r);
      const port = `1-${1 + Math.floor(r() * 4)}.${1 + Math.floor(r() * 4)}`;
      const withPort = r() < 0.2;
      const device: PolicyDevice = {
        key: `usb-${id.vendor}:${id.product}-${serial}`,
        id: `${id.vendor}:${id.product}`,
        serial,
        name: id.kind.name,
        viaPort: port,
        withInterface: id.kind.interfaces,
        subsystem: "usb",
      };
      const ifaces = id.kind.interfaces.length === 1 ? id.kind.interfaces[0] : `{ ${id.kind.interfaces.join(" ")} }`;
      lines.push(`allow id ${device.id} serial "${serial}" name "${device.name}"${withPort ? ` via-port "${port}"` : ""} with-interface ${ifaces}`);
      allowed.push(device);
    }
  }
  const devices: PolicyDevice[] = [];
  for (let i = 0; i < 1000; i++) {
    const roll = r();
    if (roll < 0.7 && allowed.length > 0) {
      devices.push(allowed[Math.floor(r() * allowed.length)]);
    } else if (roll < 0.9 || (wildcardVendors.length === 0 && roll < 0.95)) {
      const kind = KINDS[Math.floor(r() * KINDS.length)];
      devices.push({ key: `unknown-${i}`, id: `${hex4(r)}:${hex4(r)}`, serial: "", name: kind.name, viaPort: "2-1", withInterface: kind.interfaces });
    } else if (roll < 0.95 && wildcardVendors.length > 0) {
      const vendor = wildcardVendors[Math.floor(r() * wildcardVendors.length)];
      devices.push({ key: `wild-${i}`, id: `${vendor}:${hex4(r)}`, serial: "", name: "Serial adapter", viaPort: "1-2", withInterface: ["ff:ff:ff"] });
    } else {
      devices.push({ key: `odd-${i}`, id: `${hex4(r)}:${hex4(r)}`, serial: "", name: "Disk", viaPort: "1-9", withInterface: ["08:06:50", "03:01:01"] });
    }
  }
  return { text: lines.join("\n"), devices };
}

/** First match from the top, with the rule set's own compiled matchers and one device view per decision. */
function linearScan(compiled: (CompiledRule | undefined)[], device: PolicyDevice, opts: EvalOptions): number {
  const view = new DeviceView(device, opts.context);
  let env: ConditionEnv | undefined;
  for (let i = 0; i < compiled.length; i++) {
    const c = compiled[i];
    if (!c || !c.attributes(view)) continue;
    if (c.conditions) {
      env ??= makeEnv(device, opts);
      env.ruleIndex = i;
      if (!c.conditions(env)) continue;
    }
    return i;
  }
  return -1;
}

/** What the library's public per-rule call gives a user who loops over the rules. */
function naiveScan(rules: Rule[], device: PolicyDevice, opts: EvalOptions): number {
  for (let i = 0; i < rules.length; i++) {
    const t = rules[i].target;
    if ((t === "allow" || t === "block" || t === "reject") && ruleMatches(rules[i], device, opts)) return i;
  }
  return -1;
}

interface Stats {
  decisions_per_s: number;
  p50_us: number;
  p99_us: number;
}

function measure(decide: (d: PolicyDevice) => number, devices: PolicyDevice[]): Stats {
  let sink = 0;
  const runFor = (ns: bigint, maxDecisions: number) => {
    let decisions = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0n;
    do {
      for (let i = 0; i < 100; i++) sink += decide(devices[(decisions + i) % devices.length]);
      decisions += 100;
      elapsed = process.hrtime.bigint() - start;
    } while (elapsed < ns && decisions < maxDecisions);
    return decisions / (Number(elapsed) / 1e9);
  };
  runFor(200_000_000n, 50_000); // warm-up
  const perSecond = runFor(BigInt(Math.round(SECONDS * 1e9)), Number.MAX_SAFE_INTEGER);
  const samples = Math.max(1000, Math.min(200_000, Math.round(perSecond * SECONDS * 0.5)));
  const times = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const d = devices[i % devices.length];
    const t0 = process.hrtime.bigint();
    sink += decide(d);
    times[i] = Number(process.hrtime.bigint() - t0);
  }
  times.sort();
  if (sink === 0.5) console.error("unreachable");
  const pct = (p: number) => Math.round(times[Math.min(samples - 1, Math.floor(samples * p))] / 10) / 100;
  return { decisions_per_s: Math.round(perSecond), p50_us: pct(0.5), p99_us: pct(0.99) };
}

function main(): void {
  const opts: EvalOptions = { now: new Date(2025, 0, 15, 12, 0, 0) };
  for (const n of COUNTS) {
    const { text, devices } = workload(n);
    const set = RuleSet.parse(text);
    const rules = Array.from({ length: set.size }, (_, i) => set.ruleAt(i));
    const compiled = rules.map((r) => (r.target === "allow" || r.target === "block" || r.target === "reject" ? compiledFor(r) : undefined));
    // The engines must agree before their speed means anything.
    const outcomes = { allow: 0, block: 0, reject: 0, none: 0 };
    devices.forEach((d, i) => {
      const hit = set.evaluate(d, opts);
      const expected = linearScan(compiled, d, opts);
      if ((hit?.ruleIndex ?? -1) !== expected || (i < 100 && naiveScan(rules, d, opts) !== expected)) {
        throw new Error(`the engines disagree on ${d.key}: indexed ${hit?.ruleIndex}, linear ${expected}`);
      }
      outcomes[hit ? hit.target : "none"]++;
    });
    const indexed = measure((d) => set.evaluate(d, opts)?.ruleIndex ?? -1, devices);
    const linear = measure((d) => linearScan(compiled, d, opts), devices);
    const naive = measure((d) => naiveScan(rules, d, opts), devices);
    console.log(
      JSON.stringify({
        bench: "policy",
        rules: set.size,
        engine: "indexed",
        ...indexed,
        alternative: { engine: "linear first-match scan, same compiled matchers", ...linear },
        naive: { engine: "ruleMatches() on each rule in order", ...naive },
        speedup_vs_linear: Math.round((indexed.decisions_per_s / linear.decisions_per_s) * 10) / 10,
        ...(n === 1000 ? { target_decisions_per_s: TARGET, meets_target: indexed.decisions_per_s >= TARGET } : {}),
        devices: { pool: devices.length, ...outcomes },
        node: process.version,
        cpu: os.cpus()[0]?.model ?? "unknown",
        loadavg: Math.round(os.loadavg()[0] * 100) / 100,
      }),
    );
  }
}

if (require.main === module) main();
