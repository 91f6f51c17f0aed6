// Unit tests for the streaming frame decoder (src/protocol/frame.ts) and the
// MessagePack body codec (src/protocol/codec.ts).
import { describe, expect, test } from "bun:test";
import { FrameDecoder, HEADER_BYTES, frame, type FrameEvent } from "../src/protocol/frame.ts";
import { encodeFrame, makeBodyDecoder } from "../src/protocol/codec.ts";
import { mulberry32, randInt } from "./helpers/prng.ts";
import { concat } from "./helpers/wire.ts";

// ---- helpers ------------------------------------------------------------

/** A body of `size` bytes whose content depends on `tag`, so swapped or shifted bodies are caught. */
function makeBody(tag: number, size: number): Uint8Array {
  const rnd = mulberry32(tag * 7919 + size);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

function header(n: number): Uint8Array {
  const h = new Uint8Array(HEADER_BYTES);
  new DataView(h.buffer).setUint32(0, n >>> 0, false);
  return h;
}

/** Byte-exact equality with a useful failure message (avoids huge diffs). */
function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array, what = "bytes"): void {
  expect(actual).toBeDefined();
  const a = actual!;
  expect(a.length).toBe(expected.length);
  let firstDiff = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== expected[i]) {
      firstDiff = i;
      break;
    }
  }
  if (firstDiff !== -1) throw new Error(`${what}: first difference at byte ${firstDiff} of ${a.length}`);
}

interface Collector {
  dec: FrameDecoder;
  /** Copies of every frame body, taken inside the callback (where views are valid). */
  bodies: Uint8Array[];
  /** Every event as delivered (bodies not copied). */
  events: FrameEvent[];
}

function collector(maxFrame: number): Collector {
  const bodies: Uint8Array[] = [];
  const events: FrameEvent[] = [];
  const dec = new FrameDecoder(maxFrame, (ev) => {
    events.push(ev);
    if (ev.kind === "frame") bodies.push(ev.body.slice());
  });
  return { dec, bodies, events };
}

function expectBodies(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expectBytes(actual[i], expected[i]!, `frame ${i}`);
}

/** Splits `stream` at random points; chunk sizes mix tiny (incl. 0) and large. */
function randomChunks(stream: Uint8Array, seed: number): Uint8Array[] {
  const rnd = mulberry32(seed);
  const chunks: Uint8Array[] = [];
  let pos = 0;
  while (pos < stream.length) {
    const r = rnd();
    let size: number;
    if (r < 0.35) size = randInt(rnd, 0, 7);
    else if (r < 0.7) size = randInt(rnd, 8, 600);
    else if (r < 0.95) size = randInt(rnd, 601, 20_000);
    else size = randInt(rnd, 20_001, 400_000);
    size = Math.min(size, stream.length - pos);
    chunks.push(stream.subarray(pos, pos + size));
    pos += size;
  }
  return chunks;
}

const MB = 1024 * 1024;

// Sizes include 0, 1..5 (shorter and longer than a header), the 16-bit boundary,
// several KB and one ~1 MB frame, with empty frames next to each other.
const SIZES = [0, 1, 2, 3, 4, 5, 17, 255, 256, 1000, 4096, 5000, 0, 0, 65_535, 65_536, 65_537, 1, MB + 3, 9, 0, 12_345, 3];
const BODIES = SIZES.map((s, i) => makeBody(i, s));
const STREAM = concat(BODIES.map(frame));

// ---- frame() ------------------------------------------------------------

describe("frame()", () => {
  test("prefixes the body with its big-endian u32 length", () => {
    const body = makeBody(1, 0x010203);
    const f = frame(body);
    expect(f.length).toBe(HEADER_BYTES + body.length);
    expect(Array.from(f.subarray(0, 4))).toEqual([0x00, 0x01, 0x02, 0x03]);
    expectBytes(f.subarray(4), body);
    expect(Array.from(frame(new Uint8Array(0)))).toEqual([0, 0, 0, 0]);
  });
});

