// The end-to-end suite: real server processes, real loopback sockets, every request
// type of PROTOCOL.md §3 and the restart of a whole deployment on its store. It runs
// against a "target": one server on a SQLite file (test/e2e.test.ts), or a cluster of
// nodes on one PostgreSQL and one NATS (test/cluster-e2e.test.ts), where every new
// connection goes to the next node in turn, so the devices of a user and the members of
// a group sit on different nodes. The assertions are the same for both; where a push
// has to cross NATS before a test may conclude that it did not come, the test waits the
// target's `settleMs` (0 on one server, where a ping round trip is enough).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import { encode } from "@msgpack/msgpack";
import { isGroupChange, sha256Hex, TestClient } from "./client.ts";
import { TEST_ARGS } from "./server.ts";
import { frameOf, rawFrame } from "./wire.ts";

/** Arguments of every server of the suite, beyond its store (--db) and, in a cluster, --bus. */
export const E2E_ARGS = ["--max-frame", "65536", "--max-queue", "1048576", "--max-text", "1000", "--max-group-size", "1000", "--max-groups-per-user", "600", "--typing-max-group", "3", ...TEST_ARGS];

export interface E2ETarget {
  /** The port for the next connection: the one server's, or the next node's in turn. */
  connectPort(): number;
  /** SIGTERM to every server process; their exit codes, once all have exited. */
  stop(): Promise<number[]>;
  /** Starts every server process again after stop(), on the same store and ports. */
  start(): Promise<void>;
  /** What each server process printed so far. */
  outputs(): string[];
  /**
   * How long to wait, after a round trip on the connections concerned, before concluding
   * that a push did not come: 0 on one server (its pushes are written before the reply
   * to any later request); in a cluster a push from another node crosses NATS.
   */
  settleMs: number;
  /** Stops everything for good (afterAll). */
  close(): Promise<void>;
  /** The database's files on disk, when the store is a SQLite file (to look for deleted bytes). */
  files?(): string[];
}

/**
 * The clients of a suite run against one target (this suite, test/helpers/groups-suite.ts): the
 * target is opened before the suite's tests and closed after them, with every connection made.
 */
export function suiteClients(open: () => Promise<E2ETarget>) {
  let target: E2ETarget | undefined;
  const clients: TestClient[] = [];
  let n = 0;

  beforeAll(async () => {
    target = await open();
  });

  afterAll(async () => {
    for (const c of clients) if (!c.closed) c.close();
    await target?.close();
  });

  /** The target, once open. */
  const current = (): E2ETarget => target!;

  /** A fresh name per test, so tests sharing one server never collide. */
  const uniq = (p: string) => `${p}${++n}`;

  async function connect(): Promise<TestClient> {
    const c = await TestClient.connect(current().connectPort());
    clients.push(c);
    return c;
  }

  /** Registers and logs in a fresh user on a new connection. */
  async function user(prefix = "u"): Promise<TestClient> {
    const c = await connect();
    const name = uniq(prefix);
    await c.register(name);
    await c.login(name);
    return c;
  }

  /** Another device of an existing user, logged in by token. */
  async function device(of: TestClient): Promise<TestClient> {
    const c = await connect();
    await c.ok({ t: "login", user: of.user, token: of.token });
    c.user = of.user;
    return c;
  }

  /** After a round trip: anything a push could still be on its way for has arrived (see settleMs). */
  async function settle(): Promise<void> {
    if (current().settleMs > 0) await Bun.sleep(current().settleMs);
  }

  return { target: current, uniq, connect, user, device, settle };
}

