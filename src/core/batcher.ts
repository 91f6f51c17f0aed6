// Write batching: messages sent during one turn of the event loop are committed
// together in one transaction (setImmediate runs after the I/O callbacks of the
// turn), then acknowledged and fanned out. The ack never precedes the commit.
import type { CommitResult, NewMessage, Store } from "../store/store.ts";

export interface Pending<T> {
  msg: NewMessage;
  /** Whatever the caller needs back when the message is committed (its session, request id...). */
  tag: T;
}

/** Most messages in one transaction; the rest wait for the next turn. */
const MAX_BATCH = 4096;

export class Batcher<T> {
  private queue: Pending<T>[] = [];
  private scheduled = false;
  /** Messages ever enqueued, and ever done with (committed or failed). */
  private enqueued = 0;
  private done = 0;
  /** settled() callers, by the `enqueued` count they wait for (ascending). */
  private waiters: Array<{ upto: number; resolve: () => void }> = [];

  constructor(
    private readonly store: Store,
    private readonly onCommitted: (p: Pending<T>, r: CommitResult) => void,
    private readonly onFailed: (p: Pending<T>, err: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  enqueue(p: Pending<T>): void {
    this.queue.push(p);
    this.enqueued++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Whether a message whose tag matches is waiting for its commit. */
  hasPending(match: (tag: T) => boolean): boolean {
    for (const p of this.queue) if (match(p.tag)) return true;
    return false;
  }

  /**
   * Resolves once every message queued now has been committed (and acknowledged, and fanned
   * out) or has failed, by the regular flush: read-your-writes for history and sync
   * (PROTOCOL.md §3.4) without forcing a commit out of turn.
   */
  settled(): Promise<void> {
    if (this.done === this.enqueued) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.waiters.push({ upto: this.enqueued, resolve });
    return promise;
  }

  /** Commits what is queued; with `all` (shutdown) everything, without yielding between batches. */
  flush(all = false): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
      this.queue = batch === this.queue ? [] : this.queue.slice(MAX_BATCH);
      let results: CommitResult[];
      try {
        results = this.store.commit(
          batch.map((p) => p.msg),
          this.now(),
        );
      } catch (err) {
        for (const p of batch) this.onFailed(p, err);
        this.settle(batch.length);
        continue;
      }
      try {
        for (let i = 0; i < batch.length; i++) this.onCommitted(batch[i]!, results[i]!);
      } finally {
        this.settle(batch.length);
      }
      // Yield between large batches so reads and acks interleave.
      if (this.queue.length > 0 && !all) {
        this.scheduled = true;
        setImmediate(() => this.flush());
        return;
      }
    }
  }

  private settle(n: number): void {
    this.done += n;
    while (this.waiters.length > 0 && this.waiters[0]!.upto <= this.done) this.waiters.shift()!.resolve();
  }
}
