// A lean protocol connection for the crash and fuzz tests: real TCP, replies
// matched by id through callbacks (no scanning of everything received), pushes
// handed to a callback, every frame the server writes checked with the strict
// decoder (valid MessagePack, a map, valid UTF-8), raw writes with backpressure.
import { readFileSync } from "node:fs";
import type { Socket } from "bun";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { decodeStrict, enc, framed, hex, toJS, type W } from "./fuzz-msgpack.ts";

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