// ---- FrameDecoder: streams ----------------------------------------------

describe("FrameDecoder streams", () => {
  test("whole stream in one chunk", () => {
    const c = collector(2 * MB);
    c.dec.push(STREAM);
    expectBodies(c.bodies, BODIES);
    expect(c.events.every((e) => e.kind === "frame")).toBe(true);
    expect(c.dec.buffered).toBe(0);
    expect(c.dec.failed).toBe(false);
  });

  test("one byte at a time", () => {
    const c = collector(2 * MB);
    for (let i = 0; i < STREAM.length; i++) c.dec.push(STREAM.subarray(i, i + 1));
    expectBodies(c.bodies, BODIES);
    expect(c.dec.buffered).toBe(0);
    expect(c.dec.failed).toBe(false);
  });

  test("one byte at a time, each byte in a fresh buffer that is overwritten after push", () => {
    // The whole ~1 MB stream through a single reused 1-byte "socket buffer".
    const c = collector(2 * MB);
    const buf = new Uint8Array(1);
    for (let i = 0; i < STREAM.length; i++) {
      buf[0] = STREAM[i]!;
      c.dec.push(buf);
      buf[0] = 0xa5;
    }
    expectBodies(c.bodies, BODIES);
  });

  test("random splits of the full stream (incl. the ~1 MB frame), 40 seeds", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const c = collector(2 * MB);
      for (const chunk of randomChunks(STREAM, seed)) c.dec.push(chunk);
      expectBodies(c.bodies, BODIES);
      expect(c.dec.buffered).toBe(0);
    }
  });

  test("random splits of random small-frame streams, 500 seeds", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const rnd = mulberry32(seed ^ 0x9e3779b9);
      const count = randInt(rnd, 1, 60);
      const bodies: Uint8Array[] = [];
      for (let i = 0; i < count; i++) {
        const r = rnd();
        const size = r < 0.2 ? 0 : r < 0.5 ? randInt(rnd, 1, 8) : r < 0.9 ? randInt(rnd, 9, 300) : randInt(rnd, 301, 9000);
        bodies.push(makeBody(seed * 1000 + i, size));
      }
      const stream = concat(bodies.map(frame));
      // Chunks skewed small so headers are split in every possible way.
      const chunks: Uint8Array[] = [];
      for (let pos = 0; pos < stream.length; ) {
        const size = Math.min(stream.length - pos, rnd() < 0.6 ? randInt(rnd, 0, 6) : randInt(rnd, 7, 2000));
        chunks.push(stream.subarray(pos, pos + size));
        pos += size;
      }
      const c = collector(16 * 1024);
      for (const chunk of chunks) c.dec.push(chunk);
      expectBodies(c.bodies, bodies);
      expect(c.dec.buffered).toBe(0);
      expect(c.dec.failed).toBe(false);
    }
  });

  test("empty chunks are harmless anywhere", () => {
    const bodies = [makeBody(1, 10), makeBody(2, 0), makeBody(3, 3)];
    const stream = concat(bodies.map(frame));
    const c = collector(100);
    const empty = new Uint8Array(0);
    c.dec.push(empty);
    for (let i = 0; i < stream.length; i++) {
      c.dec.push(stream.subarray(i, i + 1));
      c.dec.push(empty);
    }
    expectBodies(c.bodies, bodies);
  });

  test("a stream of only empty frames yields one empty body per header", () => {
    const c = collector(10);
    c.dec.push(concat([header(0), header(0), header(0)]));
    expect(c.events.length).toBe(3);
    for (const e of c.events) {
      expect(e.kind).toBe("frame");
      if (e.kind === "frame") expect(e.body.length).toBe(0);
    }
    // An empty frame whose header arrives split still completes on the last header byte.
    const d = collector(10);
    d.dec.push(new Uint8Array([0, 0]));
    expect(d.events.length).toBe(0);
    d.dec.push(new Uint8Array([0, 0]));
    expect(d.events.length).toBe(1);
    expect(d.dec.buffered).toBe(0);
  });
});

