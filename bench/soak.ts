// Soak: thousands of connections connecting, chatting and dropping for minutes,
// against the real server process. At the end, with every client gone, the
// server's memory should be back near where it was after warm-up and its file
// descriptors exactly back: no leak. Not part of CI (it takes minutes).
//   bun run bench/soak.ts [--minutes 3] [--conns 2000] [--groups 50]
import { readdirSync, readFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import { decode } from "@msgpack/msgpack";
import { encodeFrame } from "../src/protocol/codec.ts";
import { FrameDecoder } from "../src/protocol/frame.ts";

const ROOT = join(import.meta.dir, "..");
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MINUTES = arg("--minutes", 3);
const CONNS = arg("--conns", 2000);
const GROUPS = arg("--groups", 50);
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
      if (m.t === "msg") this.received++;
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
    [process.execPath, "run", join(ROOT, "src/server.ts"), "--port", "0", "--db", join(dir, "soak.db"),
      "--hash-memory", "1024", "--hash-time", "1", "--rate-msgs", "0", "--rate-bytes", "0", "--rate-msgs-addr", "0", "--rate-bytes-addr", "0", "--max-conns-per-addr", "0"],
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
  for (let u = 0; u < USERS; u++) {
    // a connection per user: its token stays valid when the connection closes (logout would revoke it)
    const c = new Client();
    await c.open(port);
    tokens.push((await c.req({ t: "login", user: `soak${u}`, pass: "soak-password" })).token as string);
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
  const t0 = performance.now();
  const until = t0 + MINUTES * 60_000;
  const samples: string[] = [];
  // warm-up: fill up to CONNS, let the server settle
  while (live.size < CONNS) await Promise.all(Array.from({ length: Math.min(64, CONNS - live.size) }, openOne));
  Bun.gc(true);
  await Bun.sleep(1000);
  const base = { rss: rss(pid), fds: fds(pid), conns: live.size };
  console.log(`soak: ${CONNS} connections of ${USERS} users in ${GROUPS} groups for ${MINUTES} min; after warm-up: server RSS ${base.rss.toFixed(1)} MB, ${base.fds} fds`);

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
      const line = `  ${((lastReport - t0) / 1000).toFixed(0).padStart(4)} s: ${live.size} open, ${opened} opened in all, ${sent} sent, ${acked} acked; server RSS ${rss(pid).toFixed(1)} MB, ${fds(pid)} fds`;
      samples.push(line);
      console.log(line);
    }
    await Bun.sleep(50);
  }

  // everyone leaves; then the server should hold what it held with no clients
  for (const c of [...live]) drop(c);
  await Bun.sleep(2000);
  const idleFds = fds(pid);
  // one client in, to make the server run a GC-friendly turn, then out
  const end = { rss: rss(pid), fds: idleFds };
  console.log(
    `end: all clients gone: server RSS ${end.rss.toFixed(1)} MB (after warm-up with ${base.conns} clients: ${base.rss.toFixed(1)} MB), ${end.fds} fds (with ${base.conns} clients: ${base.fds}, so ${base.fds - base.conns} without)`,
  );
  console.log(`totals: ${opened} connections opened, ${refused} refused, ${sent} messages sent, ${acked} acked, ${received} deliveries`);
  proc.kill("SIGTERM");
  const code = await proc.exited;
  rmSync(dir, { recursive: true, force: true });
  // fds: every client's socket must be gone (a few for the db, listener and stdio remain)
  const leakedFds = end.fds - (base.fds - base.conns);
  const ok = leakedFds <= 2 && end.rss <= base.rss * 1.25 && acked === sent && code === 0;
  console.log(ok ? "soak: OK" : `soak: FAILED (fds beyond baseline ${leakedFds}, exit ${code})`);
  return ok ? 0 : 1;
}

process.exit(await main());
