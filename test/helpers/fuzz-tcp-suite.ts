// Fuzzing over TCP (part (b) of test/fuzz.test.ts, which describes it): four connections
// of fuzz frames at once, while a bystander keeps doing ping and send/receive round trips,
// and two hostile clients from addresses of their own never read what they are sent; then
// the regression inputs of test/fuzz/regressions/, each on a fresh server process with the
// shipped limits.
//
// It runs against a "target": one server on a SQLite file (test/fuzz.test.ts), or a
// cluster of nodes on one PostgreSQL and NATS (test/cluster-fuzz.test.ts), every new
// connection on the next node in turn and the bystander's two users on different nodes.
// Bounds that are per process (RSS) hold for each node.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DEFAULTS } from "../../src/config.ts";
import { Conn } from "./attack.ts";
import { formatHostile, FuzzConn, HostileWorker, memOf } from "./fuzz-conn.ts";
import { FIX, oversizedHeader, randomBody, readFuzzDir, Rng, shortHeader, splitFrames, truncatedFrame } from "./fuzz-gen.ts";
import { concat, Enc, enc, framed, hex } from "./fuzz-msgpack.ts";
import { DOC_BYE_REASONS, DOC_CODES, expectFor } from "./fuzz-oracle.ts";
import { TEST_ARGS } from "./server.ts";

const MAX_FRAME = DEFAULTS.maxFrame;
/** Peak RSS bound for each server process. */
const SERVER_RSS_LIMIT_MB = 300;

const corpusBodies = readFuzzDir("corpus").flatMap((f) => f.bodies);
const regressions = readFuzzDir("regressions");

function note(list: string[], msg: string): void {
  if (list.length < 40) list.push(msg);
}

function codesOk(codes: Map<string, number>): string[] {
  return [...codes.keys()].filter((c) => !(DOC_CODES as readonly string[]).includes(c) || c === "internal");
}

/** A server process of its own for one regression input. */
export interface FreshServer {
  port: number;
  pid: number;
  /** The user a post-login input logs in as (registered first). */
  user: string;
  alive(): boolean;
  exitCode(): number | null;
  dispose(): Promise<void>;
}

export interface FuzzTcpTarget {
  /** What the report calls it. */
  name: string;
  /** How many server processes. */
  nodes: number;
  /** Starts the server processes for the fuzzing, on a fresh store, with `args` beyond the store (and bus). */
  start(args: string[]): Promise<void>;
  /** The port of node i. */
  port(i: number): number;
  /** The port for the next connection: the one server's, or the next node's in turn. */
  connectPort(): number;
  /** Whether each server process still runs. */
  alive(): boolean[];
  pids(): number[];
  /** SIGTERM to every server process; their exit codes. */
  stop(): Promise<number[]>;
  /** Everything the server processes printed. */
  output(): string;
  /** A fresh server process with the shipped configuration for regression input k. */
  fresh(k: number): Promise<FreshServer>;
  close(): Promise<void>;
}

export interface FuzzTcpOptions {
  seed: number;
  /** Lines for the report printed at the end (shared with the in-process part). */
  report: string[];
  /** Invalid frames the in-process part saw: the last test then checks both (test/fuzz.test.ts). */
  inProcessOutput?: string[];
}

