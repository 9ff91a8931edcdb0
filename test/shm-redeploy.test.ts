// A redeploy must leave nothing behind: no segment, fd, mapping or thread.
import assert from "assert";
import fs from "fs";
import type { NodeMessage } from "node-red";
import { helper, shmNodes as nodes } from "./support/red";
import {
  assertThreadsBounded,
  cleanupRings,
  devplaneThreads,
  eventually,
  openFds,
  ringName,
  shmEntries,
  threadCount,
} from "./support/rings";

function mappings(ring: string): number {
  return fs
    .readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l.includes(`/dev/shm/${ring}`)).length;
}

describe("deploy and redeploy", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(cleanupRings);

  it("200 cycles leave no segment, fd, mapping or thread behind", async () => {
    const ring = ringName("cycles");
    const flow = (cycle: number) => [
      { id: "p", type: "shm-publish", ring, slots: 4, slotSize: 65536 + (cycle % 2), mode: "600", keep: false, wires: [["out"]] },
      { id: "sub-every", type: "shm-subscribe", ring, delivery: "every", wires: [["got"]] },
      { id: "sub-latest", type: "shm-subscribe", ring, delivery: "latest", rate: 50, wires: [[]] },
      { id: "sub-snap", type: "shm-subscribe", ring, delivery: "snapshot", wires: [[]] },
      { id: "out", type: "helper" },
      { id: "got", type: "helper" },
    ];
    let baseline: { fds: number; threads: number } | undefined;
    for (let cycle = 0; cycle < 200; cycle++) {
      await helper.load(nodes, flow(cycle));
      const got: NodeMessage[] = [];
      helper.getNode("got").on("input", (m: NodeMessage) => got.push(m));
      // Wait until the subscriber is attached, then push a frame all the way through.
      const p = helper.getNode("p");
      await eventually(() => {
        if (got.length) return true;
        p.receive({ payload: Buffer.alloc(1000, cycle & 0xff) });
        return false;
      }, `a frame through cycle ${cycle}`);
      helper.getNode("sub-snap").receive({});
      await helper.unload();
      assert.deepStrictEqual(shmEntries(), [], `segments left after cycle ${cycle}`);
      assert.strictEqual(mappings(ring), 0, `mappings left after cycle ${cycle}`);
      // The first cycles warm up lazily created runtime threads and handles.
      if (cycle === 9) baseline = { fds: openFds(), threads: threadCount() };
    }
    assert.ok(baseline);
    assert.ok(openFds() <= baseline.fds, `fds grew from ${baseline.fds} to ${openFds()}`);
    await eventually(() => devplaneThreads() === 0, "the addon's threads to end");
    assertThreadsBounded(baseline.threads, 40);
  });
});
