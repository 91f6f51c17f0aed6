// Unit tests for the per-connection Writer (src/io/writer.ts), against a fake
// Transport whose write() is scripted to take all, part, none, or to report closed.
import { describe, expect, test } from "bun:test";
import { FRAME_OVERHEAD as O, QUEUED, type Sink as Transport, Writer } from "../src/io/writer.ts";
import { mulberry32, randInt } from "./helpers/prng.ts";
import { concat } from "./helpers/wire.ts";

// ---- helpers ------------------------------------------------------------

let frameSeq = 0;
/** A "frame" of `size` bytes with content unique to it (the Writer treats frames as opaque bytes). */
function mkFrame(size: number): Uint8Array {
  let x = (++frameSeq * 2654435761) >>> 0 || 1;
  const f = new Uint8Array(size);
  const words = new Uint32Array(f.buffer, 0, size >>> 2);
  for (let i = 0; i < words.length; i++) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < size; i++) f[i] = (frameSeq + i * 31) & 0xff;
  return f;
}

function expectBytes(actual: Uint8Array, expected: Uint8Array, what = "stream"): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) throw new Error(`${what}: first difference at byte ${i} of ${actual.length}`);
  }
}

/** Lets the end-of-turn flush microtask (queued by send()) run. */
const turn = () => Promise.resolve();

/** What write() does next: "all", a byte count to accept at most, or -1 (closed). */
type Reply = "all" | number;

class FakeTransport implements Transport {
  /** Every buffer passed to write(), in call order (the object itself, not a copy). */
  readonly calls: Uint8Array[] = [];
  /** Copies of the bytes accepted, in order. */
  readonly acceptedChunks: Uint8Array[] = [];
  /** Interleaved log of transport calls, for ordering assertions. */
  readonly log: string[] = [];
  endCalls = 0;
  terminateCalls = 0;
  /** Replies used in order; when empty, `fallback` is used. */
  script: Reply[] = [];
  fallback: Reply = "all";
  /** Set when write() took fewer bytes than offered; cleared by the test when it calls drain(). */
  shortPending = false;
  /** A write() call made while a short write was pending and no drain() had been delivered. */
  wroteAhead = false;

  write(data: Uint8Array): number {
    if (this.shortPending) this.wroteAhead = true;
    this.calls.push(data);
    const reply = this.script.length > 0 ? this.script.shift()! : this.fallback;
    if (reply === -1) {
      this.log.push("write:-1");
      return -1;
    }
    const n = reply === "all" ? data.length : Math.min(reply, data.length);
    if (n > 0) this.acceptedChunks.push(data.slice(0, n));
    if (n < data.length) this.shortPending = true;
    this.log.push(`write:${n}/${data.length}`);
    return n;
  }

  end(): void {
    this.endCalls++;
    this.log.push("end");
  }

  terminate(): void {
    this.terminateCalls++;
    this.log.push("terminate");
  }

  get accepted(): Uint8Array {
    return concat(this.acceptedChunks);
  }

  get acceptedBytes(): number {
    let n = 0;
    for (const c of this.acceptedChunks) n += c.length;
    return n;
  }
}

/** Delivers the transport's drain event. */
function drain(t: FakeTransport, w: Writer): void {
  t.shortPending = false;
  w.drain();
}

const KiB = 1024;
/** Frames below this are merged into one write (COALESCE_BYTES in writer.ts). */
const COALESCE = 64 * KiB;
/** The server's default maxQueue; its eager threshold is min(64 KiB, maxQueue / 4) = 64 KiB. */
const DEFAULT_MAX_QUEUE = 16 * KiB * KiB;

function setup(maxQueue = DEFAULT_MAX_QUEUE) {
  const t = new FakeTransport();
  let overflows = 0;
  const w = new Writer(t, maxQueue, () => {
    overflows++;
    t.log.push("overflow");
  });
  return { t, w, overflows: () => overflows };
}

/** With a transport that took everything: every write() is a run of whole, consecutive frames. */
function expectFrameAligned(calls: readonly Uint8Array[], frames: readonly Uint8Array[]): void {
  let fi = 0;
  for (const c of calls) {
    let size = 0;
    const start = fi;
    while (size < c.length && fi < frames.length) size += frames[fi++]!.length;
    expect(size).toBe(c.length);
    expectBytes(c, concat(frames.slice(start, fi)), "write");
    if (fi - start > 1) expect(c.length).toBeLessThanOrEqual(COALESCE);
  }
  expect(fi).toBe(frames.length);
}

