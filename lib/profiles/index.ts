// Device profiles: which board or device class a device event describes, and
// how to talk to it. See docs/profiles.md for the database format.
import { compileProfile, CompiledProfile } from "./matcher";
import { validateProfiles } from "./validate";

export { builtinProfiles, databaseDir, readDatabase } from "./database";
export { decodeUdevString, deviceFacts, devicePathFor, isDeviceEvent, parseUdevInterfaces, serialPathOf, serialPathsOf } from "./device";
export { globMatch, globToRegExp } from "./glob";
export { DEFAULT_BAUDRATE, DEFAULT_CONFIG, identify } from "./identify";
export type { Identification, IdentifyOptions } from "./identify";
export { bestMatch, compileProfile, interfaceFromFacts, rank } from "./matcher";
export type { CompiledProfile, MatchOutcome } from "./matcher";
export { displayName, hwdbTrusted, resolveNames } from "./names";
export type { DeviceNames, NameSource } from "./names";
export { clearUsbIdsCache, DEFAULT_USB_IDS_PATHS, parseUsbIds, UsbIds, usbIdsReads } from "./usb-ids";
export { INTERFACES, validateProfiles } from "./validate";
export type * from "./types";

/** User profiles from a device-profiles node, compiled; broken entries are reported and left out. */
export function compileUserProfiles(raw: unknown): { profiles: CompiledProfile[]; errors: string[] } {
  const { profiles, errors } = validateProfiles(raw);
  return { profiles: profiles.map((p, i) => compileProfile(p, "user", i)), errors };
}
