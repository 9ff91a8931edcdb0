// A capture node that references a policy opens its device only when the
// policy allows it: alsa-capture on alsa-lib's file plugin, with devplane-policy.
import assert from "assert";
import path from "path";
import type { NodeMessage } from "node-red";
import alsaCapture from "../nodes/alsa-capture";
import { WAVES } from "./fakes/alsa-wave";
import { captureThreads, FIXTURES, openCount } from "./support/alsa";
import { collect, statuses, statusTexts } from "./support/flow";
import { helper, policyNodes } from "./support/red";
import { eventually } from "./support/rings";

const COUNTER_FILE = path.join(FIXTURES, WAVES.counter.file);
const nodes = [...policyNodes, alsaCapture] as unknown as Array<(RED: unknown) => void>;

function flow(rules: string | undefined) {
  const mic = { id: "m", type: "alsa-capture", device: "devplane_counter", rate: 48000, channels: 2, format: "S16_LE", chunkMs: 10, output: "pcm", ring: "", vad: false, autostart: true, policy: "pol", wires: [["out"]] };
  const policy = { id: "pol", type: "devplane-policy", rules: rules ?? "", rulesFile: "", defaultTarget: "block" };
  return [...(rules === undefined ? [] : [policy]), mic, { id: "out", type: "helper" }];
}

describe("a policy referenced by alsa-capture", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    await eventually(() => captureThreads() === 0, "capture threads to end");
  });

  async function refused(rules: string | undefined, why: RegExp): Promise<void> {
    await helper.load(nodes, flow(rules));
    const m = helper.getNode("m");
    const seen = statuses(m);
    const errors: string[] = [];
    const origError = m.error.bind(m);
    m.error = (e: unknown) => {
      errors.push(String(e));
      origError(e);
    };
    // The refusal on deploy may come before the hooks above; a start message asks again.
    m.receive({ payload: "start" });
    await eventually(() => statusTexts(seen).includes("denied by policy"), "the refusal");
    assert.ok(errors.some((e) => why.test(e)), errors.join("\n"));
    assert.strictEqual(captureThreads(), 0, "a capture thread started");
    assert.strictEqual(openCount(COUNTER_FILE), 0, "the device was opened");
  }

  it("never opens a microphone the policy denies, and says why", () => refused('block devnode "devplane_*"', /denied by policy: .*block devnode/));

  it("fails closed when the referenced policy is missing", () => refused(undefined, /not available/));

  it("captures once a rule allows the device", async () => {
    await helper.load(nodes, flow('allow subsystem "sound" devnode "devplane_counter"'));
    const out = collect<NodeMessage>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.topic === "audio"), "audio");
  });
});