// ---- FrameDecoder: split headers ----------------------------------------

describe("FrameDecoder split headers", () => {
  // 0x00_01_02_03: every header byte distinct, so a mis-ordered or mis-shifted header is caught.
  const body = makeBody(42, 0x010203);
  const f = frame(body);

  for (const k of [1, 2, 3]) {
    test(`header split ${k}+${4 - k}, body following in the same chunk as the header's end`, () => {
      const c = collector(MB);
      c.dec.push(f.subarray(0, k));
      expect(c.events.length).toBe(0);
      expect(c.dec.buffered).toBe(k);
      c.dec.push(f.subarray(k));
      expectBodies(c.bodies, [body]);
      expect(c.dec.buffered).toBe(0);
    });

    test(`header split ${k}+${4 - k}, body in later chunks`, () => {
      const c = collector(MB);
      c.dec.push(f.subarray(0, k));
      c.dec.push(f.subarray(k, 4));
      expect(c.events.length).toBe(0);
      c.dec.push(f.subarray(4, 1000));
      expect(c.events.length).toBe(0);
      c.dec.push(f.subarray(1000));
      expectBodies(c.bodies, [body]);
    });

    test(`header split ${k}+${4 - k} after a complete frame in the same chunk`, () => {
      const first = makeBody(7, 20);
      const stream = concat([frame(first), f]);
      const cut = frame(first).length + k;
      const c = collector(MB);
      c.dec.push(stream.subarray(0, cut));
      expectBodies(c.bodies, [first]);
      expect(c.dec.buffered).toBe(k);
      c.dec.push(stream.subarray(cut));
      expectBodies(c.bodies, [first, body]);
    });
  }

  test("header bytes with the top bit set are read as unsigned", () => {
    const c = collector(10);
    c.dec.push(new Uint8Array([0x80, 0, 0]));
    c.dec.push(new Uint8Array([0]));
    expect(c.events).toEqual([{ kind: "too_large", length: 0x80000000 }]);
  });
});

// ---- FrameDecoder: maxFrame -----------------------------------------------

describe("FrameDecoder maxFrame", () => {
  test("length above maxFrame: exactly one too_large with the announced length, later input ignored", () => {
    const ok = makeBody(1, 10);
    const c = collector(100);
    // A valid frame, then an oversized header followed (in the same chunk) by what looks like valid frames.
    c.dec.push(concat([frame(ok), header(101), frame(makeBody(2, 5)), frame(makeBody(3, 5))]));
    expect(c.events.length).toBe(2);
    expect(c.events[0]!.kind).toBe("frame");
    expect(c.events[1]).toEqual({ kind: "too_large", length: 101 });
    expectBytes(c.bodies[0], ok);
    expect(c.dec.failed).toBe(true);

    // Later input, including more oversized headers and valid frames, produces nothing.
    c.dec.push(frame(makeBody(4, 5)));
    c.dec.push(header(1000));
    c.dec.push(concat([frame(makeBody(5, 1)), header(0xffffffff)]));
    for (let i = 0; i < 10; i++) c.dec.push(new Uint8Array([0, 0, 0, i]));
    expect(c.events.length).toBe(2);
    expect(c.dec.failed).toBe(true);
  });

  test("too_large reported from a split header, with the full 32-bit length", () => {
    const c = collector(1000);
    const h = header(0xfffffffe);
    c.dec.push(h.subarray(0, 1));
    c.dec.push(h.subarray(1, 3));
    expect(c.events.length).toBe(0);
    expect(c.dec.failed).toBe(false);
    c.dec.push(concat([h.subarray(3), frame(makeBody(1, 3))]));
    expect(c.events).toEqual([{ kind: "too_large", length: 0xfffffffe }]);
    expect(c.dec.failed).toBe(true);
    c.dec.push(frame(makeBody(2, 3)));
    expect(c.events.length).toBe(1);
  });

  test("length exactly maxFrame is accepted, whole or split", () => {
    const body = makeBody(9, 100);
    const whole = collector(100);
    whole.dec.push(frame(body));
    expectBodies(whole.bodies, [body]);
    expect(whole.dec.failed).toBe(false);

    const split = collector(100);
    const f = frame(body);
    split.dec.push(f.subarray(0, 2));
    split.dec.push(f.subarray(2, 50));
    split.dec.push(f.subarray(50));
    expectBodies(split.bodies, [body]);
    expect(split.dec.failed).toBe(false);

    // maxFrame + 1 is not.
    const over = collector(99);
    over.dec.push(f);
    expect(over.events).toEqual([{ kind: "too_large", length: 100 }]);
  });

  test("maxFrame 0 accepts only empty frames", () => {
    const c = collector(0);
    c.dec.push(concat([header(0), header(0), header(1), new Uint8Array([7])]));
    expect(c.events.map((e) => e.kind)).toEqual(["frame", "frame", "too_large"]);
  });
});

