// A node of a cluster: the broker over NATS (src/broker/broker.ts). Every node commits
// to one shared store, whose commits are numbered 1, 2, 3... across all nodes (seq).
//
// - A commit is published once, on `<prefix>.c`, with every new message's push encoded
//   once (a push larger than a quarter of the server's max_payload travels as its mid
//   alone and is read back from the store). A membership change is published there too.
// - Every node applies every commit, its own and the others', in seq order: a commit that
//   arrives early waits for the ones before it. So each node routes with the memberships
//   of the moment and pushes to each connection in mid order.
// - NATS core delivery is at most once. A seq that does not come within `gapWait` ms
//   (lost on the bus, or its node died between the commit and the publish), a NATS
//   reconnect, or a store that is ahead of what arrived (polled every second) makes the
//   node give up on what it is missing: BrokerHandler.missed reloads the routing from the
//   store, and every session replays from the store what it is owed (PROTOCOL.md §5.4).
// - Presence, revocations and liveness go on `<prefix>.e`: each node announces its own
//   users' first and last sessions, answers a `hello` with its whole online list, and
//   beats every second; a node not heard from for `nodeTimeout` ms is taken as gone,
//   with its users. Each node numbers its events, so a lost one is noticed (by the next
//   event or beat) and the lists are asked for again.
//
// Facts this relies on (docs/CLUSTER.md): publish() keeps the payload by reference until it
// is flushed, so every payload here is a fresh buffer; subjects carry no user-chosen names
// (names may contain `.`); the client is told to reconnect forever.
import { decode, encode } from "@msgpack/msgpack";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { Position, Store, StoredMessage } from "../store/store.ts";
import type { DisconnectReason } from "../protocol/errors.ts";
import type { Broker, BrokerHandler, Change, Delivery, Typing } from "./broker.ts";

export interface NatsBrokerOptions {
  /** `nats://host:port`, several separated by commas. */
  servers: string;
  /** The store every node commits to: its position, and the messages of pushes sent by mid. */
  store: Pick<Store, "position" | "messagesByMid">;
  /** Encodes a stored message's `msg` push (a push that travelled by mid). */
  encode: (m: StoredMessage) => Uint8Array;
  log: { info(msg: string): void; error(msg: string, err?: unknown): void };
  /** Subject prefix: clusters sharing one NATS use different ones. */
  prefix?: string;
  /** How long a missing seq is waited for, ms. */
  gapWait?: number;
  /** How often this node beats and checks the store's position, ms. */
  beat?: number;
  /** A node not heard from for this long is gone, ms. */
  nodeTimeout?: number;
  /** How long start() tries to reach NATS, ms. */
  connectTimeout?: number;
}

/** Most bytes of early commits held while a missing one is waited for: past it, the node gives up on it at once. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;
/** Users per snapshot event. */
const SNAPSHOT_CHUNK = 2000;

/** A delivery on the wire: [mid, from, group, to, frame (null: read it from the store), also?]. */
type WireDelivery = [number, string, string | null, string | null, Uint8Array | null, string?];

interface CommitMsg {
  /** The publishing node. */
  n: string;
  s: number;
  /** Part i of P (a commit larger than one payload is cut into parts). */
  i: number;
  P: number;
  d?: WireDelivery[];
  /** A change to a group: [kind, group, user, until?], with its entry's push in `d`. */
  c?: [Change["kind"], string, string, number?];
}

interface EventMsg {
  n: string;
  /** This node's event number (a beat repeats the last one). */
  q: number;
  /** p: presence; r: revoke; h: hello (send me your lists); s: snapshot; b: beat; x: leaving; t: typing. */
  k: "p" | "r" | "h" | "s" | "b" | "x" | "t";
  u?: string;
  /** Typing: in this group, or to this user. */
  g?: string;
  to?: string;
  o?: boolean;
  /** A revoke's `bye` reason (absent: password_changed). */
  w?: DisconnectReason;
  us?: string[];
  /** First part of a snapshot: replaces what was known of the node. */
  f?: boolean;
}

interface Entry {
  parts: Array<Delivery[] | undefined>;
  got: number;
  change?: Change;
  bytes: number;
}

function wireDelivery(d: Delivery, frame: Uint8Array | null): WireDelivery {
  const w: WireDelivery = [d.mid, d.from, d.group ?? null, d.to ?? null, frame];
  if (d.also !== undefined) w.push(d.also);
  return w;
}

