// The one writer per connection. Every byte the server, the client library and
// the bench send goes through here.
//
// Bun's TCP write() does not buffer (docs/BUN.md): it returns how many bytes the
// kernel took, maybe fewer, or -1 once closed. So:
//  - what write() did not take stays at the head of our queue, as a subarray (no copy),
//    and is resent from `drain`;
//  - while anything is queued, nothing is written past it: new frames are appended;
//  - frames queued in one turn of the event loop are written together at the end of
//    it (a microtask), coalesced into one buffer when small, so a burst of replies or
//    fan-out costs one syscall per connection instead of one per frame.
//
// What a queue costs is counted as real memory: its bytes plus FRAME_OVERHEAD per
// queued frame (a small frame's Uint8Array and ArrayBuffer objects cost more than
// its bytes). The bound and the process-wide budget both use that `cost`.
//
// A WebSocket is a message sink (`Sink.messages`): Bun's ws.send() never takes part of
// a message (docs/BUN.md). It sends it (> 0), or keeps it in its own buffer under
// backpressure (-1: taken, but write nothing more until `drain`), or drops it past its
// buffer limit (0: not taken). The sink maps these to the whole frame's length, QUEUED
// and 0; frames are then written one by one, never merged, and after QUEUED or 0
// nothing more is written until `drain`.

/** Returned by a message sink's write: the frame was taken, but nothing more may be written until `drain`. */
export const QUEUED = -2;

/** Where a Writer's bytes go. */
export interface Sink {
  /**
   * Bytes the kernel took (0..data.length), or -1 if the connection is closed. A message
   * sink takes one whole frame or none: data.length, QUEUED, 0, or -1.
   */
  write(data: Uint8Array): number;
  /** Each write is one whole frame, taken whole or not at all (a WebSocket). */
  readonly messages?: boolean;
  /** Half-close after everything written has been written (called only with an empty queue). */
  end(): void;
  /** Close now, discarding anything unsent. */
  terminate(): void;
}

/** What the core needs of a connection: the only surface the transport adapter implements. */
export interface Transport extends Sink {
  /** The client's IP address, for per-address limits. */
  readonly remoteAddress: string;
  /** Stops reading from the connection (the client's writes then block in its kernel), and starts again. */
  pause(): void;
  resume(): void;
}

/** Frames smaller than this are merged into one write. */
const COALESCE_BYTES = 64 * 1024;

/** Memory a queued frame costs beyond its bytes (its typed array and buffer objects), counted against the bounds. */
export const FRAME_OVERHEAD = 256;

/** Told of every change of a writer's cost, so a process can bound what all its queues hold together. */
export interface CostMeter {
  add(delta: number): void;
}

let dirty: Writer[] = [];
let flushScheduled = false;

function flushDirty(): void {
  flushScheduled = false;
  const list = dirty;
  dirty = [];
  for (const w of list) w.flush();
}

export class Writer {
  private queue: Uint8Array[] = [];
  private head = 0;
  /** Bytes queued and not yet accepted by the kernel. */
  queued = 0;
  /** Bytes the kernel has accepted, ever. */
  written = 0;
  /** performance.now() of the last write the kernel took bytes of, or of the queue becoming non-empty. */
  progressAt = performance.now();
  /** `cost` as last reported to the meter. */
  private reported = 0;
  /** A write was short: wait for `drain` before writing again. */
  private blocked = false;
  private scheduled = false;
  private ending = false;
  closed = false;
  /** Queued bytes at which a turn's burst is written at once instead of at the end of the turn. */
  private readonly eager: number;

  constructor(
    private readonly transport: Sink,
    private readonly maxQueue: number,
    /** Called once when `cost` would pass `maxQueue`: the writer is closed by then, and the transport terminated right after. */
    private readonly onOverflow: () => void,
    /** Told of every change of `cost` (the server's process-wide budget). */
    private readonly meter?: CostMeter,
    /** Called after an end-of-turn flush wrote something (no `drain` event follows a write the kernel took whole). */
    private readonly onFlushed?: () => void,
  ) {
    this.eager = Math.min(COALESCE_BYTES, Math.floor(maxQueue / 4));
  }

  /** The queue's memory: unsent bytes plus FRAME_OVERHEAD per queued frame. */
  get cost(): number {
    return this.queued + FRAME_OVERHEAD * (this.queue.length - this.head);
  }

