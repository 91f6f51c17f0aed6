// The server core over a fake transport: no sockets, no ports, an in-memory store.
// What is hard to provoke over real TCP is tested here: short writes, a reader
// that never reads, a store that fails, shutdown with work in flight.
import { describe, expect, test } from "bun:test";
import type { NewMessage } from "../src/store/store.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { FakeConn, loggedIn, makeCore, turn } from "./helpers/fake-conn.ts";
import { frameOf, type Msg } from "./helpers/wire.ts";

let ids = 100;

describe("writer behaviour through the core", () => {
  test("fan-out to a connection taking 7 bytes per write arrives intact and in order", async () => {
    const core = await makeCore();
    const a = await loggedIn(core, "alice");
    const b = await loggedIn(core, "bob");
    await a.req({ t: "create", id: 1, group: "g" });
    await b.req({ t: "join", id: 2, group: "g" });
    b.accept = 7;
    for (let i = 0; i < 50; i++) a.send({ t: "send", id: 10 + i, group: "g", text: `m${i}` });
    await turn();
    // only drain lets more through
    for (let k = 0; k < 2000 && b.chat.length < 50; k++) {
      core.drain(b.session);
    }
    const got = b.chat.map((m) => m.text);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  });

  test("replies produced in one turn leave in one write", async () => {
    const core = await makeCore();
    const a = new FakeConn(core);
    const before = a.writes;
    const burst = [];
    for (let i = 0; i < 100; i++) burst.push(frameOf({ t: "ping", id: i }));
    core.data(a.session, Buffer.concat(burst));
    await turn();
    expect(a.msgs.length).toBe(100);
    expect(a.writes - before).toBe(1);
  });

  test("a replay whose store reads are slow, while messages keep being committed, is still exactly once and in order", async () => {
    // Each replay read takes its snapshot, then answers only after a while: commits land (and
    // their live pushes are skipped, the reader being behind) between a page's read and the
    // decision to resume live pushes (PROTOCOL.md §5.4; ChatCore.catchUp).
    class SlowReads extends MemoryStore {
      delayMs = 0;
      /** Replay reads during which a message was committed. */
      raced = 0;
      private async slow<T>(r: T): Promise<T> {
        if (this.delayMs === 0) return r;
        const before = await this.lastMid();
        await Bun.sleep(this.delayMs);
        if ((await this.lastMid()) !== before) this.raced++;
        return r;
      }
      override async syncSizes(user: string, after: number, limit: number) {
        return this.slow(await super.syncSizes(user, after, limit));
      }
      override async messagesByMid(mids: readonly number[]) {
        return this.slow(await super.messagesByMid(mids));
      }
    }
    const store = new SlowReads();
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, rateMsgs: 0 }, store);
    const a = await loggedIn(core, "alice");
    const slow = await loggedIn(core, "slow");
    for (const c of [a, slow]) await c.req({ t: c === a ? "create" : "join", id: ids++, group: "g" });
    slow.accept = 0;
    for (let i = 0; i < 200; i++) a.send({ t: "send", id: ids++, group: "g", text: `m${i} ${"x".repeat(100)}` });
    await turn();
    await turn();
    expect(slow.session.behindSince).toBeGreaterThan(0);
    // It reads again while alice keeps sending, about as fast as a replay page is read.
    store.delayMs = 2;
    slow.accept = Infinity;
    let sent = 200;
    const sender = (async () => {
      for (; sent < 400; sent++) {
        a.send({ t: "send", id: ids++, group: "g", text: `m${sent}` });
        await Bun.sleep(sent % 2 ? 1 : 8);
      }
    })();
    let resumed = 0; // how often it went back to live pushes while alice was still sending
    for (let k = 0; k < 5000 && (sent < 400 || slow.session.behindSince !== 0); k++) {
      const wasBehind = slow.session.behindSince !== 0;
      core.drain(slow.session);
      await Bun.sleep(1);
      if (wasBehind && slow.session.behindSince === 0 && sent < 400) resumed++;
    }
    await sender;
    store.delayMs = 0;
    await a.req({ t: "send", id: ids++, group: "g", text: "m400" });
    await turn();
    expect(slow.session.behindSince).toBe(0);
    const got = slow.chat;
    expect(got.map((m) => m.text.split(" ")[0])).toEqual(Array.from({ length: 401 }, (_, i) => `m${i}`));
    const mids = got.map((m) => m.mid);
    for (let i = 1; i < mids.length; i++) expect(mids[i]).toBeGreaterThan(mids[i - 1]);
    expect(store.raced).toBeGreaterThan(0); // commits did land during replay reads
    expect(resumed).toBeGreaterThan(0); // and the switch back to live pushes happened while they did
  });

  test("a message committed while the replay reads its last page is replayed, not lost (the race, made to happen)", async () => {
    // The replay reads its short last page (its snapshot taken); before the read returns, a
    // message is committed and delivered, and its live push skipped (the reader is behind).
    // Resuming live pushes on that page alone would lose it (PROTOCOL.md §5.4).
    let hook: (() => Promise<void>) | undefined;
    class RacyReads extends MemoryStore {
      override async syncSizes(user: string, after: number, limit: number) {
        const r = await super.syncSizes(user, after, limit);
        const h = hook;
        // The last page: what is left fits the room a drained queue has (a quarter of 8192).
        if (h !== undefined && r.reduce((n, x) => n + x.size, 0) < 1500) {
          hook = undefined;
          await h();
        }
        return r;
      }
    }
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, rateMsgs: 0 }, new RacyReads());
    const a = await loggedIn(core, "alice");
    const slow = await loggedIn(core, "slow");
    for (const c of [a, slow]) await c.req({ t: c === a ? "create" : "join", id: ids++, group: "g" });
    slow.accept = 0;
    for (let i = 0; i < 100; i++) a.send({ t: "send", id: ids++, group: "g", text: `m${i} ${"x".repeat(100)}` });
    await turn();
    await turn();
    expect(slow.session.behindSince).toBeGreaterThan(0);
    hook = async () => {
      await a.req({ t: "send", id: ids++, group: "g", text: "m100" }); // committed, delivered, skipped
    };
    slow.accept = Infinity;
    for (let k = 0; k < 200 && (hook !== undefined || slow.session.behindSince !== 0); k++) {
      core.drain(slow.session);
      await turn();
    }
    expect(hook).toBeUndefined(); // the race happened
    expect(slow.session.behindSince).toBe(0);
    await a.req({ t: "send", id: ids++, group: "g", text: "m101" }); // live again
    await turn();
    const got = slow.chat.map((m) => m.text.split(" ")[0]);
    expect(got).toEqual(Array.from({ length: 102 }, (_, i) => `m${i}`));
  });

  test("a reader behind whose user left the group meanwhile goes back to live pushes (what it skipped is no longer owed)", async () => {
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, rateMsgs: 0 });
    const a = await loggedIn(core, "alice");
    const slow = await loggedIn(core, "slow");
    for (const c of [a, slow]) await c.req({ t: c === a ? "create" : "join", id: ids++, group: "g" });
    await a.req({ t: "create", id: ids++, group: "h" });
    slow.accept = 0;
    for (let i = 0; i < 100; i++) a.send({ t: "send", id: ids++, group: "g", text: `m${i} ${"x".repeat(100)}` });
    await turn();
    await turn();
    expect(slow.session.behindSince).toBeGreaterThan(0);
    const other = await loggedIn(core, "slow"); // another device of the same user leaves g
    expect((await other.req({ t: "leave", id: ids++, group: "g" })).t).toBe("ok");
    await other.req({ t: "join", id: ids++, group: "h" });
    slow.accept = Infinity;
    for (let k = 0; k < 50 && slow.session.behindSince !== 0; k++) {
      core.drain(slow.session);
      await turn();
    }
    expect(slow.session.behindSince).toBe(0);
    await a.req({ t: "send", id: ids++, group: "h", text: "live" });
    await turn();
    expect(slow.chat.at(-1)!.text).toBe("live");
  });

  test("a reader that stops reading falls behind (bounded queue), others go on, and it catches up in order when it reads again", async () => {
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192 });
    const a = await loggedIn(core, "alice");
    const stuck = await loggedIn(core, "stuck");
    const fine = await loggedIn(core, "fine");
    for (const c of [a, stuck, fine]) await c.req({ t: c === a ? "create" : "join", id: ids++, group: "g" });
    await a.req({ t: "send", id: ids++, group: "g", text: "before" });
    await turn();
    stuck.accept = 0;
    for (let i = 0; i < 300; i++) a.send({ t: "send", id: 1000 + i, group: "g", text: `m${i} ${"x".repeat(100)}` });
    await turn();
    await turn();
    expect(stuck.session.behindSince).toBeGreaterThan(0);
    expect(stuck.terminated).toBe(false);
    expect(stuck.session.writer.queued).toBeLessThanOrEqual(8192 / 2);
    expect(fine.chat.length).toBe(301);
    expect(a.msgs.filter((m) => m.t === "ok" && m.mid && m.group === undefined).length).toBe(301); // the sends' (the create's names its group)
    // it reads again: drains replay everything it missed, in mid order, exactly once
    stuck.accept = Infinity;
    for (let k = 0; k < 100 && stuck.session.behindSince !== 0; k++) {
      core.drain(stuck.session);
      await turn(); // the replay's store reads are async
    }
    expect(stuck.session.behindSince).toBe(0);
    await turn(); // the last page queued is written at the end of the turn
    const got = stuck.chat;
    expect(got.map((m) => m.text.split(" ")[0])).toEqual(["before", ...Array.from({ length: 300 }, (_, i) => `m${i}`)]);
    const mids = got.map((m) => m.mid);
    expect(new Set(mids).size).toBe(mids.length);
    for (let i = 1; i < mids.length; i++) expect(mids[i]).toBeGreaterThan(mids[i - 1]);
    // and live pushes resume after the replay
    await a.req({ t: "send", id: ids++, group: "g", text: "live again" });
    await turn();
    expect(stuck.chat.at(-1)!.text).toBe("live again");
  });

  test("a reader behind for longer than the stuck timeout is closed", async () => {
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, stuckTimeout: 10 });
    const a = await loggedIn(core, "alice");
    const stuck = await loggedIn(core, "stuck");
    for (const c of [a, stuck]) await c.req({ t: c === a ? "create" : "join", id: ids++, group: "g" });
    stuck.accept = 0;
    for (let i = 0; i < 100; i++) a.send({ t: "send", id: 2000 + i, group: "g", text: "y".repeat(100) });
    await turn();
    expect(stuck.session.behindSince).toBeGreaterThan(0);
    core.sweep(performance.now() + 5_000);
    expect(stuck.terminated).toBe(false);
    core.sweep(performance.now() + 11_000);
    expect(stuck.terminated).toBe(true);
    expect(core.hub.online("stuck")).toBe(false);
  });

  test("a client that sends but never reads is not read while its replies pile up, and is closed after --write-timeout", async () => {
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, rateMsgs: 0, writeTimeout: 30 });
    const c = await loggedIn(core, "deaf");
    c.accept = 0;
    for (let i = 0; i < 2000; i++) c.send({ t: "ping", id: 3000 + i });
    await turn();
    // Past a quarter of the bound the core stops reading it: the rest waits in the (fake) kernel.
    expect(c.session.readPaused).toBe(true);
    expect(c.unread.length).toBeGreaterThan(1900);
    expect(c.session.writer.cost).toBeLessThanOrEqual(8192 / 4 + 300);
    expect(c.terminated).toBe(false);
    core.sweep(performance.now() + 29_000);
    expect(c.terminated).toBe(false);
    core.sweep(performance.now() + 31_000);
    expect(c.terminated).toBe(true);
    expect(c.session.closed).toBe(true);
  });

  test("a reader that drains resumes being read: every ping is answered, in order", async () => {
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, rateMsgs: 0 });
    const c = await loggedIn(core, "slow");
    c.accept = 0;
    for (let i = 0; i < 500; i++) c.send({ t: "ping", id: 5000 + i });
    await turn();
    expect(c.session.readPaused).toBe(true);
    c.accept = Infinity;
    for (let k = 0; k < 50 && (c.unread.length > 0 || !c.session.writer.idle); k++) {
      core.drain(c.session);
      await turn();
    }
    const pongs = c.msgs.filter((m) => m.t === "pong").map((m) => m.id);
    expect(pongs).toEqual(Array.from({ length: 500 }, (_, i) => 5000 + i));
    expect(c.session.readPaused).toBe(false);
  });
});

