// The crash suite: server processes under four users sending pipelined messages
// (groups and direct) at full rate, killed with SIGKILL at a random moment, restarted on
// the same store with the same arguments, five times over. After every crash: every
// acknowledged message is stored with the mid and ts its sender was given, and sync
// (each recipient) and history (each conversation) return exactly what is stored;
// nothing is stored twice; every push that was delivered is stored; and every send whose
// ok never arrived, retried with its cid, either returns the mid it had been committed
// under or is stored now, once. PROTOCOL.md §3.4, §6, §8.
//
// It runs against a "target": one server on a SQLite file (test/crash.test.ts), or a
// cluster of nodes on one PostgreSQL and NATS (test/cluster-crash.test.ts), the users'
// connections spread over the nodes in turn. In a cluster odd cycles kill one node (its
// users reconnect; the others keep their connections and their in-flight sends are
// answered before the store is read) and even cycles kill every node at once.
import { afterAll, expect, test } from "bun:test";
import { sha256Hex } from "./client.ts";
import { FuzzConn, memOf, type Msg } from "./fuzz-conn.ts";
import { Rng } from "./fuzz-gen.ts";
import type { W } from "./fuzz-msgpack.ts";
import { TEST_ARGS } from "./server.ts";

export const CRASH_CYCLES = 5;
/** Sends in flight per user: enough to keep the batcher full, so many are uncommitted or unacknowledged at the kill. */
const WINDOW = 256;
/** Uploads each user has ready for sends with a file, at the start of each cycle. */
const POOL = 12;
const PAGE = 500;

// Rate limits off: this test is about what a crash leaves in the store, at the highest rate the server takes.
/** Arguments of every server of the suite, beyond its store (--db) and, in a cluster, --bus. */
export const CRASH_ARGS = [...TEST_ARGS, "--rate-msgs", "0", "--rate-bytes", "0", "--rate-msgs-addr", "0", "--rate-bytes-addr", "0"];

const USERS = ["cu0", "cu1", "cu2", "cu3"];
const GROUPS: Record<string, string[]> = { cg0: ["cu0", "cu1", "cu2"], cg1: ["cu1", "cu2", "cu3"] };
const TEXTS = ["hi", "hello there", "żółć", "emoji 🎉🎉", "a".repeat(300), "line\nbreak", "tab\tand \"quotes\"", "x".repeat(3000)];

interface Sent {
  key: string;
  sender: string;
  cid: string;
  group?: string;
  user?: string;
  text?: string;
  /** A file: the finished upload the send names (PROTOCOL.md §3.9), and the bytes it holds. */
  file?: { upload: string; name: string; type: string; data: Uint8Array };
  cycle: number;
  ack?: { mid: number; ts: number };
}

/** A row of the messages table, text columns as strings (PostgreSQL stores them as UTF-8 bytes). */
export interface Row {
  mid: number;
  ts: number;
  sender: string;
  grp: string | null;
  to_user: string | null;
  conv: string;
  cid: string | null;
  text: string | null;
  file_name: string | null;
  file_type: string | null;
  file_size: number | null;
  /** The file's SHA-256, hex. */
  file_sha: string | null;
  /** A group change (PROTOCOL.md §3.3): its kind ("create", "join"...) and whom it is about; null for a message. */
  kind: string | null;
  target: string | null;
}

function targetsOf(u: string): Array<{ group?: string; user?: string }> {
  const t: Array<{ group?: string; user?: string }> = [];
  for (const [g, members] of Object.entries(GROUPS)) if (members.includes(u)) t.push({ group: g });
  for (const v of USERS) t.push({ user: v }); // including a message to oneself
  return t;
}

function convOf(s: { sender: string; group?: string; user?: string }): string {
  if (s.group) return `g:${s.group}`;
  const [a, b] = [s.sender, s.user!].sort();
  return `d:${a}:${b}`;
}

function rowConvRelevant(r: Row, u: string): boolean {
  if (r.grp !== null) return GROUPS[r.grp]!.includes(u);
  return r.sender === u || r.to_user === u;
}

