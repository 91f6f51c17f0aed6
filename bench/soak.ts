// Soak: thousands of connections connecting, chatting and dropping for minutes,
// against the real server process. At the end, with every client gone, the
// server's memory should be back near where it was after warm-up and its file
// descriptors exactly back: no leak. Not part of CI (it takes minutes).
// Throughout, --hostile connections (default 20) from addresses of their own, round robin
// over the kinds of test/helpers/fuzz-conn.ts (HostileWorker): floods that never read, a
// large frame trickled a byte at a time, floods before login, logins with made-up tokens,
// large file chunks never read; each is replaced when the server closes it. The soak
// reports how many the server closed and its peak RSS; the checks above must hold anyway.
//   bun run bench/soak.ts [--minutes 3] [--conns 2000] [--groups 50] [--hostile 20]
import { readdirSync, readFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import { decode } from "@msgpack/msgpack";
import { encodeFrame } from "../src/protocol/codec.ts";
import { FrameDecoder } from "../src/protocol/frame.ts";
import { isGroupKind } from "../src/protocol/pushes.ts";
import { Conn, procStats, Sampler } from "../test/helpers/attack.ts";
import { formatHostile, HOSTILE_KINDS, type HostileKind, type HostileStats, HostileWorker } from "../test/helpers/fuzz-conn.ts";

const ROOT = join(import.meta.dir, "..");
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MINUTES = arg("--minutes", 3);
const CONNS = arg("--conns", 2000);
const GROUPS = arg("--groups", 50);
const HOSTILE = arg("--hostile", 20);
const USERS = Math.min(CONNS, 500); // many devices per user: multi-device routing under churn

const rss = (pid: number) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1]) / 1024;
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

class Client {
  sock!: Socket<undefined>;
  private next = 1;
  private waiting = new Map<number, (m: Record<string, unknown>) => void>();
  received = 0;
  closed = false;

