// The splitter and the delimiter syntax, as pure functions: no port, no timer.
import assert from "assert";
import fc from "fast-check";
import { checkSplitOptions, EMPTY_STATE, flush, Frame, nextDeadline, parseDelimiter, pushBytes, SplitOptions, SplitState, Splitter, tick } from "../lib/serial";

const b = (s: string) => Buffer.from(s, "latin1");
const texts = (frames: Frame[]) => frames.map((f) => f.data.toString("latin1"));

/** Feeds the chunks at times 0, 1, 2...; returns every frame, in order. */
function run(o: SplitOptions, chunks: Buffer[]): Frame[] {
  let s: SplitState = EMPTY_STATE;
  const out: Frame[] = [];
  chunks.forEach((c, i) => {
    const step = pushBytes(o, s, c, i);
    s = step.state;
    out.push(...step.frames);
  });
  return out;
}

/** Cuts `data` at the given offsets. */
function cut(data: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((p) => p % (data.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

describe("serial: splitter", () => {
  it("delimiter: lines in one read, across reads, and the rest kept for later", () => {
    const o: SplitOptions = { mode: "delimiter", delimiter: b("\n") };
    assert.deepStrictEqual(texts(run(o, [b("a\nbb\nccc")])), ["a", "bb"]);
    assert.deepStrictEqual(texts(run(o, [b("he"), b("llo\nwor"), b("ld\n")])), ["hello", "world"]);
    assert.deepStrictEqual(texts(run({ ...o, keepDelimiter: true }, [b("x\ny\n")])), ["x\n", "y\n"]);
    assert.deepStrictEqual(texts(run(o, [b("\n\n")])), ["", ""]);
  });

  it("a multi-byte delimiter split between two reads is found", () => {
    const o: SplitOptions = { mode: "delimiter", delimiter: b("\r\n") };
    assert.deepStrictEqual(texts(run(o, [b("one\r"), b("\ntwo\r\nthr"), b("ee\r"), b("\n")])), ["one", "two", "three"]);
    const end: SplitOptions = { mode: "delimiter", delimiter: b("<END>") };
    assert.deepStrictEqual(texts(run(end, [b("a<E"), b("N"), b("D>b<END"), b(">")])), ["a", "b"]);
  });

  it("how the stream is chunked never changes the frames (delimiter and length)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", "\r", "\n", "\r\n", "xyz"), { maxLength: 40 }),
        fc.array(fc.nat(200), { maxLength: 8 }),
        fc.constantFrom("\n", "\r\n", "\r\n\r\n"),
        fc.integer({ min: 1, max: 7 }),
        (parts, cuts, delim, len) => {
          const data = b(parts.join(""));
          const chunks = cut(data, cuts);
          const d: SplitOptions = { mode: "delimiter", delimiter: b(delim) };
          assert.deepStrictEqual(texts(run(d, chunks)), texts(run(d, [data])));
          assert.deepStrictEqual(texts(run(d, [data])), data.toString("latin1").split(delim).slice(0, -1));
          const l: SplitOptions = { mode: "length", length: len };
          const whole = run(l, [data]);
          assert.deepStrictEqual(texts(run(l, chunks)), texts(whole));
          assert.ok(whole.every((f) => f.data.length === len));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a frame never grows past the buffer size: the bytes so far go out marked overflow", () => {
    const o: SplitOptions = { mode: "delimiter", delimiter: b("\n"), maxBytes: 4 };
    const frames = run(o, [b("abcdefghij"), b("k\nxy\n")]);
    assert.deepStrictEqual(texts(frames), ["abcd", "efgh", "ijk", "xy"]);
    assert.deepStrictEqual(frames.map((f) => f.overflow === true), [true, true, false, false]);
    const t = run({ mode: "timeout", timeoutMs: 50, maxBytes: 3 }, [b("abcdefg")]);
    assert.deepStrictEqual(texts(t), ["abc", "def"]);
  });

  it("timeout: a frame ends after the silence, measured from the last byte", () => {
    const o: SplitOptions = { mode: "timeout", timeoutMs: 100 };
    let s = pushBytes(o, EMPTY_STATE, b("ab"), 1000).state;
    s = pushBytes(o, s, b("cd"), 1050).state;
    assert.strictEqual(nextDeadline(o, s), 1150);
    assert.deepStrictEqual(tick(o, s, 1149).frames, []);
    const due = tick(o, s, 1150);
    assert.deepStrictEqual(texts(due.frames), ["abcd"]);
    assert.strictEqual(nextDeadline(o, due.state), undefined);
    assert.deepStrictEqual(tick(o, due.state, 5000).frames, []);
  });

  it("none: every read is a message as it came", () => {
    assert.deepStrictEqual(texts(run({ mode: "none" }, [b("ab"), b(""), b("c")])), ["ab", "c"]);
  });

  it("flush hands over what waits, marked partial (except a timeout frame, which is complete by then)", () => {
    const d: SplitOptions = { mode: "delimiter", delimiter: b("\n") };
    const s = pushBytes(d, EMPTY_STATE, b("a\nhalf"), 0).state;
    assert.deepStrictEqual(flush(d, s).frames, [{ data: b("half"), partial: true }]);
    assert.deepStrictEqual(flush(d, EMPTY_STATE).frames, []);
    const t: SplitOptions = { mode: "timeout", timeoutMs: 10 };
    assert.deepStrictEqual(flush(t, pushBytes(t, EMPTY_STATE, b("x"), 0).state).frames, [{ data: b("x") }]);
    const sp = new Splitter(d);
    sp.push(b("q"), 0);
    assert.strictEqual(sp.pendingBytes, 1);
    assert.deepStrictEqual(texts(sp.flush()), ["q"]);
  });

  it("bad options are refused with a sentence", () => {
    assert.throws(() => checkSplitOptions({ mode: "lines" as never }), /split must be one of delimiter, timeout, length, none/);
    assert.throws(() => checkSplitOptions({ mode: "delimiter", delimiter: Buffer.alloc(0) }), /delimiter of at least one byte/);
    assert.throws(() => checkSplitOptions({ mode: "timeout", timeoutMs: 0 }), /timeout above 0/);
    assert.throws(() => checkSplitOptions({ mode: "length", length: 2.5 }), /whole number of bytes/);
    assert.throws(() => checkSplitOptions({ mode: "none", maxBytes: -1 }), /buffer size/);
  });
});

describe("serial: delimiter syntax", () => {
  it("reads escapes, hex bytes and plain text", () => {
    assert.deepStrictEqual(parseDelimiter("\\n"), Buffer.from([0x0a]));
    assert.deepStrictEqual(parseDelimiter("\\r\\n"), Buffer.from([0x0d, 0x0a]));
    assert.deepStrictEqual(parseDelimiter("\\x03"), Buffer.from([0x03]));
    assert.deepStrictEqual(parseDelimiter("\\0\\t\\e\\\\"), Buffer.from([0x00, 0x09, 0x1b, 0x5c]));
    assert.deepStrictEqual(parseDelimiter("0x0d0a"), Buffer.from([0x0d, 0x0a]));
    assert.deepStrictEqual(parseDelimiter("0x0D 0x0A"), Buffer.from([0x0d, 0x0a]));
    assert.deepStrictEqual(parseDelimiter("END"), Buffer.from("END"));
    assert.deepStrictEqual(parseDelimiter("°"), Buffer.from("°", "utf8"));
  });

  it("says what is wrong with a delimiter it cannot read", () => {
    assert.throws(() => parseDelimiter(""), /empty/);
    assert.throws(() => parseDelimiter("\\q"), /unknown escape \\q/);
    assert.throws(() => parseDelimiter("\\x0"), /two hex digits/);
    assert.throws(() => parseDelimiter("ab\\"), /lone backslash/);
  });
});