function request(s: Sent): Record<string, W> {
  const m: Record<string, W> = { t: "send", cid: s.cid };
  if (s.group) m.group = s.group;
  else m.user = s.user!;
  if (s.text !== undefined) m.text = s.text;
  if (s.file) m.file = { upload: s.file.upload, name: s.file.name, type: s.file.type };
  return m;
}


/** Whether a stored row is what the client sent. */
function rowMatches(r: Row, s: Sent): boolean {
  return (
    r.sender === s.sender &&
    r.cid === s.cid &&
    r.grp === (s.group ?? null) &&
    r.to_user === (s.user ?? null) &&
    r.conv === convOf(s) &&
    r.text === (s.text ?? null) &&
    r.file_name === (s.file?.name ?? null) &&
    r.file_type === (s.file?.type ?? null) &&
    (s.file ? r.file_size === s.file.data.length && r.file_sha === sha256Hex(s.file.data) : r.file_size === null)
  );
}

/** A message of sync/history against its row. */
function wireMatches(m: Msg, r: Row): boolean {
  return (
    m.mid === r.mid &&
    m.ts === r.ts &&
    m.from === r.sender &&
    (m.group ?? null) === r.grp &&
    (m.user ?? null) === r.to_user &&
    (m.cid ?? null) === r.cid &&
    (m.text ?? null) === r.text &&
    (m.kind ?? null) === r.kind &&
    (m.target ?? null) === r.target &&
    (r.file_name === null
      ? m.file === undefined
      : m.file?.name === r.file_name && m.file?.type === r.file_type && m.file?.size === r.file_size && m.file?.sha256 === r.file_sha)
  );
}

/** Pages `req` (sync, or history forward with `after`) until `more` is false. */
async function pageForward(c: FuzzConn, req: Record<string, W>, after: number): Promise<Msg[]> {
  const out: Msg[] = [];
  for (let page = 0; page < 10000; page++) {
    const r = await c.ok({ ...req, after, limit: PAGE });
    out.push(...r.msgs);
    if (!r.more) return out;
    if (r.msgs.length === 0) throw new Error(`${String(req.t)}: more with an empty page`);
    after = r.msgs[r.msgs.length - 1].mid;
  }
  throw new Error("paging did not end");
}

async function historyBackward(c: FuzzConn, target: Record<string, W>): Promise<Msg[]> {
  const pages: Msg[][] = [];
  let before: number | undefined;
  for (let page = 0; page < 10000; page++) {
    const r = await c.ok({ t: "history", ...target, ...(before === undefined ? {} : { before }), limit: PAGE });
    pages.unshift(r.msgs);
    if (!r.more) return pages.flat();
    if (r.msgs.length === 0) throw new Error("history: more with an empty page");
    before = r.msgs[0].mid;
  }
  throw new Error("paging did not end");
}

export interface CrashTarget {
  /** What the report calls it. */
  name: string;
  /** How many server processes: 1, or the cluster's nodes. */
  nodes: number;
  /** The port of node i (the same after a restart). */
  port(i: number): number;
  /** SIGKILL of the given nodes at once; their signal codes once all have exited. */
  kill(nodes: number[]): Promise<Array<string | null>>;
  /** Starts the given nodes again: same store, same arguments, same ports (after kill or stop). */
  restart(nodes: number[]): Promise<void>;
  /** SIGTERM to every node at once; their exit codes. */
  stop(): Promise<number[]>;
  /** The messages table as it is now (one server: only while it does not run). */
  readRows(label: string): Promise<Row[]>;
  /** Every node's output, of the processes killed before too. */
  output(): string;
  /** The running processes' ids (for their RSS in the report). */
  pids(): number[];
  /**
   * After a kill of some nodes but not all: how long from the kill until the survivors are
   * sure to have replayed what the dead node committed and never announced (PROTOCOL.md §8:
   * "up to about 2 seconds"). The retries, whose check is that they push no old mid, wait
   * for it.
   */
  settleMs: number;
  /** A line for the report at the end, if the target has something to say (a cluster: its replays). */
  summary?(): string;
  close(): Promise<void>;
}