describe("dispatch", () => {
  test("requests held behind a login beyond max-held get rate_limited, the rest run in order", async () => {
    const core = await makeCore({ maxHeld: 3 });
    const c = new FakeConn(core);
    c.send({ t: "register", id: 1, user: "held", pass: "password1" });
    for (let i = 2; i <= 7; i++) c.send({ t: "ping", id: i });
    const deadline = Date.now() + 5000;
    while (!c.msgs.some((m) => m.id === 4) && Date.now() < deadline) await turn();
    const byId = new Map(c.msgs.map((m) => [m.id, m.t === "error" ? m.code : m.t]));
    expect([2, 3, 4].map((i) => byId.get(i))).toEqual(["pong", "pong", "pong"]);
    expect([5, 6, 7].map((i) => byId.get(i))).toEqual(["rate_limited", "rate_limited", "rate_limited"]);
    // the held ones were answered after the register's ok
    const order = c.msgs.map((m) => m.id);
    expect(order.indexOf(1)).toBeLessThan(order.indexOf(2));
  });

  test("a store failure at commit answers unavailable, commits nothing, and the server goes on", async () => {
    const store = new MemoryStore();
    const core = await makeCore({}, store);
    const a = await loggedIn(core, "alice");
    const created = await a.req({ t: "create", id: 1, group: "g" });
    const real = store.commit.bind(store);
    store.commit = async () => {
      throw new Error("disk on fire");
    };
    expect(await a.req({ t: "send", id: 2, group: "g", text: "lost?", cid: "c" })).toMatchObject({
      t: "error",
      code: "unavailable",
    });
    store.commit = real;
    // nothing was committed: the next mid is the one after the group's create entry
    expect(await a.req({ t: "send", id: 3, group: "g", text: "lost?", cid: "c" })).toMatchObject({ t: "ok", mid: created.mid + 1 });
  });

  test("messages sent in one turn by many connections are committed in one batch", async () => {
    const store = new MemoryStore();
    const core = await makeCore({}, store);
    const users = [];
    for (let i = 0; i < 5; i++) users.push(await loggedIn(core, `u${i}`));
    for (const u of users) await u.req({ t: u === users[0] ? "create" : "join", id: ids++, group: "g" });
    const batches: number[] = [];
    const real = store.commit.bind(store);
    store.commit = (b: NewMessage[], now: number) => {
      batches.push(b.length);
      return real(b, now);
    };
    users.forEach((u, i) => u.send({ t: "send", id: 9000 + i, group: "g", text: "hi" }));
    await turn();
    await turn();
    expect(batches).toEqual([5]);
  });
});

