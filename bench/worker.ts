// A load-generator process. The coordinator (bench/run.ts) spawns several and
// drives them over IPC: set up connections, send (paced or in a window), record
// send-to-receive latency at every recipient, report. It speaks the real protocol
// through the real protocol layer, and the same Writer discipline as the server.
import type { Socket } from "bun";
import { decode } from "@msgpack/msgpack";
import { encodeFrame } from "../src/protocol/codec.ts";
import "../src/protocol/native-utf8.ts";
import { FrameDecoder } from "../src/protocol/frame.ts";
import { Writer } from "../src/io/writer.ts";
import { isGroupKind } from "../src/protocol/pushes.ts";
import { Histogram } from "./histogram.ts";
import type { ConnSpec, FromWorker, RunSpec, ToWorker } from "./ipc.ts";

let offsetMs = 0;
/** This process's clock in µs, corrected to the coordinator's. */
const clockUs = () => Math.round((performance.timeOrigin + performance.now() - offsetMs) * 1000);

function send(m: FromWorker): void {
  process.send!(m);
}

class Conn {
  sock!: Socket<undefined>;
  writer!: Writer;
  private nextId = 1;
  private readonly waiting = new Map<number, (m: Record<string, unknown>) => void>();
  /** sender idx -> last seq received from it (this connection as a receiver) */
  readonly last = new Map<number, number>();
  seq = 0; // as a sender: next seq
  credit = -1; // as a sender: every recipient has received up to this seq
  closed = false;

  constructor(
    readonly spec: ConnSpec,
    readonly w: WorkerState,
  ) {}

  async connect(port: number, host: string): Promise<void> {
    const decoder = new FrameDecoder(64 * 1024 * 1024, (ev) => {
      if (ev.kind === "frame") this.w.onFrame(this, ev.body);
    });
    this.sock = await Bun.connect({
      hostname: host,
      port,
      socket: {
        binaryType: "uint8array",
        data: (_s, chunk) => decoder.push(chunk),
        drain: () => this.writer.drain(),
        close: () => {
          this.closed = true;
        },
        error: () => {
          this.closed = true;
        },
      },
    });
    this.sock.setNoDelay(true);
    this.writer = new Writer(
      { write: (b) => this.sock.write(b), end: () => this.sock.end(), terminate: () => this.sock.terminate() },
      1 << 30,
      () => {},
    );
  }

  request(m: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const { promise, resolve } = Promise.withResolvers<Record<string, unknown>>();
    this.waiting.set(id, resolve);
    this.writer.send(encodeFrame({ ...m, id }));
    return promise;
  }

  get pending(): number {
    return this.waiting.size;
  }

  reply(m: Record<string, unknown>): boolean {
    const r = typeof m.id === "number" ? this.waiting.get(m.id) : undefined;
    if (!r) return false;
    this.waiting.delete(m.id as number);
    r(m);
    return true;
  }
}

type Stamp = [sender: number, seq: number, stampUs: number];

/**
 * Parses "<sender>.<seq>.<stampUs>" ending at `end`: the run of digits and dots before it
 * (in a text, the padding before the stamp is "x"s). Null unless it has exactly two dots.
 */
function parseStamp(b: Uint8Array, start: number, end: number): Stamp | null {
  let j = end;
  while (j > start) {
    const c = b[j - 1]!;
    if ((c < 0x30 || c > 0x39) && c !== 0x2e) break;
    j--;
  }
  const out: Stamp = [0, 0, 0];
  let k = 0;
  for (; j < end; j++) {
    const c = b[j]!;
    if (c === 0x2e) {
      if (++k > 2) return null;
    } else out[k] = out[k]! * 10 + (c - 48);
  }
  return k === 2 ? out : null;
}

