// Exponential backoff with jitter, for reconnecting: each failed attempt waits
// longer (up to a ceiling), and a random part spreads clients that lost the
// same server so they do not all come back in the same millisecond.
import type { ReconnectOptions } from "./types.ts";

export class Backoff {
  private attempt = 0;
  private readonly initial: number;
  private readonly max: number;
  private readonly factor: number;
  private readonly jitter: number;

  constructor(
    opts: ReconnectOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initial = opts.initialDelayMs ?? 100;
    this.max = opts.maxDelayMs ?? 5000;
    this.factor = opts.factor ?? 2;
    this.jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  }

  /** The delay before the next attempt, ms: `min(max, initial * factor^n)`, less up to `jitter` of it at random. */
  next(): number {
    const base = Math.min(this.max, this.initial * this.factor ** this.attempt);
    this.attempt++;
    return Math.round(base * (1 - this.jitter * this.random()));
  }

  /** A connection succeeded: start again from the initial delay. */
  reset(): void {
    this.attempt = 0;
  }
}