describe("entries (PROTOCOL.md §3.6)", () => {
  test("a connection that closes while its edit, react or read waits for the store: stored as its user's, and nobody else's messages fail with it", async () => {
    // Found by the fuzzer: the entry took `session.user` after the wait, undefined once closed,
    // and the batch it went in (a bystander's send with it) failed on a NOT NULL sender.
    class Held extends MemoryStore {
      gate: Promise<void> | undefined;
      override async entryAt(conv: string, mid: number) {
        if (this.gate) await this.gate;
        return super.entryAt(conv, mid);
      }
      override async readMarker(user: string, conv: string) {
        if (this.gate) await this.gate;
        return super.readMarker(user, conv);
      }
    }
    const store = new Held();
    const core = await makeCore({}, store);
    const a = await loggedIn(core, "alice");
    const b = await loggedIn(core, "bob");
    for (const c of [a, b]) await c.req({ t: c === a ? "create" : "join", id: ids++, group: "g" });
    const m = await a.req({ t: "send", id: ids++, group: "g", text: "hello" });
    const open = Promise.withResolvers<void>();
    store.gate = open.promise;
    a.send({ t: "edit", id: ids++, group: "g", mid: m.mid, text: "edited" });
    const a2 = await loggedIn(core, "alice");
    a2.send({ t: "react", id: ids++, group: "g", mid: m.mid, emoji: "👍" });
    const a3 = await loggedIn(core, "alice");
    a3.send({ t: "read", id: ids++, group: "g", mid: m.mid });
    await turn();
    for (const c of [a, a2, a3]) core.closed(c.session);
    store.gate = undefined;
    open.resolve();
    await turn();
    const r = await b.req({ t: "send", id: ids++, group: "g", text: "still fine" });
    expect(r.t).toBe("ok");
    const h = await b.req({ t: "history", id: ids++, group: "g" });
    expect(h.msgs.map((x: Msg) => [x.from, x.kind ?? "msg", x.text ?? x.emoji])).toEqual([
      ["alice", "create", undefined],
      ["bob", "join", undefined],
      ["alice", "msg", "edited"],
      ["alice", "edit", "edited"],
      ["alice", "react", "👍"],
      ["bob", "msg", "still fine"],
    ]);
    expect(await store.readMarker("alice", "g:g")).toBe(m.mid);
  });
});