// ---- end-of-turn flush and coalescing -------------------------------------------

describe("Writer end-of-turn flush", () => {
  test("frames sent in one turn are written once, at the end of the turn, coalesced in order", async () => {
    const { t, w } = setup();
    const frames = [mkFrame(10), mkFrame(1), mkFrame(300), mkFrame(4)];
    for (const f of frames) w.send(f);
    expect(t.calls.length).toBe(0); // nothing synchronously
    expect(w.queued).toBe(315);
    expect(w.idle).toBe(false);
    await turn();
    expect(t.calls.length).toBe(1);
    expectBytes(t.accepted, concat(frames));
    expect(w.queued).toBe(0);
    expect(w.idle).toBe(true);
    expect(w.closed).toBe(false);

    // A later turn writes again, once.
    const more = [mkFrame(7), mkFrame(8)];
    for (const f of more) w.send(f);
    expect(t.calls.length).toBe(1);
    await turn();
    expect(t.calls.length).toBe(2);
    expectBytes(t.accepted, concat([...frames, ...more]));
  });

  test("a burst just below the eager threshold still waits for the end of the turn, as one write", async () => {
    const { t, w } = setup();
    const frames = [...Array.from({ length: 63 }, () => mkFrame(1000)), mkFrame(COALESCE - 1 - 63_000)];
    for (const f of frames) w.send(f);
    expect(w.queued).toBe(COALESCE - 1);
    expect(t.calls.length).toBe(0);
    await turn();
    expect(t.calls.length).toBe(1);
    expectBytes(t.accepted, concat(frames));
  });

  test("a single frame is written as-is, without a copy", async () => {
    const { t, w } = setup();
    const f = mkFrame(100);
    w.send(f);
    await turn();
    expect(t.calls.length).toBe(1);
    expect(t.calls[0]).toBe(f);
  });

  test("several writers in the same turn each get one write; a shared frame goes to all", async () => {
    const a = setup();
    const b = setup();
    const c = setup();
    const shared = mkFrame(50);
    const onlyA = mkFrame(20);
    a.w.send(shared);
    b.w.send(shared);
    a.w.send(onlyA);
    c.w.send(shared);
    await turn();
    expect(a.t.calls.length).toBe(1);
    expect(b.t.calls.length).toBe(1);
    expect(c.t.calls.length).toBe(1);
    expectBytes(a.t.accepted, concat([shared, onlyA]));
    expectBytes(b.t.accepted, shared);
    expectBytes(c.t.accepted, shared);
  });

  test("calling flush() directly before the microtask is harmless", async () => {
    const { t, w } = setup();
    const frames = [mkFrame(5), mkFrame(6)];
    for (const f of frames) w.send(f);
    w.flush();
    expect(t.calls.length).toBe(1);
    await turn();
    expect(t.calls.length).toBe(1);
    expectBytes(t.accepted, concat(frames));
  });
});

// ---- eager write of a large burst -------------------------------------------------

