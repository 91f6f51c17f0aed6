// An HDR-style histogram: log-linear buckets (64 per power of two, so each
// bucket is at most 1/64 = 1.6% wide), exact below 128. Values are integers
// (microseconds here). Mergeable across processes as a plain counts array.

const SUB = 64;
const LINEAR = 2 * SUB; // values below this have a bucket each

function index(v: number): number {
  if (v < LINEAR) return v;
  const e = 31 - Math.clz32(v) - 6; // v >> e lands in [64, 128)
  return LINEAR + (e - 1) * SUB + ((v >>> e) - SUB);
}

/** The middle of a bucket, as the value reported for it. */
function valueAt(i: number): number {
  if (i < LINEAR) return i;
  const e = Math.floor((i - LINEAR) / SUB) + 1;
  const m = ((i - LINEAR) % SUB) + SUB;
  return (m << e) + ((1 << e) >>> 1);
}

export class Histogram {
  counts: number[] = [];
  total = 0;
  max = 0;

  record(v: number): void {
    const x = v < 0 ? 0 : Math.min(Math.round(v), 0x7fffffff);
    const i = index(x);
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.total++;
    if (x > this.max) this.max = x;
  }

  merge(o: { counts: Array<number | null>; total: number; max: number }): void {
    for (let i = 0; i < o.counts.length; i++) {
      const c = o.counts[i];
      if (c) this.counts[i] = (this.counts[i] ?? 0) + c;
    }
    this.total += o.total;
    if (o.max > this.max) this.max = o.max;
  }

  /** The value at percentile p (0-100); the exact max for 100. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(valueAt(i), this.max);
    }
    return this.max;
  }

  toJSON(): { counts: number[]; total: number; max: number } {
    return { counts: Array.from(this.counts, (c) => c ?? 0), total: this.total, max: this.max };
  }
}
