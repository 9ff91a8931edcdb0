// Raw uevents from the kernel (or udevd) through the addon's netlink thread.
// Parsing both wire formats happens in lib/devices; this only carries bytes.
import { EventEmitter } from "events";
import { addon, NativeUeventMonitor } from "../native";

export type UeventGroup = "auto" | "udev" | "kernel";

export interface NetlinkSourceEvents {
  message: [Buffer];
  /** The kernel or our queue dropped messages: the inventory may be stale. */
  overflow: [number];
  error: [Error];
}

export class NetlinkUeventSource extends EventEmitter<NetlinkSourceEvents> {
  private monitor: NativeUeventMonitor | undefined;

  constructor(private readonly group: UeventGroup = "auto") {
    super();
  }

  /** Whether this build of the addon can listen for uevents at all. */
  static available(): boolean {
    return typeof addon().UeventMonitor === "function";
  }

  /** "udev" or "kernel" once started. */
  get listening(): "udev" | "kernel" | undefined {
    return this.monitor?.group;
  }

  start(): void {
    if (this.monitor) return;
    const Monitor = addon().UeventMonitor;
    if (!Monitor) throw new Error("this build of devplane has no uevent monitor");
    this.monitor = new Monitor(
      (messages, dropped) => {
        // Runs from the addon's thread-safe callback: a listener's exception must not escape.
        try {
          if (dropped > 0) this.emit("overflow", dropped);
          for (const m of messages) this.emit("message", m);
        } catch (err) {
          if (this.listenerCount("error") > 0) this.emit("error", err as Error);
        }
      },
      { group: this.group },
    );
  }

  stop(): void {
    this.monitor?.stop();
    this.monitor = undefined;
  }
}
