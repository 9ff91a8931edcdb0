// Checks done in TypeScript before native code sees the values, so that a
// bad setting gives a sentence a user understands.

const NAME = /^[A-Za-z0-9._-]{1,200}$/;

export function isValidRingName(name: unknown): name is string {
  return typeof name === "string" && NAME.test(name) && name !== "." && name !== "..";
}

export function checkRingName(name: unknown): string {
  if (!isValidRingName(name)) {
    throw new RangeError(
      `invalid ring name ${JSON.stringify(name)}: use 1 to 200 of A-Z a-z 0-9 . _ - (not "." or "..")`,
    );
  }
  return name;
}

export const RING_MODES = ["600", "640", "660"] as const;
export type RingMode = (typeof RING_MODES)[number];

/** "600" | "640" | "660" (as the editor stores it) to a file mode. */
export function parseRingMode(mode: unknown): number {
  const text = mode === undefined || mode === "" ? "600" : String(mode);
  if (!(RING_MODES as readonly string[]).includes(text)) {
    throw new RangeError(`mode must be 600, 640 or 660 (got ${JSON.stringify(mode)})`);
  }
  return parseInt(text, 8);
}
