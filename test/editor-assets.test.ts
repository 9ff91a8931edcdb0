// What the editor shows for each node, checked from the files Node-RED reads:
// the palette entry, icons, help, i18n keys and the length of status texts.
import assert from "assert";
import fs from "fs";
import path from "path";
import { englishText } from "../nodes/i18n";
import { clip, compactCount, compactRate, countUpTo999, STATUS_MAX } from "../nodes/status";
import { ROOT } from "./support/rings";

type Json = { [key: string]: Json } | string;

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { "node-red": { nodes: Record<string, string> } };
const TYPES = Object.keys(pkg["node-red"].nodes);
const read = (...parts: string[]): string => fs.readFileSync(path.join(ROOT, ...parts), "utf8");
const catalog = (type: string): Json => (JSON.parse(read("locales", "en-US", `${type}.json`)) as Record<string, Json>)[type];
const editorHtml = (type: string): string => read("nodes", `${type}.html`);
const isConfig = (type: string): boolean => /category:\s*"config"/.test(editorHtml(type));

function lookup(tree: Json, key: string): Json | undefined {
  let v: Json | undefined = tree;
  for (const part of key.split(".")) v = v !== undefined && typeof v === "object" ? v[part] : undefined;
  return v;
}

/** Every string under an object named "status", at any depth, with its key. */
function statusTexts(tree: Json, where = "", inStatus = false): Array<[string, string]> {
  if (typeof tree === "string") return inStatus ? [[where, tree]] : [];
  return Object.entries(tree).flatMap(([k, v]) => statusTexts(v, where ? `${where}.${k}` : k, inStatus || k === "status"));
}

/**
 * The longest value each status placeholder takes. Counters that grow without
 * bound go through compactCount/compactRate (four characters), counts of
 * devices and decisions through countUpTo999 (three); a ring has at most 32
 * readers; levels bottom out at -120 dBFS.
 */
const LONGEST: Record<string, string> = {
  fps: compactRate(999_999),
  lost: compactCount(999_999),
  missed: compactCount(999_999),
  count: countUpTo999(5000),
  issues: countUpTo999(5000),
  n: countUpTo999(5000),
  allowed: countUpTo999(5000),
  denied: countUpTo999(5000),
  readers: "32",
  level: (-120).toFixed(0),
  id: "ffff:ffff",
  baud: "4000000",
  // serial-stream cuts the port name to leave room for the rate.
  port: clip("ttyUSB-a-very-long-port-name", STATUS_MAX - 1 - "4000000".length),
};

