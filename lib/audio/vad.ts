// Voice activity from energy alone: speech starts when the level stays above
// a threshold for a moment, and stops only after it has stayed below a lower
// one for the hangover time, so pauses between words do not split an utterance.
//
// Time is audio time (the frames pushed), not the wall clock: a capture that
// delivers late, or a source faster than real time, decides the same way.

export interface VadOptions {
  /** Level (dBFS) that starts speech. */
  startDbfs?: number;
  /** Level (dBFS) below which speech may stop; lower than startDbfs, so a level hovering at the threshold does not flap. */
  stopDbfs?: number;
  /** How long the level must stay above startDbfs before speech starts (clicks and knocks are shorter). */
  minSpeechMs?: number;
  /** How long the level must stay below stopDbfs before speech stops. */
  hangoverMs?: number;
}

export interface VadSettings {
  startDbfs: number;
  stopDbfs: number;
  minSpeechMs: number;
  hangoverMs: number;
}

export interface VadEvent {
  type: "start" | "stop";
  /** Audio time of the change, ms since the detector began: where speech began or ended. */
  atMs: number;
  /** For "stop": how long the speech lasted, from its start to its end (hangover excluded). */
  durationMs?: number;
  /** The level of the chunk that decided. */
  levelDbfs: number;
}

export const VAD_DEFAULTS: VadSettings = { startDbfs: -40, stopDbfs: -45, minSpeechMs: 60, hangoverMs: 400 };

function finite(v: unknown, what: string, fallback: number, min: number, max: number): number {
  if (v === undefined || v === null || v === "") return fallback;
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n) || n < min || n > max) {
    throw new RangeError(`${what} must be a number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return n;
}

export function checkVadOptions(o: VadOptions | Record<string, unknown>): VadSettings {
  const r = o as Record<string, unknown>;
  const startDbfs = finite(r.startDbfs, "speech start threshold", VAD_DEFAULTS.startDbfs, -120, 0);
  const stopDbfs = finite(r.stopDbfs, "speech stop threshold", Math.min(startDbfs, startDbfs - 5), -120, 0);
  if (stopDbfs > startDbfs) {
    throw new RangeError(`the stop threshold (${stopDbfs} dBFS) must not be above the start threshold (${startDbfs} dBFS)`);
  }
  return {
    startDbfs,
    stopDbfs,
    minSpeechMs: finite(r.minSpeechMs, "minimum speech", VAD_DEFAULTS.minSpeechMs, 0, 10000),
    hangoverMs: finite(r.hangoverMs, "hangover", VAD_DEFAULTS.hangoverMs, 0, 60000),
  };
}

export class EnergyVad {
  readonly settings: VadSettings;
  private clock = 0;
  private inSpeech = false;
  private loudSince: number | undefined;
  private quietSince: number | undefined;
  private speechStart = 0;

  constructor(options: VadOptions = {}) {
    this.settings = checkVadOptions(options);
  }

  get speaking(): boolean {
    return this.inSpeech;
  }

  /** Audio time pushed so far, in ms: where the next chunk starts. */
  get clockMs(): number {
    return this.clock;
  }

  /** One chunk's level and length; returns the change it caused, if any. */
  push(levelDbfs: number, durationMs: number): VadEvent | undefined {
    const start = this.clock;
    const end = start + durationMs;
    this.clock = end;
    const s = this.settings;
    if (!this.inSpeech) {
      if (levelDbfs < s.startDbfs) {
        this.loudSince = undefined;
        return undefined;
      }
      if (this.loudSince === undefined) this.loudSince = start;
      if (end - this.loudSince < s.minSpeechMs) return undefined;
      this.inSpeech = true;
      this.quietSince = undefined;
      this.speechStart = this.loudSince;
      this.loudSince = undefined;
      return { type: "start", atMs: this.speechStart, levelDbfs };
    }
    if (levelDbfs >= s.stopDbfs) {
      this.quietSince = undefined;
      return undefined;
    }
    if (this.quietSince === undefined) this.quietSince = start;
    if (end - this.quietSince < s.hangoverMs) return undefined;
    this.inSpeech = false;
    const atMs = this.quietSince;
    this.quietSince = undefined;
    return { type: "stop", atMs, durationMs: atMs - this.speechStart, levelDbfs };
  }

  /** Ends speech in progress now (the capture stopped); undefined when there was none. */
  end(levelDbfs = -120): VadEvent | undefined {
    if (!this.inSpeech) return undefined;
    const atMs = this.quietSince ?? this.clock;
    this.reset();
    return { type: "stop", atMs, durationMs: atMs - this.speechStart, levelDbfs };
  }

  /** Forgets any speech in progress (after a gap in the audio). */
  reset(): void {
    this.inSpeech = false;
    this.loudSince = undefined;
    this.quietSince = undefined;
  }
}
