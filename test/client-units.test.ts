// Unit tests of the client's parts that need no socket: the writer against a
// scripted sink, backoff, the event stream, the outbox, the tail probe.
import { describe, expect, test } from "bun:test";
import { Backoff } from "../src/client/backoff.ts";
import { findTail, syncPages } from "../src/client/catchup.ts";
import { EventStream } from "../src/client/events.ts";
import { Outbox } from "../src/client/outbox.ts";
import { Pacer } from "../src/client/pacer.ts";
import type { ChatMessage, Page } from "../src/client/types.ts";
import { type ByteSink, FrameWriter } from "../src/client/writer.ts";

/** A sink whose write() takes what `script` says (bytes, or -1), then everything. */
class ScriptedSink implements ByteSink {
  readonly taken: number[] = [];
  readonly writes: number[] = [];
  ended = false;
  constructor(private readonly script: number[] = []) {}
  write(data: Uint8Array): number {
    this.writes.push(data.length);
    const step = this.script.shift();
    const n = step === undefined ? data.length : step < 0 ? -1 : Math.min(step, data.length);
    if (n > 0) for (const b of data.subarray(0, n)) this.taken.push(b);
    return n;
  }
  end(): void {
    this.ended = true;
  }
}

const bytes = (from: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (from + i) & 0xff);
const tick = () => new Promise<void>((r) => queueMicrotask(r));

describe("FrameWriter", () => {
  test("frames of one turn go out in one write, in order", async () => {
    const sink = new ScriptedSink();
    const w = new FrameWriter(sink);
    w.send(bytes(0, 3));
    w.send(bytes(3, 4));
    w.send(bytes(7, 5));
    expect(sink.writes).toEqual([]); // nothing before the end of the turn
    await tick();
    expect(sink.writes).toEqual([12]);
    expect(sink.taken).toEqual([...bytes(0, 12)]);
    expect(w.idle).toBe(true);
  });

  test("a short write keeps the rest; later frames wait behind it until drain", async () => {
    const sink = new ScriptedSink([5, 0]);
    const w = new FrameWriter(sink);
    w.send(bytes(0, 100_000)); // over the coalescing size: written alone
    await tick();
    expect(sink.taken.length).toBe(5);
    expect(w.queued).toBe(99_995);
    w.send(bytes(100_000 & 0xff, 10)); // must not overtake the remainder
    await tick();
    expect(sink.writes.length).toBe(1);
    w.drain(); // the script says 0 now: still blocked
    expect(sink.taken.length).toBe(5);
    w.drain(); // takes all
    expect(sink.taken).toEqual([...bytes(0, 100_000), ...bytes(100_000 & 0xff, 10)]);
    expect(w.idle).toBe(true);
  });

  test("random short writes never reorder or lose bytes", async () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const script = Array.from({ length: 500 }, () => Math.floor(rnd() * 3000));
    const sink = new ScriptedSink(script);
    const w = new FrameWriter(sink);
    const expected: number[] = [];
    let at = 0;
    for (let round = 0; round < 200; round++) {
      for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) {
        const f = bytes(at, 1 + Math.floor(rnd() * 2000));
        at += f.length;
        expected.push(...f);
        w.send(f);
      }
      await tick();
      if (rnd() < 0.7) w.drain();
    }
    while (!w.idle) w.drain();
    expect(sink.taken.length).toBe(expected.length);
    expect(sink.taken).toEqual(expected);
  });

  test("end() half-closes only once the queue is empty; -1 closes the writer", async () => {
    const sink = new ScriptedSink([2]);
    const w = new FrameWriter(sink);
    w.send(bytes(0, 10));
    w.end();
    await tick();
    expect(sink.ended).toBe(false);
    w.drain();
    expect(sink.ended).toBe(true);
    expect(sink.taken).toEqual([...bytes(0, 10)]);
    expect(w.send(bytes(0, 1))).toBe(false);

    const dead = new ScriptedSink([-1]);
    const w2 = new FrameWriter(dead);
    w2.send(bytes(0, 4));
    await tick();
    expect(w2.closed).toBe(true);
    expect(w2.idle).toBe(true);
  });
});

describe("Backoff", () => {
  test("grows by the factor up to the ceiling; jitter takes away at most its fraction; reset starts over", () => {
    const none = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => none.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    none.reset();
    expect(none.next()).toBe(100);
    const lowest = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 }, () => 0.999999);
    expect([1, 2, 3].map(() => lowest.next())).toEqual([50, 100, 200]);
    const highest = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 }, () => 0);
    expect([1, 2, 3].map(() => highest.next())).toEqual([100, 200, 400]);
  });
});

describe("Pacer", () => {
  test("lets a burst through, then spaces requests at the rate, in order, also by bytes", async () => {
    let now = 0;
    const out: number[] = [];
    const p = new Pacer({ requestsPerSec: 100, bytesPerSec: 1000, burstSec: 0.05 }, (f) => out.push(f[0]!), () => now);
    // burst: 5 requests, 50 bytes
    for (let i = 0; i < 8; i++) p.send(new Uint8Array([i, 0, 0, 0, 0]));
    expect(out).toEqual([0, 1, 2, 3, 4]);
    expect(p.waiting).toBe(3);
    now = 10; // 1 request and 10 bytes more
    await Bun.sleep(15);
    expect(out).toEqual([0, 1, 2, 3, 4, 5]);
    now = 1000;
    await Bun.sleep(15);
    expect(out).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // a frame bigger than the byte burst waits for a full bucket, then goes
    now = 2000;
    p.send(new Uint8Array(400).fill(9));
    expect(out.at(-1)).toBe(9);
    p.send(new Uint8Array([10]));
    expect(p.waiting).toBe(1);
    p.close();
    expect(p.waiting).toBe(0);
  });

  test("rates of 0 mean no pacing", () => {
    const out: number[] = [];
    const p = new Pacer({ requestsPerSec: 0, bytesPerSec: 0 }, (f) => out.push(f.length));
    for (let i = 0; i < 10_000; i++) p.send(new Uint8Array(1000));
    expect(out.length).toBe(10_000);
  });
});

