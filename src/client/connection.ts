// One connection to the server, over TCP or WebSocket (the Endpoint's link): frames in
// (FrameDecoder + body decoder from src/protocol; over WebSocket each message is one body),
// frames out (through the one Writer, src/io/writer.ts; over WebSocket without the 4-byte
// length, one per message), and requests matched
// to replies by `id` (PROTOCOL.md §2: replies may come in another order than the
// requests). Pushes go to the owner. It knows nothing of login or reconnecting.
import { encodeFrame, makeBodyDecoder } from "../protocol/codec.ts";
import { FrameDecoder, HEADER_BYTES } from "../protocol/frame.ts";
import { CHUNK_MAX } from "../protocol/requests.ts";
import type { Push } from "../protocol/pushes.ts";
import { chatErrorFrom, DisconnectedError, TimeoutError } from "./errors.ts";
import type { Endpoint, Link, ServerInfo } from "./link.ts";
import { type PaceOptions, Pacer } from "./pacer.ts";
import { Writer } from "../io/writer.ts";

type Reply = Record<string, unknown>;

interface Pending {
  t: string;
  resolve(r: Reply): void;
  reject(e: Error): void;
  timer?: ReturnType<typeof setTimeout>;
}

export interface ConnectionEvents {
  push(c: Connection, p: Push): void;
  /** The connection is gone; `bye` is the reason the server gave, if it said goodbye. */
  closed(c: Connection, bye: string | undefined, error?: Error): void;
  /** A reply that matches no request (an `error` without `id`, such as `bad_frame`), or a protocol violation. */
  stray(c: Connection, m: Reply): void;
}

export interface ConnectionOptions {
  endpoint: Endpoint;
  connectTimeoutMs: number;
  maxFrame: number;
  /** Request pacing (PROTOCOL.md §2.4), or false for none. */
  pace: PaceOptions | false;
}

/**
 * How many requests of the server's rate a request costs: one, and a `download` one more per
 * 256 KiB of its `len` (PROTOCOL.md §3.9; `len` defaults to the largest chunk). The pacer
 * counts the same, so that downloads in a window are not refused with `rate_limited`.
 */
export function requestCost(req: { t: string; len?: unknown }): number {
  if (req.t !== "download") return 1;
  const len = typeof req.len === "number" ? req.len : CHUNK_MAX;
  return 1 + Math.floor(len / (256 * 1024));
}

