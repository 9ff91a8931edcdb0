import fs from "fs";
import path from "path";
import type { NodeAPI } from "node-red";

export type Vars = Record<string, string | number>;

// The English catalogs sit beside the compiled node files (scripts/build-assets.js).
const ENGLISH = path.join(__dirname, "locales", "en-US");
const catalogs = new Map<string, unknown>();

function english(key: string): string | undefined {
  const parts = key.split(".");
  const file = parts[0];
  if (!catalogs.has(file)) {
    let catalog: unknown = null;
    try {
      catalog = JSON.parse(fs.readFileSync(path.join(ENGLISH, `${file}.json`), "utf8"));
    } catch {
      // No catalog: the key itself is shown, as Node-RED does.
    }
    catalogs.set(file, catalog);
  }
  let v: unknown = catalogs.get(file);
  for (const part of parts) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
  return typeof v === "string" ? v : undefined;
}

/** The English text of `key` with `__name__` placeholders filled, as i18next does. */
export function englishText(key: string, vars: Vars = {}): string | undefined {
  return english(key)?.replace(/__([A-Za-z0-9_]+)__/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

/**
 * RED._, or the English catalog when no catalog answers (RED._ hands the key
 * back, as under node-red-node-test-helper, which does not load a module's
 * catalogs): every sentence a user sees lives in locales/, none in code.
 */
export function translate(RED: NodeAPI, key: string, vars: Vars = {}): string {
  const text = RED._(key, vars);
  if (text && text !== key) return text;
  return englishText(key, vars) ?? key;
}