/** With `--cid on`: the stamp is the `cid` ("<stampUs>.<sender>.<seq>"), the last entry of the frame's map (scanned back from the end). */
function readCid(b: Uint8Array): Stamp | null {
  // find "cid" (a3 63 69 64) followed by a str header, scanning back from the end
  for (let i = b.length - 8; i >= Math.max(0, b.length - 96); i--) {
    if (b[i] === 0xa3 && b[i + 1] === 0x63 && b[i + 2] === 0x69 && b[i + 3] === 0x64) {
      let p = i + 4;
      const h = b[p++]!;
      const len = h >= 0xa0 && h <= 0xbf ? h & 0x1f : h === 0xd9 ? b[p++]! : -1;
      if (len < 0 || p + len !== b.length) continue;
      // "<stampUs>.<sender>.<seq>": time first, as the client library's cids (sendOne)
      const t = parseStamp(b, p, b.length);
      return t && [t[1], t[2], t[0]];
    }
  }
  return null;
}

/**
 * With `--cid off`: the stamp ends the `text`. Its key "text" (a4 74 65 78 74) is found scanning
 * from the start (it follows a few short fields: t, mid, ts, from, group or user), then the str
 * header gives where the text ends, wherever the text is in the map: last in the server's push
 * and in the send the floor relays, but nothing here depends on that.
 */
function readTextStamp(b: Uint8Array): Stamp | null {
  for (let i = 1; i + 5 < b.length; i++) {
    if (b[i] !== 0xa4 || b[i + 1] !== 0x74 || b[i + 2] !== 0x65 || b[i + 3] !== 0x78 || b[i + 4] !== 0x74) continue;
    let p = i + 5;
    const h = b[p++]!;
    let len: number;
    if (h >= 0xa0 && h <= 0xbf) len = h & 0x1f;
    else if (h === 0xd9) len = b[p++]!;
    else if (h === 0xda) ((len = (b[p]! << 8) | b[p + 1]!), (p += 2));
    else if (h === 0xdb) ((len = b[p]! * 2 ** 24 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!)), (p += 4));
    else continue;
    if (p + len > b.length) continue;
    return parseStamp(b, p, p + len);
  }
  return null;
}

/** Whether a `msg` push is a change to a group (PROTOCOL.md §3.3): a join, a create... */
function isGroupChange(body: Uint8Array): boolean {
  const kind = (decode(body) as { kind?: unknown }).kind;
  return isGroupKind(kind);
}

/** The value of `t`, for frames that start {t: ...}: "msg", "send", "ok" or null. */
function frameType(b: Uint8Array): string | null {
  if (b[1] !== 0xa1 || b[2] !== 0x74) return null;
  if (b[3] === 0xa3 && b[4] === 0x6d && b[5] === 0x73 && b[6] === 0x67) return "msg";
  if (b[3] === 0xa4 && b[4] === 0x73 && b[5] === 0x65 && b[6] === 0x6e && b[7] === 0x64) return "send";
  if (b[3] === 0xa2 && b[4] === 0x6f && b[5] === 0x6b) return "ok";
  return null;
}

class WorkerState {
  conns: Conn[] = [];
  senders: Conn[] = [];
  run: RunSpec | null = null;
  measuring = false;
  hist = new Histogram();
  crossHist = new Histogram();
  /** message key -> largest latency (µs) among this worker's recipients, for messages sent in the window */
  lastMember = new Map<number, number>();
  received = 0;
  receivedInWindow = 0;
  dups = 0;
  gaps = 0;
  errors = 0;
  acks = 0;
  stuckReceived = 0;
  sentInWindow = 0;
  cpuStart = 0;
  cpuUs = 0;
  /** sender idx -> hearers of it in this worker */
  hearers = new Map<number, Conn[]>();
  private progressDirty = new Set<number>();

