// The server core: sessions, dispatch, acknowledgement and fan-out. It never
// touches a socket: the transport adapter calls open/data/drain/closed with a
// `Transport`, so tests drive it with fakes and the real server with Bun.listen.
import type { Config } from "../config.ts";
import { encodeFrame, makeBodyDecoder } from "../protocol/codec.ts";
import { type DisconnectReason, type ErrorCode, ProtocolError } from "../protocol/errors.ts";
import { withinDepth } from "../protocol/depth.ts";
import type { FrameEvent } from "../protocol/frame.ts";
import type { Push } from "../protocol/pushes.ts";
import { isRequestType, isUint, validateRequest } from "../protocol/requests.ts";
import type { CommitResult, Store } from "../store/store.ts";
import { Batcher, type Pending } from "./batcher.ts";
import { type Context, DEFER, type Reply, type Result } from "./command.ts";
import { COMMANDS } from "./commands/index.ts";
import { wireMessage } from "./commands/messages.ts";
import { Hub } from "./hub.ts";
import { LoginGuard } from "./guard.ts";
import { PresenceDebounce } from "./presence.ts";
import { Session } from "./session.ts";
import type { Transport } from "./writer.ts";

interface SendTag {
  session: Session;
  id: number | undefined;
}

export interface Logger {
  info(msg: string): void;
  error(msg: string, err?: unknown): void;
}

const consoleLogger: Logger = {
  info: (m) => console.log(m),
  error: (m, e) => console.error(m, e ?? ""),
};

/** Quotes client-supplied text in an error message, cut short. */
function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}

/** Most messages per store read while a connection catches up (each page is also cut by bytes). */
const CATCH_UP_PAGE = 200;

/** Deepest nesting of maps and arrays in a request (PROTOCOL.md §2); a `send` with a file needs 2. */
const MAX_DEPTH = 8;

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

export class ChatCore {
  readonly hub = new Hub<Session>();
  readonly batcher: Batcher<SendTag>;
  private readonly sessions = new Set<Session>();
  private readonly decodeBody: (b: Uint8Array) => unknown;
  private readonly knownUsers = new Set<string>();
  private nextSessionId = 1;
  private stopping = false;
  /** Open connections per client address. */
  private readonly perAddr = new Map<string, number>();
  /** The throttles of login, passwd and register (PROTOCOL.md §3.2). */
  readonly guard: LoginGuard;
  /** Presence announcements, debounced per user (PROTOCOL.md §5.2). */
  private readonly presences: PresenceDebounce;
  private readonly sweeper: Timer;

  constructor(
    readonly config: Config,
    readonly store: Store,
    readonly log: Logger = consoleLogger,
  ) {
    // No request holds an array or a map of more than a few entries (PROTOCOL.md §3).
    this.decodeBody = makeBodyDecoder(config.maxFrame, 256);
    this.guard = new LoginGuard(config);
    this.presences = new PresenceDebounce(
      config.presenceDelay,
      (user) => this.hub.online(user),
      (user, online) => this.presence(user, online),
    );
    // One timer for every connection's timeouts: a scan per second is cheaper than a timer per socket.
    this.sweeper = setInterval(() => this.sweep(performance.now()), 1000);
    this.sweeper.unref();
    this.hub.load(store.allMemberships());
    this.batcher = new Batcher<SendTag>(
      store,
      (p, r) => this.committed(p, r),
      (p, err) => {
        this.log.error("commit failed", err);
        this.error(p.tag.session, p.tag.id, "internal", "the message could not be stored; retry with the same cid");
      },
    );
  }

  // ---- transport events -------------------------------------------------

