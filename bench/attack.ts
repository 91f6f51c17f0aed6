// Attack bench: the attacks of the hardening issue, one after another, at a larger scale than
// the tests (test/attack/), against ONE server process started with the shipped defaults (no
// flag at all; attack 4 starts a second one with --tls-cert/--tls-key). All traffic stays on
// loopback; connections come from many 127.x.y.z source addresses where an attack is meant to
// get past per-address limits. For each attack it prints the server's RSS (at the start, the
// peak sampled every 50 ms, at the end) and CPU, a bystander's ping round trips (p50/p99/max;
// the bystander is logged in from an address of its own and pings every 10 ms throughout) and
// how many attacking connections the server closed (from /proc/net/tcp, which also sees
// connections that never read). Not part of CI.
//
//   bun run bench/attack.ts [--seconds 15] [--only 1,5,14]
//
// Many attacks still show the bad behaviour until their fix lands: this bench reports, it
// asserts nothing (the tests of test/attack/ do).
import { statSync } from "node:fs";
import { frameOf, type Msg, rawFrame } from "../test/helpers/wire.ts";
import { Enc, enc, type W } from "../test/helpers/fuzz-msgpack.ts";
import {
  type AttackServer,
  BAD_UTF8,
  Bystander,
  closedByServer,
  Conn,
  type ConnOptions,
  formatRtt,
  MiB,
  openMany,
  percentile,
  Sampler,
  startAttackServer,
  utf8Attempts,
} from "../test/helpers/attack.ts";

// ---- arguments ------------------------------------------------------------------

const argv = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}
if (argv.includes("--help")) {
  console.log("bun run bench/attack.ts [--seconds N (default 15)] [--only N,M,...]");
  process.exit(0);
}
const SECONDS = Number(flag("--seconds") ?? 15);
const ONLY = flag("--only")
  ?.split(",")
  .map((x) => Number(x.trim()))
  .filter((x) => x > 0);

const sleep = (ms: number) => Bun.sleep(ms);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const codesOf = (conns: Conn[]) => {
  const m = new Map<string, number>();
  for (const c of conns) for (const [k, v] of c.codes) m.set(k, (m.get(k) ?? 0) + v);
  return [...m].map(([k, v]) => `${k} ${v}`).join(", ") || "none";
};
const byes = (conns: Conn[]) => {
  const m = new Map<string, number>();
  for (const c of conns) if (c.bye) m.set(c.bye, (m.get(c.bye) ?? 0) + 1);
  return [...m].map(([k, v]) => `${k} ${v}`).join(", ") || "none read";
};

// ---- accounts -------------------------------------------------------------------

const PASS = "attack-bench-pass";

interface Account {
  user: string;
  addr: string;
  token?: string;
}

/** Accounts registered on demand, each from a source address of its own (127.0.200.k), so setup meets no per-address limit. */
class Accounts {
  private n = 0;
  private readonly made = new Map<string, Promise<Account>>();
  constructor(readonly port: number) {}

  get(user: string): Promise<Account> {
    let p = this.made.get(user);
    if (!p) {
      const addr = `127.0.200.${++this.n}`;
      p = this.register(user, addr);
      this.made.set(user, p);
    }
    return p;
  }

  private async register(user: string, addr: string): Promise<Account> {
    const c = await Conn.open(this.port, { localAddress: addr });
    try {
      for (let tries = 0; ; tries++) {
        const r = await c.request({ t: "register", user, pass: PASS }, 30_000);
        if (r.t === "ok" || (r.t === "error" && r.code === "conflict")) return { user, addr };
        if (tries > 50) throw new Error(`register ${user}: ${JSON.stringify(r)}`);
        await sleep(200);
      }
    } finally {
      c.destroy();
    }
  }

