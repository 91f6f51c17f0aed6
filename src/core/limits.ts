// Abuse limits that are per connection or per key: token buckets for request
// rates, and a counter of failed logins per user name and per address.

/** A token bucket: `rate` per second on average, up to `rate * burst` at once. rate 0: unlimited. */
export class Bucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = rate * burst;
    this.last = now;
  }

  /** Takes `n` tokens if there are that many; false (and takes none) otherwise. */
  take(n: number, now: number): boolean {
    if (this.rate === 0) return true;
    const cap = this.rate * this.burst;
    this.tokens = Math.min(cap, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

/** Counts failures per key in fixed windows; a key with `max` failures is blocked until its window ends. */
export class FailureCounter {
  private readonly seen = new Map<string, { count: number; until: number }>();
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** Milliseconds until `key` may try again, or 0 if it may now. */
  blockedFor(key: string, now: number): number {
    if (this.max === 0) return 0;
    const e = this.seen.get(key);
    if (!e || e.until <= now) return 0;
    return e.count >= this.max ? e.until - now : 0;
  }

  fail(key: string, now: number): void {
    if (this.max === 0) return;
    const e = this.seen.get(key);
    if (!e || e.until <= now) this.seen.set(key, { count: 1, until: now + this.windowMs });
    else e.count++;
  }

  reset(key: string): void {
    this.seen.delete(key);
  }

  /** Forgets windows that ended, so the map does not grow with every address ever seen. */
  prune(now: number): void {
    for (const [k, e] of this.seen) if (e.until <= now) this.seen.delete(k);
  }
}
