// The built-in profiles: JSON files in lib/profiles/db, data rather than code
// so that adding a board is a pull request to a list (docs/profiles.md).
import fs from "fs";
import path from "path";
import { compileProfile, CompiledProfile } from "./matcher";
import type { ProfileSpec } from "./types";
import { validateProfiles } from "./validate";

/**
 * tsc does not copy JSON, so from dist/lib/profiles the files are found in
 * the source tree, unless the build put a copy beside the compiled code.
 */
export function databaseDir(): string {
  const candidates = [path.join(__dirname, "db"), path.resolve(__dirname, "..", "..", "..", "lib", "profiles", "db")];
  const found = candidates.find((d) => fs.existsSync(path.join(d, "classes.json")));
  if (!found) throw new Error(`the built-in profile database was not found (looked in ${candidates.join(", ")})`);
  return found;
}

export interface DatabaseFile {
  file: string;
  profiles: ProfileSpec[];
  errors: string[];
}

/** Every database file, validated, in a stable order (the file name decides ties). */
export function readDatabase(dir = databaseDir()): DatabaseFile[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const text = fs.readFileSync(path.join(dir, file), "utf8");
      const { profiles, errors } = validateProfiles(text, { requireId: true });
      return { file, profiles, errors: errors.map((e) => `${file}: ${e}`) };
    });
}

let builtins: CompiledProfile[] | undefined;

/** The compiled built-ins, read once. A broken database file is a bug, so it throws. */
export function builtinProfiles(): CompiledProfile[] {
  if (builtins) return builtins;
  const files = readDatabase();
  const errors = files.flatMap((f) => f.errors);
  if (errors.length > 0) throw new Error(`the built-in profile database is broken: ${errors.join("; ")}`);
  const ids = new Set<string>();
  const out: CompiledProfile[] = [];
  for (const f of files) {
    for (const spec of f.profiles) {
      if (spec.id !== undefined && ids.has(spec.id)) throw new Error(`the built-in profile id "${spec.id}" is used twice (${f.file})`);
      if (spec.id !== undefined) ids.add(spec.id);
      out.push(compileProfile(spec, "builtin", out.length));
    }
  }
  builtins = out;
  return out;
}
