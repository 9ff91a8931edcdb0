// Temporary grants: expiry on a controlled clock, replug, listing, revoking,
// persistence across instances, and a damaged grants file.
import assert from "assert";
import fs from "fs";
import os from "os";
import path from "path";
import { GrantStore, GrantsFileError, parseTtl } from "../lib/policy/grants";
import { PolicyParseError, type PolicyDevice } from "../lib/policy/types";

const uno = (port: string, serial = "7563331323335171E0A1"): PolicyDevice => ({
  key: `usb-2341:0043-${serial}`,
  id: "2341:0043",
  serial,
  name: "Arduino Uno",
  viaPort: port,
  withInterface: ["02:02:01", "0a:00:00"],
});

const ch340: PolicyDevice = { key: "1-1.4", id: "1a86:7523", serial: "", name: "USB Serial", viaPort: "1-1.4", withInterface: ["ff:01:02"] };

describe("policy runtime: grants", () => {
  let dir: string;
  let file: string;
  let t: number;
  const clock = () => t;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "devplane-grants-"));
    file = path.join(dir, "grants.json");
    t = Date.UTC(2025, 5, 1, 12, 0, 0);
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("allows matching devices until the ttl runs out", () => {
    const store = new GrantStore({ clock });
    const g = store.add('id 2341:0043 serial "7563331323335171E0A1"', 60);
    assert.strictEqual(g.expires, t + 60_000);
    assert.strictEqual(g.match, 'id 2341:0043 serial "7563331323335171E0A1"');
    assert.strictEqual(store.match(uno("1-1.2"))?.id, g.id);
    assert.strictEqual(store.match(ch340), undefined);
    assert.strictEqual(store.match(uno("1-1.2", "OTHER")), undefined);
    t += 59_999;
    assert.ok(store.match(uno("1-1.2")));
    t += 1;
    assert.strictEqual(store.match(uno("1-1.2")), undefined, "expires exactly at created + ttl");
    assert.deepStrictEqual(store.list(), []);
  });

  it("keeps allowing a device replugged at another port", () => {
    const store = new GrantStore({ clock });
    const g = store.add('id 2341:0043 via-port "1-1.2"', 300);
    assert.strictEqual(store.match(uno("1-1.4")), undefined, "not yet bound: the port must match");
    assert.ok(store.match(uno("1-1.2")));
    assert.deepStrictEqual(store.get(g.id)?.keys, [uno("1-1.2").key]);
    assert.strictEqual(store.match(uno("1-1.4"))?.id, g.id, "bound by key: another port still matches");
    assert.strictEqual(store.match(uno("1-1.4", "SECOND")), undefined, "another device of the same model is not");
    assert.ok(store.match(uno("1-1.2", "SECOND")), "…unless it matches the attributes itself");
    assert.strictEqual(store.get(g.id)?.keys.length, 2);
  });

  it("lists and revokes", () => {
    const store = new GrantStore({ clock });
    const a = store.add("id 2341:0043", 60);
    t += 1000;
    const b = store.add("id 1a86:7523", 120);
    assert.deepStrictEqual(
      store.list().map((g) => [g.id, g.match, g.expires]),
      [
        [a.id, "id 2341:0043", a.expires],
        [b.id, "id 1a86:7523", b.expires],
      ],
    );
    assert.strictEqual(store.size, 2);
    assert.strictEqual(store.revoke(a.id)?.id, a.id);
    assert.strictEqual(store.revoke(a.id), undefined, "revoking twice finds nothing");
    assert.strictEqual(store.match(uno("1-1.2")), undefined);
    assert.ok(store.match(ch340));
    assert.deepStrictEqual(
      store.revokeDevice(ch340.key).map((g) => g.id),
      [b.id],
    );
    store.add("id 2341:0043", 60);
    store.add("id 1a86:7523", 60);
    assert.strictEqual(store.clear(), 2);
    assert.strictEqual(store.size, 0);
  });

  it("hands out copies, so callers cannot change a grant", () => {
    const store = new GrantStore({ clock });
    const g = store.add("id 2341:0043", 60);
    g.expires = Number.MAX_SAFE_INTEGER;
    g.keys.push("someone");
    store.list()[0].keys.push("else");
    assert.strictEqual(store.get(g.id)?.expires, t + 60_000);
    assert.deepStrictEqual(store.get(g.id)?.keys, []);
  });

  it("refuses matches and ttls that make no sense", () => {
    const store = new GrantStore({ clock });
    assert.throws(() => store.add("id 2341:zzzz", 60), PolicyParseError);
    assert.throws(() => store.add("", 60), /empty: it would allow every device/);
    assert.throws(() => store.add("   ", 60), /empty/);
    assert.throws(() => store.add("block id 2341:0043", 60), /can only allow/);
    assert.throws(() => store.add(42, 60), /must be a string/);
    assert.strictEqual(store.add("allow id 2341:0043", 60).match, "id 2341:0043", "a leading allow is tolerated");
    for (const bad of [0, -5, Infinity, NaN, "abc", "", null, undefined, {}]) {
      assert.throws(() => store.add("id 2341:0043", bad), /ttl must be a positive number of seconds/, String(bad));
    }
    assert.strictEqual(parseTtl("90"), 90);
    assert.strictEqual(parseTtl(0.5), 0.5);
    assert.strictEqual(store.size, 1);
  });

  it("persists across a new instance, bound keys included, and drops expired grants on load", async () => {
    const { store } = await GrantStore.open({ file, clock });
    const long = store.add('id 2341:0043 via-port "1-1.2"', 3600);
    store.add("id 1a86:7523", 10);
    store.match(uno("1-1.2"));
    await store.flush();
    assert.deepStrictEqual(
      fs.readdirSync(dir).filter((f) => f !== "grants.json"),
      [],
      "no temp files left behind",
    );
    assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600);

    t += 20_000;
    const { store: again, load } = await GrantStore.open({ file, clock });
    assert.deepStrictEqual([load.loaded, load.expired, load.skipped, load.error], [1, 1, [], undefined]);
    assert.deepStrictEqual(again.list(), [{ ...long, keys: [uno("1-1.2").key] }]);
    assert.strictEqual(again.match(uno("1-9"))?.id, long.id, "the binding survived the restart");
    await again.flush();
    const onDisk = JSON.parse(fs.readFileSync(file, "utf8"));
    assert.strictEqual(onDisk.version, 1);
    assert.deepStrictEqual(
      onDisk.grants.map((g: { id: string }) => g.id),
      [long.id],
      "the expired grant is gone from the file too",
    );
  });

  it("saves bursts of changes, ending with the latest state", async () => {
    const store = new GrantStore({ file, clock });
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(store.add(`id 2341:${i.toString(16).padStart(4, "0")}`, 60).id);
    store.revoke(ids[0]);
    await store.save();
    const onDisk = JSON.parse(fs.readFileSync(file, "utf8"));
    assert.deepStrictEqual(
      onDisk.grants.map((g: { id: string }) => g.id),
      ids.slice(1),
    );
  });

  it("starts empty from a corrupt file, and keeps the file aside", async () => {
    fs.writeFileSync(file, '{"version":1,"grants":[{"id":');
    const { store, load } = await GrantStore.open({ file, clock });
    assert.ok(load.error instanceof GrantsFileError);
    assert.match(load.error.message, /grants file .*grants\.json: not valid JSON/);
    assert.match(load.error.message, /starting with no grants/);
    assert.ok(load.error.keptAt);
    assert.strictEqual(fs.readFileSync(load.error.keptAt, "utf8"), '{"version":1,"grants":[{"id":', "the original is intact");
    assert.ok(load.error.message.includes(load.error.keptAt));
    assert.strictEqual(store.size, 0);
    assert.ok(!fs.existsSync(file));

    store.add("id 2341:0043", 60);
    await store.flush();
    assert.strictEqual(JSON.parse(fs.readFileSync(file, "utf8")).grants.length, 1);
    assert.ok(fs.existsSync(load.error.keptAt), "saving does not touch the kept copy");
  });

  it("treats valid JSON of the wrong shape as corrupt too", async () => {
    fs.writeFileSync(file, "[1,2,3]");
    const { store, load } = await GrantStore.open({ file, clock });
    assert.match(load.error?.message ?? "", /not a grants file/);
    assert.strictEqual(store.size, 0);
    assert.strictEqual(fs.readFileSync(load.error?.keptAt as string, "utf8"), "[1,2,3]");
  });

  it("skips unusable entries, keeps the rest, and copies the original aside", async () => {
    const good = { id: "g-good", match: "id 2341:0043", created: t, expires: t + 60_000, keys: [] };
    const text = JSON.stringify({
      version: 1,
      grants: [good, { id: "g-bad", match: "id nonsense", created: t, expires: t + 60_000, keys: [] }, { match: "id 1a86:7523" }],
    });
    fs.writeFileSync(file, text);
    const { store, load } = await GrantStore.open({ file, clock });
    assert.strictEqual(load.loaded, 1);
    assert.strictEqual(load.skipped.length, 2);
    assert.match(load.skipped[0], /entry 1: match "id nonsense" does not parse/);
    assert.match(load.skipped[1], /entry 2: no id/);
    assert.match(load.error?.message ?? "", /the other grants are in force/);
    assert.strictEqual(fs.readFileSync(load.error?.keptAt as string, "utf8"), text);
    assert.deepStrictEqual(store.list(), [good]);
    await store.flush();
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(file, "utf8")).grants, [good], "the next save writes what is in force");
  });

  it("reports a save error and keeps the grants in force", async () => {
    fs.writeFileSync(path.join(dir, "not-a-dir"), "");
    const errors: Error[] = [];
    const store = new GrantStore({ file: path.join(dir, "not-a-dir", "grants.json"), clock, onError: (e) => errors.push(e) });
    store.add("id 2341:0043", 60);
    await assert.rejects(store.flush(), /cannot save grants to/);
    assert.strictEqual(errors.length, 1);
    assert.ok(store.match(uno("1-1.2")));
    await assert.rejects(store.flush(), /cannot save grants/, "binding the key tried to save again");
    assert.strictEqual(errors.length, 2);
  });

  it("without a file, lives in memory", async () => {
    const store = new GrantStore({ clock });
    store.add("id 2341:0043", 60);
    await store.save();
    assert.strictEqual((await store.load()).loaded, 0);
    assert.strictEqual(store.size, 1, "loading without a file changes nothing");
  });
});
