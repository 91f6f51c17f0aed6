// The client with several server addresses, over loopback TCP against real
// server processes: it skips an address nothing listens on; when its server is
// killed (SIGKILL) and another comes up at the next address on the same SQLite
// file, it moves there, logs in with its token, catches up with `sync` and its
// queued sends are stored and delivered exactly once; it goes round the list
// (back to the first address); the backoff delay is waited once per round; an
// IPv6 literal in brackets works; and the terminal client's `--host a,b`.
// (Two standalone servers cannot share a database: "server B" is the same file
// opened by a new process on another port once A is dead, as a cluster node
// taking over would serve the same store.)
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import {
  AddressError,
  ChatClient,
  type ChatMessage,
  type ConnectionState,
  DisconnectedError,
  parseServers,
  type ReconnectOptions,
  type ServerAddress,
} from "../src/client/index.ts";
import { SOURCE_CMD, TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const ROOT = join(import.meta.dir, "..");
const CLI = [process.execPath, "run", join(ROOT, "src", "cli.ts")];
const tmp = tempDir("tcpchat-client-failover-");
const db = join(tmp.dir, "chat.db");
const PASS = "password1";
const clients: ChatClient[] = [];
const procs: Subprocess[] = [];
let server: RunningServer | undefined;

/** `n` distinct ports that were free a moment ago (all bound at once, then let go). */
function freePorts(n: number, hostname = "127.0.0.1"): number[] {
  const ls = Array.from({ length: n }, () => Bun.listen({ hostname, port: 0, socket: { data() {} } }));
  const ports = ls.map((l) => l.port);
  for (const l of ls) l.stop(true);
  return ports;
}

const [portA, portB, dead1, dead2] = freePorts(4) as [number, number, number, number];
const at = (port: number): ServerAddress => ({ host: "127.0.0.1", port });
const A = at(portA);
const B = at(portB);

/** The server on the shared file, at `port` (the explicit `--port` after the helper's `--port 0` wins). */
async function serve(port: number): Promise<RunningServer> {
  server = await startServer(["--db", db, "--port", String(port), ...TEST_ARGS]);
  expect(server.port).toBe(port);
  return server;
}

async function kill(s: RunningServer): Promise<void> {
  s.proc.kill("SIGKILL");
  await s.proc.exited;
}

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

async function client(servers: ServerAddress[], reconnect: ReconnectOptions = {}): Promise<ChatClient> {
  const c = await ChatClient.connect({ servers, reconnect });
  clients.push(c);
  return c;
}

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  if (server && server.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

describe("the first connection", () => {
  test("skips an address nothing listens on and logs in at the next", async () => {
    await serve(portA);
    const c = await client([at(dead1), A]);
    expect(c.server).toEqual(A);
    await c.register("alice", PASS);
    await c.login("alice", { pass: PASS });
    expect(c.state).toBe("ready");
    expect((await c.send({ user: "alice", text: "note to self" })).mid).toBeGreaterThan(0);
    await c.close();
    expect(c.server).toBeUndefined();
  });

  test("no address answers: DisconnectedError whose cause names every address", async () => {
    const err = await ChatClient.connect({ servers: [at(dead1), at(dead2)] }).catch((e) => e);
    expect(err).toBeInstanceOf(DisconnectedError);
    expect(err.cause).toBeInstanceOf(AggregateError);
    expect(err.cause.errors.length).toBe(2);
    expect(err.cause.message).toContain(`127.0.0.1:${dead1}: `);
    expect(err.cause.message).toContain(`; 127.0.0.1:${dead2}: `);
    // one address: as before, the transport's own error
    const one = await ChatClient.connect({ servers: [at(dead1)] }).catch((e) => e);
    expect(one).toBeInstanceOf(DisconnectedError);
    expect(one.cause).not.toBeInstanceOf(AggregateError);
    expect(await ChatClient.connect({ servers: [{ host: "127.0.0.1", port: 0 }] }).catch((e) => e)).toBeInstanceOf(AddressError);
  });
});

interface Sent {
  text: string;
  phase: "up" | "down" | "back";
  ack?: ChatMessage;
  ackedAt?: number;
}

describe("failover", () => {
  test(
    "A is killed, B comes up on the same file: both clients move to B, log in with their tokens, sync, and every send is stored and delivered exactly once",
    async () => {
      server ??= await serve(portA);
      expect(server.port).toBe(portA);
      // a comes back quickly; b only after a has flushed what it queued, so b must catch up with sync.
      const a = await client([A, B], { initialDelayMs: 20, maxDelayMs: 200 });
      const b = await client([A, B], { initialDelayMs: 1500, factor: 1, jitter: 0 });
      await a.register("carol", PASS);
      await b.register("dave", PASS);
      await a.login("carol", { pass: PASS });
      await b.login("dave", { pass: PASS });
      const tokens = [a.token, b.token];
      await a.createGroup("ops");
      await b.join("ops");
      expect([a.server, b.server]).toEqual([A, A]);

      const got = { a: [] as ChatMessage[], b: [] as ChatMessage[] };
      a.on("msg", (m) => got.a.push(m));
      b.on("msg", (m) => got.b.push(m));
      const states = { a: [] as ConnectionState[], b: [] as ConnectionState[] };
      a.on("state", (s) => states.a.push(s));
      let bReady = 0;
      b.on("state", (s) => {
        states.b.push(s);
        if (s === "ready") bReady = performance.now();
      });

      let phase: Sent["phase"] = "up";
      let running = true;
      const sent = { a: [] as Sent[], b: [] as Sent[] };
      const acks: Promise<ChatMessage>[] = [];
      // Each sends every few ms without waiting for acks, so some are in flight when A dies.
      const pump = async (c: ChatClient, me: "a" | "b", other: string) => {
        for (let i = 0; running; i++) {
          const s: Sent = { text: `${me}-${i}`, phase };
          sent[me].push(s);
          const target = i % 3 === 2 ? { user: other } : { group: "ops" };
          const ack = c.send({ ...target, text: s.text }).then((m) => {
            s.ack = m;
            s.ackedAt = performance.now();
            return m;
          });
          ack.catch(() => {}); // awaited below
          acks.push(ack);
          await Bun.sleep(3);
        }
      };
      const pumps = [pump(a, "a", "dave"), pump(b, "b", "carol")];

      await Bun.sleep(300);
      await kill(server);
      phase = "down";
      await Bun.sleep(400); // both addresses refuse: the clients go round the list, queueing sends
      const pendingWhileDown = a.pendingSends + b.pendingSends;
      await serve(portB);
      phase = "back";
      await Bun.sleep(300);
      await a.whenReady();
      await b.whenReady();
      await Bun.sleep(200);
      running = false;
      await Promise.all(pumps);
      await Promise.all(acks); // every send, including those made while no server was up, is acknowledged

      expect([a.server, b.server]).toEqual([B, B]);
      // the same tokens: they logged in with them, not with a password (they have none)
      expect([a.token, b.token]).toEqual(tokens);
      expect(states.a.slice(0, 1)).toEqual(["connecting"]);
      expect(states.a.slice(-3)).toEqual(["open", "syncing", "ready"]);
      expect(states.b).toEqual(["connecting", "open", "syncing", "ready"]);
      expect(pendingWhileDown).toBeGreaterThan(0);

      await until(() => got.b.length === sent.a.length && got.a.length === sent.b.length, "all deliveries");
      await a.ping();
      await b.ping();
      for (const [me, other, name] of [
        ["a", "b", "carol"],
        ["b", "a", "dave"],
      ] as const) {
        const mine = sent[me];
        const theirs = got[other];
        // what the other received from me is exactly what I sent and had acked, in my order, once each
        expect(theirs.map((m) => m.text)).toEqual(mine.map((s) => s.text));
        expect(theirs.map((m) => m.mid)).toEqual(mine.map((s) => s.ack!.mid));
        for (let i = 1; i < theirs.length; i++) expect(theirs[i]!.mid).toBeGreaterThan(theirs[i - 1]!.mid);
        for (const p of ["up", "down", "back"] as const) expect(mine.filter((s) => s.phase === p).length).toBeGreaterThan(0);
        expect(got[me].filter((m) => m.from === name)).toEqual([]);
      }
      // b was away when some of a's messages were acknowledged by B: it caught those up with sync
      expect(sent.a.filter((s) => s.phase !== "up" && s.ackedAt! < bReady).length).toBeGreaterThan(0);

      // B's store holds every message once: retries by cid stored nothing twice
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
      const stored = [...(await texts({ group: "ops" })), ...(await texts({ user: "dave" }))];
      expect(stored.length).toBe(sent.a.length + sent.b.length);
      expect(kinds).toEqual(["create", "join"]);
      expect(new Set(stored).size).toBe(stored.length);
    },
    60_000,
  );

  test(
    "round robin: B dies too and the server comes back at A's address; the client goes back to A",
    async () => {
      expect(server!.port).toBe(portB);
      const a = await client([A, B], { initialDelayMs: 20, maxDelayMs: 100 });
      const b = await client([A, B], { initialDelayMs: 20, maxDelayMs: 100 });
      expect([a.server, b.server]).toEqual([B, B]); // A is down: the first connection skipped it
      await a.login("carol", { pass: PASS });
      await b.login("dave", { pass: PASS });
      const got: ChatMessage[] = [];
      b.on("msg", (m) => got.push(m));
      await kill(server!);
      const queued = a.send({ user: "dave", text: "sent while nothing was up" });
      await Bun.sleep(300);
      expect(a.state).toBe("connecting");
      await serve(portA);
      const m = await queued;
      await b.whenReady();
      expect([a.server, b.server]).toEqual([A, A]);
      await until(() => got.length === 1, "the queued message");
      expect(got).toEqual([m]);
    },
    30_000,
  );
});

describe("reconnect timing over a list", () => {
  test("the backoff delay comes once per round: a dead address in the middle costs none; the list is used in turn", async () => {
    // Two listeners that accept and close at once (no login: the client just reconnects), a dead address between them.
    const accepts: { who: string; t: number }[] = [];
    const listener = (who: string) =>
      Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          open(s) {
            accepts.push({ who, t: performance.now() });
            if (accepts.length > 1) s.end(); // keep the first connection until the test starts the cycle
          },
          data() {},
        },
      });
    const l1 = listener("l1");
    const l2 = listener("l2");
    try {
      const DELAY = 400;
      const c = await client([at(l1.port), at(dead1), at(l2.port)], { initialDelayMs: DELAY, factor: 1, jitter: 0 });
      expect(c.server).toEqual(at(l1.port));
      const lost = performance.now();
      const first = accepts.length;
      // the first listener closes this connection: the client waits DELAY, tries dead1, then l2 at once
      l1.stop(true);
      const l1b = Bun.listen({
        hostname: "127.0.0.1",
        port: l1.port,
        socket: {
          open(s) {
            accepts.push({ who: "l1", t: performance.now() });
            s.end();
          },
          data() {},
        },
      });
      try {
        await until(() => accepts.length >= first + 3, "three more connections", 10_000);
        const seen = accepts.slice(first, first + 3);
        expect(seen.map((x) => x.who)).toEqual(["l2", "l1", "l2"]);
        // each arrives one delay after the previous close, not two: dead1 was tried at once, l1 again after one delay
        const gaps = [seen[0]!.t - lost, seen[1]!.t - seen[0]!.t, seen[2]!.t - seen[1]!.t];
        for (const g of gaps) {
          expect(g).toBeGreaterThanOrEqual(DELAY - 20);
          expect(g).toBeLessThan(2 * DELAY - 20);
        }
      } finally {
        await c.close();
        l1b.stop(true);
      }
    } finally {
      l2.stop(true);
    }
  }, 20_000);
});