  /** A logged-in connection of `user` from its address: a password login the first time, the token after. */
  async login(user: string, opts: Omit<ConnOptions, "localAddress"> = {}): Promise<Conn> {
    const a = await this.get(user);
    const c = await Conn.open(this.port, { ...opts, localAddress: a.addr });
    try {
      const r = await c.ok(a.token ? { t: "login", user, token: a.token } : { t: "login", user, pass: PASS }, 30_000);
      a.token ??= r.token;
      return c;
    } catch (e) {
      c.destroy();
      throw e;
    }
  }
}

// ---- measuring one attack ---------------------------------------------------------

interface Target {
  pid: number;
  bystander: Bystander;
}

interface Outcome {
  /** The attacking connections: how many the server closed is counted before they are destroyed. */
  attackers: Conn[];
  notes: string[];
}

interface Ctx {
  main: AttackServer;
  port: number;
  accounts: Accounts;
  target: Target;
}

interface Attack {
  n: number;
  title: string;
  run(ctx: Ctx, measure: (t: Target, body: () => Promise<Outcome>) => Promise<void>): Promise<void>;
}

interface Row {
  n: number;
  title: string;
  peakRss: number;
  p99: number;
  closed: string;
}
const rows: Row[] = [];

function measurer(a: Attack) {
  return async (t: Target, body: () => Promise<Outcome>): Promise<void> => {
    t.bystander.window(); // start a fresh window
    const sampler = new Sampler(t.pid);
    let out: Outcome = { attackers: [], notes: [] };
    try {
      out = await body();
    } finally {
      const closed = closedByServer(out.attackers);
      const s = sampler.stop();
      const rtt = t.bystander.window();
      for (const c of out.attackers) c.destroy();
      const closedText = out.attackers.length ? `${closed} of ${out.attackers.length}` : "-";
      console.log(`    server RSS ${s.startRssMiB.toFixed(0)} -> peak ${s.peakRssMiB.toFixed(0)} MiB (end ${s.endRssMiB.toFixed(0)}), CPU ${s.cpuSec.toFixed(1)} s in ${s.seconds.toFixed(1)} s, descriptors peak ${s.peakFds}`);
      console.log(rtt.n ? `    bystander ping ${formatRtt(rtt)}` : "    bystander ping: too short to measure");
      console.log(`    attackers closed by the server: ${closedText}`);
      for (const note of out.notes) console.log(`    - ${note}`);
      rows.push({ n: a.n, title: a.title, peakRss: s.peakRssMiB, p99: rtt.p99, closed: closedText });
    }
  };
}

/** Runs `step` on each connection in a loop until the deadline (each loop awaits its own replies). */
async function loops<T>(items: T[], deadline: number, step: (x: T, i: number) => Promise<void>): Promise<void> {
  await Promise.all(
    items.map(async (x, i) => {
      while (Date.now() < deadline) await step(x, i);
    }),
  );
}

/** A body of exactly `size` bytes: {t:"ping", id, pad: bin}. */
function paddedPing(size: number, id = 1): Uint8Array {
  const e = new Enc().mapHeader(3).str("t").str("ping").str("id").int(id).str("pad");
  const pad = size - e.done().length - 5;
  return e.binHeader(pad, "32").bytes(new Uint8Array(pad)).done();
}

/** `n` copies of `b`, one after the other. */
function repeat(b: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(b.length * n);
  for (let i = 0; i < n; i++) out.set(b, i * b.length);
  return out;
}

/** A file of `bytes` for `send`, retried while rate_limited; resolves with the reply. */
/** Makes `c` a member of `group`: joins it, or creates it when there is none yet (PROTOCOL.md §3.3). */
async function enter(c: Conn, group: string): Promise<void> {
  const r = await c.request({ t: "join", group });
  if (r.t === "error" && r.code === "not_found") await c.ok({ t: "create", group });
  else if (r.t !== "ok") throw new Error(`join ${group}: ${JSON.stringify(r)}`);
}

async function sendFile(c: Conn, target: { group?: string; user?: string }, bytes: number, i: number, deadline: number): Promise<Msg> {
  const data = new Uint8Array(bytes).fill(i & 0xff);
  for (;;) {
    const r = await c.request({ t: "send", ...target, file: { name: `f${i}.bin`, type: "application/octet-stream", data }, cid: `f${i}-${Date.now()}` }, 30_000);
    if (r.t === "error" && r.code === "rate_limited" && Date.now() < deadline) {
      await sleep(250);
      continue;
    }
    return r;
  }
}

