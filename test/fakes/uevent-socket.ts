// Loaded with `node --require` into a Node-RED under test: device-detect's
// uevents come from a Unix socket the test writes to, instead of the netlink
// socket that only the kernel (or udevd) can send on. Each message is a
// 4-byte little-endian length and a datagram in the kernel's or udev's wire
// format (test/fakes/uevents.ts makes them); parsing, settling and everything
// after are the production code.
//
//   DEVPLANE_TEST_UEVENT_SOCKET=/tmp/x/uevents.sock node --require dist/test/fakes/uevent-socket.js ...
import { EventEmitter } from "events";
import fs from "fs";
import net from "net";
import { setUeventSourceFactory } from "../../lib/devices/hotplug";
import type { UeventSource } from "../../lib/devices/uevent";

class SocketUeventSource extends EventEmitter implements UeventSource {
  private server: net.Server | undefined;

  constructor(private readonly socketPath: string) {
    super();
  }

  start(): void {
    fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer((conn) => {
      let pending = Buffer.alloc(0);
      conn.on("data", (d: Buffer) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32LE(0)) {
          const n = pending.readUInt32LE(0);
          this.emit("message", Buffer.from(pending.subarray(4, 4 + n)));
          pending = pending.subarray(4 + n);
        }
      });
    });
    // An idle hotplug source must not keep a stopping Node-RED alive, as the netlink one does not.
    server.unref();
    server.listen(this.socketPath);
    this.server = server;
  }

  stop(): void {
    this.server?.close();
    this.server = undefined;
    fs.rmSync(this.socketPath, { force: true });
  }
}

const socketPath = process.env.DEVPLANE_TEST_UEVENT_SOCKET;
if (socketPath) setUeventSourceFactory(() => new SocketUeventSource(socketPath));

/** Sends uevents to a Node-RED that loaded this file, once its detector listens. */
export async function sendUevents(socket: string, messages: Buffer[]): Promise<void> {
  const frames = Buffer.concat(
    messages.map((m) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(m.length, 0);
      return Buffer.concat([len, m]);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const c = net.connect(socket, () => c.end(frames, () => resolve()));
    c.once("error", reject);
  });
}
