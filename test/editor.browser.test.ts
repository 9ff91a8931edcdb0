// The editor in a real browser: Node-RED 4 with this package in its user
// directory, driven through Chromium by playwright-core. Every devplane node is
// in the palette, opens its edit dialog without a console error, and every
// example flow imports without an unknown node. The screenshots it takes are
// the README's, in docs/images.
import assert from "assert";
import fs from "fs";
import path from "path";
import type { Browser, Page } from "playwright-core";
import { arduinoUno, FakeSysfs, uvcWebcam } from "./fakes/sysfs";
import { makeDevplaneUserDir, NODE_TYPES, NodeRed, startNodeRed } from "./support/node-red";
import { ROOT } from "./support/rings";

const CHROMIUM = process.env.DEVPLANE_CHROMIUM || "/usr/bin/chromium";
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const IMAGES = path.join(ROOT, "docs", "images");
const EXAMPLES = path.join(ROOT, "examples");
// Waiting for the editor is bounded only so that a broken page cannot hang the run.
const PAGE_GUARD_MS = 180_000;
const VIEWPORT = { width: 1280, height: 800 };

interface FlowNode {
  id: string;
  type: string;
  [key: string]: unknown;
}

/** What went wrong in the page since the last call: console errors and uncaught exceptions. */
class PageProblems {
  private list: string[] = [];