export function e2eSuite(open: () => Promise<E2ETarget>): void {
  const { target, uniq, connect, user, device, settle } = suiteClients(open);

  /**
   * A group's history (or a page of it from its start) checked to begin with the group's
   * create entry by `owner` and the join entries of `joiners`, in that order (PROTOCOL.md §3.3):
   * what follows them.
   */
  function afterSetup(msgs: any[], g: string, owner: string, ...joiners: string[]): any[] {
    const head = [owner, ...joiners].map((u, i) => [i === 0 ? "create" : "join", u, u, g]);
    expect(msgs.slice(0, head.length).map((m) => [m.kind, m.from, m.target, m.group])).toEqual(head);
    return msgs.slice(head.length);
  }


  describe("accounts", () => {
    test("ping works before login", async () => {
      const c = await connect();
      expect(await c.request({ t: "ping" })).toEqual({ t: "pong", id: 1 });
    });

    test("register, login with password, then with the token on another connection", async () => {
      const a = await connect();
      const name = uniq("acc");
      expect(await a.request({ t: "register", user: name, pass: "secret-pass" })).toMatchObject({ t: "ok", user: name });
      const r = await a.request({ t: "login", user: name, pass: "secret-pass" });
      expect(r).toMatchObject({ t: "ok", user: name });
      expect(typeof r.token).toBe("string");
      expect(r.token.length).toBeGreaterThanOrEqual(40);
      expect(Number.isInteger(r.mid)).toBe(true);
      expect(r.limits).toEqual({
        rate_msgs: 200,
        rate_bytes: 8388608,
        rate_burst: 2,
        max_frame: 65536,
        max_text: 1000,
        max_page: 500,
        max_file: 100 * 1024 * 1024,
        file_quota: 1024 * 1024 * 1024,
        max_chunk: 65536 - 1024,
      });
      const b = await connect();
      expect(await b.request({ t: "login", user: name, token: r.token })).toMatchObject({ t: "ok", user: name });
      // the token is bound to its user
      const other = await user();
      const c = await connect();
      expect(await c.request({ t: "login", user: other.user, token: r.token })).toMatchObject({
        t: "error",
        code: "unauthorized",
      });
    });

    test("duplicate registration is a conflict; bad names and passwords are bad_request", async () => {
      const a = await connect();
      const name = uniq("dup");
      await a.register(name);
      expect(await a.request({ t: "register", user: name, pass: "password1" })).toMatchObject({ code: "conflict" });
      for (const bad of ["", "Upper", "has space", "-dash", "x".repeat(33), "émile"]) {
        const r = await a.request({ t: "register", user: bad, pass: "password1" });
        expect(r).toMatchObject({ t: "error", code: "bad_request" });
        expect(r.msg).toContain("user");
      }
      expect(await a.request({ t: "register", user: uniq("p"), pass: "short" })).toMatchObject({ code: "bad_request" });
    });

    test("wrong password and unknown user get the same unauthorized answer", async () => {
      const a = await connect();
      const name = uniq("pw");
      await a.register(name);
      const wrong = await a.request({ t: "login", user: name, pass: "not-the-password" });
      const unknown = await a.request({ t: "login", user: uniq("ghost"), pass: "not-the-password" });
      expect(wrong).toMatchObject({ t: "error", code: "unauthorized" });
      expect(unknown).toMatchObject({ t: "error", code: "unauthorized" });
      expect(wrong.msg).toBe(unknown.msg);
    });

    test("only register, login and ping are allowed before login", async () => {
      const c = await connect();
      for (const req of [
        { t: "create", group: "g" },
        { t: "join", group: "g" },
        { t: "leave", group: "g" },
        { t: "groups" },
        { t: "members", group: "g" },
        { t: "send", group: "g", text: "x" },
        { t: "history", group: "g" },
        { t: "sync", after: 0 },
        { t: "logout" },
      ]) {
        expect(await c.request(req)).toMatchObject({ t: "error", code: "unauthorized" });
      }
    });

    test("a second login on a logged-in connection is a conflict", async () => {
      const a = await user();
      expect(await a.request({ t: "login", user: a.user, token: a.token })).toMatchObject({ code: "conflict" });
    });

    test("logout revokes the token and returns the connection to logged-out", async () => {
      const a = await user();
      await a.ok({ t: "logout" });
      expect(await a.request({ t: "groups" })).toMatchObject({ code: "unauthorized" });
      const b = await connect();
      expect(await b.request({ t: "login", user: a.user, token: a.token })).toMatchObject({ code: "unauthorized" });
    });

    test("passwd checks the old password, revokes every token, closes the other devices, and keeps this one", async () => {
      const a = await user("pw");
      const other = await device(a);
      expect(await a.request({ t: "passwd", old: "not-it-at-all", new: "new-password-1" })).toMatchObject({
        t: "error",
        code: "unauthorized",
      });
      expect(await a.request({ t: "passwd", old: "password1", new: "short" })).toMatchObject({ code: "bad_request" });
      const r = await a.ok({ t: "passwd", old: "password1", new: "new-password-1" });
      expect(typeof r.token).toBe("string");
      expect(r.token).not.toBe(a.token);
      expect(await other.waitFor((m) => m.t === "bye")).toEqual({ t: "bye", reason: "password_changed" });
      await other.waitClosed();
      expect((await a.request({ t: "ping" })).t).toBe("pong"); // this connection goes on
      const x = await connect();
      expect(await x.request({ t: "login", user: a.user, token: a.token })).toMatchObject({ code: "unauthorized" });
      expect(await x.request({ t: "login", user: a.user, pass: "password1" })).toMatchObject({ code: "unauthorized" });
      expect(await x.request({ t: "login", user: a.user, token: r.token })).toMatchObject({ t: "ok" });
      const y = await connect();
      expect(await y.request({ t: "login", user: a.user, pass: "new-password-1" })).toMatchObject({ t: "ok" });
    });

    test("requests pipelined behind a login run after it, in order", async () => {
      const c = await connect();
      const name = uniq("pipe");
      const g = uniq("pg");
      c.writeRaw(frameOf({ t: "register", id: 1, user: name, pass: "password1" }));
      c.writeRaw(frameOf({ t: "login", id: 2, user: name, pass: "password1" }));
      c.writeRaw(frameOf({ t: "create", id: 3, group: g }));
      c.writeRaw(frameOf({ t: "groups", id: 4 }));
      const r = await c.waitFor((m) => m.id === 4);
      expect(r).toEqual({ t: "ok", id: 4, groups: [{ group: g, owner: name, role: "owner", public: true, topic: "", description: "" }], invites: [] });
      expect(c.received.map((m) => m.id)).toEqual([1, 2, 3, 4]);
    });
  });

  describe("groups", () => {
    test("join of a missing group is not_found; create makes the owner; then others join; groups lists mine; leave removes", async () => {
      const a = await user();
      const b = await user();
      const g = uniq("grp");
      expect(await a.request({ t: "join", group: g })).toMatchObject({ t: "error", code: "not_found" });
      const c = await a.request({ t: "create", group: g });
      expect(c).toEqual({ t: "ok", id: c.id, group: g, mid: expect.any(Number), ts: expect.any(Number) });
      expect(await b.request({ t: "create", group: g })).toMatchObject({ t: "error", code: "conflict" });
      const j = await b.request({ t: "join", group: g });
      expect(j).toEqual({ t: "ok", id: j.id, group: g, owner: a.user, topic: "", mid: expect.any(Number), ts: expect.any(Number) });
      expect(j.mid).toBeGreaterThan(c.mid);
      // a second join changes nothing: no entry, no mid
      const again = await b.request({ t: "join", group: g });
      expect(again).toEqual({ t: "ok", id: again.id, group: g, owner: a.user, topic: "" });
      expect((await b.ok({ t: "groups" })).groups).toEqual([{ group: g, owner: a.user, role: "member", public: true, topic: "", description: "" }]);
      expect(await b.request({ t: "leave", group: g })).toMatchObject({ t: "ok", group: g });
      expect((await b.ok({ t: "groups" })).groups).toEqual([]);
      expect(await b.request({ t: "leave", group: g })).toMatchObject({ code: "not_found" });
    });

    test("members lists online state; non-members are forbidden; unknown group not_found", async () => {
      const a = await user();
      const b = await user();
      const outsider = await user();
      const g = uniq("mem");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      // In a cluster a node catches up with the store before it lists members (b's join is in
      // the list at once); b's login crosses NATS before b's reply (PROTOCOL.md §8).
      const r = await a.ok({ t: "members", group: g });
      expect(r.members).toEqual(
        [
          { user: a.user, online: true, role: "owner" },
          { user: b.user, online: true, role: "member" },
        ].sort((x, y) => (x.user! < y.user! ? -1 : 1)),
      );
      b.close();
      await a.nextPush("presence");
      const r2 = await a.ok({ t: "members", group: g });
      expect(r2.members.find((m: any) => m.user === b.user).online).toBe(false);
      expect(await outsider.request({ t: "members", group: g })).toMatchObject({ code: "forbidden" });
      expect(await outsider.request({ t: "members", group: uniq("nogroup") })).toMatchObject({ code: "not_found" });
    });

    test("presence: co-members see a user's first session open and last close, not the middle ones", async () => {
      const a = await user();
      const bName = uniq("pres");
      const b1 = await connect();
      await b1.register(bName);
      await b1.login(bName);
      const g = uniq("pg");
      await a.ok({ t: "create", group: g });
      await b1.ok({ t: "join", group: g });
      const b2 = await device(b1);
      // In a cluster b2's login is answered once NATS has its announcement, so b1's close,
      // announced by another node after it, cannot overtake it (PROTOCOL.md §8).
      b1.close();
      await b1.waitClosed();
      await a.ok({ t: "ping" }); // a round trip: anything sent before it has arrived
      await settle(); // in a cluster, b's devices are on other nodes than a: their presence events cross NATS
      expect(a.pushes("presence")).toEqual([]);
      b2.close();
      expect(await a.nextPush("presence")).toEqual({ t: "presence", user: bName, online: false });
      const b3 = await device(b1);
      expect(await a.nextPush("presence")).toEqual({ t: "presence", user: bName, online: true });
      expect(b3.pushes("presence")).toEqual([]);
    });
  });

  describe("messages", () => {
    test("a group message reaches every member's every device, not the sending connection", async () => {
      const a = await user();
      const a2 = await device(a);
      const b = await user();
      const b2 = await device(b);
      const outsider = await user();
      const g = uniq("fan");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      // login's mid is where live pushes begin: the next message is above it
      const b3 = await connect();
      const lr = await b3.ok({ t: "login", user: b.user, token: b.token });
      const r = await a.ok({ t: "send", group: g, text: "hello all", cid: "c-1" });
      expect(r.mid).toBe(lr.mid + 1);
      expect((await b3.nextMsg()).mid).toBe(r.mid);
      expect(r.mid).toBeGreaterThan(0);
      expect(typeof r.ts).toBe("number");
      const want = { t: "msg", mid: r.mid, ts: r.ts, from: a.user, group: g, text: "hello all", cid: "c-1" };
      for (const c of [a2, b, b2]) expect(await c.nextMsg()).toEqual(want);
      await a.ok({ t: "ping" });
      await outsider.ok({ t: "ping" });
      await settle();
      expect(a.msgs()).toEqual([]);
      expect(outsider.msgs()).toEqual([]);
    });

    test("direct messages reach the addressee and the sender's other devices", async () => {
      const a = await user();
      const a2 = await device(a);
      const b = await user();
      const c = await user();
      const r = await a.ok({ t: "send", user: b.user, text: "psst" });
      const want = { t: "msg", mid: r.mid, ts: r.ts, from: a.user, user: b.user, text: "psst" };
      expect(await b.nextMsg()).toEqual(want);
      expect(await a2.nextMsg()).toEqual(want);
      await c.ok({ t: "ping" });
      await settle();
      expect(c.msgs()).toEqual([]);
      expect(await a.request({ t: "send", user: uniq("nobody"), text: "x" })).toMatchObject({ code: "not_found" });
      const h = await b.ok({ t: "history", user: a.user });
      expect(h.msgs).toEqual([{ mid: r.mid, ts: r.ts, from: a.user, user: b.user, text: "psst" }]);
    });

    test("only members may send to a group or read its history", async () => {
      const a = await user();
      const b = await user();
      const g = uniq("priv");
      await a.ok({ t: "create", group: g });
      await a.ok({ t: "send", group: g, text: "members only" });
      expect(await b.request({ t: "send", group: g, text: "let me in" })).toMatchObject({ code: "forbidden" });
      expect(await b.request({ t: "history", group: g })).toMatchObject({ code: "forbidden" });
      expect(await b.request({ t: "send", group: uniq("none"), text: "x" })).toMatchObject({ code: "not_found" });
      const s = await b.ok({ t: "sync", after: 0 });
      expect(s.msgs.filter((m: any) => m.group === g)).toEqual([]);
    });

    test("a retry with the same cid returns the same mid and delivers nothing twice", async () => {
      const a = await user();
      const b = await user();
      const g = uniq("idem");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      const first = await a.ok({ t: "send", group: g, text: "once", cid: "retry-1" });
      const again = await a.ok({ t: "send", group: g, text: "once", cid: "retry-1" });
      expect(again.mid).toBe(first.mid);
      expect(again.ts).toBe(first.ts);
      // two in flight at once, same cid: one message
      const [x, y] = await Promise.all([
        a.ok({ t: "send", group: g, text: "twice?", cid: "retry-2" }),
        a.ok({ t: "send", group: g, text: "twice?", cid: "retry-2" }),
      ]);
      expect(x.mid).toBe(y.mid);
      // the same cid from another user is another message
      const other = await b.ok({ t: "send", group: g, text: "mine", cid: "retry-1" });
      expect(other.mid).not.toBe(first.mid);
      await b.ok({ t: "ping" });
      // in a cluster a's pushes to b may come from another node: wait for them, then for anything more
      await b.waitFor((m) => m.t === "msg" && m.mid === x.mid);
      await settle();
      const h = await a.ok({ t: "history", group: g });
      expect(afterSetup(h.msgs, g, a.user!, b.user!).map((m: any) => m.text)).toEqual(["once", "twice?", "mine"]);
      expect(b.msgs().map((m) => m.text)).toEqual(["once", "twice?"]);
    });

    test("messages in a conversation arrive in mid order, mids strictly increasing", async () => {
      const a = await user();
      const b = await user();
      const c = await user();
      const g = uniq("order");
      for (const x of [a, b, c]) await x.ok({ t: x === a ? "create" : "join", group: g });
      const sends: Promise<any>[] = [];
      for (let i = 0; i < 200; i++) {
        const from = i % 2 ? a : b;
        sends.push(from.ok({ t: "send", group: g, text: `m${i}` }));
      }
      const acks = await Promise.all(sends);
      const got: any[] = [];
      while (got.length < 200) got.push(await c.nextMsg());
      const mids = got.map((m) => m.mid);
      for (let i = 1; i < mids.length; i++) expect(mids[i]).toBeGreaterThan(mids[i - 1]);
      expect(new Set(mids)).toEqual(new Set(acks.map((r) => r.mid)));
      // per sender, the order of sending is kept
      const fromA = got.filter((m) => m.from === a.user).map((m) => m.text);
      expect(fromA).toEqual(Array.from({ length: 100 }, (_, i) => `m${2 * i + 1}`));
    });

    test("text over the limit is too_large and the connection stays usable", async () => {
      const a = await user();
      const b = await user();
      // server runs with --max-text 1000 (UTF-8 bytes): 600 "é" are 1200 bytes
      const r = await a.request({ t: "send", user: b.user, text: "é".repeat(600) });
      expect(r).toMatchObject({ t: "error", code: "too_large" });
      expect((await a.request({ t: "send", user: b.user, text: "é".repeat(500) })).t).toBe("ok");
      expect(await a.request({ t: "ping" })).toMatchObject({ t: "pong" });
    });
  });

  describe("history and sync", () => {
    test("history pages backwards with before and forwards with after, with a more flag", async () => {
      const a = await user();
      const g = uniq("hist");
      await a.ok({ t: "create", group: g });
      const mids: number[] = [];
      for (let i = 0; i < 25; i++) mids.push((await a.ok({ t: "send", group: g, text: `h${i}` })).mid);
      const texts = (r: any) => r.msgs.map((m: any) => m.text);
      const last = await a.ok({ t: "history", group: g, limit: 10 });
      expect(texts(last)).toEqual(Array.from({ length: 10 }, (_, i) => `h${15 + i}`));
      expect(last.more).toBe(true);
      const older = await a.ok({ t: "history", group: g, limit: 10, before: last.msgs[0].mid });
      expect(texts(older)).toEqual(Array.from({ length: 10 }, (_, i) => `h${5 + i}`));
      const oldest = await a.ok({ t: "history", group: g, limit: 10, before: older.msgs[0].mid });
      // the oldest page starts with the group's create entry
      expect(afterSetup(oldest.msgs, g, a.user!).map((m: any) => m.text)).toEqual(["h0", "h1", "h2", "h3", "h4"]);
      expect(oldest.more).toBe(false);
      const fwd = await a.ok({ t: "history", group: g, limit: 10, after: mids[19] });
      expect(texts(fwd)).toEqual(["h20", "h21", "h22", "h23", "h24"]);
      expect(fwd.more).toBe(false);
      const range = await a.ok({ t: "history", group: g, after: mids[2], before: mids[6] });
      expect(texts(range)).toEqual(["h3", "h4", "h5"]);
      const capped = await a.ok({ t: "history", group: g, limit: 1_000_000 });
      expect(capped.msgs.length).toBe(26); // and the create entry
      expect(await a.request({ t: "history", group: g, limit: -1 })).toMatchObject({ code: "bad_request" });
    });

    test("sync returns everything of mine after a mid, oldest first, paged with more", async () => {
      const a = await user();
      const b = await user();
      const c = await user();
      const g = uniq("sync");
      const other = uniq("notmine");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      await c.ok({ t: "create", group: other });
      // b is away; what it should find on return:
      const start = (await a.ok({ t: "send", group: g, text: "before" })).mid;
      b.close();
      const want: string[] = [];
      for (let i = 0; i < 7; i++) {
        await a.ok({ t: "send", group: g, text: `g${i}` });
        want.push(`g${i}`);
        await c.ok({ t: "send", group: other, text: "not for b" });
        await c.ok({ t: "send", user: a.user, text: "not for b either" });
        await a.ok({ t: "send", user: b.user, text: `dm${i}` });
        want.push(`dm${i}`);
      }
      const b2 = await connect();
      await b2.ok({ t: "login", user: b.user, token: b.token });
      const got: string[] = [];
      let after = start;
      let pages = 0;
      for (;;) {
        const r = await b2.ok({ t: "sync", after, limit: 4 });
        pages++;
        got.push(...r.msgs.map((m: any) => m.text));
        for (let i = 1; i < r.msgs.length; i++) expect(r.msgs[i].mid).toBeGreaterThan(r.msgs[i - 1].mid);
        if (!r.more) break;
        after = r.msgs[r.msgs.length - 1].mid;
      }
      expect(got).toEqual(want);
      expect(pages).toBe(4);
    });
  });

  describe("bad input", () => {
    test("garbage bytes, a non-map, wrong types and unknown t get errors; the connection stays usable", async () => {
      const a = await user();
      a.writeRaw(rawFrame(new Uint8Array([0xc1, 0xff, 0x00]))); // 0xc1 is never valid MessagePack
      a.writeRaw(rawFrame(new Uint8Array(0)));
      a.writeRaw(frameOf([1, 2, 3]));
      a.writeRaw(frameOf("just a string"));
      a.writeRaw(frameOf({ t: 42, id: 7 }));
      a.writeRaw(frameOf({ t: "ping", id: "seven" }));
      a.writeRaw(frameOf({ t: "nope", id: 8 }));
      a.writeRaw(frameOf({ t: "join", id: 9, group: 12 }));
      a.writeRaw(frameOf({ t: "send", id: 10, group: "g", user: "u", text: "x" }));
      a.writeRaw(frameOf({ t: "send", id: 11, group: "g" }));
      a.writeRaw(frameOf({ t: "send", id: 12, user: a.user, file: { upload: 7, name: "f", type: "t" } }));
      a.writeRaw(frameOf({ t: "sync", id: 13, after: 1.5 }));
      a.writeRaw(frameOf({ t: "history", id: 14, group: "g", before: "x" }));
      a.writeRaw(frameOf({ t: "ping", id: 15 }));
      await a.waitFor((m) => m.id === 15);
      const codes = a.received.slice(-14).map((m) => [m.id ?? null, m.t === "error" ? m.code : m.t]);
      expect(codes).toEqual([
        [null, "bad_frame"],
        [null, "bad_frame"],
        [null, "bad_frame"],
        [null, "bad_frame"],
        [7, "bad_request"],
        [null, "bad_request"],
        [8, "unknown_type"],
        [9, "bad_request"],
        [10, "bad_request"],
        [11, "bad_request"],
        [12, "bad_request"],
        [13, "bad_request"],
        [14, "bad_request"],
        [15, "pong"],
      ]);
      for (const m of a.received.slice(-14, -1)) expect(m.msg.length).toBeGreaterThan(0);
    });

    test("an oversized length gets too_large, then bye, then the connection is closed; others are unharmed", async () => {
      const bystander = await user();
      const a = await connect();
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, 65537); // server runs with --max-frame 65536
      a.writeRaw(header);
      a.writeRaw(new Uint8Array(100));
      await a.waitClosed();
      expect(a.received).toEqual([
        { t: "error", code: "too_large", msg: expect.stringContaining("65537") },
        { t: "bye", reason: "too_large" },
      ]);
      expect(await bystander.request({ t: "ping" })).toMatchObject({ t: "pong" });
    });

    test("a frame split into single bytes and many frames in one write both work", async () => {
      const a = await connect();
      const bytes = frameOf({ t: "ping", id: 1 });
      for (const b of bytes) {
        a.writeRaw(new Uint8Array([b]));
        await Bun.sleep(1);
      }
      await a.waitFor((m) => m.id === 1);
      const many: Uint8Array[] = [];
      for (let i = 2; i < 102; i++) many.push(frameOf({ t: "ping", id: i }));
      a.writeRaw(Buffer.concat(many));
      await a.waitFor((m) => m.id === 101);
      expect(a.received.map((m) => m.id)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
    });

    test("deep nesting and a lying container header get bad_frame and do not hurt the server", async () => {
      const a = await connect();
      // {t:"ping", id:1, junk:[[[...1...]]]} nested 60000 deep, built by hand (encoders refuse)
      const head = encode({ t: "ping", id: 1, junk: 0 });
      const deep = new Uint8Array(head.length - 1 + 60000 + 1).fill(0x91); // 0x91: array of one
      deep.set(head.subarray(0, head.length - 1));
      deep[deep.length - 1] = 0x01;
      a.writeRaw(rawFrame(deep));
      // map claiming 2^32-1 entries, then nothing
      a.writeRaw(rawFrame(new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff])));
      // nesting within the limit (8 levels, the request map included) is fine
      a.writeRaw(frameOf({ t: "ping", id: 2, junk: [[[[[[[1]]]]]]] }));
      await a.waitFor((m) => m.id === 2);
      expect(a.received.map((m) => (m.t === "error" ? m.code : m.t))).toEqual(["bad_frame", "bad_frame", "pong"]);
      expect(a.received[0]!.msg).toContain("nested");
    });
  });

  describe("conversations: edits, deletes, replies, reactions, read state (PROTOCOL.md §3.6)", () => {
    /** A group of fresh users: a (owner, two devices a and a2), b, and an outsider. */
    async function room() {
      const a = await user("cv");
      const a2 = await device(a);
      const b = await user("cv");
      const outsider = await user("cv");
      const g = uniq("cvg");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      return { a, a2, b, outsider, g };
    }

    /** The one conversation of a `convs` reply that is `g` (a group) or `u` (a user). */
    function conv(r: any, key: { group?: string; user?: string }): any {
      return r.convs.find((c: any) => (key.group !== undefined ? c.group === key.group : c.user === key.user));
    }

    test("edit: only the sender; everyone else's devices get the entry; history shows the new text and the entry", async () => {
      const { a, a2, b, outsider, g } = await room();
      const m = await a.ok({ t: "send", group: g, text: "helo", cid: "e1" });
      await b.nextMsg();
      await a2.nextMsg();
      expect(await b.request({ t: "edit", group: g, mid: m.mid, text: "not yours" })).toMatchObject({ code: "forbidden" });
      expect(await outsider.request({ t: "edit", group: g, mid: m.mid, text: "x" })).toMatchObject({ code: "forbidden" });
      expect(await outsider.request({ t: "edit", user: a.user, mid: m.mid, text: "x" })).toMatchObject({ code: "not_found" });
      expect(await a.request({ t: "edit", user: b.user, mid: m.mid, text: "wrong conversation" })).toMatchObject({ code: "not_found" });
      expect(await a.request({ t: "edit", group: g, mid: m.mid + 100_000, text: "x" })).toMatchObject({ code: "not_found" });
      expect(await a.request({ t: "edit", group: g, mid: m.mid, text: "é".repeat(600) })).toMatchObject({ code: "too_large" });
      expect(await a.request({ t: "edit", group: g, mid: m.mid, text: "" })).toMatchObject({ code: "bad_request" });
      const e = await a.ok({ t: "edit", group: g, mid: m.mid, text: "hello" });
      expect(e.mid).toBeGreaterThan(m.mid);
      const want = { t: "msg", mid: e.mid, ts: e.ts, from: a.user, group: g, kind: "edit", ref: m.mid, text: "hello" };
      expect(await b.nextMsg()).toEqual(want);
      expect(await a2.nextMsg()).toEqual(want);
      // An edit cannot be edited: it is not a message.
      expect(await a.request({ t: "edit", group: g, mid: e.mid, text: "x" })).toMatchObject({ code: "not_found" });
      const h = await b.ok({ t: "history", group: g });
      expect(afterSetup(h.msgs, g, a.user!, b.user!)).toEqual([
        { mid: m.mid, ts: m.ts, from: a.user, group: g, text: "hello", cid: "e1", edited: e.ts },
        { mid: e.mid, ts: e.ts, from: a.user, group: g, kind: "edit", ref: m.mid, text: "hello" },
      ]);
      await a.ok({ t: "ping" });
      await settle();
      expect(a.msgs()).toEqual([]); // the sending connection has its reply
    });

    test("delete: by the sender, or by the group's owner; a tombstone remains and nothing more can be done to it", async () => {
      const { a, a2, b, outsider, g } = await room();
      const data = new Uint8Array(3000).fill(7);
      const mb = await b.sendFile({ group: g }, "b.bin", "", data, { text: "from b" });
      const ma = await a.ok({ t: "send", group: g, text: "from a" });
      expect(await b.request({ t: "delete", group: g, mid: ma.mid })).toMatchObject({ code: "forbidden" }); // not the owner
      expect(await outsider.request({ t: "delete", group: g, mid: mb.mid })).toMatchObject({ code: "forbidden" });
      const d = await a.ok({ t: "delete", group: g, mid: mb.mid }); // the owner
      await b.waitFor((x) => x.t === "msg" && x.mid === d.mid);
      expect(await a2.waitFor((x) => x.t === "msg" && x.mid === d.mid)).toEqual({ t: "msg", mid: d.mid, ts: d.ts, from: a.user, group: g, kind: "delete", ref: mb.mid });
      const d2 = await a.ok({ t: "delete", group: g, mid: ma.mid }); // the sender
      for (const req of [
        { t: "delete", group: g, mid: mb.mid },
        { t: "edit", group: g, mid: ma.mid, text: "x" },
        { t: "react", group: g, mid: mb.mid, emoji: "x" },
        { t: "send", group: g, text: "re", reply: mb.mid },
      ])
        expect({ req, r: await a.request(req) }).toMatchObject({ req, r: { code: "not_found" } });
      const h = await outsider.request({ t: "history", group: g });
      expect(h).toMatchObject({ code: "forbidden" });
      expect(afterSetup((await b.ok({ t: "history", group: g })).msgs, g, a.user!, b.user!)).toEqual([
        { mid: mb.mid, ts: mb.ts, from: b.user, group: g, deleted: d.ts },
        { mid: ma.mid, ts: ma.ts, from: a.user, group: g, deleted: d2.ts },
        { mid: d.mid, ts: d.ts, from: a.user, group: g, kind: "delete", ref: mb.mid },
        { mid: d2.mid, ts: d2.ts, from: a.user, group: g, kind: "delete", ref: ma.mid },
      ]);
      // Direct messages: only the sender deletes.
      const dm = await a.ok({ t: "send", user: b.user, text: "dm" });
      expect(await b.request({ t: "delete", user: a.user, mid: dm.mid })).toMatchObject({ code: "forbidden" });
      const dd = await a.ok({ t: "delete", user: b.user, mid: dm.mid });
      expect(await b.waitFor((x) => x.t === "msg" && x.mid === dd.mid)).toEqual({ t: "msg", mid: dd.mid, ts: dd.ts, from: a.user, user: b.user, kind: "delete", ref: dm.mid });
      expect((await b.ok({ t: "sync", after: dm.mid - 1 })).msgs).toEqual([
        { mid: dm.mid, ts: dm.ts, from: a.user, user: b.user, deleted: dd.ts },
        { mid: dd.mid, ts: dd.ts, from: a.user, user: b.user, kind: "delete", ref: dm.mid },
      ]);
    });

    test("replies and reactions: in the conversation only; history shows the current reactions", async () => {
      const { a, a2, b, outsider, g } = await room();
      const m = await a.ok({ t: "send", group: g, text: "lunch?" });
      const other = await b.ok({ t: "send", user: a.user, text: "elsewhere" });
      expect(await b.request({ t: "send", group: g, text: "re", reply: other.mid })).toMatchObject({ code: "not_found" });
      expect(await b.request({ t: "send", group: g, text: "re", reply: m.mid + 100_000 })).toMatchObject({ code: "not_found" });
      const r = await b.ok({ t: "send", group: g, text: "yes!", reply: m.mid });
      expect(await a2.waitFor((x) => x.t === "msg" && x.mid === r.mid)).toEqual({ t: "msg", mid: r.mid, ts: r.ts, from: b.user, group: g, text: "yes!", reply: m.mid });
      expect(await outsider.request({ t: "react", group: g, mid: m.mid, emoji: "👍" })).toMatchObject({ code: "forbidden" });
      expect(await outsider.request({ t: "react", user: a.user, mid: m.mid, emoji: "👍" })).toMatchObject({ code: "not_found" });
      expect(await b.request({ t: "react", group: g, mid: m.mid, emoji: "x".repeat(65) })).toMatchObject({ code: "bad_request" });
      const r1 = await b.ok({ t: "react", group: g, mid: m.mid, emoji: "👍" });
      const r2 = await a.ok({ t: "react", group: g, mid: m.mid, emoji: "🎉" });
      const r3 = await a2.ok({ t: "react", group: g, mid: m.mid, emoji: "👍" });
      const r4 = await b.ok({ t: "react", group: g, mid: m.mid, emoji: "🎉" });
      const r5 = await b.ok({ t: "react", group: g, mid: m.mid, emoji: "🎉", remove: true });
      expect(await a.waitFor((x) => x.t === "msg" && x.mid === r5.mid)).toEqual({ t: "msg", mid: r5.mid, ts: r5.ts, from: b.user, group: g, kind: "unreact", ref: m.mid, emoji: "🎉" });
      expect(await b.waitFor((x) => x.t === "msg" && x.mid === r3.mid)).toEqual({ t: "msg", mid: r3.mid, ts: r3.ts, from: a.user, group: g, kind: "react", ref: m.mid, emoji: "👍" });
      const h = await a.ok({ t: "history", group: g, limit: 1, before: m.mid + 1 });
      expect(h.msgs).toEqual([
        { mid: m.mid, ts: m.ts, from: a.user, group: g, text: "lunch?", reactions: [{ emoji: "👍", users: [b.user, a.user] }, { emoji: "🎉", users: [a.user] }] },
      ]);
      const entries = (await a.ok({ t: "history", group: g, after: r.mid })).msgs.map((x: any) => [x.mid, x.kind, x.from, x.emoji]);
      expect(entries).toEqual([
        [r1.mid, "react", b.user, "👍"],
        [r2.mid, "react", a.user, "🎉"],
        [r3.mid, "react", a.user, "👍"],
        [r4.mid, "react", b.user, "🎉"],
        [r5.mid, "unreact", b.user, "🎉"],
      ]);
      // In a direct conversation, either party reacts.
      const rd = await a.ok({ t: "react", user: b.user, mid: other.mid, emoji: "❤️" });
      expect(await b.waitFor((x) => x.t === "msg" && x.mid === rd.mid)).toMatchObject({ kind: "react", from: a.user, user: b.user, ref: other.mid });
    });

    test("read: the marker moves forward only and reaches the reader's other devices, no one else", async () => {
      const { a, a2, b, g } = await room();
      const m1 = await b.ok({ t: "send", group: g, text: "one" });
      const m2 = await b.ok({ t: "send", group: g, text: "two" });
      await a2.waitFor((x) => x.t === "msg" && x.mid === m2.mid);
      const r = await a.ok({ t: "read", group: g, mid: m1.mid });
      expect(r).toMatchObject({ t: "ok", read: m1.mid });
      expect(r.mid).toBeGreaterThan(m2.mid);
      expect(await a2.waitFor((x) => x.t === "msg" && x.mid === r.mid)).toEqual({ t: "msg", mid: r.mid, ts: r.ts, from: a.user, group: g, kind: "read", ref: m1.mid });
      // Backwards or in place: nothing is stored, the marker is the answer.
      expect(await a2.request({ t: "read", group: g, mid: m1.mid })).toEqual({ t: "ok", id: expect.any(Number), read: m1.mid });
      expect(await a2.request({ t: "read", group: g, mid: 0 })).toEqual({ t: "ok", id: expect.any(Number), read: m1.mid });
      // Past the end: up to the entry itself.
      const far = await a2.ok({ t: "read", user: b.user, mid: 2 ** 40 });
      expect(far.read).toBe(far.mid - 1);
      expect(await a.waitFor((x) => x.t === "msg" && x.mid === far.mid)).toEqual({ t: "msg", mid: far.mid, ts: far.ts, from: a.user, user: b.user, kind: "read", ref: far.mid - 1 });
      expect(await b.request({ t: "read", group: uniq("nope"), mid: 1 })).toMatchObject({ code: "not_found" });
      expect(await b.request({ t: "read", user: uniq("nobody"), mid: 1 })).toMatchObject({ code: "not_found" });
      await b.ok({ t: "ping" });
      await settle();
      expect(b.msgs().filter((x) => x.kind === "read")).toEqual([]);
      // The reader's sync has them; the other's does not.
      expect((await a.ok({ t: "sync", after: m2.mid })).msgs.map((x: any) => x.mid)).toEqual([r.mid, far.mid]);
      expect((await b.ok({ t: "sync", after: m2.mid })).msgs).toEqual([]);
    });

    test("unread counts and mentions agree on two devices through sends, reads, deletes and a restart", async () => {
      const { a, a2, b, g } = await room();
      const c = await user("cv");
      await c.ok({ t: "join", group: g });
      const expectBoth = async (want: { unread: number; mentions: number; read?: number }, key: { group?: string; user?: string }) => {
        for (const dev of [a, a2]) expect(conv(await dev.ok({ t: "convs" }), key)).toMatchObject(want);
      };
      await expectBoth({ unread: 0, mentions: 0 }, { group: g });
      const m1 = await b.ok({ t: "send", group: g, text: `hi @${a.user}` });
      const m2 = await c.ok({ t: "send", group: g, text: "second" });
      await a.ok({ t: "send", group: g, text: "mine does not count" });
      const m3 = await b.ok({ t: "send", group: g, text: `@${a.user} third` });
      const d1 = await b.ok({ t: "send", user: a.user, text: "dm one" });
      await expectBoth({ unread: 3, mentions: 2 }, { group: g });
      await expectBoth({ unread: 1, mentions: 0 }, { user: b.user });
      const r = await a2.ok({ t: "convs" });
      expect(r.convs[0]).toEqual({ user: b.user, last: d1.mid, read: 0, unread: 1, mentions: 0, preview: { mid: d1.mid, ts: d1.ts, from: b.user, text: "dm one" } });
      expect(conv(r, { group: g })).toMatchObject({ last: m3.mid, preview: { mid: m3.mid, from: b.user, text: `@${a.user} third` } });
      // a reads up to m2 on one device: both devices agree
      await a.ok({ t: "read", group: g, mid: m2.mid });
      await expectBoth({ unread: 1, mentions: 1, read: m2.mid }, { group: g });
      // a deletion of an unread message takes it off the count (and its mention)
      await b.ok({ t: "delete", group: g, mid: m3.mid });
      await expectBoth({ unread: 0, mentions: 0 }, { group: g });
      const m4 = await c.ok({ t: "send", group: g, text: "fourth" });
      await expectBoth({ unread: 1, mentions: 0 }, { group: g });
      // an edit that mentions a: counted
      await c.ok({ t: "edit", group: g, mid: m4.mid, text: `fourth, @${a.user}` });
      await expectBoth({ unread: 1, mentions: 1 }, { group: g });
      await a2.ok({ t: "read", user: b.user, mid: d1.mid });
      await expectBoth({ unread: 0, read: d1.mid, mentions: 0 }, { user: b.user });
      expect(m1.mid).toBeLessThan(m2.mid);

      // A restart of the whole deployment: the counts are the store's.
      expect(await target().stop()).toEqual(target().outputs().map(() => 0));
      await target().start();
      const x1 = await device(a);
      const x2 = await device(a);
      for (const dev of [x1, x2]) {
        const after = await dev.ok({ t: "convs" });
        expect(conv(after, { group: g })).toMatchObject({ unread: 1, mentions: 1, read: m2.mid });
        expect(conv(after, { user: b.user })).toMatchObject({ unread: 0, read: d1.mid });
      }
      await x1.ok({ t: "read", group: g, mid: m4.mid });
      for (const dev of [x1, x2]) expect(conv(await dev.ok({ t: "convs" }), { group: g })).toMatchObject({ unread: 0, mentions: 0, read: m4.mid });
      // The other device was told live, and a device that was away finds the reads in sync.
      expect(await x2.waitFor((x) => x.t === "msg" && x.kind === "read" && x.ref === m4.mid)).toMatchObject({ from: a.user, group: g });
      const kinds = (await x2.ok({ t: "sync", after: m2.mid, limit: 500 })).msgs.filter((x: any) => x.kind === "read").map((x: any) => [x.group ?? x.user, x.ref]);
      expect(kinds).toEqual([
        [g, m2.mid],
        [b.user, d1.mid],
        [g, m4.mid],
      ]);
    });

    test("a deleted message's bytes are not in the database files", async () => {
      if (!target().files) return; // a cluster's store is a Postgres server
      const a = await user("cvb");
      const tag = crypto.randomUUID();
      const data = new Uint8Array(20_000).fill(0x33);
      data.set(Buffer.from(`FILE-${tag}`), 0);
      const m = await a.sendFile({ user: a.user }, `NAME-${tag}`, "", data, { text: `TEXT-${tag}` });
      const onDisk = () => Buffer.concat(target().files!().map((f) => (fs.existsSync(f) ? fs.readFileSync(f) : Buffer.alloc(0))));
      expect(onDisk().includes(`TEXT-${tag}`)).toBe(true);
      await a.ok({ t: "delete", user: a.user, mid: m.mid });
      const after = onDisk();
      for (const x of [`TEXT-${tag}`, `NAME-${tag}`, `FILE-${tag}`]) expect({ x, found: after.includes(x) }).toEqual({ x, found: false });
    });
  });

  describe("files out of band (PROTOCOL.md §3.9)", () => {
    /** `n` bytes of a pattern of `seed`. */
    const bytesOf = (n: number, seed = 1) => new Uint8Array(n).map((_, i) => (i * 7 + seed * 13 + (i >> 9)) & 0xff);

    test("uploaded in chunks, sent by its upload: the push and history carry name, type, size and hash, never bytes; the bytes by download", async () => {
      const a = await user("fa");
      const b = await user("fb");
      const data = bytesOf(700_000);
      const sha256 = sha256Hex(data);
      const up = await a.ok({ t: "upload", size: data.length, sha256: sha256.toUpperCase() });
      expect(up).toMatchObject({ offset: 0, size: data.length });
      expect(typeof up.upload).toBe("string");
      expect(up.done).toBeUndefined();
      // chunks of at most max_chunk (under this suite's --max-frame of 64 KiB)
      let offset = 0;
      while (offset < data.length) {
        const r = await a.ok({ t: "chunk", upload: up.upload, offset, data: data.subarray(offset, offset + 60_000) });
        offset = Math.min(offset + 60_000, data.length);
        expect(r.offset).toBe(offset);
        expect(r.done).toBe(offset === data.length ? true : undefined);
      }
      const r = await a.ok({ t: "send", user: b.user, text: "the report", file: { upload: up.upload, name: "r.bin", type: "application/x-r" } });
      const file = { name: "r.bin", type: "application/x-r", size: data.length, sha256 };
      const m = await b.nextMsg();
      expect(m).toEqual({ t: "msg", mid: r.mid, ts: r.ts, from: a.user, user: b.user, text: "the report", file });
      const h = await b.ok({ t: "history", user: a.user });
      expect(h.msgs).toEqual([{ mid: r.mid, ts: r.ts, from: a.user, user: b.user, text: "the report", file }]);
      // chunks of any length: the reply says where the next begins
      expect(Buffer.compare(await b.download(r.mid, 256 * 1024), Buffer.from(data))).toBe(0);
      expect(Buffer.compare(await a.download(r.mid, 99_999), Buffer.from(data))).toBe(0);
      const tail = await b.ok({ t: "download", mid: r.mid, offset: data.length - 10 });
      expect(tail).toMatchObject({ mid: r.mid, offset: data.length - 10, size: data.length });
      expect(Array.from(tail.data as Uint8Array)).toEqual(Array.from(data.subarray(data.length - 10)));
      const end = await b.ok({ t: "download", mid: r.mid, offset: data.length });
      expect((end.data as Uint8Array).length).toBe(0);
      expect(await b.request({ t: "download", mid: r.mid, offset: data.length + 1 })).toMatchObject({ code: "bad_request" });
      // the upload was used up by the send
      expect(await a.request({ t: "send", user: b.user, file: { upload: up.upload, name: "again", type: "" } })).toMatchObject({ code: "not_found" });
      // an empty file needs no chunk
      const e = await a.ok({ t: "upload", size: 0, sha256: sha256Hex(new Uint8Array(0)) });
      expect(e).toMatchObject({ offset: 0, size: 0, done: true });
      const re = await a.ok({ t: "send", user: b.user, file: { upload: e.upload, name: "empty", type: "" } });
      expect((await b.download(re.mid)).length).toBe(0);
    });

    test("an upload resumes after a reconnect, from the offset the server has; a chunk not at it is a conflict", async () => {
      const a = await user("fr");
      const data = bytesOf(400_000, 2);
      const sha256 = sha256Hex(data);
      const up = await a.ok({ t: "upload", size: data.length, sha256 });
      for (let off = 0; off < 150_000; off += 50_000) await a.ok({ t: "chunk", upload: up.upload, offset: off, data: data.subarray(off, off + 50_000) });
      a.close();
      const a2 = await device(a);
      const again = await a2.ok({ t: "upload", size: data.length, sha256 });
      expect(again).toMatchObject({ upload: up.upload, offset: 150_000 });
      expect(await a2.request({ t: "chunk", upload: up.upload, offset: 0, data: data.subarray(0, 50_000) })).toMatchObject({ code: "conflict" });
      const small = await a2.ok({ t: "upload", size: 10, sha256: sha256Hex(bytesOf(10)) });
      expect(await a2.request({ t: "chunk", upload: small.upload, offset: 0, data: bytesOf(11) })).toMatchObject({ code: "bad_request" });
      for (let off = 150_000; off < data.length; off += 60_000) {
        const r = await a2.ok({ t: "chunk", upload: up.upload, offset: off, data: data.subarray(off, off + 60_000) });
        expect(r.done).toBe(off + 60_000 >= data.length ? true : undefined);
      }
      // finished and not sent: asking again says so
      expect(await a2.ok({ t: "upload", size: data.length, sha256 })).toMatchObject({ upload: up.upload, offset: data.length, done: true });
      // another user's upload of the same bytes is their own
      const c = await user("fr");
      expect((await c.ok({ t: "upload", size: data.length, sha256 })).offset).toBe(0);
      expect(await c.request({ t: "chunk", upload: up.upload, offset: data.length - 1, data: new Uint8Array(1) })).toMatchObject({ code: "not_found" });
      expect(await c.request({ t: "send", user: c.user, file: { upload: up.upload, name: "x", type: "" } })).toMatchObject({ code: "not_found" });
      const r = await a2.ok({ t: "send", user: a2.user, file: { upload: up.upload, name: "x", type: "" } });
      expect(Buffer.compare(await a2.download(r.mid), Buffer.from(data))).toBe(0);
    });

    test("a repeated send (same cid) of a file is the original, its upload used up or not", async () => {
      const a = await user("fc");
      const b = await user("fc");
      const upload = await a.upload(bytesOf(2000, 9));
      const req = { t: "send", user: b.user, cid: "file-cid-1", file: { upload, name: "c.bin", type: "" } };
      const r = await a.ok(req);
      expect(await a.ok(req)).toMatchObject({ mid: r.mid, ts: r.ts });
      expect(await a.request({ ...req, cid: "file-cid-2" })).toMatchObject({ code: "not_found" });
      await b.nextMsg();
      await a.ok({ t: "ping" });
      await settle();
      expect(b.msgs()).toHaveLength(1);
    });

    test("a wrong SHA-256 is refused at the last chunk: the bytes are dropped and the upload starts again at 0", async () => {
      const a = await user("fh");
      const data = bytesOf(5000, 3);
      const wrong = sha256Hex(bytesOf(5000, 4));
      const up = await a.ok({ t: "upload", size: 5000, sha256: wrong });
      await a.ok({ t: "chunk", upload: up.upload, offset: 0, data: data.subarray(0, 4000) });
      const bad = await a.request({ t: "chunk", upload: up.upload, offset: 4000, data: data.subarray(4000) });
      expect(bad).toMatchObject({ code: "bad_request" });
      expect(bad.msg).toContain("SHA-256");
      expect(await a.ok({ t: "upload", size: 5000, sha256: wrong })).toMatchObject({ upload: up.upload, offset: 0 });
      expect(await a.request({ t: "send", user: a.user, file: { upload: up.upload, name: "x", type: "" } })).toMatchObject({ code: "not_found" });
      const right = bytesOf(5000, 4);
      expect((await a.ok({ t: "chunk", upload: up.upload, offset: 0, data: right })).done).toBe(true);
    });

    test("only who can see the message downloads its file: members now, the parties of a DM; never after it is deleted", async () => {
      const a = await user("fd");
      const b = await user("fd");
      const outsider = await user("fd");
      const g = uniq("fdg");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      const data = bytesOf(3000, 5);
      const gm = await a.sendFile({ group: g }, "g.bin", "", data);
      const dm = await a.sendFile({ user: b.user }, "d.bin", "", data);
      const text = await a.ok({ t: "send", group: g, text: "no file" });
      expect((await b.download(gm.mid)).length).toBe(3000);
      expect((await b.download(dm.mid)).length).toBe(3000);
      for (const mid of [gm.mid, dm.mid, text.mid, 1e12])
        expect(await outsider.request({ t: "download", mid })).toMatchObject({ code: "not_found" });
      expect(await b.request({ t: "download", mid: text.mid })).toMatchObject({ code: "not_found" });
      // a member who joins later sees the group's history, files included
      await outsider.ok({ t: "join", group: g });
      await settle();
      expect((await outsider.download(gm.mid)).length).toBe(3000);
      expect(await outsider.request({ t: "download", mid: dm.mid })).toMatchObject({ code: "not_found" });
      await b.ok({ t: "leave", group: g });
      await settle();
      expect(await b.request({ t: "download", mid: gm.mid })).toMatchObject({ code: "not_found" });
      // deleted: gone for everyone, also where the same bytes are still held by another message
      await a.ok({ t: "delete", group: g, mid: gm.mid });
      expect(await a.request({ t: "download", mid: gm.mid })).toMatchObject({ code: "not_found" });
      expect(await outsider.request({ t: "download", mid: gm.mid })).toMatchObject({ code: "not_found" });
      expect(Buffer.compare(await b.download(dm.mid), Buffer.from(data))).toBe(0);
    });

    test("a send with the bytes in it (before §3.9), or without an upload, is a bad_request", async () => {
      const a = await user("fo");
      expect(await a.request({ t: "send", user: a.user, file: { name: "f", type: "", data: new Uint8Array(3) } })).toMatchObject({ code: "bad_request" });
      expect(await a.request({ t: "send", user: a.user, file: { name: "f", type: "" } })).toMatchObject({ code: "bad_request" });
      expect(await a.request({ t: "upload", size: 3, sha256: "abc" })).toMatchObject({ code: "bad_request" });
      expect(await a.request({ t: "chunk", upload: "x", offset: 0, data: new Uint8Array(0) })).toMatchObject({ code: "bad_request" });
      expect(await a.request({ t: "chunk", upload: "nope", offset: 0, data: new Uint8Array(1) })).toMatchObject({ code: "not_found" });
    });
  });

  describe("search (PROTOCOL.md §3.7)", () => {
    test("the caller's conversations only, newest first, paged; parts of words, any script; edits and deletions count", async () => {
      const a = await user("se");
      const b = await user("se");
      const outsider = await user("se");
      const g = uniq("seg");
      const tag = uniq("zq"); // a word no other test uses
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      const m1 = await a.ok({ t: "send", group: g, text: `trying ${tag}Qwen3.6 now` });
      const m2 = await b.ok({ t: "send", user: a.user, text: `${tag} 日本語のテキスト` });
      const m3 = await b.ok({ t: "send", group: g, text: `${tag} third`, reply: m1.mid });
      const m4 = await outsider.ok({ t: "send", user: b.user, text: `${tag} not for a` });
      const texts = (r: any) => r.msgs.map((m: any) => m.mid);
      expect(texts(await a.ok({ t: "search", q: tag }))).toEqual([m3.mid, m2.mid, m1.mid]);
      expect(texts(await b.ok({ t: "search", q: tag }))).toEqual([m4.mid, m3.mid, m2.mid, m1.mid]);
      expect(texts(await outsider.ok({ t: "search", q: tag }))).toEqual([m4.mid]);
      expect(texts(await a.ok({ t: "search", q: `${tag}qwen3` }))).toEqual([m1.mid]);
      expect(texts(await a.ok({ t: "search", q: "日本語のテ" }))).toEqual([m2.mid]);
      const p1 = await a.ok({ t: "search", q: tag, limit: 2 });
      expect(texts(p1)).toEqual([m3.mid, m2.mid]);
      expect(p1.more).toBe(true);
      const p2 = await a.ok({ t: "search", q: tag, limit: 2, before: m2.mid });
      expect(p2.msgs).toEqual([{ mid: m1.mid, ts: m1.ts, from: a.user, group: g, text: `trying ${tag}Qwen3.6 now` }]);
      expect(p2.more).toBe(false);
      await b.ok({ t: "edit", group: g, mid: m3.mid, text: "renamed" });
      await a.ok({ t: "delete", group: g, mid: m1.mid });
      expect(texts(await a.ok({ t: "search", q: tag }))).toEqual([m2.mid]);
      expect((await a.ok({ t: "search", q: "renamed" })).msgs).toMatchObject([{ mid: m3.mid, text: "renamed", reply: m1.mid }]);
      // Leaving a group: its messages are no longer the caller's to search.
      await b.ok({ t: "leave", group: g });
      expect(texts(await b.ok({ t: "search", q: "renamed" }))).toEqual([]);
      for (const q of ["", "x".repeat(257), "a\u0000b"])
        expect(await a.request({ t: "search", q })).toMatchObject({ code: "bad_request" });
    });
  });

  describe("typing (PROTOCOL.md §5.5)", () => {
    test("reaches the other members' devices, not the typist's own; once per connection and conversation in 3 s; never stored", async () => {
      const a = await user("ty");
      const a2 = await device(a);
      const b = await user("ty");
      const b2 = await device(b);
      const outsider = await user("ty");
      const g = uniq("tyg");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      expect(await a.ok({ t: "typing", group: g })).toEqual({ t: "ok", id: expect.any(Number) });
      const inGroup = { t: "typing", from: a.user, group: g };
      expect(await b.nextPush("typing")).toEqual(inGroup);
      expect(await b2.nextPush("typing")).toEqual(inGroup);
      await a.ok({ t: "typing", user: b.user });
      const direct = { t: "typing", from: a.user, user: b.user };
      expect(await b.nextPush("typing")).toEqual(direct);
      expect(await b2.nextPush("typing")).toEqual(direct);
      // Again at once from the same connection: not passed on; from another connection: passed on.
      await a.ok({ t: "typing", group: g });
      await a2.ok({ t: "typing", group: g });
      expect(await b.nextPush("typing")).toEqual(inGroup);
      await b.ok({ t: "typing", user: b.user }); // notes to self: nobody to tell
      expect(await outsider.request({ t: "typing", group: g })).toMatchObject({ code: "forbidden" });
      expect(await outsider.request({ t: "typing", group: uniq("none") })).toMatchObject({ code: "not_found" });
      expect(await outsider.request({ t: "typing", user: uniq("nobody") })).toMatchObject({ code: "not_found" });
      for (const c of [a, a2, b, b2, outsider]) await c.ok({ t: "ping" });
      await settle();
      expect(b.pushes("typing")).toEqual([inGroup, direct, inGroup]);
      expect(b2.pushes("typing")).toEqual([inGroup, direct, inGroup]);
      for (const c of [a, a2, outsider]) expect(c.pushes("typing")).toEqual([]);
      expect(b.msgs()).toEqual([]);
      // nothing stored but the group's own create and join
      expect(afterSetup((await b.ok({ t: "history", group: g })).msgs, g, a.user!, b.user!)).toEqual([]);
      expect((await b.ok({ t: "sync", after: 0 })).msgs.filter((m: any) => (m.group === g || m.from === a.user) && !isGroupChange({ t: "msg", ...m }))).toEqual([]);
    });

    test("not sent in groups larger than --typing-max-group (3 here)", async () => {
      const people = [await user("ty"), await user("ty"), await user("ty"), await user("ty")];
      const g = uniq("tyg");
      for (const p of people) await p.ok({ t: p === people[0] ? "create" : "join", group: g });
      await people[0]!.ok({ t: "typing", group: g });
      await people[0]!.ok({ t: "typing", user: people[1]!.user });
      expect(await people[1]!.nextPush("typing")).toEqual({ t: "typing", from: people[0]!.user, user: people[1]!.user });
      await settle();
      for (const p of people) expect(p.pushes("typing").filter((x) => x.group === g)).toEqual([]);
      // One leaves: 3 members, it is sent.
      await people[3]!.ok({ t: "leave", group: g });
      await settle(); // in a cluster the typist's node learns of the leave over NATS
      await people[0]!.ok({ t: "typing", group: g });
      expect(await people[2]!.nextPush("typing")).toEqual({ t: "typing", from: people[0]!.user, group: g });
    });
  });

  describe("restart", () => {
    // In a cluster: every node stops (SIGTERM) and starts again on the same PostgreSQL.
    test("after SIGTERM and a restart on the same database, everything is still there", async () => {
      const a = await user("keep");
      const b = await user("keep");
      const g = uniq("keepg");
      await a.ok({ t: "create", group: g });
      await b.ok({ t: "join", group: g });
      const m1 = await a.ok({ t: "send", group: g, text: "survives", cid: "k1" });
      const m2 = await b.ok({ t: "send", user: a.user, text: "dm survives" });
      await b.nextMsg();

      // a connection that is mid-conversation gets bye on shutdown
      const codes = await target().stop();
      expect(codes).toEqual(codes.map(() => 0));
      expect(await b.waitFor((m) => m.t === "bye")).toEqual({ t: "bye", reason: "shutdown" });
      for (const out of target().outputs()) expect(out).toContain("stopped");

      await target().start();
      const a2 = await connect();
      await a2.ok({ t: "login", user: a.user, token: a.token }); // tokens survive
      const b2 = await connect();
      await b2.login(b.user!); // passwords too
      expect((await a2.ok({ t: "groups" })).groups).toEqual([{ group: g, owner: a.user, role: "owner", public: true, topic: "", description: "" }]);
      const h = await b2.ok({ t: "history", group: g });
      // the group's log: its create and b's join, then the message
      expect(h.msgs.slice(0, 2).map((m: any) => [m.kind, m.from, m.target])).toEqual([
        ["create", a.user, a.user],
        ["join", b.user, b.user],
      ]);
      expect(h.msgs.slice(2)).toEqual([{ mid: m1.mid, ts: m1.ts, from: a.user, group: g, text: "survives", cid: "k1" }]);
      const s = await a2.ok({ t: "sync", after: m1.mid - 1 });
      expect(s.msgs.map((m: any) => m.mid)).toEqual([m1.mid, m2.mid]);
      // idempotency survives too, and new mids continue above the old ones
      expect((await a2.ok({ t: "send", group: g, text: "survives", cid: "k1" })).mid).toBe(m1.mid);
      const m3 = await a2.ok({ t: "send", group: g, text: "after restart" });
      expect(m3.mid).toBeGreaterThan(m2.mid);
      expect((await b2.nextMsg()).text).toBe("after restart");
      // routing was loaded from the store: membership checks still hold
      const outsider = await user();
      expect(await outsider.request({ t: "send", group: g, text: "x" })).toMatchObject({ code: "forbidden" });
    });
  });

  describe("limits count UTF-8 bytes", () => {
    test("cid and file name limits are in bytes; empty text without a file is refused", async () => {
      const a = await user();
      const b = await user();
      // 16 four-byte emoji = 64 bytes: the cid limit exactly; 17 are over it
      expect((await a.request({ t: "send", user: b.user, text: "x", cid: "😀".repeat(16) })).t).toBe("ok");
      expect(await a.request({ t: "send", user: b.user, text: "x", cid: "😀".repeat(17) })).toMatchObject({
        code: "bad_request",
      });
      const file = async (name: string) => ({ upload: await a.upload(new Uint8Array([1])), name, type: "" });
      expect((await a.request({ t: "send", user: b.user, file: await file("é".repeat(127)) })).t).toBe("ok"); // 254 bytes
      expect(await a.request({ t: "send", user: b.user, file: await file("é".repeat(128)) })).toMatchObject({
        code: "bad_request",
      });
      expect(await a.request({ t: "send", user: b.user, text: "" })).toMatchObject({ code: "bad_request" });
    });
  });
}
