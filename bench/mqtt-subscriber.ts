// The receiving end of the MQTT case in bench/shm.ts: counts frames and
// their latency (now minus the 8-byte CLOCK_MONOTONIC stamp that starts each
// payload), ends after a second without frames, prints one JSON line.
// Usage: node mqtt-subscriber.js PORT TOPIC
import mqtt from "mqtt";
import { addon } from "../lib/native";

const [port, topic] = process.argv.slice(2);
const lat: number[] = [];
let firstStamp = 0;
let lastDone = 0;
let bytes = 0;
let idle: NodeJS.Timeout | undefined;

const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `bench-sub-${process.pid}` });

function finish(): void {
  lat.sort((a, b) => a - b);
  const p = (q: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * q))] : 0);
  console.log(
    JSON.stringify({
      transport: "mqtt",
      bytes,
      frames: lat.length,
      missed: 0,
      elapsed_ns: lastDone - firstStamp,
      p50_ns: p(0.5),
      p99_ns: p(0.99),
    }),
  );
  client.end(true, () => process.exit(0));
}

client.on("message", (_t, payload) => {
  const now = addon().monotonicNowNs();
  // A consumer gets its own copy of the bytes, as with every other transport.
  const copy = Buffer.from(payload);
  const stamp = Number(copy.readBigUInt64LE(0));
  if (!firstStamp) firstStamp = stamp;
  lat.push(now - stamp);
  lastDone = now;
  bytes = copy.length;
  if (idle) clearTimeout(idle);
  idle = setTimeout(finish, 1000);
});

client.on("connect", () => {
  client.subscribe(topic, { qos: 0 }, () => console.log(JSON.stringify({ ready: true })));
});