  constructor(page: Page) {
    page.on("console", (m) => {
      if (m.type() === "error") this.list.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => this.list.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => this.list.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ""}`));
  }

  take(): string[] {
    return this.list.splice(0);
  }
}

function exampleFiles(): string[] {
  return fs
    .readdirSync(EXAMPLES)
    .filter((f) => f.endsWith(".json"))
    .sort();
}

const title = HAVE_CHROMIUM
  ? "editor in a browser"
  : `editor in a browser (skipped: no Chromium at ${CHROMIUM}; on Debian: apt-get install chromium, or set DEVPLANE_CHROMIUM)`;

describe(title, function () {
  let red: NodeRed | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let problems: PageProblems;
  let userDir = "";
  let sysfs: FakeSysfs | undefined;

  before(async function () {
    if (!HAVE_CHROMIUM) {
      this.skip();
      return;
    }
    // The example flows use dashboard nodes; the dashboard is a dev dependency, linked in too.
    userDir = makeDevplaneUserDir("editor");
    // The device lists the dialogs show come from a fixed tree, not this machine.
    sysfs = new FakeSysfs();
    sysfs.usb(arduinoUno("1-1", 5));
    sysfs.usb(uvcWebcam("1-3", 7));
    red = await startNodeRed(userDir, { ...process.env, DEVPLANE_SYSFS_ROOT: sysfs.sys, DEVPLANE_UDEV_DATA: sysfs.udevData });

    const { chromium } = await import("playwright-core");
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    page.setDefaultTimeout(PAGE_GUARD_MS);
    problems = new PageProblems(page);
    await page.goto(red.url);
    await page.waitForFunction((types) => {
      const w = window as unknown as { RED?: { nodes?: { getType(t: string): unknown } } };
      return !!w.RED?.nodes?.getType && types.every((t) => w.RED?.nodes?.getType(t)) && !!document.querySelector(".red-ui-palette-node");
    }, NODE_TYPES);
    // Let the editor finish what it starts on load (sidebar, workspace).
    await page.waitForLoadState("networkidle");
    // A blinking cursor in a code editor would make every screenshot differ from the last.
    await page.addStyleTag({ content: ".monaco-editor .cursors-layer, .ace_cursor-layer { visibility: hidden !important; }" });
    fs.mkdirSync(IMAGES, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await red?.stop();
    sysfs?.cleanup();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it("loads the editor with no console error", () => {
    assert.deepStrictEqual(problems.take(), []);
  });

  it("shows every devplane node in the palette, with its label and icon", async () => {
    const palette = await page.evaluate((types) => {
      const w = window as unknown as { RED: { nodes: { getType(t: string): { category: string; paletteLabel?: () => string } } } };
      return types.map((type) => {
        const def = w.RED.nodes.getType(type);
        const el = document.querySelector(`.red-ui-palette-node[data-palette-type="${type}"]`);
        const icon = el?.querySelector(".red-ui-palette-icon") as HTMLElement | null;
        return {
          type,
          category: def.category,
          inPalette: !!el,
          label: el?.querySelector(".red-ui-palette-label")?.textContent?.trim() ?? "",
          icon: icon ? getComputedStyle(icon).backgroundImage : "",
        };
      });
    }, NODE_TYPES);
    for (const p of palette) {
      if (p.category === "config") {
        assert.ok(!p.inPalette, `${p.type} is a config node, not in the palette`);
        continue;
      }
      assert.strictEqual(p.category, "devplane", p.type);
      assert.ok(p.inPalette, `${p.type} is in the palette`);
      // An untranslated label would show its key.
      assert.ok(p.label !== "" && !p.label.includes("."), `${p.type}'s palette label: ${p.label}`);
      assert.match(p.icon, new RegExp(`${p.type}\\.svg`), `${p.type}'s icon`);
      const icon = await page.evaluate(async (url) => (await fetch(url)).status, /url\("(.*)"\)/.exec(p.icon)?.[1] ?? "");
      assert.strictEqual(icon, 200, `${p.type}'s icon loads`);
    }
    const category = page.locator("#red-ui-palette-container-devplane");
    await category.scrollIntoViewIfNeeded();
    await category.screenshot({ path: path.join(IMAGES, "palette.png"), animations: "disabled" });
    assert.deepStrictEqual(problems.take(), []);
  });

  for (const type of NODE_TYPES) {
    it(`opens the edit dialog of ${type} with no console error`, async () => {
      const opened = await page.evaluate((t) => {
        type Def = { category: string; defaults: Record<string, { value: unknown }> };
        const R = (window as unknown as { RED: Record<string, Record<string, (...a: unknown[]) => unknown>> }).RED;
        const def = R.nodes.getType(t) as Def;
        if (def.category === "config") {
          R.editor.editConfig("", t, "_ADD_");
          return "config";
        }
        const node: Record<string, unknown> = { id: R.nodes.id(), type: t, x: 200, y: 120, z: R.workspaces.active(), wires: [] };
        for (const [k, d] of Object.entries(def.defaults)) node[k] = JSON.parse(JSON.stringify(d.value ?? ""));
        R.view.importNodes([node], { generateIds: false, notify: false });
        R.editor.edit(R.nodes.node(node.id as string));
        return "node";
      }, type);
      const tray = page.locator(".red-ui-tray").last();
      await tray.waitFor({ state: "visible" });
      await page.locator(opened === "config" ? "#node-config-dialog-ok" : "#node-dialog-ok").waitFor({ state: "visible" });
      // The dialogs fill their lists from admin routes; wait for those answers.
      await page.waitForLoadState("networkidle");
      await page.waitForTimeout(300);

      // The whole form in the picture: the window grows to fit it, then shrinks back.
      const extra = await page.evaluate(() => {
        // The tray body scrolls a long form; a form that sizes an editor to
        // the window overflows its own box instead.
        const body = Array.from(document.querySelectorAll(".red-ui-tray-body")).pop() as HTMLElement | undefined;
        const form = body?.querySelector("form") as HTMLElement | null | undefined;
        return Math.max(0, body ? body.scrollHeight - body.clientHeight : 0, form ? form.scrollHeight - form.clientHeight : 0);
      });
      if (extra > 0) {
        await page.setViewportSize({ width: VIEWPORT.width, height: VIEWPORT.height + extra + 20 });
        await page.waitForTimeout(300);
      }
      await tray.screenshot({ path: path.join(IMAGES, `${type}.png`), animations: "disabled", caret: "hide" });
      if (extra > 0) await page.setViewportSize(VIEWPORT);

      await page.locator(opened === "config" ? "#node-config-dialog-cancel" : "#node-dialog-cancel").click();
      await tray.waitFor({ state: "detached" });
      if (opened === "node") {
        await page.evaluate((t) => {
          const R = (window as unknown as { RED: { nodes: { filterNodes(f: { type: string }): Array<{ id: string }>; remove(id: string): void }; view: { redraw(full: boolean): void } } }).RED;
          for (const n of R.nodes.filterNodes({ type: t })) R.nodes.remove(n.id);
          R.view.redraw(true);
        }, type);
      }
      assert.deepStrictEqual(problems.take(), [], `${type}: the page reported problems`);
    });
  }

  for (const file of HAVE_CHROMIUM ? exampleFiles() : []) {
    it(`imports examples/${file} with no unknown node`, async () => {
      const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), "utf8")) as FlowNode[];
      assert.ok(Array.isArray(flow) && flow.length > 0, `${file} is a flow: a non-empty array`);
      const result = await page.evaluate((nodes) => {
        type R = {
          nodes: {
            getType(t: string): unknown;
            filterNodes(f: { type: string }): Array<{ id: string; name?: string; _orig?: { type: string } }>;
            eachConfig(cb: (n: { id: string; type: string; _orig?: { type: string } }) => void): void;
            clear(): void;
          };
          view: { importNodes(n: unknown, o: unknown): void };
          workspaces: { active(): string };
        };
        const RED = (window as unknown as { RED: R }).RED;
        const structural = ["tab", "subflow", "group", "junction"];
        const missing = [...new Set(nodes.map((n) => n.type))].filter((t) => !structural.includes(t) && !t.startsWith("subflow:") && !RED.nodes.getType(t));
        const unknownNow = (): Array<{ id: string; _orig?: { type: string } }> => {
          const list: Array<{ id: string; _orig?: { type: string } }> = RED.nodes.filterNodes({ type: "unknown" });
          RED.nodes.eachConfig((n) => {
            if (n.type === "unknown") list.push(n);
          });
          return list;
        };
        const before = new Set(unknownNow().map((n) => n.id));
        RED.view.importNodes(nodes, { generateIds: true, addFlow: true, notify: false });
        const unknown = unknownNow()
          .filter((n) => !before.has(n.id))
          .map((n) => n._orig?.type ?? n.id);
        return { missing, unknown };
      }, flow);
      assert.deepStrictEqual(result.missing, [], `${file}: types the editor does not know`);
      assert.deepStrictEqual(result.unknown, [], `${file}: unknown nodes after import`);
      await page.waitForLoadState("networkidle");
      assert.deepStrictEqual(problems.take(), [], `${file}: the page reported problems`);
    });
  }
});
