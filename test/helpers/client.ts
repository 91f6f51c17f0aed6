// A small protocol client for end-to-end tests: real TCP, requests matched by id,
// pushes collected in order with waiters.
import type { Socket } from "bun";
import { isGroupKind } from "../../src/protocol/pushes.ts";
import { frameOf, type Msg, MsgReader } from "./wire.ts";

/** A `msg` push of a change to a group (PROTOCOL.md §3.3): kind create, join, leave, kick... */
export function isGroupChange(m: Msg): boolean {
  return m.t === "msg" && isGroupKind(m.kind);
}

/** SHA-256 of `data`, hex (PROTOCOL.md §3.9). */
export function sha256Hex(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

export class TestClient {
  private sock!: Socket<undefined>;
  private readonly reader = new MsgReader();
  private nextId = 1;
  private seen = 0;
  private readonly waiters = new Set<() => void>();
  /** Every message received, in order (replies and pushes). */
  readonly received: Msg[] = this.reader.msgs;
  /** Unsent bytes: the test client honours backpressure too. */
  private pending: Uint8Array[] = [];
  closed = false;
  user?: string;
  token?: string;

  /** `tls`: connect with TLS, trusting `ca` (PEM) for the server's certificate. */
  static async connect(port: number, host = "127.0.0.1", tls?: { ca: string }): Promise<TestClient> {
    const c = new TestClient();
    const { promise, resolve } = Promise.withResolvers<void>();
    c.sock = await Bun.connect({
      hostname: host,
      port,
      ...(tls ? { tls: { ca: tls.ca, rejectUnauthorized: true } } : {}),
      socket: {
        binaryType: "uint8array",
        open: () => resolve(),
        data: (_s, chunk) => {
          c.reader.push(chunk);
          c.wake();
        },
        drain: () => c.flush(),
        close: () => {
          c.closed = true;
          c.wake();
        },
        error: () => {
          c.closed = true;
          c.wake();
        },
      },
    });
    await promise;
    return c;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = this.sock.write(head);
      if (n < 0) return;
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        return;
      }
      this.pending.shift();
    }
  }

  /** Writes raw bytes (in order, behind anything unsent). */
  writeRaw(bytes: Uint8Array): void {
    this.pending.push(bytes);
    if (this.pending.length === 1) this.flush();
  }

  /** Waits for a message matching `pred` received after `from` (an index into `received`). */
  async waitFor(pred: (m: Msg) => boolean, timeoutMs = 5000, from = 0): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(pred);
      if (found) return found;
      if (this.closed) throw new Error(`connection closed while waiting; got ${JSON.stringify(this.received.slice(-3))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; last: ${JSON.stringify(this.received.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, left);
        function done() {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        }
        const waiters = this.waiters;
        waiters.add(done);
      });
    }
  }

  /** Sends a request with a fresh id and resolves with its reply (ok, pong or error). */
  async request(msg: Msg): Promise<Msg> {
    const id = this.nextId++;
    this.writeRaw(frameOf({ ...msg, id }));
    return this.waitFor((m) => m.id === id && (m.t === "ok" || m.t === "error" || m.t === "pong"));
  }

  /** Like request, but throws on an error reply. */
  async ok(msg: Msg): Promise<Msg> {
    const r = await this.request(msg);
    if (r.t === "error") throw new Error(`${msg.t} failed: ${r.code}: ${r.msg}`);
    return r;
  }

  /** Pushes of type `t` received so far. */
  pushes(t: string): Msg[] {
    return this.received.filter((m) => m.t === t);
  }

  /** Waits for the next push of type `t` not yet taken by nextPush. */
  async nextPush(t: string, timeoutMs = 5000): Promise<Msg> {
    const m = await this.waitFor((x) => x.t === t, timeoutMs, this.seen);
    this.seen = this.received.indexOf(m) + 1;
    return m;
  }

  /** The `msg` pushes received so far that are not changes to a group (messages, edits, reactions...). */
  msgs(): Msg[] {
    return this.received.filter((m) => m.t === "msg" && !isGroupChange(m));
  }

  /** Waits for the next `msg` push not yet taken by nextPush that is not a change to a group (those it passes over). */
  async nextMsg(timeoutMs = 5000): Promise<Msg> {
    const m = await this.waitFor((x) => x.t === "msg" && !isGroupChange(x), timeoutMs, this.seen);
    this.seen = this.received.indexOf(m) + 1;
    return m;
  }

  async register(user: string, pass = "password1"): Promise<void> {
    await this.ok({ t: "register", user, pass });
  }

  async login(user: string, pass = "password1"): Promise<Msg> {
    const r = await this.ok({ t: "login", user, pass });
    this.user = user;
    this.token = r.token;
    return r;
  }

  /**
   * Uploads `data` (PROTOCOL.md §3.9) in chunks of `chunk` bytes (within any test server's
   * max_chunk), one at a time, from the offset
   * the server has: the upload's id, ready for `send {file: {upload, name, type}}`.
   */
  async upload(data: Uint8Array, chunk = 60_000): Promise<string> {
    const sha256 = sha256Hex(data);
    const u = await this.ok({ t: "upload", size: data.length, sha256 });
    let offset = u.offset as number;
    while (offset < data.length) {
      const r = await this.ok({ t: "chunk", upload: u.upload, offset, data: data.subarray(offset, offset + chunk) });
      offset = r.offset as number;
    }
    return u.upload as string;
  }

  /** Uploads `data` and sends it as a file of `target` (with `extra` fields, text say): the send's reply. */
  async sendFile(target: Msg, name: string, type: string, data: Uint8Array, extra: Msg = {}): Promise<Msg> {
    const upload = await this.upload(data);
    return this.ok({ t: "send", ...target, ...extra, file: { upload, name, type } });
  }

  /** Downloads the whole file of message `mid`, `len` bytes a request. */
  async download(mid: number, len?: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (;;) {
      const r = await this.ok({ t: "download", mid, offset, ...(len !== undefined ? { len } : {}) });
      const d = r.data as Uint8Array;
      if (d.length === 0) break;
      parts.push(d);
      offset += d.length;
      if (offset >= (r.size as number)) break;
    }
    return Buffer.concat(parts);
  }

  /** Waits until the server closes the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection was not closed");
      await Bun.sleep(10);
    }
  }

  close(): void {
    this.sock.end();
  }
}