export class NatsBroker implements Broker {
  private nc: NatsConnection | undefined;
  private handler: BrokerHandler | undefined;
  private readonly node = crypto.randomUUID().slice(0, 12);
  private readonly prefix: string;
  private readonly gapWait: number;
  private readonly beatMs: number;
  private readonly nodeTimeout: number;
  readonly shared = true;
  /** For /metrics: messages published and received on the bus, and give-ups (replays from the store). */
  readonly counts = { published: 0, received: 0, missed: 0 };
  private connected = false;
  private closed = false;
  private timer: Timer | undefined;
  private subs: Subscription[] = [];

  /** The next seq to apply. */
  private expected = 1;
  private readonly pending = new Map<number, Entry>();
  private pendingBytes = 0;
  /** A drain of the queue, or a give-up, is running. */
  private applying = false;
  /** performance.now() since seq `gapSeq` has been missing while later ones wait, or 0. */
  private gapSince = 0;
  private gapSeq = 0;
  /** The store was seen ahead of `expected` at that time (performance.now()), for that seq. */
  private aheadSeq = 0;
  private aheadSince = 0;
  /** Local change() callers, by seq. */
  private readonly waiters = new Map<number, () => void>();
  /** whenApplied() callers: resolved once `expected` passes their seq. */
  private applied: Array<{ seq: number; resolve: () => void }> = [];

  /** Users with a session on this node. */
  private readonly local = new Set<string>();
  /** Other nodes: their users online, the last event number and when they were heard from. */
  private readonly nodes = new Map<string, { users: Set<string>; q: number; seen: number }>();
  /** user -> how many other nodes have them online. */
  private readonly remote = new Map<string, number>();
  private q = 0;
  private maxPayload = 1024 * 1024;

  constructor(private readonly opts: NatsBrokerOptions) {
    this.prefix = opts.prefix ?? "tcpchat";
    this.gapWait = opts.gapWait ?? 1000;
    this.beatMs = opts.beat ?? 1000;
    this.nodeTimeout = opts.nodeTimeout ?? 5000;
  }

  /** This node's id on the bus (for logs and tests). */
  get id(): string {
    return this.node;
  }