  open(transport: Transport): Session {
    const s = new Session(
      this.nextSessionId++,
      transport,
      this.config,
      (sess, ev) => this.onFrameEvent(sess, ev),
      (sess) => {
        this.log.info(`session ${sess.id} (${sess.user ?? "-"}): closed as slow consumer`);
        this.closed(sess);
      },
    );
    this.sessions.add(s);
    const addr = transport.remoteAddress;
    const open = (this.perAddr.get(addr) ?? 0) + 1;
    this.perAddr.set(addr, open);
    if (this.config.maxConnsPerAddr > 0 && open > this.config.maxConnsPerAddr) this.bye(s, "too_many_connections");
    return s;
  }

  /** Closes connections past their login or idle timeout; forgets old login failures. */
  sweep(now: number): void {
    const { loginTimeout, idleTimeout, stuckTimeout } = this.config;
    for (const s of this.sessions) {
      if (s.closed) continue;
      if (s.behindSince !== 0 && now - s.behindSince > stuckTimeout * 1000) {
        // Its queue is stuck, so no bye can be written behind it: close it as it is.
        this.log.info(`session ${s.id} (${s.user ?? "-"}): closed, behind for ${stuckTimeout} s`);
        s.transport.terminate();
        this.closed(s);
        continue;
      }
      if (loginTimeout > 0 && s.user === undefined && now - s.openedAt > loginTimeout * 1000) this.bye(s, "login_timeout");
      else if (idleTimeout > 0 && now - s.lastFrameAt > idleTimeout * 1000) this.bye(s, "idle");
    }
    this.guard.prune(now);
  }

  data(s: Session, chunk: Uint8Array): void {
    if (s.closed || this.stopping) return;
    s.decoder.push(chunk);
  }

  drain(s: Session): void {
    s.writer.drain();
    if (s.behindSince !== 0) this.catchUp(s);
  }

  /**
   * Replays, from the store, what a connection that fell behind missed (PROTOCOL.md §5.4):
   * pages of `sync` after the last mid pushed to it, while its queue is below a quarter
   * of the bound; when a page comes back short, everything committed is queued and live
   * pushes resume. Runs between batches (from `drain`), so no commit can slip in between.
   * Each page is filled by bytes, as history and sync are (store.syncSizes, then
   * messagesByMid for what fits): it takes the queue to that quarter and no further (but
   * always holds one message, so the replay moves on), so a conversation of large files
   * does not overflow the queue and close the connection it is catching up.
   */
  private catchUp(s: Session): void {
    const lowWater = s.behindAt / 2;
    while (s.behindSince !== 0 && !s.closed && s.user !== undefined && s.writer.queued < lowWater) {
      const sizes = this.store.syncSizes(s.user, s.lastPushedMid, CATCH_UP_PAGE);
      const room = lowWater - s.writer.queued;
      const mids: number[] = [];
      let bytes = 0;
      for (const r of sizes) {
        if (mids.length > 0 && bytes + r.size > room) break;
        mids.push(r.mid);
        bytes += r.size;
      }
      for (const m of this.store.messagesByMid(mids)) {
        if (s.closed) return; // closed while its replay was queued: nothing more to encode
        s.send(encodeFrame(wireMessage(m, m.mid, m.ts, "msg")));
        s.lastPushedMid = m.mid;
      }
      if (sizes.length < CATCH_UP_PAGE && mids.length === sizes.length) s.behindSince = 0;
    }
  }

  /** The connection is gone (either side closed it). Idempotent. */
  closed(s: Session): void {
    if (!this.sessions.delete(s)) return;
    const addr = s.transport.remoteAddress;
    const open = (this.perAddr.get(addr) ?? 1) - 1;
    if (open > 0) this.perAddr.set(addr, open);
    else this.perAddr.delete(addr);
    s.closed = true;
    s.writer.close();
    s.held.length = 0;
    this.detach(s);
  }

  // ---- login state, presence -------------------------------------------

  /** Routes a session that just logged in; if it is the user's first, presence is announced (debounced). */
  attach(s: Session): void {
    this.knownUsers.add(s.user!);
    s.lastPushedMid = this.store.lastMid(); // live pushes start after what is committed now
    if (this.hub.attach(s)) this.presences.changed(s.user!);
  }

