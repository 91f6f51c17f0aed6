// Pieces for reproducing attacks on the real server process (the hardening issue), shared by
// the attack tests (test/attack/) and the attack bench (bench/attack.ts):
// - a server with the shipped limits (optionally with TLS, from a self-signed certificate);
// - a process's RSS, peak RSS, CPU time and descriptors from /proc/<pid>/status, stat and fd;
// - a protocol connection on node:net that can come from any loopback source address
//   (127.0.0.0/8 is all local on Linux), can stop reading (pause(): the kernel then stops
//   draining the server's writes, so they queue in the server), and writes with backpressure;
// - a bystander that keeps doing ping round trips and reports p50/p99/max;
// - which client sockets the server has closed, from /proc/net/tcp (a paused socket never
//   reads the FIN, so its own close event cannot tell);
// - the invalid UTF-8 requests of finding 14.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { makeBodyDecoder } from "../../src/protocol/codec.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import type { W } from "./fuzz-msgpack.ts";
import { type RunningServer, startServer, tempDir } from "./server.ts";
import { frameOf, type Msg, rawFrame } from "./wire.ts";

export const MiB = 1024 * 1024;

// ---- the server ---------------------------------------------------------------

export interface AttackServer {
  srv: RunningServer;
  port: number;
  pid: number;
  dir: string;
  db: string;
  /** PEM of the self-signed certificate, when started with TLS. */
  cert?: string;
  /** SIGTERM, wait, remove the temporary directory; returns the exit code. */
  stop(): Promise<number>;
}

/** A self-signed certificate for localhost and 127.0.0.1 (so a client can verify it), made with openssl in `dir`. */
export function selfSignedCert(dir: string): { certFile: string; keyFile: string; cert: string } {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile, cert: readFileSync(certFile, "utf8") };
}

/**
 * The server from source on a new database in a temporary directory, with the shipped
 * defaults except `args` (and `--tls-cert`/`--tls-key` with `tls`).
 */
export async function startAttackServer(args: string[] = [], opts: { tls?: boolean } = {}): Promise<AttackServer> {
  const tmp = tempDir("tcpchat-attack-");
  const db = join(tmp.dir, "chat.db");
  const c = opts.tls ? selfSignedCert(tmp.dir) : undefined;
  const tlsArgs = c ? ["--tls-cert", c.certFile, "--tls-key", c.keyFile] : [];
  const srv = await startServer(["--db", db, ...tlsArgs, ...args]);
  return {
    srv,
    port: srv.port,
    pid: srv.proc.pid,
    dir: tmp.dir,
    db,
    cert: c?.cert,
    async stop() {
      const code = srv.proc.exitCode ?? (await srv.stop());
      tmp.cleanup();
      return code;
    },
  };
}

// ---- process statistics ---------------------------------------------------------

export interface ProcStats {
  rssMiB: number;
  /** Peak RSS of the process's whole life (VmHWM). */
  hwmMiB: number;
  /** user + system CPU seconds. */
  cpuSec: number;
  fds: number;
}

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux

export function procStats(pid: number): ProcStats {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  let fds = NaN;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {}
  // fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name
  return { rssMiB: kb("VmRSS") / 1024, hwmMiB: kb("VmHWM") / 1024, cpuSec: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS, fds };
}

export interface SampleSummary {
  startRssMiB: number;
  peakRssMiB: number;
  endRssMiB: number;
  peakFds: number;
  cpuSec: number;
  seconds: number;
}

/** Samples a process every `everyMs` until stop(): the peak RSS and descriptors seen, the CPU used. */
export class Sampler {
  private readonly t0 = performance.now();
  private readonly first: ProcStats;
  private peakRss: number;
  private peakFds: number;
  private readonly timer: Timer;

  constructor(
    readonly pid: number,
    everyMs = 50,
  ) {
    this.first = procStats(pid);
    this.peakRss = this.first.rssMiB;
    this.peakFds = this.first.fds;
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): ProcStats | undefined {
    try {
      const s = procStats(this.pid);
      if (s.rssMiB > this.peakRss) this.peakRss = s.rssMiB;
      if (s.fds > this.peakFds) this.peakFds = s.fds;
      return s;
    } catch {
      return undefined; // the process is gone
    }
  }

  stop(): SampleSummary {
    clearInterval(this.timer);
    const last = this.sample();
    return {
      startRssMiB: this.first.rssMiB,
      peakRssMiB: this.peakRss,
      endRssMiB: last?.rssMiB ?? NaN,
      peakFds: this.peakFds,
      cpuSec: (last?.cpuSec ?? NaN) - this.first.cpuSec,
      seconds: (performance.now() - this.t0) / 1000,
    };
  }
}

