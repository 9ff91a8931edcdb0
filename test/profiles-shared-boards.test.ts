// Conformance of the built-in database with board tables taken from the
// boards.txt of the Arduino, arduino-pico, Arduino Mbed and arduino-esp32 cores
// (reads ../shared/peer-tests/boards; see its SOURCE.md).
//
// "Official" boards are those their maker ships in its own core: Arduino's
// boards in Arduino's cores (avr, samd, renesas, mbed, and the Nano ESP32 and
// Nano RP2040 Connect in the community cores), Raspberry Pi's Pico boards,
// and Espressif's own ids. Deliberate exceptions:
// - Arduino Tian (10c4:ea70): its USB port is a Silicon Labs CP2105 bridge. The
//   id names that chip, which many other boards carry, so it resolves to the
//   generic CP2105 profile, at low confidence, by design.
// - boards of other makers in Arduino's cores (Adafruit Circuit Playground,
//   239a) are not Arduino's: they resolve to the Adafruit vendor profile.
// - redscorp RP2040 boards (arduino-pico) borrow Arduino's vendor id: 2341:005f
//   resolves to the generic Arduino vendor profile and 2341:025f to the Nicla
//   Vision, the official board that owns it.
import assert from "assert";
import fs from "fs";
import path from "path";
import { identify } from "../lib/profiles";
import { ROOT } from "./support/rings";

const BOARDS = path.join(path.resolve(ROOT, "..", "shared", "peer-tests"), "boards");

interface Row {
  core: string;
  id: string;
  name: string;
  vid: string;
  pid: string;
}

function readTable(file: string): Row[] {
  const lines = fs.readFileSync(path.join(BOARDS, file), "utf8").split("\n");
  const header = lines[0].split("\t");
  const col = (n: string) => header.indexOf(n);
  return lines
    .slice(1)
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => l.split("\t"))
    .map((c) => ({ core: c[col("core")], id: c[col("board_id")], name: c[col("board_name")], vid: c[col("vid")], pid: c[col("pid")] }));
}

const ARDUINO_CORES = new Set(["arduino-avr", "arduino-samd", "arduino-renesas", "arduino-mbed"]);
const RASPBERRY_PI_BOARDS = new Set(["rpipico", "rpipicow", "rpipico2", "rpipico2w", "pico"]);
const ESPRESSIF_BOARDS = new Set(["esp32_family", "esp32s2", "esp32s2usb"]);
const ARDUINO_IN_OTHER_CORES = new Set(["arduino_nano_connect", "nano_nora"]);
const NOT_BY_ID = new Map([["10c4:ea70", "a generic CP2105 bridge"]]);

const FAMILY_OF_VENDOR: Record<string, RegExp> = {
  "2341": /^Arduino/,
  "2a03": /^Arduino/,
  "2e8a": /^Raspberry Pi RP2040\/RP2350$/,
  "303a": /^Espressif ESP32$/,
};

function official(r: Row): boolean {
  if (ARDUINO_CORES.has(r.core)) return !r.name.startsWith("Adafruit ") && !(r.core === "arduino-mbed" && r.id === "pico");
  return ARDUINO_IN_OTHER_CORES.has(r.id) || (RASPBERRY_PI_BOARDS.has(r.id) && r.vid === "2e8a") || (r.core === "arduino-esp32" && ESPRESSIF_BOARDS.has(r.id));
}

const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

describe("profiles: conformance with the Arduino, Pico, Mbed and ESP32 board tables (reads ../shared)", function () {
  before(function () {
    if (!fs.existsSync(path.join(BOARDS, "boards-vidpid.tsv"))) this.skip();
  });

  it("every official board's VID:PID resolves by product id to that board's name or family", () => {
    const rows = readTable("boards-vidpid.tsv").filter(official);
    assert.ok(rows.length > 150, `the table has the official boards (${rows.length})`);
    const failures: string[] = [];
    for (const r of rows) {
      const key = `${r.vid}:${r.pid}`;
      const { profile } = identify({ usb: { vid: r.vid, pid: r.pid } }, { usbIds: null });
      if (NOT_BY_ID.has(key)) {
        if (!profile.why.includes("names the chip, not the board") || profile.confidence > 0.4) failures.push(`${key} ${r.name}: should resolve to ${NOT_BY_ID.get(key)}, got ${profile.name}`);
        continue;
      }
      const byName = norm(profile.name) === norm(r.name) || (profile.candidates ?? []).some((c) => norm(c) === norm(r.name));
      // Espressif's and Raspberry Pi's shared ids name the chip family on purpose.
      const byFamily = !ARDUINO_CORES.has(r.core) && !ARDUINO_IN_OTHER_CORES.has(r.id) && FAMILY_OF_VENDOR[r.vid]?.test(profile.family ?? "");
      if (!profile.matched.includes("pid") || !(byName || byFamily)) {
        failures.push(`${key} ${r.core}/${r.id} "${r.name}" resolved to "${profile.name}" (${profile.family ?? "no family"}, matched on ${profile.matched.join("+") || "nothing"})`);
      }
    }
    assert.deepStrictEqual(failures, []);
  });

  it("ids that several official boards share list all of them", () => {
    const rows = readTable("boards-vidpid.tsv").filter(official);
    const byKey = new Map<string, Set<string>>();
    for (const r of rows) {
      const key = `${r.vid}:${r.pid}`;
      if (!byKey.has(key)) byKey.set(key, new Set());
      byKey.get(key)?.add(r.name);
    }
    const shared = [...byKey].filter(([key, names]) => names.size > 1 && !NOT_BY_ID.has(key));
    assert.ok(shared.length >= 3, "the table has shared ids (Nano 33 BLE/Stella, M0/M0 Pro, Portenta H7)");
    for (const [key, names] of shared) {
      const [vid, pid] = key.split(":");
      const { profile } = identify({ usb: { vid, pid } }, { usbIds: null });
      const listed = new Set((profile.candidates ?? [profile.name]).map(norm));
      for (const n of names) assert.ok(listed.has(norm(n)), `${key}: ${n} missing from ${JSON.stringify(profile.candidates)}`);
      assert.ok(profile.confidence < 0.9, `${key}: a shared id is less certain`);
    }
  });

  it("every row of the Arduino, Raspberry Pi and Espressif vendor ids resolves at least to that maker's family", () => {
    const rows = readTable("boards-vidpid-detailed.tsv").filter((r) => FAMILY_OF_VENDOR[r.vid] !== undefined);
    assert.ok(rows.length > 800);
    const failures = rows
      .map((r) => ({ r, p: identify({ usb: { vid: r.vid, pid: r.pid } }, { usbIds: null }).profile }))
      .filter(({ r, p }) => !FAMILY_OF_VENDOR[r.vid].test(p.family ?? ""))
      .map(({ r, p }) => `${r.vid}:${r.pid} ${r.name} -> ${p.name} (${p.family})`);
    assert.deepStrictEqual(failures, []);
  });
});