  onFrame(c: Conn, body: Uint8Array): void {
    const t = frameType(body);
    if (t === "msg" || t === "send") {
      const cid = this.run?.cid ? readCid(body) : readTextStamp(body);
      if (!cid) {
        // A change to a group (another connection's join during the setup) is no message of the load.
        if (isGroupChange(body)) return;
        this.errors++;
        return;
      }
      const [sender, seq, stamp] = cid;
      const lat = clockUs() - stamp;
      const prev = c.last.get(sender) ?? -1;
      if (seq <= prev) {
        this.dups++;
        return;
      }
      if (seq > prev + 1) this.gaps += seq - prev - 1;
      c.last.set(sender, seq);
      this.received++;
      this.progressDirty.add(sender);
      const r = this.run;
      if (c.spec.stuck) {
        this.stuckReceived++;
        return;
      }
      if (r && stamp >= r.measureFromUs && stamp < r.measureToUs) {
        this.receivedInWindow++;
        this.hist.record(lat);
        if (c.spec.cross) this.crossHist.record(lat);
        const key = sender * 16777216 + seq;
        const m = this.lastMember.get(key);
        if (m === undefined || lat > m) this.lastMember.set(key, lat);
      }
      return;
    }
    if (t === "ok") {
      // acks of the run carry no id: count them without decoding
      if (c.pending > 0) c.reply(decode(body) as Record<string, unknown>);
      else this.acks++;
      return;
    }
    const m = decode(body) as Record<string, unknown>;
    if (c.reply(m)) return;
    if (m.t === "error") {
      this.errors++;
      if (this.errors <= 3) console.error(`worker: error from server: ${JSON.stringify(m)}`);
    }
  }

  /** Sends the min seq received per sender across local hearers, for the coordinator's window. */
  flushProgress(): void {
    if (this.progressDirty.size === 0) return;
    const p: Array<[number, number]> = [];
    for (const s of this.progressDirty) {
      let min = Infinity;
      // a stuck member does not hold the window back: the others' flow is what is measured
      for (const h of this.hearers.get(s) ?? []) if (!h.spec.stuck) min = Math.min(min, h.last.get(s) ?? -1);
      if (min !== Infinity) p.push([s, min]);
    }
    this.progressDirty.clear();
    send({ cmd: "progress", p });
  }
}

const state = new WorkerState();
/** "x" times the message size: the text of a send with a cid; without, its padding before the stamp. */
let textCache = "";

function sendOne(c: Conn, r: RunSpec): void {
  const stamp = clockUs();
  if (textCache.length !== r.size) textCache = "x".repeat(r.size);
  const seq = c.seq++;
  const token = `${c.spec.idx}.${seq}.${stamp}`;
  let m: Record<string, unknown>;
  if (r.cid) {
    // cid last: receivers read it from the end of the frame. Time first, then the sender and
    // its seq: every sender's cids increase with the time, as the client library's do
    // (src/client/cid.ts), which the server's cid index keeps cheap.
    const cid = `${stamp}.${c.spec.idx}.${seq}`;
    m = c.spec.toUser !== undefined ? { t: "send", user: c.spec.toUser, text: textCache, cid } : { t: "send", group: c.spec.group, text: textCache, cid };
  } else {
    // no cid: the stamp ends the text, padded with "x"s to the message size (or alone, if longer)
    const text = textCache.slice(0, Math.max(0, r.size - token.length)) + token;
    m = c.spec.toUser !== undefined ? { t: "send", user: c.spec.toUser, text } : { t: "send", group: c.spec.group, text };
  }
  c.writer.send(encodeFrame(m));
  if (stamp >= r.measureFromUs && stamp < r.measureToUs) state.sentInWindow++;
}

let stopping = false;

function pumpWindow(r: RunSpec): void {
  if (stopping) return;
  for (const c of state.senders) {
    while (c.seq - c.credit - 1 < r.window && !c.closed) sendOne(c, r);
  }
}

