// One serial device, followed by its stable id across unplug and replug.
//
// States: idle (nothing to open yet) → waiting (the device is not there) →
// opening → open; open → disconnected (unplugged) or removed (device-detect
// said so) → open again when the device comes back; closed is final.
import { EventEmitter } from "events";
import fs from "fs";
import { SerialPort } from "serialport";
import { serialPathOf } from "../profiles/device";
import type { DeviceEvent } from "../profiles/types";
import { classifyOpenError, SerialError } from "./errors";
import { hangupAwareBinding } from "./hangup";
import { BY_ID_DIR, eventHasPath, findBySerial, parseStableId, serialOf } from "./follow";
import { checkSplitOptions, Frame, SplitOptions, Splitter } from "./splitter";

export interface PortSettings {
  baudRate: number;
  dataBits?: 5 | 6 | 7 | 8;
  parity?: "none" | "even" | "odd" | "mark" | "space";
  stopBits?: 1 | 1.5 | 2;
  rtscts?: boolean;
}

export interface Target {
  /** a tty or a /dev/serial/by-id link */
  path?: string;
  /** device-detect's stable id */
  id?: string;
  serial?: string;
  /** a name to show, such as the profile's */
  name?: string;
  /** set by the node's own configuration: events for other devices never replace it */
  fixed?: boolean;
}

export type LinkState = "idle" | "waiting" | "opening" | "open" | "disconnected" | "removed" | "error" | "closed";

export interface LinkInfo {
  state: LinkState;
  path?: string;
  id?: string;
  name?: string;
}

/** The part of SerialPort the link uses, so tests can stand in for it. */
export interface PortLike {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  write(data: Buffer, cb?: (err: Error | null | undefined) => void): boolean;
  drain(cb: (err: Error | null) => void): void;
  on(event: "data", fn: (chunk: Buffer) => void): this;
  on(event: "close", fn: (err?: Error & { disconnected?: boolean }) => void): this;
  on(event: "error", fn: (err: Error) => void): this;
  removeAllListeners(): this;
}

export interface LinkOptions {
  settings: PortSettings;
  split: SplitOptions;
  /** reopen after unplug, as soon as the device is found again (default true) */
  autoReconnect?: boolean;
  /** how often to look for a missing device, ms */
  retryMs?: number;
  byIdDir?: string;
  groupFile?: string;
  openPort?: (path: string, settings: PortSettings) => PortLike;
  now?: () => number;
  /**
   * Asked before every open, reconnects included: a refusal (its reason) keeps
   * the device closed. Used for the policy a node references.
   */
  admit?: (path: string, target: Readonly<Target>) => Promise<string | undefined>;
}

export interface DisconnectInfo {
  path?: string;
  id?: string;
  reason: "unplugged" | "removed" | "replaced";
  error?: string;
}

let binding: ReturnType<typeof hangupAwareBinding> | undefined;

function defaultOpen(path: string, s: PortSettings): PortLike {
  const options = {
    path,
    baudRate: s.baudRate,
    dataBits: s.dataBits ?? 8,
    parity: s.parity ?? "none",
    stopBits: s.stopBits ?? 1,
    rtscts: s.rtscts ?? false,
    autoOpen: false,
    // flock: a second program (or a stale node) cannot share the port unnoticed.
    lock: true,
    // SerialPort's own options leave the binding out of their type, but take it.
    binding: (binding ??= hangupAwareBinding()),
  };
  return new SerialPort(options) as unknown as PortLike;
}

export class SerialLink extends EventEmitter {
  private target: Target = {};
  private port: PortLike | undefined;
  private splitter: Splitter;
  private _state: LinkState = "idle";
  private retry: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private attempting: Promise<void> | undefined;
  private again = false;
  private generation = 0;
  private lastFailure = "";
  private closing = false;
  private readonly opts: Required<Omit<LinkOptions, "groupFile" | "admit">> & Pick<LinkOptions, "groupFile" | "admit">;

  constructor(options: LinkOptions) {
    super();
    this.opts = {
      autoReconnect: true,
      retryMs: 1000,
      byIdDir: BY_ID_DIR,
      openPort: defaultOpen,
      now: () => Date.now(),
      ...options,
    };
    this.splitter = new Splitter(options.split);
  }

  override on(event: "data", fn: (frame: Frame, info: LinkInfo) => void): this;
  override on(event: "state", fn: (state: LinkState, info: LinkInfo & { error?: SerialError }) => void): this;
  override on(event: "connected", fn: (info: LinkInfo) => void): this;
  override on(event: "disconnected", fn: (info: DisconnectInfo) => void): this;
  /** not "error": an EventEmitter throws an "error" that nobody listens to */
  override on(event: "failure", fn: (err: SerialError) => void): this;
  override on(event: string, fn: (...args: never[]) => void): this {
    return super.on(event, fn as (...args: unknown[]) => void);
  }

  get state(): LinkState {
    return this._state;
  }

  get info(): LinkInfo {
    return { state: this._state, path: this.target.path, id: this.target.id, name: this.target.name };
  }

