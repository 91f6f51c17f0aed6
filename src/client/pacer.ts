// Pacing of outgoing requests, PROTOCOL.md §2.4: the server answers a request
// over its connection's rate (requests and bytes per second, with a burst) with
// `rate_limited` and drops it. Retrying a refused `send` can put it behind later
// ones, so the client stays under the rate instead: a token bucket like the
// server's, with a margin (a lower rate and a shorter burst, so bunching on the
// network cannot empty the server's bucket first). Frames wait in order.

export interface PaceOptions {
  /** Requests per second; 0: no limit. Default 180 (the server's default is 200). */
  requestsPerSec?: number;
  /** Request bytes per second; 0: no limit. Default 7.5 MiB (the server's default is 8 MiB). */
  bytesPerSec?: number;
  /** Seconds of those rates usable at once. Default 1 (the server's default is 2). */
  burstSec?: number;
}

export class Pacer {
  private readonly queue: { frame: Uint8Array; cost: number }[] = [];
  private readonly rate: number;
  private readonly byteRate: number;
  private readonly burst: number;
  private tokens: number;
  private byteTokens: number;
  private last: number;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    opts: PaceOptions,
    private readonly out: (frame: Uint8Array) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.rate = opts.requestsPerSec ?? 180;
    this.byteRate = opts.bytesPerSec ?? 7.5 * 1024 * 1024;
    this.burst = opts.burstSec ?? 1;
    this.tokens = this.rate * this.burst;
    this.byteTokens = this.byteRate * this.burst;
    this.last = this.now();
  }

  /** Frames waiting for tokens. */
  get waiting(): number {
    return this.queue.length;
  }

  /** `cost`: how many requests the server counts it as (a `download` counts more, PROTOCOL.md §3.9). */
  send(frame: Uint8Array, cost = 1): void {
    this.queue.push({ frame, cost });
    if (this.queue.length === 1) this.pump();
  }

  /** Drops what waits; no more timers. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.rate * this.burst, this.tokens + dt * this.rate);
    this.byteTokens = Math.min(this.byteRate * this.burst, this.byteTokens + dt * this.byteRate);
    while (this.queue.length > 0) {
      const { frame, cost: asked } = this.queue[0]!;
      // More than a whole burst waits for a full bucket, then goes (as a large frame does).
      const cost = Math.min(asked, Math.max(1, this.rate * this.burst));
      // A frame larger than a whole burst waits for a full bucket, then goes (the server decides).
      const bytes = Math.min(frame.length, this.byteRate * this.burst);
      const needMsgs = this.rate > 0 ? Math.max(0, cost - this.tokens) / this.rate : 0;
      const needBytes = this.byteRate > 0 ? Math.max(0, bytes - this.byteTokens) / this.byteRate : 0;
      const wait = Math.max(needMsgs, needBytes);
      if (wait > 0) {
        this.timer = setTimeout(() => this.pump(), Math.ceil(wait * 1000));
        return;
      }
      if (this.rate > 0) this.tokens -= cost;
      if (this.byteRate > 0) this.byteTokens -= bytes;
      this.queue.shift();
      this.out(frame);
    }
  }
}
