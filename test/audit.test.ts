// The audit trail: chain, rotation, ordering under load, write errors, and the
// verify CLI run as a real process against files tampered with in each way.
import assert from "assert";
import { spawnSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { AuditLog, GENESIS, sha256, verifyAuditFile, type AuditEntry, type AuditRecord } from "../lib/policy/audit";
import type { PolicyDevice } from "../lib/policy/types";

const CLI = path.join(__dirname, "..", "lib", "policy", "audit-cli.js");

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const arduino: PolicyDevice = {
  key: "usb-2341:0043-7563331323335171E0A1",
  id: "2341:0043",
  serial: "7563331323335171E0A1",
  name: "Arduino Uno",
  viaPort: "1-1.2",
  withInterface: ["02:02:01", "0a:00:00"],
  subsystem: "tty",
  devnodes: ["/dev/ttyACM0"],
  profile: "Arduino Uno",
};

function entry(i: number, extra: Partial<AuditEntry> = {}): AuditEntry {
  return {
    device: { ...arduino, name: `device ${i}` },
    decision: i % 2 ? "allow" : "block",
    rule: i % 2 ? 'allow id 2341:0043 name "device"' : undefined,
    ruleIndex: i % 2 ? 0 : -1,
    reason: i % 2 ? "rule 1 of 1 matched" : "no rule matched, default block",
    via: i % 2 ? "rule" : "default",
    ...extra,
  };
}

function readLines(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  assert.ok(text.endsWith("\n"), "every record ends its line");
  return text.slice(0, -1).split("\n");
}

function writeLines(file: string, lines: string[]): void {
  fs.writeFileSync(file, lines.map((l) => l + "\n").join(""));
}

describe("audit trail", () => {
  let dir: string;
  let file: string;
  let t: number;
  const clock = () => t;
  const open: AuditLog[] = [];

  async function openLog(opts: Partial<Parameters<typeof AuditLog.open>[0]> = {}): Promise<AuditLog> {
    const log = await AuditLog.open({ file, clock, host: "pi4", ...opts });
    open.push(log);
    return log;
  }

  async function writeRecords(n: number, opts: Partial<Parameters<typeof AuditLog.open>[0]> = {}): Promise<AuditRecord[]> {
    const log = await openLog(opts);
    const out: AuditRecord[] = [];
    for (let i = 1; i <= n; i++) {
      t += 1000;
      out.push(log.append(entry(i)));
    }
    await log.close();
    return out;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "devplane-audit-"));
    file = path.join(dir, "audit.jsonl");
    t = Date.UTC(2025, 0, 2, 3, 4, 5);
  });

  afterEach(async () => {
    for (const log of open.splice(0)) await log.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe("records", () => {
    it("chains each record to the exact line before it", async () => {
      const recs = await writeRecords(5);
      const lines = readLines(file);
      assert.strictEqual(lines.length, 5);
      assert.strictEqual(recs[0].prev, GENESIS);
      for (let i = 0; i < 5; i++) {
        assert.deepStrictEqual(JSON.parse(lines[i]), JSON.parse(JSON.stringify(recs[i])), "the file holds what append returned");
        assert.strictEqual(recs[i].seq, i + 1);
        if (i > 0) assert.strictEqual(recs[i].prev, sha256(lines[i - 1]));
      }
    });

    it("carries id, time, host, the device and the explanation", async () => {
      const [first, second] = await writeRecords(2);
      assert.match(second.auditId, /^[0-9a-f-]{36}$/);
      assert.notStrictEqual(first.auditId, second.auditId);
      assert.strictEqual(first.ts, "2025-01-02T03:04:06.000Z");
      assert.strictEqual(first.host, "pi4");
      assert.strictEqual(first.device.key, arduino.key);
      assert.strictEqual(first.device.id, "2341:0043");
      assert.deepStrictEqual(first.device.withInterface, ["02:02:01", "0a:00:00"]);
      assert.strictEqual(first.decision, "allow");
      assert.strictEqual(first.rule, 'allow id 2341:0043 name "device"');
      assert.strictEqual(second.rule, null, "no rule is written as null, not left out");
      assert.strictEqual(second.reason, "no rule matched, default block");
      const keys = Object.keys(JSON.parse(readLines(file)[0]));
      assert.strictEqual(keys[0], "seq");
      assert.deepStrictEqual(keys.slice(-2), ["prev", "hash"]);
    });

    it("chains in memory when there is no file", () => {
      const log = AuditLog.memory({ clock, host: "h" });
      const a = log.append(entry(1));
      const b = log.append(entry(2));
      assert.strictEqual(a.prev, GENESIS);
      assert.strictEqual(b.seq, 2);
      assert.strictEqual(log.file, undefined);
    });

    it("continues the chain when reopened", async () => {
      await writeRecords(3);
      const more = await writeRecords(2);
      assert.strictEqual(more[0].seq, 4);
      assert.strictEqual(more[0].prev, sha256(readLines(file)[2]));
      const r = cli("verify", file);
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
      assert.strictEqual(r.stdout.trim(), "ok: 5 records");
    });

    it("shares one chain between handles on the same file", async () => {
      const a = await openLog();
      const b = await openLog({ host: "other" });
      for (let i = 0; i < 10; i++) (i % 3 ? a : b).append(entry(i));
      await a.close();
      b.append(entry(99));
      await b.close();
      const res = await verifyAuditFile(file);
      assert.deepStrictEqual(res.ok && [res.records, res.lastSeq], [11, 11]);
    });

    it("lets a reopen right after close (a redeploy) continue the chain", async () => {
      const a = await openLog();
      for (let i = 0; i < 50; i++) a.append(entry(i));
      const closing = a.close();
      const b = await openLog();
      const rec = b.append(entry(51));
      await closing;
      await b.close();
      assert.strictEqual(rec.seq, 51);
      assert.strictEqual((await verifyAuditFile(file)).ok, true);
    });
  });

  describe("verify through the CLI", () => {
    it("accepts an intact file", async () => {
      await writeRecords(7);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
      assert.strictEqual(r.stdout, "ok: 7 records\n");
    });

    it("names an altered record", async () => {
      const recs = await writeRecords(6);
      const lines = readLines(file);
      lines[2] = lines[2].replace('"decision":"allow"', '"decision":"block"');
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1, r.stdout);
      assert.match(r.stdout, /^bad: line 3 of /);
      assert.ok(r.stdout.includes(recs[2].auditId), r.stdout);
      assert.match(r.stdout, /altered/);
    });

    it("names an altered last record (nothing follows it to catch the change)", async () => {
      const recs = await writeRecords(4);
      const lines = readLines(file);
      lines[3] = lines[3].replace('"host":"pi4"', '"host":"pi5"');
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 4 of .*altered/);
      assert.ok(r.stdout.includes(recs[3].auditId));
    });

    it("names a record rewritten with a fresh hash, by the broken link after it", async () => {
      const recs = await writeRecords(5);
      const lines = readLines(file);
      const body = lines[1].replace(/,"hash":"[0-9a-f]{64}"\}$/, "}").replace('"host":"pi4"', '"host":"evil"');
      lines[1] = body.slice(0, -1) + `,"hash":"${sha256(body)}"}`;
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 3 of .*chain broken.*line 2/);
      assert.ok(r.stdout.includes(recs[2].auditId));
    });

    it("names a removed record", async () => {
      const recs = await writeRecords(6);
      const lines = readLines(file);
      lines.splice(3, 1);
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 4 of .*seq 4 is missing/);
      assert.ok(r.stdout.includes(recs[4].auditId), "names the record that now follows the gap");
    });

    it("names removed first records of a file that was never rotated", async () => {
      await writeRecords(4);
      writeLines(file, readLines(file).slice(2));
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 1 of .*records 1–2 were removed/);
    });

    it("names a reordered record", async () => {
      const recs = await writeRecords(6);
      const lines = readLines(file);
      [lines[2], lines[3]] = [lines[3], lines[2]];
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 3 of .*out of order: expected seq 3, which comes later at line 4/);
      assert.ok(r.stdout.includes(recs[3].auditId));
    });

    it("names a record moved to the end", async () => {
      await writeRecords(5);
      const lines = readLines(file);
      const [moved] = lines.splice(1, 1);
      lines.push(moved);
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 2 of .*out of order/);
    });

    it("names a duplicated record", async () => {
      await writeRecords(4);
      const lines = readLines(file);
      lines.splice(2, 0, lines[1]);
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 3 of .*seq 2 comes after seq 2: a record copied or moved here/);
    });

    it("names a truncated last line", async () => {
      await writeRecords(3);
      const text = fs.readFileSync(file, "utf8");
      fs.writeFileSync(file, text.slice(0, text.length - 20));
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 3 of .*cut short/);
      assert.match(r.stdout, /2 record\(s\) before it checked out/);
    });

    it("names a line that is not a record", async () => {
      await writeRecords(3);
      const lines = readLines(file);
      lines[1] = "garbage";
      writeLines(file, lines);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 2 of .*not a JSON record/);
    });

    it("prints JSON on request", async () => {
      await writeRecords(2);
      const r = cli("verify", file, "--json");
      assert.strictEqual(r.status, 0);
      const res = JSON.parse(r.stdout);
      assert.strictEqual(res.ok, true);
      assert.strictEqual(res.records, 2);
    });

    it("explains itself and rejects bad usage", () => {
      const help = cli("--help");
      assert.strictEqual(help.status, 0);
      assert.match(help.stdout, /Usage: devplane-audit verify <file> \[--rotated\]/);
      assert.strictEqual(cli().status, 2);
      assert.strictEqual(cli("verify").status, 2);
      assert.strictEqual(cli("check", "x").status, 2);
      const unknown = cli("verify", file, "--fast");
      assert.strictEqual(unknown.status, 2);
      assert.match(unknown.stderr, /unknown option --fast/);
      const missing = cli("verify", path.join(dir, "nope.jsonl"));
      assert.strictEqual(missing.status, 2);
      assert.match(missing.stderr, /cannot read/);
    });

    it("starts with a shebang so it can be installed as a bin", () => {
      assert.ok(fs.readFileSync(CLI, "utf8").startsWith("#!/usr/bin/env node\n"));
    });
  });

  describe("rotation", () => {
    it("rotates by size, keeps N files, and the chain spans them", async () => {
      const maxBytes = 4000;
      const recs = await writeRecords(60, { maxBytes, keep: 3 });
      assert.ok(fs.existsSync(`${file}.1`) && fs.existsSync(`${file}.2`) && fs.existsSync(`${file}.3`));
      assert.ok(!fs.existsSync(`${file}.4`), "older files beyond keep are dropped");
      for (const f of [file, `${file}.1`, `${file}.2`, `${file}.3`]) {
        assert.ok(fs.statSync(f).size <= maxBytes, `${f} stays within maxBytes`);
      }
      const newest = readLines(file);
      const before = readLines(`${file}.1`);
      assert.strictEqual(JSON.parse(newest[0]).prev, sha256(before[before.length - 1]), "the new file continues the old chain");

      const single = cli("verify", file);
      assert.strictEqual(single.status, 0, single.stdout);
      assert.strictEqual(single.stdout, `ok: ${newest.length} records\n`);

      const kept = [3, 2, 1].map((i) => readLines(`${file}.${i}`).length).reduce((a, b) => a + b, newest.length);
      const all = cli("verify", file, "--rotated");
      assert.strictEqual(all.status, 0, all.stdout);
      assert.strictEqual(all.stdout, `ok: ${kept} records in 4 files\n`);
      assert.strictEqual(JSON.parse(newest[newest.length - 1]).seq, recs[59].seq);

      // The oldest kept file starts mid-chain; on its own it is still fine.
      assert.strictEqual(cli("verify", `${file}.3`).status, 0);
    });

    it("finds tampering in a rotated file and a removed boundary record", async () => {
      await writeRecords(40, { maxBytes: 3000, keep: 4 });
      const mid = readLines(`${file}.2`);
      const removed = readLines(`${file}.1`);
      removed.pop();
      writeLines(`${file}.1`, removed);
      const r = cli("verify", file, "--rotated");
      assert.strictEqual(r.status, 1);
      assert.ok(r.stdout.startsWith(`bad: line 1 of ${file} (`), r.stdout);
      assert.match(r.stdout, /is missing/);
      const single = cli("verify", file);
      assert.strictEqual(single.status, 1, "the newest file alone still links to <file>.1");

      mid[0] = mid[0].replace('"pi4"', '"xx4"');
      writeLines(`${file}.2`, mid);
      const r2 = cli("verify", file, "--rotated");
      assert.strictEqual(r2.status, 1);
      assert.match(r2.stdout, /line 1 of .*audit\.jsonl\.2 .*altered/);
    });

    it("continues the chain when stopped right after a rotation", async () => {
      await writeRecords(30, { maxBytes: 2500, keep: 3 });
      // What a rotation leaves behind if nothing is written to the new file before a restart.
      fs.rmSync(`${file}.3`);
      fs.renameSync(`${file}.2`, `${file}.3`);
      fs.renameSync(`${file}.1`, `${file}.2`);
      fs.renameSync(file, `${file}.1`);
      const [next] = await writeRecords(1, { maxBytes: 2500, keep: 3 });
      const older = readLines(`${file}.1`);
      assert.strictEqual(next.prev, sha256(older[older.length - 1]), "a new file continues <file>.1's chain");
      assert.strictEqual(next.seq, 31);
      assert.strictEqual(cli("verify", file, "--rotated").status, 0);
      assert.strictEqual(cli("verify", file).stdout, "ok: 1 records\n");
    });
  });

  describe("writing", () => {
    it("keeps 1,000 records appended at once in order, with fsync on", async () => {
      const log = await openLog({ fsync: true });
      const recs: AuditRecord[] = [];
      for (let i = 0; i < 1000; i++) recs.push(log.append(entry(i)));
      assert.ok(log.pending > 0, "append returns before the disk has the record");
      await log.flush();
      assert.strictEqual(log.pending, 0);
      const lines = readLines(file);
      assert.strictEqual(lines.length, 1000);
      lines.forEach((l, i) => assert.strictEqual(JSON.parse(l).auditId, recs[i].auditId));
      const r = cli("verify", file);
      assert.strictEqual(r.stdout, "ok: 1000 records\n");
    });

    it("reports a write error, keeps the record, and writes it once the disk accepts it", async () => {
      const errors: Error[] = [];
      // maxBytes 1: every record after the first rotates the file.
      const log = await openLog({ maxBytes: 1, keep: 1, onError: (e) => errors.push(e) });
      log.append(entry(1));
      await log.flush();
      // A non-empty directory where the rotated file must go makes the rotation fail.
      fs.mkdirSync(`${file}.1`);
      fs.writeFileSync(path.join(`${file}.1`, "x"), "");
      for (let i = 2; i < 6; i++) log.append(entry(i));
      await assert.rejects(log.flush(), /not written/);
      assert.ok(errors.length >= 1, "the error reached onError");
      assert.match(errors[0].message, /cannot write record seq \d+/);
      assert.ok(log.lastError);
      assert.ok(log.pending > 0, "nothing was dropped");

      fs.rmSync(`${file}.1`, { recursive: true });
      log.append(entry(6));
      await log.flush();
      assert.strictEqual(log.pending, 0);
      await log.close();
      const all = await verifyAuditFile(file, { rotated: true });
      assert.ok(all.ok, JSON.stringify(all));
      assert.strictEqual(all.firstSeq, 5);
      assert.strictEqual(all.lastSeq, 6);
    });

    it("reports a full disk without an unhandled rejection", async () => {
      const errors: Error[] = [];
      const log = await AuditLog.open({ file: "/dev/full", clock, onError: (e) => errors.push(e) });
      log.append(entry(1));
      await assert.rejects(log.flush(), /ENOSPC|no space/i);
      assert.strictEqual(errors.length, 1);
      assert.strictEqual(log.pending, 1);
      await assert.rejects(log.close());
    });

    it("appends after an incomplete last line and verify names it", async () => {
      await writeRecords(2);
      fs.appendFileSync(file, '{"seq":3,"audit');
      const warned: Error[] = [];
      const log = await openLog({ onError: (e) => warned.push(e) });
      assert.match(log.warnings.join(), /incomplete record/);
      assert.strictEqual(warned.length, 1);
      const rec = log.append(entry(3));
      await log.close();
      assert.strictEqual(rec.seq, 3);
      const lines = readLines(file);
      assert.strictEqual(lines.length, 4);
      const r = cli("verify", file);
      assert.strictEqual(r.status, 1);
      assert.match(r.stdout, /line 3 of .*not a JSON record/);
    });
  });
});
