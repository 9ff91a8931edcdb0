// The device inventory: enumerated from sysfs on start, then kept current by
// uevents. A USB device arrives as a burst of events (the device, each
// interface, each tty/video/sound/hidraw child, the driver binds); they are
// gathered per physical device until the burst has been quiet for settleMs,
// and then the device is read from sysfs once, so that hotplug and
// enumeration describe a device with the same code and one event.
import { EventEmitter } from "events";
import { diagnose, HostProbe, SystemProbe } from "./diagnostics";
import { BuildContext, buildOwner, DeviceState, Owner, ownerOf, scanClassNodes, scanUsbDevices, scanUsbDrivers } from "./group";
import { DeviceAction, DeviceEvent, nodePaths, sameState } from "./model";
import { DetectorWarning, SysfsReader } from "./sysfs";
import { UdevDatabase } from "./udevdb";
import { parseUevent, Uevent, UeventParseError, UeventSource } from "./uevent";

/** Time as the detector sees it; tests drive a manual one. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending settle must not keep a finished process alive.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface DetectorOptions {
  /** The directory that plays /sys. Default: $DEVPLANE_SYSFS_ROOT, else /sys. */
  sysfsRoot?: string;
  /** udev's database directory. Default: $DEVPLANE_UDEV_DATA, else /run/udev/data. */
  udevData?: string;
  /** The directory that plays /dev, for node checks. Default: $DEVPLANE_DEV_ROOT, else /dev. */
  devRoot?: string;
  /** Raw uevents; without one the inventory is what start() and resync() find. */
  source?: UeventSource;
  clock?: Clock;
  /** Quiet time that ends a device's burst of uevents (ms). */
  settleMs?: number;
  /** A burst that never goes quiet is read after this long anyway (ms). */
  maxSettleMs?: number;
  /** With kernel uevents (no udevd), how long an add may wait for its nodes to be usable (ms). */
  nodeWaitMs?: number;
  nodePollMs?: number;
  /** Host checks behind diagnostics and node waits. */
  probe?: HostProbe;
  /** Compute diagnostics (default true). */
  diagnostics?: boolean;
  /** Identical warnings within this window are reported once (ms). */
  warningWindowMs?: number;
}

export interface DetectorEvents {
  device: [DeviceEvent];
  warning: [DetectorWarning];
}

interface Pending {
  owner: Owner;
  first: number;
  kernel: boolean;
  timer?: unknown;
  waitStart?: number;
}

interface Known {
  owner: Owner;
  event: DeviceEvent;
}

export function defaultRoots(env: NodeJS.ProcessEnv = process.env): { sysfsRoot: string; udevData: string; devRoot: string } {
  return {
    sysfsRoot: env.DEVPLANE_SYSFS_ROOT || "/sys",
    udevData: env.DEVPLANE_UDEV_DATA || "/run/udev/data",
    devRoot: env.DEVPLANE_DEV_ROOT || "/dev",
  };
}

export class DeviceDetector extends EventEmitter<DetectorEvents> {
  readonly sysfsRoot: string;
  readonly udevData: string;
  readonly devRoot: string;
  private readonly sys: SysfsReader;
  private readonly udev: UdevDatabase;
  private readonly ctx: BuildContext;
  private readonly clock: Clock;
  private readonly probe: HostProbe;
  private readonly source: UeventSource | undefined;
  private readonly settleMs: number;
  private readonly maxSettleMs: number;
  private readonly nodeWaitMs: number;
  private readonly nodePollMs: number;
  private readonly withDiagnostics: boolean;
  private readonly warningWindowMs: number;
  private readonly known = new Map<string, Known>();
  private readonly pending = new Map<string, Pending>();
  private readonly warned = new Map<string, { at: number; suppressed: number }>();
  private running = false;
  private hotplugOn = false;
  private readonly onMessage = (buf: Buffer) => this.handleMessage(buf);
  private readonly onOverflow = (dropped: number) => {
    this.warn({ code: "hotplug-overflow", message: `${dropped} uevents were lost (the system was busy): every device is read again` });
    this.resync();
  };
  private readonly onSourceError = (err: Error) => {
    this.warn({ code: "hotplug-error", message: `hotplug: ${err?.message ?? String(err)}` });
  };