// ---- FrameDecoder: buffer ownership ----------------------------------------

describe("FrameDecoder buffer ownership", () => {
  test("a body split across chunks survives the caller overwriting its chunks", () => {
    const body = makeBody(3, 500);
    const f = frame(body);
    const kept: Uint8Array[] = [];
    const dec = new FrameDecoder(1000, (ev) => {
      if (ev.kind === "frame") kept.push(ev.body); // no copy on purpose
    });
    const a = f.slice(0, 200);
    const b = f.slice(200, 350);
    const c = f.slice(350);
    dec.push(a);
    a.fill(0xee);
    dec.push(b);
    b.fill(0xee);
    dec.push(c);
    c.fill(0xee);
    expect(kept.length).toBe(1);
    expectBytes(kept[0], body);

    // A second split frame must not share storage with the first.
    const body2 = makeBody(4, 300);
    const g = frame(body2);
    const d = g.slice(0, 100);
    const e = g.slice(100);
    dec.push(d);
    d.fill(0x11);
    dec.push(e);
    e.fill(0x11);
    expect(kept.length).toBe(2);
    expectBytes(kept[0], body);
    expectBytes(kept[1], body2);
  });

  test("randomized: one reused socket buffer, garbage-filled after each push", () => {
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = mulberry32(seed * 31 + 5);
      const bodies: Uint8Array[] = [];
      const count = randInt(rnd, 1, 40);
      for (let i = 0; i < count; i++) bodies.push(makeBody(seed * 100 + i, rnd() < 0.15 ? 0 : randInt(rnd, 1, 3000)));
      const frames = bodies.map(frame);
      const stream = concat(frames);

      // Where each body lies in the stream.
      const bodyRanges: Array<[number, number]> = [];
      let at = 0;
      for (const b of bodies) {
        bodyRanges.push([at + HEADER_BYTES, at + HEADER_BYTES + b.length]);
        at += HEADER_BYTES + b.length;
      }

      const sock = new Uint8Array(4096); // the one buffer the "socket" reads into
      const copies: Uint8Array[] = [];
      const refs: Uint8Array[] = [];
      const dec = new FrameDecoder(4096, (ev) => {
        if (ev.kind !== "frame") throw new Error("unexpected too_large");
        copies.push(ev.body.slice());
        refs.push(ev.body);
      });
      const chunkStarts: number[] = [];
      for (let pos = 0; pos < stream.length; ) {
        const size = Math.min(stream.length - pos, rnd() < 0.5 ? randInt(rnd, 1, 8) : randInt(rnd, 9, sock.length));
        sock.set(stream.subarray(pos, pos + size));
        chunkStarts.push(pos);
        dec.push(sock.subarray(0, size));
        sock.fill((seed * 13) & 0xff); // garbage
        pos += size;
      }
      chunkStarts.push(stream.length);

      const chunkOf = (offset: number): number => {
        let i = 0;
        while (chunkStarts[i + 1]! <= offset) i++;
        return i;
      };

      // Inside the callback every body was right.
      expectBodies(copies, bodies);
      // After the fact, every body whose bytes spanned two or more chunks must still be right.
      let spanning = 0;
      for (let i = 0; i < bodies.length; i++) {
        const [s, e] = bodyRanges[i]!;
        if (e - s === 0) continue;
        if (chunkOf(s) !== chunkOf(e - 1)) {
          spanning++;
          expectBytes(refs[i], bodies[i]!, `seed ${seed} frame ${i} (split across chunks)`);
          expect(refs[i]!.buffer).not.toBe(sock.buffer);
        }
      }
      // Sanity: the test really exercised split bodies most of the time.
      if (seed === 1) expect(spanning).toBeGreaterThan(0);
    }
  });

  test("a frame wholly inside one chunk is handed out as a view of that chunk (zero-copy)", () => {
    const body = makeBody(4, 50);
    const chunk = concat([frame(body), frame(body)]);
    const refs: Uint8Array[] = [];
    const dec = new FrameDecoder(100, (ev) => {
      if (ev.kind === "frame") refs.push(ev.body);
    });
    dec.push(chunk);
    expect(refs.length).toBe(2);
    expect(refs[0]!.buffer).toBe(chunk.buffer);
    expect(refs[0]!.byteOffset).toBe(4);
    expect(refs[1]!.byteOffset).toBe(4 + 50 + 4);
  });
});

