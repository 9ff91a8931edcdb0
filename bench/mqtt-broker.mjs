// An aedes broker in its own process, as `npm start` runs one beside Node-RED.
// Usage: node mqtt-broker.mjs PORT  (prints "ready" once listening)
import net from "node:net";
import { Aedes } from "aedes";

const port = Number(process.argv[2] ?? 1883);
const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
server.listen(port, "127.0.0.1", () => console.log("ready"));
const stop = () => server.close(() => broker.close(() => process.exit(0)));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
