// The server core: sessions, dispatch, acknowledgement and fan-out. It never
// touches a socket: the transport adapter calls open/data/drain/closed with a
// `Transport`, so tests drive it with fakes and the real server with Bun.listen.
import type { Config } from "../config.ts";
import { encodeFrame } from "../protocol/codec.ts";
import { makeRequestDecoder } from "../protocol/decode.ts";
import "../protocol/native-utf8.ts"; // frames encoded with Bun's native UTF-8 writer
import { type DisconnectReason, type ErrorCode, ProtocolError } from "../protocol/errors.ts";
import { scanBody, withinDepth } from "../protocol/depth.ts";
import type { FrameEvent } from "../protocol/frame.ts";
import type { Push } from "../protocol/pushes.ts";
import { isRequestType, isUint, validateRequest } from "../protocol/requests.ts";
import type { Broker, Change, Delivery, Typing } from "../broker/broker.ts";
import { LocalBroker } from "../broker/local.ts";
import type { CommitResult, GroupOpResult, NewMessage, Position, Store } from "../store/store.ts";
import { type GroupOp, routingOf } from "../store/groups.ts";
import { Batcher, type Pending } from "./batcher.ts";
import { type Context, DEFER, type Reply, type Result } from "./command.ts";
import { COMMANDS } from "./commands/index.ts";
import { toWire, wireMessage } from "./commands/messages.ts";
import { addressKey, descriptorLimit } from "./address.ts";
import { Budget } from "./budget.ts";
import { Bucket } from "./limits.ts";
import { Hub } from "./hub.ts";
import { LoginGuard } from "./guard.ts";
import { PresenceDebounce } from "./presence.ts";
import { Session } from "./session.ts";
import { CoreStats, type TransportKind } from "./stats.ts";
import type { Transport } from "../io/writer.ts";

/** What the connections of one address share (PROTOCOL.md §2.4). */
interface AddrState {
  conns: number;
  msgs: Bucket;
  bytes: Bucket;
}

interface SendTag {
  session: Session;
  id: number | undefined;
  /** performance.now() when the send was queued, for the send-to-ack latency (CoreStats.ackSeconds). */
  at: number;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  info(msg: string): void;
  error(msg: string, err?: unknown): void;
  /**
   * One structured event (src/ops/log.ts): its name and fields, never a password, token or
   * message text. A logger without it gets the event's `msg` through info/error.
   */
  event?(level: LogLevel, event: string, fields: Record<string, unknown>): void;
}