export function crashSuite(open: () => Promise<CrashTarget>, timeoutMs = 90_000): void {
  let target: CrashTarget | undefined;
  /** Each user's connection and the node it is on. */
  const conns = new Map<string, FuzzConn>();
  const nodeOf = new Map<string, number>();
  let nextNode = 0;
  const tokens = new Map<string, string>();
  const sent = new Map<string, Sent>();
  const ackedMids = new Map<number, string>();
  /** Every msg push received: mid -> "sender\0cid". */
  const pushed = new Map<number, string>();
  /** The group changes of the setup (each group's create, then its members' joins): mid -> "kind sender group target". */
  const changes = new Map<number, string>();
  const failures: string[] = [];
  const report: string[] = [];

  function fail(msg: string): void {
    if (failures.length < 50) failures.push(msg);
  }

  afterAll(async () => {
    for (const c of conns.values()) c.kill();
    await target?.close();
  });

  /** Each user's finished uploads not yet named by a send, with their bytes (a send with a file names one, PROTOCOL.md §3.9). */
  const pool = new Map<string, Array<{ upload: string; data: Uint8Array }>>();
  let uploaded = 0;

  /** Tops every user's pool up to POOL uploads, each of distinct bytes (1 to 3000 of them). */
  async function fillPool(rng: Rng): Promise<void> {
    for (const u of USERS) {
      const c = conns.get(u)!;
      const list = pool.get(u) ?? [];
      pool.set(u, list);
      while (list.length < POOL) {
        const data = rng.bytes(rng.int(1, 3000));
        data.set(Buffer.from(`#${++uploaded}#`).subarray(0, data.length)); // distinct content
        const up = await c.ok({ t: "upload", size: data.length, sha256: sha256Hex(data) });
        if (!up.done) await c.ok({ t: "chunk", upload: up.upload, offset: up.offset, data: data.subarray(up.offset) });
        list.push({ upload: up.upload as string, data });
      }
    }
  }

  /** Connects (and logs in) every user without an open connection, each on the next node in turn. */
  async function connectAll(): Promise<void> {
    for (const u of USERS) {
      if (conns.has(u) && !conns.get(u)!.closed) continue;
      const node = nextNode++ % target!.nodes;
      const c = await FuzzConn.connect(target!.port(node));
      c.onPush = (m) => {
        if (m.t !== "msg") return;
        if (m.kind !== undefined) {
          // no group changes after the setup: a push of one is of the setup's, or a mistake
          const key = `${m.kind} ${m.from} ${m.group} ${m.target}`;
          if (changes.get(m.mid) !== key) fail(`mid ${m.mid} pushed as a group change ${key}, which the setup did not make`);
          return;
        }
        const prev = pushed.get(m.mid);
        const key = `${m.from}\0${m.cid}`;
        if (prev !== undefined && prev !== key) fail(`mid ${m.mid} pushed as two messages: ${prev} and ${key}`);
        pushed.set(m.mid, key);
      };
      await c.ok({ t: "login", user: u, token: tokens.get(u)! });
      conns.set(u, c);
      nodeOf.set(u, node);
    }
  }

  /** The list equals the rows (same mids in the same order, same content); `what` names it in failures. */
  function compareList(what: string, got: Msg[], rows: Row[]): void {
    const mids = got.map((m) => m.mid);
    for (let i = 1; i < mids.length; i++)
      if (!(mids[i] > mids[i - 1])) return fail(`${what}: mids not strictly increasing at ${i}: ${mids[i - 1]}, ${mids[i]}`);
    if (got.length !== rows.length || got.some((m, i) => m.mid !== rows[i]!.mid)) {
      const have = new Set(mids);
      const want = new Set(rows.map((r) => r.mid));
      const missing = rows.filter((r) => !have.has(r.mid)).map((r) => r.mid);
      const extra = mids.filter((m) => !want.has(m));
      return fail(`${what}: ${got.length} messages, ${rows.length} stored; missing ${missing.slice(0, 10)}; extra ${extra.slice(0, 10)}`);
    }
    got.forEach((m, i) => {
      if (!wireMatches(m, rows[i]!)) fail(`${what}: message ${m.mid} differs from its row: ${JSON.stringify({ ...m, file: undefined })}`);
    });
  }

  /** Checks stored rows against what was sent, acknowledged and pushed. */
  function checkRows(rows: Row[], label: string): void {
    const byKey = new Map<string, Row>();
    const byMid = new Map<number, Row>();
    for (const r of rows) {
      byMid.set(r.mid, r);
      if (r.kind !== null) {
        // a group change: one of the setup's, stored as its reply said
        const key = `${r.kind} ${r.sender} ${r.grp} ${r.target}`;
        if (changes.get(r.mid) !== key) fail(`${label}: row ${r.mid} is a group change ${key}, which the setup did not make as that mid`);
        continue;
      }
      if (r.cid === null) {
        fail(`${label}: row ${r.mid} has no cid: nobody sent it`);
        continue;
      }
      const key = `${r.sender}\0${r.cid}`;
      if (byKey.has(key)) fail(`${label}: (${r.sender}, ${r.cid}) stored twice: mids ${byKey.get(key)!.mid} and ${r.mid}`);
      byKey.set(key, r);
      const s = sent.get(key);
      if (!s) fail(`${label}: row ${r.mid} (${r.sender}, ${r.cid}) was never sent`);
      else if (!rowMatches(r, s)) fail(`${label}: row ${r.mid} differs from what was sent`);
    }
    // Every acknowledged message is stored as acknowledged.
    for (const s of sent.values()) {
      if (!s.ack) continue;
      const r = byKey.get(s.key);
      if (!r) fail(`${label}: ${s.sender} got ok {mid ${s.ack.mid}} for cid ${s.cid}, and it is not stored`);
      else if (r.mid !== s.ack.mid || r.ts !== s.ack.ts)
        fail(`${label}: cid ${s.cid} acknowledged as mid ${s.ack.mid} ts ${s.ack.ts}, stored as mid ${r.mid} ts ${r.ts}`);
    }
    // Every message pushed to someone is stored (a push follows the commit).
    for (const [mid, key] of pushed) {
      const r = byMid.get(mid);
      if (!r || `${r.sender}\0${r.cid}` !== key) fail(`${label}: pushed message ${mid} (${key.replace("\0", " ")}) is not stored as such`);
    }
  }

  /** What the running server returns through sync (each recipient) and history (each conversation) equals the rows with mid > `after`. */
  async function verifyServer(rows: Row[], after: number, label: string, full: boolean): Promise<void> {
    const newer = rows.filter((r) => r.mid > after);
    for (const u of USERS) {
      const got = await pageForward(conns.get(u)!, { t: "sync" }, after);
      compareList(`${label}: sync of ${u} after ${after}`, got, newer.filter((r) => rowConvRelevant(r, u)));
      const have = new Set(got.map((m) => m.mid));
      for (const s of sent.values())
        if (s.ack && s.ack.mid > after && (s.group ? GROUPS[s.group]!.includes(u) : s.sender === u || s.user === u) && !have.has(s.ack.mid))
          fail(`${label}: acknowledged mid ${s.ack.mid} (${s.sender} -> ${s.group ?? s.user}) missing from ${u}'s sync`);
    }
    const convs: Array<{ conv: string; as: string; target: Record<string, W> }> = [];
    for (const [g, members] of Object.entries(GROUPS)) convs.push({ conv: `g:${g}`, as: members[0]!, target: { group: g } });
    for (let i = 0; i < USERS.length; i++)
      for (let j = i; j < USERS.length; j++) convs.push({ conv: `d:${USERS[i]}:${USERS[j]}`, as: USERS[i]!, target: { user: USERS[j]! } });
    for (const { conv, as, target } of convs) {
      const c = conns.get(as)!;
      const got = await pageForward(c, { t: "history", ...target }, after);
      compareList(`${label}: history ${conv} after ${after}`, got, newer.filter((r) => r.conv === conv));
      if (full) compareList(`${label}: whole history ${conv}, paged backwards`, await historyBackward(c, target), rows.filter((r) => r.conv === conv));
    }
  }

  /** Full-rate load until `stop()` is called: every user keeps WINDOW sends in flight. */
  function startLoad(cycle: number, rng: Rng): { stop(): void; deafen(): void; idle(ms: number): Promise<boolean>; counts(): { sent: number; acked: number; lost: number } } {
    let stopped = false;
    let deaf = false;
    let nSent = 0;
    let nAcked = 0;
    let nLost = 0;
    const inFlightOf = new Map<string, number>();
    for (const u of USERS) {
      const c = conns.get(u)!;
      const targets = targetsOf(u);
      let seq = 0;
      let inFlight = 0;
      inFlightOf.set(u, 0);
      const pump = () => {
        while (!stopped && !c.closed && inFlight < WINDOW) {
          const cid = `${u}-${cycle}-${seq++}`;
          const s: Sent = { key: `${u}\0${cid}`, sender: u, cid, ...rng.pick(targets), cycle };
          const kind = rng.float();
          const f = kind < 0.03 ? pool.get(u)!.pop() : undefined;
          if (f) s.file = { ...f, name: `f${seq}.bin`, type: "application/octet-stream" };
          if (!s.file || kind < 0.015) s.text = `${rng.pick(TEXTS)} #${cid}`;
          sent.set(s.key, s);
          inFlight++;
          inFlightOf.set(u, inFlight);
          nSent++;
          c.send(request(s), (m) => {
            inFlight--;
            inFlightOf.set(u, inFlight);
            if (deaf && m.t === "ok") {
              nLost++; // this ok is "lost in transit": the sender never learns of it
            } else if (m.t === "ok") {
              nAcked++;
              if (typeof m.mid !== "number" || typeof m.ts !== "number") fail(`ok without mid/ts: ${JSON.stringify(m)}`);
              const prev = ackedMids.get(m.mid);
              if (prev !== undefined) fail(`mid ${m.mid} acknowledged twice: ${prev.replace("\0", " ")} and ${s.key.replace("\0", " ")}`);
              ackedMids.set(m.mid, s.key);
              s.ack = { mid: m.mid, ts: m.ts };
            } else fail(`send ${cid}: ${m.code}: ${m.msg}`);
            pump();
          });
        }
      };
      pump();
    }
    return {
      stop: () => {
        stopped = true;
      },
      deafen: () => {
        deaf = true;
      },
      /** Whether every send on a connection still open got its reply within `ms` (the connections of a killed node are closed: theirs never come). */
      async idle(ms: number): Promise<boolean> {
        const deadline = Date.now() + ms;
        while (USERS.some((u) => !conns.get(u)!.closed && inFlightOf.get(u)! > 0)) {
          if (Date.now() > deadline) return false;
          await Bun.sleep(10);
        }
        return true;
      },
      counts: () => ({ sent: nSent, acked: nAcked, lost: nLost }),
    };
  }

  /** Retries every send without an ok (same request, same cid), then a sample of acknowledged ones. */
  async function retry(rows: Row[], rng: Rng, label: string): Promise<{ committed: number; stored: number; resent: number }> {
    const byKey = new Map(rows.map((r) => [`${r.sender}\0${r.cid}`, r]));
    const maxMid = rows.length ? rows[rows.length - 1]!.mid : 0;
    const unacked = [...sent.values()].filter((s) => !s.ack);
    const acked = [...sent.values()].filter((s) => s.ack);
    const sample = Array.from({ length: Math.min(20, acked.length) }, () => rng.pick(acked));
    let committed = 0;
    let stored = 0;
    // A repeat of a used cid stores nothing and pushes nothing (§3.4, §5.1): no push may carry an old mid now.
    const pushedBefore = new Set(pushed.keys());
    const pushCheck = (m: Msg) => {
      if (m.t === "msg" && m.mid <= maxMid) fail(`${label}: a retry pushed mid ${m.mid}${pushedBefore.has(m.mid) ? " again" : ", stored before the retries"}`);
    };
    const saved = new Map<string, (m: Msg) => void>();
    for (const [u, c] of conns) {
      saved.set(u, c.onPush);
      const orig = c.onPush;
      c.onPush = (m) => {
        pushCheck(m);
        orig(m);
      };
    }
    const work = [...unacked, ...sample];
    await Promise.all(
      USERS.map(async (u) => {
        const c = conns.get(u)!;
        const mine = work.filter((s) => s.sender === u);
        for (let i = 0; i < mine.length; i += WINDOW) {
          await Promise.all(
            mine.slice(i, i + WINDOW).map(async (s) => {
              const r = await c.request(request(s), 30000);
              if (r.t !== "ok") return fail(`${label}: retry of ${s.cid}: ${r.code}: ${r.msg}`);
              const prior = byKey.get(s.key);
              if (s.ack) {
                if (r.mid !== s.ack.mid || r.ts !== s.ack.ts) fail(`${label}: repeat of acknowledged ${s.cid} (mid ${s.ack.mid}) answered mid ${r.mid}`);
                return;
              }
              if (prior) {
                committed++;
                if (r.mid !== prior.mid || r.ts !== prior.ts)
                  fail(`${label}: ${s.cid} was committed as mid ${prior.mid} before the crash; its retry answered mid ${r.mid}`);
              } else {
                stored++;
                if (!(r.mid > maxMid)) fail(`${label}: ${s.cid} was not stored; its retry answered an old mid ${r.mid}`);
              }
              const prev = ackedMids.get(r.mid);
              if (prev !== undefined && prev !== s.key) fail(`${label}: retry of ${s.cid} answered mid ${r.mid}, already acknowledged for ${prev}`);
              ackedMids.set(r.mid, s.key);
              s.ack = { mid: r.mid, ts: r.ts };
            }),
          );
        }
      }),
    );
    for (const [u, c] of conns) c.onPush = saved.get(u)!;
    // The server now holds exactly the rows of the crash plus one per retry that stored: seen through every user's sync.
    const newMids = new Set<number>();
    for (const u of USERS) for (const m of await pageForward(conns.get(u)!, { t: "sync" }, maxMid)) newMids.add(m.mid);
    const storedMids = work.filter((s) => s.ack && s.ack.mid > maxMid).map((s) => s.ack!.mid);
    if (newMids.size !== stored || storedMids.some((m) => !newMids.has(m)))
      fail(`${label}: ${stored} retries stored a message, the server has ${newMids.size} messages after mid ${maxMid}`);
    return { committed, stored, resent: work.length };
  }

  test(
    `${CRASH_CYCLES} SIGKILLs under full-rate sends: acknowledged means stored, synced and in history; nothing twice; retries by cid are exact`,
    async () => {
      const SEED = crashSeed();
      const rng = new Rng(SEED);
      console.log(`crash.test seed ${SEED} (TCPCHAT_CRASH_SEED=${SEED} repeats the kill times)`);
      try {
        target = await open();
        const t = target;
        const all = Array.from({ length: t.nodes }, (_, i) => i);
        for (const u of USERS) {
          const c = await FuzzConn.connect(t.port(nextNode++ % t.nodes));
          await c.ok({ t: "register", user: u, pass: "password1" });
          tokens.set(u, (await c.ok({ t: "login", user: u, pass: "password1" })).token);
          // each group's first member creates it, the others join: both are entries of its log
          for (const [g, members] of Object.entries(GROUPS)) {
            if (!members.includes(u)) continue;
            const kind = members[0] === u ? "create" : "join";
            const r = await c.ok({ t: kind, group: g });
            expect(r.mid).toBeGreaterThan(0);
            changes.set(r.mid, `${kind} ${u} ${g} ${u}`);
          }
          c.close();
        }
        await connectAll();
        let checkpoint = 0;
        let totalCommittedUnacked = 0;
        for (let cycle = 1; cycle <= CRASH_CYCLES; cycle++) {
          const label = `cycle ${cycle}`;
          // One server: it, every time. A cluster: one node in odd cycles (in turn), every node in even ones.
          const victims = t.nodes === 1 || cycle % 2 === 0 ? all : [((cycle - 1) / 2) % t.nodes];
          await fillPool(rng);
          const load = startLoad(cycle, rng);
          const killAfter = rng.int(40, 900);
          // The oks of the last few ms before the kill are lost on the way (as on a broken network), so
          // some messages are committed and their senders do not know: their retries must find them.
          const deafFor = rng.int(5, 60);
          await Bun.sleep(Math.max(0, killAfter - deafFor));
          load.deafen();
          await Bun.sleep(Math.min(deafFor, killAfter));
          const signals = await t.kill(victims);
          const killedAt = performance.now();
          load.stop();
          expect(signals).toEqual(victims.map(() => "SIGKILL"));
          for (const [u, c] of conns) {
            if (victims.includes(nodeOf.get(u)!)) {
              if (!(await c.until(() => c.closed, 5000))) fail(`${label}: a client saw no close after the kill`);
            } else if (c.closed) fail(`${label}: ${u}'s connection to node ${nodeOf.get(u)}, which was not killed, closed`);
          }
          // On the nodes still running, the sends in flight are answered (the oks unheard: deaf) before the store is read.
          if (!(await load.idle(30000))) fail(`${label}: sends on the surviving nodes unanswered after 30 s`);
          const { sent: nSent, acked: nAcked, lost: nLost } = load.counts();
          const rows = await t.readRows(label); // what the crash left
          checkRows(rows, label);
          const t0 = performance.now();
          await t.restart(victims); // same database, same arguments, nothing done in between
          const restartMs = performance.now() - t0;
          await connectAll();
          await verifyServer(rows, checkpoint, label, cycle === CRASH_CYCLES);
          expect(failures).toEqual([]);
          // Survivors replay what a dead node committed and never announced: late, before the retries (see settleMs).
          if (victims.length < t.nodes) await Bun.sleep(Math.max(0, killedAt + t.settleMs - performance.now()));
          const { committed, stored, resent } = await retry(rows, rng, label);
          totalCommittedUnacked += committed;
          const inStore = rows.filter((r) => sent.get(`${r.sender}\0${r.cid}`)?.cycle === cycle).length;
          const killed = t.nodes === 1 ? "killed" : victims.length === t.nodes ? "all nodes killed" : `node ${victims[0]} killed`;
          const rss = t.pids().map((pid) => memOf(pid).rss.toFixed(0)).join(", ");
          report.push(
            `cycle ${cycle}: ${killed} after ${killAfter} ms; ${nSent} sent, ${nAcked} acknowledged (+${nLost} oks dropped in the last ${deafFor} ms), ` +
              `${inStore} of them stored at the kill; retried ${resent}: ${committed} committed without ok, ${stored} stored by the retry; ` +
              `restart ${restartMs.toFixed(0)} ms; server RSS after restart ${rss} MiB`,
          );
          expect(failures).toEqual([]);
          expect([...sent.values()].filter((s) => !s.ack).length).toBe(0);
          // the next cycle checks everything after this: what the retries stored, and the next load
          checkpoint = rows.length ? rows[rows.length - 1]!.mid : 0;
        }
        // the retry of a committed-but-unacknowledged send was exercised
        expect(totalCommittedUnacked).toBeGreaterThan(0);
        // nothing failed inside the server (a failed commit or request is logged)
        expect(t.output()).not.toMatch(/commit failed|request failed|SQLITE|corrupt|malformed/i);
        // Finally a clean stop and start: everything ever acknowledged, once, in sync from 0 and in every history.
        for (const c of conns.values()) c.close();
        conns.clear();
        expect(await t.stop()).toEqual(all.map(() => 0));
        const rows = await t.readRows("final");
        checkRows(rows, "final");
        await t.restart(all);
        await connectAll();
        await verifyServer(rows, 0, "final", true);
        expect(failures).toEqual([]);
        for (const c of conns.values()) c.close();
        expect(await t.stop()).toEqual(all.map(() => 0));
        report.push(`total: ${sent.size} messages sent, ${rows.length} stored, ${pushed.size} distinct pushes seen`);
        if (t.summary) report.push(t.summary());
        console.log(`${t.name}:\n${report.join("\n")}`);
      } catch (e) {
        console.log(`crash.test failed with seed ${SEED}\n${report.join("\n")}\n${failures.join("\n")}`);
        throw e;
      }
    },
    timeoutMs,
  );
}

/** TCPCHAT_CRASH_SEED, or a new seed. */
function crashSeed(): number {
  return process.env.TCPCHAT_CRASH_SEED ? Number(process.env.TCPCHAT_CRASH_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
}