const FILE_BYTES = Math.floor(3.5 * MiB); // under --max-frame (4 MiB) with the envelope

// ---- the attacks -------------------------------------------------------------------

const ATTACKS: Attack[] = [
  {
    n: 1,
    title: "ping flood: 100 connections, no login, 150k pings each, never reading (one address)",
    async run(ctx, measure) {
      const pings = repeat(frameOf({ t: "ping", id: 1 }), 150_000);
      await measure(ctx.target, async () => {
        const { conns, failed } = await openMany(ctx.port, 100, () => "127.0.1.1", { paused: true });
        for (const c of conns) c.write(pings);
        await sleep(SECONDS * 1000);
        const taken = sum(conns.map((c) => c.written - c.unsent));
        const done = conns.filter((c) => c.unsent === 0).length;
        return {
          attackers: conns,
          notes: [
            `${mb(taken)} of ${mb(pings.length * conns.length)} handed to the sockets; ${done} connections wrote all their pings${failed ? `; ${failed} did not connect` : ""}`,
          ],
        };
      });
    },
  },
  {
    n: 2,
    title: "4 MiB frames before login: 300 connections (2 addresses) each announcing one and sending it",
    async run(ctx, measure) {
      const body = paddedPing(4 * MiB);
      const f = rawFrame(body);
      await measure(ctx.target, async () => {
        const { conns, failed } = await openMany(ctx.port, 300, (i) => `127.0.2.${1 + (i % 2)}`, { paused: true });
        for (const c of conns) c.write(f);
        await sleep(SECONDS * 1000);
        const taken = sum(conns.map((c) => c.written - c.unsent));
        return {
          attackers: conns,
          notes: [`${mb(taken)} of ${mb(f.length * conns.length)} handed to the sockets${failed ? `; ${failed} did not connect` : ""}`],
        };
      });
    },
  },
  {
    n: 3,
    title: "history/sync loops over a group of large files: 8 connections of one user, 2 requests in flight each",
    async run(ctx, measure) {
      const owner = await ctx.accounts.login("filer");
      await enter(owner, "files");
      // the files already there (the group's log also holds its create entry, which is none)
      const have = ((await owner.ok({ t: "history", group: "files", limit: 100 })).msgs as Msg[]).filter((m) => m.kind === undefined).length;
      const FILES = 12;
      const t0 = performance.now();
      for (let i = have; i < FILES; i++) await sendFile(owner, { group: "files" }, FILE_BYTES, i, Date.now() + 60_000);
      console.log(`    (group "files" holds ${FILES} files of ${(FILE_BYTES / MiB).toFixed(1)} MiB; uploaded in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      const conns = [owner];
      for (let i = 1; i < 8; i++) conns.push(await ctx.accounts.login("filer"));
      await measure(ctx.target, async () => {
        const deadline = Date.now() + SECONDS * 1000;
        let served = 0;
        const before = sum(conns.map((c) => c.bytesIn));
        const slots = conns.flatMap((c) => [c, c]);
        await loops(slots, deadline, async (c, i) => {
          const r = await c.request(i % 2 ? { t: "history", group: "files", limit: 500 } : { t: "sync", after: 0, limit: 500 }, 30_000);
          if (r.t === "ok") served++;
          else if (r.t === "error" && r.code === "rate_limited") await sleep(20);
          else if (r.t === "closed" || r.t === "timeout") await sleep(100);
        });
        const bytes = sum(conns.map((c) => c.bytesIn)) - before;
        return {
          attackers: conns,
          notes: [`${served} pages served (${mb(bytes)}, ${(bytes / 1e6 / SECONDS).toFixed(0)} MB/s); replies: ${codesOf(conns)}`],
        };
      });
    },
  },
  {
    n: 4,
    title: "TLS connections that never handshake: 3000 (12 addresses) on a second server with --tls-cert/--tls-key",
    async run(ctx, measure) {
      const srv = await startAttackServer([], { tls: true });
      try {
        const reg = await Conn.open(srv.port, { tls: srv.cert!, localAddress: "127.0.4.200" });
        await reg.ok({ t: "register", user: "tlsby", pass: PASS }, 30_000);
        reg.destroy();
        const by = await Bystander.start(srv.port, "tlsby", PASS, { tls: srv.cert!, localAddress: "127.0.4.201" });
        try {
          console.log("    (the bystander and the figures below are of the TLS server; its bystander speaks TLS)");
          await measure({ pid: srv.pid, bystander: by }, async () => {
            const t0 = Date.now();
            const { conns, failed, error } = await openMany(srv.port, 3000, (i) => `127.0.4.${1 + (i % 12)}`, { paused: true });
            const opened = (Date.now() - t0) / 1000;
            const half = await new Promise<number>((r) => setTimeout(() => r(closedByServer(conns)), (SECONDS * 1000) / 2));
            await sleep((SECONDS * 1000) / 2);
            return {
              attackers: conns,
              notes: [
                `${conns.length} connected in ${opened.toFixed(1)} s${failed ? ` (${failed} failed: ${error})` : ""}; closed by the server after ${(SECONDS / 2).toFixed(0)} s: ${half}`,
              ],
            };
          });
        } finally {
          await by.stop();
        }
      } finally {
        await srv.stop();
      }
    },
  },
  {
    n: 5,
    title: "password guessing: 200 connections (20 addresses) guessing one user's password at once",
    async run(ctx, measure) {
      const victim = await ctx.accounts.get("victim");
      await measure(ctx.target, async () => {
        const { conns } = await openMany(ctx.port, 200, (i) => `127.0.5.${1 + (i % 20)}`);
        const deadline = Date.now() + SECONDS * 1000;
        let k = 0;
        const victimTries: string[] = [];
        const victimLogin = async (when: string) => {
          const c = await Conn.open(ctx.port, { localAddress: victim.addr });
          const t0 = performance.now();
          const r = await c.request({ t: "login", user: "victim", pass: PASS }, 60_000);
          victimTries.push(`${when}: ${r.t === "error" ? r.code : r.t} in ${(performance.now() - t0).toFixed(0)} ms`);
          c.destroy();
        };
        const during = sleep((SECONDS * 1000) / 2).then(() => victimLogin("during the attack"));
        await loops(conns, deadline, async (c) => {
          const r = await c.request({ t: "login", user: "victim", pass: `guess-${k++}` }, 30_000);
          if (r.t === "error" && r.code === "rate_limited") await sleep(20);
          else if (r.t === "closed" || r.t === "timeout") await sleep(100);
        });
        await during;
        await victimLogin("right after it (the guessers still connected, idle)");
        return {
          attackers: conns,
          notes: [`guesses answered: ${codesOf(conns)}`, `the victim's password login (from its own address) ${victimTries.join("; ")}`],
        };
      });
    },
  },
  {
    n: 6,
    title: "bogus token logins against a victim: 50 connections (5 addresses), then the victim's token login",
    async run(ctx, measure) {
      const first = await ctx.accounts.login("victim2");
      first.destroy();
      const victim = await ctx.accounts.get("victim2");
      await measure(ctx.target, async () => {
        const { conns } = await openMany(ctx.port, 50, (i) => `127.0.6.${1 + (i % 5)}`);
        const deadline = Date.now() + SECONDS * 1000;
        const tries: string[] = [];
        const victimLogin = async (when: string) => {
          const c = await Conn.open(ctx.port, { localAddress: victim.addr });
          const t0 = performance.now();
          const r = await c.request({ t: "login", user: "victim2", token: victim.token }, 60_000);
          tries.push(`${when}: ${r.t === "error" ? r.code : r.t} in ${(performance.now() - t0).toFixed(0)} ms`);
          c.destroy();
        };
        const during = sleep((SECONDS * 1000) / 2).then(() => victimLogin("during the attack"));
        await loops(conns, deadline, async (c) => {
          const token = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
          const r = await c.request({ t: "login", user: "victim2", token }, 30_000);
          if (r.t === "error" && r.code === "rate_limited") await sleep(20);
          else if (r.t === "closed" || r.t === "timeout") await sleep(100);
        });
        await during;
        await victimLogin("right after it");
        return { attackers: conns, notes: [`bogus logins answered: ${codesOf(conns)}`, `the victim's token login ${tries.join("; ")}`] };
      });
    },
  },
  {
    n: 7,
    title: "4 MiB frames of nested arrays before login: 20 connections (one address), 4 frames each, never reading",
    async run(ctx, measure) {
      const f = rawFrame(new Uint8Array(4 * MiB).fill(0x91));
      const four = repeat(f, 4);
      await measure(ctx.target, async () => {
        const { conns } = await openMany(ctx.port, 20, () => "127.0.7.1", { paused: true });
        for (const c of conns) c.write(four);
        await sleep(SECONDS * 1000);
        const taken = sum(conns.map((c) => c.written - c.unsent));
        return { attackers: conns, notes: [`${mb(taken)} of ${mb(four.length * conns.length)} handed to the sockets`] };
      });
    },
  },
  {
    n: 8,
    title: "registration flood: 100 connections (50 addresses) registering new users, while another user logs in with a password every second",
    async run(ctx, measure) {
      const prober = await ctx.accounts.get("prober");
      await measure(ctx.target, async () => {
        const { conns } = await openMany(ctx.port, 100, (i) => `127.0.8.${1 + (i % 50)}`);
        const deadline = Date.now() + SECONDS * 1000;
        let k = 0;
        const probe: number[] = [];
        const probeCodes: string[] = [];
        const probing = (async () => {
          while (Date.now() < deadline) {
            const c = await Conn.open(ctx.port, { localAddress: prober.addr });
            const t0 = performance.now();
            const r = await c.request({ t: "login", user: "prober", pass: PASS }, 60_000);
            probe.push(performance.now() - t0);
            if (r.t !== "ok") probeCodes.push(r.t === "error" ? r.code : r.t);
            c.destroy();
            await sleep(1000);
          }
        })();
        await loops(conns, deadline, async (c, i) => {
          const r = await c.request({ t: "register", user: `flood${i}x${k++}`, pass: "password1" }, 60_000);
          if (r.t === "error" && r.code === "rate_limited") await sleep(50);
          else if (r.t === "closed" || r.t === "timeout") await sleep(100);
        });
        await probing;
        const sorted = probe.sort((a, b) => a - b);
        return {
          attackers: conns,
          notes: [
            `registrations answered: ${codesOf(conns)}`,
            `the other user's password logins: ${sorted.length}, p50 ${percentile(sorted, 50).toFixed(0)} ms, max ${(sorted[sorted.length - 1] ?? NaN).toFixed(0)} ms${probeCodes.length ? `, refused: ${probeCodes.join(", ")}` : ""}`,
          ],
        };
      });
    },
  },
  {
    n: 9,
    title: "a member that does not read while 3.5 MiB files are sent to its group",
    async run(ctx, measure) {
      const lazy = await ctx.accounts.login("lazy");
      await enter(lazy, "flood");
      const pusher = await ctx.accounts.login("pusher");
      await pusher.ok({ t: "join", group: "flood" });
      lazy.pause();
      await measure(ctx.target, async () => {
        const deadline = Date.now() + SECONDS * 1000;
        let sent = 0;
        const codes: string[] = [];
        for (let i = 0; Date.now() < deadline; i++) {
          const r = await sendFile(pusher, { group: "flood" }, FILE_BYTES, i, deadline);
          if (r.t === "ok") sent++;
          else codes.push(r.t === "error" ? r.code : r.t);
          if (r.t === "closed") break;
        }
        pusher.destroy();
        return {
          attackers: [lazy],
          notes: [`${sent} files (${mb(sent * FILE_BYTES)}) sent to the group${codes.length ? `; refused: ${codes.slice(0, 5).join(", ")}` : ""}; the reader's socket took ${mb(lazy.bytesIn)}`],
        };
      });
    },
  },
  {
    n: 10,
    title: "presence flapping: 5 accounts logging in and dropping as fast as they can, in a group with a watcher",
    async run(ctx, measure) {
      const names = Array.from({ length: 5 }, (_, i) => `flap${i}`);
      const watcher = await ctx.accounts.login("watcher");
      await enter(watcher, "flap");
      for (const u of names) {
        const c = await ctx.accounts.login(u);
        await c.ok({ t: "join", group: "flap" });
        c.destroy();
      }
      let presences = 0;
      watcher.onPush = (m) => {
        if (m.t === "presence") presences++;
      };
      await measure(ctx.target, async () => {
        const deadline = Date.now() + SECONDS * 1000;
        const outcomes = new Map<string, number>();
        await loops(names, deadline, async (u) => {
          let code = "ok";
          try {
            const c = await ctx.accounts.login(u);
            c.destroy();
          } catch (e) {
            code = String(e).match(/"code":"(\w+)"/)?.[1] ?? "failed";
            await sleep(20);
          }
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
        });
        await sleep(1500); // presence changes wait --presence-delay before they are sent
        watcher.destroy();
        return {
          attackers: [],
          notes: [
            `logins: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(", ")}`,
            `presence pushes the watcher received: ${presences} (${(presences / SECONDS).toFixed(1)}/s)`,
          ],
        };
      });
    },
  },
  {
    n: 11,
    title: "file modes of the database and its WAL and shared-memory files",
    async run(ctx, measure) {
      await measure(ctx.target, async () => {
        const mode = (p: string) => {
          try {
            return `0${(statSync(p).mode & 0o777).toString(8)}`;
          } catch {
            return "absent";
          }
        };
        const db = ctx.main.db;
        return {
          attackers: [],
          notes: [`${db}: ${mode(db)}; -wal: ${mode(`${db}-wal`)}; -shm: ${mode(`${db}-shm`)}; directory: ${mode(ctx.main.dir)} (0600 wanted for the files)`],
        };
      });
    },
  },
  {
    n: 12,
    title: "WAL size after large sends: one user sending 3.5 MiB files as fast as the rate allows",
    async run(ctx, measure) {
      const c = await ctx.accounts.login("waller");
      await enter(c, "wal");
      const wal = `${ctx.main.db}-wal`;
      const size = (p: string) => {
        try {
          return statSync(p).size;
        } catch {
          return 0;
        }
      };
      await measure(ctx.target, async () => {
        const deadline = Date.now() + SECONDS * 1000;
        let peak = size(wal);
        const start = peak;
        const timer = setInterval(() => (peak = Math.max(peak, size(wal))), 100);
        let sent = 0;
        for (let i = 0; Date.now() < deadline; i++) {
          const r = await sendFile(c, { group: "wal" }, FILE_BYTES, i, deadline);
          if (r.t === "ok") sent++;
          else if (r.t === "closed") break;
        }
        const atEnd = size(wal);
        await sleep(2000);
        clearInterval(timer);
        c.destroy();
        return {
          attackers: [],
          notes: [
            `${sent} files (${mb(sent * FILE_BYTES)}) stored; WAL ${mb(start)} at the start, peak ${mb(peak)}, ${mb(atEnd)} at the end, ${mb(size(wal))} 2 s later; database ${mb(size(ctx.main.db))}`,
          ],
        };
      });
    },
  },
  {
    n: 13,
    title: "many connections from one address: 2000 from 127.0.13.1, idle, never reading",
    async run(ctx, measure) {
      await measure(ctx.target, async () => {
        const t0 = Date.now();
        const { conns, failed, error } = await openMany(ctx.port, 2000, () => "127.0.13.1", { paused: true });
        const opened = (Date.now() - t0) / 1000;
        await sleep(Math.min(5, SECONDS) * 1000);
        return {
          attackers: conns,
          notes: [`${conns.length} connected in ${opened.toFixed(1)} s${failed ? ` (${failed} failed: ${error})` : ""}`],
        };
      });
    },
  },
  {
    n: 14,
    title: "invalid UTF-8 in text, names, file name and type, cid, a key, a nested field",
    async run(ctx, measure) {
      const c = await ctx.accounts.login("utf8er");
      await enter(c, "u8");
      await measure(ctx.target, async () => {
        const answers = new Map<string, number>();
        const accepted: string[] = [];
        for (const [label, bytes] of BAD_UTF8)
          for (const [where, req] of utf8Attempts({ $str: bytes }, "u8", "utf8er")) {
            const r = await c.raw(enc(req as W));
            const code = r.t === "error" ? r.code : r.t;
            answers.set(code, (answers.get(code) ?? 0) + 1);
            if (code !== "bad_request") accepted.push(`${label} in ${where}: ${code}`);
          }
        // (but the group's create entry, made by the setup)
        const stored = ((await c.ok({ t: "history", group: "u8" })).msgs as Msg[]).filter((m) => m.kind !== "create");
        const direct = (await c.ok({ t: "history", user: "utf8er" })).msgs as Msg[];
        const all = [...stored, ...direct];
        c.destroy();
        return {
          attackers: [],
          notes: [
            `answers: ${[...answers].map(([k, v]) => `${k} ${v}`).join(", ")} (bad_request wanted for all ${sum([...answers.values()])})`,
            ...accepted.slice(0, 6).map((x) => `not refused: ${x}`),
            `stored: ${all.length} messages${all.length ? `, e.g. ${JSON.stringify(all.slice(0, 3).map((m) => m.text ?? m.file?.name ?? m.cid))}` : ""}`,
          ],
        };
      });
    },
  },
];