// ---- FrameDecoder: buffered --------------------------------------------------

describe("FrameDecoder buffered", () => {
  test("tracks bytes held for an incomplete header or body", () => {
    const body = makeBody(5, 100);
    const f = frame(body);
    const c = collector(1000);
    expect(c.dec.buffered).toBe(0);
    c.dec.push(f.subarray(0, 1));
    expect(c.dec.buffered).toBe(1);
    c.dec.push(f.subarray(1, 3));
    expect(c.dec.buffered).toBe(3);
    c.dec.push(f.subarray(3, 14)); // header complete + 10 body bytes
    expect(c.dec.buffered).toBe(10);
    c.dec.push(f.subarray(14, 103)); // 99 body bytes
    expect(c.dec.buffered).toBe(99);
    expect(c.events.length).toBe(0);
    c.dec.push(f.subarray(103)); // last byte
    expect(c.dec.buffered).toBe(0);
    expectBodies(c.bodies, [body]);
  });

  test("is 0 between frames and counts a trailing partial header after complete frames", () => {
    const c = collector(1000);
    c.dec.push(concat([frame(makeBody(1, 10)), frame(makeBody(2, 0))]));
    expect(c.dec.buffered).toBe(0);
    c.dec.push(concat([frame(makeBody(3, 7)), header(20).subarray(0, 2)]));
    expect(c.dec.buffered).toBe(2);
    expect(c.bodies.length).toBe(3);
  });

  test("counts a partial body after complete frames in the same chunk", () => {
    const c = collector(1000);
    const tail = frame(makeBody(4, 300));
    c.dec.push(concat([frame(makeBody(1, 10)), tail.subarray(0, 4 + 123)]));
    expect(c.bodies.length).toBe(1);
    expect(c.dec.buffered).toBe(123);
  });
});

// ---- FrameDecoder: large frames ------------------------------------------------

