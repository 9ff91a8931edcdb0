// Settings as the editor stores them: numbers may arrive as text, and an empty
// field means "the default".

export function isBlank(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === "string" && v.trim() === "");
}

export function numberOf(value: unknown, fallback: number): number {
  if (isBlank(value)) return fallback;
  return typeof value === "string" ? Number(value.trim()) : typeof value === "number" ? value : NaN;
}

export function whole(value: unknown, what: string, min: number, max: number, fallback: number): number {
  const n = numberOf(value, fallback);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${what} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return n;
}
