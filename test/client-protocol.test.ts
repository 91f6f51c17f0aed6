// The client against a scripted fake server on a real socket: the cases a real
// server produces only by bad luck (an ack lost with a crash, a push in the same
// read as the login reply, replies out of order, a frame refused as too large,
// a server that stops answering) played on purpose.
import { afterEach, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { encodeFrame, makeBodyDecoder } from "../src/protocol/codec.ts";
import { FrameDecoder } from "../src/protocol/frame.ts";
import { ChatClient, type ChatMessage, type ClientOptions, TooLargeError } from "../src/client/index.ts";

type Msg = Record<string, any>;

/** One connection to the fake server: what it received, and a way to answer. */
class FakeConn {
  readonly reqs: Msg[] = [];
  closed = false;
  constructor(
    readonly sock: Socket<FakeConn>,
    readonly index: number,
  ) {}
  /** Writes frames in one write (small test frames: the kernel takes them whole). */
  send(...msgs: Msg[]): void {
    if (this.closed) return;
    const frames = msgs.map((m) => encodeFrame(m));
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) {
      all.set(f, at);
      at += f.length;
    }
    expect(this.sock.write(all)).toBe(all.length);
  }
  /** Closes after what was written; like the real server, reads nothing more. */
  close(): void {
    this.closed = true;
    this.sock.end();
  }
}

type Handler = (c: FakeConn, req: Msg) => void;

class FakeServer {
  readonly conns: FakeConn[] = [];
  private readonly listener: TCPSocketListener<FakeConn>;
  constructor(handler: Handler) {
    const decode = makeBodyDecoder(1 << 26);
    const decoders = new WeakMap<FakeConn, FrameDecoder>();
    this.listener = Bun.listen<FakeConn>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        binaryType: "uint8array",
        open: (sock) => {
          const c = new FakeConn(sock, this.conns.length);
          sock.data = c;
          this.conns.push(c);
          decoders.set(
            c,
            new FrameDecoder(1 << 26, (ev) => {
              if (ev.kind !== "frame" || c.closed) return;
              const req = decode(ev.body) as Msg;
              c.reqs.push(req);
              handler(c, req);
            }),
          );
        },
        data: (sock, chunk) => decoders.get(sock.data)!.push(chunk),
        close: (sock) => {
          sock.data.closed = true;
        },
      },
    });
  }
  get port(): number {
    return this.listener.port;
  }
  stop(): void {
    this.listener.stop(true);
  }
  /** Every request of type `t`, across connections. */
  all(t: string): Msg[] {
    return this.conns.flatMap((c) => c.reqs.filter((r) => r.t === t));
  }
}

const servers: FakeServer[] = [];
const clients: ChatClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) s.stop();
});

function fake(handler: Handler): FakeServer {
  const s = new FakeServer(handler);
  servers.push(s);
  return s;
}

async function client(s: FakeServer, opts: ClientOptions = {}): Promise<ChatClient> {
  const c = await ChatClient.connect({ port: s.port, reconnect: { initialDelayMs: 10, maxDelayMs: 20 }, pingIntervalMs: 0, ...opts });
  clients.push(c);
  return c;
}

