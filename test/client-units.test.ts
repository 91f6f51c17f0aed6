// Unit tests of the client's parts that need no socket: the writer against a
// scripted sink, backoff, the event stream, the outbox, the tail probe.
import { describe, expect, test } from "bun:test";
import { newCid } from "../src/client/cid.ts";
import { Backoff } from "../src/client/backoff.ts";
import { findTail, syncPages } from "../src/client/catchup.ts";
import { EventStream } from "../src/client/events.ts";
import { Outbox } from "../src/client/outbox.ts";
import { Pacer } from "../src/client/pacer.ts";
import type { ChatMessage, Page } from "../src/client/types.ts";

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

describe("newCid", () => {
  test("unique, increasing within a client (the server's cid index takes them at its end), 1-64 bytes", () => {
    const cids = Array.from({ length: 20000 }, () => newCid());
    expect(new Set(cids).size).toBe(cids.length);
    const sorted = [...cids].sort();
    expect(sorted).toEqual(cids);
    for (const c of cids.slice(0, 10)) expect(c).toMatch(/^[0-9a-z]{9}-[0-9a-z]{6}-[0-9a-z]{8}$/);
  });
});