describe("paging", () => {
  test("pages of large messages are cut to half a frame, read from the store in small chunks, and page through everything", async () => {
    const store = new MemoryStore();
    const core = await makeCore({ maxFrame: 8192, maxQueue: 65536, maxText: 4096, rateMsgs: 0 }, store);
    const a = await loggedIn(core, "alice");
    await a.req({ t: "create", id: ids++, group: "big" });
    for (let i = 0; i < 60; i++) await a.req({ t: "send", id: ids++, group: "big", text: `${i} ${"z".repeat(1000)}` });
    let rowsRead = 0;
    const realSync = store.sync.bind(store);
    store.sync = async (u, after, limit) => {
      const r = await realSync(u, after, limit);
      rowsRead += r.length;
      return r;
    };
    const seen: number[] = [];
    let after = 0;
    let pages = 0;
    for (;;) {
      const r = await a.req({ t: "sync", id: ids++, after, limit: 500 });
      pages++;
      seen.push(...r.msgs.filter((m: Msg) => m.kind === undefined).map((m: Msg) => Number(m.text.split(" ")[0])));
      if (!r.more) break;
      after = r.msgs.at(-1).mid;
    }
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(pages).toBeGreaterThan(10); // ~1 KB each, 4 KB per page
    expect(rowsRead).toBeLessThan(60 + pages * 32); // never the 501 rows a limit-500 page would ask for
    // history backwards, the same way
    const back: number[] = [];
    let before: number | undefined;
    for (;;) {
      const r = await a.req({ t: "history", id: ids++, group: "big", before, limit: 500 });
      back.unshift(...r.msgs.filter((m: Msg) => m.kind === undefined).map((m: Msg) => Number(m.text.split(" ")[0])));
      if (!r.more) break;
      before = r.msgs[0].mid;
    }
    expect(back).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });
});

