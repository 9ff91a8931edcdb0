// Character-level reading of rule text. USBGuard's grammar is a PEG over
// characters (keywords are matched as prefixes and must be followed by a
// blank), so the parser walks the text with this cursor rather than with a
// token stream: that is how cases like `allow#comment` (valid) and
// `name"x"` (invalid) come out the same as in USBGuard.
import { PolicyParseError } from "./types";

const HEX = /^[0-9a-fA-F]$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

export function isBlank(ch: string): boolean {
  return ch === " " || ch === "\t";
}

export function isHexDigit(ch: string): boolean {
  return ch.length === 1 && HEX.test(ch);
}

function isWordChar(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2e
  );
}

/** How a character is shown in an error message. */
export function describeChar(ch: string): string {
  if (ch === "") return "the end of the rule";
  if (ch === "\r" || ch === "\n") return "a line break";
  if (ch === "\t") return "a tab";
  if (ch === "'") return `"'"`;
  const c = ch.charCodeAt(0);
  return c < 0x20 || c === 0x7f ? `the control character 0x${c.toString(16).padStart(2, "0")}` : `'${ch}'`;
}

export class Scanner {
  pos = 0;

  /**
   * @param text the rule, without its line break
   * @param line 1-based line of the text in its file
   * @param column 1-based column of text[0] in that line
   */
  constructor(
    readonly text: string,
    readonly line = 1,
    readonly column = 1,
    /** Put before every error message (says which nested text is being read). */
    readonly prefix = "",
  ) {}

  fail(message: string, at: number = this.pos): never {
    throw new PolicyParseError(this.prefix + message, this.line, this.column + at);
  }

  get eof(): boolean {
    return this.pos >= this.text.length;
  }

  peek(offset = 0): string {
    return this.text.charAt(this.pos + offset);
  }

  skipBlanks(): number {
    const start = this.pos;
    while (this.pos < this.text.length && isBlank(this.text[this.pos])) this.pos++;
    return this.pos - start;
  }

  /** The run of name-like characters at the cursor, without moving. */
  word(): string {
    let end = this.pos;
    while (end < this.text.length && isWordChar(this.text[end])) end++;
    return this.text.slice(this.pos, end);
  }

  /** Takes `keyword` when it is next and followed by something `follows` accepts. */
  takeKeyword(keyword: string, follows: (ch: string) => boolean): boolean {
    if (!this.text.startsWith(keyword, this.pos)) return false;
    if (!follows(this.text.charAt(this.pos + keyword.length))) return false;
    this.pos += keyword.length;
    return true;
  }

  /**
   * A double-quoted string. USBGuard's grammar admits several escapes but
   * its unescaping accepts only \" \\ and \xHH and rejects the others, so
   * those three are the language; the bytes are read as UTF-8.
   */
  readString(): string {
    const start = this.pos;
    if (this.text[this.pos] !== '"') this.fail(`expected a quoted string, found ${describeChar(this.peek())}`);
    // Most strings are plain: no escape, nothing that needs decoding.
    const close = this.text.indexOf('"', start + 1);
    if (close > 0) {
      const body = this.text.slice(start + 1, close);
      if (!/[\\\r\n\uD800-\uDFFF]/.test(body)) {
        this.pos = close + 1;
        return body;
      }
    }
    this.pos++;
    const bytes: number[] = [];
    for (;;) {
      if (this.pos >= this.text.length) this.fail("unterminated string: missing closing '\"'", start);
      const ch = this.text[this.pos];
      if (ch === '"') {
        this.pos++;
        break;
      }
      if (ch === "\r" || ch === "\n") this.fail("line break inside a string", this.pos);
      if (ch === "\\") {
        const next = this.text.charAt(this.pos + 1);
        if (next === '"' || next === "\\") {
          bytes.push(next.charCodeAt(0));
          this.pos += 2;
          continue;
        }
        if (next === "x") {
          const hex = this.text.slice(this.pos + 2, this.pos + 4);
          if (hex.length !== 2 || !isHexDigit(hex[0]) || !isHexDigit(hex[1])) {
            this.fail("invalid escape: \\x must be followed by two hex digits", this.pos);
          }
          bytes.push(parseInt(hex, 16));
          this.pos += 4;
          continue;
        }
        if (next === "") this.fail("unterminated string: missing closing '\"'", start);
        this.fail(`unsupported escape '\\${next}' in a string: only \\", \\\\ and \\xHH are allowed`, this.pos);
      }
      const cp = this.text.codePointAt(this.pos) as number;
      const len = cp > 0xffff ? 2 : 1;
      if (cp >= 0xd800 && cp <= 0xdfff) this.fail("a string cannot hold an unpaired UTF-16 surrogate", this.pos);
      if (cp < 0x80) bytes.push(cp);
      else for (const b of Buffer.from(this.text.slice(this.pos, this.pos + len), "utf8")) bytes.push(b);
      this.pos += len;
    }
    try {
      return UTF8.decode(Uint8Array.from(bytes));
    } catch {
      return this.fail("the string's bytes are not valid UTF-8", start);
    }
  }

  /**
   * A condition argument: everything up to the first unescaped ')', kept as
   * written (USBGuard keeps and prints it raw). Escapes are checked the way
   * USBGuard's grammar checks them.
   */
  readConditionArgument(): string {
    const open = this.pos;
    this.pos++; // '('
    for (;;) {
      if (this.pos >= this.text.length) this.fail("missing ')' after the condition's argument", open);
      const ch = this.text[this.pos];
      if (ch === ")") break;
      if (ch === "\r" || ch === "\n") this.fail("line break inside a condition's argument");
      if (ch === "\\") {
        const next = this.text.charAt(this.pos + 1);
        if (next === "x") {
          const hex = this.text.slice(this.pos + 2, this.pos + 4);
          if (hex.length !== 2 || !isHexDigit(hex[0]) || !isHexDigit(hex[1])) {
            this.fail("invalid escape: \\x must be followed by two hex digits");
          }
          this.pos += 4;
          continue;
        }
        if (next >= "0" && next <= "9" && next !== "") {
          let n = 1;
          while (n < 3 && /[0-9]/.test(this.text.charAt(this.pos + 1 + n))) n++;
          this.pos += 1 + n;
          continue;
        }
        if (next !== "" && "abfnrtv\\')".includes(next)) {
          this.pos += 2;
          continue;
        }
        this.fail(`invalid escape '\\${next}' in a condition's argument`);
      }
      this.pos++;
    }
    const arg = this.text.slice(open + 1, this.pos);
    this.pos++; // ')'
    return arg;
  }
}