describe("Writer eager burst", () => {
  test("reaching 64 KiB queued in one turn writes at once, inside send()", async () => {
    const { t, w } = setup();
    const frames = Array.from({ length: 64 }, () => mkFrame(1000)); // 64000
    for (const f of frames) w.send(f);
    expect(t.calls.length).toBe(0);
    const last = mkFrame(COALESCE - 64_000); // reaches exactly 64 KiB
    w.send(last);
    frames.push(last);
    expect(t.calls.length).toBe(1); // synchronously, one merged write
    expect(t.calls[0]!.length).toBe(COALESCE);
    expect(w.queued).toBe(0);
    expectBytes(t.accepted, concat(frames));
    await turn();
    expect(t.calls.length).toBe(1); // nothing left for the end of the turn

    const after = mkFrame(10);
    w.send(after);
    expect(t.calls.length).toBe(1);
    await turn();
    expect(t.calls.length).toBe(2);
    expectBytes(t.accepted, concat([...frames, after]));
  });

  test("a frame of 64 KiB or more is written at once, as the same buffer", () => {
    const { t, w } = setup();
    const big = mkFrame(COALESCE);
    w.send(big);
    expect(t.calls.length).toBe(1);
    expect(t.calls[0]).toBe(big);
    expect(w.queued).toBe(0);
  });

  test("the threshold is a quarter of a small maxQueue", async () => {
    const { t, w } = setup(4000); // eager at 1000 bytes
    const a = mkFrame(999);
    w.send(a);
    expect(t.calls.length).toBe(0);
    const b = mkFrame(1);
    w.send(b);
    expect(t.calls.length).toBe(1);
    expectBytes(t.accepted, concat([a, b]));
    await turn();
    expect(t.calls.length).toBe(1);
  });

  test("many small frames in one turn: few writes, each whole frames and at most 64 KiB, in order", async () => {
    const { t, w } = setup();
    const frames = Array.from({ length: 200 }, (_, i) => mkFrame(900 + (i % 7) * 50));
    for (const f of frames) w.send(f);
    await turn();
    expect(t.calls.length).toBeLessThanOrEqual(8);
    expectFrameAligned(t.calls, frames);
    expectBytes(t.accepted, concat(frames));
    expect(w.queued).toBe(0);
  });

  test("no eager write while blocked: frames queue behind the remainder", async () => {
    const { t, w } = setup();
    t.script = [3];
    const a = mkFrame(10);
    w.send(a);
    await turn();
    expect(t.calls.length).toBe(1);
    const big = mkFrame(200_000);
    w.send(big);
    w.send(mkFrame(COALESCE));
    expect(t.calls.length).toBe(1);
    expect(w.queued).toBe(7 + 200_000 + COALESCE);
  });

  // Regression: the threshold was once `maxQueue >> 2`, a 32-bit signed shift, so a
  // maxQueue of 2^31 or more gave a threshold <= 0 and every send() wrote at once.
  for (const maxQueue of [2 ** 31, 2 ** 32]) {
    test(`a small burst is coalesced at the end of the turn with maxQueue = ${maxQueue}`, async () => {
      const { t, w } = setup(maxQueue);
      const frames = Array.from({ length: 10 }, () => mkFrame(100));
      for (const f of frames) w.send(f);
      expect(t.calls.length).toBe(0);
      await turn();
      expect(t.calls.length).toBe(1);
      expectBytes(t.accepted, concat(frames));
    });
  }
});

// ---- partial writes ---------------------------------------------------------

