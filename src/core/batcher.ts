// Write batching: messages sent during one turn of the event loop are committed
// together in one transaction (setImmediate runs after the I/O callbacks of the
// turn), then acknowledged and fanned out. The ack never precedes the commit.
// At most one commit is in flight: messages queued while it runs go in the next
// batch, so batches commit, and their messages are delivered, in mid order.
import type { Committed, CommitResult, NewMessage, Store } from "../store/store.ts";

export interface Pending<T> {
  msg: NewMessage;
  /** Whatever the caller needs back when the message is committed (its session, request id...). */
  tag: T;
}

/** Most messages in one transaction; the rest wait for the next turn. */
const MAX_BATCH = 4096;

export class Batcher<T> {
  private queue: Pending<T>[] = [];
  /** The batch being committed, or undefined. */
  private inFlight: Pending<T>[] | undefined;
  private scheduled = false;
  /** Messages ever enqueued, and ever done with (committed or failed). */
  private enqueued = 0;
  private done = 0;
  /** settled() callers, by the `enqueued` count they wait for (ascending). */
  private waiters: Array<{ upto: number; resolve: () => void }> = [];
  /** Resolved when the commit in flight is done with (flushAll waits on it). */
  private idle: PromiseWithResolvers<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly onCommitted: (p: Pending<T>, r: CommitResult) => void,
    private readonly onFailed: (p: Pending<T>, err: unknown) => void,
    /** After each committed batch's onCommitted calls (the broker publishes it as one commit: src/broker/broker.ts). */
    private readonly onBatch: (seq: number) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  enqueue(p: Pending<T>): void {
    this.queue.push(p);
    this.enqueued++;
    this.schedule();
  }

  /** The next flush, at the end of this turn, unless one is due or a commit is in flight (it schedules one when done). */
  private schedule(): void {
    if (this.scheduled || this.inFlight !== undefined || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.commitNext();
    });
  }

  /** Whether a message whose tag matches is waiting for its commit (queued, or in the commit in flight). */
  hasPending(match: (tag: T) => boolean): boolean {
    for (const p of this.queue) if (match(p.tag)) return true;
    if (this.inFlight) for (const p of this.inFlight) if (match(p.tag)) return true;
    return false;
  }

  /** Whether a commit is in flight (its messages are stored, or about to be, but not yet delivered). */
  get committing(): boolean {
    return this.inFlight !== undefined;
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

  /** Commits one batch of what is queued (if no commit is in flight), then schedules the next. */
  private async commitNext(): Promise<void> {
    if (this.inFlight !== undefined || this.queue.length === 0) return;
    const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
    this.queue = batch === this.queue ? [] : this.queue.slice(MAX_BATCH);
    this.inFlight = batch;
    let results: Committed | undefined;
    let failure: unknown;
    try {
      results = await this.store.commit(
        batch.map((p) => p.msg),
        this.now(),
      );
    } catch (err) {
      failure = err ?? new Error("commit failed");
    }
    this.inFlight = undefined;
    try {
      if (results === undefined) for (const p of batch) this.onFailed(p, failure);
      else {
        for (let i = 0; i < batch.length; i++) this.onCommitted(batch[i]!, results.results[i]!);
        this.onBatch(results.seq);
      }
    } finally {
      this.settle(batch.length);
      this.idle?.resolve();
      this.idle = undefined;
      // Yield between batches so reads and acks interleave.
      this.schedule();
    }
  }

  /** Commits everything queued (shutdown), after the commit in flight, without waiting for the next turn. */
  async flushAll(): Promise<void> {
    for (;;) {
      if (this.inFlight !== undefined) {
        this.idle ??= Promise.withResolvers<void>();
        await this.idle.promise;
        continue;
      }
      if (this.queue.length === 0) return;
      await this.commitNext();
    }
  }

  private settle(n: number): void {
    this.done += n;
    while (this.waiters.length > 0 && this.waiters[0]!.upto <= this.done) this.waiters.shift()!.resolve();
  }
}
