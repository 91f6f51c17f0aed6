// Framing, PROTOCOL.md §1: a 4-byte unsigned big-endian length N, then N bytes
// holding one MessagePack map. This file knows bytes only: no sockets, no maps.

export const HEADER_BYTES = 4;

/** What the decoder hands back for each complete frame, or the one fatal condition. */
export type FrameEvent =
  | { kind: "frame"; body: Uint8Array }
  | { kind: "too_large"; length: number };

/**
 * Streaming frame decoder. Feed it whatever the socket delivered; it calls
 * `onFrame` once per complete frame body, in order.
 *
 * Frames that lie wholly inside one chunk are handed out as zero-copy views of
 * that chunk (valid only during the callback). A frame split across chunks is
 * assembled into a buffer allocated once, at its final size, when its header is
 * known, so every byte is copied at most once: no quadratic re-concatenation.
 *
 * A header announcing more than `maxFrame` bytes is fatal (the stream cannot be
 * resynchronised without reading the body, which is what the limit forbids):
 * the decoder reports `too_large` and ignores all later input.
 */
export class FrameDecoder {
  private readonly header = new Uint8Array(HEADER_BYTES);
  private headerFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private dead = false;

  constructor(
    private readonly maxFrame: number,
    private readonly onEvent: (ev: FrameEvent) => void,
  ) {}

  /** Bytes held for an incomplete frame (header or body). */
  get buffered(): number {
    return this.headerFill + this.bodyFill;
  }

  get failed(): boolean {
    return this.dead;
  }

  push(chunk: Uint8Array): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.dead) {
      if (this.body !== null) {
        // Continue a frame that started in an earlier chunk.
        const take = Math.min(this.body.length - this.bodyFill, len - pos);
        this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
        this.bodyFill += take;
        pos += take;
        if (this.bodyFill === this.body.length) {
          const body = this.body;
          this.body = null;
          this.bodyFill = 0;
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

      if (n > this.maxFrame) {
        this.dead = true;
        this.onEvent({ kind: "too_large", length: n });
        return;
      }
      if (len - pos >= n) {
        // Whole body present: hand out a view, no copy.
        const body = chunk.subarray(pos, pos + n);
        pos += n;
        this.onEvent({ kind: "frame", body });
      } else {
        this.body = new Uint8Array(n);
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