describe("Writer partial writes", () => {
  test("remainder is queued; nothing is written until drain; new frames go after the remainder", async () => {
    const { t, w } = setup();
    const a = mkFrame(10);
    const b = mkFrame(20);
    t.script = [5];
    w.send(a);
    w.send(b);
    await turn();
    expect(t.calls.length).toBe(1);
    expect(t.acceptedBytes).toBe(5);
    expect(w.queued).toBe(25);

    // Blocked: sends over several turns write nothing.
    const c = mkFrame(7);
    const d = mkFrame(3);
    w.send(c);
    await turn();
    w.send(d);
    await turn();
    await turn();
    expect(t.calls.length).toBe(1);
    expect(w.queued).toBe(35);
    // flush() itself must not write past a short write either.
    w.flush();
    expect(t.calls.length).toBe(1);

    drain(t, w);
    expect(t.wroteAhead).toBe(false);
    expect(w.queued).toBe(0);
    expectBytes(t.accepted, concat([a, b, c, d]));
    // The remainder (25 bytes: rest of a+b) and c, d are coalesced into one write.
    expect(t.calls.length).toBe(2);
    expect(t.calls[1]!.length).toBe(35);
  });

  test("write accepting 0 bytes blocks until drain; repeated short writes keep order", async () => {
    const { t, w } = setup();
    const frames = [mkFrame(100), mkFrame(100)];
    t.script = [0, 1, 0, 50];
    for (const f of frames) w.send(f);
    await turn();
    expect(t.acceptedBytes).toBe(0);
    expect(w.queued).toBe(200);
    drain(t, w); // 1 byte
    expect(w.queued).toBe(199);
    drain(t, w); // 0 bytes
    expect(w.queued).toBe(199);
    drain(t, w); // 50
    expect(w.queued).toBe(149);
    drain(t, w); // all
    expect(w.queued).toBe(0);
    expect(t.wroteAhead).toBe(false);
    expectBytes(t.accepted, concat(frames));
  });

  test("a short write inside a large (uncoalesced) frame keeps it at the head", async () => {
    const { t, w } = setup();
    const big = mkFrame(100_000);
    const small = mkFrame(10);
    t.script = [30_000, 30_000];
    w.send(big); // >= 64 KiB: written at once, 30000 taken
    expect(t.calls.length).toBe(1);
    expect(t.calls[0]).toBe(big);
    w.send(small);
    await turn();
    expect(t.calls.length).toBe(1);
    expect(w.queued).toBe(70_010);
    drain(t, w); // rest of big is 70000 bytes: >= 64 KiB, so written alone; 30000 taken
    expect(t.calls[1]!.length).toBe(70_000);
    expect(w.queued).toBe(40_010);
    drain(t, w); // 40000 + 10: coalesced
    expect(t.calls[2]!.length).toBe(40_010);
    expect(w.queued).toBe(0);
    expectBytes(t.accepted, concat([big, small]));
  });

  test("a short write after more than 1024 coalesced frames (queue compaction) keeps order", async () => {
    const { t, w } = setup();
    const frames = Array.from({ length: 3000 }, (_, i) => mkFrame(1 + (i % 13)));
    t.script = [5, 1, 7];
    for (const f of frames) w.send(f);
    await turn();
    drain(t, w);
    drain(t, w);
    const later = Array.from({ length: 1500 }, () => mkFrame(9));
    for (const f of later) w.send(f);
    await turn();
    drain(t, w);
    expect(t.wroteAhead).toBe(false);
    expect(w.queued).toBe(0);
    expectBytes(t.accepted, concat([...frames, ...later]));
  });

  test("a spurious drain while not blocked writes in order and does not duplicate", async () => {
    const { t, w } = setup();
    const frames = [mkFrame(10), mkFrame(20)];
    for (const f of frames) w.send(f);
    w.drain(); // before the end-of-turn flush
    await turn();
    w.drain();
    expectBytes(t.accepted, concat(frames));
    expect(w.queued).toBe(0);
  });

  test("randomized partial-write scripts never write ahead of the queue (300 seeds)", async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = mulberry32(seed);
      const { t, w } = setup(2 ** 30);
      const sent: Uint8Array[] = [];
      let sentBytes = 0;
      // write() behaviour drawn per call.
      const pick = (): Reply => {
        const r = rnd();
        if (r < 0.35) return "all";
        if (r < 0.5) return 0;
        if (r < 0.6) return 1;
        return randInt(rnd, 1, 70_000);
      };
      const steps = randInt(rnd, 5, 40);
      for (let s = 0; s < steps; s++) {
        // One turn: send a burst of frames (sometimes none); write() replies are scripted
        // before the burst since large bursts are written from inside send().
        t.script = Array.from({ length: 12 }, pick);
        const burst = rnd() < 0.15 ? 0 : randInt(rnd, 1, 25);
        for (let i = 0; i < burst; i++) {
          const r = rnd();
          const size = r < 0.03 ? randInt(rnd, 65_536, 140_000) : r < 0.12 ? randInt(rnd, 2000, 30_000) : randInt(rnd, 1, 200);
          const f = mkFrame(size);
          sent.push(f);
          sentBytes += size;
          w.send(f);
          expect(t.wroteAhead).toBe(false);
        }
        await turn();
        // Deliver drains, as the socket would (sometimes spuriously, sometimes not at all this turn).
        const drains = randInt(rnd, 0, 3);
        for (let i = 0; i < drains; i++) {
          if (t.shortPending || rnd() < 0.2) drain(t, w);
        }
        expect(t.wroteAhead).toBe(false);
        expect(w.queued).toBe(sentBytes - t.acceptedBytes);
        expect(w.idle).toBe(w.queued === 0);
        expect(w.closed).toBe(false);
      }
      // Let everything through.
      t.script = [];
      t.fallback = "all";
      drain(t, w);
      await turn();
      expect(t.wroteAhead).toBe(false);
      expect(w.queued).toBe(0);
      expectBytes(t.accepted, concat(sent), `seed ${seed}`);
    }
  });
});

// ---- closed transport ---------------------------------------------------------------