async function until(cond: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

const msg = (mid: number, extra: Msg = {}): ChatMessage => ({ mid, ts: 1_800_000_000_000 + mid, from: "bob", group: "g", text: `t${mid}`, ...extra });
const ok = (req: Msg, fields: Msg = {}) => ({ t: "ok", id: req.id, ...fields });

test("an ack lost with the connection: the message found in sync by its cid settles the send, no msg event, no resend", async () => {
  let sentCid = "";
  const s = fake((c, req) => {
    if (req.t === "login") c.send(ok(req, { user: "alice", token: "tok" }));
    else if (req.t === "sync" && c.index === 0) c.send(ok(req, { msgs: [msg(10)], more: false }));
    else if (req.t === "send") {
      sentCid = req.cid;
      c.close(); // "committed" as mid 11, then the connection died before the ack
    } else if (req.t === "sync") {
      c.send(ok(req, { msgs: req.after < 11 ? [msg(11, { from: "alice", text: "mine", cid: sentCid })] : [], more: false }));
    }
  });
  const a = await client(s);
  const events: ChatMessage[] = [];
  a.on("msg", (m) => events.push(m));
  await a.login("alice", { pass: "password1" }, { since: 0 });
  expect(events.map((m) => m.mid)).toEqual([10]);
  const sent = await a.send({ group: "g", text: "mine" });
  expect(sent).toMatchObject({ mid: 11, from: "alice", text: "mine", cid: sentCid });
  expect(events.map((m) => m.mid)).toEqual([10]);
  expect(s.all("send").length).toBe(1);
  expect(s.conns[1]!.reqs.map((r) => r.t)).toEqual(["login", "sync"]);
  expect(s.conns[1]!.reqs[0]).toMatchObject({ user: "alice", token: "tok" });
  expect(s.conns[1]!.reqs[1]).toMatchObject({ after: 10 });
  expect(a.cursor).toBe(11);
});

test("pushes in the same read as the login reply are held until the catch-up, then deduplicated", async () => {
  const s = fake((c, req) => {
    if (req.t === "login" && c.index === 0) c.send(ok(req, { user: "alice", token: "tok" }));
    else if (req.t === "sync" && c.index === 0) {
      c.send(ok(req, { msgs: [msg(10)], more: false }));
      setTimeout(() => c.close(), 20);
    } else if (req.t === "login") {
      // reconnect: the reply, and right behind it in one write, two live pushes
      c.send(ok(req, { user: "alice", token: "tok" }), { t: "msg", ...msg(13) }, { t: "msg", ...msg(14) });
    } else if (req.t === "sync") {
      // paged: 11, 12 | 13 (13 also came live)
      if (req.after === 10) c.send(ok(req, { msgs: [msg(11), msg(12)], more: true }));
      else if (req.after === 12) {
        c.send(ok(req, { msgs: [msg(13)], more: false }), { t: "msg", ...msg(15) });
      }
    }
  });
  const a = await client(s, { syncPageSize: 2 });
  const events: number[] = [];
  a.on("msg", (m) => events.push(m.mid));
  await a.login("alice", { pass: "password1" }, { since: 0 });
  await until(() => events.includes(15), "the last message"); // 15 comes last: everything else is in by then
  expect(events).toEqual([10, 11, 12, 13, 14, 15]);
  expect(s.conns[1]!.reqs.filter((r) => r.t === "sync").map((r) => [r.after, r.limit])).toEqual([
    [10, 2],
    [12, 2],
  ]);
});

test("an ack ahead of pushes (a reader that fell behind, §5.4): earlier messages still come, the own one in the replay is skipped", async () => {
  let cid = "";
  let conn: FakeConn | undefined;
  const s = fake((c, req) => {
    if (req.t === "login") c.send(ok(req, { user: "alice", token: "tok" }));
    else if (req.t === "sync") c.send(ok(req, { msgs: [msg(10)], more: false }));
    else if (req.t === "send") {
      cid = req.cid;
      conn = c;
      c.send(ok(req, { mid: 12, ts: 1 })); // 11 is committed but not pushed yet: the connection is behind
    }
  });
  const a = await client(s);
  const events: number[] = [];
  a.on("msg", (m) => events.push(m.mid));
  await a.login("alice", { pass: "password1" }, { since: 0 });
  expect((await a.send({ group: "g", text: "mine" })).mid).toBe(12);
  // the replay: 11, then our own 12 (replays, unlike live pushes, include it), then 13
  conn!.send({ t: "msg", ...msg(11) }, { t: "msg", ...msg(12, { from: "alice", text: "mine", cid }) }, { t: "msg", ...msg(13) });
  await until(() => events.includes(13), "the replay");
  expect(events).toEqual([10, 11, 13]);
  expect(a.cursor).toBe(13);
});

test("an acked send above the cursor is skipped when a reconnect's sync brings it", async () => {
  const s = fake((c, req) => {
    if (req.t === "login") c.send(ok(req, { user: "alice", token: "tok" }));
    else if (req.t === "sync" && c.index === 0) c.send(ok(req, { msgs: [msg(10)], more: false }));
    else if (req.t === "send") {
      c.send(ok(req, { mid: 12, ts: 1 }));
      setTimeout(() => c.close(), 10);
    } else if (req.t === "sync") {
      c.send(ok(req, { msgs: req.after === 10 ? [msg(11), msg(12, { from: "alice", text: "mine", cid: "c-12" }), msg(13)] : [], more: false }));
    }
  });
  const a = await client(s);
  const events: number[] = [];
  a.on("msg", (m) => events.push(m.mid));
  await a.login("alice", { pass: "password1" }, { since: 0 });
  expect((await a.send({ group: "g", text: "mine", cid: "c-12" })).mid).toBe(12);
  await until(() => events.includes(13), "the catch-up");
  expect(events).toEqual([10, 11, 13]);
  expect(s.conns[1]!.reqs.find((r) => r.t === "sync")).toMatchObject({ after: 10 }); // the ack did not move the cursor
});

test("replies are matched by id, not by order", async () => {
  const held: [FakeConn, Msg][] = [];
  const s = fake((c, req) => {
    if (req.t === "join") held.push([c, req]);
    else if (req.t === "groups") {
      c.send(ok(req, { groups: [], invites: [] }));
      for (const [hc, hr] of held) hc.send(ok(hr, { group: hr.group, owner: "x", topic: "" }));
    }
  });
  const a = await client(s);
  const join = a.join("first");
  const groups = await a.groups();
  expect(groups).toEqual([]);
  expect(await join).toEqual({ group: "first", owner: "x", topic: "" });
});

test("bye too_large fails the biggest send in flight with TooLargeError; the others go through after reconnecting", async () => {
  const s = fake((c, req) => {
    if (req.t === "login") c.send(ok(req, { user: "alice", token: "tok" }));
    else if (req.t === "sync") c.send(ok(req, { msgs: [], more: false }));
    else if (req.t === "send") {
      if (typeof req.text === "string" && req.text.length > 1000) {
        c.send({ t: "error", code: "too_large", msg: "frame too large" }, { t: "bye", reason: "too_large" });
        c.close();
      } else c.send(ok(req, { mid: 100 + c.reqs.length, ts: 1 }));
    }
  });
  const a = await client(s);
  const byes: string[] = [];
  const errors: Error[] = [];
  a.on("bye", (b) => byes.push(b.reason));
  a.on("error", (e) => errors.push(e));
  await a.login("alice", { pass: "password1" });
  const big = a.send({ group: "g", text: "x".repeat(5000) });
  const small = a.send({ group: "g", text: "small" });
  expect(await big.catch((e) => e)).toBeInstanceOf(TooLargeError);
  expect((await small).text).toBe("small");
  expect(byes).toEqual(["too_large"]);
  expect(errors.map((e) => (e as { code?: string }).code)).toEqual(["too_large"]);
  expect(s.all("send").filter((r) => r.text !== "small").length).toBe(1); // the big one was not sent again
});

test("a server that stops answering pings is dropped and the client reconnects", async () => {
  const s = fake((c, req) => {
    if (req.t === "ping" && c.index > 0) c.send({ t: "pong", id: req.id });
    // the first connection ignores everything
  });
  const a = await client(s, { pingIntervalMs: 50, requestTimeoutMs: 100 });
  const states: string[] = [];
  a.on("state", (st) => states.push(st));
  await until(() => s.conns.length >= 2 && a.state === "open", "a second connection");
  expect(states.slice(0, 2)).toEqual(["connecting", "open"]);
  expect(s.conns[0]!.closed).toBe(true);
  expect(typeof (await a.ping())).toBe("number");
});

test("login 'now' probes for the newest mid and delivers only later messages", async () => {
  const mids = [3, 8, 9, 40, 41];
  const s = fake((c, req) => {
    if (req.t === "login") c.send(ok(req, { user: "alice", token: "tok" }));
    else if (req.t === "ping") c.send({ t: "pong", id: req.id });
    else if (req.t === "sync") {
      const rest = mids.filter((m) => m > req.after);
      c.send(ok(req, { msgs: rest.slice(0, req.limit).map((m) => msg(m)), more: rest.length > req.limit }));
    }
  });
  const a = await client(s);
  const events: number[] = [];
  a.on("msg", (m) => events.push(m.mid));
  await a.login("alice", { pass: "password1" });
  expect(a.cursor).toBe(41);
  expect(s.all("sync").every((r) => r.limit === 1)).toBe(true);
  s.conns[0]!.send({ t: "msg", ...msg(41) }, { t: "msg", ...msg(42) });
  await until(() => events.length > 0, "the live message");
  await a.ping(); // a round trip: anything pushed before the pong has arrived
  expect(events).toEqual([42]);
});
