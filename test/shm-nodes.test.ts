// shm-publish and shm-subscribe in a Node-RED runtime (node-red-node-test-helper).
import assert from "assert";
import type { Node } from "node-red";
import { addon } from "../lib/native";
import { helper, shmNodes as nodes } from "./support/red";
import { cleanupRings, eventually, patternFrame, ringName, spawnWriter } from "./support/rings";
import { collect, statuses } from "./support/flow";

type StatusNode = Node & { receive(msg: object): void };

describe("shm nodes in Node-RED", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    cleanupRings();
  });

  it("shm-publish writes each Buffer as a frame and reports msg.shm", async () => {
    const ring = ringName("pub");
    await helper.load(nodes, [
      { id: "p", type: "shm-publish", ring, slots: 4, slotSize: 65536, contentType: "", mode: "600", keep: false, wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const reader = new (addon().RingReader)(ring);
    try {
      const out = collect(helper.getNode("out"));
      const payload = patternFrame(7, 60000);
      helper.getNode("p").receive({ payload, topic: "cam/1", frame: { format: "YUYV", width: 200, height: 150, stride: 400 } });
      await eventually(() => out.length === 1, "the output message");
      assert.deepStrictEqual(out[0].shm, { name: ring, seq: 1, bytes: 60000 });
      const f = reader.tryRead();
      assert.ok(f?.data.equals(payload));
      assert.deepStrictEqual(JSON.parse(f?.meta ?? ""), {
        topic: "cam/1",
        frame: { format: "YUYV", width: 200, height: 150, stride: 400 },
      });
      assert.strictEqual(reader.info().contentType, "video/x-raw,format=YUY2,width=200,height=150,stride=400");
    } finally {
      reader.close();
    }
  });

  it("shm-publish fails bad messages through done(err), so Catch nodes see them, and writes nothing", async () => {
    const ring = ringName("pub-bad");
    await helper.load(nodes, [
      { id: "p", type: "shm-publish", ring, slots: 2, slotSize: 1000, mode: "600", wires: [["out"]] },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "out", type: "helper" },
      { id: "caught", type: "helper" },
    ]);
    const reader = new (addon().RingReader)(ring);
    try {
      const out = collect(helper.getNode("out"));
      const caught = collect(helper.getNode("caught"));
      const p = helper.getNode("p");
      p.receive({ payload: "not a buffer" });
      p.receive({ payload: Buffer.alloc(1001) });
      p.receive({ payload: { a: 1 } });
      await eventually(() => caught.length === 3, "three caught errors");
      const messages = caught.map((m) => (m.error as { message: string }).message);
      assert.match(messages[0], /Buffer.*string/);
      assert.match(messages[1], /1001.*1000/);
      assert.match(messages[2], /Buffer.*object/);
      assert.strictEqual(out.length, 0);
      assert.strictEqual(reader.info().writeSeq, 0);
    } finally {
      reader.close();
    }
  });

  it("shm-publish shows an error and keeps retrying while another process owns the ring", async () => {
    const ring = ringName("pub-busy");
    const other = spawnWriter([ring, "--slots", "2", "--slot-size", "1024"]);
    await other.line(/^ready/);
    await helper.load(nodes, [
      { id: "p", type: "shm-publish", ring, slots: 2, slotSize: 1024, mode: "600", wires: [["out"]] },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "out", type: "helper" },
      { id: "caught", type: "helper" },
    ]);
    const p = helper.getNode("p");
    const seen = statuses(p);
    const caught = collect(helper.getNode("caught"));
    p.receive({ payload: Buffer.from("x") });
    await eventually(() => caught.length === 1, "the busy error");
    assert.match((caught[0].error as { message: string }).message, new RegExp(`already has a writer \\(pid ${other.proc.pid}\\)`));
    other.proc.stdin?.end("exit\n");
    await other.exited;
    await eventually(() => seen.some((s) => s.fill === "green"), "the node to take the ring");
    const out = collect(helper.getNode("out"));
    p.receive({ payload: Buffer.from("y") });
    await eventually(() => out.length === 1, "a published message");
  });

  it("shm-subscribe waits for a writer in another process, then delivers every frame", async () => {
    const ring = ringName("sub");
    await helper.load(nodes, [
      { id: "s", type: "shm-subscribe", ring, delivery: "every", wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const s = helper.getNode("s") as StatusNode;
    const seen = statuses(s);
    const out = collect(helper.getNode("out"));
    await eventually(() => seen.some((x) => x.text === "waiting for writer"), "the waiting status");
    const writer = spawnWriter([ring, "--slots", "16", "--slot-size", "8192", "--size", "5000"]);
    try {
      await writer.line(/^ready/);
      await eventually(() => seen.some((x) => x.fill === "green"), "attached status");
      writer.proc.stdin?.write("write 10\n");
      await eventually(() => out.length === 10, "ten frames");
      out.forEach((m, i) => {
        assert.ok((m.payload as Buffer).equals(patternFrame(i + 1, 5000)), `frame ${i + 1} bytes`);
        assert.strictEqual(m.topic, "test");
        const shm = m.shm as { seq: number; missed: number; contentType: string; meta: { n: number } };
        assert.strictEqual(shm.seq, i + 1);
        assert.strictEqual(shm.missed, 0);
        assert.strictEqual(shm.contentType, "application/x-devplane-test");
        assert.strictEqual(shm.meta.n, i + 1);
      });
    } finally {
      writer.proc.stdin?.end("exit\n");
      await writer.exited;
    }
  });

  it("shm-subscribe follows a writer that is killed and restarted", async () => {
    const ring = ringName("sub-restart");
    const first = spawnWriter([ring, "--slots", "8", "--slot-size", "4096", "--size", "100"]);
    await first.line(/^ready/);
    await helper.load(nodes, [
      { id: "s", type: "shm-subscribe", ring, delivery: "every", wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const out = collect(helper.getNode("out"));
    const seen = statuses(helper.getNode("s"));
    await eventually(() => seen.some((x) => x.fill === "green"), "attached");
    first.proc.stdin?.write("write 2\n");
    await eventually(() => out.length === 2, "frames from the first writer");
    first.proc.kill("SIGKILL");
    await first.exited;
    const second = spawnWriter([ring, "--slots", "8", "--slot-size", "4096", "--size", "100"]);
    try {
      assert.strictEqual(await second.line(/^ready/), "ready 2 took-over");
      second.proc.stdin?.write("write 3\n");
      await eventually(() => out.length === 5, "frames from the second writer");
      const tail = out.slice(2).map((m) => m.shm as { seq: number; generation: number });
      assert.deepStrictEqual(tail.map((x) => [x.generation, x.seq]), [[2, 1], [2, 2], [2, 3]]);
    } finally {
      second.proc.stdin?.end("exit\n");
      await second.exited;
    }
  });

  it("shm-subscribe in snapshot mode emits the newest frame once per input message", async () => {
    const ring = ringName("snap");
    const writer = spawnWriter([ring, "--slots", "4", "--slot-size", "4096", "--size", "64", "--frames", "3"]);
    await writer.line(/^wrote 3$/);
    try {
      await helper.load(nodes, [
        { id: "s", type: "shm-subscribe", ring, delivery: "snapshot", wires: [["out"]] },
        { id: "out", type: "helper" },
      ]);
      const out = collect(helper.getNode("out"));
      const s = helper.getNode("s");
      s.receive({ payload: "go" });
      await eventually(() => out.length === 1, "a snapshot");
      assert.strictEqual((out[0].shm as { seq: number }).seq, 3);
      assert.ok((out[0].payload as Buffer).equals(patternFrame(3, 64)));
      writer.proc.stdin?.write("write 2\n");
      await writer.line(/^wrote 5$/);
      s.receive({ payload: "go" });
      await eventually(() => out.length === 2, "a second snapshot");
      assert.strictEqual((out[1].shm as { seq: number }).seq, 5);
      // No frames arrive without a request.
      await new Promise((r) => setTimeout(r, 300));
      assert.strictEqual(out.length, 2);
    } finally {
      writer.proc.stdin?.end("exit\n");
      await writer.exited;
    }
  });

  it("shm-subscribe in latest mode emits only new frames, at most at its rate", async () => {
    const ring = ringName("latest");
    const writer = spawnWriter([ring, "--slots", "4", "--slot-size", "4096", "--size", "64", "--interval", "5"]);
    await writer.line(/^wrote 20$/);
    try {
      await helper.load(nodes, [
        { id: "s", type: "shm-subscribe", ring, delivery: "latest", rate: 5, wires: [["out"]] },
        { id: "out", type: "helper" },
      ]);
      const out = collect(helper.getNode("out"));
      const start = Date.now();
      await eventually(() => out.length >= 3, "three frames");
      const elapsed = Date.now() - start;
      const seqs = out.map((m) => (m.shm as { seq: number }).seq);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `sequence grows: ${seqs}`);
      // Rate is a ceiling: 3 messages at 5 per second need at least ~400 ms.
      assert.ok(elapsed >= 350, `3 messages came in ${elapsed} ms`);
    } finally {
      writer.proc.stdin?.end("exit\n");
      await writer.exited;
    }
  });

  it("shm-subscribe refuses a bad ring name with an error on every input", async () => {
    await helper.load(nodes, [
      { id: "s", type: "shm-subscribe", ring: "../etc/passwd", delivery: "every", wires: [[]] },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const caught = collect(helper.getNode("caught"));
    helper.getNode("s").receive({ payload: 1 });
    await eventually(() => caught.length === 1, "the error");
    assert.match((caught[0].error as { message: string }).message, /invalid ring name/);
  });
});