  constructor(options: DetectorOptions = {}) {
    super();
    const roots = defaultRoots();
    this.sysfsRoot = options.sysfsRoot ?? roots.sysfsRoot;
    this.udevData = options.udevData ?? roots.udevData;
    this.devRoot = options.devRoot ?? roots.devRoot;
    const warn = (w: DetectorWarning) => this.warn(w);
    this.sys = new SysfsReader(this.sysfsRoot, warn);
    this.udev = new UdevDatabase(this.udevData, warn);
    this.ctx = { sys: this.sys, udev: this.udev, warn };
    this.clock = options.clock ?? systemClock;
    this.probe = options.probe ?? new SystemProbe({ devRoot: this.devRoot });
    this.source = options.source;
    this.settleMs = options.settleMs ?? 300;
    this.maxSettleMs = options.maxSettleMs ?? 3000;
    this.nodeWaitMs = options.nodeWaitMs ?? 2000;
    this.nodePollMs = options.nodePollMs ?? 50;
    this.withDiagnostics = options.diagnostics ?? true;
    this.warningWindowMs = options.warningWindowMs ?? 60000;
  }

  /** Whether uevents are being received. */
  get hotplug(): boolean {
    return this.hotplugOn;
  }

  /**
   * Starts listening, then enumerates: a device that appears in between is
   * seen by both, and the second look finds nothing new. Returns the devices
   * present, as "present" events.
   */
  start(): DeviceEvent[] {
    if (this.running) return this.inventory();
    this.running = true;
    if (this.source) {
      this.source.on("message", this.onMessage);
      this.source.on("overflow", this.onOverflow);
      this.source.on("error", this.onSourceError);
      try {
        this.source.start();
        this.hotplugOn = true;
      } catch (err) {
        this.detach();
        this.warn({ code: "hotplug-unavailable", message: `hotplug is unavailable (${(err as Error).message}): devices are listed, changes are not followed` });
      }
    }
    const events = this.scan();
    for (const { owner, event } of events) this.known.set(owner.devpath, { owner, event });
    return events.map((e) => e.event);
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    if (this.source && this.hotplugOn) {
      try {
        this.source.stop();
      } catch (err) {
        this.warn({ code: "hotplug-error", message: `hotplug: stopping failed: ${(err as Error).message}` });
      }
    }
    this.detach();
    for (const p of this.pending.values()) if (p.timer !== undefined) this.clock.clearTimeout(p.timer);
    this.pending.clear();
    this.known.clear();
  }

  private detach(): void {
    this.hotplugOn = false;
    this.source?.off("message", this.onMessage);
    this.source?.off("overflow", this.onOverflow);
    this.source?.off("error", this.onSourceError);
  }

  /** The devices known now, as "present" events stamped with the current time. */
  inventory(): DeviceEvent[] {
    const now = this.clock.now();
    return [...this.known.values()]
      .map((k) => ({ ...k.event, action: "present" as const, timestamp: now }))
      .sort((a, b) => (a.syspath < b.syspath ? -1 : a.syspath > b.syspath ? 1 : 0));
  }

  /** One look at the devices present, without changing the inventory. */
  enumerate(): DeviceEvent[] {
    return this.scan().map((e) => e.event);
  }