async function paced(r: RunSpec): Promise<void> {
  // r.rate: messages per second from this worker, spread round-robin (or at random) over its senders
  const start = performance.now();
  let sent = 0;
  let rr = 0;
  while (!stopping) {
    const due = Math.floor(((performance.now() - start) * r.rate) / 1000) - sent;
    for (let i = 0; i < due; i++) {
      const c = r.random
        ? state.senders[Math.floor(Math.random() * state.senders.length)]!
        : state.senders[rr++ % state.senders.length]!;
      if (!c.closed) sendOne(c, r);
      sent++;
    }
    await Bun.sleep(1);
  }
}

async function setup(port: number, host: string, specs: ConnSpec[], pass: string, relay: boolean, ports?: number[]): Promise<void> {
  const conns = specs.map((s) => new Conn(s, state));
  const CONCURRENCY = 64;
  let next = 0;
  const one = async (c: Conn) => {
    await c.connect(ports?.[c.spec.node ?? 0] ?? port, host);
    if (!relay) {
      if (c.spec.register) {
        const r = await c.request({ t: "register", user: c.spec.user, pass });
        if (r.t !== "ok" && r.code !== "conflict") throw new Error(`register: ${JSON.stringify(r)}`);
      }
      const l = await c.request({ t: "login", user: c.spec.user, pass });
      if (l.t !== "ok") throw new Error(`login: ${JSON.stringify(l)}`);
    }
    if (c.spec.group !== undefined) {
      // The group's first member creates it, the others join it. The connections are set up
      // several at a time, so the first to find it missing creates it; one that loses that race
      // (conflict) joins the group the other created.
      let j = await c.request({ t: "join", group: c.spec.group });
      if (j.t === "error" && j.code === "not_found") {
        j = await c.request({ t: "create", group: c.spec.group });
        if (j.t === "error" && j.code === "conflict") j = await c.request({ t: "join", group: c.spec.group });
      }
      if (j.t !== "ok") throw new Error(`join: ${JSON.stringify(j)}`);
    }
  };
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < conns.length) await one(conns[next++]!);
    }),
  );
  state.conns.push(...conns);
  for (const c of conns) {
    if (c.spec.sender) state.senders.push(c);
    for (const s of c.spec.hears) {
      let list = state.hearers.get(s);
      if (!list) state.hearers.set(s, (list = []));
      list.push(c);
    }
  }
}

/** Opens idle connections logged in by token (connection-scale scenario); returns ms taken. */
async function idle(port: number, host: string, users: Array<{ user: string; token: string }>, count: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < count) {
        const u = users[next++ % users.length]!;
        const c = new Conn({ idx: -1, user: u.user, sender: false, register: false, hears: [] }, state);
        await c.connect(port, host);
        const r = await c.request({ t: "login", user: u.user, token: u.token });
        if (r.t !== "ok") throw new Error(`token login: ${JSON.stringify(r)}`);
        state.conns.push(c);
      }
    }),
  );
  return performance.now() - t0;
}

/** Password logins on fresh connections for `ms` with `concurrency` in flight; returns logins done. */
async function passwordLogins(port: number, host: string, users: string[], pass: string, ms: number, concurrency: number): Promise<number> {
  const until = performance.now() + ms;
  let done = 0;
  let k = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const c = new Conn({ idx: -1, user: users[k++ % users.length]!, sender: false, register: false, hears: [] }, state);
        await c.connect(port, host);
        const r = await c.request({ t: "login", user: c.spec.user, pass });
        if (r.t !== "ok") throw new Error(`login: ${JSON.stringify(r)}`);
        done++;
        c.sock.end();
      }
    }),
  );
  return done;
}

