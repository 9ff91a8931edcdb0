// serialport's binding, with reads that notice a hangup.
//
// When a USB serial adapter is unplugged, or a pseudo-terminal's master is
// closed, the kernel hangs the tty up: it gives every open file of it the
// "hung up" file operations, whose read returns 0 (end of file) from then on
// and whose poll says POLLHUP|POLLERR. serialport opens ports non-blocking
// with VMIN 1, where a read with nothing to give fails with EAGAIN, so a read
// of 0 bytes happens only after a hangup. @serialport/bindings-cpp (13.0.0)
// takes 0 for "nothing yet" and reads again at once, for ever: a read that
// was started just before the hangup (bytes had just arrived) and ran just
// after it never ends, and the port never reports its close. A read that is
// waiting when the hangup comes is woken by the poller's error instead, which
// is why the unplug was noticed most of the time only. Here a read of 0 bytes
// is the disconnect it is.
import fs from "fs";
import { promisify } from "util";
import { SerialPort } from "serialport";

type Binding = typeof SerialPort.binding;
type OpenOptions = Parameters<Binding["open"]>[0];
type PortBinding = Awaited<ReturnType<Binding["open"]>>;

/** What the unix bindings (Linux and macOS) expose of their open port. */
interface UnixPortBinding {
  readonly fd: number | null;
  readonly isOpen: boolean;
  readonly poller: { once(event: "readable", cb: (err: Error | null) => void): unknown };
}

const readAsync = promisify(fs.read);

function isUnix(port: object): port is UnixPortBinding & object {
  return "poller" in port && "fd" in port;
}

/** The error serialport's stream takes for "stop reading, the port is closing" rather than for a disconnect. */
function canceled(): Error {
  return Object.assign(new Error("Port is not open"), { canceled: true });
}

/** serialport's unixRead, except that a read of 0 bytes ends the port. */
async function readUntilHangup(port: UnixPortBinding, buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
  for (;;) {
    if (!port.isOpen || port.fd === null) throw canceled();
    let bytesRead: number;
    try {
      ({ bytesRead } = await readAsync(port.fd, buffer, offset, length, null));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EAGAIN" && code !== "EWOULDBLOCK" && code !== "EINTR") throw err;
      if (!port.isOpen) throw canceled();
      await new Promise<void>((resolve, reject) => port.poller.once("readable", (e) => (e ? reject(e) : resolve())));
      continue;
    }
    if (bytesRead > 0) return { buffer, bytesRead };
    throw Object.assign(new Error("the device hung up (it was unplugged)"), { code: "ENXIO", disconnect: true });
  }
}

/** The platform's binding, whose unix ports end at a hangup instead of reading on. */
export function hangupAwareBinding(base: Binding = SerialPort.binding): Binding {
  const open = async (options: OpenOptions): Promise<PortBinding> => {
    const port = await (base.open as (o: OpenOptions) => Promise<PortBinding>)(options);
    if (isUnix(port)) {
      // An own property in front of the class's read; everything else is the binding's.
      Object.defineProperty(port, "read", {
        value: (buffer: Buffer, offset: number, length: number) => readUntilHangup(port, buffer, offset, length),
        configurable: true,
        writable: true,
      });
    }
    return port;
  };
  return { list: () => base.list(), open } as Binding;
}