describe("EventStream", () => {
  test("yields pushed values in order, waits for more, ends after what it holds", async () => {
    let ended = 0;
    const s = new EventStream<number>(() => ended++);
    s.push(1);
    s.push(2);
    const waiting = (async () => {
      const out: number[] = [];
      for await (const v of s) out.push(v);
      return out;
    })();
    await Bun.sleep(1);
    s.push(3);
    s.end();
    s.push(4); // after end: dropped
    expect(await waiting).toEqual([1, 2, 3]);
    expect(ended).toBe(1);
  });

  test("return() (a break) ends it and drops what was waiting", async () => {
    let ended = 0;
    const s = new EventStream<number>(() => ended++);
    s.push(1);
    s.push(2);
    for await (const v of s) {
      expect(v).toBe(1);
      break;
    }
    expect(ended).toBe(1);
    expect(await s.next()).toEqual({ value: undefined, done: true });
  });
});

describe("Outbox", () => {
  test("keeps order, finds by cid, settles once", async () => {
    const o = new Outbox();
    const a = o.add({ group: "g", text: "a", cid: "1" });
    const b = o.add({ group: "g", text: "b", cid: "2" });
    expect(o.queued().map((e) => e.input.cid)).toEqual(["1", "2"]);
    a.entry.state = "inflight";
    expect(o.queued().map((e) => e.input.cid)).toEqual(["2"]);
    o.requeueInflight();
    expect(o.queued().length).toBe(2);
    expect(o.byCidOf("2")).toBe(b.entry);
    const m = { mid: 5, ts: 1, from: "x", text: "a" } as ChatMessage;
    o.settle(a.entry, m);
    o.settle(a.entry, { ...m, mid: 6 }); // a second settle is ignored
    expect(await a.promise).toEqual(m);
    o.fail(b.entry, new Error("no"));
    expect(await b.promise.catch((e) => e.message)).toBe("no");
    expect(o.size).toBe(0);
    await o.settled();
  });
});

/** A fake `sync` over a sorted list of mids; counts calls. */
function fakeSync(mids: number[]) {
  const calls: [number, number][] = [];
  const sync = async (after: number, limit: number): Promise<Page> => {
    calls.push([after, limit]);
    const rest = mids.filter((m) => m > after);
    return {
      msgs: rest.slice(0, limit).map((mid) => ({ mid, ts: mid, from: "x" })),
      more: rest.length > limit,
    };
  };
  return { sync, calls };
}

describe("catch-up", () => {
  test("findTail finds the largest mid with a logarithmic number of limit-1 probes", async () => {
    for (const mids of [[], [1], [7], [3, 4, 5], [2, 90, 91, 1000], Array.from({ length: 5000 }, (_, i) => i * 3 + 1)]) {
      const { sync, calls } = fakeSync(mids);
      expect(await findTail(sync)).toBe(mids.at(-1) ?? 0);
      expect(calls.every(([, limit]) => limit === 1)).toBe(true);
      expect(calls.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2((mids.at(-1) ?? 1) + 1)) + 2);
    }
  });

  test("findTail returns a mid that exists even when messages are committed while it probes", async () => {
    const mids = [10, 20, 30];
    let next = 31;
    const { sync: inner } = fakeSync(mids);
    const sync = async (after: number, limit: number) => {
      const r = await inner(after, limit);
      mids.push(next++); // a new message after every probe
      return r;
    };
    const tail = await findTail(sync);
    expect(mids).toContain(tail);
    expect(tail).toBeGreaterThanOrEqual(30);
  });

  test("syncPages asks for less after a page cut short by size, and grows back", async () => {
    const calls: number[] = [];
    // the first 6 messages are "large": a page holds at most one of them
    const sync = async (after: number, limit: number): Promise<Page> => {
      calls.push(limit);
      const rest = Array.from({ length: 20 }, (_, i) => i + 1).filter((m) => m > after);
      let take = rest.slice(0, limit);
      if (take[0]! <= 6) take = take.slice(0, 1);
      return { msgs: take.map((mid) => ({ mid, ts: mid, from: "x" })), more: rest.length > take.length };
    };
    const got: number[] = [];
    for await (const p of syncPages(sync, 0, 8)) got.push(...p.map((m) => m.mid));
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(calls).toEqual([8, 2, 2, 2, 2, 2, 2, 4, 8]);
  });

  test("syncPages pages from the last mid of each page until more is false", async () => {
    const { sync, calls } = fakeSync([2, 4, 6, 8, 10]);
    const pages: number[][] = [];
    for await (const p of syncPages(sync, 3, 2)) pages.push(p.map((m) => m.mid));
    expect(pages).toEqual([[4, 6], [8, 10]]);
    expect(calls).toEqual([
      [3, 2],
      [6, 2],
    ]);
  });
});