  get settings(): PortSettings {
    return this.opts.settings;
  }

  /** New splitting (from the next open) or reconnect choice (at once). */
  configure(changes: { split?: SplitOptions; autoReconnect?: boolean }): void {
    if (changes.split) {
      checkSplitOptions(changes.split);
      this.opts.split = changes.split;
    }
    if (changes.autoReconnect !== undefined) this.opts.autoReconnect = changes.autoReconnect;
  }

  /** Follows this device from now on, closing the one before if it differs. */
  async follow(target: Target, settings?: PortSettings): Promise<void> {
    if (this.closing) return;
    const same =
      (target.id !== undefined && target.id === this.target.id) || (target.id === undefined && target.path !== undefined && target.path === this.target.path);
    const settingsChanged = settings !== undefined && JSON.stringify(settings) !== JSON.stringify(this.opts.settings);
    if (settings) this.opts.settings = settings;
    if (same && !settingsChanged) {
      // The same device, perhaps at a new path (replug): keep what is known.
      this.target = { ...this.target, ...defined(target) };
      if (this._state !== "open" && this._state !== "opening") this.kick();
      return;
    }
    this.generation++;
    if (this.port) await this.closePort(same ? undefined : "replaced");
    this.target = { ...target };
    if (this.target.id && !this.target.serial) this.target.serial = parseStableId(this.target.id).serial;
    this.kick();
  }

  /**
   * A device-detect event, with what device-profile said about it (the path
   * to open, the port settings, a name). Returns false when it is about
   * another device and was ignored because this link already has one.
   */
  async deviceEvent(event: DeviceEvent, hints: { path?: string; settings?: PortSettings; name?: string } = {}): Promise<boolean> {
    if (this.closing || typeof event.action !== "string") return false;
    const t = this.target;
    const mine = t.id !== undefined ? event.id === t.id : t.path !== undefined && eventHasPath(event, t.path);
    const path = hints.path ?? serialPathOf(event);
    if (!mine) {
      if (event.action === "remove" || !path) return false;
      // The device followed so far keeps its place until device-detect says it
      // is gone: an unplugged board is waited for, not swapped for the next one.
      const free = (t.id === undefined && t.path === undefined) || this._state === "removed" || this._state === "idle";
      if (t.fixed || !free) return false;
      await this.follow({ id: event.id, path, serial: serialOf(event), name: hints.name ?? t.name }, hints.settings);
      return true;
    }
    if (t.id === undefined && typeof event.id === "string") this.target.id = event.id;
    const serial = serialOf(event);
    if (serial && !this.target.serial) this.target.serial = serial;
    if (hints.name) this.target.name = hints.name;
    if (event.action === "remove") {
      this.cancelRetry();
      // An open in flight must not bring the removed device back.
      this.generation++;
      const info: DisconnectInfo = { path: this.target.path, id: this.target.id, reason: "removed" };
      const wasOpen = this.port !== undefined;
      if (this.port) await this.closePort(undefined);
      this.setState("removed");
      if (wasOpen) this.emit("disconnected", info);
      return true;
    }
    // Settings and path apply from the next open: a repeated "present" must not reset an open port.
    if (hints.settings) this.opts.settings = hints.settings;
    const active = this._state === "open" || this._state === "opening";
    if (path && !active) this.target.path = path;
    const wasLost = this._state === "disconnected" || this._state === "removed" || this._state === "error";
    if (!active && (this.opts.autoReconnect || !wasLost)) this.kick(true);
    return true;
  }

  async write(data: Buffer): Promise<void> {
    const port = this.port;
    if (!port || this._state !== "open") {
      const where = this.target.path ?? this.target.id ?? "a device";
      throw new SerialError("ENOTCONN", `not connected: waiting for ${where}`, { device: where });
    }
    await new Promise<void>((resolve, reject) => {
      port.write(data, (err) => (err ? reject(new SerialError("EWRITE", `write failed: ${err.message}`, { error: err.message })) : undefined));
      port.drain((err) => (err ? reject(new SerialError("EWRITE", `write failed: ${err.message}`, { error: err.message })) : resolve()));
    });
  }

  /** Closes the port and stops following; resolves when the port (and its lock) is released. */
  async close(): Promise<void> {
    this.closing = true;
    this.cancelRetry();
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    // An open in flight finishes first, then its port is closed below.
    while (this.attempting) await this.attempting;
    if (this.port) await this.closePort(undefined);
    this.setState("closed");
  }

  /** Starts an attempt now, or after the one in flight. */
  private kick(resetFailure = false): void {
    if (resetFailure) this.lastFailure = "";
    this.cancelRetry();
    if (this.attempting) {
      this.again = true;
      return;
    }
    this.attempting = this.attempt().finally(() => {
      this.attempting = undefined;
      if (this.again && !this.closing && this._state !== "open") {
        this.again = false;
        this.kick();
      }
      this.again = false;
    });
  }