describe("FrameDecoder large frames", () => {
  test("a 4 MB frame fed in 4 KB chunks is reassembled exactly; its buffer grows with the bytes received", () => {
    const size = 4 * MB;
    const body = makeBody(77, size);
    const f = frame(body);
    const refs: Uint8Array[] = [];
    let checked = false;
    const dec = new FrameDecoder(8 * MB, (ev) => {
      if (ev.kind !== "frame") throw new Error("unexpected too_large");
      refs.push(ev.body);
    });
    for (let pos = 0; pos < f.length; pos += 4096) {
      dec.push(f.subarray(pos, pos + 4096));
      if (pos + 4096 < f.length) {
        // While incomplete, everything received past the header is held,
        // in a buffer at most twice that (or 16 KiB): never the announced 4 MB ahead of the bytes.
        const got = pos + 4096 - HEADER_BYTES;
        expect(dec.buffered).toBe(got);
        expect(dec.allocated).toBeGreaterThanOrEqual(got);
        expect(dec.allocated).toBeLessThanOrEqual(Math.max(16 * 1024, 2 * got));
        checked = true;
      }
    }
    expect(checked).toBe(true);
    expect(refs.length).toBe(1);
    expectBytes(refs[0], body);
    // The last growth is capped at the frame's length: the body is exactly its buffer.
    expect(refs[0]!.byteOffset).toBe(0);
    expect(refs[0]!.buffer.byteLength).toBe(size);
    expect(dec.buffered).toBe(0);
    expect(dec.allocated).toBe(0);
  });

  test("a header announcing 4 MB followed by 10 bytes holds 16 KiB, not 4 MB", () => {
    let held = 0;
    const dec = new FrameDecoder(8 * MB, () => {}, { held: (d) => (held += d) });
    const hdr = new Uint8Array(4);
    new DataView(hdr.buffer).setUint32(0, 4 * MB);
    dec.push(concat([hdr, new Uint8Array(10)]));
    expect(dec.allocated).toBe(16 * 1024);
    expect(held).toBe(16 * 1024);
    dec.close();
    expect(held).toBe(0);
  });
});

describe("FrameDecoder admit", () => {
  test("a refused header's body is skipped unread, across chunks; the next frame is read", () => {
    const events: string[] = [];
    let held = 0;
    const dec = new FrameDecoder(
      1 * MB,
      (ev) => events.push(ev.kind === "frame" ? `frame:${ev.body.length}` : `${ev.kind}:${ev.length}`),
      { admit: (n) => (n > 1000 ? "skip" : "read"), held: (d) => (held += d) },
    );
    const big = frame(makeBody(5, 200_000));
    const small = frame(makeBody(6, 20));
    const all = concat([big, small, big, small]);
    for (let pos = 0; pos < all.length; pos += 777) {
      dec.push(all.subarray(pos, pos + 777));
      expect(held).toBe(0); // nothing of a skipped frame is ever held
    }
    expect(events).toEqual(["skipped:200000", "frame:20", "skipped:200000", "frame:20"]);
  });

  test("the limit may be a function, read at each header", () => {
    let max = 100;
    const events: string[] = [];
    const dec = new FrameDecoder(() => max, (ev) => events.push(ev.kind));
    dec.push(frame(makeBody(1, 100)));
    max = 50;
    dec.push(frame(makeBody(1, 100)));
    expect(events).toEqual(["frame", "too_large"]);
  });
});

// ---- codec ----------------------------------------------------------------------

