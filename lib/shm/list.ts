// The rings present in /dev/shm, for the editor's ring lists. Only a file's
// first header bytes are read: no segment is mapped, no reader registered.
import fs from "fs";
import path from "path";
import { isValidRingName } from "./names";

// docs/shm-format.md: the magic, then content_type_len at 88 and content_type at 128.
const MAGIC = Buffer.from("DVPRING\0", "latin1");
const CONTENT_TYPE_LEN_AT = 88;
const CONTENT_TYPE_AT = 128;
const CONTENT_TYPE_MAX = 256;
const HEAD = CONTENT_TYPE_AT + CONTENT_TYPE_MAX;

export interface RingEntry {
  name: string;
  contentType: string;
}

export function listRings(dir = "/dev/shm"): RingEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const rings: RingEntry[] = [];
  for (const name of names.sort()) {
    if (!isValidRingName(name)) continue;
    let fd: number | undefined;
    try {
      // O_NONBLOCK: a FIFO planted under a ring's name must not hang the listing.
      fd = fs.openSync(path.join(dir, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      if (!fs.fstatSync(fd).isFile()) continue;
      const head = Buffer.alloc(HEAD);
      if (fs.readSync(fd, head, 0, HEAD, 0) < HEAD || !head.subarray(0, MAGIC.length).equals(MAGIC)) continue;
      const length = head.readUInt32LE(CONTENT_TYPE_LEN_AT);
      rings.push({ name, contentType: length < CONTENT_TYPE_MAX ? head.toString("utf8", CONTENT_TYPE_AT, CONTENT_TYPE_AT + length) : "" });
    } catch {
      // Another user's ring (mode 0600), or one that went away meanwhile.
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  return rings;
}