describe("Writer closed transport", () => {
  test("write returning -1 closes the writer; later sends are dropped", async () => {
    const { t, w, overflows } = setup();
    t.script = [-1];
    w.send(mkFrame(10));
    w.send(mkFrame(10));
    await turn();
    expect(t.calls.length).toBe(1);
    expect(w.closed).toBe(true);
    expect(w.queued).toBe(0);
    expect(w.idle).toBe(true);

    w.send(mkFrame(5));
    w.send(mkFrame(COALESCE));
    expect(w.queued).toBe(0);
    await turn();
    w.drain();
    w.flush();
    expect(t.calls.length).toBe(1);
    expect(t.acceptedBytes).toBe(0);
    expect(t.endCalls).toBe(0);
    expect(t.terminateCalls).toBe(0);
    expect(overflows()).toBe(0);
  });

  test("-1 on a drain-time write closes too", async () => {
    const { t, w } = setup();
    const a = mkFrame(40);
    t.script = [10, -1];
    w.send(a);
    await turn();
    expect(w.queued).toBe(30);
    w.send(mkFrame(5));
    drain(t, w);
    expect(w.closed).toBe(true);
    expect(w.queued).toBe(0);
    expectBytes(t.accepted, a.subarray(0, 10));
    w.send(mkFrame(5));
    await turn();
    w.drain();
    expect(t.calls.length).toBe(2);
  });

  test("-1 on an eager write inside send() closes at once, without overflow", async () => {
    const { t, w, overflows } = setup(100_000);
    t.script = [-1];
    w.send(mkFrame(30_000)); // threshold is 25000
    expect(t.calls.length).toBe(1);
    expect(w.closed).toBe(true);
    expect(w.queued).toBe(0);
    w.send(mkFrame(200_000));
    await turn();
    expect(t.calls.length).toBe(1);
    expect(overflows()).toBe(0);
    expect(t.terminateCalls).toBe(0);
  });

  test("close() drops the queue: nothing is written after it", async () => {
    const { t, w } = setup();
    w.send(mkFrame(10));
    w.close();
    expect(w.closed).toBe(true);
    expect(w.queued).toBe(0);
    await turn();
    w.send(mkFrame(10));
    await turn();
    w.drain();
    expect(t.calls.length).toBe(0);
  });
});

// ---- queue bound ---------------------------------------------------------------------