describe("shutdown", () => {
  test("commits and acknowledges pending sends, then sends bye and ends every connection", async () => {
    const store = new MemoryStore();
    const core = await makeCore({ shutdownGrace: 200 }, store);
    const a = await loggedIn(core, "alice");
    const b = await loggedIn(core, "bob");
    await a.req({ t: "create", id: 1, group: "g" });
    const joined = await b.req({ t: "join", id: 2, group: "g" });
    a.send({ t: "send", id: 3, group: "g", text: "last words" }); // not yet committed
    const done = core.shutdown();
    // the transports report the close when the writer ends them
    await turn();
    for (const c of [a, b]) if (c.ended) core.closed(c.session);
    await done;
    expect(a.msgs.find((m) => m.id === 3)).toMatchObject({ t: "ok", mid: joined.mid + 1 });
    expect(b.msgs.find((m) => m.t === "msg")).toMatchObject({ text: "last words" });
    for (const c of [a, b]) {
      expect(c.msgs[c.msgs.length - 1]).toEqual({ t: "bye", reason: "shutdown" });
      expect(c.ended).toBe(true);
    }
    expect((await store.history("g:g", { limit: 10 })).map((m) => m.kind ?? m.text)).toEqual(["create", "join", "last words"]);
  });

  test("a connection that cannot take its bytes within the grace period is terminated", async () => {
    const core = await makeCore({ shutdownGrace: 50 });
    const a = await loggedIn(core, "alice");
    a.accept = 0;
    await core.shutdown();
    expect(a.terminated).toBe(true);
  });
});
