// The fake camera checks itself against the tools users trust (v4l2-ctl,
// v4l2-compliance, ffmpeg when installed), so the capture tests stand on a
// fake that behaves like a UVC driver, not only like our own code expects.
import assert from "assert";
import { spawnSync } from "child_process";
import path from "path";
import { ROOT } from "./support/rings";

describe("the fake V4L2 camera", () => {
  it("passes its own selftest (ioctls, formats, faults, and v4l2-ctl/v4l2-compliance/ffmpeg where installed)", function () {
    if (spawnSync("python3", ["--version"]).status !== 0) this.skip();
    const res = spawnSync("sh", [path.join(ROOT, "test", "fakes", "v4l2", "selftest.sh")], { encoding: "utf8" });
    const summary = /(\d+) passed, (\d+) failed, (\d+) skipped/.exec(res.stdout);
    assert.ok(summary, `no summary line; stdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
    const failures = res.stdout.split("\n").filter((l) => l.startsWith("not ok"));
    assert.strictEqual(Number(summary[2]), 0, failures.join("\n"));
    assert.strictEqual(res.status, 0, res.stderr);
    assert.ok(Number(summary[1]) >= 25, `only ${summary[1]} checks ran`);
  });
});
