// The editor's ring list: rings in /dev/shm found by their header, other files left out.
import assert from "assert";
import { execFileSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { listRings, RingPublisher } from "../lib/shm";
import { cleanupRings, ringName } from "./support/rings";
import { helper, shmNodes } from "./support/red";

describe("ring list", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(cleanupRings);

  it("lists the rings in /dev/shm with their content type", () => {
    const name = ringName("list");
    const publisher = new RingPublisher({ name, slots: 2, slotSize: 4096, contentType: "image/jpeg" });
    try {
      assert.deepStrictEqual(
        listRings().find((r) => r.name === name),
        { name, contentType: "image/jpeg" },
      );
    } finally {
      publisher.close();
    }
    assert.strictEqual(listRings().find((r) => r.name === name), undefined, "a closed ring is gone");
  });

  it("leaves out files that are not rings, bad names, links and FIFOs, and a missing directory", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dp-rings-"));
    try {
      fs.writeFileSync(path.join(dir, "not-a-ring"), Buffer.alloc(4096));
      fs.writeFileSync(path.join(dir, "short"), "DVPRING\0");
      fs.writeFileSync(path.join(dir, "bad name"), Buffer.alloc(4096));
      const header = Buffer.alloc(4096);
      header.write("DVPRING\0", 0, "latin1");
      header.writeUInt32LE(9, 88);
      header.write("audio/wav", 128);
      fs.writeFileSync(path.join(dir, "a-ring"), header);
      fs.symlinkSync(path.join(dir, "a-ring"), path.join(dir, "link"));
      fs.mkdirSync(path.join(dir, "dir"));
      execFileSync("mkfifo", [path.join(dir, "fifo")]);
      assert.deepStrictEqual(listRings(dir), [{ name: "a-ring", contentType: "audio/wav" }]);
      assert.deepStrictEqual(listRings(path.join(dir, "missing")), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("answers the editor at GET /devplane/shm/rings", async () => {
    const name = ringName("route");
    const publisher = new RingPublisher({ name, slots: 2, slotSize: 4096, contentType: "" });
    try {
      await helper.load(shmNodes, []);
      const res = await helper.request().get("/devplane/shm/rings");
      assert.strictEqual(res.status, 200);
      const rings = res.body as unknown as Array<{ name: string; contentType: string }>;
      assert.ok(rings.some((r) => r.name === name && r.contentType === "application/octet-stream"), JSON.stringify(rings));
    } finally {
      publisher.close();
      await helper.unload();
    }
  });
});
