// Learning a policy, in the spirit of `usbguard generate-policy`: during a
// window, every device seen is collected (once per stable key) and turned into
// an allow rule the user can review and append.
import { ruleForDevice } from "./device";
import { summarize, type DeviceSummary } from "./ask";
import type { PolicyDevice } from "./types";

export interface LearnOptions {
  /** Length of the window, in ms. */
  windowMs: number;
  clock?: () => number;
  /**
   * Name the port in each rule. Unset: only for devices without a serial
   * number, as generate-policy does (nothing else tells two of them apart).
   */
  withPort?: boolean;
  /** Name the descriptor hash when the device has one (unset: yes). */
  withHash?: boolean;
}

export interface LearnedDevice {
  key: string;
  device: DeviceSummary;
  /** The allow rule for this device; "" when it has nothing a rule could name (see `error`). */
  rule: string;
  error?: string;
  /** ms since epoch */
  firstSeen: number;
  lastSeen: number;
  /** Events seen for this device during the window. */
  seen: number;
  /** Already allowed by the rules in force (or a grant) when first seen; its rule is not suggested. */
  covered: boolean;
}

export interface LearnResult {
  /** ms since epoch */
  started: number;
  ended: number;
  windowMs: number;
  /** Whether the window ran its full length (false: stopped early). */
  complete: boolean;
  devices: LearnedDevice[];
  /** Rules for the devices not already allowed, without duplicates, in the order first seen. */
  rules: string[];
  /** `rules` as text to append to a rules file. */
  text: string;
}

export class Learner {
  private readonly seen = new Map<string, LearnedDevice>();
  private readonly clock: () => number;
  private startedAt: number | undefined;
  private endedAt: number | undefined;

  constructor(private readonly options: LearnOptions) {
    if (!(options.windowMs > 0) || !Number.isFinite(options.windowMs)) {
      throw new RangeError(`learn window must be a positive number of ms (got ${options.windowMs})`);
    }
    this.clock = options.clock ?? Date.now;
  }

  get windowMs(): number {
    return this.options.windowMs;
  }

  /** Opens the window (again, forgetting what an earlier window collected). */
  start(): void {
    this.seen.clear();
    this.startedAt = this.clock();
    this.endedAt = undefined;
  }

  /** Whether the window is open at this instant. */
  get active(): boolean {
    return this.startedAt !== undefined && this.endedAt === undefined && this.clock() < this.startedAt + this.options.windowMs;
  }

  /** When the open window closes (ms since epoch), if one is open. */
  get endsAt(): number | undefined {
    return this.startedAt !== undefined && this.endedAt === undefined ? this.startedAt + this.options.windowMs : undefined;
  }

  /** Records a device seen now; false when no window is open. */
  observe(device: PolicyDevice, covered = false): boolean {
    if (!this.active) return false;
    const now = this.clock();
    const known = this.seen.get(device.key);
    if (known) {
      known.lastSeen = now;
      known.seen++;
      return true;
    }
    let rule = "";
    let error: string | undefined;
    try {
      rule = ruleForDevice(device, "allow", { withPort: this.options.withPort, withHash: this.options.withHash });
    } catch (err) {
      error = (err as Error).message;
    }
    this.seen.set(device.key, {
      key: device.key,
      device: summarize(device),
      rule,
      ...(error ? { error } : {}),
      firstSeen: now,
      lastSeen: now,
      seen: 1,
      covered,
    });
    return true;
  }

  /** What has been collected so far, without closing the window. */
  snapshot(): LearnResult {
    const started = this.startedAt ?? this.clock();
    const end = this.endedAt ?? Math.min(this.clock(), started + this.options.windowMs);
    const devices = [...this.seen.values()].map((d) => ({ ...d, device: { ...d.device } }));
    const rules: string[] = [];
    for (const d of devices) {
      if (!d.covered && d.rule && !rules.includes(d.rule)) rules.push(d.rule);
    }
    return {
      started,
      ended: end,
      windowMs: this.options.windowMs,
      complete: end >= started + this.options.windowMs,
      devices,
      rules,
      text: rules.length > 0 ? rules.join("\n") + "\n" : "",
    };
  }

  /** Closes the window and returns what it collected. */
  finish(): LearnResult {
    if (this.startedAt !== undefined && this.endedAt === undefined) {
      this.endedAt = Math.min(this.clock(), this.startedAt + this.options.windowMs);
    }
    return this.snapshot();
  }
}