  /** Un-routes a session (close or logout); if it was the user's last, presence is announced (debounced). */
  detach(s: Session): void {
    const user = s.user;
    if (user === undefined) return;
    s.user = undefined;
    s.tokenHash = undefined;
    if (this.hub.detach(s, user)) this.presences.changed(user);
  }

  /** Tells co-members `user`'s presence, once it held for `--presence-delay` (PresenceDebounce). */
  private presence(user: string, online: boolean): void {
    if (this.stopping) return;
    const targets = this.hub.coMembersOnline(user);
    if (targets.size === 0) return;
    const frame = encodeFrame({ t: "presence", user, online } satisfies Push);
    for (const t of targets) this.hub.sendToUser(t, frame);
  }

  userExists(name: string): boolean {
    if (this.knownUsers.has(name)) return true;
    if (!this.store.getUser(name)) return false;
    this.knownUsers.add(name); // users are never deleted: a positive answer stays true
    return true;
  }

  // ---- dispatch ---------------------------------------------------------

  private onFrameEvent(s: Session, ev: FrameEvent): void {
    if (ev.kind === "too_large") {
      // PROTOCOL.md §1: the stream cannot be resynchronised past an oversized frame.
      this.error(s, undefined, "too_large", `frame of ${ev.length} bytes exceeds the limit of ${this.config.maxFrame}`);
      this.bye(s, "too_large");
      return;
    }
    if (s.closed) return;
    const now = performance.now();
    s.lastFrameAt = now;
    // PROTOCOL.md §2.4: a request over the connection's rate is answered and dropped.
    if (!s.msgBucket.take(1, now) || !s.byteBucket.take(ev.body.length + 4, now)) {
      this.error(s, this.peekId(ev.body), "rate_limited", "too many requests: slow down");
      return;
    }
    if (s.busy) {
      if (s.held.length < this.config.maxHeld) {
        s.held.push(ev.body.slice()); // the body is a view of the read buffer: copy to keep it
      } else {
        this.error(s, this.peekId(ev.body), "rate_limited", "too many requests while a login is in progress");
      }
      return;
    }
    this.handleFrame(s, ev.body);
  }

  /** The `id` of a frame that will not be handled, if it has a valid one, for the error reply. */
  private peekId(body: Uint8Array): number | undefined {
    if (!withinDepth(body, MAX_DEPTH)) return undefined; // the same guard as handleFrame's, before any decode
    try {
      const m = this.decodeBody(body);
      return isMap(m) && isUint(m.id) ? m.id : undefined;
    } catch {
      return undefined;
    }
  }

  /** Decode, check, dispatch one frame, in the order of PROTOCOL.md §2.2. */
  handleFrame(s: Session, body: Uint8Array): void {
    if (!withinDepth(body, MAX_DEPTH)) {
      this.error(s, undefined, "bad_frame", `nested deeper than ${MAX_DEPTH} levels`);
      return;
    }
    let m: unknown;
    try {
      m = this.decodeBody(body);
    } catch (e) {
      this.error(s, undefined, "bad_frame", `not one valid MessagePack value: ${(e as Error).message}`);
      return;
    }
    if (!isMap(m)) {
      this.error(s, undefined, "bad_frame", "a frame must hold one MessagePack map");
      return;
    }
    let id: number | undefined;
    if (m.id !== undefined && m.id !== null) {
      if (!isUint(m.id)) {
        this.error(s, undefined, "bad_request", "'id' must be an unsigned integer");
        return;
      }
      id = m.id;
    }
    const t = m.t;
    if (typeof t !== "string") {
      this.error(s, id, "bad_request", "'t' must be a string naming the request");
      return;
    }
    if (!isRequestType(t)) {
      this.error(s, id, "unknown_type", `unknown request type ${quote(t)}`);
      return;
    }
    const cmd = COMMANDS[t];
    if (cmd.auth && s.user === undefined) {
      this.error(s, id, "unauthorized", `log in before "${t}"`);
      return;
    }
    let result: Result;
    try {
      const req = validateRequest(t, m, id);
      result = (cmd.run as (c: Context, r: unknown) => Result)({ core: this, session: s }, req);
    } catch (e) {
      this.fail(s, id, e);
      return;
    }
    if (result === DEFER) return;
    if (result instanceof Promise) {
      s.busy = true;
      result
        .then(
          (r) => this.reply(s, id, r),
          (e) => this.fail(s, id, e),
        )
        .finally(() => {
          s.busy = false;
          this.runHeld(s);
        });
      return;
    }
    this.reply(s, id, result);
  }