// ---- main ------------------------------------------------------------------------------

async function main(): Promise<number> {
  const chosen = ATTACKS.filter((a) => !ONLY || ONLY.includes(a.n));
  const t0 = performance.now();
  console.log(`attack bench: ${chosen.length} attacks of about ${SECONDS} s each, against one server with the shipped defaults`);
  const main = await startAttackServer([]);
  console.log(`server pid ${main.pid} on 127.0.0.1:${main.port}, database ${main.db}`);
  const accounts = new Accounts(main.port);
  const by = await accounts.get("bystander");
  const bystander = await Bystander.start(main.port, "bystander", PASS, { localAddress: by.addr });
  const ctx: Ctx = { main, port: main.port, accounts, target: { pid: main.pid, bystander } };
  try {
    await sleep(500);
    for (const a of chosen) {
      console.log(`\n[${a.n}] ${a.title}`);
      const limit = (SECONDS + 120) * 1000;
      let timer: Timer | undefined;
      try {
        await Promise.race([
          a.run(ctx, measurer(a)),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`did not finish within ${limit / 1000} s`)), limit))),
        ]);
      } catch (e) {
        console.log(`    failed: ${(e as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
      if (main.srv.proc.exitCode !== null) {
        console.log(`    the server exited (${main.srv.proc.exitCode}): stopping\n${main.srv.output().slice(-2000)}`);
        return 1;
      }
      await sleep(1000); // let the server settle before the next one
    }
  } finally {
    await bystander.stop();
    await main.stop();
  }
  console.log(`\nsummary (${((performance.now() - t0) / 1000).toFixed(0)} s):`);
  console.log("  #  peak RSS MiB  bystander p99 ms  attackers closed  attack");
  for (const r of rows)
    console.log(`${String(r.n).padStart(3)}  ${r.peakRss.toFixed(0).padStart(12)}  ${(Number.isNaN(r.p99) ? "-" : r.p99.toFixed(1)).padStart(16)}  ${r.closed.padStart(16)}  ${r.title.split(":")[0]}`);
  return 0;
}

process.exit(await main());
