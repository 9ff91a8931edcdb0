// A writer in a process of its own, for tests that need one: it creates a
// ring, says "ready", then writes pattern frames on request or on a timer.
//
//   ring-writer NAME --slots N --slot-size B --frames N --interval MS --size B [--keep]
//
// stdin lines: "write N" writes N frames; "exit" closes the ring and exits.
import readline from "readline";
import { RingPublisher } from "../../lib/shm";
import { patternFrame } from "../support/rings";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const name = process.argv[2];
const size = arg("--size", 1024);
let publisher: RingPublisher;
try {
  publisher = new RingPublisher({
    name,
    slots: arg("--slots", 8),
    slotSize: arg("--slot-size", 4096),
    contentType: "application/x-devplane-test",
    keep: process.argv.includes("--keep"),
  });
} catch (err) {
  console.log(`error ${(err as Error).message}`);
  process.exit(1);
}

let n = 0;
function writeOne(): void {
  n++;
  const seq = publisher.publish({ payload: patternFrame(n, size), topic: "test", meta: { n, pid: process.pid } }).seq;
  console.log(`wrote ${seq}`);
}

console.log(`ready ${publisher.generation} ${publisher.tookOver ? "took-over" : "created"}`);
const frames = arg("--frames", 0);
const interval = arg("--interval", 0);
if (interval > 0) {
  const t = setInterval(() => {
    writeOne();
    if (frames > 0 && n >= frames) clearInterval(t);
  }, interval);
} else {
  for (let i = 0; i < frames; i++) writeOne();
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, count] = line.trim().split(/\s+/);
  if (cmd === "write") for (let i = 0; i < Number(count ?? 1); i++) writeOne();
  if (cmd === "exit") {
    publisher.close();
    process.exit(0);
  }
});

// The test that started us is gone: do not outlive it.
process.stdin.on("end", () => {
  publisher.close();
  process.exit(0);
});
