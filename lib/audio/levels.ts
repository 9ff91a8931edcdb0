// Level arithmetic on dBFS values, for messages that cover several chunks.

/** What the native meter reports for silence: below anything 32-bit samples resolve. */
export const FLOOR_DBFS = -120;

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export function toDbfs(ratio: number): number {
  if (!(ratio > 0)) return FLOOR_DBFS;
  return round2(Math.max(FLOOR_DBFS, 20 * Math.log10(ratio)));
}

/**
 * Levels over consecutive stretches of audio from theirs: RMS is the root of
 * the frame-weighted mean of squares, peak the largest peak.
 */
export function combineLevels(
  parts: Array<{ frames: number; rmsDbfs: number[]; peakDbfs: number[] }>,
): { rmsDbfs: number[]; peakDbfs: number[] } {
  const channels = parts.length ? parts[0].rmsDbfs.length : 0;
  const rmsDbfs: number[] = [];
  const peakDbfs: number[] = [];
  for (let c = 0; c < channels; c++) {
    let energy = 0;
    let frames = 0;
    let peak = FLOOR_DBFS;
    for (const p of parts) {
      const rms = p.rmsDbfs[c] <= FLOOR_DBFS ? 0 : 10 ** (p.rmsDbfs[c] / 20);
      energy += rms * rms * p.frames;
      frames += p.frames;
      peak = Math.max(peak, p.peakDbfs[c]);
    }
    rmsDbfs.push(frames ? toDbfs(Math.sqrt(energy / frames)) : FLOOR_DBFS);
    peakDbfs.push(peak);
  }
  return { rmsDbfs, peakDbfs };
}

/** The loudest channel's RMS: what a voice detector or a meter watches. */
export function loudestRms(level: { rmsDbfs: number[] }): number {
  return level.rmsDbfs.length ? Math.max(...level.rmsDbfs) : FLOOR_DBFS;
}