// ---- connections ------------------------------------------------------------------

export interface ConnOptions {
  host?: string;
  /** Source address, any of 127.0.0.0/8. */
  localAddress?: string;
  /** TLS, trusting this PEM certificate (or, with `true`, any certificate). */
  tls?: string | true;
  /** Start without reading: the server's writes stay in its own queue. */
  paused?: boolean;
  /** Resolve at TCP connect, without waiting for anything else. */
  connectTimeoutMs?: number;
}

/** Bytes handed to the kernel per write: bounds what sits in this process's socket buffers. */
const WRITE_SLICE = 64 * 1024;

/**
 * A protocol connection: requests matched by id, pushes and `bye` recorded, writes queued
 * with backpressure (a writer that the server stops reading from just stops, it does not
 * buffer here). With `paused` it reads nothing, like an attacker that never reads.
 */
export class Conn {
  readonly sock: net.Socket;
  closed = false;
  /** The server's `bye` reason, if one was read. */
  bye?: string;
  /** Bytes the kernel accepted from us. */
  written = 0;
  bytesIn = 0;
  replies = 0;
  readonly codes = new Map<string, number>();
  onPush?: (m: Msg) => void;
  localPort = 0;
  localAddress = "";
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private blocked = false;
  private nextId = 1;
  private readonly waiting = new Map<number, (m: Msg) => void>();
  /** Waiters for replies that match no waiting id (replies to frames sent without one). */
  private readonly anonymous: Array<(m: Msg) => void> = [];
  private readonly closeWaiters: Array<() => void> = [];
  private readonly decodeBody = makeBodyDecoder(64 * MiB);
  private readonly decoder = new FrameDecoder(64 * MiB, (ev) => {
    if (ev.kind !== "frame") return;
    let m: Msg;
    try {
      m = this.decodeBody(ev.body) as Msg;
    } catch {
      return;
    }
    if (m.t === "ok" || m.t === "error" || m.t === "pong") {
      this.replies++;
      const code = m.t === "error" ? String(m.code) : m.t;
      this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
      const w = typeof m.id === "number" ? this.waiting.get(m.id) : undefined;
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      } else this.anonymous.shift()?.(m);
    } else {
      if (m.t === "bye") this.bye = String(m.reason);
      this.onPush?.(m);
    }
  });

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on("data", (d: Buffer) => {
      this.bytesIn += d.length;
      this.decoder.push(d);
    });
    sock.on("drain", () => {
      this.blocked = false;
      this.pump();
    });
    const gone = () => {
      if (this.closed) return;
      this.closed = true;
      for (const w of this.waiting.values()) w({ t: "closed" });
      this.waiting.clear();
      for (const w of this.anonymous.splice(0)) w({ t: "closed" });
      for (const w of this.closeWaiters.splice(0)) w();
    };
    sock.on("close", gone);
    sock.on("end", gone);
    sock.on("error", gone);
  }

  static open(port: number, opts: ConnOptions = {}): Promise<Conn> {
    const host = opts.host ?? "127.0.0.1";
    const tcp = net.connect({ host, port, localAddress: opts.localAddress });
    const sock =
      opts.tls !== undefined
        ? tls.connect({ socket: tcp, servername: "localhost", ...(opts.tls === true ? { rejectUnauthorized: false } : { ca: opts.tls }) })
        : tcp;
    if (opts.paused) sock.pause();
    const c = new Conn(sock);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${port} from ${opts.localAddress ?? "default"} timed out`));
      }, opts.connectTimeoutMs ?? 10_000);
      sock.once(opts.tls !== undefined ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        if (opts.paused) sock.pause();
        c.localPort = sock.localPort ?? 0;
        c.localAddress = sock.localAddress ?? "";
        resolve(c);
      });
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** Queues bytes (the buffer is not copied: keep it unchanged). */
  write(bytes: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(bytes);
    this.queued += bytes.length;
    this.pump();
  }

  /** Bytes queued here that the kernel has not taken yet. */
  get unsent(): number {
    return this.queued;
  }

  private pump(): void {
    while (!this.blocked && !this.closed && this.queue.length > 0) {
      const head = this.queue[0]!;
      const part = head.subarray(0, WRITE_SLICE);
      if (part.length === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(part.length);
      this.queued -= part.length;
      this.written += part.length;
      if (!this.sock.write(part)) this.blocked = true;
    }
  }

  /** Sends a request with a fresh id; resolves with its reply, `{t:"closed"}` or `{t:"timeout"}`. */
  request(m: Msg, timeoutMs = 10_000): Promise<Msg> {
    if (this.closed) return Promise.resolve({ t: "closed" });
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ t: "timeout" });
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.write(frameOf({ ...m, id }));
    });
  }

  /**
   * Writes a hand-built body (framed here) and resolves with the next reply that answers no
   * request of `request()`: send one at a time, without an id or with one request() does not use.
   */
  raw(body: Uint8Array, timeoutMs = 10_000): Promise<Msg> {
    if (this.closed) return Promise.resolve({ t: "closed" });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = this.anonymous.indexOf(done);
        if (i >= 0) this.anonymous.splice(i, 1);
        resolve({ t: "timeout" });
      }, timeoutMs);
      const done = (r: Msg) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.anonymous.push(done);
      this.write(rawFrame(body));
    });
  }

  /** Like request, but throws unless the reply is ok (or pong). */
  async ok(m: Msg, timeoutMs = 10_000): Promise<Msg> {
    const r = await this.request(m, timeoutMs);
    if (r.t !== "ok" && r.t !== "pong") throw new Error(`${m.t}: ${JSON.stringify(r)}`);
    return r;
  }

  pause(): void {
    this.sock.pause();
  }

  resume(): void {
    this.sock.resume();
  }

  /** Resolves when the connection is closed, or after `ms` (then false). */
  whenClosed(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(this.closed), ms);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  destroy(): void {
    this.queue.length = 0;
    this.queued = 0;
    this.sock.destroy();
    this.closed = true;
  }
}

/** Opens `n` connections, `perAddress` from each source address `addr(i)`, `parallel` at a time; failures counted. */
export async function openMany(
  port: number,
  n: number,
  addr: (i: number) => string | undefined,
  opts: Omit<ConnOptions, "localAddress"> = {},
  parallel = 100,
): Promise<{ conns: Conn[]; failed: number; error?: string }> {
  const conns: Conn[] = [];
  let failed = 0;
  let error: string | undefined;
  for (let at = 0; at < n; at += parallel) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(parallel, n - at) }, (_, k) => Conn.open(port, { ...opts, localAddress: addr(at + k) })),
    );
    for (const r of batch)
      if (r.status === "fulfilled") conns.push(r.value);
      else {
        failed++;
        error ??= String(r.reason);
      }
  }
  return { conns, failed, error };
}

// ---- which connections the server closed ---------------------------------------------

function hexEndpoint(ip: string, port: number): string {
  // /proc/net/tcp writes an IPv4 address as one little-endian 32-bit word in hex
  const [a, b, c, d] = ip.split(".").map(Number);
  const word = ((d! << 24) >>> 0) + (c! << 16) + (b! << 8) + a!;
  return `${word.toString(16).toUpperCase().padStart(8, "0")}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Local endpoints ("HEXIP:HEXPORT") of the TCP sockets in state ESTABLISHED. */
function established(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === "01") out.add(f[1]!);
  }
  return out;
}

