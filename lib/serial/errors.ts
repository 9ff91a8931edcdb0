// Errors a hobbyist can act on: which group to join, which program holds the
// port. The serialport bindings report open failures as text without an errno
// code, so they are classified by their wording.
import fs from "fs";
import os from "os";

export type SerialErrorCode = "ENOENT" | "EACCES" | "EBUSY" | "ENOTTY" | "EOPEN" | "ENOTCONN" | "EPAYLOAD" | "EWRITE" | "ECONFIG" | "EPOLICY";

export class SerialError extends Error {
  constructor(
    readonly code: SerialErrorCode,
    message: string,
    /** values for the i18n sentence of the same meaning */
    readonly details: Record<string, string | number> = {},
  ) {
    super(message);
    this.name = "SerialError";
  }
}

/** The name of a group id, from /etc/group (no libc call is available to Node). */
export function groupName(gid: number, groupFile = "/etc/group"): string | undefined {
  try {
    for (const line of fs.readFileSync(groupFile, "utf8").split("\n")) {
      const [name, , id] = line.split(":");
      if (name && Number(id) === gid) return name;
    }
  } catch {
    /* no group file: the caller says "its group" instead */
  }
  return undefined;
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return "$USER";
  }
}

/** What to do about EACCES on `path`, from the device node's own owner group and mode. */
export function permissionError(path: string, groupFile?: string): SerialError {
  const user = currentUser();
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(path);
  } catch {
    st = undefined;
  }
  if (!st) {
    return new SerialError("EACCES", `permission denied opening ${path}: add the user ${user} to the group that owns it (usually dialout), then log in again`, { path, user, group: "dialout", kind: "unknown" });
  }
  const group = groupName(st.gid, groupFile) ?? String(st.gid);
  const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
  if ((st.mode & 0o060) === 0o060 && st.gid !== 0) {
    return new SerialError(
      "EACCES",
      `permission denied opening ${path}: it belongs to the group ${group}; add the user ${user} to it (sudo usermod -aG ${group} ${user}), then log in again or restart Node-RED`,
      { path, user, group, mode, kind: "group" },
    );
  }
  return new SerialError(
    "EACCES",
    `permission denied opening ${path}: its mode ${mode} gives its group ${group} no read and write access; a udev rule must grant it (for example GROUP="dialout", MODE="0660"), then add the user ${user} to that group`,
    { path, user, group, mode, kind: "mode" },
  );
}

export function busyError(path: string): SerialError {
  return new SerialError(
    "EBUSY",
    `${path} is in use by another program (a serial monitor, another flow, ModemManager or brltty); close it or stop that service`,
    { path },
  );
}

/** The open failure as a SerialError with advice. */
export function classifyOpenError(err: unknown, path: string, groupFile?: string): SerialError {
  if (err instanceof SerialError) return err;
  const e = err as NodeJS.ErrnoException;
  const text = `${e?.code ?? ""} ${e?.message ?? String(err)}`;
  if (/EACCES|permission denied/i.test(text)) return permissionError(path, groupFile);
  if (/ENOENT|no such file/i.test(text)) return new SerialError("ENOENT", `${path} does not exist (yet)`, { path });
  if (/cannot lock port|resource temporarily unavailable|EAGAIN|EBUSY|resource busy/i.test(text)) return busyError(path);
  if (/ENOTTY|inappropriate ioctl/i.test(text)) return new SerialError("ENOTTY", `${path} is not a serial port`, { path });
  if (/ENXIO|ENODEV|no such device/i.test(text)) return new SerialError("ENOENT", `${path} is gone (the device was unplugged)`, { path });
  return new SerialError("EOPEN", `cannot open ${path}: ${e?.message ?? String(err)}`, { path, error: e?.message ?? String(err) });
}
