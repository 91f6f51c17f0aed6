// Abuse limits that are per connection or per key: token buckets for request
// rates (also kept per key: registrations per address, logins per user), failure
// counts with an exponential backoff, counts of work in progress per key, and a
// bounded pool of slots for expensive work (password hashing). Every time here is
// monotonic (performance.now(), in ms): a wall clock stepped back must not
// stretch a window.
import { ProtocolError } from "../protocol/errors.ts";

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

  private refill(now: number): void {
    const cap = this.rate * this.burst;
    this.tokens = Math.min(cap, this.tokens + (Math.max(0, now - this.last) * this.rate) / 1000);
    this.last = Math.max(this.last, now);
  }

  /** Takes `n` tokens if there are that many; false (and takes none) otherwise. */
  take(n: number, now: number): boolean {
    if (this.rate === 0) return true;
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` tokens are there (0: now). */
  waitFor(n: number, now: number): number {
    if (this.rate === 0) return 0;
    this.refill(now);
    return this.tokens >= n ? 0 : ((n - this.tokens) * 1000) / this.rate;
  }

  /** Gives back `n` tokens taken for work that was then not done. */
  refund(n: number): void {
    this.tokens = Math.min(this.rate * this.burst, this.tokens + n);
  }

  /** Full again: as good as new, so a keyed map may forget it. */
  full(now: number): boolean {
    if (this.rate === 0) return true;
    this.refill(now);
    return this.tokens >= this.rate * this.burst;
  }
}

/** A bucket per key (an address, a user name), created full on first use and forgotten once full again. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, Bucket>();
  /** `max` per `periodMs` on average, all of them at once at most. max 0: unlimited. */
  constructor(
    private readonly max: number,
    private readonly periodMs: number,
  ) {}

  private get(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = new Bucket((this.max * 1000) / this.periodMs, this.periodMs / 1000, now)));
    return b;
  }

  take(key: string, now: number): boolean {
    return this.max === 0 || this.get(key, now).take(1, now);
  }

  /** Milliseconds until `key` may take one (0: now); takes nothing. */
  waitFor(key: string, now: number): number {
    if (this.max === 0) return 0;
    return this.buckets.get(key)?.waitFor(1, now) ?? 0;
  }

  refund(key: string): void {
    this.buckets.get(key)?.refund(1);
  }

  prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.full(now)) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}

interface Failures {
  /** Failures (and attempts in progress), less those forgiven with time; fractional. */
  count: number;
  /** When `count` was last brought up to date. */
  seen: number;
  /** The last failure, or start of an attempt: backoff is measured from it. */
  at: number;
  /** Attempts begun and not yet finished (already in `count`). */
  inflight: number;
}

/**
 * Failures per key with an exponential backoff: `free` failures cost nothing; from then
 * on each attempt must wait 1 s after the last failure, doubling with every further
 * failure, up to `maxMs`. There is no lockout: a right answer after the wait is always
 * accepted. One failure is forgiven every `forgetMs`, so a key that stops failing
 * recovers its free attempts. An attempt counts from when it begins (`begin`), so
 * attempts in progress at once are counted like failures.
 *
 * The count stops at `cap` (`free + ceil(log2(maxMs / 1 s)) + 1`): past it the wait is
 * the longest already, and more failures would only postpone recovery. However many
 * failures a key piled up, it is back to a 1 s wait within (cap - free) x `forgetMs`
 * and forgotten within cap x `forgetMs`.
 */
export class Backoff {
  private readonly seen = new Map<string, Failures>();
  readonly cap: number;
  constructor(
    private readonly free: number,
    private readonly maxMs: number,
    private readonly forgetMs: number,
  ) {
    this.cap = free + Math.max(0, Math.ceil(Math.log2(maxMs / 1000))) + 1;
  }

  private entry(key: string, now: number): Failures | undefined {
    const e = this.seen.get(key);
    if (e && now > e.seen) {
      e.count = Math.max(e.inflight, e.count - (now - e.seen) / this.forgetMs);
      e.seen = now;
    }
    return e;
  }

  /** Milliseconds until `key` may try again, or 0 if it may now. free 0: never. */
  waitFor(key: string, now: number): number {
    if (this.free === 0) return 0;
    const e = this.entry(key, now);
    if (!e) return 0;
    const over = Math.ceil(e.count - 1e-9) - this.free; // a failure counts whole until it is forgiven
    if (over < 0) return 0;
    const wait = Math.min(1000 * 2 ** Math.min(over, 30), this.maxMs);
    return Math.max(0, e.at + wait - now);
  }

  /** An attempt begins: counted as a failure until it ends. */
  begin(key: string, now: number): void {
    if (this.free === 0) return;
    let e = this.entry(key, now);
    if (!e) this.seen.set(key, (e = { count: 0, seen: now, at: now, inflight: 0 }));
    e.inflight++;
    // capped, but never below the attempts in progress (each one is in the count until it ends)
    e.count = Math.min(e.count + 1, Math.max(this.cap, e.inflight));
    e.at = Math.max(e.at, now);
  }

  /** The attempt failed: it stays counted, and the backoff runs from now. */
  failed(key: string, now: number): void {
    const e = this.end(key, now);
    if (e) e.at = Math.max(e.at, now);
  }

  /** The attempt was never made (refused before it ran): it is not counted. */
  cancel(key: string, now: number): void {
    const e = this.end(key, now);
    if (e) e.count = Math.max(e.inflight, e.count - 1);
  }

  /** The attempt succeeded: the key starts afresh (attempts still in progress stay counted). */
  succeeded(key: string, now: number): void {
    const e = this.end(key, now);
    if (e) e.count = e.inflight;
  }

  /** A failure with no attempt in progress: `begin` and `failed` at once. */
  fail(key: string, now: number): void {
    this.begin(key, now);
    this.failed(key, now);
  }

  private end(key: string, now: number): Failures | undefined {
    const e = this.entry(key, now);
    if (e) e.inflight = Math.max(0, e.inflight - 1);
    return e;
  }

  /** Forgets keys whose failures are all forgiven, so the map does not grow with every key ever seen. */
  prune(now: number): void {
    for (const k of this.seen.keys()) {
      const e = this.entry(k, now)!;
      if (e.inflight === 0 && e.count <= 0) this.seen.delete(k);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}

/** Work in progress per key, at most `max` at once (0: no limit). */
export class InFlight {
  private readonly running = new Map<string, number>();
  constructor(private readonly max: number) {}

  /** Counts one more for `key`, or returns false (counting nothing) if it has `max` already. */
  acquire(key: string): boolean {
    const n = this.running.get(key) ?? 0;
    if (this.max > 0 && n >= this.max) return false;
    this.running.set(key, n + 1);
    return true;
  }

  /** Whether `key` may acquire one more now. */
  available(key: string): boolean {
    return this.max === 0 || (this.running.get(key) ?? 0) < this.max;
  }

  release(key: string): void {
    const n = (this.running.get(key) ?? 1) - 1;
    if (n > 0) this.running.set(key, n);
    else this.running.delete(key);
  }

  count(key: string): number {
    return this.running.get(key) ?? 0;
  }
}

/**
 * Runs expensive work (a password hash) in at most `slots` at once, with at most
 * `queue` more waiting in order, of which at most `perKey` for one key (an address);
 * work beyond that is refused at once with `rate_limited`, so a flood is answered
 * fast instead of growing a backlog, and a few keys cannot take every waiting place.
 */
export class HashPool {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly waitingPerKey: InFlight;
  constructor(
    private readonly slots: number,
    private readonly queue: number,
    private readonly busyMsg: string,
    perKey = 0,
  ) {
    this.waitingPerKey = new InFlight(perKey);
  }

  /** Whether `run(…, key)` called now would run or wait rather than be refused. */
  admits(key = ""): boolean {
    return this.running < this.slots || (this.waiting.length < this.queue && this.waitingPerKey.available(key));
  }

  /** Runs `work` in a slot, after waiting for one if need be; `key` counts against `perKey` while it waits. */
  async run<T>(work: () => Promise<T>, key = ""): Promise<T> {
    if (this.running < this.slots) this.running++;
    else if (this.waiting.length < this.queue && this.waitingPerKey.acquire(key)) {
      await new Promise<void>((r) => this.waiting.push(r)); // handed a slot
      this.waitingPerKey.release(key);
    } else throw new ProtocolError("rate_limited", this.busyMsg);
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes to the next in line, still counted as running
      else this.running--;
    }
  }

  get busy(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }
}
