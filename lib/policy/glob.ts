// Shell-style globs for the devnode attribute. `*` and `?` stop at `/` as
// in the shell, so "/dev/tty*" cannot reach into "/dev/tty/whatever", and a
// backslash makes the next character literal (ruleForDevice uses that to
// write a path that contains glob characters).
//
// Matching splits pattern and path at "/" and matches segment by segment
// with the linear wildcard algorithm. A RegExp would be shorter, but rules
// are user input, and a pattern like "*a*a*a*a*a*b" makes a backtracking
// RegExp take exponential time.

type Token = { t: "lit"; c: string } | { t: "any" } | { t: "star" } | { t: "class"; negate: boolean; ranges: [number, number][] };

export type GlobMatcher = (path: string) => boolean;

function tokenize(pattern: string): Token[][] {
  const chars = Array.from(pattern);
  const segments: Token[][] = [[]];
  let seg = segments[0];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === "/") {
      seg = [];
      segments.push(seg);
    } else if (ch === "*") {
      if (seg[seg.length - 1]?.t !== "star") seg.push({ t: "star" });
    } else if (ch === "?") {
      seg.push({ t: "any" });
    } else if (ch === "\\") {
      if (i + 1 >= chars.length) throw new Error(`glob "${pattern}" ends with a lone backslash`);
      const next = chars[++i];
      if (next === "/") {
        seg = [];
        segments.push(seg);
      } else {
        seg.push({ t: "lit", c: next });
      }
    } else if (ch === "[") {
      let j = i + 1;
      let negate = false;
      if (chars[j] === "!" || chars[j] === "^") {
        negate = true;
        j++;
      }
      const ranges: [number, number][] = [];
      let first = true;
      for (;;) {
        if (j >= chars.length) throw new Error(`glob "${pattern}" has "[" without a closing "]"`);
        let c = chars[j];
        if (c === "]" && !first) break;
        first = false;
        if (c === "\\" && j + 1 < chars.length) c = chars[++j];
        if (c === "/") throw new Error(`glob "${pattern}": a character class cannot match "/"`);
        let hi = c;
        if (chars[j + 1] === "-" && j + 2 < chars.length && chars[j + 2] !== "]") {
          hi = chars[j + 2] === "\\" && j + 3 < chars.length ? chars[j + 3] : chars[j + 2];
          j += chars[j + 2] === "\\" ? 3 : 2;
          if (hi === "/") throw new Error(`glob "${pattern}": a character class cannot match "/"`);
        }
        const lo = c.codePointAt(0) as number;
        const up = hi.codePointAt(0) as number;
        if (lo > up) throw new Error(`glob "${pattern}" has the reversed range "${c}-${hi}"`);
        ranges.push([lo, up]);
        j++;
      }
      seg.push({ t: "class", negate, ranges });
      i = j;
    } else {
      seg.push({ t: "lit", c: ch });
    }
  }
  return segments;
}

function single(tok: Token, ch: string): boolean {
  switch (tok.t) {
    case "lit":
      return tok.c === ch;
    case "any":
      return true;
    case "class": {
      const cp = ch.codePointAt(0) as number;
      let inside = false;
      for (const [lo, hi] of tok.ranges) if (cp >= lo && cp <= hi) inside = true;
      return inside !== tok.negate;
    }
    case "star":
      return false;
  }
}

function matchSegment(tokens: Token[], s: string[]): boolean {
  let ti = 0;
  let si = 0;
  let starTi = -1;
  let starSi = 0;
  while (si < s.length) {
    const tok = tokens[ti];
    if (tok !== undefined && tok.t !== "star" && single(tok, s[si])) {
      ti++;
      si++;
    } else if (tok !== undefined && tok.t === "star") {
      starTi = ti++;
      starSi = si;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      si = ++starSi;
    } else {
      return false;
    }
  }
  while (tokens[ti]?.t === "star") ti++;
  return ti === tokens.length;
}

/** A matcher for the glob; throws an Error saying what is wrong with the pattern. */
export function compileGlob(pattern: string): GlobMatcher {
  const segments = tokenize(pattern);
  const literal = segments.every((seg) => seg.every((t) => t.t === "lit"));
  if (literal) {
    const text = segments.map((seg) => seg.map((t) => (t as { c: string }).c).join("")).join("/");
    return (path) => path === text;
  }
  return (path) => {
    const parts = path.split("/");
    if (parts.length !== segments.length) return false;
    for (let i = 0; i < parts.length; i++) if (!matchSegment(segments[i], Array.from(parts[i]))) return false;
    return true;
  };
}

/** Writes `text` as a glob that matches exactly it. */
export function escapeGlob(text: string): string {
  return text.replace(/[\\*?[]/g, (c) => "\\" + c);
}