function isMap(v: unknown): v is Reply {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export class Connection {
  private link!: Link;
  private readonly writer: Writer;
  private readonly pacer: Pacer | undefined;
  private readonly decoder: FrameDecoder;
  private readonly decodeBody: (b: Uint8Array) => unknown;
  private readonly maxFrame: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** The reason of the server's `bye`, once received. */
  bye: string | undefined;
  closed = false;
  /** The server this connection goes to. */
  readonly server: ServerInfo;
  private readonly whenClosed = Promise.withResolvers<void>();

  private constructor(
    opts: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.server = opts.endpoint.server;
    // The server's writer, as is (queue, short writes, drain, end-of-turn coalescing; one frame
    // per write to a WebSocket). No bound: what the app sends is bounded by the outbox and the
    // pacer, not by dropping the connection.
    const link = () => this.link;
    this.writer = new Writer(
      {
        write: (b) => this.link.write(b),
        get messages() {
          return link().messages;
        },
        end: () => this.link.end(),
        terminate: () => this.link.terminate(),
      },
      Number.MAX_SAFE_INTEGER,
      () => {},
    );
    this.pacer = opts.pace === false ? undefined : new Pacer(opts.pace, (f) => this.writer.send(f));
    // Containers of up to a million entries: a page holds at most --max-page messages (default 500).
    this.decodeBody = makeBodyDecoder(opts.maxFrame, 1_000_000);
    this.maxFrame = opts.maxFrame;
    this.decoder = new FrameDecoder(opts.maxFrame, (ev) => {
      if (ev.kind === "too_large") {
        this.tooLarge(ev.length);
        return;
      }
      if (ev.kind !== "frame") return; // "skipped" needs an `admit` hook, which the client does not give
      this.onBody(ev.body);
    });
  }

  static async open(opts: ConnectionOptions, events: ConnectionEvents): Promise<Connection> {
    const c = new Connection(opts, events);
    c.link = await opts.endpoint.dial(opts.connectTimeoutMs, {
      data: (chunk) => {
        if (c.closed) return;
        if (!c.link.messages) c.decoder.push(chunk);
        else if (chunk.length > c.maxFrame) c.tooLarge(chunk.length);
        else c.onBody(chunk);
      },
      drain: () => c.writer.drain(),
      closed: (err) => c.onClosed(err),
    });
    return c;
  }

  /** Requests waiting for a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends a request with a fresh `id`; resolves with the `ok`/`pong` reply, rejects
   * with a ChatError (an `error` reply), TimeoutError, or DisconnectedError.
   * `check` sees the encoded body size before anything is written; an error it
   * returns rejects the request unsent. `timeoutMs` 0: no timeout.
   */
  request(
    req: { t: string } & Record<string, unknown>,
    timeoutMs: number,
    check?: (bodyBytes: number) => Error | undefined,
  ): Promise<Reply> {
    if (this.closed) return Promise.reject(new DisconnectedError(req.t));
    const id = this.nextId++;
    const bytes = encodeFrame({ ...req, id });
    const refused = check?.(bytes.length - HEADER_BYTES);
    if (refused) return Promise.reject(refused);
    const { promise, resolve, reject } = Promise.withResolvers<Reply>();
    const p: Pending = { t: req.t, resolve, reject };
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      p.timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(req.t, timeoutMs));
      }, timeoutMs);
    }
    this.pending.set(id, p);
    // A WebSocket message is the body alone (PROTOCOL.md §1.1).
    const frame = this.link.messages ? bytes.subarray(HEADER_BYTES) : bytes;
    if (this.pacer) this.pacer.send(frame, requestCost(req));
    else this.writer.send(frame);
    return promise;
  }

  private tooLarge(length: number): void {
    this.events.stray(this, { t: "error", code: "too_large", msg: `server frame of ${length} bytes exceeds maxFrame` });
    this.terminate();
  }

  /** One frame's body: a MessagePack map. */
  private onBody(body: Uint8Array): void {
    let m: unknown;
    try {
      m = this.decodeBody(body);
    } catch (e) {
      this.events.stray(this, { t: "error", code: "bad_frame", msg: `undecodable frame from server: ${(e as Error).message}` });
      this.terminate();
      return;
    }
    if (isMap(m)) this.onMessage(m);
    else this.events.stray(this, { t: "error", code: "bad_frame", msg: "a frame from the server is not a map" });
  }

  /** Ends the connection after what is queued; resolves when it is closed (terminated after `graceMs`). */
  async end(graceMs = 1000): Promise<void> {
    this.pacer?.close(); // requests still waiting for their turn are not sent
    if (!this.closed) this.writer.end();
    const timer = setTimeout(() => this.terminate(), graceMs);
    await this.whenClosed.promise;
    clearTimeout(timer);
  }

  /** Closes at once; `closed` follows. */
  terminate(): void {
    if (this.closed) return;
    this.link.terminate();
    // Bun reports the close from terminate() itself; make sure it is seen even if not.
    this.onClosed(undefined);
  }

  private onMessage(m: Reply): void {
    const t = m.t;
    if (t === "msg" || t === "presence" || t === "bye" || t === "typing") {
      if (t === "bye") this.bye = typeof m.reason === "string" ? m.reason : "";
      this.events.push(this, m as unknown as Push);
      return;
    }
    const id = m.id;
    const p = typeof id === "number" ? this.pending.get(id) : undefined;
    if (!p) {
      this.events.stray(this, m);
      return;
    }
    this.pending.delete(id as number);
    clearTimeout(p.timer);
    if (t === "error") {
      p.reject(chatErrorFrom(m.code, m.msg, p.t));
    } else {
      const { t: _t, id: _id, ...fields } = m;
      p.resolve(fields);
    }
  }

  private onClosed(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.pacer?.close();
    this.writer.close();
    const gone = [...this.pending.values()];
    this.pending.clear();
    for (const p of gone) {
      clearTimeout(p.timer);
      p.reject(new DisconnectedError(p.t, { cause: err }));
    }
    this.whenClosed.resolve();
    this.events.closed(this, this.bye, err);
  }
}
