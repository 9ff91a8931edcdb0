// Shell-style globs for descriptor strings. USB strings differ in case between
// firmware versions ("Arduino LLC", "Arduino Llc"), so matching ignores case.

const cache = new Map<string, RegExp>();

/** `*` any run, `?` one character, `[abc]`/`[!abc]` a set, `\x` a literal x. */
export function globToRegExp(glob: string): RegExp {
  const hit = cache.get(glob);
  if (hit) return hit;
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "\\" && i + 1 < glob.length) re += escape(glob[++i]);
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end === -1) {
        re += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = end;
    } else re += escape(c);
  }
  const compiled = new RegExp(`^${re}$`, "i");
  cache.set(glob, compiled);
  return compiled;
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

export function globMatch(glob: string, value: string | undefined): boolean {
  return value !== undefined && globToRegExp(glob).test(value);
}
