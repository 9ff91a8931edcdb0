// Serial ports for serial-stream: splitting, following a device across
// replug, and errors that say what to do.
export { busyError, classifyOpenError, groupName, permissionError, SerialError } from "./errors";
export type { SerialErrorCode } from "./errors";
export { BY_ID_DIR, byIdNameHasSerial, eventHasPath, findBySerial, parseStableId, serialOf, udevSafe } from "./follow";
export { SerialLink } from "./link";
export type { DisconnectInfo, LinkInfo, LinkOptions, LinkState, PortLike, PortSettings, Target } from "./link";
export { listPorts } from "./list";
export type { PortListing } from "./list";
export * from "./splitter";
