// Where the node's uevents come from: the addon's netlink monitor when this
// build has one. Tests swap the factory to feed their own messages.
import { NetlinkUeventSource } from "../hotplug/netlink";
import { addon } from "../native";
import type { UeventSource } from "./uevent";

export type UeventSourceFactory = () => UeventSource | { unavailable: string };

export function netlinkSource(): UeventSource | { unavailable: string } {
  try {
    if (typeof addon().UeventMonitor !== "function") {
      return { unavailable: "this build of the devplane addon has no uevent monitor" };
    }
  } catch (err) {
    return { unavailable: `the devplane addon did not load (${(err as Error).message})` };
  }
  return new NetlinkUeventSource("auto");
}

let factory: UeventSourceFactory = netlinkSource;

/** Replaces the factory (undefined restores the netlink one); returns the previous one. */
export function setUeventSourceFactory(next?: UeventSourceFactory): UeventSourceFactory {
  const previous = factory;
  factory = next ?? netlinkSource;
  return previous;
}

export function createUeventSource(): UeventSource | { unavailable: string } {
  return factory();
}
