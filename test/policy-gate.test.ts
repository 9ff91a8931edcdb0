// A device the policy denies is never opened by a node that references the
// policy: serial-stream over a pseudo-terminal, with devplane-policy.
import assert from "assert";
import type { NodeMessage } from "node-red";
import { FakePty, openPty, ttyFds } from "./fakes/pty";
import { helper, policyNodes, profileNodes } from "./support/red";
import { eventually } from "./support/rings";
import { collect, statusTexts, statuses } from "./support/flow";

type Msg = NodeMessage & { serial?: Record<string, unknown>; error?: { message: string } };

function uno(tty: string) {
  return {
    action: "add",
    id: "usb-2341:0043-85735313932351",
    subsystem: "tty",
    path: tty,
    usb: { vid: "2341", pid: "0043", product: "Arduino Uno", serial: "85735313932351", port: "1-1", interfaces: [{ class: "02", subclass: "02", protocol: "01", driver: "cdc_acm" }] },
    nodes: { tty: [tty], serialById: [], video: [], audio: [], hidraw: [] },
    timestamp: Date.now(),
  };
}

function flow(rules: string, device = "") {
  return [
    { id: "pol", type: "devplane-policy", rules, rulesFile: "", defaultTarget: "block" },
    { id: "s", type: "serial-stream", device, baudrate: "", split: "delimiter", delimiter: "\\n", output: "string", reconnect: true, policy: "pol", wires: [["out"]] },
    { id: "c", type: "catch", scope: null, uncaught: false, wires: [["caught"]] },
    { id: "out", type: "helper" },
    { id: "caught", type: "helper" },
  ];
}

describe("a policy referenced by serial-stream", () => {
  const nodes = [...policyNodes, ...profileNodes];
  let dev: FakePty | undefined;
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    dev?.dispose();
    dev = undefined;
  });

  it("never opens a device the policy denies, and says why", async () => {
    dev = await openPty();
    await helper.load(nodes, flow("reject id 2341:0043"));
    const s = helper.getNode("s");
    const seen = statuses(s);
    const out = collect<Msg>(helper.getNode("out"));
    const errors: string[] = [];
    const origError = s.error.bind(s);
    s.error = (m: unknown) => {
      errors.push(String(m));
      origError(m);
    };
    s.receive({ payload: uno(dev.path) });
    await eventually(() => errors.some((e) => /denied by policy/.test(e)), "the refusal");
    assert.ok(errors.some((e) => /reject id 2341:0043/.test(e)), errors.join("\n"));
    assert.ok(statusTexts(seen).includes("denied by policy"), statusTexts(seen).join(", "));
    assert.ok(!ttyFds().includes(dev.path), "the tty was opened");
    assert.ok(!out.some((m) => m.serial?.event === "connected"));
  });

  it("opens the same device once a rule allows it, and a fixed path is checked too", async () => {
    dev = await openPty();
    await helper.load(nodes, flow(`allow devnode "${dev.path}"`, dev.path));
    const out = collect<Msg>(helper.getNode("out"));
    await eventually(() => out.some((m) => m.serial?.event === "connected"), "connected");
    assert.ok(ttyFds().includes(dev.path));
  });

  it("fails closed when the referenced policy is missing", async () => {
    dev = await openPty();
    const f = flow("", dev.path).filter((n) => n.type !== "devplane-policy");
    await helper.load(nodes, f);
    const seen = statuses(helper.getNode("s"));
    await eventually(() => statusTexts(seen).includes("denied by policy"), "the refusal");
    assert.ok(!ttyFds().includes(dev.path));
  });
});
