/**
 * Events per second over a sliding window, for node status lines. Counts go
 * into fixed time buckets so that a tick costs the same at 10 or 10,000 fps.
 */
export class RateMeter {
  private readonly counts: number[];
  private readonly bucketMs: number;
  private current = 0; // index of the bucket that holds `now`
  private currentStart = 0;

  constructor(
    private readonly windowMs = 2000,
    private readonly now: () => number = () => performance.now(),
    buckets = 20,
  ) {
    this.counts = new Array<number>(buckets).fill(0);
    this.bucketMs = windowMs / buckets;
    this.currentStart = this.now();
  }

  tick(count = 1): void {
    this.advance();
    this.counts[this.current] += count;
  }

  rate(): number {
    this.advance();
    const total = this.counts.reduce((a, b) => a + b, 0);
    return (total * 1000) / this.windowMs;
  }

  private advance(): void {
    const t = this.now();
    let steps = Math.floor((t - this.currentStart) / this.bucketMs);
    if (steps <= 0) return;
    if (steps >= this.counts.length) {
      this.counts.fill(0);
      steps = this.counts.length;
      this.currentStart = t;
    } else {
      this.currentStart += steps * this.bucketMs;
    }
    for (let i = 0; i < steps; i++) {
      this.current = (this.current + 1) % this.counts.length;
      this.counts[this.current] = 0;
    }
  }
}