describe("Writer maxQueue", () => {
  test("queued counts unsent bytes across partial writes", async () => {
    const { t, w } = setup(10_000);
    t.script = [123];
    w.send(mkFrame(500));
    w.send(mkFrame(500));
    expect(w.queued).toBe(1000);
    await turn();
    expect(w.queued).toBe(877);
    w.send(mkFrame(23));
    expect(w.queued).toBe(900);
    drain(t, w);
    expect(w.queued).toBe(0);
  });

  test("reaching maxQueue exactly is allowed; passing it overflows once, terminates, closes", async () => {
    // The bound counts memory: bytes plus FRAME_OVERHEAD (O) per queued frame.
    const { t, w, overflows } = setup(100 + 2 * O);
    t.fallback = 0; // the kernel takes nothing
    w.send(mkFrame(60));
    w.send(mkFrame(40)); // exactly 100 + 2 O
    expect(overflows()).toBe(0);
    expect(w.closed).toBe(false);
    expect(w.queued).toBe(100);
    expect(w.cost).toBe(100 + 2 * O);
    w.send(mkFrame(1)); // 101 + 3 O
    expect(overflows()).toBe(1);
    expect(t.terminateCalls).toBe(1);
    expect(w.closed).toBe(true);
    expect(w.queued).toBe(0);
    // onOverflow (the writer closed already), then terminate(); nothing was ended gracefully.
    expect(t.log.slice(-2)).toEqual(["overflow", "terminate"]);
    const writesBefore = t.calls.length;

    // Further sends neither overflow again nor write.
    w.send(mkFrame(1000));
    w.send(mkFrame(1));
    await turn();
    w.drain();
    w.end();
    expect(overflows()).toBe(1);
    expect(t.terminateCalls).toBe(1);
    expect(t.calls.length).toBe(writesBefore);
    expect(t.endCalls).toBe(0);
  });

  test("overflow while blocked behind a slow reader", async () => {
    const { t, w, overflows } = setup(1000 + 3 * O);
    const first = mkFrame(600);
    t.script = [100];
    w.send(first); // >= a quarter of the bound: written at once, 100 taken
    expect(w.queued).toBe(500);
    await turn();
    w.send(mkFrame(300)); // 800 + 2 O
    w.send(mkFrame(200)); // 1000 + 3 O: still fine
    expect(overflows()).toBe(0);
    w.send(mkFrame(1)); // 1001 + 4 O
    expect(overflows()).toBe(1);
    expect(t.terminateCalls).toBe(1);
    expect(w.closed).toBe(true);
    drain(t, w);
    await turn();
    expect(t.calls.length).toBe(1);
    expectBytes(t.accepted, first.subarray(0, 100));
  });

  test("a frame larger than maxQueue that the kernel refuses overflows in the same send()", () => {
    const { t, w, overflows } = setup(1000);
    t.fallback = 0;
    w.send(mkFrame(1001));
    expect(overflows()).toBe(1);
    expect(t.terminateCalls).toBe(1);
    expect(w.closed).toBe(true);
  });

  test("only bytes the kernel refused count: bursts it takes never overflow", async () => {
    const { t, w, overflows } = setup(1000);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) frames.push(mkFrame(900));
    frames.push(mkFrame(5000)); // larger than maxQueue, but taken at once
    for (const f of frames) w.send(f);
    expect(overflows()).toBe(0);
    expect(w.closed).toBe(false);
    await turn();
    expectBytes(t.accepted, concat(frames));
  });

  test("a partly refused burst counts only the refused part", () => {
    const { t, w, overflows } = setup(1000 + 2 * O);
    t.script = [300];
    t.fallback = 0;
    w.send(mkFrame(1200)); // 900 refused
    expect(w.queued).toBe(900);
    expect(overflows()).toBe(0);
    w.send(mkFrame(100)); // 1000 + 2 O
    expect(overflows()).toBe(0);
    w.send(mkFrame(1)); // 1001 + 3 O
    expect(overflows()).toBe(1);
  });

  test("small frames count their overhead: 30 frames of 10 bytes cost 30 x (10 + FRAME_OVERHEAD)", () => {
    const { t, w, overflows } = setup(20 * 1024);
    t.fallback = 0;
    for (let i = 0; i < 30; i++) w.send(mkFrame(10));
    expect(w.queued).toBe(300);
    expect(w.cost).toBe(30 * (10 + O));
    expect(overflows()).toBe(0);
  });

  test("a burst of tiny frames is written out once its cost reaches half the bound, and never overflows a reading client", () => {
    const { t, w, overflows } = setup(20 * 1024);
    for (let i = 0; i < 1000; i++) w.send(mkFrame(10)); // 1000 x 266 bytes of cost in one turn, 10 KB of bytes
    expect(overflows()).toBe(0);
    expect(t.calls.length).toBeGreaterThan(0);
    expect(w.cost).toBeLessThanOrEqual(10 * 1024 + 10 + O);
  });

  test("the meter is told every change of cost, and is back to 0 when the queue empties or closes", async () => {
    const t = new FakeTransport();
    let metered = 0;
    const w = new Writer(t, 1 << 20, () => {}, { add: (d) => (metered += d) });
    t.script = [50];
    t.fallback = 0;
    w.send(mkFrame(100));
    w.send(mkFrame(100));
    expect(metered).toBe(w.cost);
    await turn();
    expect(metered).toBe(w.cost);
    expect(metered).toBe(150 + O);
    t.fallback = Infinity;
    drain(t, w);
    expect(metered).toBe(0);
    w.send(mkFrame(10));
    w.close();
    expect(metered).toBe(0);
  });

  test("progressAt moves when the kernel takes bytes, not when it refuses them", async () => {
    const { t, w } = setup(1 << 20);
    t.fallback = 0;
    w.send(mkFrame(100));
    await turn();
    const first = w.progressAt;
    await Bun.sleep(5);
    w.drain(); // the kernel still takes nothing
    expect(w.progressAt).toBe(first);
    t.fallback = Infinity;
    w.drain();
    expect(w.progressAt).toBeGreaterThan(first);
    expect(w.written).toBe(100);
  });

  test("bytes already accepted do not count towards maxQueue", async () => {
    const { t, w, overflows } = setup(100);
    for (let i = 0; i < 10; i++) {
      w.send(mkFrame(90));
      await turn();
    }
    expect(overflows()).toBe(0);
    expect(t.acceptedBytes).toBe(900);
  });
});

// ---- end() -----------------------------------------------------------------------------

