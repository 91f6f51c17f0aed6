// Framing, PROTOCOL.md §1: a 4-byte unsigned big-endian length N, then N bytes
// holding one MessagePack map. This file knows bytes only: no sockets, no maps.

export const HEADER_BYTES = 4;

/** What the decoder hands back for each complete frame, or the one fatal condition. */
export type FrameEvent =
  | { kind: "frame"; body: Uint8Array }
  | { kind: "too_large"; length: number }
  /** A frame whose header `admit` refused: its body was skipped unread (never buffered, never decoded). */
  | { kind: "skipped"; length: number };

export interface DecoderHooks {
  /**
   * Called with each frame's length when its header arrives, before any of its
   * body is held: "read" keeps it, "skip" discards its body as it arrives.
   */
  admit?(length: number): "read" | "skip";
  /** Bytes of body buffers allocated (+) or released (-), for a memory budget. */
  held?(delta: number): void;
}

/** A split frame's buffer starts at this size and doubles as bytes arrive, up to the frame's length. */
const FIRST_BUFFER = 16 * 1024;

/**
 * Streaming frame decoder. Feed it whatever the socket delivered; it calls
 * `onEvent` once per complete frame body, in order.
 *
 * Frames that lie wholly inside one chunk are handed out as zero-copy views of
 * that chunk (valid only during the callback). A frame split across chunks is
 * assembled into a buffer that grows as its bytes arrive (doubling, so every
 * byte is copied at most twice), never allocated ahead of them: a header that
 * announces 4 MiB costs nothing until 4 MiB have been sent.
 *
 * A header announcing more than `maxFrame` bytes (a number, or a function read
 * at each header, for a limit that changes with the connection's state) is
 * fatal: the stream cannot be resynchronised without reading the body, which is
 * what the limit forbids: the decoder reports `too_large` and ignores all later input.
 */
export class FrameDecoder {
  private readonly header = new Uint8Array(HEADER_BYTES);
  private headerFill = 0;
  private body: Uint8Array | null = null;
  /** Length of the frame being assembled (body.length may still be smaller). */
  private bodyLen = 0;
  private bodyFill = 0;
  /** Bytes of a refused frame still to discard. */
  private skip = 0;
  private dead = false;
  /** Paused: input is kept, unexamined, in `rest` until resume(). */
  private paused = false;
  private rest: Uint8Array | null = null;
  private readonly limit: () => number;

  constructor(
    maxFrame: number | (() => number),
    private readonly onEvent: (ev: FrameEvent) => void,
    private readonly hooks: DecoderHooks = {},
  ) {
    this.limit = typeof maxFrame === "number" ? () => maxFrame : maxFrame;
  }

  /** Bytes received of an incomplete frame (header or body). */
  get buffered(): number {
    return this.headerFill + this.bodyFill;
  }

  /** Bytes of memory held for an incomplete frame's body (its buffer, which grows as bytes arrive). */
  get allocated(): number {
    return this.body?.length ?? 0;
  }

  get failed(): boolean {
    return this.dead;
  }

  /** Bytes of input kept unexamined while paused. */
  get pending(): number {
    return this.rest?.length ?? 0;
  }

  /**
   * Stops handing out events, from within an event's callback or between pushes: the input
   * not yet examined (and whatever is pushed later) is kept, copied, until resume(). Headers
   * are not looked at meanwhile, so nothing is admitted or refused early.
   */
  pause(): void {
    this.paused = true;
  }

  /** Goes on with the input kept while paused, synchronously, until it ends or pause() is called again. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const rest = this.rest;
    if (rest === null) return;
    this.rest = null;
    this.hooks.held?.(-rest.length);
    this.push(rest);
  }

  /** Keeps `chunk` from `pos` on, after what is kept already. */
  private keep(chunk: Uint8Array, pos: number): void {
    const more = chunk.length - pos;
    if (more === 0) return;
    const old = this.rest;
    const rest = new Uint8Array((old?.length ?? 0) + more);
    if (old !== null) rest.set(old);
    rest.set(chunk.subarray(pos), old?.length ?? 0);
    this.rest = rest;
    this.hooks.held?.(more);
  }

  /** Releases any partial frame (the connection is gone) and ignores later input. */
  close(): void {
    this.dead = true;
    this.release();
    if (this.rest !== null) this.hooks.held?.(-this.rest.length);
    this.rest = null;
  }

  private release(): void {
    if (this.body !== null) this.hooks.held?.(-this.body.length);
    this.body = null;
    this.bodyFill = 0;
  }

  push(chunk: Uint8Array): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.dead) {
      if (this.paused) {
        this.keep(chunk, pos);
        return;
      }
      if (this.skip > 0) {
        const take = Math.min(this.skip, len - pos);
        this.skip -= take;
        pos += take;
        continue;
      }
      if (this.body !== null) {
        // Continue a frame that started in an earlier chunk, growing its buffer as bytes come.
        const take = Math.min(this.bodyLen - this.bodyFill, len - pos);
        if (this.bodyFill + take > this.body.length) {
          let size = this.body.length;
          while (size < this.bodyFill + take) size *= 2;
          size = Math.min(size, this.bodyLen);
          const grown = new Uint8Array(size);
          grown.set(this.body.subarray(0, this.bodyFill));
          this.hooks.held?.(size - this.body.length);
          this.body = grown;
        }
        this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
        this.bodyFill += take;
        pos += take;
        if (this.bodyFill === this.bodyLen) {
          const body = this.body;
          this.release();
          this.onEvent({ kind: "frame", body });
        }
        continue;
      }

      let n: number;
      if (this.headerFill === 0 && len - pos >= HEADER_BYTES) {
        // Fast path: the whole header is in this chunk.
        n = readU32(chunk, pos);
        pos += HEADER_BYTES;
      } else {
        while (this.headerFill < HEADER_BYTES && pos < len) this.header[this.headerFill++] = chunk[pos++]!;
        if (this.headerFill < HEADER_BYTES) return;
        n = readU32(this.header, 0);
        this.headerFill = 0;
      }

      if (n > this.limit()) {
        this.dead = true;
        this.onEvent({ kind: "too_large", length: n });
        return;
      }
      if (this.hooks.admit !== undefined && this.hooks.admit(n) === "skip") {
        const take = Math.min(n, len - pos);
        pos += take;
        this.skip = n - take;
        this.onEvent({ kind: "skipped", length: n });
        continue;
      }
      if (len - pos >= n) {
        // Whole body present: hand out a view, no copy.
        const body = chunk.subarray(pos, pos + n);
        pos += n;
        this.onEvent({ kind: "frame", body });
      } else {
        const size = Math.min(n, FIRST_BUFFER);
        this.body = new Uint8Array(size);
        this.hooks.held?.(size);
        this.bodyLen = n;
        this.bodyFill = 0;
      }
    }
  }
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}

/** Prefixes `body` with its 4-byte big-endian length, in one new buffer. */
export function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, HEADER_BYTES);
  return out;
}
