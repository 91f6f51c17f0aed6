// The client library (src/client) against the real server process over loopback:
// request/reply, typed errors, events and async iterators, several devices, files.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  BadRequestError,
  ChatClient,
  ChatError,
  chatErrorFrom,
  type ChatMessage,
  type ClientOptions,
  ClosedError,
  ConflictError,
  DisconnectedError,
  ForbiddenError,
  InternalError,
  NotFoundError,
  type Presence,
  TimeoutError,
  TooLargeError,
  UnauthorizedError,
} from "../src/client/index.ts";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const tmp = tempDir("tcpchat-client-");
let server: RunningServer;
const clients: ChatClient[] = [];
let n = 0;
const uniq = (p: string) => `${p}${++n}`;
const PASS = "password1";

async function connect(opts: ClientOptions = {}): Promise<ChatClient> {
  const c = await ChatClient.connect({ port: server.port, ...opts });
  clients.push(c);
  return c;
}

/** A fresh user, registered and logged in on a new client. */
async function user(prefix = "u", opts: ClientOptions = {}): Promise<ChatClient> {
  const c = await connect(opts);
  const name = uniq(prefix);
  await c.register(name, PASS);
  await c.login(name, { pass: PASS });
  return c;
}

/** Another device of the same user, logged in with its token. */
async function device(of: ChatClient): Promise<ChatClient> {
  const c = await connect();
  await c.login(of.user!, { token: of.token! });
  return c;
}

/** Collects a client's events from now on. */
function collect<T>(c: ChatClient, name: "msg" | "presence"): T[] {
  const out: T[] = [];
  c.on(name, (v) => out.push(v as T));
  return out;
}

/** Waits until `cond` holds (polling), or fails with `what`. */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** A request/reply round trip on every client: whatever was pushed before has arrived. */
async function settle(...cs: ChatClient[]): Promise<void> {
  for (const c of cs) await c.ping();
}

