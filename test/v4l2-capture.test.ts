// The camera capture against the fake V4L2 camera. LD_PRELOAD is read when a
// process starts, so the tests run in child mocha processes started with the
// fake preloaded; each of their tests must pass here.
import { buildFake, CHILD_TESTS, childPassed, ChildRun, runChild } from "./support/v4l2";

describe("v4l2 capture against the fake camera (child processes)", () => {
  let engine: ChildRun | undefined;
  let nodes: ChildRun | undefined;

  before(async () => {
    buildFake();
    engine = await runChild("v4l2-engine.child.js", "engine");
    nodes = await runChild("v4l2-nodes.child.js", "nodes");
  });

  describe("engine", () => {
    for (const title of Object.values(CHILD_TESTS.engine)) it(title, () => childPassed(engine, title));
  });
  describe("nodes", () => {
    for (const title of Object.values(CHILD_TESTS.nodes)) it(title, () => childPassed(nodes, title));
  });
});