  /** Where the device is now, if anywhere. */
  private locate(): string | undefined {
    const t = this.target;
    if (t.path && fs.existsSync(t.path)) return t.path;
    if (t.serial) {
      const found = findBySerial(t.serial, this.opts.byIdDir, t.path);
      if (found) return found;
    }
    return undefined;
  }

  /** Should the link look for the device on a timer (rather than wait for an event)? */
  private shouldPoll(): boolean {
    if (this.closing) return false;
    const t = this.target;
    if (this._state === "removed") return t.serial !== undefined && this.opts.autoReconnect;
    if (this._state === "disconnected" || this._state === "error") {
      // A device known by id without a serial number could come back at a
      // path another device has taken: only an event can say where it is.
      return this.opts.autoReconnect && (t.id === undefined || t.serial !== undefined);
    }
    return t.path !== undefined || t.serial !== undefined;
  }

  private async attempt(): Promise<void> {
    if (this.closing) return;
    const gen = this.generation;
    const path = this.locate();
    if (!path) {
      if (this._state !== "disconnected" && this._state !== "removed" && this._state !== "error") {
        this.setState(this.target.path || this.target.serial ? "waiting" : "idle");
      }
      this.scheduleRetry();
      return;
    }
    if (this.opts.admit) {
      const refusal = await this.opts.admit(path, this.target);
      if (this.closing || gen !== this.generation) return;
      if (refusal) {
        const failure = new SerialError("EPOLICY", `${path}: ${refusal}`, { path, error: refusal });
        this.setState("error", failure);
        if (failure.message !== this.lastFailure) this.emit("failure", failure);
        this.lastFailure = failure.message;
        // A grant or a rules change may allow it later.
        this.scheduleRetry(3);
        return;
      }
    }
    this.setState("opening");
    const port = this.opts.openPort(path, this.opts.settings);
    const err = await new Promise<Error | null>((resolve) => port.open((e) => resolve(e)));
    if (err) {
      const failure = classifyOpenError(err, path, this.opts.groupFile);
      if (failure.code === "ENOENT") this.setState(this.target.id ? "disconnected" : "waiting");
      else {
        this.setState("error", failure);
        if (failure.message !== this.lastFailure) this.emit("failure", failure);
      }
      this.lastFailure = failure.message;
      if (failure.code === "ENOENT" || this.opts.autoReconnect) this.scheduleRetry(failure.code === "ENOENT" ? 1 : 3);
      return;
    }
    if (this.closing || gen !== this.generation) {
      await new Promise<void>((resolve) => port.close(() => resolve()));
      return;
    }
    this.port = port;
    this.target.path = path;
    this.lastFailure = "";
    this.splitter = new Splitter(this.opts.split);
    port.on("data", (chunk: Buffer) => this.onData(chunk));
    port.on("error", (e: Error) => this.emit("failure", new SerialError("EOPEN", `${path}: ${e.message}`, { path, error: e.message })));
    // Its error ("bad file descriptor" for an unplug) would only confuse a user.
    port.on("close", () => this.onClosed(port));
    this.setState("open");
    this.emit("connected", this.info);
  }

  private onData(chunk: Buffer): void {
    for (const frame of this.splitter.push(chunk, this.opts.now())) this.emit("data", frame, this.info);
    this.scheduleTick();
  }

  private scheduleTick(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    const due = this.splitter.deadline();
    if (due === undefined) return;
    this.tickTimer = setTimeout(() => {
      this.tickTimer = undefined;
      for (const frame of this.splitter.tick(this.opts.now())) this.emit("data", frame, this.info);
      this.scheduleTick();
    }, Math.max(0, due - this.opts.now()));
  }

  private flushFrames(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    for (const frame of this.splitter.flush()) this.emit("data", frame, this.info);
  }

  /** The port closed by itself: the device went away. */
  private onClosed(port: PortLike): void {
    if (this.port !== port) return;
    this.port = undefined;
    port.removeAllListeners();
    this.flushFrames();
    if (this.closing) return;
    this.setState("disconnected");
    this.emit("disconnected", { path: this.target.path, id: this.target.id, reason: "unplugged" } satisfies DisconnectInfo);
    this.scheduleRetry();
  }

  /** Closes the port on purpose; the close event is then not a disconnect. */
  private async closePort(reason: DisconnectInfo["reason"] | undefined): Promise<void> {
    const port = this.port;
    if (!port) return;
    this.port = undefined;
    port.removeAllListeners();
    // A close error means the fd is already gone; nothing is left to release.
    port.on("error", () => undefined);
    this.flushFrames();
    await new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
    if (reason) this.emit("disconnected", { path: this.target.path, id: this.target.id, reason } satisfies DisconnectInfo);
  }

  private scheduleRetry(factor = 1): void {
    this.cancelRetry();
    if (!this.shouldPoll()) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.kick();
    }, this.opts.retryMs * factor);
  }

  private cancelRetry(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
  }

  private setState(state: LinkState, error?: SerialError): void {
    if (state === this._state && !error) return;
    this._state = state;
    this.emit("state", state, error ? { ...this.info, error } : this.info);
  }
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