beforeAll(async () => {
  server = await startServer(["--db", join(tmp.dir, "chat.db"), "--max-frame", "8388608", "--max-text", "1000", ...TEST_ARGS]);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  if (server.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

describe("requests and replies", () => {
  test("register, login, groups, members, leave, history and sync return typed results", async () => {
    const a = await connect();
    const name = uniq("req");
    expect(await a.register(name, PASS)).toEqual({ user: name });
    expect(a.state).toBe("open");
    const r = await a.login(name, { pass: PASS });
    expect(r.user).toBe(name);
    expect(r.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.state).toBe("ready");
    expect(a.user).toBe(name);
    const g = uniq("g");
    // join does not create a group: create does, and the creator is its owner
    await expect(a.join(g)).rejects.toMatchObject({ code: "not_found" });
    await a.createGroup(g);
    expect(await a.groups()).toEqual([{ group: g, owner: name, role: "owner", public: true, topic: "", description: "" }]);
    expect(await a.members(g)).toEqual([{ user: name, online: true, role: "owner" }]);
    // joining a group one is in already changes nothing: no entry, so no mid
    expect(await a.join(g)).toEqual({ group: g, owner: name, topic: "" });
    const m1 = await a.send({ group: g, text: "one" });
    const m2 = await a.send({ group: g, text: "two", cid: "my-cid-2" });
    expect(m2.cid).toBe("my-cid-2");
    expect(m2.mid).toBeGreaterThan(m1.mid);
    const h = await a.history({ group: g });
    // the group's log starts with its create entry
    expect(h.msgs[0]).toMatchObject({ group: g, from: name, kind: "create", target: name });
    expect(h).toEqual({ msgs: [h.msgs[0]!, m1, m2], more: false });
    const h1 = await a.history({ group: g }, { limit: 1 });
    expect(h1.msgs.map((m) => m.text)).toEqual(["two"]);
    expect(h1.more).toBe(true);
    const s = await a.sync(m1.mid - 1);
    expect(s.msgs.map((m) => m.mid)).toEqual([m1.mid, m2.mid]);
    await a.leave(g);
    expect(await a.groups()).toEqual([]);
    expect(typeof (await a.ping())).toBe("number");
    // the raw typed request is there too
    // the group outlives its last member: it can be joined again, and that is an entry
    expect(await a.request({ t: "join", group: g })).toEqual({ group: g, owner: name, topic: "", mid: expect.any(Number), ts: expect.any(Number) });
  });

  test("send() resolves with the stored message; the same cid twice is one message", async () => {
    const a = await user();
    const b = await user();
    const got = collect<ChatMessage>(b, "msg");
    const first = await a.send({ user: b.user!, text: "once", cid: "same" });
    expect(first).toMatchObject({ from: a.user, user: b.user, text: "once", cid: "same" });
    const again = await a.send({ user: b.user!, text: "once", cid: "same" });
    expect(again.mid).toBe(first.mid);
    await settle(a, b);
    expect(got.map((m) => m.mid)).toEqual([first.mid]);
  });

  test("login with a token issued to another device; logout revokes it", async () => {
    const a = await user();
    const a2 = await device(a);
    expect(a2.token).toBe(a.token);
    await a2.logout();
    expect(a2.state).toBe("open");
    expect(a2.user).toBeUndefined();
    const a3 = await connect();
    const err = await a3.login(a.user!, { token: a.token! }).catch((e) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect(a3.state).toBe("open");
  });
});

describe("typed errors", () => {
  test("server error codes become ChatError subclasses carrying the code", async () => {
    const a = await user();
    const outsider = await user();
    const g = uniq("err");
    await a.createGroup(g);

    const dup = await a.register(a.user!, PASS).catch((e) => e);
    expect(dup).toBeInstanceOf(ConflictError);
    expect(dup).toBeInstanceOf(ChatError);
    expect(dup.code).toBe("conflict");
    expect(dup.request).toBe("register");

    const badName = await a.register("Not A Name", PASS).catch((e) => e);
    expect(badName).toBeInstanceOf(BadRequestError);
    expect(badName.code).toBe("bad_request");
    expect(badName.serverMessage).toContain("user");

    const c = await connect();
    const wrong = await c.login(a.user!, { pass: "not-the-password" }).catch((e) => e);
    expect(wrong).toBeInstanceOf(UnauthorizedError);
    const notYet = await c.groups().catch((e) => e);
    expect(notYet).toBeInstanceOf(UnauthorizedError);

    const forbidden = await outsider.send({ group: g, text: "let me in" }).catch((e) => e);
    expect(forbidden).toBeInstanceOf(ForbiddenError);
    expect(forbidden.code).toBe("forbidden");
    const forbiddenMembers = await outsider.members(g).catch((e) => e);
    expect(forbiddenMembers).toBeInstanceOf(ForbiddenError);

    const nf = await a.send({ user: uniq("nobody"), text: "x" }).catch((e) => e);
    expect(nf).toBeInstanceOf(NotFoundError);
    expect(await a.leave(uniq("nogroup")).catch((e) => e.code)).toBe("not_found");

    // the server runs with --max-text 1000
    const long = await a.send({ group: g, text: "x".repeat(1001) }).catch((e) => e);
    expect(long).toBeInstanceOf(TooLargeError);
    expect(long.code).toBe("too_large");
    // after all of that the client is still fine
    expect(a.pendingSends).toBe(0);
    expect((await a.send({ group: g, text: "still here" })).text).toBe("still here");
  });

  test("a send over maxRequestFrame fails before it is written; the connection stays", async () => {
    const a = await user("big", { maxRequestFrame: 10_000 });
    const b = await user();
    const err = await a
      .send({ user: b.user!, text: "x".repeat(20_000) })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TooLargeError);
    expect(a.state).toBe("ready");
    expect((await a.send({ user: b.user!, text: "small" })).text).toBe("small");
  });

  test("unknown codes are treated as internal, keeping the server's word", () => {
    const e = chatErrorFrom("brand_new_code", "something", "join");
    expect(e).toBeInstanceOf(InternalError);
    expect(e.code).toBe("internal");
    expect(e.serverCode).toBe("brand_new_code");
    expect(e.retryable).toBe(true);
    expect(chatErrorFrom("forbidden", "no").retryable).toBe(false);
  });

  test("no reply in time is a TimeoutError", async () => {
    // A server that accepts and never answers.
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const c = await ChatClient.connect({ port: silent.port, requestTimeoutMs: 200, reconnect: false });
      const err = await c.ping().catch((e) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err.code).toBe("timeout");
      expect(err.request).toBe("ping");
      await c.close();
    } finally {
      silent.stop(true);
    }
  });

  test("no server is a DisconnectedError; a closed client rejects with ClosedError", async () => {
    const free = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = free.port;
    free.stop(true);
    const err = await ChatClient.connect({ port }).catch((e) => e);
    expect(err).toBeInstanceOf(DisconnectedError);
    expect(err.code).toBe("disconnected");

    const a = await user();
    await a.close();
    expect(a.state).toBe("closed");
    expect(await a.send({ user: a.user!, text: "late" }).catch((e) => e)).toBeInstanceOf(ClosedError);
    expect(await a.groups().catch((e) => e)).toBeInstanceOf(ClosedError);
  });
});

describe("events and async iterators", () => {
  test("msg events and messages() deliver others' messages in order; the sender gets none of its own", async () => {
    const a = await user();
    const b = await user();
    const g = uniq("ev");
    await a.createGroup(g);
    await b.join(g);
    const aGot = collect<ChatMessage>(a, "msg");
    const bEvents = collect<ChatMessage>(b, "msg");
    const it = b.messages();
    const sent: ChatMessage[] = [];
    for (let i = 0; i < 50; i++) sent.push(await a.send({ group: g, text: `m${i}` }));
    const viaIterator: ChatMessage[] = [];
    for await (const m of it) {
      viaIterator.push(m);
      if (viaIterator.length === 50) break; // break: return() unsubscribes
    }
    expect(viaIterator).toEqual(sent);
    expect(bEvents).toEqual(sent);
    await settle(a);
    expect(aGot).toEqual([]);
    // the iterator was unsubscribed by the break: a later message does not reach it
    const late = await a.send({ group: g, text: "late" });
    await until(() => bEvents.length === 51, "the late message");
    expect(bEvents[50]).toEqual(late);
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test("presence: co-members come and go, as events and as presences()", async () => {
    const a = await user();
    const bName = uniq("pres");
    const b = await connect();
    await b.register(bName, PASS);
    await b.login(bName, { pass: PASS });
    const g = uniq("pg");
    await a.createGroup(g);
    await b.join(g);
    const events = collect<Presence>(a, "presence");
    const it = a.presences();
    await b.close();
    expect((await it.next()).value).toEqual({ user: bName, online: false });
    const b2 = await connect();
    await b2.login(bName, { pass: PASS });
    expect((await it.next()).value).toEqual({ user: bName, online: true });
    expect(events).toEqual([
      { user: bName, online: false },
      { user: bName, online: true },
    ]);
  });

  test("iterators finish when the client closes, after yielding what they hold", async () => {
    const a = await user();
    const b = await user();
    const it = b.messages();
    await a.send({ user: b.user!, text: "before close" });
    await until(() => (it as unknown as { size: number }).size === 1, "the message to be queued");
    const states: string[] = [];
    b.on("state", (s) => states.push(s));
    await b.close();
    expect(states).toEqual(["closed"]);
    expect((await it.next()).value?.text).toBe("before close");
    expect((await it.next()).done).toBe(true);
    expect((await b.messages().next()).done).toBe(true);
  });

  test("a throwing listener is reported as an error event and does not stop delivery", async () => {
    const a = await user();
    const b = await user();
    const errors: Error[] = [];
    b.on("error", (e) => errors.push(e));
    b.on("msg", () => {
      throw new Error("listener bug");
    });
    const got = collect<ChatMessage>(b, "msg");
    await a.send({ user: b.user!, text: "x" });
    await a.send({ user: b.user!, text: "y" });
    await until(() => got.length === 2, "both messages");
    expect(got.map((m) => m.text)).toEqual(["x", "y"]);
    expect(errors.map((e) => e.message)).toEqual(["listener bug", "listener bug"]);
  });

  test("a slow async-iterator reader loses nothing and keeps the order", async () => {
    const a = await user();
    const b = await user();
    const sends: Promise<ChatMessage>[] = [];
    const it = b.messages();
    for (let i = 0; i < 300; i++) sends.push(a.send({ user: b.user!, text: `s${i}` }));
    const acked = await Promise.all(sends);
    const got: ChatMessage[] = [];
    for await (const m of it) {
      got.push(m);
      if (got.length % 25 === 0) await Bun.sleep(20); // a reader slower than the sender
      if (got.length === 300) break;
    }
    expect(got.map((m) => m.mid)).toEqual(acked.map((m) => m.mid));
    expect(got.map((m) => m.text)).toEqual(Array.from({ length: 300 }, (_, i) => `s${i}`));
  });
});

describe("several devices", () => {
  test("a user's other devices receive what it sends; the sending device gets only the ack", async () => {
    const a1 = await user("dev");
    const a2 = await device(a1);
    const b = await user();
    const g = uniq("devg");
    await a1.createGroup(g);
    await b.join(g);
    const got1 = collect<ChatMessage>(a1, "msg");
    const got2 = collect<ChatMessage>(a2, "msg");
    const gotB = collect<ChatMessage>(b, "msg");
    const fromA1 = await a1.send({ group: g, text: "from device 1" });
    const dm = await b.send({ user: a1.user!, text: "to both devices" });
    const fromA2 = await a2.send({ user: b.user!, text: "from device 2" });
    await until(() => got1.length === 2 && got2.length === 2 && gotB.length === 2, "all deliveries");
    expect(got1).toEqual([dm, fromA2]);
    expect(got2).toEqual([fromA1, dm]);
    expect(gotB).toEqual([fromA1, fromA2]);
    expect(fromA1.from).toBe(a1.user!);
    expect(fromA2.from).toBe(a1.user!);
  });

  test("login since a mid catches up first; a new client object resumes from another's cursor", async () => {
    const a = await user();
    const b = await user();
    const g = uniq("since");
    await a.createGroup(g);
    await b.join(g);
    const m1 = await a.send({ group: g, text: "h1" });
    const m2 = await a.send({ group: g, text: "h2" });
    const m3 = await a.send({ group: g, text: "h3" });
    await until(() => b.cursor === m3.mid, "b to see h3");
    const bCursorAfterH1 = m1.mid;

    // a second device of b, starting after h1: gets h2, h3 before login() resolves, then live ones
    const b2 = await connect({ syncPageSize: 1 }); // one message per sync page: paging is exercised
    const got = collect<ChatMessage>(b2, "msg");
    await b2.login(b.user!, { token: b.token! }, { since: bCursorAfterH1 });
    expect(got).toEqual([m2, m3]);
    expect(b2.cursor).toBe(m3.mid);
    const m4 = await a.send({ group: g, text: "h4" });
    await until(() => got.length === 3, "the live message");
    expect(got[2]).toEqual(m4);

    // "now" (the default) delivers nothing old, and finds the tail
    const b3 = await connect();
    const got3 = collect<ChatMessage>(b3, "msg");
    await b3.login(b.user!, { token: b.token! });
    expect(b3.cursor).toBe(m4.mid);
    const m5 = await a.send({ group: g, text: "h5" });
    await until(() => got3.length === 1, "h5 on b3");
    expect(got3).toEqual([m5]);
  });
});

describe("backpressure", () => {
  test("a file much larger than a socket write goes out intact in chunks, with messages sent meanwhile going through", async () => {
    const a = await user("big");
    const b = await user();
    const got = collect<ChatMessage>(b, "msg");
    const data = new Uint8Array(6 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) crypto.getRandomValues(data.subarray(i, i + 4096));
    // The upload's chunks (a window of them in flight) and a text sent meanwhile share the connection.
    const big = a.sendFile({ user: b.user! }, data, { name: "big.bin", type: "application/octet-stream" });
    const small = await a.send({ user: b.user!, text: "while the file goes" });
    const bigAck = await big;
    expect(bigAck.mid).toBeGreaterThan(small.mid);
    await until(() => got.length === 2, "both messages", 20_000);
    expect(got[0]!.text).toBe("while the file goes");
    expect(got[1]!.file).toEqual({ name: "big.bin", type: "application/octet-stream", size: data.length, sha256: new Bun.CryptoHasher("sha256").update(data).digest("hex") });
    const parts: Uint8Array[] = [];
    for await (const chunk of b.download(got[1]!)) parts.push(chunk);
    expect(Bun.hash(Buffer.concat(parts))).toBe(Bun.hash(data));
  });
});

describe("conversations: edits, deletions, reactions, read state, typing (PROTOCOL.md §3.6)", () => {
  /** Every conversation event of a client, as short strings, in the order they came. */
  function record(c: ChatClient): string[] {
    const out: string[] = [];
    c.on("msg", (m) => out.push(`msg ${m.mid} ${m.deleted ? "(deleted)" : m.text}${m.reply ? ` reply ${m.reply}` : ""}`));
    c.on("edit", (e) => out.push(`edit ${e.ref} ${e.text} by ${e.from}`));
    c.on("delete", (e) => out.push(`delete ${e.ref} by ${e.from}`));
    c.on("reaction", (e) => out.push(`${e.add ? "+" : "-"}${e.emoji} ${e.ref} by ${e.from}`));
    c.on("read", (e) => out.push(`read ${e.group ?? e.user} ${e.read}`));
    return out;
  }

  test("each change is one event on every other client, in mid order; the client's own only by its promise", async () => {
    const a = await user("cv");
    const a2 = await device(a);
    const b = await user("cv");
    const g = uniq("cvg");
    await a.createGroup(g);
    await b.join(g);
    const [ea, ea2, eb] = [record(a), record(a2), record(b)];
    const entries: number[] = [];
    b.on("entry", (m) => entries.push(m.mid));
    const m = await a.send({ group: g, text: "helo" });
    const r = await b.send({ group: g, text: "hi!", reply: m.mid });
    expect(r.reply).toBe(m.mid);
    const e = await a.edit({ group: g }, m.mid, "hello");
    const x = await b.react({ group: g }, m.mid, "👍");
    await a2.react({ group: g }, m.mid, "🎉");
    await b.react({ group: g }, m.mid, "👍", { remove: true });
    const d = await a.delete({ group: g }, r.mid); // the owner deletes b's reply
    await expect(b.edit({ group: g }, m.mid, "not mine")).rejects.toBeInstanceOf(ForbiddenError);
    await expect(b.react({ group: g }, r.mid, "x")).rejects.toBeInstanceOf(NotFoundError);
    const rd = await a.markRead({ group: g }, d.mid);
    expect(rd).toEqual({ read: d.mid, mid: rd.mid, ts: rd.ts });
    expect(await a2.markRead({ group: g }, m.mid)).toEqual({ read: d.mid }); // not forward: nothing stored
    await until(() => ea2.length >= 7 && eb.length >= 4 && ea.length >= 4, "the events");
    await settle(a, a2, b);
    const want = [
      `msg ${m.mid} helo`,
      `msg ${r.mid} hi! reply ${m.mid}`,
      `edit ${m.mid} hello by ${a.user}`,
      `+👍 ${m.mid} by ${b.user}`,
      `+🎉 ${m.mid} by ${a.user}`,
      `-👍 ${m.mid} by ${b.user}`,
      `delete ${r.mid} by ${a.user}`,
    ];
    expect(eb).toEqual(want.filter((w) => !w.startsWith(`msg ${r.mid}`) && !w.startsWith("+👍") && !w.startsWith("-👍")));
    expect(ea2).toEqual([...want.filter((w) => !w.startsWith("+🎉")), `read ${g} ${d.mid}`]);
    expect(ea).toEqual(want.filter((w) => w.startsWith(`msg ${r.mid}`) || w.startsWith("+👍") || w.startsWith("+🎉") || w.startsWith("-👍")));
    expect(entries).toEqual([m.mid, e.mid, x.mid + 1, d.mid]);
    // History: the group's create and join entries, the message as it is now, then the entries.
    const h = await b.history({ group: g });
    expect(h.msgs.slice(0, 2).map((x) => [x.kind, x.from, x.target])).toEqual([
      ["create", a.user, a.user],
      ["join", b.user, b.user],
    ]);
    expect(h.msgs[2] as unknown).toEqual({ mid: m.mid, ts: m.ts, from: a.user, group: g, text: "hello", cid: m.cid, edited: e.ts, reactions: [{ emoji: "🎉", users: [a.user] }] });
    expect(h.msgs[3] as unknown).toEqual({ mid: r.mid, ts: r.ts, from: b.user, group: g, cid: r.cid, reply: m.mid, deleted: d.ts });
  });

  test("changes made while a client's connection is down arrive once, in order, when it is back", async () => {
    const a = await user("cv");
    const b = await user("cv");
    const eb = record(b);
    const m = await a.send({ user: b.user!, text: "one" });
    await until(() => eb.length === 1, "the message");
    const states: string[] = [];
    b.on("state", (s) => states.push(s));
    (b as unknown as { conn: { terminate(): void } }).conn.terminate(); // the network drops it
    await a.edit({ user: b.user! }, m.mid, "one, edited");
    await a.react({ user: b.user! }, m.mid, "❤️");
    const two = await a.send({ user: b.user!, text: "two" });
    await a.delete({ user: b.user! }, two.mid);
    await b.whenReady();
    await until(() => eb.length >= 5, "the catch-up");
    await settle(a, b);
    expect(eb).toEqual([
      `msg ${m.mid} one`,
      `edit ${m.mid} one, edited by ${a.user}`,
      `+❤️ ${m.mid} by ${a.user}`,
      `msg ${two.mid} (deleted)`, // a catch-up gives messages as they are now: its text never reaches b
      `delete ${two.mid} by ${a.user}`,
    ]);
    expect(states).toContain("syncing");
  });

  test("conversations(): the same unread counts on two devices through reads; typing events", async () => {
    const a = await user("cv");
    const a2 = await device(a);
    const b = await user("cv");
    const g = uniq("cvg");
    await a.createGroup(g);
    await b.join(g);
    const m1 = await b.send({ group: g, text: `hey @${a.user}` });
    await b.send({ group: g, text: "more" });
    const d = await b.send({ user: a.user!, text: "psst" });
    const counts = async (c: ChatClient): Promise<unknown[]> => (await c.conversations()).map((x) => [x.group ?? x.user, x.unread, x.mentions]);
    expect(await counts(a)).toEqual([
      [b.user, 1, 0],
      [g, 2, 1],
    ]);
    expect(await counts(a2)).toEqual(await counts(a));
    const reads: number[] = [];
    a2.on("read", (e) => reads.push(e.read));
    await a.markRead({ group: g }, m1.mid);
    await until(() => reads.length === 1, "the read event");
    expect(reads).toEqual([m1.mid]);
    expect(await counts(a2)).toEqual([
      [b.user, 1, 0],
      [g, 1, 0],
    ]);
    const c = (await a.conversations()).find((x) => x.user === b.user)!;
    expect(c).toEqual({ user: b.user!, last: d.mid, read: 0, unread: 1, mentions: 0, preview: { mid: d.mid, ts: d.ts, from: b.user!, text: "psst" } });
    expect((await a2.search("psst")).msgs.map((x) => x.mid)).toEqual([d.mid]);
    expect((await a2.search("e", { before: d.mid, limit: 1 })).msgs.map((x) => x.text)).toEqual(["more"]);
    const typing: unknown[] = [];
    a2.on("typing", (t) => typing.push(t));
    await b.typing({ group: g });
    await until(() => typing.length === 1, "the typing event");
    expect(typing).toEqual([{ from: b.user, group: g }]);
  });
});