describe("editor assets", () => {
  it("lists every node type in package.json once, each with its editor, help and catalog files", () => {
    assert.ok(TYPES.length >= 10, `${TYPES.length} node types`);
    for (const type of TYPES) {
      assert.strictEqual(pkg["node-red"].nodes[type], `dist/nodes/${type}.js`);
      for (const file of [path.join("nodes", `${type}.ts`), path.join("nodes", `${type}.html`), path.join("locales", "en-US", `${type}.json`), path.join("locales", "en-US", `${type}.html`)]) {
        assert.ok(fs.existsSync(path.join(ROOT, file)), `${file} exists`);
      }
      assert.match(editorHtml(type), new RegExp(`data-template-name="${type}"`), `${type}.html has its edit template`);
      assert.match(editorHtml(type), new RegExp(`RED\\.nodes\\.registerType\\("${type}", \\{`), `${type}.html registers its type with an inline definition (the Flow Library reads it)`);
    }
  });

  it("gives every flow node a palette label, an icon, and a label on each port", () => {
    for (const type of TYPES.filter((t) => !isConfig(t))) {
      const html = editorHtml(type);
      assert.match(html, /category:\s*"devplane"/, `${type} is in the devplane category`);
      assert.match(html, new RegExp(`icon:\\s*"${type}\\.svg"`), `${type} uses its own icon`);
      assert.ok(fs.existsSync(path.join(ROOT, "icons", `${type}.svg`)), `icons/${type}.svg exists`);
      assert.match(html, /paletteLabel:\s*function/, `${type} has a palette label`);
      assert.ok(typeof lookup(catalog(type), "label.palette") === "string", `${type} has label.palette`);
      const inputs = Number(/inputs:\s*(\d+)/.exec(html)?.[1] ?? 0);
      const outputs = Number(/outputs:\s*(\d+)/.exec(html)?.[1] ?? 0);
      if (inputs > 0) assert.match(html, /inputLabels:\s*function/, `${type} labels its input`);
      if (outputs > 0) assert.match(html, /outputLabels:\s*function/, `${type} labels its outputs`);
    }
  });

  it("draws every icon white on a transparent background", () => {
    for (const file of fs.readdirSync(path.join(ROOT, "icons"))) {
      const svg = read("icons", file);
      assert.match(svg, /viewBox="0 0 40 60"/, `${file} is 40x60, as Node-RED's icons are`);
      const colours = [...svg.matchAll(/(?:fill|stroke|stop-color|color)\s*[=:]\s*"?([^";\s]+)/g)].map((m) => m[1].toLowerCase());
      for (const c of colours) assert.ok(["#fff", "#ffffff", "white", "none"].includes(c), `${file} uses ${c}`);
      assert.ok(!/<(image|style)\b/.test(svg), `${file} has no bitmap or stylesheet`);
      assert.ok(!/opacity\s*[=:]\s*"?0?\.\d/.test(svg), `${file} has no see-through grey`);
      // A white rectangle over the whole canvas would be a background, not an icon.
      assert.ok(!/<rect[^>]*width="40"[^>]*height="60"/.test(svg), `${file} has no background`);
    }
  });

  it("writes help as core nodes do: a one-sentence tooltip, then Inputs, Outputs, Details, References", () => {
    for (const type of TYPES) {
      const html = read("locales", "en-US", `${type}.html`);
      const m = new RegExp(`<script type="text/html" data-help-name="${type}">([\\s\\S]*?)</script>`).exec(html);
      assert.ok(m, `locales/en-US/${type}.html holds the help for ${type}`);
      const body = m[1].trim();
      const first = /^<p>([\s\S]*?)<\/p>/.exec(body);
      assert.ok(first, `${type}: the help starts with a paragraph, the palette tooltip`);
      const tip = first[1].replace(/<[^>]+>/g, "").replace(/\s+/g, " ").trim();
      assert.ok(tip.length <= 120, `${type}: the tooltip is short (${tip.length} characters): ${tip}`);
      assert.match(tip, /^[A-Z][^.]*\.$/, `${type}: the tooltip is one sentence: ${tip}`);
      const headings = [...body.matchAll(/<h3>([^<]+)<\/h3>/g)].map((h) => h[1]);
      // A config node has no ports; it may list its properties instead.
      const expected = isConfig(type) ? [...(headings.includes("Properties") ? ["Properties"] : []), "Details", "References"] : ["Inputs", "Outputs", "Details", "References"];
      assert.deepStrictEqual(headings, expected, `${type}: sections`);
      if (!isConfig(type)) {
        const ports = body.slice(body.indexOf("<h3>Inputs</h3>"), body.indexOf("<h3>Details</h3>"));
        assert.match(ports, /<dl class="message-properties">/, `${type}: inputs and outputs are message property lists`);
      }
      assert.match(body.slice(body.indexOf("<h3>References</h3>")), /<a href="https:\/\//, `${type}: references link somewhere`);
    }
  });

  it("finds in the catalog every key the editor and the runtime ask for", () => {
    for (const type of TYPES) {
      const tree = catalog(type);
      const html = editorHtml(type);
      const keys = new Set<string>();
      for (const m of html.matchAll(/data-i18n="(?:\[[a-z]+\])?([^"]+)"/g)) keys.add(m[1]);
      for (const m of html.matchAll(/\bt\("([A-Za-z0-9_.-]+)"\s*[,)]/g)) keys.add(`${type}.${m[1]}`);
      const ts = read("nodes", `${type}.ts`);
      for (const m of ts.matchAll(/\bt\("([A-Za-z0-9_.-]+)"\s*[,)]/g)) keys.add(`${type}.${m[1]}`);
      for (const m of ts.matchAll(/translate\(RED, "([A-Za-z0-9_.-]+)"\s*[,)]/g)) keys.add(m[1]);
      // Keys picked from a table: every value of a STATUS_KEYS map.
      const table = /STATUS_KEYS[^=]*=\s*\{([\s\S]*?)\};/.exec(ts);
      if (table) for (const m of table[1].matchAll(/:\s*"([A-Za-z]+)"/g)) keys.add(`${type}.status.${m[1]}`);
      assert.ok(keys.size > 3, `${type}: found the keys it uses`);
      for (const key of keys) {
        if (key.startsWith("node-red:")) continue;
        const [ns, ...rest] = key.split(".");
        assert.strictEqual(ns, type, `${type} uses ${key}, from its own catalog`);
        assert.strictEqual(typeof lookup(tree, rest.join(".")), "string", `locales/en-US/${type}.json has ${key}`);
      }
    }
  });

  it("sets status texts only from the catalog, each under 20 characters", () => {
    let checked = 0;
    for (const type of TYPES) {
      const ts = read("nodes", `${type}.ts`);
      for (const m of ts.matchAll(/\btext:\s*([^,}\n]+)/g)) {
        assert.match(m[1], /^(t\(|translate\(|clip\()/, `${type}.ts: status text ${m[1]} comes from the catalog (or is a clipped name)`);
      }
      for (const [key, text] of statusTexts(catalog(type))) {
        const filled = text.replace(/__([A-Za-z0-9_]+)__/g, (_w, name: string) => {
          assert.ok(name in LONGEST, `${type}.${key}: the test knows how long __${name}__ gets`);
          return LONGEST[name];
        });
        assert.ok([...filled].length <= STATUS_MAX, `${type}.${key}: "${filled}" is ${[...filled].length} characters`);
        checked++;
      }
    }
    assert.ok(checked > 50, `${checked} status texts`);
  });

  it("keeps the helpers that shorten status values within their widths", () => {
    for (const n of [0, 1, 9, 999, 1000, 9999, 10_000, 99_999, 123_456, 999_999, 1_000_000, 5e8, 1e9, 1e15]) {
      assert.ok(compactCount(n).length <= 4, `compactCount(${n}) = ${compactCount(n)}`);
      assert.ok(compactRate(n).length <= 4, `compactRate(${n}) = ${compactRate(n)}`);
      assert.ok(countUpTo999(n).length <= 3, `countUpTo999(${n}) = ${countUpTo999(n)}`);
    }
    assert.strictEqual(compactCount(12_345), "12k");
    assert.strictEqual(compactRate(2.54), "2.5");
    assert.strictEqual(compactRate(30), "30");
    assert.strictEqual(countUpTo999(1200), "1k+");
    assert.strictEqual(clip("ttyUSB0"), "ttyUSB0");
    assert.strictEqual(clip("usb-Arduino_Srl_Arduino_Uno_754393", 10), "usb-Ardui…");
  });

  it("falls back to the English catalog, filling placeholders, when Node-RED has none loaded", () => {
    assert.strictEqual(englishText("shm-subscribe.status.missed", { fps: "25", missed: "3" }), "25 fps, 3 lost");
    assert.strictEqual(englishText("serial-stream.errors.permission.unknown", { path: "/dev/ttyACM0", user: "pi" })?.startsWith("permission denied opening /dev/ttyACM0"), true);
    assert.strictEqual(englishText("shm-subscribe.no.such.key"), undefined);
  });
});
