// The client's one writer: every byte sent to the server goes through here.
//
// Bun's TCP write() does not buffer (BUN-NOTES.md): it returns how many bytes
// the kernel took, maybe fewer, or -1 once closed. The same rule as the
// server's writer (src/core/writer.ts) follows:
//  - what write() did not take stays at the head of the queue (a subarray, no
//    copy) and is resent from `drain`;
//  - while anything is queued, nothing is written past it: new frames are
//    appended, never written ahead (a later small write would overtake the
//    remainder and corrupt the stream);
//  - frames queued in one turn are written together at the end of it (a
//    microtask), small ones merged into one buffer, so a burst costs one syscall.

/** What the writer needs of a socket. */
export interface ByteSink {
  /** Bytes the kernel took (0..data.length), or -1 if the socket is closed. */
  write(data: Uint8Array): number;
  /** Half-close; called only once everything queued was written. */
  end(): void;
}

/** Frames smaller than this are merged into one write. */
const COALESCE_BYTES = 64 * 1024;

export class FrameWriter {
  private queue: Uint8Array[] = [];
  private head = 0;
  /** Bytes queued and not yet taken by the kernel. */
  queued = 0;
  /** A write was short: nothing more until `drain`. */
  private blocked = false;
  private scheduled = false;
  private ending = false;
  closed = false;

  constructor(private readonly sink: ByteSink) {}

  /** Queues one complete frame. The bytes are not copied: do not modify them afterwards. Returns false if closed. */
  send(frame: Uint8Array): boolean {
    if (this.closed || this.ending) return false;
    this.queue.push(frame);
    this.queued += frame.length;
    this.schedule();
    return true;
  }

  /** The socket's `drain`: the kernel can take more. */
  drain(): void {
    if (this.closed) return;
    this.blocked = false;
    this.writeOut();
  }

  /** Half-closes once everything queued has been written. */
  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.queued === 0) this.finish();
    else this.schedule();
  }

  /** The socket is gone: drop the queue. */
  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.queued = 0;
  }

  get idle(): boolean {
    return this.queued === 0;
  }

  private schedule(): void {
    if (this.blocked || this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (!this.blocked && !this.closed) this.writeOut();
    });
  }

  private writeOut(): void {
    const q = this.queue;
    while (this.head < q.length) {
      let chunk = q[this.head]!;
      let taken = 1;
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
      const n = this.sink.write(chunk);
      if (n < 0) {
        this.close();
        return;
      }
      this.queued -= n;
      if (n < chunk.length) {
        // Short write: the unsent tail takes the place of the frames it came from, at the head.
        this.head += taken - 1;
        q[this.head] = chunk.subarray(n);
        this.blocked = true;
        if (this.head >= 1024) {
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
    this.sink.end();
  }
}