  async start(handler: BrokerHandler, seq: number): Promise<void> {
    this.handler = handler;
    this.expected = seq + 1;
    const nc = await connect({
      servers: this.opts.servers.split(",").map((s) => s.trim()),
      name: `tcpchat-${this.node}`,
      noEcho: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5000,
      maxPingOut: 2,
      timeout: this.opts.connectTimeout ?? 5000,
    });
    this.nc = nc;
    this.connected = true;
    this.maxPayload = nc.info?.max_payload ?? this.maxPayload;
    this.subs.push(
      nc.subscribe(`${this.prefix}.c`, { callback: (err, m) => (err ? undefined : this.onCommit(m.data)) }),
      nc.subscribe(`${this.prefix}.e`, { callback: (err, m) => (err ? undefined : this.onEvent(m.data)) }),
    );
    void this.watch(nc);
    await nc.flush();
    this.emit({ k: "h" });
    this.timer = setInterval(() => void this.tick(), this.beatMs);
    this.timer.unref();
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.closed) return;
      if (s.type === "disconnect") {
        this.connected = false;
        this.opts.log.info(`bus: disconnected from ${s.server}; reconnecting`);
      } else if (s.type === "reconnect") {
        this.connected = true;
        this.maxPayload = nc.info?.max_payload ?? this.maxPayload;
        this.opts.log.info(`bus: reconnected to ${s.server}`);
        // What was published meanwhile is lost: the store says whether anything was; the
        // other nodes may have dropped this one, so it says hello again.
        this.emit({ k: "h" });
        void this.checkStore(true);
      } else if (s.type === "slowConsumer") {
        this.opts.log.error("bus: this node reads too slowly: NATS dropped messages; replaying from the store");
        void this.checkStore(true);
      }
    }
  }

  // ---- commits ----------------------------------------------------------

  commit(seq: number, deliveries: Delivery[]): void {
    if (this.closed) return;
    this.accept(seq, { parts: [deliveries], got: 1, bytes: 0 });
    this.publishCommit(seq, deliveries);
  }

  change(seq: number, c: Change, entry?: Delivery): Promise<void> {
    if (this.closed || seq < this.expected) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.waiters.set(seq, resolve);
    this.accept(seq, { parts: [entry ? [entry] : []], got: 1, change: c, bytes: 0 });
    const msg: CommitMsg = { n: this.node, s: seq, i: 0, P: 1, c: c.until === undefined ? [c.kind, c.group, c.user] : [c.kind, c.group, c.user, c.until] };
    // An entry's push is small (no text of a user's but a topic): it always travels whole.
    if (entry) msg.d = [wireDelivery(entry, entry.frame)];
    this.publish(`${this.prefix}.c`, msg);
    return promise;
  }

  /** Cuts a commit into payloads of at most a quarter of max_payload; larger pushes go by mid. */
  private publishCommit(seq: number, deliveries: Delivery[]): void {
    if (!this.connected) return; // lost anyway: the others find it in the store
    const limit = Math.max(4096, Math.floor(this.maxPayload / 4));
    const parts: WireDelivery[][] = [[]];
    let size = 0;
    for (const d of deliveries) {
      const big = d.frame.length + 256 > limit;
      const w = wireDelivery(d, big ? null : d.frame);
      const cost = (big ? 0 : d.frame.length) + 64 + d.from.length + (d.group ?? d.to ?? "").length * 3;
      if (size + cost > limit && parts[parts.length - 1]!.length > 0) {
        parts.push([]);
        size = 0;
      }
      parts[parts.length - 1]!.push(w);
      size += cost;
    }
    for (let i = 0; i < parts.length; i++)
      this.publish(`${this.prefix}.c`, { n: this.node, s: seq, i, P: parts.length, d: parts[i] } satisfies CommitMsg);
  }

  /** Whether the node is connected to NATS now (readiness). */
  get isConnected(): boolean {
    return this.connected && !this.closed;
  }

  private onCommit(data: Uint8Array): void {
    if (this.closed) return;
    this.counts.received++;
    let m: CommitMsg;
    try {
      m = decode(data) as CommitMsg;
    } catch (e) {
      this.opts.log.error("bus: undecodable commit message dropped", e);
      return;
    }
    this.seen(m.n);
    if (m.s < this.expected) return; // applied already, or given up on (replayed from the store)
    let e = this.pending.get(m.s);
    if (!e) {
      e = { parts: new Array(m.P).fill(undefined), got: 0, bytes: 0 };
      this.pending.set(m.s, e);
    }
    if (e.parts[m.i] !== undefined) return;
    if (m.c) {
      e.change = { kind: m.c[0], group: m.c[1], user: m.c[2] };
      if (m.c[3] !== undefined) e.change.until = m.c[3];
    }
    e.parts[m.i] = (m.d ?? []).map(([mid, from, group, to, frame, also]) => {
      const d: Delivery = { mid, from, group: group ?? undefined, to: to ?? undefined, frame: frame ?? EMPTY };
      if (also != null) d.also = also;
      return d;
    });
    e.bytes += data.length;
    this.pendingBytes += data.length;
    e.got++;
    void this.drain();
  }

  private accept(seq: number, e: Entry): void {
    if (seq < this.expected) return;
    this.pending.set(seq, e);
    void this.drain();
  }

  /** Applies the queued commits that are next in seq order. */
  private async drain(): Promise<void> {
    if (this.applying) return;
    this.applying = true;
    try {
      for (;;) {
        const e = this.pending.get(this.expected);
        if (!e || e.got < e.parts.length) break;
        const seq = this.expected;
        const deliveries = e.parts.flat() as Delivery[];
        // Pushes that travelled by mid are read back from the store (committed before they were published).
        const byMid = deliveries.filter((d) => d.frame === EMPTY).map((d) => d.mid);
        if (byMid.length > 0) {
          let stored: StoredMessage[];
          try {
            stored = await this.opts.store.messagesByMid(byMid);
          } catch (err) {
            this.opts.log.error("bus: cannot read a commit's large messages from the store; will retry", err);
            break; // retried by the next arrival or tick; gapWait makes it a give-up if it lasts
          }
          const frames = new Map(stored.map((m) => [m.mid, this.opts.encode(m)]));
          for (const d of deliveries) if (d.frame === EMPTY) d.frame = frames.get(d.mid) ?? EMPTY;
        }
        if (this.closed) return;
        this.pending.delete(seq);
        this.pendingBytes -= e.bytes;
        this.expected = seq + 1;
        const h = this.handler!;
        if (e.change) h.change(e.change);
        for (const d of deliveries) if (d.frame !== EMPTY) h.deliver(d);
        this.waiters.get(seq)?.();
        this.waiters.delete(seq);
      }
    } finally {
      this.applying = false;
      this.wakeApplied();
    }
    if (this.pending.size === 0) this.gapSince = 0;
    else if (this.gapSeq !== this.expected || this.gapSince === 0) {
      this.gapSeq = this.expected;
      this.gapSince = performance.now();
    }
    if (this.pendingBytes > MAX_PENDING_BYTES) void this.giveUp("too much waiting behind a missing commit");
  }

  /**
   * Stops waiting for what is missing: reads the store's position, has the handler reload
   * routing and replay its sessions up to it, and goes on after it.
   */
  private async giveUp(why: string): Promise<void> {
    if (this.applying || this.closed) return;
    this.applying = true;
    try {
      const pos = await this.opts.store.position();
      if (pos.seq < this.expected) return; // nothing missing after all: it arrived meanwhile
      this.opts.log.info(`bus: commits ${this.expected}..${pos.seq} not all received (${why}): replaying from the store`);
      this.counts.missed++;
      await this.handler!.missed(pos);
      for (const [seq, e] of this.pending) {
        if (seq > pos.seq) continue;
        this.pending.delete(seq);
        this.pendingBytes -= e.bytes;
      }
      for (const [seq, resolve] of this.waiters) {
        if (seq > pos.seq) continue;
        resolve(); // its change is in the routing reloaded from the store
        this.waiters.delete(seq);
      }
      this.expected = pos.seq + 1;
      this.gapSince = 0;
      this.aheadSeq = 0;
      this.wakeApplied();
    } catch (e) {
      this.opts.log.error("bus: cannot catch up from the store; will retry", e);
    } finally {
      this.applying = false;
    }
    void this.drain();
  }

  /**
   * Whether the store holds commits that never arrived: right away after a reconnect
   * (`now`), else once the same seq has been missing for gapWait.
   */
  private async checkStore(now = false): Promise<void> {
    if (this.closed) return;
    let pos: Position;
    try {
      pos = await this.opts.store.position();
    } catch {
      return; // the store is down: nothing can be committed either
    }
    if (pos.seq < this.expected) {
      this.aheadSeq = 0;
      return;
    }
    const t = performance.now();
    if (now) return void this.giveUp("the bus reconnected");
    if (this.aheadSeq !== this.expected) {
      this.aheadSeq = this.expected;
      this.aheadSince = t;
    } else if (t - this.aheadSince >= this.gapWait) {
      void this.giveUp(`seq ${this.expected} is in the store but never came`);
    }
  }

  whenApplied(seq: number): Promise<void> {
    if (seq < this.expected || this.closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.applied.push({ seq, resolve });
    return promise;
  }

  private wakeApplied(): void {
    if (this.applied.length === 0) return;
    const still: typeof this.applied = [];
    for (const w of this.applied) {
      if (w.seq < this.expected) w.resolve();
      else still.push(w);
    }
    this.applied = still;
  }

  // ---- presence, revocation, liveness -----------------------------------

  presence(user: string, online: boolean): Promise<void> | undefined {
    if (online) this.local.add(user);
    else this.local.delete(user);
    this.emit({ k: "p", u: user, o: online });
    if (!online || !this.connected || !this.nc) return undefined;
    // The server has it once it answers a ping sent after it; events reach subscribers in the
    // server's order, so another node's later event cannot overtake it. Bounded: a slow bus
    // delays no login by more than 250 ms.
    return Promise.race([this.nc.flush().catch(() => {}), Bun.sleep(250)]);
  }

  onlineElsewhere(user: string): boolean {
    return (this.remote.get(user) ?? 0) > 0;
  }

  revoke(user: string, reason?: DisconnectReason): void {
    this.emit(reason === undefined || reason === "password_changed" ? { k: "r", u: user } : { k: "r", u: user, w: reason });
  }

  typing(t: Typing): void {
    this.emit(t.group !== undefined ? { k: "t", u: t.from, g: t.group } : { k: "t", u: t.from, to: t.to });
  }

  private emit(e: Omit<EventMsg, "n" | "q">, beat = false): void {
    if (this.closed || !this.connected) return;
    if (!beat) this.q++;
    this.publish(`${this.prefix}.e`, { n: this.node, q: this.q, ...e } satisfies EventMsg);
  }

  private sendSnapshot(): void {
    const users = [...this.local];
    for (let i = 0; i === 0 || i < users.length; i += SNAPSHOT_CHUNK)
      this.emit({ k: "s", us: users.slice(i, i + SNAPSHOT_CHUNK), f: i === 0 });
  }

  private seen(node: string): { users: Set<string>; q: number; seen: number } {
    let n = this.nodes.get(node);
    if (!n) {
      n = { users: new Set(), q: -1, seen: 0 };
      this.nodes.set(node, n);
    }
    n.seen = performance.now();
    return n;
  }

  private onEvent(data: Uint8Array): void {
    if (this.closed) return;
    this.counts.received++;
    let e: EventMsg;
    try {
      e = decode(data) as EventMsg;
    } catch (err) {
      this.opts.log.error("bus: undecodable event dropped", err);
      return;
    }
    const n = this.seen(e.n);
    // A node's events are numbered: one lost (or a node not heard from before) means its list may be stale.
    const first = n.q < 0;
    const lost = !first && e.q !== (e.k === "b" ? n.q : n.q + 1);
    n.q = e.q;
    switch (e.k) {
      case "p":
        if (e.o) this.addRemote(n.users, e.u!);
        else this.removeRemote(n.users, e.u!);
        break;
      case "r":
        this.handler?.revoke(e.u!, e.w);
        break;
      case "t":
        if (typeof e.u === "string" && (typeof e.g === "string" || typeof e.to === "string"))
          this.handler?.typing(typeof e.g === "string" ? { from: e.u, group: e.g } : { from: e.u, to: e.to! });
        break;
      case "h":
        this.sendSnapshot();
        break;
      case "s": {
        const fresh = new Set(e.us ?? []);
        if (e.f) for (const u of [...n.users]) if (!fresh.has(u)) this.removeRemote(n.users, u);
        for (const u of fresh) this.addRemote(n.users, u);
        break;
      }
      case "x":
        this.dropNode(e.n);
        return;
      case "b":
        break;
    }
    if ((first && e.k !== "s" && e.k !== "h") || lost) this.emit({ k: "h" }); // ask every node for its list again
  }

  private addRemote(users: Set<string>, user: string): void {
    if (users.has(user)) return;
    users.add(user);
    const c = (this.remote.get(user) ?? 0) + 1;
    this.remote.set(user, c);
    if (c === 1) this.handler?.presence(user);
  }

  private removeRemote(users: Set<string>, user: string): void {
    if (!users.delete(user)) return;
    const c = (this.remote.get(user) ?? 1) - 1;
    if (c > 0) this.remote.set(user, c);
    else {
      this.remote.delete(user);
      this.handler?.presence(user);
    }
  }

  private dropNode(node: string): void {
    const n = this.nodes.get(node);
    if (!n) return;
    this.nodes.delete(node);
    for (const u of [...n.users]) this.removeRemote(n.users, u);
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    this.emit({ k: "b" }, true);
    const now = performance.now();
    for (const [id, n] of this.nodes) {
      if (now - n.seen <= this.nodeTimeout) continue;
      this.opts.log.info(`bus: node ${id} not heard from for ${this.nodeTimeout} ms: its users are offline`);
      this.dropNode(id);
    }
    if (this.gapSince !== 0 && now - this.gapSince >= this.gapWait) void this.giveUp(`seq ${this.expected} did not come`);
    else if (this.pending.size > 0) void this.drain(); // a read of large messages may have failed
    await this.checkStore();
  }

  private publish(subject: string, msg: CommitMsg | EventMsg): void {
    try {
      // encode() returns a fresh buffer: NATS keeps it by reference until it is flushed.
      this.nc?.publish(subject, encode(msg));
      this.counts.published++;
    } catch (e) {
      this.opts.log.error(`bus: publish on ${subject} failed`, e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.emit({ k: "x" });
    this.closed = true;
    clearInterval(this.timer);
    for (const resolve of this.waiters.values()) resolve();
    this.waiters.clear();
    for (const w of this.applied) w.resolve();
    this.applied = [];
    const nc = this.nc;
    this.nc = undefined;
    if (nc) {
      try {
        await nc.drain();
      } catch {
        await nc.close().catch(() => {});
      }
    }
  }
}

const EMPTY = new Uint8Array(0);
