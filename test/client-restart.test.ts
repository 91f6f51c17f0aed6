// The client across server restarts: SIGTERM, then the server starts again on the
// same database file and the same port while two clients keep sending. From each
// application's point of view every acknowledged message of the other arrives
// exactly once, in order; sends made while the server is down complete after it
// returns, stored once.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { ChatClient, type ChatMessage, ClosedError, type ConnectionState, UnauthorizedError } from "../src/client/index.ts";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const tmp = tempDir("tcpchat-client-restart-");
const db = join(tmp.dir, "chat.db");
const PASS = "password1";
let server: RunningServer | undefined;
const clients: ChatClient[] = [];

/** A port that was free a moment ago: bind port 0, read it, let go. */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

const port = freePort();
/** `--port` given explicitly (after the helper's `--port 0`: the last flag wins), so a restart reuses it. */
const ARGS = ["--db", db, "--port", String(port), ...TEST_ARGS];

/** Stops the server (SIGTERM: graceful, exit 0; SIGKILL: a crash), waits `downMs`, starts it again on the same port and file. */
async function restart(downMs: number, whileDown: () => void = () => {}, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
  if (signal === "SIGTERM") expect(await server!.stop()).toBe(0);
  else {
    server!.proc.kill("SIGKILL");
    await server!.proc.exited;
  }
  whileDown();
  await Bun.sleep(downMs);
  server = await startServer(ARGS);
  expect(server.port).toBe(port);
}

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