  private scan(): Array<{ owner: Owner; event: DeviceEvent }> {
    if (!this.sys.exists("/devices") && !this.sys.exists("/class")) {
      this.warn({
        code: "sysfs-missing",
        message: `${this.sysfsRoot} does not look like sysfs (no devices/ or class/): no device can be listed`,
        path: this.sysfsRoot,
      });
      return [];
    }
    this.udev.available();
    const classes = scanClassNodes(this.sys);
    const byBusId = new Map<string, string>();
    for (const [devpath, entry] of classes) if (entry.owner.kind === "usb") byBusId.set(devpath.slice(devpath.lastIndexOf("/") + 1), devpath);
    const usb = new Set(scanUsbDevices(this.sys, byBusId));
    for (const [devpath, entry] of classes) if (entry.owner.kind === "usb") usb.add(devpath);
    const found: Array<{ owner: Owner; state: DeviceState }> = [];
    const ctx: BuildContext = { ...this.ctx, usbDrivers: scanUsbDrivers(this.sys) };
    for (const devpath of usb) {
      const owner: Owner = { kind: "usb", devpath };
      const state = buildOwner(ctx, owner, classes.get(devpath)?.nodes ?? []);
      if (state) found.push({ owner, state });
    }
    for (const entry of classes.values()) {
      if (entry.owner.kind !== "other") continue;
      const state = buildOwner(ctx, entry.owner, entry.nodes);
      if (state) found.push({ owner: entry.owner, state });
    }
    found.sort((a, b) => (a.state.syspath < b.state.syspath ? -1 : a.state.syspath > b.state.syspath ? 1 : 0));
    const diagnostics = this.withDiagnostics ? diagnose(found.map((f) => f.state), this.probe) : [];
    const now = this.clock.now();
    return found.map((f, i) => ({ owner: f.owner, event: this.toEvent("present", f.state, diagnostics[i] ?? [], now) }));
  }

  private toEvent(action: DeviceAction, state: DeviceState, diagnostics: DeviceEvent["diagnostics"], timestamp: number): DeviceEvent {
    return {
      action,
      id: state.id,
      subsystem: state.subsystem,
      path: state.path,
      syspath: state.syspath,
      properties: state.properties,
      usb: state.usb,
      nodes: state.nodes,
      diagnostics,
      timestamp,
    };
  }

  /** Feeds one raw netlink message, in either wire format. */
  handleMessage(buf: Buffer): void {
    if (!Buffer.isBuffer(buf)) {
      this.warn({ code: "uevent-malformed", message: `ignored a hotplug message that is not bytes (${typeof buf})` });
      return;
    }
    let ev: Uevent;
    try {
      ev = parseUevent(buf);
    } catch (err) {
      const reason = err instanceof UeventParseError ? err.message : String(err);
      this.warn({ code: "uevent-malformed", message: `ignored a malformed uevent: ${reason}` });
      return;
    }
    this.handleUevent(ev);
  }

  /** Feeds one parsed uevent. */
  handleUevent(ev: Uevent): void {
    if (!this.running) return;
    if (ev.action === "move" && ev.properties.DEVPATH_OLD) {
      const old = ownerOf(ev.properties.DEVPATH_OLD, ev.subsystem);
      if (old) this.schedule(old, ev.format === "kernel");
    }
    const owner = ownerOf(ev.devpath, ev.subsystem);
    if (!owner) return;
    if (ev.action === "remove" && owner.kind === "usb" && ev.devpath === owner.devpath) {
      // The device itself is gone: its children's removes came before it.
      this.cancel(owner.devpath);
      this.commit(owner, undefined);
      return;
    }
    this.schedule(owner, ev.format === "kernel");
  }

  private cancel(key: string): void {
    const p = this.pending.get(key);
    if (p?.timer !== undefined) this.clock.clearTimeout(p.timer);
    this.pending.delete(key);
  }

  private schedule(owner: Owner, kernel: boolean): void {
    const now = this.clock.now();
    let p = this.pending.get(owner.devpath);
    if (!p) {
      p = { owner, first: now, kernel };
      this.pending.set(owner.devpath, p);
    } else {
      p.kernel ||= kernel;
      p.waitStart = undefined;
      if (p.timer !== undefined) this.clock.clearTimeout(p.timer);
    }
    const delay = Math.max(0, Math.min(this.settleMs, p.first + this.maxSettleMs - now));
    const key = owner.devpath;
    p.timer = this.clock.setTimeout(() => this.settled(key), delay);
  }

