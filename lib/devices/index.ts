// Device detection: sysfs and the udev database read directly, uevents from
// any UeventSource, one event per physical device (docs/device-event.md).
export * from "./model";
export { DeviceDetector, defaultRoots, systemClock } from "./detector";
export type { Clock, DetectorEvents, DetectorOptions } from "./detector";
export { parseUevent, safeDevpath, UeventParseError, UEVENT_ACTIONS, UDEV_MAGIC, UDEV_HEADER_SIZE, UDEV_PREFIX } from "./uevent";
export type { Uevent, UeventFormat, UeventSource } from "./uevent";
export { compileFilter, globToRegExp, parseIds, parseMatch, parseSubsystems } from "./filters";
export type { DeviceFilter, FilterSpec } from "./filters";
export { diagnose, SystemProbe } from "./diagnostics";
export type { HostProbe, ProcessInfo, ProcessScan, SystemProbeOptions } from "./diagnostics";
export { buildOwner, ownerOf, parentDeviceOf, usbDeviceOf } from "./group";
export type { DeviceState, Owner } from "./group";
export { parseUdevRecord, UdevDatabase } from "./udevdb";
export type { UdevRecord } from "./udevdb";
export type { DetectorWarning, WarningCode } from "./sysfs";
export { acquireDetector, runningDetector } from "./shared";
export type { SharedDetector } from "./shared";
export { createUeventSource, netlinkSource, setUeventSourceFactory } from "./hotplug";
export type { UeventSourceFactory } from "./hotplug";