export function fuzzTcpSuite(open: () => Promise<FuzzTcpTarget>, { seed: SEED, report, inProcessOutput }: FuzzTcpOptions): void {
  describe("over TCP: the real server process", () => {
    let target: FuzzTcpTarget;
    const WORKERS = 4;
    const WORKER_PASS = "password1";
    const problems: string[] = [];
    const tcpOutput: string[] = [];
    const stats = { frames: 0, bytes: 0, batches: 0, reconnects: 0, oversized: 0, truncated: 0, codes: new Map<string, number>() };
    const bystander = { rounds: 0, failures: [] as string[], maxMs: 0 };
    const rss = { start: 0, max: 0, end: 0, hwm: 0 };
    /** The hostile clients' addresses (any of 127.0.0.0/8 is local); the downloading one's user, and the large file it asks for. */
    const FLOOD_ADDR = "127.0.0.77";
    const DOWNLOAD_ADDR = "127.0.0.78";
    const HOARD = { user: "fzh", group: "hoard", token: "", mid: 0, size: 3_000_000 };
    /**
     * Seconds a connection may leave its output unread (--write-timeout, 30 by default): short
     * enough that the flooding hostile client is closed for it within the fuzzing. The fuzz
     * workers and the bystander read everything as it comes, so they never meet it.
     */
    const WRITE_TIMEOUT = 4;

    beforeAll(async () => {
      // Rate limits off (the fuzz is about what frames do once read), no per-address login
      // throttling (every connection comes from 127.0.0.1) nor logins per user (the workers
      // log in again and again), and frames up to --max-frame before login too (the smaller
      // pre-login limit is tested in test/attack/conn.test.ts), a shorter --write-timeout (see
      // WRITE_TIMEOUT); everything else as shipped. So the hostile clients meet no rate and no
      // refusal limit: what closes them is unread output, at --write-timeout or past --max-queue.
      target = await open();
      await target.start([
        ...TEST_ARGS,
        ...["--rate-msgs", "0", "--rate-bytes", "0", "--rate-msgs-addr", "0", "--rate-bytes-addr", "0", "--max-refused", "0"],
        ...["--login-fails-addr", "0", "--login-free", "0", "--logins-per-user", "0", "--login-concurrent-addr", "0"],
        ...["--max-frame-login", String(MAX_FRAME), "--write-timeout", String(WRITE_TIMEOUT)],
      ]);
      const c = await FuzzConn.connect(target.connectPort());
      for (const u of [FIX.user, FIX.user2, "watch_a", "watch_b", HOARD.user, ...Array.from({ length: WORKERS }, (_, i) => `fzw${i}`)])
        await c.ok({ t: "register", user: u, pass: WORKER_PASS });
      c.close();
      // The file the downloading client asks for, again and again without reading: 3 MB, so each
      // download may answer with max_chunk (1 MiB, PROTOCOL.md §3.9) and a burst of 16 passes
      // --max-queue (16 MiB) of unread replies. Uploaded in chunks, sent in a group of its own.
      const h = await Conn.open(target.connectPort(), { localAddress: DOWNLOAD_ADDR });
      HOARD.token = (await h.ok({ t: "login", user: HOARD.user, pass: WORKER_PASS })).token;
      await h.ok({ t: "create", group: HOARD.group });
      // The group every worker joins: its owner is no worker, so no fuzzed request can close it.
      await h.ok({ t: "create", group: FIX.group });
      const data = new Uint8Array(HOARD.size).map((_, i) => (i * 7919) >>> 3);
      const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
      const up = await h.ok({ t: "upload", size: data.length, sha256 });
      for (let off = up.offset as number; off < data.length; ) {
        const r = await h.ok({ t: "chunk", upload: up.upload, offset: off, data: data.subarray(off, off + 1024 * 1024) }, 30_000);
        off = r.offset as number;
      }
      const file = { upload: up.upload, name: "big.bin", type: "application/octet-stream" };
      HOARD.mid = (await h.ok({ t: "send", group: HOARD.group, file }, 30_000)).mid;
      h.destroy();
    }, 60_000); // a cluster starts PostgreSQL and NATS here too

    afterAll(async () => {
      await target?.close();
      console.log(`fuzz.test seed ${SEED}${target ? ` (over TCP: ${target.name})` : ""}\n${report.join("\n")}`);
    });

    async function loggedIn(user: string, port: number): Promise<FuzzConn> {
      const c = await FuzzConn.connect(port, 2 ** 40);
      await c.ok({ t: "login", user, pass: WORKER_PASS });
      return c;
    }

    async function runBystander(done: () => boolean): Promise<void> {
      // on different nodes of a cluster: the round trips cross NATS
      const a = await loggedIn("watch_a", target.port(0));
      const b = await loggedIn("watch_b", target.port(1 % target.nodes));
      await a.ok({ t: "create", group: "watchers" });
      await b.ok({ t: "join", group: "watchers" });
      const seen = new Set<string>();
      a.onPush = b.onPush = (m) => {
        if (m.t === "msg" && typeof m.cid === "string") seen.add(m.cid);
      };
      try {
        while (!done()) {
          const t0 = performance.now();
          const pong = await a.request({ t: "ping" }, 20000);
          if (pong.t !== "pong") throw new Error(`ping: ${JSON.stringify(pong)}`);
          const cid = `w${bystander.rounds}`;
          await a.ok({ t: "send", group: "watchers", text: `round ${bystander.rounds}`, cid }, 20000);
          if (!(await b.until(() => seen.has(cid), 20000))) throw new Error(`group message ${cid} did not reach the other bystander`);
          const cid2 = `${cid}-dm`;
          await b.ok({ t: "send", user: "watch_a", text: "and back", cid: cid2 }, 20000);
          if (!(await a.until(() => seen.has(cid2), 20000))) throw new Error(`direct message ${cid2} did not arrive`);
          bystander.rounds++;
          bystander.maxMs = Math.max(bystander.maxMs, performance.now() - t0);
          await Bun.sleep(5);
        }
      } catch (e) {
        bystander.failures.push(String(e));
      } finally {
        tcpOutput.push(...a.invalid, ...b.invalid);
        a.close();
        b.close();
      }
    }

    /** One fuzz connection: batches of random frames, each batch's replies counted, state changed between batches. */
    async function runWorker(w: number, rng: Rng, deadline: number): Promise<void> {
      const user = `fzw${w}`;
      let conn = await FuzzConn.connect(target.connectPort(), 2 ** 40);
      const retire = () => {
        for (const c of conn.codes) stats.codes.set(c[0], (stats.codes.get(c[0]) ?? 0) + c[1]);
        tcpOutput.push(...conn.invalid);
        if (conn.afterBye > 0) note(problems, `worker ${w}: ${conn.afterBye} frames after bye ${conn.bye}`);
        if (conn.bye !== undefined && !DOC_BYE_REASONS.includes(conn.bye)) note(problems, `worker ${w}: undocumented bye ${conn.bye}`);
        conn.kill();
      };
      const reconnect = async () => {
        retire();
        stats.reconnects++;
        conn = await FuzzConn.connect(target.connectPort(), 2 ** 40);
      };
      for (let b = 0; Date.now() < deadline && problems.length < 20; b++) {
        // the state for this batch: logged in (as this worker's user) or not
        const wantLogin = rng.chance(0.6);
        if (conn.closed || conn.bye !== undefined) await reconnect();
        const probe = await conn.request({ t: "groups" }, 20000);
        const isIn = probe.t === "ok";
        if (wantLogin && !isIn) {
          const r = await conn.request({ t: "login", user, pass: WORKER_PASS }, 20000);
          if (r.t !== "ok") note(problems, `worker ${w}: fixture login: ${JSON.stringify(r)}`);
          else await conn.request({ t: "join", group: FIX.group }, 20000);
        } else if (!wantLogin && isIn) await reconnect();
        const base = conn.replies;
        const bodies = Array.from({ length: rng.int(1, 60) }, () => randomBody(rng, corpusBodies, MAX_FRAME).body);
        if (w === 0 && b === 3) {
          // once: a frame exactly at the limit
          const e = new Enc().mapHeader(3).str("t").str("ping").str("id").int(9).str("pad");
          const pad = MAX_FRAME - e.done().length - 5;
          bodies.push(e.binHeader(pad, "32").bytes(new Uint8Array(pad)).done());
        }
        const parts = bodies.map((x) => framed(x));
        const tail = rng.float();
        if (tail < 0.04) parts.push(oversizedHeader(rng, MAX_FRAME).stream);
        else if (tail < 0.08) parts.push(truncatedFrame(rng, corpusBodies).stream);
        else if (tail < 0.1) parts.push(shortHeader(rng, corpusBodies).stream);
        const stream = concat(parts);
        const framing = splitFrames(stream, MAX_FRAME);
        const want = framing.bodies.length + (framing.oversized ? 1 : 0);
        const where = `seed ${SEED} worker ${w} batch ${b}: ${want} replies due to ${stream.length} bytes ${hex(stream, 120)}`;
        // in random pieces
        for (let at = 0; at < stream.length; ) {
          const n = rng.int(1, 65536);
          conn.writeRaw(stream.subarray(at, at + n));
          at += n;
        }
        stats.batches++;
        stats.frames += framing.bodies.length;
        stats.bytes += stream.length;
        if (framing.oversized) {
          stats.oversized++;
          // closed at the header: replies still pending then (held frames, uncommitted sends) are not sent (§1, §5.3)
          const last = () => conn.anonymous[conn.anonymous.length - 1];
          if (!(await conn.until(() => conn.closed, 20000))) note(problems, `${where}: not closed after an oversized header`);
          else if (conn.bye !== "too_large" || last()?.code !== "too_large" || conn.replies > base + want)
            note(problems, `${where}: ${conn.replies - base} replies, bye ${conn.bye}, last anonymous reply ${JSON.stringify(last())}`);
          await reconnect();
          continue;
        }
        if (framing.partial > 0) {
          stats.truncated++;
          if (!(await conn.until(() => conn.replies >= base + want, 20000))) note(problems, `${where}: ${conn.replies - base} replies within 20 s`);
          await reconnect();
          continue;
        }
        // a sentinel ping after the batch; then every frame must have had its one reply
        const pong = await conn.request({ t: "ping" }, 20000).catch((e) => ({ t: "lost", e: String(e) }));
        if (pong.t !== "pong") {
          if (conn.bye !== undefined && DOC_BYE_REASONS.includes(conn.bye) && conn.bye !== "too_large") {
            await reconnect(); // login_timeout and the like: documented, not a failure
            continue;
          }
          note(problems, `${where}: sentinel ping: ${JSON.stringify(pong)} (bye ${conn.bye})`);
          await reconnect();
          continue;
        }
        if (!(await conn.until(() => conn.replies >= base + want + 1, 20000))) note(problems, `${where}: ${conn.replies - base - 1} replies within 20 s`);
        else if (conn.replies !== base + want + 1) note(problems, `${where}: ${conn.replies - base - 1} replies`);
      }
      retire();
    }

    /**
     * A round of the flooding hostile client: 1000 pings and 2000 fuzz frames of at most 1 KiB
     * (their replies are what piles up unread), none a well-formed login or register (so it
     * stays before login and takes no password-hashing slot from the fuzz workers).
     */
    function floodRounds(rng: Rng): () => Uint8Array {
      const pool: Uint8Array[] = [];
      while (pool.length < 1500) {
        const body = randomBody(rng, corpusBodies, MAX_FRAME).body;
        const exp = expectFor(body, { loggedIn: false });
        if (body.length <= 1024 && !(exp.valid && (exp.type === "login" || exp.type === "register"))) pool.push(framed(body));
      }
      const ping = framed(enc({ t: "ping" }));
      return () => concat(Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? ping : rng.pick(pool))));
    }

    test("4 connections of fuzz and 2 hostile ones that never read, while a bystander keeps its round trips: every frame answered, the bystander never fails, the hostile ones closed by the server, RSS bounded", async () => {
      const rng = new Rng(SEED ^ 0x5555);
      // RSS figures are the largest of the server processes'.
      const rssOf = (pick: (m: { rss: number; hwm: number }) => number) => Math.max(...target.pids().map((pid) => pick(memOf(pid))));
      rss.start = rssOf((m) => m.rss);
      const sampler = setInterval(() => {
        if (target.alive().every(Boolean)) rss.max = Math.max(rss.max, rssOf((m) => m.rss));
      }, 100);
      let fuzzing = true;
      const watch = runBystander(() => !fuzzing);
      // Each hostile client: a connection at a time, replaced as soon as the server closes it.
      const hostile = [
        new HostileWorker("flood", FLOOD_ADDR, { port: target.connectPort(), floodRound: floodRounds(new Rng(SEED ^ 0x7777)), gapMs: 100 }),
        new HostileWorker("download", DOWNLOAD_ADDR, { port: target.connectPort(), download: HOARD, gapMs: 1000 }),
      ];
      const deadline = Date.now() + 14_000;
      await Promise.all(Array.from({ length: WORKERS }, (_, w) => runWorker(w, rng.fork(), deadline).catch((e) => note(problems, `worker ${w}: ${String(e)}`))));
      const [flood, download] = await Promise.all(hostile.map((h) => h.stop()));
      fuzzing = false;
      await watch;
      clearInterval(sampler);
      rss.end = rssOf((m) => m.rss);
      rss.hwm = rssOf((m) => m.hwm);
      report.push(
        `TCP: ${stats.frames} frames (${(stats.bytes / 1e6).toFixed(1)} MB) in ${stats.batches} batches on ${WORKERS} connections, ${stats.oversized} oversized headers, ` +
          `${stats.truncated} truncated, ${stats.reconnects} reconnects; replies ${JSON.stringify(Object.fromEntries(stats.codes))}`,
        `TCP bystander: ${bystander.rounds} round trips (ping, group send + push, DM + push), slowest ${bystander.maxMs.toFixed(0)} ms, failures ${bystander.failures.length}`,
        `TCP server RSS: ${rss.start.toFixed(0)} MiB before, ${rss.max.toFixed(0)} MiB max sampled, ${rss.end.toFixed(0)} MiB after; peak (VmHWM) ${rss.hwm.toFixed(0)} MiB`,
        `TCP hostile ${formatHostile(flood!)}`,
        `TCP hostile ${formatHostile(download!)}`,
      );
      expect(problems).toEqual([]);
      expect({ flood: flood!.errors, download: download!.errors }).toEqual({ flood: [], download: [] });
      // each hostile client was closed by the server at least once (at --write-timeout; past --max-queue)
      expect(flood!.closedByServer).toBeGreaterThanOrEqual(1);
      expect(download!.closedByServer).toBeGreaterThanOrEqual(1);
      expect(codesOk(stats.codes)).toEqual([]);
      expect(bystander.failures).toEqual([]);
      expect(bystander.rounds).toBeGreaterThan(0);
      expect(target.alive()).toEqual(target.alive().map(() => true));
      for (let i = 0; i < target.alive().length; i++) {
        // every server process answers
        const c = await FuzzConn.connect(target.connectPort());
        expect(await c.request({ t: "ping" })).toMatchObject({ t: "pong" });
        c.close();
      }
      expect(rss.hwm).toBeLessThan(SERVER_RSS_LIMIT_MB);
    }, 60_000);

    test("the server stops cleanly with SIGTERM after the fuzzing", async () => {
      const codes = await target.stop();
      expect(codes).toEqual(codes.map(() => 0));
      expect(target.output()).not.toMatch(/request failed|commit failed/);
    }, 20_000);

    test("regression inputs, each on a fresh server with the shipped limits: answered, server alive and answering, peak RSS bounded", async () => {
      const failures: string[] = [];
      for (const [k, f] of regressions.entries()) {
        // the shipped configuration (password hashing included: a login is slow enough to hold frames behind it)
        const s = await target.fresh(k);
        try {
          const c = await FuzzConn.connect(s.port);
          if (f.context === "post-login") {
            await c.ok({ t: "register", user: s.user, pass: "password1" }, 20000);
            await c.ok({ t: "login", user: s.user, pass: "password1" }, 20000);
          }
          const base = c.replies;
          // Before login the shipped frame limit is --max-frame-login (PROTOCOL.md §1).
          const framing = splitFrames(f.stream, f.context === "post-login" ? MAX_FRAME : Math.min(DEFAULTS.maxFrameLogin, MAX_FRAME));
          const want = framing.bodies.length + (framing.oversized ? 1 : 0);
          const t0 = performance.now();
          c.writeRaw(f.stream);
          // An oversized header closes the connection (§1): replies pending then are never sent.
          const answered = await c.until(() => c.replies >= base + want || (framing.oversized && c.bye === "too_large"), 30000);
          const ms = performance.now() - t0;
          const other = await FuzzConn.connect(s.port);
          const pong = await other.request({ t: "ping", id: 1 }, 30000).catch((e) => ({ t: String(e) }));
          const { hwm } = memOf(s.pid);
          report.push(`regression over TCP ${f.name}: ${c.replies - base}/${want} replies in ${ms.toFixed(0)} ms, server peak RSS ${hwm.toFixed(0)} MiB`);
          if (!answered) note(failures, `${f.name}: ${c.replies - base} of ${want} replies within 30 s`);
          if (codesOk(c.codes).length) note(failures, `${f.name}: codes ${JSON.stringify(Object.fromEntries(c.codes))}`);
          if (pong.t !== "pong") note(failures, `${f.name}: the server did not answer a ping on another connection: ${JSON.stringify(pong)}`);
          if (!s.alive()) note(failures, `${f.name}: the server exited (${s.exitCode()})`);
          if (hwm >= SERVER_RSS_LIMIT_MB) note(failures, `${f.name}: server peak RSS ${hwm.toFixed(0)} MiB (limit ${SERVER_RSS_LIMIT_MB})`);
          tcpOutput.push(...c.invalid, ...other.invalid);
          c.kill();
          other.kill();
        } finally {
          await s.dispose();
        }
      }
      expect(failures).toEqual([]);
    }, 60_000);

    if (inProcessOutput)
      test("everything the server wrote, in-process and over TCP, is valid MessagePack with valid UTF-8 strings", () => {
        report.push(`output: ${inProcessOutput.length} invalid frames written in-process, ${tcpOutput.length} over TCP`);
        expect({ inProcess: inProcessOutput.slice(0, 3), overTcp: tcpOutput.slice(0, 3) }).toEqual({ inProcess: [], overTcp: [] });
      });
    else
      test("everything the servers wrote over TCP is valid MessagePack with valid UTF-8 strings", () => {
        report.push(`output: ${tcpOutput.length} invalid frames written over TCP`);
        expect({ overTcp: tcpOutput.slice(0, 3) }).toEqual({ overTcp: [] });
      });
  });
}