/**
 * How many of `conns` the server has closed: closed as seen by a reading connection, or
 * no longer ESTABLISHED in the kernel (a FIN received makes it CLOSE_WAIT, a reset removes it),
 * which works for paused connections too. Call before closing them yourself.
 */
export function closedByServer(conns: readonly Conn[]): number {
  const est = established();
  let n = 0;
  for (const c of conns) if (c.closed || (c.localPort > 0 && !est.has(hexEndpoint(c.localAddress, c.localPort)))) n++;
  return n;
}

// ---- the bystander ------------------------------------------------------------------------

export interface RttSummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  /** Pings without a pong within the timeout (each counted at the timeout). */
  timeouts: number;
  /** Times the connection was lost and logged in again. */
  reconnects: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * A logged-in client that keeps one ping in flight, `gapMs` apart (well under the rate
 * limit), and records each round trip; `window()` summarises and starts a new window.
 */
export class Bystander {
  private rtts: number[] = [];
  private timeouts = 0;
  private reconnects = 0;
  private running = true;
  private readonly loop: Promise<void>;
  private conn: Conn;

  private constructor(
    conn: Conn,
    private readonly port: number,
    private readonly user: string,
    private token: string,
    private readonly opts: ConnOptions,
    private readonly gapMs: number,
    private readonly timeoutMs: number,
  ) {
    this.conn = conn;
    this.loop = this.run();
  }