  private report(): void {
    if (this.meter === undefined) return;
    const c = this.cost;
    if (c !== this.reported) {
      this.meter.add(c - this.reported);
      this.reported = c;
    }
  }

  /** Queues one complete frame. The bytes are not copied: do not modify them afterwards. */
  send(frame: Uint8Array): void {
    if (this.closed || this.ending) return;
    if (this.queued === 0) this.progressAt = performance.now();
    this.queue.push(frame);
    this.queued += frame.length;
    // (Also once the queue's cost reaches half the bound, as a burst of tiny frames can.)
    if (!this.blocked && (this.queued >= this.eager || this.cost > this.maxQueue / 2)) {
      // A big burst in one turn: hand it to the kernel now rather than hold it to the
      // end of the turn, so only bytes the kernel refused count against the bound.
      this.writeOut();
      if (this.closed) return;
    }
    if (this.cost > this.maxQueue) {
      this.close();
      // Told before the transport goes (its close event may run at once and forget the
      // connection's state), with nothing more written: the writer is closed already.
      this.onOverflow();
      this.transport.terminate();
      return;
    }
    this.report();
    if (!this.blocked && !this.scheduled && this.queued > 0) {
      this.scheduled = true;
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        queueMicrotask(flushDirty);
      }
    }
  }

  /** Writes what can be written now; normally called by the end-of-turn microtask. */
  flush(): void {
    this.scheduled = false;
    if (this.blocked || this.closed) return;
    const before = this.written;
    this.writeOut();
    this.report();
    if (this.written !== before) this.onFlushed?.();
  }

  /** The transport's `drain`: the kernel can take more. */
  drain(): void {
    if (this.closed) return;
    this.blocked = false;
    this.writeOut();
    this.report();
  }

  /** A write was short and the kernel has not asked for more yet. */
  get stalled(): boolean {
    return this.blocked;
  }

  /** Ends the connection once everything queued has been written. */
  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.queued === 0) this.finish();
  }

  /** The connection is gone: drop the queue. */
  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    this.report();
  }

  get idle(): boolean {
    return this.queued === 0;
  }

  private writeOut(): void {
    const q = this.queue;
    while (this.head < q.length) {
      let chunk = q[this.head]!;
      let taken = 1;
      if (this.transport.messages) {
        const n = this.transport.write(chunk);
        if (n === -1) {
          this.close();
          return;
        }
        if (n === 0) {
          // Dropped: it stays at the head of the queue until the transport drains.
          this.blocked = true;
          return;
        }
        this.queued -= chunk.length;
        this.written += chunk.length;
        this.progressAt = performance.now();
        this.head++;
        if (n === QUEUED) {
          this.blocked = true;
          if (this.head >= 1024) {
            q.splice(0, this.head);
            this.head = 0;
          }
          return;
        }
        continue;
      }
      if (chunk.length < COALESCE_BYTES && this.head + 1 < q.length) {
        let size = chunk.length;
        let end = this.head + 1;
        while (end < q.length && size + q[end]!.length <= COALESCE_BYTES) size += q[end++]!.length;
        if (end - this.head > 1) {
          const merged = new Uint8Array(size);
          let at = 0;
          for (let i = this.head; i < end; i++) {
            merged.set(q[i]!, at);
            at += q[i]!.length;
          }
          chunk = merged;
          taken = end - this.head;
        }
      }
      const n = this.transport.write(chunk);
      if (n < 0) {
        this.close();
        return;
      }
      this.queued -= n;
      if (n > 0) {
        this.written += n;
        this.progressAt = performance.now();
      }
      if (n < chunk.length) {
        // Short write: the unsent tail becomes the head of the queue, in place of the frames it came from.
        this.head += taken - 1;
        q[this.head] = chunk.subarray(n);
        this.blocked = true;
        if (this.head >= 1024) {
          // Let go of frames already sent while a slow reader keeps the queue non-empty.
          q.splice(0, this.head);
          this.head = 0;
        }
        return;
      }
      this.head += taken;
    }
    this.queue = [];
    this.head = 0;
    if (this.ending) this.finish();
  }

  private finish(): void {
    this.closed = true;
    this.transport.end();
  }
}