/** Runs this process as a load generator, driven over IPC by the coordinator. */
export function runWorker(): void {
  process.on("message", async (msg: ToWorker) => {
    try {
      switch (msg.cmd) {
        case "clock":
          send({ cmd: "clock", id: msg.id, t: performance.timeOrigin + performance.now() });
          break;
        case "offset":
          offsetMs = msg.ms;
          send({ cmd: "ready" });
          break;
        case "setup":
          await setup(msg.port, msg.host, msg.conns, msg.pass, msg.relay, msg.ports);
          send({ cmd: "ready" });
          break;
        case "tokens": {
          // register + login users, hand back their tokens (for the connection-scale scenario)
          const out: Array<{ user: string; token: string }> = [];
          for (const user of msg.users) {
            const c = new Conn({ idx: -1, user, sender: false, register: true, hears: [] }, state);
            await c.connect(msg.port, msg.host);
            const r = await c.request({ t: "register", user, pass: msg.pass });
            if (r.t !== "ok") throw new Error(`register: ${JSON.stringify(r)}`);
            const l = await c.request({ t: "login", user, pass: msg.pass });
            out.push({ user, token: l.token as string });
            c.sock.end();
          }
          send({ cmd: "tokens", tokens: out });
          break;
        }
        case "idle": {
          const ms = await idle(msg.port, msg.host, msg.users, msg.count);
          send({ cmd: "idle", ms, open: state.conns.filter((c) => !c.closed).length });
          break;
        }
        case "logins": {
          const n = await passwordLogins(msg.port, msg.host, msg.users, msg.pass, msg.ms, msg.concurrency);
          send({ cmd: "logins", n });
          break;
        }
        case "start": {
          const r = msg.run;
          state.run = r;
          stopping = false;
          const progress = setInterval(() => state.flushProgress(), 2);
          const markers = [
            setTimeout(() => (state.cpuStart = cpuNow()), Math.max(0, r.measureFromUs / 1000 - clockUs() / 1000)),
            setTimeout(() => (state.cpuUs = cpuNow() - state.cpuStart), Math.max(0, r.measureToUs / 1000 - clockUs() / 1000)),
          ];
          void markers;
          for (const c of state.conns) if (c.spec.stuck) c.sock.pause();
          if (r.paced) void paced(r);
          else pumpWindow(r);
          runCleanup = () => clearInterval(progress);
          break;
        }
        case "credit":
          for (const [s, seq] of msg.c) {
            const c = state.senders.find((x) => x.spec.idx === s);
            if (c && seq > c.credit) c.credit = seq;
          }
          if (state.run && !state.run.paced) pumpWindow(state.run);
          break;
        case "unstick":
          for (const c of state.conns) if (c.spec.stuck) c.sock.resume();
          send({ cmd: "ready" });
          break;
        case "stop":
          stopping = true;
          send({ cmd: "sent", sent: state.senders.map((c) => [c.spec.idx, c.seq] as [number, number]) });
          break;
        case "final": {
          // wait until every local receiver has everything its senders sent, or the deadline
          const sent = new Map(msg.sent);
          const deadline = performance.now() + msg.drainMs;
          const missing = () => {
            let n = 0;
            for (const c of state.conns)
              for (const s of c.spec.hears) n += Math.max(0, (sent.get(s) ?? 0) - 1 - (c.last.get(s) ?? -1));
            return n;
          };
          while (missing() > 0 && performance.now() < deadline) await Bun.sleep(5);
          state.flushProgress();
          runCleanup?.();
          const lost = missing() + state.gaps;
          send({
            cmd: "result",
            hist: state.hist.toJSON(),
            crossHist: state.crossHist.toJSON(),
            lastMember: [...state.lastMember],
            received: state.received,
            receivedInWindow: state.receivedInWindow,
            sentInWindow: state.sentInWindow,
            dups: state.dups,
            lost,
            errors: state.errors,
            cpuUs: state.cpuUs,
            closed: state.conns.filter((c) => c.closed).length,
            stuckReceived: state.stuckReceived,
          });
          break;
        }
        case "exit":
          for (const c of state.conns) c.sock.end();
          process.exit(0);
      }
    } catch (e) {
      send({ cmd: "fail", error: String((e as Error)?.stack ?? e) });
    }
  });

  let runCleanup: (() => void) | undefined;

  function cpuNow(): number {
    const u = process.cpuUsage();
    return u.user + u.system;
  }

  send({ cmd: "hello" });
}

if (import.meta.main) runWorker();