  /** Logs `user` in with `pass` (registered already) and starts pinging. */
  static async start(port: number, user: string, pass: string, opts: ConnOptions = {}, gapMs = 10, timeoutMs = 5000): Promise<Bystander> {
    const conn = await Conn.open(port, opts);
    const r = await conn.ok({ t: "login", user, pass }, 30_000);
    return new Bystander(conn, port, user, r.token, opts, gapMs, timeoutMs);
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.conn.closed) {
        this.reconnects++;
        try {
          this.conn = await Conn.open(this.port, this.opts);
          const r = await this.conn.request({ t: "login", user: this.user, token: this.token }, this.timeoutMs);
          if (r.t !== "ok") this.conn.destroy();
        } catch {
          await Bun.sleep(100);
        }
        continue;
      }
      const t0 = performance.now();
      const r = await this.conn.request({ t: "ping" }, this.timeoutMs);
      const ms = performance.now() - t0;
      if (r.t === "pong") this.rtts.push(ms);
      else if (r.t === "timeout") {
        this.timeouts++;
        this.rtts.push(ms);
      }
      await Bun.sleep(this.gapMs);
    }
  }

  window(): RttSummary {
    const sorted = this.rtts.sort((a, b) => a - b);
    const out = {
      n: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.length ? sorted[sorted.length - 1]! : NaN,
      timeouts: this.timeouts,
      reconnects: this.reconnects,
    };
    this.rtts = [];
    this.timeouts = 0;
    this.reconnects = 0;
    return out;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.conn.destroy();
  }
}

export function formatRtt(r: RttSummary): string {
  const ms = (x: number) => (Number.isNaN(x) ? "-" : x < 10 ? x.toFixed(2) : x.toFixed(0));
  return `p50 ${ms(r.p50)} / p99 ${ms(r.p99)} / max ${ms(r.max)} ms (${r.n} pings${r.timeouts ? `, ${r.timeouts} timed out` : ""}${r.reconnects ? `, ${r.reconnects} reconnects` : ""})`;
}

// ---- finding 14: invalid UTF-8 ----------------------------------------------------------

/** Invalid UTF-8 as the hardening issue reported it: stray bytes, and an overlong '/'. */
export const BAD_UTF8: Array<[string, Uint8Array]> = [
  ["a\\xff\\xfeb", new Uint8Array([0x61, 0xff, 0xfe, 0x62])],
  ["overlong a\\xc0\\xafb", new Uint8Array([0x61, 0xc0, 0xaf, 0x62])],
];

/**
 * Requests carrying the str `s` (raw bytes: `{ $str: bytes }`) in one place each, for a
 * user in group `group` writing to user `other`. A file (PROTOCOL.md §3.4) names `upload`:
 * give a finished upload of the user's (§3.9), so that a name or type that is not valid
 * UTF-8 is all that stops the send (and must not use the upload up). Each must get
 * `bad_request` and store nothing.
 */
export function utf8Attempts(s: W, group: string, other: string, upload = "AAAAAAAAAAAAAAAAAAAAAA"): Array<[string, Record<string, W>]> {
  const data = new Uint8Array([104, 105]);
  return [
    ["the text", { t: "send", group, text: s }],
    ["the text of a direct message", { t: "send", user: other, text: s }],
    ["the group name of a send", { t: "send", group: s, text: "hi" }],
    ["the group name of a join", { t: "join", group: s }],
    ["the group name of a create", { t: "create", group: s }],
    ["the topic of a create", { t: "create", group: `${group}-new`, topic: s }],
    ["the description of a configure", { t: "configure", group, description: s }],
    ["the file name", { t: "send", group, file: { upload, name: s, type: "text/plain" } }],
    ["the file type", { t: "send", group, file: { upload, name: "a.txt", type: s } }],
    ["the file name of a direct message", { t: "send", user: other, text: "hi", file: { upload, name: s, type: "" } }],
    ["the upload id of a send's file", { t: "send", group, file: { upload: s, name: "a.txt", type: "text/plain" } }],
    ["the SHA-256 of an upload", { t: "upload", size: 2, sha256: s }],
    ["the upload id of a chunk", { t: "chunk", upload: s, offset: 0, data }],
    ["the cid", { t: "send", group, text: "hi", cid: s }],
    ["a key of the request", { $map: [["t", "send"], ["group", group], ["text", "hi"], [s, 1]] }],
    ["an unknown field, nested", { t: "send", group, text: "hi", extra: { deeper: [s] } }],
    ["a key of a send's file", { t: "send", group, file: { $map: [["upload", upload], ["name", "a.txt"], ["type", ""], [s, 1]] } }],
  ];
}