afterAll(async () => {
  for (const c of clients) await c.close();
  if (server && server.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

interface Sent {
  text: string;
  phase: "up" | "down" | "back";
  ack?: ChatMessage;
  ackedAt?: number;
}

const SCENARIOS = [
  { signal: "SIGTERM", names: ["alice", "bob"] },
  { signal: "SIGKILL", names: ["carol", "dave"] },
] as const;

test.each(SCENARIOS)(
  "two clients keep sending through a restart ($signal): every acked message reaches the other exactly once, in order",
  async ({ signal, names: [nameA, nameB] }) => {
    server ??= await startServer(ARGS);
    // a comes back quickly; b only after a has flushed what it queued, so b must catch up with sync.
    const a = await ChatClient.connect({ port, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    const b = await ChatClient.connect({ port, reconnect: { initialDelayMs: 1500, factor: 1, jitter: 0 } });
    clients.push(a, b);
    await a.register(nameA, PASS);
    await b.register(nameB, PASS);
    await a.login(nameA, { pass: PASS });
    await b.login(nameB, { pass: PASS });
    const room = `room-${nameA}`;
    await a.createGroup(room);
    await b.join(room);

    const got = { a: [] as ChatMessage[], b: [] as ChatMessage[] };
    a.on("msg", (m) => got.a.push(m));
    b.on("msg", (m) => got.b.push(m));
    const byes: string[] = [];
    a.on("bye", (x) => byes.push(`a:${x.reason}`));
    b.on("bye", (x) => byes.push(`b:${x.reason}`));
    const bStates: [ConnectionState, number][] = [];
    b.on("state", (s) => bStates.push([s, performance.now()]));

    let phase: Sent["phase"] = "up";
    let running = true;
    const sent = { a: [] as Sent[], b: [] as Sent[] };
    const acks: Promise<ChatMessage>[] = [];
    // Each client sends every few ms without waiting for acks: group messages and direct ones.
    const pump = async (c: ChatClient, me: "a" | "b", other: string) => {
      for (let i = 0; running; i++) {
        const s: Sent = { text: `${me}-${i}`, phase };
        sent[me].push(s);
        const target = i % 3 === 2 ? { user: other } : { group: room };
        const ack = c.send({ ...target, text: s.text }).then((m) => {
          s.ack = m;
          s.ackedAt = performance.now();
          return m;
        });
        ack.catch(() => {}); // awaited below; this only keeps a failure from also being reported as unhandled
        acks.push(ack);
        await Bun.sleep(3);
      }
    };
    const pumps = [pump(a, "a", nameB), pump(b, "b", nameA)];

    await Bun.sleep(300);
    let pendingWhileDown = 0;
    await restart(
      400,
      () => {
        phase = "down";
      },
      signal,
    );
    pendingWhileDown = a.pendingSends + b.pendingSends;
    phase = "back";
    await Bun.sleep(300);
    await a.whenReady();
    await b.whenReady();
    await Bun.sleep(200);
    running = false;
    await Promise.all(pumps);
    await Promise.all(acks); // every send, including those made while the server was down, is acknowledged

    // Wait until each side has everything the other had acked, then one round trip more for strays.
    await until(() => got.b.length === sent.a.length && got.a.length === sent.b.length, "all deliveries");
    await a.ping();
    await b.ping();

    for (const [me, other] of [
      ["a", "b"],
      ["b", "a"],
    ] as const) {
      const mine = sent[me];
      const theirs = got[other];
      // what the other received from me is exactly what I sent and had acked, in my order
      expect(theirs.map((m) => m.text)).toEqual(mine.map((s) => s.text));
      expect(theirs.map((m) => m.mid)).toEqual(mine.map((s) => s.ack!.mid));
      // mids increase: per conversation order holds because the whole stream is ordered
      for (let i = 1; i < theirs.length; i++) expect(theirs[i]!.mid).toBeGreaterThan(theirs[i - 1]!.mid);
      // sends were made in every phase, including while the server was down
      expect(mine.filter((s) => s.phase === "down").length).toBeGreaterThan(0);
      expect(mine.filter((s) => s.phase === "back").length).toBeGreaterThan(0);
      // nothing of my own came back to me as a msg event
      expect(got[me].filter((m) => m.from === (me === "a" ? nameA : nameB))).toEqual([]);
    }
    expect(pendingWhileDown).toBeGreaterThan(0);
    // a graceful stop says goodbye; a crash cannot
    expect(byes.sort()).toEqual(signal === "SIGTERM" ? ["a:shutdown", "b:shutdown"] : []);
    // b was away when some of a's messages were acknowledged: it caught those up with sync
    const bBack = bStates.filter(([s]) => s === "ready").at(-1)![1];
    expect(sent.a.filter((s) => s.phase !== "up" && s.ackedAt! < bBack).length).toBeGreaterThan(0);
    expect(bStates.map(([s]) => s)).toEqual(["connecting", "open", "syncing", "ready"]);

    // the server stored every message once: cids made the retries idempotent
    // (the group's log also holds its create and join entries, which are no messages: counted apart)
    const kinds: string[] = [];
    const texts = async (target: { group: string } | { user: string }) => {
      const out: string[] = [];
      let after = 0;
      for (;;) {
        const page = await a.history(target, { after, limit: 500 });
        for (const m of page.msgs) if (m.kind === undefined) out.push(m.text!);
        else kinds.push(m.kind);
        if (!page.more) return out;
        after = page.msgs.at(-1)!.mid;
      }
    };
    const stored = [...(await texts({ group: room })), ...(await texts({ user: nameB }))];
    expect(stored.length).toBe(sent.a.length + sent.b.length);
    expect(kinds).toEqual(["create", "join"]);
    expect(new Set(stored).size).toBe(stored.length);
  },
  60_000,
);

test(
  "a token revoked while away closes the client on reconnect; its waiting sends reject",
  async () => {
    const a1 = await ChatClient.connect({ port, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    clients.push(a1);
    await a1.login("alice", { pass: PASS });
    const a2 = await ChatClient.connect({ port });
    clients.push(a2);
    await a2.login("alice", { token: a1.token! });
    await a2.logout(); // a token login shares the token: this revokes a1's too
    const errors: Error[] = [];
    a1.on("error", (e) => errors.push(e));
    let pending: Promise<unknown> | undefined;
    await restart(100, () => {
      pending = a1.send({ user: "bob", text: "never" }).catch((e) => e);
    });
    expect(await pending).toBeInstanceOf(ClosedError);
    expect(a1.state).toBe("closed");
    expect(errors.length).toBe(1);
    expect(errors[0]).toBeInstanceOf(UnauthorizedError);
  },
  30_000,
);

test(
  "a client that was down for a while catches up from where it was, with messages sent meanwhile",
  async () => {
    const a = await ChatClient.connect({ port });
    // b comes back only after 3 s: a's messages meanwhile reach it through sync (1 s was once too
    // short on a loaded machine: the restart and a's 20 sends took longer, and b was back first)
    const b = await ChatClient.connect({ port, reconnect: { initialDelayMs: 3000, factor: 1, jitter: 0 } });
    clients.push(a, b);
    await a.login("alice", { pass: PASS });
    await b.login("bob", { pass: PASS });
    const got: ChatMessage[] = [];
    b.on("msg", (m) => got.push(m));
    const before = await a.send({ user: "bob", text: "before" });
    await until(() => got.length === 1, "the first message");
    // b's connection is dropped; while it is gone a keeps talking
    await restart(50);
    await a.whenReady();
    const during: ChatMessage[] = [];
    for (let i = 0; i < 20; i++) during.push(await a.send({ user: "bob", text: `while away ${i}` }));
    expect(b.state).not.toBe("ready");
    await until(() => got.length === 21, "b to catch up");
    expect(got).toEqual([before, ...during]);
  },
  30_000,
);
