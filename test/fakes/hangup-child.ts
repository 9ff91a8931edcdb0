// A read that runs after the tty hung up. Run with UV_THREADPOOL_SIZE=1:
// serialport reads on libuv's thread pool, so while the one pool thread is
// held (a blocking read of a FIFO), the read serialport starts when bytes
// arrive waits in the queue; the device is unplugged meanwhile, and the
// read then runs on a hung-up tty, where it returns 0. Prints one JSON line:
// whether the link saw the disconnect.
import { execFileSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { LinkState, SerialLink } from "../../lib/serial";
import { eventually } from "../support/rings";
import { openPty } from "./pty";

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dp-hangup-"));
  const fifo = path.join(dir, "hold");
  execFileSync("mkfifo", [fifo]);
  // Read-write, so that opening does not wait for a writer.
  const holdFd = fs.openSync(fifo, fs.constants.O_RDWR);
  const dev = await openPty();
  const link = new SerialLink({ settings: { baudRate: 115200 }, split: { mode: "delimiter", delimiter: Buffer.from("\n") }, retryMs: 50 });
  const states: LinkState[] = [];
  link.on("state", (s) => states.push(s));
  let result: { disconnected: boolean; states: LinkState[]; error?: string };
  try {
    await link.follow({ path: dev.path });
    await eventually(() => link.state === "open", "the port to open");
    const released = new Promise<void>((resolve) => fs.read(holdFd, Buffer.alloc(1), 0, 1, null, () => resolve()));
    // The bytes are in the tty when send() resolves: the poller wakes and a read is queued behind the held thread.
    await dev.send("late");
    await new Promise((r) => setImmediate(r));
    await dev.unplug();
    fs.writeSync(holdFd, "x");
    await released;
    await eventually(() => link.state === "disconnected", "the disconnect");
    result = { disconnected: true, states };
  } catch (err) {
    result = { disconnected: false, states, error: (err as Error).message };
  } finally {
    await link.close();
    dev.dispose();
    fs.closeSync(holdFd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

void main();
