// Run by test/alsa-faults.test.ts in a process where alsa-lib cannot be
// loaded (DEVPLANE_LIBASOUND names a file that does not exist).
import assert from "assert";
import type { Node, NodeMessage } from "node-red";
import { AlsaCapture, AlsaCaptureError, listDevices } from "../../lib/capture";
import { addon } from "../../lib/native";
import { CHILD_TESTS } from "../support/alsa";
import { alsaNodes as nodes, helper } from "../support/red";
import { cleanupRings, eventually, ringName } from "../support/rings";
import { collect } from "../support/flow";

const T = CHILD_TESTS.noLibrary;
const LIBRARY = process.env.DEVPLANE_LIBASOUND as string;
const escaped = LIBRARY.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

describe("without alsa-lib (child process)", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    cleanupRings();
  });

  it(T.node, async () => {
    const ring = ringName("nolib");
    await helper.load(nodes, [
      { id: "m", type: "alsa-capture", device: "default", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10, output: "pcm", autostart: true, wires: [["out"]] },
      { id: "p", type: "shm-publish", ring, slots: 2, slotSize: 1024, mode: "600", wires: [["published"]] },
      { id: "out", type: "helper" },
      { id: "published", type: "helper" },
      { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper" },
    ]);
    const m = helper.getNode("m");
    const seen: Array<{ fill?: string; text?: string }> = [];
    const original = m.status.bind(m);
    m.status = (s: Parameters<Node["status"]>[0]) => {
      seen.push(typeof s === "string" ? { text: s } : { fill: s.fill, text: s.text });
      original(s);
    };
    const caught = collect(helper.getNode("caught"));
    const published = collect(helper.getNode("published"));
    await eventually(() => caught.length === 1, "the error");
    const message = (caught[0].error as { message: string }).message;
    assert.match(message, new RegExp(`^cannot load alsa-lib \\(${escaped}\\): .+\\. Install it \\(Debian, Ubuntu, Raspberry Pi OS: sudo apt install libasound2\\) and redeploy$`));
    assert.strictEqual((caught[0] as NodeMessage & { device: { code: string } }).device.code, "ENOLIB");
    await eventually(() => seen.some((s) => s.fill === "grey" && s.text === "alsa-lib missing"), "the grey status");
    // The rest of the flow works.
    helper.getNode("p").receive({ payload: Buffer.from("still here") });
    await eventually(() => published.length === 1, "shm-publish's message");
    assert.deepStrictEqual((published[0] as NodeMessage & { shm: unknown }).shm, { name: ring, seq: 1, bytes: 10 });
    assert.deepStrictEqual(collect(helper.getNode("out")), []);
    // The editor's list says why it is empty.
    const res = await helper.request().get("/devplane/alsa/devices");
    assert.strictEqual(res.status, 200);
    const body = res.body as { available: boolean; error: string; pcms: unknown[] };
    assert.strictEqual(body.available, false);
    assert.match(body.error, /cannot load alsa-lib/);
    assert.deepStrictEqual(body.pcms, []);
  });

  it(T.engine, async () => {
    const c = new AlsaCapture({ device: "default" });
    const errors: AlsaCaptureError[] = [];
    c.on("error", (e) => errors.push(e));
    c.start();
    try {
      await eventually(() => errors.length > 0, "the error");
      assert.strictEqual(errors[0].code, "ENOLIB");
      assert.match(errors[0].message, /sudo apt install libasound2/);
    } finally {
      c.stop();
    }
    assert.strictEqual(addon().alsaActiveCaptures(), 0);
    const list = await listDevices();
    assert.strictEqual(list.available, false);
    assert.match(list.error ?? "", new RegExp(escaped));
  });
});
