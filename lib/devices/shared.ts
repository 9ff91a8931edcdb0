// One detector per set of roots, shared by every device-detect node and the
// admin route: one netlink socket and one inventory however many nodes there
// are. The first user starts it, the last one out stops it.
import { createUeventSource } from "./hotplug";
import { defaultRoots, DetectorOptions, DeviceDetector } from "./detector";
import type { DetectorWarning } from "./sysfs";

export interface SharedDetector {
  detector: DeviceDetector;
  /** Why hotplug is off, when it is. */
  unavailable: string | undefined;
  /**
   * What the first enumeration warned about, for the user who started the
   * detector (later users find it running and get none, so it is said once).
   */
  startWarnings: DetectorWarning[];
  release(): void;
}

interface Entry {
  detector: DeviceDetector;
  unavailable: string | undefined;
  users: number;
}

const entries = new Map<string, Entry>();

type Roots = Pick<DetectorOptions, "sysfsRoot" | "udevData" | "devRoot">;

function keyOf(roots: Roots): string {
  const d = defaultRoots();
  return JSON.stringify([roots.sysfsRoot ?? d.sysfsRoot, roots.udevData ?? d.udevData, roots.devRoot ?? d.devRoot]);
}

export function acquireDetector(roots: Roots = {}, options: Omit<DetectorOptions, "source" | keyof Roots> = {}): SharedDetector {
  const key = keyOf(roots);
  let entry = entries.get(key);
  const startWarnings: DetectorWarning[] = [];
  if (!entry) {
    const made = createUeventSource();
    const source = "unavailable" in made ? undefined : made;
    const detector = new DeviceDetector({ ...options, ...roots, source });
    entry = { detector, unavailable: "unavailable" in made ? made.unavailable : undefined, users: 0 };
    entries.set(key, entry);
    detector.on("warning", (w) => {
      if (w.code === "hotplug-unavailable" && entry) entry.unavailable = w.message;
    });
    const early = (w: DetectorWarning) => startWarnings.push(w);
    detector.on("warning", early);
    try {
      detector.start();
    } finally {
      detector.off("warning", early);
    }
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    detector: e.detector,
    get unavailable() {
      return e.unavailable;
    },
    startWarnings,
    release() {
      if (released) return;
      released = true;
      if (--e.users > 0) return;
      e.detector.stop();
      e.detector.removeAllListeners();
      if (entries.get(key) === e) entries.delete(key);
    },
  };
}

/** The running detector for these roots, if a node holds one. */
export function runningDetector(roots: Roots = {}): DeviceDetector | undefined {
  return entries.get(keyOf(roots))?.detector;
}
