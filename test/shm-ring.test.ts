// The ring through lib/shm and the addon: protocol, faults and security.
import assert from "assert";
import { execFileSync } from "child_process";
import fs from "fs";
import { addon, NativeError } from "../lib/native";
import { RingPublisher, RingSubscriber, RingFrame, PublishError } from "../lib/shm";
import { cleanupRings, eventually, patternFrame, ringName, shmPath, spawnWriter } from "./support/rings";

function nativeCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as NativeError).code;
  }
  return undefined;
}

describe("shared-memory ring", () => {
  afterEach(cleanupRings);

  it("delivers frames with payload, metadata and timestamps intact", () => {
    const name = ringName("roundtrip");
    const pub = new RingPublisher({ name, slots: 4, slotSize: 4096 });
    const reader = new (addon().RingReader)(name);
    try {
      const payload = patternFrame(1, 3000);
      const before = addon().monotonicNowNs();
      const out = pub.publish({ payload, topic: "cam", frame: { format: "GREY", width: 60, height: 50, stride: 60 } });
      assert.deepStrictEqual(out, { name, seq: 1, bytes: 3000 });
      const f = reader.tryRead();
      assert.ok(f);
      assert.ok(f.data.equals(payload));
      assert.strictEqual(f.seq, 1);
      assert.strictEqual(f.missed, 0);
      assert.deepStrictEqual(JSON.parse(f.meta), {
        topic: "cam",
        frame: { format: "GREY", width: 60, height: 50, stride: 60 },
      });
      assert.ok(f.monotonicNs >= before && f.monotonicNs <= addon().monotonicNowNs());
      assert.ok(Math.abs(f.realtimeNs / 1e6 - Date.now()) < 60000);
      assert.strictEqual(reader.info().contentType, "video/x-raw,format=GRAY8,width=60,height=50,stride=60");
      assert.strictEqual(reader.tryRead(), null);
    } finally {
      reader.close();
      pub.close();
    }
  });

  it("takes timestamps from msg.frame when the capture gave them", () => {
    const name = ringName("ts");
    const pub = new RingPublisher({ name, slots: 2, slotSize: 64 });
    const reader = new (addon().RingReader)(name);
    try {
      pub.publish({ payload: Buffer.alloc(4), frame: { ts: 1700000000123, monotonicNs: 4242 } });
      const f = reader.tryRead();
      assert.strictEqual(f?.monotonicNs, 4242);
      assert.strictEqual(f?.realtimeNs, 1700000000123 * 1e6);
    } finally {
      reader.close();
      pub.close();
    }
  });

  it("tells a slow reader how many frames it missed and gives it the oldest still held", () => {
    const name = ringName("overrun");
    const pub = new RingPublisher({ name, slots: 4, slotSize: 256 });
    const reader = new (addon().RingReader)(name);
    try {
      for (let i = 1; i <= 3; i++) pub.publish({ payload: patternFrame(i, 100) });
      assert.strictEqual(reader.tryRead()?.seq, 1);
      for (let i = 4; i <= 20; i++) pub.publish({ payload: patternFrame(i, 100) });
      // Slots hold 17..20; 17's slot is the next to be overwritten, and an
      // overrun resumes halfway through the rest: at 19.
      const f = reader.tryRead();
      assert.strictEqual(f?.seq, 19);
      assert.strictEqual(f?.missed, 17);
      assert.ok(f?.data.equals(patternFrame(19, 100)));
      const status = pub.readers();
      assert.strictEqual(status.length, 1);
      assert.strictEqual(status[0].pid, process.pid);
      assert.strictEqual(status[0].missed, 17);
      assert.strictEqual(status[0].behind, 1);
      assert.strictEqual(reader.tryRead()?.missed, 0);
    } finally {
      reader.close();
      pub.close();
    }
  });

  it("latest() skips to the newest frame and counts the skipped ones", () => {
    const name = ringName("latest");
    const pub = new RingPublisher({ name, slots: 8, slotSize: 64 });
    const reader = new (addon().RingReader)(name);
    try {
      assert.strictEqual(reader.latest(), null);
      for (let i = 1; i <= 5; i++) pub.publish({ payload: patternFrame(i, 10) });
      const f = reader.latest();
      assert.strictEqual(f?.seq, 5);
      assert.strictEqual(f?.missed, 4);
      assert.strictEqual(reader.tryRead(), null);
    } finally {
      reader.close();
      pub.close();
    }
  });

  it("a single-slot ring still hands over every frame a reader keeps up with", () => {
    const name = ringName("one-slot");
    const pub = new RingPublisher({ name, slots: 1, slotSize: 64 });
    const reader = new (addon().RingReader)(name);
    try {
      for (let i = 1; i <= 3; i++) {
        pub.publish({ payload: patternFrame(i, 8) });
        assert.strictEqual(reader.tryRead()?.seq, i);
      }
    } finally {
      reader.close();
      pub.close();
    }
  });

  it("refuses bad payloads before touching the ring", () => {
    const name = ringName("refuse");
    const pub = new RingPublisher({ name, slots: 2, slotSize: 100 });
    const reader = new (addon().RingReader)(name);
    try {
      assert.throws(() => pub.publish({ payload: "text" }), (e: PublishError) => e.code === "ENOTBUFFER" && /got string/.test(e.message));
      assert.throws(() => pub.publish({ payload: Buffer.alloc(101) }), (e: PublishError) =>
        e.code === "ETOOBIG" && e.message === "payload is 101 bytes but a slot holds 100 bytes");
      assert.throws(() => pub.publish({ payload: Buffer.alloc(1), meta: { big: "x".repeat(5000) } }), (e: PublishError) =>
        e.code === "EMETA" && /at most 4032 fit/.test(e.message));
      assert.strictEqual(pub.seq, 0);
      assert.strictEqual(reader.tryRead(), null);
      assert.strictEqual(reader.info().writeSeq, 0);
      pub.publish({ payload: Buffer.alloc(100, 7) });
      assert.strictEqual(reader.tryRead()?.seq, 1);
    } finally {
      reader.close();
      pub.close();
    }
  });

  it("rejects unsafe names everywhere, before any file is touched", () => {
    for (const bad of ["", ".", "..", "a/b", "../etc", "x".repeat(201), "sp ace", "nul\u0000x", "é"]) {
      assert.throws(() => new RingPublisher({ name: bad }), /invalid ring name/, `publisher accepted ${JSON.stringify(bad)}`);
      assert.strictEqual(nativeCode(() => new (addon().RingWriter)(bad, { slots: 1, slotSize: 1, contentType: "", mode: 0o600, keep: false, maxBytes: 1 << 20 })), "EINVAL");
      assert.strictEqual(nativeCode(() => new (addon().RingReader)(bad)), "EINVAL");
      assert.throws(() => new RingSubscriber({ name: bad }), /invalid ring name/);
    }
    assert.ok(addon().ringNameValid("x".repeat(200)));
  });

  it("creates segments 0600 by default and group-readable when asked", () => {
    const a = ringName("mode");
    const b = ringName("mode");
    const old = process.umask(0o022);
    const pa = new RingPublisher({ name: a, slots: 1, slotSize: 16 });
    const pb = new RingPublisher({ name: b, slots: 1, slotSize: 16, mode: "640" });
    process.umask(old);
    try {
      assert.strictEqual(fs.statSync(shmPath(a)).mode & 0o777, 0o600);
      assert.strictEqual(fs.statSync(shmPath(b)).mode & 0o777, 0o640);
      assert.throws(() => new RingPublisher({ name: ringName("mode"), mode: "666" }), /mode must be 600, 640 or 660/);
    } finally {
      pa.close();
      pb.close();
    }
  });

  it("bounds the segment size by configuration", () => {
    assert.throws(
      () => new RingPublisher({ name: ringName("huge"), slots: 64, slotSize: 64 << 20, maxBytes: 256 << 20 }),
      /needs \d+ bytes \(64 slots of 67108864\), more than the limit of 268435456/,
    );
  });

  it("refuses to follow a symbolic link planted at the ring's name", () => {
    const name = ringName("symlink");
    const target = `/tmp/dp-symlink-target-${process.pid}`;
    fs.writeFileSync(target, "keep me");
    fs.symlinkSync(target, shmPath(name));
    try {
      assert.strictEqual(nativeCode(() => new RingPublisher({ name, slots: 1, slotSize: 16 })), "ELOOP");
      assert.strictEqual(nativeCode(() => new (addon().RingReader)(name)), "ESYSTEM");
      assert.strictEqual(fs.readFileSync(target, "utf8"), "keep me");
    } finally {
      fs.unlinkSync(target);
    }
  });

  it("refuses a second writer on a live ring, naming the first", () => {
    const name = ringName("second");
    const pub = new RingPublisher({ name, slots: 2, slotSize: 64 });
    try {
      assert.throws(() => new RingPublisher({ name, slots: 2, slotSize: 64 }), (e: NativeError) =>
        e.code === "EBUSY" && e.message.includes(`already has a writer (pid ${process.pid})`));
    } finally {
      pub.close();
    }
    assert.ok(!fs.existsSync(shmPath(name)), "close unlinks the segment");
  });

  it("keeps the segment on close when asked, and the next writer takes it over", () => {
    const name = ringName("keep");
    const first = new RingPublisher({ name, slots: 2, slotSize: 64, keep: true });
    first.publish({ payload: Buffer.from("one") });
    first.close();
    assert.ok(fs.existsSync(shmPath(name)));
    const second = new RingPublisher({ name, slots: 2, slotSize: 64 });
    try {
      assert.strictEqual(second.tookOver, true);
      assert.strictEqual(second.generation, 2);
      assert.strictEqual(second.publish({ payload: Buffer.from("two") }).seq, 1);
    } finally {
      second.close();
    }
  });

  it("rejects corrupted headers with an error, never a crash", () => {
    const name = ringName("corrupt");
    const pub = new RingPublisher({ name, slots: 2, slotSize: 4096, keep: true });
    pub.close();
    const good = fs.readFileSync(shmPath(name));
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ["magic", (b) => b.write("XXXXXXX", 0), /bad magic/],
      ["version", (b) => b.writeUInt32LE(99, 8), /version 99/],
      ["slot count 0", (b) => b.writeUInt32LE(0, 16), /slot_count 0/],
      ["slot count huge", (b) => b.writeUInt32LE(0xffffffff, 16), /slot_count/],
      ["slot stride too small", (b) => b.writeBigUInt64LE(4096n, 32), /slot_stride/],
      ["slot size huge", (b) => b.writeBigUInt64LE(1n << 50n, 24), /slot_size/],
      ["total size past the file", (b) => b.writeBigUInt64LE(1n << 40n, 40), /total_size/],
      ["unterminated content type", (b) => b.fill(0x41, 128, 384), /content type/],
      ["reader capacity", (b) => b.writeUInt32LE(1000, 76), /reader_capacity/],
    ];
    for (const [what, damage, expected] of cases) {
      const bad = Buffer.from(good);
      damage(bad);
      fs.writeFileSync(shmPath(name), bad);
      assert.throws(() => new (addon().RingReader)(name), (e: NativeError) => e.code === "ECORRUPT" && expected.test(e.message), what);
    }
    fs.writeFileSync(shmPath(name), good.subarray(0, 100));
    assert.strictEqual(nativeCode(() => new (addon().RingReader)(name)), "EAGAIN");
    // A committed slot claiming more bytes than a slot holds.
    const bad = Buffer.from(good);
    const slot = 4096 + 1 * bad.readUInt32LE(32); // frame 1 lives in slot 1
    bad.writeBigUInt64LE(1n, 56); // write_seq
    bad.writeBigUInt64LE(2n, slot); // state: frame 1 committed
    bad.writeBigUInt64LE(1n << 20n, slot + 8); // length
    fs.writeFileSync(shmPath(name), bad);
    const reader = new (addon().RingReader)(name, { fromOldest: true });
    try {
      assert.throws(() => reader.tryRead(), (e: NativeError) => e.code === "ECORRUPT" && /corrupt slot/.test(e.message));
    } finally {
      reader.close();
    }
    // A foreign file under the name is not ours to replace.
    fs.writeFileSync(shmPath(name), Buffer.alloc(8192, 1));
    assert.throws(() => new RingPublisher({ name, slots: 2, slotSize: 4096 }), /not a usable devplane ring/);
  });

  it("follows a writer killed with SIGKILL and restarted: new generation, readers resync", async () => {
    const name = ringName("kill");
    const first = spawnWriter([name, "--slots", "4", "--slot-size", "1024", "--size", "512", "--frames", "3"]);
    await first.line(/^wrote 3$/);
    const reader = new (addon().RingReader)(name, { fromOldest: true });
    try {
      assert.strictEqual(reader.tryRead()?.seq, 1);
      first.proc.kill("SIGKILL");
      await first.exited;
      assert.strictEqual(reader.info().writerAlive, false);
      assert.ok(fs.existsSync(shmPath(name)), "a killed writer leaves its segment");

      const second = spawnWriter([name, "--slots", "4", "--slot-size", "1024", "--size", "512", "--frames", "2"]);
      try {
        assert.strictEqual(await second.line(/^ready/), "ready 2 took-over");
        await second.line(/^wrote 2$/);
        const f1 = reader.tryRead();
        assert.strictEqual(f1?.generation, 2);
        assert.strictEqual(f1?.resynced, true);
        assert.strictEqual(f1?.seq, 1);
        assert.ok(f1?.data.equals(patternFrame(1, 512)));
        assert.strictEqual(JSON.parse(f1?.meta ?? "{}").meta.pid, second.proc.pid);
        assert.strictEqual(reader.tryRead()?.seq, 2);
        assert.strictEqual(reader.info().writerAlive, true);
      } finally {
        second.proc.stdin?.end("exit\n");
        await second.exited;
      }
    } finally {
      reader.close();
    }
  });

  it("a restarted writer with another geometry replaces the segment and readers reopen", async () => {
    const name = ringName("regeom");
    const first = spawnWriter([name, "--slots", "4", "--slot-size", "1024", "--frames", "1", "--size", "100"]);
    await first.line(/^wrote 1$/);
    first.proc.kill("SIGKILL");
    await first.exited;
    const sub = new RingSubscriber({ name, delivery: "every" });
    const frames: RingFrame[] = [];
    sub.on("frame", (f) => frames.push(f));
    sub.start();
    try {
      await eventually(() => sub.state, "the subscriber to open the old segment");
      const second = spawnWriter([name, "--slots", "8", "--slot-size", "8192", "--frames", "3", "--size", "5000"]);
      try {
        assert.strictEqual(await second.line(/^ready/), "ready 2 created");
        await eventually(() => frames.length >= 3, "three frames from the new segment");
        assert.deepStrictEqual(frames.map((f) => f.seq), [1, 2, 3]);
        assert.ok(frames[2].data.equals(patternFrame(3, 5000)));
        assert.strictEqual(frames[0].generation, 2);
      } finally {
        second.proc.stdin?.end("exit\n");
        await second.exited;
      }
    } finally {
      sub.stop();
    }
  });

  it("a listener that throws becomes an error event, not an uncaught exception", async () => {
    const name = ringName("throwing-listener");
    const pub = new RingPublisher({ name, slots: 4, slotSize: 64 });
    const sub = new RingSubscriber({ name, delivery: "every" });
    const errors: string[] = [];
    const seqs: number[] = [];
    sub.on("frame", (f) => {
      seqs.push(f.seq);
      if (f.seq === 1) throw new Error("listener broke");
    });
    sub.on("error", (e) => errors.push(e.message));
    sub.start();
    try {
      await eventually(() => sub.state === "attached", "attach");
      pub.publish({ payload: Buffer.from("a") });
      pub.publish({ payload: Buffer.from("b") });
      await eventually(() => seqs.length === 2, "both frames");
      assert.deepStrictEqual(errors, ["listener broke"]);
    } finally {
      sub.stop();
      pub.close();
    }
  });

  it("frees the table entry of a reader killed mid-read, and the writer never waits for it", async () => {
    const name = ringName("dead-reader");
    const pub = new RingPublisher({ name, slots: 4, slotSize: 1 << 20 });
    try {
      const c = execFileSync("cc", ["-O2", "-I", "native/include", "-o", "dist/test/shm_reader", "clients/c/shm_reader.c"]);
      void c;
      const { spawnChild } = await import("./support/rings");
      const child = spawnChild("dist/test/shm_reader", [name, "--timeout-ms", "60000"]);
      await eventually(() => pub.readers().length === 1 || undefined, "the C reader to register");
      for (let i = 1; i <= 20; i++) pub.publish({ payload: patternFrame(i, 1 << 20) });
      child.proc.kill("SIGKILL");
      await child.exited;
      for (let i = 21; i <= 40; i++) pub.publish({ payload: patternFrame(i, 1 << 20) });
      assert.deepStrictEqual(pub.readers(), []);
      assert.strictEqual(pub.seq, 40);
    } finally {
      pub.close();
    }
  });
});