describe("Writer end", () => {
  test("end() with an empty queue ends the transport once, immediately", async () => {
    const { t, w } = setup();
    w.end();
    expect(t.endCalls).toBe(1);
    expect(w.closed).toBe(true);
    w.end();
    w.send(mkFrame(10));
    w.send(mkFrame(COALESCE));
    await turn();
    w.drain();
    w.end();
    expect(t.endCalls).toBe(1);
    expect(t.calls.length).toBe(0);
    expect(t.terminateCalls).toBe(0);
  });

  test("end() after everything was written ends immediately", async () => {
    const { t, w } = setup();
    const a = mkFrame(10);
    w.send(a);
    await turn();
    w.end();
    expect(t.log).toEqual(["write:10/10", "end"]);
  });

  test("end() with a pending queue ends only after the end-of-turn flush wrote it", async () => {
    const { t, w } = setup();
    const frames = [mkFrame(10), mkFrame(20)];
    for (const f of frames) w.send(f);
    w.end();
    expect(t.endCalls).toBe(0);
    expect(w.closed).toBe(false);
    w.send(mkFrame(99)); // after end(): ignored
    w.send(mkFrame(COALESCE)); // ignored too (no eager write either)
    expect(w.queued).toBe(30);
    expect(t.calls.length).toBe(0);
    await turn();
    expect(t.log).toEqual(["write:30/30", "end"]);
    expectBytes(t.accepted, concat(frames));
    expect(w.closed).toBe(true);
  });

  test("end() while blocked ends only after drains have emptied the queue", async () => {
    const { t, w } = setup();
    const frames = [mkFrame(50), mkFrame(50)];
    t.script = [10, 0, 30];
    for (const f of frames) w.send(f);
    await turn();
    w.end();
    w.send(mkFrame(5)); // ignored
    expect(t.endCalls).toBe(0);
    drain(t, w); // 0
    expect(t.endCalls).toBe(0);
    drain(t, w); // 30
    expect(t.endCalls).toBe(0);
    expect(w.queued).toBe(60);
    drain(t, w); // all
    expect(t.endCalls).toBe(1);
    expect(t.log[t.log.length - 1]).toBe("end");
    expect(t.log.filter((e) => e === "end").length).toBe(1);
    expectBytes(t.accepted, concat(frames));
    drain(t, w);
    w.end();
    await turn();
    expect(t.endCalls).toBe(1);
    expect(t.terminateCalls).toBe(0);
  });

  test("end() then -1 from write: the transport is not ended", async () => {
    const { t, w } = setup();
    t.script = [-1];
    w.send(mkFrame(10));
    w.end();
    await turn();
    expect(w.closed).toBe(true);
    expect(t.endCalls).toBe(0);
  });
});

// ---- large frames --------------------------------------------------------------------------

describe("Writer large frames", () => {
  test("frames over 64 KiB are written alone (not merged, not copied), order preserved", async () => {
    const { t, w } = setup();
    const s1 = mkFrame(10);
    const big1 = mkFrame(70_000);
    const s2 = mkFrame(20);
    const s3 = mkFrame(30);
    const big2 = mkFrame(COALESCE + 1);
    const big3 = mkFrame(200_000);
    const s4 = mkFrame(40);
    const frames = [s1, big1, s2, s3, big2, big3, s4];
    const bigs = [big1, big2, big3];
    for (const f of frames) w.send(f);
    await turn();
    expectBytes(t.accepted, concat(frames));
    expectFrameAligned(t.calls, frames);
    // Each large frame is passed to write() by itself, as the very same buffer, exactly once.
    for (const big of bigs) expect(t.calls.filter((c) => c === big).length).toBe(1);
    // No other write is larger than 64 KiB (a large frame is never merged with anything).
    for (const c of t.calls) if (c.length > COALESCE) expect(bigs.includes(c)).toBe(true);
  });

  test("large frames queued while blocked are still written alone after drain", async () => {
    const { t, w } = setup();
    t.script = [0];
    const s0 = mkFrame(10);
    w.send(s0);
    await turn(); // blocked, nothing taken
    const big1 = mkFrame(100_000);
    const s1 = mkFrame(5);
    const big2 = mkFrame(70_000);
    const s2 = mkFrame(6);
    const s3 = mkFrame(7);
    for (const f of [big1, s1, big2, s2, s3]) w.send(f);
    expect(t.calls.length).toBe(1);
    drain(t, w);
    const frames = [s0, big1, s1, big2, s2, s3];
    expectBytes(t.accepted, concat(frames));
    const after = t.calls.slice(1);
    expect(after.map((c) => c.length)).toEqual([10, 100_000, 5, 70_000, 13]);
    expect(after[1]).toBe(big1);
    expect(after[3]).toBe(big2);
  });

  test("merging stops at 64 KiB in total", async () => {
    const { t, w } = setup();
    t.script = [0];
    const x = mkFrame(10);
    w.send(x);
    await turn(); // blocked, nothing taken: the next frames all queue up
    const a = mkFrame(40_000);
    const b = mkFrame(COALESCE - 40_000 - 10); // x + a + b = 64 KiB exactly: merged
    const c = mkFrame(1); // would pass 64 KiB: next write
    for (const f of [a, b, c]) w.send(f);
    drain(t, w);
    expect(t.calls.slice(1).map((k) => k.length)).toEqual([COALESCE, 1]);
    expectBytes(t.accepted, concat([x, a, b, c]));
  });
});

