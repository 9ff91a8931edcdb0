// A fake serial device: a pseudo-terminal whose master side a python3 child
// holds. The code under test opens the slave path as it would /dev/ttyACM0.
// "Unplugging" closes the master, and the kernel hangs the slave up as it
// does a USB serial port whose device goes away: its reads return 0 from then
// on (EIO in the instant before), its poll says POLLHUP|POLLERR, and bytes not
// yet read are lost.
import { ChildProcess, spawn } from "child_process";
import fs from "fs";
import { SerialPort } from "serialport";
import { eventually } from "../support/rings";

// Commands on stdin, one per line: W <hex> writes to the device side (and
// has the kernel deliver it to the tty), D <hex> does that and waits until
// the program under test has read it, E 1|0 turns echo on or off, C closes
// the master (unplug).
// Reports on stdout: P <slave path>, R <hex> for bytes the program under test wrote,
// A <n> after each write, X when the master is closed.
const PY = String.raw`
import fcntl, os, pty, select, struct, sys, termios, time, tty
m, s = pty.openpty()
tty.setraw(s)
path = os.ttyname(s)
sys.stdout.write("P %s\n" % path); sys.stdout.flush()
echo = False
inp = sys.stdin.fileno()
buf = b""
while True:
    r, _, _ = select.select([m, inp], [], [])
    if m in r:
        try:
            d = os.read(m, 65536)
        except OSError:
            d = b""
        if d:
            sys.stdout.write("R %s\n" % d.hex()); sys.stdout.flush()
            if echo:
                os.write(m, d)
    if inp in r:
        chunk = os.read(inp, 65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            cmd, _, arg = line.decode().partition(" ")
            if cmd == "W" or cmd == "D":
                data = bytes.fromhex(arg)
                n = 0
                while n < len(data):
                    n += os.write(m, data[n:])
                # The bytes reach the slave through a kernel worker; polling the
                # slave runs it now, so that they are there when this acks.
                select.select([s], [], [], 0)
                if cmd == "D":
                    # The slave's input queue empties once the program under test has read them.
                    while struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0\0\0\0"))[0] > 0:
                        time.sleep(0.001)
                sys.stdout.write("A %d\n" % n); sys.stdout.flush()
            elif cmd == "E":
                echo = arg == "1"
                sys.stdout.write("A 0\n"); sys.stdout.flush()
            elif cmd == "C":
                os.close(m)
                os.close(s)
                sys.stdout.write("X\n"); sys.stdout.flush()
                sys.exit(0)
`;

export interface FakePty {
  /** the slave side, /dev/pts/N */
  path: string;
  proc: ChildProcess;
  /** everything the program under test wrote to the port */
  received(): Buffer;
  /** the device sends these bytes; resolves once they are in the tty, ready to be read */
  send(data: Buffer | string): Promise<void>;
  /**
   * The same, resolving once the program under test has read them: bytes
   * still queued in the tty when it hangs up are lost, as they are when a
   * real device is pulled, so a test that unplugs right after sending waits
   * for this.
   */
  sendRead(data: Buffer | string): Promise<void>;
  echo(on: boolean): Promise<void>;
  /** closes the master: the device is gone */
  unplug(): Promise<void>;
  /** ends the child if still running */
  dispose(): void;
}

export async function openPty(): Promise<FakePty> {
  const proc = spawn("python3", ["-u", "-c", PY], { stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  const errors: string[] = [];
  let partial = "";
  let received = Buffer.alloc(0);
  let acks = 0;
  let closed = false;
  proc.stdout?.on("data", (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (line.startsWith("R ")) received = Buffer.concat([received, Buffer.from(line.slice(2), "hex")]);
      else if (line.startsWith("A ")) acks++;
      else if (line === "X") closed = true;
      else lines.push(line);
    }
  });
  proc.stderr?.on("data", (d: Buffer) => errors.push(d.toString()));
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
  const first = await eventually(() => lines.find((l) => l.startsWith("P ")) ?? (errors.length > 0 ? `E ${errors.join("")}` : undefined), "the pty path");
  if (first.startsWith("E ")) throw new Error(`the pty helper failed: ${first.slice(2)}`);
  const command = async (line: string): Promise<void> => {
    const want = acks + 1;
    proc.stdin?.write(`${line}\n`);
    await eventually(() => acks >= want || closed, `the pty helper to run ${line.slice(0, 20)}`);
  };
  return {
    path: first.slice(2),
    proc,
    received: () => received,
    send: (data) => command(`W ${Buffer.from(data).toString("hex")}`),
    sendRead: (data) => command(`D ${Buffer.from(data).toString("hex")}`),
    echo: (on) => command(`E ${on ? 1 : 0}`),
    unplug: async () => {
      proc.stdin?.write("C\n");
      await eventually(() => closed, "the pty master to close");
      await exited;
    },
    dispose: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    },
  };
}

/** Device paths this process holds open (what a leaked port would show). */
export function ttyFds(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith("/dev/pts/") || target.startsWith("/dev/tty")) out.push(target);
    } catch {
      /* closed while listing */
    }
  }
  return out;
}

/** Can another opener take the port's lock now? */
export async function lockIsFree(p: string): Promise<boolean> {
  const port = new SerialPort({ path: p, baudRate: 9600, autoOpen: false, lock: true });
  const err = await new Promise<Error | null>((resolve) => port.open((e) => resolve(e)));
  if (err) return false;
  await new Promise<void>((resolve) => port.close(() => resolve()));
  return true;
}