  async open(port: number): Promise<void> {
    const dec = new FrameDecoder(1 << 24, (ev) => {
      if (ev.kind !== "frame") return;
      const m = decode(ev.body) as Record<string, unknown>;
      if (m.t === "msg" && !isGroupKind(m.kind)) this.received++; // messages, not changes to groups
      const w = typeof m.id === "number" ? this.waiting.get(m.id) : undefined;
      if (w) {
        this.waiting.delete(m.id as number);
        w(m);
      }
    });
    this.sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        data: (_s, d) => dec.push(d),
        close: () => {
          this.closed = true;
          for (const w of this.waiting.values()) w({ t: "closed" });
          this.waiting.clear();
        },
        error: () => {
          this.closed = true;
        },
      },
    });
  }

  req(m: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.resolve({ t: "closed" });
    const id = this.next++;
    const p = new Promise<Record<string, unknown>>((r) => this.waiting.set(id, r));
    this.sock.write(encodeFrame({ ...m, id })); // small frames on a fresh socket: the kernel takes them whole
    return p;
  }
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "tcpchat-soak-"));
  const proc = Bun.spawn(
    [process.execPath, "run", join(ROOT, "src/server.ts"), "--port", "0", "--http-port", "off", "--db", join(dir, "soak.db"),
      "--hash-memory", "1024", "--hash-time", "1", "--rate-msgs", "0", "--rate-bytes", "0", "--rate-msgs-addr", "0", "--rate-bytes-addr", "0", "--max-conns-per-addr", "0",
      // every user registered from one address, and logged in again and again by the churn
      "--register-per-addr", "0", "--logins-per-user", "0"],
    { stdout: "pipe", stderr: "inherit" },
  );
  const reader = proc.stdout.getReader();
  let out = "";
  let port = 0;
  while (!port) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server did not start: ${out}`);
    out += new TextDecoder().decode(value);
    const m = out.match(/listening on [^\s:]+:(\d+)/);
    if (m) port = Number(m[1]);
  }
  void (async () => {
    while (!(await reader.read()).done);
  })();

  // users and their tokens
  const tokens: string[] = [];
  const reg = new Client();
  await reg.open(port);
  for (let u = 0; u < USERS; u++) await reg.req({ t: "register", user: `soak${u}`, pass: "soak-password" });
  reg.sock.end();
  // The hostile "download" connections ask for 1 MiB chunks of a 3 MB file without reading
  // (PROTOCOL.md §3.9), each as a user of its own in the group that holds it.
  const kindOf = (i: number): HostileKind => HOSTILE_KINDS[i % HOSTILE_KINDS.length]!;
  const hoarders = new Map<number, { user: string; token: string; mid: number; size: number }>();
  const data = new Uint8Array(3_000_000).map((_, i) => (i * 7919) >>> 3);
  let file: { mid: number; size: number } | undefined;
  for (let i = 0; i < HOSTILE; i++) {
    if (kindOf(i) !== "download") continue;
    const h = await Conn.open(port);
    const user = `hoarder${i}`;
    await h.ok({ t: "register", user, pass: "soak-password" });
    const token = (await h.ok({ t: "login", user, pass: "soak-password" })).token as string;
    await h.ok({ t: file ? "join" : "create", group: "hoard" });
    if (!file) {
      const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
      const up = await h.ok({ t: "upload", size: data.length, sha256 });
      for (let off = 0; off < data.length; off += 1 << 20)
        await h.ok({ t: "chunk", upload: up.upload, offset: off, data: data.subarray(off, off + (1 << 20)) }, 30_000);
      const sent = await h.ok({ t: "send", group: "hoard", file: { upload: up.upload, name: "hoard.bin", type: "application/octet-stream" } });
      file = { mid: sent.mid as number, size: data.length };
    }
    hoarders.set(i, { user, token, ...file });
    h.destroy();
  }
  for (let u = 0; u < USERS; u++) {
    // a connection per user: its token stays valid when the connection closes (logout would revoke it)
    const c = new Client();
    await c.open(port);
    tokens.push((await c.req({ t: "login", user: `soak${u}`, pass: "soak-password" })).token as string);
    // room<g> is created by soak<g>, one of its members (u % GROUPS); the others join it when they connect
    if (u < GROUPS) {
      const r = await c.req({ t: "create", group: `room${u}` });
      if (r.t !== "ok") throw new Error(`create room${u}: ${JSON.stringify(r)}`);
    }
    c.sock.end();
  }

  const live = new Set<Client>();
  let opened = 0;
  let sent = 0;
  let acked = 0;
  let received = 0;
  let refused = 0;
  const openOne = async () => {
    const c = new Client();
    await c.open(port);
    const u = Math.floor(Math.random() * USERS);
    const r = await c.req({ t: "login", user: `soak${u}`, token: tokens[u] });
    if (r.t !== "ok") {
      refused++;
      c.sock.end();
      return;
    }
    await c.req({ t: "join", group: `room${u % GROUPS}` });
    (c as Client & { group?: string }).group = `room${u % GROUPS}`;
    live.add(c);
    opened++;
  };
  const drop = (c: Client) => {
    live.delete(c);
    received += c.received;
    if (Math.random() < 0.5) c.sock.end();
    else c.sock.terminate(); // abrupt: no FIN handshake from our side
  };

  const pid = proc.pid;
  await Bun.sleep(500); // the setup connections' closes reach the server
  // the server's own descriptors, with no client at all: what must remain at the end
  const ownFds = fds(pid);
  const sampler = new Sampler(pid, 200);
  const t0 = performance.now();
  const until = t0 + MINUTES * 60_000;
  const samples: string[] = [];
  // hostile clients, from 127.0.1.1 on, one kind after another, for the whole soak
  const hostile = Array.from({ length: HOSTILE }, (_, i) => {
    const kind = kindOf(i);
    const addr = `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
    return new HostileWorker(kind, addr, { port, download: hoarders.get(i), gapMs: kind === "download" ? 2000 : 500, maxWaitMs: 90_000 });
  });
  const hostileClosed = () => hostile.reduce((n, h) => n + h.stats.closedByServer, 0);
  // warm-up: fill up to CONNS, let the server settle
  while (live.size < CONNS) await Promise.all(Array.from({ length: Math.min(64, CONNS - live.size) }, openOne));
  Bun.gc(true);
  await Bun.sleep(1000);
  const base = { rss: rss(pid), fds: fds(pid), conns: live.size };
  console.log(
    `soak: ${CONNS} connections of ${USERS} users in ${GROUPS} groups for ${MINUTES} min, and ${HOSTILE} hostile ones; ` +
      `after warm-up: server RSS ${base.rss.toFixed(1)} MB, ${base.fds} fds (${ownFds} of its own)`,
  );

  let lastReport = performance.now();
  while (performance.now() < until) {
    // churn: drop ~5% and open as many again; the rest chat
    const all = [...live];
    for (const c of all) if (Math.random() < 0.05) drop(c);
    const opens: Promise<void>[] = [];
    while (live.size + opens.length < CONNS) opens.push(openOne());
    const sends: Promise<unknown>[] = [];
    for (const c of live) {
      if (Math.random() < 0.2) {
        sent++;
        sends.push(
          c.req({ t: "send", group: (c as Client & { group?: string }).group, text: "soak ".repeat(10) }).then((r) => {
            if (r.t === "ok") acked++;
          }),
        );
      }
    }
    await Promise.all([...opens, ...sends]);
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const line = `  ${((lastReport - t0) / 1000).toFixed(0).padStart(4)} s: ${live.size} open, ${opened} opened in all, ${sent} sent, ${acked} acked; ${hostileClosed()} hostile closed by the server; server RSS ${rss(pid).toFixed(1)} MB, ${fds(pid)} fds`;
      samples.push(line);
      console.log(line);
    }
    await Bun.sleep(50);
  }

  // everyone leaves (the hostile ones first); then the server should hold what it held with no clients
  const hostileStats: HostileStats[] = await Promise.all(hostile.map((h) => h.stop()));
  for (const c of [...live]) drop(c);
  await Bun.sleep(2000);
  const idleFds = fds(pid);
  const end = { rss: rss(pid), fds: idleFds };
  const peak = sampler.stop();
  console.log(
    `end: all clients gone: server RSS ${end.rss.toFixed(1)} MB (after warm-up with ${base.conns} clients: ${base.rss.toFixed(1)} MB), ${end.fds} fds (before any client: ${ownFds})`,
  );
  console.log(`totals: ${opened} connections opened, ${refused} refused, ${sent} messages sent, ${acked} acked, ${received} deliveries`);
  const byKind = new Map<HostileKind, HostileStats>();
  for (const st of hostileStats) {
    const k = byKind.get(st.kind);
    if (!k) byKind.set(st.kind, { ...st, errors: [...st.errors] });
    else {
      k.opened += st.opened;
      k.closedByServer += st.closedByServer;
      k.abandoned += st.abandoned;
      k.openAtStop += st.openAtStop;
      k.written += st.written;
      k.errors.push(...st.errors.slice(0, 5 - k.errors.length));
    }
  }
  if (HOSTILE > 0) {
    console.log(`hostile: ${HOSTILE} at a time, ${hostileClosed()} connections closed by the server in all`);
    for (const st of byKind.values()) console.log(`  ${formatHostile(st)}`);
  }
  console.log(
    `server: peak RSS ${peak.peakRssMiB.toFixed(1)} MB sampled every 200 ms, VmHWM ${procStats(pid).hwmMiB.toFixed(1)} MB; CPU ${peak.cpuSec.toFixed(1)} s in ${peak.seconds.toFixed(0)} s`,
  );
  proc.kill("SIGTERM");
  const code = await proc.exited;
  rmSync(dir, { recursive: true, force: true });
  // fds: every client's socket must be gone (a few for the db, listener and stdio remain)
  const leakedFds = end.fds - ownFds;
  // every hostile kind closed by the server at least once (trickle and flood wait for the 30 s timeouts)
  const unclosed = MINUTES >= 1 ? [...byKind.values()].filter((st) => st.closedByServer === 0).map((st) => st.kind) : [];
  const ok = leakedFds <= 2 && end.rss <= base.rss * 1.25 && acked === sent && code === 0 && unclosed.length === 0;
  console.log(
    ok
      ? "soak: OK"
      : `soak: FAILED (fds beyond baseline ${leakedFds}, RSS ${end.rss.toFixed(1)} MB against ${base.rss.toFixed(1)}, ${sent - acked} sends not acked, exit ${code}${unclosed.length ? `, never closed by the server: ${unclosed.join(", ")}` : ""})`,
  );
  return ok ? 0 : 1;
}

process.exit(await main());