describe("codec", () => {
  const bin = makeBody(11, 300);
  const MESSAGES: Array<Record<string, unknown>> = [
    { t: "ping" },
    { t: "send", id: 1, to: "alice", text: "hello" },
    { t: "unicode", text: "héllo wörld — 你好 🌍🚀", key: "ключ" },
    { t: "ints", a: 0, b: 127, c: 128, d: 255, e: 65_535, f: 65_536, g: 2 ** 32 - 1, h: 2 ** 32, i: 2 ** 53 - 1 },
    { t: "neg", a: -1, b: -32, c: -33, d: -128, e: -129, f: -32_768, g: -(2 ** 31), h: -(2 ** 40) },
    { t: "misc", yes: true, no: false, nil: null, float: 1.5, empty: "" },
    { t: "bin", data: bin, emptyBin: new Uint8Array(0) },
    {
      t: "nested",
      file: { name: "a.png", type: "image/png", data: makeBody(12, 70_000) },
      deep: { a: { b: { c: { d: [1, "two", { three: 3 }, [4, [5]]] } } } },
      emptyMap: {},
      emptyArr: [],
    },
    { t: "bigstr", text: "x".repeat(70_000) },
  ];

  test("encodeFrame writes a correct big-endian length prefix", () => {
    for (const m of MESSAGES) {
      const f = encodeFrame(m);
      const n = new DataView(f.buffer, f.byteOffset).getUint32(0, false);
      expect(n).toBe(f.length - HEADER_BYTES);
    }
    // Length >= 2^16 puts a non-zero value in the second header byte.
    const big = encodeFrame({ data: makeBody(13, 70_000) });
    expect(big[1]).toBe(1);
  });

  test("encodeFrame with a body of >= 2^24 bytes sets the top length byte", () => {
    const data = new Uint8Array(2 ** 24 + 10);
    data[data.length - 1] = 0x5a;
    const f = encodeFrame({ data });
    expect(f[0]).toBe(1);
    expect(new DataView(f.buffer, f.byteOffset).getUint32(0, false)).toBe(f.length - HEADER_BYTES);
    const c = collector(f.length);
    c.dec.push(f);
    const m = makeBodyDecoder(f.length)(c.bodies[0]!) as { data: Uint8Array };
    expect(m.data.length).toBe(data.length);
    expect(m.data[m.data.length - 1]).toBe(0x5a);
  });

  test("each encodeFrame result is independent of later encodes (shared encoder buffer is copied)", () => {
    const a = encodeFrame({ t: "a", text: "first" });
    const aCopy = a.slice();
    const b = encodeFrame({ t: "b", text: "second, longer than the first" });
    expectBytes(a, aCopy);
    const dec = makeBodyDecoder(1000);
    expect(dec(a.subarray(4))).toEqual({ t: "a", text: "first" });
    expect(dec(b.subarray(4))).toEqual({ t: "b", text: "second, longer than the first" });
  });

  test("undefined fields are omitted", () => {
    const f = encodeFrame({ t: "x", gone: undefined, kept: 1 });
    expect(makeBodyDecoder(100)(f.subarray(4))).toEqual({ t: "x", kept: 1 });
  });

  test("round trip encodeFrame -> FrameDecoder (random splits) -> makeBodyDecoder", () => {
    const frames = MESSAGES.map((m) => encodeFrame(m));
    const stream = concat(frames);
    for (let seed = 1; seed <= 30; seed++) {
      const decodeBody = makeBodyDecoder(MB);
      const out: unknown[] = [];
      const dec = new FrameDecoder(MB, (ev) => {
        if (ev.kind !== "frame") throw new Error("unexpected too_large");
        out.push(decodeBody(ev.body.slice())); // copy: decoded bins may be views of the body
      });
      for (const chunk of randomChunks(stream, seed)) dec.push(chunk);
      expect(out.length).toBe(MESSAGES.length);
      for (let i = 0; i < MESSAGES.length; i++) expect(out[i]).toEqual(MESSAGES[i]!);
      const binMsg = out[6] as { data: Uint8Array };
      expect(binMsg.data).toBeInstanceOf(Uint8Array);
      expectBytes(binMsg.data, bin);
    }
  });

  describe("makeBodyDecoder rejects hostile bodies", () => {
    const maxFrame = 1024;
    const decode = makeBodyDecoder(maxFrame);
    const hostile: Array<[string, number[]]> = [
      ["array32 of 2^32-1 items", [0xdd, 0xff, 0xff, 0xff, 0xff]],
      ["array32 of maxFrame+1 items", [0xdd, 0x00, 0x00, 0x04, 0x01]],
      ["array16 of maxFrame+1 items", [0xdc, 0x04, 0x01]],
      ["map32 of 2^32-1 entries", [0xdf, 0xff, 0xff, 0xff, 0xff]],
      ["map16 of maxFrame+1 entries", [0xde, 0x04, 0x01]],
      ["str32 of 2^32-1 bytes", [0xdb, 0xff, 0xff, 0xff, 0xff]],
      ["str16 of maxFrame+1 bytes", [0xda, 0x04, 0x01]],
      ["bin32 of 2^30 bytes", [0xc6, 0x40, 0x00, 0x00, 0x00]],
      ["ext32 of 2^31 bytes", [0xc9, 0x80, 0x00, 0x00, 0x00, 0x01]],
      ["map value: array32 of 2^32-1 items", [0x81, 0xa1, 0x61, 0xdd, 0xff, 0xff, 0xff, 0xff]],
      ["map key: str32 of maxFrame+1 bytes", [0x81, 0xdb, 0x00, 0x00, 0x04, 0x01]],
    ];
    for (const [name, bytes] of hostile) {
      test(name, () => {
        // The container limit is what stops it (not a later 'insufficient data').
        expect(() => decode(new Uint8Array(bytes))).toThrow(/max length exceeded/i);
      });
    }

    test("the limits are exactly maxFrame", () => {
      const d = makeBodyDecoder(10);
      const str = (n: number) => new Uint8Array([0xd9, n, ...new Array<number>(n).fill(0x61)]);
      expect(d(str(10))).toBe("a".repeat(10));
      expect(() => d(str(11))).toThrow(/max length exceeded/i);
      const arr = (n: number) => new Uint8Array([0xdc, 0, n, ...new Array<number>(n).fill(0x01)]);
      expect(d(arr(10))).toEqual(new Array<number>(10).fill(1));
      expect(() => d(arr(11))).toThrow(/max length exceeded/i);
    });

    test("every truncation of a valid body throws", () => {
      const body = encodeFrame(MESSAGES[7]!).subarray(4);
      const d = makeBodyDecoder(MB);
      expect(d(body)).toEqual(MESSAGES[7]!);
      // Every proper prefix (MessagePack is prefix-free); step through small ones densely.
      for (let len = 0; len < body.length; len += len < 200 ? 1 : 997) {
        expect(() => d(body.subarray(0, len))).toThrow();
      }
      expect(() => d(body.subarray(0, body.length - 1))).toThrow();
    });

    test("trailing bytes after the value throw", () => {
      const body = encodeFrame({ t: "ping" }).subarray(4);
      expect(() => decode(concat([body, new Uint8Array([0xc0])]))).toThrow();
    });

    test("the decoder stays usable after a rejection", () => {
      const d = makeBodyDecoder(maxFrame);
      expect(() => d(new Uint8Array([0x82, 0xa1, 0x61, 0xdd, 0xff, 0xff, 0xff, 0xff]))).toThrow();
      expect(() => d(new Uint8Array([0x82, 0xa1]))).toThrow();
      expect(d(encodeFrame({ t: "ok", n: 5 }).subarray(4))).toEqual({ t: "ok", n: 5 });
    });
  });
});

describe("FrameDecoder pause", () => {
  test("paused from an event, it keeps the rest (admitting no header) and resumes in order; the kept bytes are reported held", () => {
    const out: Uint8Array[] = [];
    const admitted: number[] = [];
    let held = 0;
    let pauseAt = 3;
    const d: FrameDecoder = new FrameDecoder(
      4 * MB,
      (ev) => {
        if (ev.kind !== "frame") return;
        out.push(ev.body.slice());
        if (out.length === pauseAt) d.pause();
      },
      { admit: (n) => (admitted.push(n), "read"), held: (delta) => void (held += delta) },
    );
    const chunks = randomChunks(STREAM, 7);
    for (const c of chunks) d.push(c);
    expect(out.length).toBe(3);
    expect(admitted.length).toBe(3); // later headers not looked at while paused
    expect(d.pending).toBeGreaterThan(0);
    expect(held).toBe(d.pending + d.allocated);
    for (let k = 0; k < 100 && out.length < BODIES.length; k++) {
      pauseAt = out.length + 2;
      d.resume();
    }
    expectBodies(out, BODIES);
    expect(d.pending).toBe(0);
    expect(held).toBe(0);
  });
});