// ---- a message sink (a WebSocket) --------------------------------------------

/** A WebSocket as Bun's ws.send() behaves: each write is one message, sent, kept under backpressure (QUEUED) or dropped (0). */
class FakeWs implements Transport {
  readonly messages = true;
  readonly sent: Uint8Array[] = [];
  /** What the next writes return, in order: "sent", "queued" (taken, backpressure), "dropped"; then "sent". */
  script: Array<"sent" | "queued" | "dropped" | "closed"> = [];
  calls = 0;
  write(data: Uint8Array): number {
    this.calls++;
    const r = this.script.shift() ?? "sent";
    if (r === "closed") return -1;
    if (r === "dropped") return 0;
    this.sent.push(data);
    return r === "queued" ? QUEUED : data.length;
  }
  end(): void {}
  terminate(): void {}
}

describe("Writer over a message sink (WebSocket)", () => {
  test("frames are written one per write, never merged, in order", async () => {
    const ws = new FakeWs();
    const w = new Writer(ws, 1 << 20, () => {});
    const frames = [mkFrame(10), mkFrame(20), mkFrame(30)];
    for (const f of frames) w.send(f);
    await turn();
    expect(ws.sent).toEqual(frames);
    expect(w.queued).toBe(0);
  });

  test("QUEUED: the frame was taken; nothing more is written until drain, then the rest in order", async () => {
    const ws = new FakeWs();
    const w = new Writer(ws, 1 << 20, () => {});
    ws.script = ["sent", "queued"];
    const frames = [mkFrame(10), mkFrame(20), mkFrame(30), mkFrame(40)];
    for (const f of frames) w.send(f);
    await turn();
    expect(ws.sent).toEqual(frames.slice(0, 2));
    expect(w.stalled).toBe(true);
    expect(w.queued).toBe(70);
    w.send(mkFrame(5)); // behind the queue, not ahead of it
    await turn();
    expect(ws.calls).toBe(2);
    w.drain();
    expect(ws.sent.length).toBe(5);
    expect(ws.sent.slice(2, 4)).toEqual(frames.slice(2));
    expect(w.queued).toBe(0);
  });

  test("0 (dropped): the frame stays at the head and is sent again after drain, once", async () => {
    const ws = new FakeWs();
    const w = new Writer(ws, 1 << 20, () => {});
    ws.script = ["dropped"];
    const a = mkFrame(10);
    const b = mkFrame(11);
    w.send(a);
    w.send(b);
    await turn();
    expect(ws.sent).toEqual([]);
    expect(w.queued).toBe(21);
    w.drain();
    expect(ws.sent).toEqual([a, b]);
  });

  test("the queue bound holds: frames kept while the sink is backpressured overflow it once", async () => {
    const ws = new FakeWs();
    let overflows = 0;
    const w = new Writer(ws, 1000, () => overflows++);
    ws.script = ["queued"];
    w.send(mkFrame(100));
    await turn();
    for (let i = 0; i < 10; i++) w.send(mkFrame(100)); // 10 x (100 + 256) > 1000
    expect(overflows).toBe(1);
    expect(w.closed).toBe(true);
  });

  test("-1: the connection is gone; the writer closes", async () => {
    const ws = new FakeWs();
    const w = new Writer(ws, 1 << 20, () => {});
    ws.script = ["closed"];
    w.send(mkFrame(10));
    await turn();
    expect(w.closed).toBe(true);
  });
});