  /** Runs frames that arrived while an async request was in progress, in order. */
  private runHeld(s: Session): void {
    while (!s.busy && !s.closed && s.held.length > 0) this.handleFrame(s, s.held.shift()!);
  }

  // ---- replies ----------------------------------------------------------

  private reply(s: Session, id: number | undefined, r: Reply): void {
    if (s.closed) return;
    s.send(encodeFrame({ t: "ok", id, ...r }));
  }

  error(s: Session, id: number | undefined, code: ErrorCode, msg: string): void {
    if (s.closed) return;
    s.send(encodeFrame({ t: "error", id, code, msg }));
  }

  private fail(s: Session, id: number | undefined, e: unknown): void {
    if (e instanceof ProtocolError) {
      this.error(s, id, e.code, e.message);
    } else {
      this.log.error(`session ${s.id}: request failed`, e);
      this.error(s, id, "internal", "internal error");
    }
  }

  /** Sends `bye {reason}` after everything queued, then closes the connection. PROTOCOL.md §5.3 */
  bye(s: Session, reason: DisconnectReason): void {
    if (s.closed) return;
    s.send(encodeFrame({ t: "bye", reason } satisfies Push));
    s.writer.end();
    s.closed = true; // no more input; `closed()` still runs when the transport reports the close
  }

  // ---- commit, acknowledge, fan out ------------------------------------

  /** A message is committed: ack its sender, then send the same bytes to every other recipient session. */
  private committed(p: Pending<SendTag>, r: CommitResult): void {
    const { session, id } = p.tag;
    this.reply(session, id, { mid: r.mid, ts: r.ts });
    if (r.duplicate) return; // delivered when it was first committed
    const m = p.msg;
    const frame = encodeFrame(wireMessage(m, r.mid, r.ts, "msg"));
    if (m.grp !== undefined) {
      this.hub.pushToGroup(m.grp, frame, r.mid, session);
    } else {
      this.hub.pushToUser(m.sender, frame, r.mid, session);
      if (m.toUser !== m.sender) this.hub.pushToUser(m.toUser!, frame, r.mid);
    }
  }

  // ---- shutdown ---------------------------------------------------------

  assertRunning(): void {
    if (this.stopping) throw new ProtocolError("internal", "the server is shutting down");
  }

  /**
   * Graceful stop: commit and acknowledge what is pending, send `bye` to every
   * connection, wait (up to the grace period) for queued bytes to leave, close
   * the rest and the store. The caller has stopped accepting connections.
   */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.sweeper);
    this.batcher.flush(true);
    const all = [...this.sessions];
    for (const s of all) this.bye(s, "shutdown");
    const deadline = Date.now() + this.config.shutdownGrace;
    while (Date.now() < deadline && all.some((s) => this.sessions.has(s) && !s.writer.idle)) {
      await Bun.sleep(10);
    }
    for (const s of all) {
      if (!this.sessions.has(s)) continue;
      s.transport.terminate(); // grace period over: whatever is still unsent is dropped
      this.closed(s);
    }
    this.store.close();
  }
}