  private settled(key: string): void {
    const p = this.pending.get(key);
    if (!p || !this.running) return;
    p.timer = undefined;
    const state = this.read(p.owner);
    if (state && p.kernel) {
      // Kernel events come before udevd has set owners and modes; wait (bounded) for usable nodes.
      const now = this.clock.now();
      p.waitStart ??= now;
      const unusable = nodePaths(state.nodes).some((n) => this.probe.access(n) !== undefined);
      if (unusable && now - p.waitStart < this.nodeWaitMs) {
        p.timer = this.clock.setTimeout(() => this.settled(key), Math.min(this.nodePollMs, p.waitStart + this.nodeWaitMs - now));
        return;
      }
    }
    this.pending.delete(key);
    this.commit(p.owner, state);
  }

  private read(owner: Owner): DeviceState | undefined {
    this.udev.available();
    return buildOwner(this.ctx, owner);
  }

  private commit(owner: Owner, state: DeviceState | undefined): void {
    const key = owner.devpath;
    const prev = this.known.get(key);
    const now = this.clock.now();
    if (!state) {
      if (!prev) return;
      this.known.delete(key);
      this.emitDevice({ ...prev.event, action: "remove", diagnostics: [], timestamp: now });
      return;
    }
    const diagnostics = this.withDiagnostics ? diagnose([state], this.probe)[0] : [];
    if (prev && prev.event.id !== state.id) {
      // Another device in the same place: the remove went unseen.
      this.known.delete(key);
      this.emitDevice({ ...prev.event, action: "remove", diagnostics: [], timestamp: now });
      return this.commit(owner, state);
    }
    const event = this.toEvent(prev ? "change" : "add", state, diagnostics, now);
    if (prev && sameState(prev.event, event)) return;
    this.known.set(key, { owner, event });
    this.emitDevice(event);
  }

  /** Reads every device again and reports what differs from the inventory: removes first, then adds and changes. */
  resync(): void {
    if (!this.running) return;
    const fresh = this.scan();
    const now = this.clock.now();
    const seen = new Map(fresh.map((f) => [f.owner.devpath, f]));
    for (const [key, k] of [...this.known]) {
      const f = seen.get(key);
      if (f && f.event.id === k.event.id) continue;
      // Gone, or another device in its place.
      this.known.delete(key);
      this.emitDevice({ ...k.event, action: "remove", diagnostics: [], timestamp: now });
    }
    for (const { owner, event } of fresh) {
      const prev = this.known.get(owner.devpath);
      if (prev && sameState(prev.event, event)) continue;
      const next: DeviceEvent = { ...event, action: prev ? "change" : "add" };
      this.known.set(owner.devpath, { owner, event: next });
      this.emitDevice(next);
    }
  }

  private emitDevice(event: DeviceEvent): void {
    try {
      this.emit("device", event);
    } catch (err) {
      // Listeners run from timers and the addon's callback, where a throw would end the process.
      this.warn({ code: "hotplug-error", message: `a device listener failed: ${(err as Error)?.message ?? String(err)}` });
    }
  }

  /** Identical warnings are reported once per window, with how many were held back. */
  private warn(w: DetectorWarning): void {
    const key = `${w.code}\0${w.path ?? w.message}`;
    const now = this.clock.now();
    const seen = this.warned.get(key);
    if (seen && now - seen.at < this.warningWindowMs) {
      seen.suppressed++;
      return;
    }
    const message = seen?.suppressed ? `${w.message} (${seen.suppressed} more like it since the last report)` : w.message;
    this.warned.set(key, { at: now, suppressed: 0 });
    if (this.warned.size > 1000) this.warned.clear();
    try {
      this.emit("warning", { ...w, message });
    } catch {
      // A warning listener that throws has nowhere better to report to.
    }
  }
}
