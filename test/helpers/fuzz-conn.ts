// A lean protocol connection for the crash and fuzz tests: real TCP, replies
// matched by id through callbacks (no scanning of everything received), pushes
// handed to a callback, every frame the server writes checked with the strict
// decoder (valid MessagePack, a map, valid UTF-8), raw writes with backpressure.
// Also the hostile clients of the fuzz test and the soak (HostileWorker, below).
import { readFileSync } from "node:fs";
import type { Socket } from "bun";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { closedByServer, Conn } from "./attack.ts";
import { decodeStrict, enc, framed, hex, toJS, type W } from "./fuzz-msgpack.ts";
import { concat, frameOf } from "./wire.ts";

export type Msg = Record<string, any>;

export class FuzzConn {
  private sock!: Socket<undefined>;
  private pending: Uint8Array[] = [];
  private readonly waiting = new Map<number, (m: Msg) => void>();
  private readonly wakers = new Set<() => void>();
  private nextId: number;
  closed = false;
  /** Replies (ok, pong, error) received, with and without id. */
  replies = 0;
  readonly codes = new Map<string, number>();
  /** The `bye` reason, if one came. */
  bye?: string;
  /** Frames from the server that are not valid MessagePack maps with valid UTF-8 strings. */
  readonly invalid: string[] = [];
  /** Frames received after a `bye`. */
  afterBye = 0;
  /** Every reply without an id, newest last (kept short). */
  readonly anonymous: Msg[] = [];
  onPush: (m: Msg) => void = () => {};
  onReply: (m: Msg) => void = () => {};
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024, (ev) => {
    if (ev.kind === "too_large") {
      this.invalid.push(`a frame of ${ev.length} bytes`);
      return;
    }
    if (ev.kind === "frame") this.receive(ev.body);
  });

  private constructor(idBase: number) {
    this.nextId = idBase;
  }

  /** `idBase`: first request id, so a test can keep its ids apart from fuzzed ones. */
  static async connect(port: number, idBase = 1): Promise<FuzzConn> {
    const c = new FuzzConn(idBase);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    c.sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        open: () => resolve(),
        data: (_s, chunk) => c.decoder.push(chunk),
        drain: () => c.flush(),
        close: () => c.gone(),
        error: () => c.gone(),
        connectError: (_s, e) => reject(e),
      },
    });
    await promise;
    return c;
  }

  private gone(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  private receive(body: Uint8Array): void {
    const d = decodeStrict(body);
    let m: Msg;
    if (!d.ok || d.value.k !== "map" || d.info.badUtf8) {
      this.invalid.push(d.ok ? (d.value.k !== "map" ? `not a map: ${hex(body, 64)}` : `invalid UTF-8 in ${hex(body, 200)}`) : `${d.error}: ${hex(body, 64)}`);
      if (!d.ok || d.value.k !== "map") return;
    }
    m = toJS(d.value);
    if (this.bye !== undefined) this.afterBye++;
    if (m.t === "ok" || m.t === "pong" || m.t === "error") {
      this.replies++;
      if (m.t === "error") this.codes.set(m.code, (this.codes.get(m.code) ?? 0) + 1);
      if (!("id" in m)) {
        this.anonymous.push(m);
        if (this.anonymous.length > 20) this.anonymous.shift();
      }
      const w = typeof m.id === "number" ? this.waiting.get(m.id) : undefined;
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      }
      this.onReply(m);
    } else {
      if (m.t === "bye") this.bye = m.reason;
      this.onPush(m);
    }
    this.wake();
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = this.sock.write(head);
      if (n < 0) {
        this.pending = [];
        return;
      }
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        return;
      }
      this.pending.shift();
    }
  }

  /** Bytes not yet taken by the kernel. */
  get unsent(): number {
    let n = 0;
    for (const p of this.pending) n += p.length;
    return n;
  }

  writeRaw(bytes: Uint8Array): void {
    if (this.closed) return;
    this.pending.push(bytes);
    if (this.pending.length === 1) this.flush();
  }

  /** Sends a request with a fresh id; `cb` gets its reply. Returns the id. */
  send(msg: Record<string, W>, cb?: (m: Msg) => void): number {
    const id = this.nextId++;
    if (cb) this.waiting.set(id, cb);
    this.writeRaw(framed(enc({ ...msg, id })));
    return id;
  }

  /** Sends a request and waits for its reply; rejects on timeout or close. */
  request(msg: Record<string, W>, timeoutMs = 10000): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const id = this.send(msg, (m) => {
        clearTimeout(timer);
        this.wakers.delete(onClose);
        resolve(m);
      });
      const onClose = () => {
        if (!this.closed) return;
        clearTimeout(timer);
        this.wakers.delete(onClose);
        this.waiting.delete(id);
        reject(new Error(`connection closed before the reply to ${String(msg.t)} (bye: ${this.bye})`));
      };
      const timer = setTimeout(() => {
        this.wakers.delete(onClose);
        this.waiting.delete(id);
        reject(new Error(`no reply to ${String(msg.t)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.wakers.add(onClose);
    });
  }

  /** Like request, but an error reply throws. */
  async ok(msg: Record<string, W>, timeoutMs = 10000): Promise<Msg> {
    const r = await this.request(msg, timeoutMs);
    if (r.t === "error") throw new Error(`${String(msg.t)} failed: ${r.code}: ${r.msg}`);
    return r;
  }

  /** Waits until `pred()` holds; false on timeout. Re-checked whenever a frame arrives or the connection closes. */
  async until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.wakers.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 200));
        this.wakers.add(done);
      });
    }
    return true;
  }

  close(): void {
    if (!this.closed) this.sock.end();
  }

  /** Closes at once, dropping what is unsent. */
  kill(): void {
    this.pending = [];
    if (!this.closed) this.sock.terminate();
  }
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export function memOf(pid: number | "self"): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

// ---- hostile clients ------------------------------------------------------------------
//
// The clients the hardening issue asked the fuzz and soak suites to add, each on a Conn of
// test/helpers/attack.ts (any loopback source address, a socket that can stop reading), kept
// up by a HostileWorker that reconnects whenever the server closes one:
// - "flood": never reads (paused socket) and floods requests before login (rounds of
//   `floodRound()`, pings by default) until the server stops reading it (our writes back up);
//   closed at --write-timeout, or by --max-queue or --login-timeout (PROTOCOL.md §2.4, §5.3);
// - "history": logs in with a token, stops reading, and asks again and again for pages of a
//   group; a page may be half of --max-frame (§3.4), but only of large texts now: pages never
//   hold a file's bytes (§3.9), so "download" is the one that piles up large replies;
// - "download": logs in with a token, stops reading, and asks again and again for chunks of a
//   large file (§3.9); each reply holds up to max_chunk (1 MiB) of it, so a burst of them
//   passes a quarter of --max-queue of unread replies: the server stops reading the
//   connection (§2.4) and closes it at --write-timeout (§5.3);
// - "trickle": before login, announces a frame just under --max-frame-login and sends its
//   body a byte at a time; closed at --login-timeout (§2.4);
// - "prelogin": before login, floods requests that need a login (`unauthorized`) and pings,
//   reading the replies; closed with `bye limits_exceeded` after --max-refused (§2.4);
// - "badtoken": floods logins with made-up tokens (`unauthorized`), reading the replies;
//   closed the same way.
// Which of these the server closes, and how soon, depends on its flags: each worker counts
// the connections the server closed (closedByServer, which also sees paused sockets).

export const HOSTILE_KINDS = ["flood", "history", "trickle", "prelogin", "badtoken"] as const;
/** "download" is not in HOSTILE_KINDS (yet): bench/soak.ts takes turns over that list, with options for history only. */
export type HostileKind = (typeof HOSTILE_KINDS)[number] | "download";

export interface HostileOptions {
  port: number;
  /** For "history": a user's login token and a group of theirs holding large messages. */
  history?: { user: string; token: string; group: string };
  /** For "download": a user's login token, and the mid and size of a large file that user can see (§3.9). */
  download?: { user: string; token: string; mid: number; size: number };
  /** For "flood": the bytes of one round of the flood (default: 2000 pings and 1000 empty frames). */
  floodRound?: () => Uint8Array;
  /** Give up on a connection the server has not closed after this long (ms); it is then counted as abandoned. */
  maxWaitMs?: number;
  /** Pause between a connection's end and the next one (ms). */
  gapMs?: number;
}

export interface HostileStats {
  kind: HostileKind;
  opened: number;
  /** Connections the server closed (a `bye`, a reset, or a FIN a paused socket never read). */
  closedByServer: number;
  /** Connections given up on after maxWaitMs, still open. */
  abandoned: number;
  /** Open when the worker was stopped. */
  openAtStop: number;
  /** Bytes the kernel took from us, in all. */
  written: number;
  errors: string[];
}

const PING_FRAME = frameOf({ t: "ping" });
const EMPTY_FRAME = new Uint8Array(4); // a zero-length body: answered with bad_frame (§2.2)
const defaultFloodRound = (): Uint8Array => concat([...Array<Uint8Array>(2000).fill(PING_FRAME), ...Array<Uint8Array>(1000).fill(EMPTY_FRAME)]);
/** Our own unsent bytes past which the server is taken to have stopped reading a flood. */
const BACKED_UP = 256 * 1024;

/** One hostile connection at a time of `kind` from `localAddress`, replaced whenever it ends, until stop(). */
export class HostileWorker {
  readonly stats: HostileStats;
  private running = true;
  private readonly loop: Promise<void>;
  private readonly sleepers = new Set<() => void>();

  constructor(
    readonly kind: HostileKind,
    readonly localAddress: string,
    private readonly opts: HostileOptions,
  ) {
    this.stats = { kind, opened: 0, closedByServer: 0, abandoned: 0, openAtStop: 0, written: 0, errors: [] };
    if (kind === "history" && !opts.history) throw new Error("a history worker needs opts.history");
    if (kind === "download" && !opts.download) throw new Error("a download worker needs opts.download");
    this.loop = this.run();
  }

  /** Stops after the current step; the connection still open then is closed by us. */
  async stop(): Promise<HostileStats> {
    this.running = false;
    for (const w of [...this.sleepers]) w();
    await this.loop;
    return this.stats;
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private get paused(): boolean {
    return this.kind === "flood" || this.kind === "history" || this.kind === "download";
  }

  /** Closed by the server: seen by a reading socket, or (paused) no longer ESTABLISHED in the kernel. */
  private gone(c: Conn): boolean {
    return c.closed || (this.paused && closedByServer([c]) > 0);
  }

  private async run(): Promise<void> {
    const { gapMs = 200, maxWaitMs = 120_000 } = this.opts;
    while (this.running) {
      let c: Conn;
      try {
        c = await Conn.open(this.opts.port, { localAddress: this.localAddress, paused: this.kind === "flood" });
      } catch (e) {
        if (this.stats.errors.length < 5) this.stats.errors.push(`open: ${String(e)}`);
        await this.sleep(1000);
        continue;
      }
      this.stats.opened++;
      const until = performance.now() + maxWaitMs;
      try {
        await this.attack(c, until);
        // then wait for the server to close it
        while (this.running && performance.now() < until && !this.gone(c)) await this.sleep(this.paused ? 200 : 50);
      } catch (e) {
        if (this.stats.errors.length < 5) this.stats.errors.push(`${this.kind}: ${String(e)}`);
      }
      if (this.gone(c)) this.stats.closedByServer++;
      else if (this.running) this.stats.abandoned++;
      else this.stats.openAtStop++;
      this.stats.written += c.written;
      c.destroy();
      await this.sleep(gapMs);
    }
  }

  /** Does what the kind does, returning once the connection only has to be waited on (or is gone). */
  private async attack(c: Conn, until: number): Promise<void> {
    const going = () => this.running && performance.now() < until && !this.gone(c);
    switch (this.kind) {
      case "flood": {
        const round = this.opts.floodRound ?? defaultFloodRound;
        // until the server stops reading (its output to us piles up unread, so it pauses us)
        for (let i = 0; this.running && !c.closed && c.unsent < BACKED_UP; i++) {
          if (i % 16 === 15 && !going()) return;
          c.write(round());
          await Bun.sleep(1);
        }
        return;
      }
      case "history": {
        const h = this.opts.history!;
        const r = await c.request({ t: "login", user: h.user, token: h.token }, 30_000);
        if (r.t !== "ok") throw new Error(`token login: ${JSON.stringify(r)}`);
        c.pause();
        // pages of up to half of --max-frame each, in bursts (one segment, so read at once)
        const burst = concat(Array.from({ length: 16 }, (_, i) => frameOf({ t: "history", group: h.group, limit: 500, id: 1000 + i })));
        while (going()) {
          c.write(burst);
          await this.sleep(1000);
        }
        return;
      }
      case "download": {
        const h = this.opts.download!;
        const r = await c.request({ t: "login", user: h.user, token: h.token }, 30_000);
        if (r.t !== "ok") throw new Error(`token login: ${JSON.stringify(r)}`);
        c.pause();
        // chunks of up to 1 MiB each (max_chunk, §3.9), all over the file, in bursts (one
        // segment, so read at once)
        const len = 1024 * 1024;
        const burst = concat(
          Array.from({ length: 16 }, (_, i) => frameOf({ t: "download", mid: h.mid, offset: (i * len) % Math.max(1, h.size - len), len, id: 1000 + i })),
        );
        while (going()) {
          c.write(burst);
          await this.sleep(1000);
        }
        return;
      }
      case "trickle": {
        const n = 60_000; // under --max-frame-login (64 KiB by default): a frame the server must take
        const head = new Uint8Array(4);
        new DataView(head.buffer).setUint32(0, n);
        c.write(head);
        const one = new Uint8Array(1);
        for (let i = 0; i < n - 1 && going(); i++) {
          c.write(one);
          await this.sleep(250);
        }
        return;
      }
      case "prelogin": {
        const burst = concat([...Array<Uint8Array>(50).fill(frameOf({ t: "groups" })), ...Array<Uint8Array>(50).fill(PING_FRAME)]);
        while (going()) {
          c.write(burst);
          await this.sleep(100);
        }
        return;
      }
      case "badtoken": {
        while (going()) {
          const token = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
          c.write(concat(Array.from({ length: 20 }, (_, i) => frameOf({ t: "login", user: `nobody${i}`, token }))));
          await this.sleep(100);
        }
        return;
      }
    }
  }
}

export function formatHostile(s: HostileStats): string {
  const extra = [s.abandoned ? `${s.abandoned} abandoned` : "", s.openAtStop ? `${s.openAtStop} open at the end` : "", s.errors.length ? `errors: ${s.errors.join("; ")}` : ""].filter(Boolean);
  return `${s.kind}: ${s.opened} opened, ${s.closedByServer} closed by the server, ${(s.written / 1e6).toFixed(1)} MB sent${extra.length ? `, ${extra.join(", ")}` : ""}`;
}
