// Faults a microphone produces (overrun, unplug, a device someone else
// holds), the example flows on a microphone-paced device, and a machine
// without alsa-lib. Each runs in a child process: the library the addon
// loads, like alsa-lib's own configuration, is chosen once per process,
// before first use. The children report through mocha's JSON
// reporter and every one of their tests must pass here.
import assert from "assert";
import { spawn } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { buildFakeAsound, CHILD_TESTS } from "./support/alsa";

interface MochaJson {
  tests: Array<{ title: string; fullTitle: string; err: { message?: string; stack?: string } }>;
  passes: Array<{ title: string }>;
}

const MOCHA = require.resolve("mocha/bin/mocha.js");

async function runChild(file: string, env: NodeJS.ProcessEnv): Promise<{ results: MochaJson; output: string }> {
  const report = path.join(os.tmpdir(), `devplane-alsa-child-${process.pid}-${path.basename(file)}.json`);
  fs.rmSync(report, { force: true });
  const child = spawn(
    process.execPath,
    [MOCHA, "--no-config", "--timeout", "0", "--exit", "--reporter", "json", "--reporter-option", `output=${report}`, path.join(__dirname, "fakes", file)],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  await new Promise((resolve) => child.on("exit", resolve));
  if (!fs.existsSync(report)) throw new Error(`${file} wrote no report:\n${output}`);
  const results = JSON.parse(fs.readFileSync(report, "utf8")) as MochaJson;
  fs.rmSync(report, { force: true });
  return { results, output };
}

function checkChild(run: () => { results: MochaJson; output: string } | undefined, title: string): void {
  const r = run();
  assert.ok(r, "the child process ran");
  const t = r.results.tests.find((x) => x.title === title);
  assert.ok(t, `the child ran "${title}"\n${r.output}`);
  if (t.err && t.err.message) assert.fail(`in the child process: ${t.err.stack ?? t.err.message}`);
  assert.ok(r.results.passes.some((x) => x.title === title));
}

describe("alsa faults, example flows and a missing alsa-lib (child processes)", () => {
  let faults: { results: MochaJson; output: string } | undefined;
  let examples: { results: MochaJson; output: string } | undefined;
  let noLibrary: { results: MochaJson; output: string } | undefined;
  let faultDir = "";

  before(async () => {
    const library = buildFakeAsound();
    faultDir = fs.mkdtempSync(path.join(os.tmpdir(), "devplane-faults-"));
    // Paced like a microphone: these tests run flows for seconds of audio.
    const paced = { DEVPLANE_LIBASOUND: library, DEVPLANE_FAKE_ASOUND_PACE: "1" };
    [faults, examples, noLibrary] = await Promise.all([
      runChild("alsa-faults.child.js", { ...paced, DEVPLANE_FAKE_ASOUND_DIR: faultDir }),
      runChild("alsa-examples.child.js", paced),
      runChild("alsa-nolib.child.js", { DEVPLANE_LIBASOUND: path.join(faultDir, "no-such-dir", "libasound.so.2") }),
    ]);
  });
  after(() => fs.rmSync(faultDir, { recursive: true, force: true }));

  for (const title of Object.values(CHILD_TESTS.faults)) it(title, () => checkChild(() => faults, title));
  for (const title of Object.values(CHILD_TESTS.examples)) it(title, () => checkChild(() => examples, title));
  for (const title of Object.values(CHILD_TESTS.noLibrary)) it(title, () => checkChild(() => noLibrary, title));
});