/** How a session arrived (a WebSocket's transport is a message sink). */
export function transportOf(s: Session): TransportKind {
  return s.transport.messages ? "ws" : "tcp";
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

/** A refused frame at most this long is still read (not decoded beyond its `id`), so its error can carry the id. */
const PEEK_MAX = 256;

/** Descriptors kept free for the database, its WAL and the listening sockets: --max-conns is lowered to leave them. */
const SPARE_FDS = 128;

/** Shedding (over `--max-buffered`): output unread this long, or read slower than MIN_DRAIN, counts as stalled. */
const STALL_MS = 2000;
const MIN_DRAIN = 64 * 1024;

/** Requests whose outcome is logged (src/ops/log.ts) and counted: accounts and group creation. */
const AUDITED = new Set(["login", "register", "passwd", "create"]);
/** One connection's typing in one conversation is passed on at most once in this many ms (PROTOCOL.md §5.5). */
export const TYPING_EVERY_MS = 3000;

/** How often the store's housekeeping (expired tokens, WAL truncation) runs, in sweeps (seconds). */
const MAINTAIN_EVERY = 60;

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** What the core reads from the store before it serves anyone (ChatCore.open). */
export interface Loaded {
  /** Every membership, for the hub's routing maps. */
  memberships: Array<{ grp: string; user: string }>;
  /** The store's position, read before the memberships: commits after it come through the broker. */
  position: Position;
}

export class ChatCore implements Context {
  readonly hub = new Hub<Session>();
  /** Counts for /metrics (src/ops/metrics.ts). */
  readonly stats = new CoreStats();
  readonly batcher: Batcher<SendTag>;
  /**
   * The highest mid delivered to this node's sessions (or committed before the start): a
   * login's live pushes begin after it (PROTOCOL.md §3.2, the login reply's `mid`).
   */
  private lastDelivered: number;
  private readonly sessions = new Set<Session>();
  private readonly decodeBody: (b: Uint8Array) => unknown;
  private readonly knownUsers = new Set<string>();
  private nextSessionId = 1;
  private stopping = false;
  /** Per client address key (IPv6: per /64): open connections and the request rates they share. */
  private readonly perAddr = new Map<string, AddrState>();
  /** performance.now() of the last shed, so a burst over the budget does not rescan every turn. */
  private lastShed = -Infinity;
  /** Open connections in all, and the most allowed (`--max-conns`, or the descriptor limit less a margin). */
  private connCount = 0;
  readonly maxConns: number;
  /** Unsent output and held input of every connection (`--max-buffered`). */
  readonly budget: Budget;
  /** Input is paused on every connection: shedding stalled connections did not bring the budget back. */
  private inputPaused = false;
  private sweeps = 0;
  /** The throttles of login, passwd and register (PROTOCOL.md §3.2). */
  readonly guard: LoginGuard;
  /** Presence announcements, debounced per user (PROTOCOL.md §5.2). */
  private readonly presences: PresenceDebounce;
  private readonly sweeper: Timer;
  /** The messages of the batch being acknowledged, handed to the broker as one commit (onBatch). */
  private batchDeliveries: Delivery[] = [];

  /**
   * A core on `store`, its routing maps loaded from it first. Delivery goes through `broker`
   * (src/broker/broker.ts): by default this node's own, which fans out at once.
   */
  static async open(config: Config, store: Store, log: Logger = consoleLogger, broker: Broker = new LocalBroker()): Promise<ChatCore> {
    // Position first: a change committed between the two reads is in the memberships read and
    // is applied again by the broker, which is harmless (adding a member twice changes nothing).
    const position = await store.position();
    const memberships = await store.allMemberships();
    const core = new ChatCore(config, store, log, broker, { memberships, position });
    await core.started;
    return core;
  }

  /** Resolves once the broker delivers to this core (ChatCore.open waits for it). */
  readonly started: Promise<void>;

  constructor(
    readonly config: Config,
    readonly store: Store,
    readonly log: Logger,
    private readonly broker: Broker,
    loaded: Loaded,
  ) {
    // No request holds an array or a map of more than a few entries (PROTOCOL.md §3).
    this.decodeBody = makeRequestDecoder({ maxBytes: config.maxFrame, maxItems: 256 });
    this.guard = new LoginGuard(config);
    this.presences = new PresenceDebounce(
      config.presenceDelay,
      (user) => this.online(user),
      (user, online) => this.presence(user, online),
    );
    // One timer for every connection's timeouts: a scan per second is cheaper than a timer per socket.
    this.budget = new Budget(config.maxBuffered, () => this.shed(performance.now()));
    // Below the descriptor limit, so that accepting never fails for want of descriptors (§1).
    this.maxConns = Math.max(1, Math.min(config.maxConns, (descriptorLimit() ?? 1024) - SPARE_FDS));
    this.sweeper = setInterval(() => this.sweep(performance.now()), 1000);
    this.sweeper.unref();
    this.hub.load(loaded.memberships);
    this.lastDelivered = loaded.position.mid;
    this.batcher = new Batcher<SendTag>(
      store,
      (p, r) => this.committed(p, r),
      (p, err) => {
        this.log.error("commit failed", err);
        this.error(p.tag.session, p.tag.id, "unavailable", "the message could not be stored (the database failed); retry with the same cid");
      },
      (seq) => {
        const batch = this.batchDeliveries;
        this.batchDeliveries = [];
        this.broker.commit(seq, batch);
      },
    );
    this.started = broker.start(
      {
        deliver: (d) => this.deliver(d),
        change: (c) => this.applyChange(c),
        missed: (pos) => this.missed(pos),
        presence: (user) => this.presences.changed(user),
        revoke: (user, reason) => {
          for (const s of this.hub.sessionsOf(user)) this.bye(s, reason ?? "password_changed");
        },
        typing: (t) => this.tellTyping(t),
      },
      loaded.position.seq,
    );
  }

  /** One structured log event (Logger.event), or its `msg` as a plain line. */
  event(level: LogLevel, name: string, fields: Record<string, unknown>): void {
    if (this.log.event) this.log.event(level, name, fields);
    else if (level === "error") this.log.error(String(fields.msg ?? name));
    else this.log.info(String(fields.msg ?? name));
  }

  /**
   * The outcome of a login, register, passwd or join, counted and logged: the user name and
   * address, never the password or token (`req` is the request map; only names are read).
   */
  private audit(s: Session, t: string, req: Record<string, unknown>, r: Reply | undefined, e: unknown): void {
    const user = typeof req.user === "string" ? req.user : s.user;
    const base = { sid: s.id, user, addr: s.transport.remoteAddress, transport: transportOf(s) };
    const code = e instanceof ProtocolError ? e.code : e !== undefined ? "internal" : undefined;
    if (t === "login") {
      if (code === undefined && s.user !== undefined) {
        this.stats.logins++;
        this.event("info", "login.ok", { ...base, method: req.token !== undefined ? "token" : "password" });
      } else if (code !== undefined) {
        this.stats.loginFailures++;
        this.event("warn", "login.fail", { ...base, method: req.token !== undefined ? "token" : "password", code });
      }
    } else if (t === "register") {
      this.event(code === undefined ? "info" : "warn", code === undefined ? "user.registered" : "register.fail", { ...base, code });
    } else if (t === "passwd") {
      this.event(code === undefined ? "info" : "warn", code === undefined ? "password.changed" : "passwd.fail", { ...base, user: s.user, code });
    } else if (t === "create" && r !== undefined) {
      this.event("info", "group.created", { ...base, user: s.user, group: req.group });
    }
  }

  /** Every open connection (admin `sessions`, metrics). */
  get allSessions(): ReadonlySet<Session> {
    return this.sessions;
  }

  /**
   * Closes every session of `user`, here and on the other nodes of a cluster, with
   * `bye {reason}` (admin kick, ban, reset-password, delete-user). Returns how many were here.
   */
  disconnectUser(user: string, reason: DisconnectReason): number {
    const here = this.hub.sessionsOf(user);
    for (const s of here) this.bye(s, reason);
    this.broker.revoke(user, reason);
    return here.length;
  }

  /** A user whose account was deleted is no longer known (a send to them gets not_found on this node). */
  forgetUser(user: string): void {
    this.knownUsers.delete(user);
  }

  // ---- transport events -------------------------------------------------

  open(transport: Transport): Session {
    const s = new Session(
      this.nextSessionId++,
      transport,
      addressKey(transport.remoteAddress),
      this.config,
      {
        frame: (sess, ev) => this.onFrameEvent(sess, ev),
        admit: (sess, n) => this.admit(sess, n),
        overflow: (sess) => {
          sess.closeReason ??= "slow_consumer";
          sess.closeNote ??= "closed as slow consumer";
          this.closed(sess);
        },
        flushed: (sess) => {
          if (sess.readPaused) this.checkReading(sess);
        },
      },
      this.budget,
    );
    this.sessions.add(s);
    this.connCount++;
    this.stats.opened[transportOf(s)]++;
    this.event("info", "conn.open", { sid: s.id, transport: transportOf(s), addr: transport.remoteAddress });
    let a = this.perAddr.get(s.addr);
    if (!a) {
      const now = performance.now();
      a = {
        conns: 0,
        msgs: new Bucket(this.config.rateMsgsAddr, this.config.rateBurst, now),
        bytes: new Bucket(this.config.rateBytesAddr, this.config.rateBurst, now),
      };
      this.perAddr.set(s.addr, a);
    }
    const open = ++a.conns;
    s.addrLimits = a;
    // PROTOCOL.md §1: refused at once, before anything of theirs is read.
    if (this.connCount > this.maxConns || (this.config.maxConnsPerAddr > 0 && open > this.config.maxConnsPerAddr))
      this.bye(s, "too_many_connections");
    else if (this.inputPaused) this.setReading(s, false);
    return s;
  }

  /** Closes connections past their login or idle timeout; forgets old login failures. */
  sweep(now: number): void {
    const { loginTimeout, idleTimeout, stuckTimeout, writeTimeout } = this.config;
    for (const s of this.sessions) {
      s.sample();
      // Whatever its state (also after a `bye`), output that the client has not read for
      // --write-timeout closes the connection outright: nothing more can be written behind it.
      if (s.writer.queued > 0 && now - s.writer.progressAt > writeTimeout * 1000) {
        this.terminate(s, "write_timeout", `closed, nothing read for ${writeTimeout} s`);
        continue;
      }
      if (s.closed) continue;
      if (s.behindSince !== 0 && now - s.behindSince > stuckTimeout * 1000) {
        // Its queue is stuck, so no bye can be written behind it: close it as it is.
        this.terminate(s, "stuck", `closed, behind for ${stuckTimeout} s`);
        continue;
      }
      if (loginTimeout > 0 && s.user === undefined && now - s.openedAt > loginTimeout * 1000) this.bye(s, "login_timeout");
      else if (idleTimeout > 0 && now - s.lastFrameAt > idleTimeout * 1000) this.bye(s, "idle");
    }
    this.guard.prune(now);
    for (const [k, a] of this.perAddr) if (a.conns === 0 && a.msgs.full(now) && a.bytes.full(now)) this.perAddr.delete(k);
    if (this.budget.used > this.budget.max) this.shed(now, true); // a connection may have stalled since
    this.checkBudget();
    if (++this.sweeps % MAINTAIN_EVERY === 0) this.maintain();
  }

  /** The store's housekeeping (expired tokens, WAL truncation, uploads not sent in --upload-ttl), once a minute. */
  private maintain(): void {
    const now = Date.now();
    this.store.maintain(now).catch((e) => this.log.error("store maintenance failed", e));
    this.store.expireUploads(now - this.config.uploadTtl * 1000).catch((e) => this.log.error("expiring uploads failed", e));
  }

  data(s: Session, chunk: Uint8Array): void {
    if (s.closed || this.stopping) return;
    s.lastReadAt = performance.now();
    s.received += chunk.length;
    s.decoder.push(chunk);
    this.checkReading(s);
  }

  drain(s: Session): void {
    s.writer.drain();
    if (s.behindSince !== 0) void this.catchUp(s);
    this.checkReading(s);
  }

  // ---- backpressure, memory budget --------------------------------------

  /**
   * A connection whose own output is piling up (a quarter of --max-queue unread) is not
   * read until it drains below an eighth: a client that does not read its replies cannot
   * make the server queue more of them (PROTOCOL.md §2.4). Nor one whose requests held
   * behind a login or register reach --max-held-bytes (until they have run), nor any
   * connection while the server is over its budget and shedding stalled ones did not help.
   */
  private checkReading(s: Session): void {
    if (s.closed) return;
    const q = s.writer.cost;
    const quarter = this.config.maxQueue / 4;
    const heldFull = s.waitingBytes >= this.config.maxHeldBytes;
    // The budget's pause lets a frame being received finish (its buffer could not drain otherwise).
    const budgetPause = this.inputPaused && s.decoder.allocated === 0;
    if (budgetPause || q > quarter || heldFull) this.setReading(s, false);
    else if (q < quarter / 2) this.setReading(s, true);
  }

  private setReading(s: Session, on: boolean): void {
    if (s.readPaused === !on) return;
    s.readPaused = !on;
    if (on) s.transport.resume();
    else s.transport.pause();
  }

  /**
   * Over --max-buffered: closes stalled connections (output unread, or a frame whose bytes
   * stopped coming), those holding the most first, until the total is back under 90% of
   * the budget. Connections that keep reading are never closed for it; if closing the
   * stalled ones is not enough, input stops on every connection until the total drops
   * below 75% (the sweep and every drain check), so the total stops growing.
   */
  shed(now: number, fromSweep = false): void {
    if (!fromSweep && now - this.lastShed < 250) return; // the sweep comes back within a second
    this.lastShed = now;
    const target = this.budget.max * 0.9;
    const stalled = [...this.sessions].filter((s) => s.stalled(now, STALL_MS, MIN_DRAIN)).sort((a, b) => b.cost - a.cost);
    for (const s of stalled) {
      if (this.budget.used <= target) break;
      this.terminate(s, "memory", "closed to bring buffered memory under --max-buffered");
    }
    if (this.budget.used > this.budget.max && !this.inputPaused) {
      this.inputPaused = true;
      this.event("warn", "input.paused", { msg: "over --max-buffered with no stalled connection left to close: input paused" });
      for (const s of this.sessions) this.checkReading(s);
    }
  }

  /** Resumes input after `shed` paused it, once the budget has room again. */
  private checkBudget(): void {
    if (!this.inputPaused || this.budget.used > this.budget.max * 0.75) return;
    this.inputPaused = false;
    this.event("info", "input.resumed", { msg: "buffered memory back under 75% of --max-buffered: input resumed" });
    for (const s of this.sessions) this.checkReading(s);
  }

  /** Closes a connection at once, discarding what is unsent (no `bye` can be written behind it). */
  terminate(s: Session, reason = "terminated", note?: string): void {
    s.closeReason ??= reason;
    if (note !== undefined) s.closeNote ??= note;
    s.transport.terminate();
    this.closed(s);
  }

  /**
   * Replays, from the store, what a connection that fell behind missed (PROTOCOL.md §5.4):
   * pages of `sync` after the last mid pushed to it, while its queue is below a quarter
   * of the bound; when a page comes back short, everything committed is queued and live
   * pushes resume. Each page is filled by bytes, as history and sync are (store.syncSizes,
   * then messagesByMid for what fits): it takes the queue to that quarter and no further
   * (but always holds one message, so the replay moves on), so a conversation of large
   * files does not overflow the queue and close the connection it is catching up.
   *
   * The reads are async, so commits can land while a page is read; exactly once and in
   * order still holds. While behind, the session's live pushes are skipped and the highest
   * skipped mid is kept (Session.lastSkippedMid). A message is committed before it is
   * delivered, so a read that began after a skip sees the skipped message (if the connection
   * is still owed it: not if its user left that group since). Live pushes resume after a short
   * page only if no push was skipped while it was read; a skip during the read (of a message
   * the read may have missed) makes the loop read again. A page holds only messages
   * delivered before its read began (mid <= lastDelivered then): one committed but not yet
   * delivered is left to its delivery, which comes after, in mid order, so nothing is
   * pushed twice. One replay per connection at a time.
   */
  private async catchUp(s: Session): Promise<void> {
    if (s.catchingUp) return; // the running replay sees this drain's room when its read returns
    s.catchingUp = true;
    try {
      const lowWater = s.behindAt / 2;
      while (s.behindSince !== 0 && !s.closed && s.user !== undefined && s.writer.queued < lowWater) {
        const user = s.user;
        const skipped = s.lastSkippedMid;
        const bound = this.lastDelivered;
        const read = await this.store.syncSizes(user, s.lastPushedMid, CATCH_UP_PAGE);
        if (s.behindSince === 0 || s.closed || s.user !== user) return; // logged out or closed meanwhile
        // Ascending by mid: what was delivered before the read began; all of it when the read
        // came back short or reached past the bound.
        let n = 0;
        while (n < read.length && read[n]!.mid <= bound) n++;
        const sizes = n === read.length ? read : read.slice(0, n);
        const whole = read.length < CATCH_UP_PAGE || n < read.length;
        const room = lowWater - s.writer.queued;
        const mids: number[] = [];
        let bytes = 0;
        for (const r of sizes) {
          if (mids.length > 0 && bytes + r.size > room) break;
          mids.push(r.mid);
          bytes += r.size;
        }
        const msgs = mids.length > 0 ? await this.store.messagesByMid(mids) : [];
        if (s.behindSince === 0 || s.closed || s.user !== user) return;
        for (const m of msgs) {
          if (s.closed) return; // closed while its replay was queued: nothing more to encode
          s.send(encodeFrame(toWire(m, "msg")));
          s.lastPushedMid = m.mid;
          this.stats.deliveries++;
          this.stats.replayed++;
        }
        // Progress: --stuck-timeout counts from the last page the reader made room for (§5.4).
        if (mids.length > 0) s.behindSince = performance.now();
        if (whole && mids.length === sizes.length && s.lastSkippedMid === skipped) s.behindSince = 0;
      }
    } catch (e) {
      // The next drain tries again; --stuck-timeout closes a connection whose replay never moves on.
      if (!this.stopping) this.log.error(`session ${s.id}: catch-up read failed`, e);
    } finally {
      s.catchingUp = false;
    }
  }

  /** The connection is gone (either side closed it). Idempotent. */
  closed(s: Session): void {
    if (!this.sessions.delete(s)) return;
    this.connCount--;
    const reason = s.closeReason ?? "client";
    this.stats.closed[reason] = (this.stats.closed[reason] ?? 0) + 1;
    this.stats.closedBytesIn += s.received;
    this.stats.closedBytesOut += s.writer.written;
    this.event(s.closeNote !== undefined ? "warn" : "info", "conn.close", {
      sid: s.id,
      user: s.user,
      transport: transportOf(s),
      addr: s.transport.remoteAddress,
      reason,
      ms: Math.round(performance.now() - s.openedAt),
      bytes_in: s.received,
      bytes_out: s.writer.written,
      msg: `session ${s.id} (${s.user ?? "-"}): ${s.closeNote ?? `closed (${reason})`}`,
    });
    const a = this.perAddr.get(s.addr);
    if (a) a.conns--; // forgotten by the sweep once its buckets are full again
    s.closed = true;
    s.writer.close();
    s.releaseInput();
    s.behindSince = 0;
    this.detach(s);
  }

  // ---- login state, presence -------------------------------------------

  /** Routes a session that just logged in; if it is the user's first, presence is announced (debounced). */
  attach(s: Session): Promise<void> | undefined {
    this.knownUsers.add(s.user!);
    s.lastPushedMid = this.lastDelivered; // live pushes start after what is delivered now
    if (!this.hub.attach(s)) return undefined;
    const told = this.broker.presence(s.user!, true);
    this.presences.changed(s.user!);
    return told;
  }

  /** Un-routes a session (close or logout); if it was the user's last, presence is announced (debounced). */
  detach(s: Session): void {
    const user = s.user;
    if (user === undefined) return;
    s.user = undefined;
    s.tokenHash = undefined;
    // A logged-out connection gets no pushes: whatever it was behind on is no longer owed (§5.4).
    s.behindSince = 0;
    if (this.hub.detach(s, user)) {
      this.broker.presence(user, false);
      this.presences.changed(user);
    }
  }

  caughtUp(): Promise<void> | undefined {
    if (!this.broker.shared) return undefined;
    // Bounded: a node that cannot reach the store refuses as it would have anyway.
    const wait = this.store.position().then((pos) => this.broker.whenApplied(pos.seq));
    return Promise.race([wait, Bun.sleep(3000)]).catch(() => {});
  }

  online(user: string): boolean {
    return this.hub.online(user) || this.broker.onlineElsewhere(user);
  }

  /**
   * Applies a membership change the store committed as `seq` (without a log entry: an operator's
   * removals, src/ops/admin.ts) to the routing of every node; resolves once this node has.
   */
  membership(seq: number, c: Change): Promise<void> {
    return this.broker.change(seq, c);
  }

  async changeGroup(op: GroupOp, session?: Session): Promise<{ mid: number; ts: number } | undefined> {
    this.assertRunning();
    let r: GroupOpResult;
    try {
      r = await this.store.groupOp(op, Date.now());
    } catch (e) {
      this.log.error("group change failed", e);
      throw new ProtocolError("unavailable", "the change could not be stored (the database failed); retry");
    }
    if (!("entry" in r)) {
      if (r.refused) throw new ProtocolError(r.refused.code, r.refused.msg);
      return undefined;
    }
    const routing = routingOf(op);
    const c: Change = { kind: routing.kind, group: op.group, user: op.target };
    if (routing.until !== undefined) c.until = routing.until;
    const entry: Delivery = { mid: r.mid, frame: encodeFrame(toWire(r.entry, "msg")), from: op.by, group: op.group };
    // The connection that asked has the entry in its `ok` (PROTOCOL.md §5.1).
    if (session !== undefined) entry.skip = session.id;
    // Who it is about gets it too, member or not (one who left, was kicked, banned, invited).
    entry.also = op.target;
    // Routed from here on, on every node, in order with the messages (src/broker/broker.ts).
    await this.broker.change(r.seq, c, entry);
    return { mid: r.mid, ts: r.ts };
  }

  revokeElsewhere(user: string): void {
    this.broker.revoke(user);
  }

  typing(s: Session, target: { group?: string; user?: string }): void {
    const from = s.user!;
    if (target.group !== undefined ? this.hub.membersOf(target.group).size > this.config.typingMaxGroup : target.user === from) return;
    const key = target.group !== undefined ? `g:${target.group}` : `u:${target.user}`;
    const now = performance.now();
    const last = s.typingAt.get(key);
    if (last !== undefined && now - last < TYPING_EVERY_MS) return;
    if (s.typingAt.size >= 64) for (const [k, at] of s.typingAt) if (now - at >= TYPING_EVERY_MS) s.typingAt.delete(k);
    s.typingAt.set(key, now);
    const t: Typing = target.group !== undefined ? { from, group: target.group } : { from, to: target.user! };
    this.tellTyping(t);
    this.broker.typing(t);
  }

  /** Tells this node's recipients that someone is typing: the group's other members, or the addressee. */
  private tellTyping(t: Typing): void {
    if (this.stopping) return;
    if (t.group !== undefined) {
      const members = this.hub.membersOf(t.group);
      if (members.size > this.config.typingMaxGroup || !members.has(t.from)) return;
      const frame = encodeFrame({ t: "typing", from: t.from, group: t.group } satisfies Push);
      for (const u of members) if (u !== t.from) this.hub.sendToUser(u, frame);
    } else {
      this.hub.sendToUser(t.to!, encodeFrame({ t: "typing", from: t.from, user: t.to } satisfies Push));
    }
  }

  /** A membership change, from this node or another, in seq order (src/broker/broker.ts). */
  private applyChange(c: Change): void {
    if (c.kind === "join") this.hub.addMember(c.group, c.user);
    else if (c.kind === "leave") this.hub.removeMember(c.group, c.user);
    else if (c.kind === "mute") this.hub.setMuted(c.group, c.user, c.until ?? 0);
  }

  /**
   * The broker could not get every commit up to `pos` (src/broker/broker.ts, BrokerHandler.missed):
   * every logged-in session falls behind (PROTOCOL.md §5.4) and replays from the store what
   * it is owed up to `pos.mid`, with routing reloaded from the store first. A replay that
   * reads past a message still to be delivered live makes that push a no-op (Session.push).
   */
  private async missed(pos: Position): Promise<void> {
    if (pos.mid > this.lastDelivered) this.lastDelivered = pos.mid;
    const now = performance.now();
    const behind: Session[] = [];
    for (const s of this.sessions) {
      if (s.user === undefined || s.closed) continue;
      if (s.behindSince === 0) s.behindSince = now;
      if (pos.mid > s.lastSkippedMid) s.lastSkippedMid = pos.mid;
      behind.push(s);
    }
    this.hub.reload(await this.store.allMemberships());
    this.stats.missed++;
    this.event("warn", "bus.missed", {
      seq: pos.seq,
      sessions: behind.length,
      msg: `missed commits up to seq ${pos.seq} on the bus: ${behind.length} sessions replay from the store`,
    });
    for (const s of behind) void this.catchUp(s);
  }

  /** Tells co-members `user`'s presence, once it held for `--presence-delay` (PresenceDebounce). */
  private presence(user: string, online: boolean): void {
    if (this.stopping) return;
    const targets = this.hub.coMembersOnline(user);
    if (targets.size === 0) return;
    const frame = encodeFrame({ t: "presence", user, online } satisfies Push);
    for (const t of targets) this.hub.sendToUser(t, frame);
  }

  userExists(name: string): boolean | Promise<boolean> {
    if (this.knownUsers.has(name)) return true;
    return this.store.getUser(name).then((u) => {
      if (!u) return false;
      this.knownUsers.add(name); // users are never deleted: a positive answer stays true
      return true;
    });
  }

  enqueue(session: Session, id: number | undefined, msg: NewMessage): void {
    this.assertRunning(); // a send whose checks waited for the store may come after shutdown's last commit
    // A message without its sender would fail the whole batch, everyone's messages with it.
    if (typeof msg.sender !== "string") throw new Error("a message without a sender");
    this.batcher.enqueue({ msg, tag: { session, id, at: performance.now() } });
  }

  ownSendsSettled(session: Session): Promise<void> | undefined {
    if (!this.batcher.hasPending((t) => t.session === session)) return undefined;
    // PROTOCOL.md §2.3: requests held behind a read that waits for its own sends are capped
    // by --max-held, as behind a login.
    session.capHeld = true;
    return this.batcher.settled();
  }

  // ---- dispatch ---------------------------------------------------------

  /**
   * A frame's header arrived (PROTOCOL.md §2.4): the request rates are charged here, before
   * any of the body is held. A frame over them is refused unread: its body is skipped as it
   * arrives and never decoded, except that one of at most PEEK_MAX bytes is read so that
   * its refusal can carry its `id`.
   */
  private admit(s: Session, n: number): "read" | "skip" {
    if (s.closed) return "skip";
    const now = performance.now();
    if (this.charge(s, 1, n + 4, now)) return "read";
    if (n <= PEEK_MAX) {
      s.refuseNext = true;
      return "read";
    }
    return "skip";
  }

  /**
   * Takes `msgs` requests and `bytes` bytes from the connection's rates and its address's
   * (PROTOCOL.md §2.4); false, taking nothing, if any of them cannot pay.
   */
  private charge(s: Session, msgs: number, bytes: number, now: number): boolean {
    const a = s.addrLimits!;
    if (!s.msgBucket.take(msgs, now)) return false;
    if (!s.byteBucket.take(bytes, now)) {
      s.msgBucket.refund(msgs);
      return false;
    }
    if (!a.msgs.take(msgs, now)) {
      s.msgBucket.refund(msgs);
      s.byteBucket.refund(bytes);
      return false;
    }
    if (!a.bytes.take(bytes, now)) {
      s.msgBucket.refund(msgs);
      s.byteBucket.refund(bytes);
      a.msgs.refund(msgs);
      return false;
    }
    return true;
  }

  /**
   * A request that costs the server more than one (a `members` list of 10,000 names, a
   * page of 500 messages) pays `extra` more requests of its connection's and address's
   * rates before it runs, or is refused with `rate_limited` (PROTOCOL.md §2.4).
   */
  chargeExtra(s: Session, extra: number): void {
    if (extra <= 0) return;
    if (!this.charge(s, extra, 0, performance.now()))
      throw new ProtocolError("rate_limited", "too many requests: this one costs more than the rate has left; slow down");
  }

  /**
   * Paces what a request makes the server read from the store and encode (a history or sync
   * page, up to half a frame of files) by the same byte rates as requests (PROTOCOL.md §2.4):
   * undefined when the rates can pay now, else a promise that resolves once they have (the
   * dispatcher holds the connection's later requests meanwhile), or once the connection is gone.
   */
  paceOutput(s: Session, bytes: number): Promise<void> | undefined {
    const { rateBytes, rateBytesAddr, rateBurst } = this.config;
    // A charge larger than a bucket holds could never be paid: cap it at the smaller bucket.
    const caps = [rateBytes, rateBytesAddr].filter((r) => r > 0).map((r) => r * rateBurst);
    const n = Math.min(bytes, ...caps);
    if (this.charge(s, 0, n, performance.now())) return undefined;
    return new Promise((resolve) => {
      const retry = () => {
        const now = performance.now();
        if (s.closed || this.charge(s, 0, n, now)) return resolve();
        const wait = Math.max(s.byteBucket.waitFor(n, now), s.addrLimits!.bytes.waitFor(n, now));
        setTimeout(retry, Math.min(1000, Math.max(5, wait)));
      };
      retry();
    });
  }

  private onFrameEvent(s: Session, ev: FrameEvent): void {
    if (ev.kind === "too_large") {
      // PROTOCOL.md §1: the stream cannot be resynchronised past an oversized frame.
      this.error(s, undefined, "too_large", `frame of ${ev.length} bytes exceeds the limit of ${s.frameLimit}`);
      this.bye(s, "too_large");
      return;
    }
    if (s.closed) return;
    s.lastFrameAt = performance.now();
    if (ev.kind === "skipped") {
      this.refuse(s, undefined, `too many requests: slow down (a refused request of ${ev.length} bytes was not read)`);
      return;
    }
    if (s.refuseNext) {
      s.refuseNext = false;
      this.refuse(s, this.peekId(ev.body), "too many requests: slow down");
      return;
    }
    if (s.busy) {
      // PROTOCOL.md §2.3: held in order behind an async request; bounded in bytes (the
      // connection is not read while they are held) and, behind a login, register, passwd
      // or a read waiting for its own sends, in count (refused beyond).
      if (s.capHeld && s.held.length >= this.config.maxHeld) {
        this.refuse(s, this.peekId(ev.body), "too many requests while a login is in progress");
        return;
      }
      s.hold(ev.body);
      this.checkReading(s);
      return;
    }
    this.handleFrame(s, ev.body);
  }

  /**
   * Answers a request refused for a limit with `rate_limited`. A connection that keeps
   * being refused (--max-refused in 10 s) is closed with `bye {reason: "limits_exceeded"}`.
   */
  private refuse(s: Session, id: number | undefined, msg: string, code: ErrorCode = "rate_limited"): void {
    if (!s.refusals.take(1, performance.now())) {
      s.closeNote ??= "closed, kept exceeding its limits";
      this.bye(s, "limits_exceeded");
      return;
    }
    this.error(s, id, code, msg);
  }

  /** The `id` of a small frame that will not be handled, if it has a valid one, for the error reply. */
  private peekId(body: Uint8Array): number | undefined {
    // Larger frames are not decoded at all; the same depth guard as handleFrame's first.
    if (body.length > PEEK_MAX || !withinDepth(body, MAX_DEPTH)) return undefined;
    try {
      const m = this.decodeBody(body);
      return isMap(m) && isUint(m.id) ? m.id : undefined;
    } catch {
      return undefined;
    }
  }

  /** Decode, check, dispatch one frame, in the order of PROTOCOL.md §2.2. */
  handleFrame(s: Session, body: Uint8Array): void {
    // One pass before any decoding: nesting depth, and strict UTF-8 of every string (§2).
    const verdict = scanBody(body, MAX_DEPTH);
    if (verdict === "too_deep") {
      this.error(s, undefined, "bad_frame", `nested deeper than ${MAX_DEPTH} levels`);
      return;
    }
    if (verdict === "bad_utf8") {
      this.error(s, undefined, "bad_request", "a string is not valid UTF-8");
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
      this.refuse(s, id, `log in before "${t}"`, "unauthorized");
      return;
    }
    let result: Result;
    try {
      const req = validateRequest(t, m, id);
      s.capHeld = cmd.long === true;
      result = (cmd.run as (c: Context, s: Session, r: unknown) => Result)(this, s, req);
    } catch (e) {
      this.fail(s, id, e);
      return;
    }
    if (result === DEFER) return;
    if (result instanceof Promise) {
      s.busy = true;
      // Behind a request that waits for the store, the connection's later input is not even
      // decoded until it is answered (its rates are charged then, not now): to the client it
      // is as if the store had answered at once. Behind a login, register, passwd or a read
      // waiting for its own sends, later requests are held, counted and capped (§2.3).
      const paused = !s.capHeld;
      if (paused) s.decoder.pause();
      const audited = AUDITED.has(t) ? (m as Record<string, unknown>) : undefined;
      result
        .then(
          (r) => {
            if (audited) this.audit(s, t, audited, r === DEFER ? undefined : r, undefined);
            if (r !== DEFER) this.reply(s, id, r);
          },
          (e) => {
            if (audited) this.audit(s, t, audited, undefined, e);
            this.fail(s, id, e);
          },
        )
        .finally(() => {
          s.busy = false;
          s.capHeld = false;
          if (paused) s.decoder.resume(); // handles what arrived meanwhile, in order, until the next wait
          this.runHeld(s);
        });
      return;
    }
    this.reply(s, id, result);
  }

  /** Runs frames that arrived while an async request was in progress, in order. */
  private runHeld(s: Session): void {
    while (!s.busy && !s.closed && s.held.length > 0) this.handleFrame(s, s.unhold()!);
    this.checkReading(s);
  }

  // ---- replies ----------------------------------------------------------

  private reply(s: Session, id: number | undefined, r: Reply): void {
    if (s.closed) return;
    s.send(encodeFrame({ t: "ok", id, ...r }));
  }

  error(s: Session, id: number | undefined, code: ErrorCode, msg: string): void {
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
    if (s.closed) return;
    s.send(encodeFrame({ t: "error", id, code, msg }));
  }

  private fail(s: Session, id: number | undefined, e: unknown): void {
    if (e instanceof ProtocolError) {
      // Refused for a limit, or for credentials: these count against --max-refused (§2.4).
      if (e.code === "rate_limited" || e.code === "unauthorized") this.refuse(s, id, e.message, e.code);
      else this.error(s, id, e.code, e.message);
    } else {
      this.log.error(`session ${s.id}: request failed`, e);
      this.error(s, id, "internal", "internal error");
    }
  }

  /** Sends `bye {reason}` after everything queued, then closes the connection. PROTOCOL.md §5.3 */
  bye(s: Session, reason: DisconnectReason): void {
    if (s.closed) return;
    s.closeReason ??= reason;
    if (reason !== "shutdown" && s.writer.stalled) {
      // The client is not reading what is queued already: a bye would never arrive (§5.3).
      this.terminate(s);
      return;
    }
    s.send(encodeFrame({ t: "bye", reason } satisfies Push));
    s.writer.end();
    s.closed = true; // no more input; `closed()` still runs when the transport reports the close
    this.setReading(s, false);
  }

  // ---- commit, acknowledge, fan out ------------------------------------

  /**
   * A message is committed: ack its sender, then hand the push, encoded once, to the broker,
   * which delivers it (here, or on every node) to every other recipient session.
   */
  private committed(p: Pending<SendTag>, r: CommitResult): void {
    const { session, id } = p.tag;
    const m = p.msg;
    if (r.refused) {
      // Nothing was stored: a message's upload was used up meanwhile (PROTOCOL.md §3.9), or an
      // entry's message was deleted after the checks (§3.6).
      if (m.kind === undefined) this.error(session, id, "not_found", `no finished upload ${m.file?.upload} of yours: it was sent already, or expired`);
      else this.error(session, id, "not_found", `message ${m.ref} was deleted`);
      return;
    }
    // The ack, built whole (this runs once per message: no spread into a reply).
    if (!session.closed) session.send(encodeFrame({ t: "ok", id, mid: r.mid, ts: r.ts, read: r.read }));
    this.stats.ackSeconds.observe((performance.now() - p.tag.at) / 1000);
    if (r.duplicate) return; // delivered when it was first committed
    if (m.kind === "read") {
      // To the reader's own devices only; its ref as stored (never past the entry itself).
      const entry = { ...m, ref: Math.min(m.ref!, r.mid - 1) };
      this.batchDeliveries.push({
        mid: r.mid,
        frame: encodeFrame(wireMessage(entry, r.mid, r.ts, "msg")),
        from: m.sender,
        to: m.sender,
        skip: session.id,
      });
      return;
    }
    this.batchDeliveries.push({
      mid: r.mid,
      frame: encodeFrame(wireMessage(m, r.mid, r.ts, "msg")),
      from: m.sender,
      group: m.grp,
      to: m.toUser,
      skip: session.id,
    });
  }

  /** The broker's delivery on this node: the same bytes to every recipient session here (PROTOCOL.md §5.1). */
  private deliver(d: Delivery): void {
    if (d.mid > this.lastDelivered) this.lastDelivered = d.mid;
    const skip = d.skip ?? 0; // session ids start at 1
    if (d.group !== undefined) {
      this.stats.deliveries += this.hub.pushToGroup(d.group, d.frame, d.mid, skip);
      // A member got it already (a session ignores a mid it was pushed: Session.push).
      if (d.also !== undefined) this.stats.deliveries += this.hub.pushToUser(d.also, d.frame, d.mid, skip);
    } else {
      this.stats.deliveries += this.hub.pushToUser(d.from, d.frame, d.mid, skip);
      if (d.to !== d.from) this.stats.deliveries += this.hub.pushToUser(d.to!, d.frame, d.mid, skip);
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
    this.presences.stop();
    await this.batcher.flushAll();
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
    await this.broker.close();
    await this.store.close();
  }
}