describe("IPv6", () => {
  test("[::1]:port: the client connects, logs in and sends", async () => {
    const [port6] = freePorts(1, "::1") as [number];
    const proc = Bun.spawn([...SOURCE_CMD, "--host", "::1", "--port", String(port6), "--http-port", "0", "--db", ":memory:", ...TEST_ARGS], {
      cwd: ROOT,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    procs.push(proc);
    let out = "";
    void (async () => {
      for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
    })();
    await until(() => out.includes("listening on"), "the IPv6 server", 15_000);
    const c = await client(parseServers(`127.0.0.1:${dead1},[::1]:${port6}`));
    expect(c.server).toEqual({ host: "::1", port: port6 });
    await c.register("v6user", PASS);
    await c.login("v6user", { pass: PASS });
    expect((await c.send({ user: "v6user", text: "over IPv6" })).text).toBe("over IPv6");
    await c.close();
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  }, 30_000);
});

describe("the terminal client", () => {
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const p = Bun.spawn([...CLI, ...args], {
      cwd: tmp.dir,
      env: { PATH: process.env.PATH ?? "", TCPCHAT_PASSWORD: PASS },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    procs.push(p);
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, stdout, stderr };
  }

  test("--host dead,live: sends through the live one; no address answers: exit 1 naming each; a bad list: exit 2", async () => {
    const live = server!.port;
    const ok = await cli(["--host", `127.0.0.1:${dead1},127.0.0.1:${live}`, "--user", "erin", "--register", "--send", "hi", "--to", "@erin", "--json"]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).text).toBe("hi");
    // addresses without a port take --port
    const withPort = await cli(["--host", `127.0.0.1:${dead1},127.0.0.1`, "--port", String(live), "--user", "erin", "--send", "again", "--to", "@erin"]);
    expect(withPort.code).toBe(0);

    const down = await cli(["--host", `127.0.0.1:${dead1},[::1]:${dead2}`, "--user", "erin", "--send", "x", "--to", "@erin"]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot connect to 127.0.0.1:${dead1}, [::1]:${dead2}: 127.0.0.1:${dead1}: `);
    expect(down.stderr).toContain(`; [::1]:${dead2}: `);

    const bad = await cli(["--host", "a:1,,b:2", "--user", "erin", "--send", "x", "--to", "@erin"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('tcpchat chat: --host: the server address list "a:1,,b:2" has an empty entry (number 2)');
    expect(bad.stderr).toContain("--host ADDR[,ADDR]");
  }, 30_000);
});
