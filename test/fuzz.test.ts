// Fuzzing the protocol layer and the dispatcher, PROTOCOL.md §1, §2, §3, §4.
//
// A seeded PRNG (TCPCHAT_FUZZ_SEED, printed on failure) generates random and
// mutated frames: byte flips of the seed corpus (test/fuzz/corpus/), wrong
// types in every field of every request, nil everywhere, binary for text,
// maps with keys of every type, ext types, containers announcing more than the
// frame holds, nesting past the limit (hand-built), truncated frames,
// oversized and mismatched length headers.
//
// (a) In-process, frame by frame into a ChatCore over a fake transport, before
//     and after login: no exception escapes core.data(), every frame gets
//     exactly one reply, and that reply is what the independent oracle of
//     test/helpers/fuzz-oracle.ts derives from PROTOCOL.md §2.2 and §3.
// (b) Over TCP to the real server process, four connections at once, while a
//     bystander keeps doing ping and send/receive round trips, and two hostile
//     clients from addresses of their own never read what they are sent (a
//     flood of pings and fuzz frames before login; chunks of a large file, §3.9): every
//     complete frame is answered, codes are documented, the bystander never
//     fails, the hostile connections are closed by the server, the server
//     stays up with bounded RSS. This part is test/helpers/fuzz-tcp-suite.ts, run
//     here against one server on a SQLite file and by test/cluster-fuzz.test.ts
//     against a cluster.
// Everything the server writes must be valid MessagePack with valid UTF-8.
// test/fuzz/regressions/ holds inputs that once crashed, hung or blew up the
// server; each is replayed in-process and over TCP.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Config, DEFAULTS } from "../src/config.ts";
import { ChatCore } from "../src/core/chat.ts";
import { COMMANDS } from "../src/core/commands/index.ts";
import type { Session } from "../src/core/session.ts";
import type { Transport } from "../src/io/writer.ts";
import { FrameDecoder } from "../src/protocol/frame.ts";
import { ERROR_CODES } from "../src/protocol/errors.ts";
import { isRequestType, REQUEST_FIELDS } from "../src/protocol/requests.ts";
import { MemoryStore } from "../src/store/memory.ts";
import type { Msg } from "./helpers/fuzz-conn.ts";
import {
  FIX,
  FUZZ_DIR,
  fuzzSeed,
  oversizedHeader,
  randomBody,
  readFuzzDir,
  Rng,
  shortHeader,
  splitFrames,
  truncatedFrame,
  validRequest,
  WEIRD_KINDS,
  weirdValue,
} from "./helpers/fuzz-gen.ts";
import { concat, decodeStrict, Enc, enc, framed, hex, toJS, type W } from "./helpers/fuzz-msgpack.ts";
import {
  DOC_CODES,
  DOC_REQUESTS,
  describeOutcomes,
  EMPTY_SHA256,
  expectFor,
  type KnownFile,
  matches,
  type OracleContext,
  REQUEST_TYPES,
} from "./helpers/fuzz-oracle.ts";
import type { ReplayResult } from "./helpers/fuzz-replay.ts";
import { fuzzTcpSuite } from "./helpers/fuzz-tcp-suite.ts";
import { type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const SEED = fuzzSeed();
const MAX_FRAME = DEFAULTS.maxFrame;
/** Peak RSS growth bound for one regression input (the server process's bound is in test/helpers/fuzz-tcp-suite.ts). */
const INPUT_GROWTH_LIMIT_MB = 150;

const corpus = readFuzzDir("corpus");
const corpusBodies = corpus.flatMap((f) => f.bodies);
const regressions = readFuzzDir("regressions");

const quietLog = (sink: string[]) => ({ info() {}, error: (m: string, e?: unknown) => void sink.push(`${m} ${String(e ?? "")}`) });
const turn = () => new Promise((r) => setImmediate(r));

/** Uncaught errors anywhere in this process during the in-process fuzzing (a promise chain of the core, say). */
const uncaught: string[] = [];
const onUncaught = (e: unknown) => void uncaught.push(String((e as Error)?.stack ?? e));

function note(list: string[], msg: string): void {
  if (list.length < 40) list.push(msg);
}

// ---- the oracle against the protocol layer ------------------------------------

describe("the oracle's requests are the server's (they drifted once: passwd was missing)", () => {
  test("the same request types as src/protocol/requests.ts, the same fields and types, the same login requirement", () => {
    expect([...REQUEST_TYPES].sort()).toEqual(Object.keys(REQUEST_FIELDS).sort());
    for (const t of REQUEST_TYPES) {
      expect({ t, known: isRequestType(t) }).toEqual({ t, known: true });
      expect({ t, fields: DOC_REQUESTS[t]!.fields }).toEqual({ t, fields: REQUEST_FIELDS[t as keyof typeof REQUEST_FIELDS] });
      expect({ t, auth: DOC_REQUESTS[t]!.auth }).toEqual({ t, auth: COMMANDS[t as keyof typeof COMMANDS].auth });
    }
    for (const t of ["pong", "ok", "msg", "PING", "toString", "__proto__", ""]) expect({ t, known: isRequestType(t) }).toEqual({ t, known: false });
    // the ones added since the oracle was written: passwd (§3.2), the files' requests (§3.9)
    for (const t of ["passwd", "upload", "chunk", "download"]) expect({ t, inOracle: REQUEST_TYPES.includes(t) }).toEqual({ t, inOracle: true });
  });

  test("the oracle's error codes are §4's, the server's (quota came with §3.9)", () => {
    expect([...DOC_CODES].sort()).toEqual([...ERROR_CODES].sort());
  });
});

// ---- (a) in-process ---------------------------------------------------------

/** A connection whose kernel takes everything; what the server wrote is decoded and checked strictly. */
class FakeConn implements Transport {
  readonly remoteAddress = "127.0.0.1";
  ended = false;
  terminated = false;
  readonly replies: Msg[] = [];
  pushes = 0;
  bye?: string;
  readonly invalid: string[] = [];
  readonly session: Session;
  private readonly out = new FrameDecoder(1 << 30, (ev) => {
    if (ev.kind !== "frame") return void this.invalid.push("a frame over 1 GiB");
    const d = decodeStrict(ev.body);
    if (!d.ok || d.value.k !== "map" || d.info.badUtf8)
      note(this.invalid, d.ok ? `${d.value.k === "map" ? "invalid UTF-8" : "not a map"}: ${hex(ev.body, 160)}` : `${d.error}: ${hex(ev.body, 64)}`);
    if (!d.ok || d.value.k !== "map") return;
    const m = toJS(d.value);
    if (m.t === "ok" || m.t === "pong" || m.t === "error") this.replies.push(m);
    else {
      this.pushes++;
      if (m.t === "bye") this.bye = m.reason;
    }
  });
  constructor(readonly core: ChatCore) {
    this.session = core.open(this);
  }
  write(data: Uint8Array): number {
    if (this.ended || this.terminated) return -1;
    this.out.push(data);
    return data.length;
  }
  end(): void {
    this.ended = true;
  }
  // Reading is never paused here: this fake hands the core every frame at once.
  pause(): void {}
  resume(): void {}
  terminate(): void {
    this.terminated = true;
  }
  /** Feeds bytes; returns an exception's text if one escaped core.data(). */
  feed(bytes: Uint8Array): string | undefined {
    try {
      this.core.data(this.session, bytes);
      return undefined;
    } catch (e) {
      return String((e as Error)?.stack ?? e);
    }
  }
  async waitReplies(n: number, ms = 5000): Promise<boolean> {
    if (this.replies.length >= n) return true;
    await null; // the writer flushes in a microtask
    const deadline = Date.now() + ms;
    while (this.replies.length < n) {
      if (Date.now() > deadline) return false;
      await turn();
    }
    return true;
  }
  async request(m: Record<string, unknown>): Promise<Msg> {
    const n = this.replies.length;
    const err = this.feed(framed(enc(m as never)));
    if (err) throw new Error(err);
    if (!(await this.waitReplies(n + 1))) throw new Error(`no reply to ${JSON.stringify(m)}`);
    return this.replies[n]!;
  }
}

const FUZZ_CONFIG: Config = {
  ...DEFAULTS,
  hashMemory: 64,
  hashTime: 1,
  // Limits that would answer `rate_limited` before a frame is even decoded are off here, so
  // frames reach the decoder and the dispatcher; the stream test below runs with the shipped ones.
  rateMsgs: 0,
  rateBytes: 0,
  rateMsgsAddr: 0,
  rateBytesAddr: 0,
  maxRefused: 0,
  // Before login too, frames up to the full limit reach the decoder (the smaller pre-login
  // limit is tested on its own in test/attack/conn.test.ts).
  maxFrameLogin: DEFAULTS.maxFrame,
  registerPerAddr: 0,
  loginsPerUser: 0,
  loginFree: 0,
  loginFailsAddr: 0,
  loginTimeout: 0,
  idleTimeout: 0,
};

interface InProcess {
  core: ChatCore;
  logged: string[];
  observer: FakeConn;
  /** The messages with a file (§3.9), by mid, as the fuzzed user FIX.user can see them. */
  files: Map<number, KnownFile>;
}

/** No upload id a fuzz frame names is one of the fuzzed user's: the server's are random, and the fuzzer never reads them. */
const NO_UPLOADS: ReadonlySet<string> = new Set();

/** What the oracle knows of the fixture's state, for a connection that is or is not logged in as FIX.user. */
function oracleCtx(p: InProcess, loggedIn: boolean): OracleContext {
  return { loggedIn, uploads: NO_UPLOADS, files: p.files };
}

/** Uploads `data` in one chunk and sends it as a file of `target` (PROTOCOL.md §3.9, §3.4): the message's mid. */
async function sendFile(c: FakeConn, target: Record<string, unknown>, name: string, data: Uint8Array): Promise<number> {
  const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
  const u = await c.request({ t: "upload", id: 1, size: data.length, sha256 });
  expect(u).toMatchObject({ t: "ok", offset: 0, size: data.length });
  expect(await c.request({ t: "chunk", id: 2, upload: u.upload, offset: 0, data })).toMatchObject({ t: "ok", offset: data.length, done: true });
  const r = await c.request({ t: "send", id: 3, ...target, file: { upload: u.upload, name, type: "application/octet-stream" } });
  expect(r.t).toBe("ok");
  return r.mid as number;
}

async function fixtures(config: Config): Promise<InProcess> {
  const logged: string[] = [];
  const core = await ChatCore.open(config, new MemoryStore(), quietLog(logged));
  const a = new FakeConn(core);
  for (const u of [FIX.user, FIX.user2]) expect((await a.request({ t: "register", id: 1, user: u, pass: FIX.pass })).t).toBe("ok");
  // an observer in the group and the addressee of direct messages: what reaches it is checked too
  const observer = new FakeConn(core);
  expect((await observer.request({ t: "login", id: 1, user: FIX.user2, pass: FIX.pass })).t).toBe("ok");
  // the group's owner: the fuzzed connection is a plain member, whose requests cannot close it
  expect((await observer.request({ t: "create", id: 2, group: FIX.group })).t).toBe("ok");
  core.closed(a.session);
  // Files the fuzzed user's downloads may find: one in the group (seen while a member: it may
  // leave), one sent to it, and one of the observer's own it can never see (§3.9).
  const files = new Map<number, KnownFile>();
  const bytes = (n: number, k: number) => new Uint8Array(n).map((_, i) => (i * k) & 0xff);
  files.set(await sendFile(observer, { group: FIX.group }, "group.bin", bytes(5000, 7)), { size: 5000, visible: undefined });
  files.set(await sendFile(observer, { user: FIX.user }, "dm.bin", bytes(3000, 11)), { size: 3000, visible: true });
  files.set(await sendFile(observer, { user: FIX.user2 }, "own.bin", bytes(2000, 13)), { size: 2000, visible: false });
  return { core, logged, observer, files };
}

async function loggedInConn(p: InProcess): Promise<FakeConn> {
  const c = new FakeConn(p.core);
  const r = await c.request({ t: "login", id: 1, user: FIX.user, pass: FIX.pass });
  if (r.t !== "ok") throw new Error(`fixture login: ${JSON.stringify(r)}`);
  await c.request({ t: "join", id: 2, group: FIX.group });
  return c;
}

interface Tally {
  frames: number;
  byCat: Map<string, number>;
  byReply: Map<string, number>;
  valid: number;
}

const tally = (): Tally => ({ frames: 0, byCat: new Map(), byReply: new Map(), valid: 0 });
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Output problems (invalid MessagePack or UTF-8) seen by any in-process connection, for the output test. */
const outputProblems: string[] = [];
const report: string[] = [];

/** Feeds `n` generated frames one at a time; each must get exactly the reply the oracle allows. */
async function fuzzFrames(p: InProcess, loggedIn: boolean, n: number, rng: Rng, failures: string[], t: Tally): Promise<void> {
  let conn = loggedIn ? await loggedInConn(p) : new FakeConn(p.core);
  const retire = () => {
    for (const x of conn.invalid) note(outputProblems, `${loggedIn ? "after" : "before"} login: ${x}`);
    p.core.closed(conn.session);
  };
  for (let i = 0; i < n && failures.length < 20; i++) {
    // keep the state this phase is about: a logout or a successful login changes it
    if ((conn.session.user !== undefined) !== loggedIn || conn.session.closed || conn.replies.length > 2000) {
      retire();
      conn = loggedIn ? await loggedInConn(p) : new FakeConn(p.core);
    }
    const g = randomBody(rng, corpusBodies, MAX_FRAME);
    const exp = expectFor(g.body, oracleCtx(p, conn.session.user !== undefined));
    const before = conn.replies.length;
    const where = () => `seed ${SEED} ${loggedIn ? "after" : "before"} login, frame ${i} [${g.cat}] body ${hex(g.body, 300)}`;
    const err = conn.feed(framed(g.body));
    t.frames++;
    bump(t.byCat, g.cat);
    if (exp.valid) t.valid++;
    if (err) {
      note(failures, `${where()}: exception escaped core.data(): ${err}`);
      continue;
    }
    if (!(await conn.waitReplies(before + 1))) {
      note(failures, `${where()}: no reply within 5 s (expected ${describeOutcomes(exp)})`);
      continue;
    }
    const reply = conn.replies[before]!;
    bump(t.byReply, reply.t === "error" ? reply.code : reply.t);
    if (conn.replies.length > before + 1) note(failures, `${where()}: ${conn.replies.length - before} replies to one frame`);
    if (!matches(exp, reply))
      note(failures, `${where()}: ${exp.why}: expected ${describeOutcomes(exp)}${exp.lenient ? " (lenient)" : ""}, got ${JSON.stringify(reply)}`);
  }
  await turn();
  retire();
}

describe("in-process: ChatCore over a fake transport", () => {
  let p: InProcess;
  beforeAll(async () => {
    process.on("unhandledRejection", onUncaught);
    process.on("uncaughtException", onUncaught);
    p = await fixtures(FUZZ_CONFIG);
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUncaught);
    process.off("uncaughtException", onUncaught);
    for (const x of p.observer.invalid) note(outputProblems, `observer: ${x}`);
    await p.core.shutdown();
  });

  test("the seed corpus holds a well-formed frame of every request type, and each is answered as documented", async () => {
    const types = new Set<string>();
    const c = await loggedInConn(p);
    for (const f of corpus) {
      expect(f.bodies.length).toBe(1);
      const exp = expectFor(f.bodies[0]!, oracleCtx(p, true));
      expect({ file: f.name, valid: exp.valid, lenient: exp.lenient }).toEqual({ file: f.name, valid: true, lenient: false });
      types.add(exp.type!);
      if (exp.type === "logout" || exp.type === "leave") continue; // would change the state the others need
      const n = c.replies.length;
      expect(c.feed(framed(f.bodies[0]!))).toBeUndefined();
      expect(await c.waitReplies(n + 1)).toBe(true);
      expect({ file: f.name, ok: matches(exp, c.replies[n]!) }).toEqual({ file: f.name, ok: true });
    }
    expect([...types].sort()).toEqual([...REQUEST_TYPES].sort());
    p.core.closed(c.session);
  });

  test("files (§3.9, §3.4): where the spec decides the reply, the oracle predicts exactly it, and the server gives it", async () => {
    const c = await loggedInConn(p);
    const [group, dm, hidden] = [...p.files.keys()];
    const id = "AAAAAAAAAAAAAAAAAAAAAA";
    const cases: Array<[Record<string, W>, string]> = [
      [{ t: "upload", id: 1, size: 10, sha256: "abc" }, "error:bad_request#1"],
      [{ t: "upload", id: 2, size: 10, sha256: "g".repeat(64) }, "error:bad_request#2"],
      [{ t: "upload", id: 3, size: 100 * 1024 * 1024 + 1, sha256: "a".repeat(64) }, "error:too_large#3"],
      [{ t: "upload", id: 4, size: 0, sha256: EMPTY_SHA256.toUpperCase() }, "ok#4 | error:quota#4"],
      [{ t: "chunk", id: 5, upload: id, offset: 0, data: new Uint8Array(5) }, "error:not_found#5"],
      [{ t: "chunk", id: 6, upload: id, offset: 0, data: new Uint8Array(0) }, "error:bad_request#6"],
      [{ t: "chunk", id: 7, upload: id, offset: 0, data: "text, not bin" }, "error:bad_request#7"],
      [{ t: "chunk", id: 8, upload: id, offset: 0, data: new Uint8Array(1024 * 1024 + 1) }, "error:bad_request#8"],
      [{ t: "download", id: 9, mid: hidden! }, "error:not_found#9"],
      [{ t: "download", id: 10, mid: 999_999 }, "error:not_found#10"],
      [{ t: "download", id: 11, mid: dm!, offset: 10, len: 20 }, "ok#11"],
      [{ t: "download", id: 12, mid: dm!, offset: 3001 }, "error:bad_request#12"],
      [{ t: "download", id: 13, mid: group! }, "ok#13 | error:not_found#13"],
      [{ t: "send", id: 14, group: FIX.group, file: { name: "a.txt", type: "text/plain", data: new Uint8Array(3) } }, "error:bad_request#14"],
      [{ t: "send", id: 15, group: FIX.group, file: { name: "a.txt", type: "text/plain" } }, "error:bad_request#15"],
      [{ t: "send", id: 16, group: FIX.group, file: { upload: id, name: "a.txt", type: "text/plain" } }, "error:forbidden#16 | error:not_found#16"],
    ];
    for (const [req, want] of cases) {
      const exp = expectFor(enc(req), oracleCtx(p, true));
      expect({ req: req.id, outcomes: describeOutcomes(exp) }).toEqual({ req: req.id, outcomes: want });
      const r = await c.request(req);
      expect({ req: req.id, reply: r, ok: matches(exp, r) }).toMatchObject({ req: req.id, ok: true });
      // the bytes from offset 10 of the file fuzz2 sent to fuzz: (i * 11) & 0xff (fixtures)
      if (req.id === 11) expect(Array.from(r.data as Uint8Array)).toEqual(Array.from({ length: 20 }, (_, i) => ((i + 10) * 11) & 0xff));
    }
    p.core.closed(c.session);
  });

  test("random and mutated frames before login: no exception, one reply each, the documented one", async () => {
    const failures: string[] = [];
    const t = tally();
    await fuzzFrames(p, false, 12000, new Rng(SEED ^ 0x1111), failures, t);
    report.push(`in-process before login: ${t.frames} frames (${t.valid} well-formed requests); by kind ${JSON.stringify(Object.fromEntries(t.byCat))}; replies ${JSON.stringify(Object.fromEntries(t.byReply))}`);
    expect(failures).toEqual([]);
  }, 60_000);

  test("random and mutated frames after login: no exception, one reply each, the documented one", async () => {
    const failures: string[] = [];
    const t = tally();
    await fuzzFrames(p, true, 20000, new Rng(SEED ^ 0x2222), failures, t);
    report.push(`in-process after login: ${t.frames} frames (${t.valid} well-formed requests); by kind ${JSON.stringify(Object.fromEntries(t.byCat))}; replies ${JSON.stringify(Object.fromEntries(t.byReply))}`);
    expect(failures).toEqual([]);
  }, 60_000);

  test("every field of every request type (and t, id, file.upload/name/type/data) set to a value of every kind, before and after login", async () => {
    const rng = new Rng(SEED ^ 0x6666);
    const failures: string[] = [];
    let n = 0;
    for (const loggedIn of [false, true]) {
      let c = loggedIn ? await loggedInConn(p) : new FakeConn(p.core);
      for (const type of REQUEST_TYPES) {
        const fields = ["t", "id", ...Object.keys(DOC_REQUESTS[type]!.fields), ...(type === "send" ? ["file.upload", "file.name", "file.type", "file.data"] : [])];
        for (const field of fields)
          for (let kind = 0; kind < WEIRD_KINDS; kind++) {
            if ((c.session.user !== undefined) !== loggedIn) {
              p.core.closed(c.session);
              c = loggedIn ? await loggedInConn(p) : new FakeConn(p.core);
            }
            const m = validRequest(rng, type, rng.int(0, 1e6));
            const v = weirdValue(rng, 0, kind);
            if (field.startsWith("file.")) {
              // file.data in the map of before §3.9 (bytes inline, no upload), the others in {upload, name, type}
              m.file =
                field === "file.data"
                  ? { name: "a.txt", type: "text/plain", data: new Uint8Array(3) }
                  : { upload: "AAAAAAAAAAAAAAAAAAAAAA", name: "a.txt", type: "text/plain" };
              (m.file as Record<string, W>)[field.slice(5)] = v;
            } else m[field] = v;
            const body = enc(m);
            const exp = expectFor(body, oracleCtx(p, c.session.user !== undefined));
            const before = c.replies.length;
            const where = `seed ${SEED} sweep ${type}.${field} kind ${kind}, ${loggedIn ? "after" : "before"} login, body ${hex(body, 200)}`;
            const err = c.feed(framed(body));
            n++;
            if (err) note(failures, `${where}: exception: ${err}`);
            else if (!(await c.waitReplies(before + 1))) note(failures, `${where}: no reply`);
            else if (c.replies.length !== before + 1 || !matches(exp, c.replies[before]!))
              note(failures, `${where}: ${exp.why}: expected ${describeOutcomes(exp)}, got ${JSON.stringify(c.replies.slice(before))}`);
          }
      }
      for (const x of c.invalid) note(outputProblems, `sweep: ${x}`);
      p.core.closed(c.session);
    }
    report.push(`in-process sweep: ${n} frames, every field of every request type with ${WEIRD_KINDS} kinds of value`);
    expect(failures).toEqual([]);
  }, 60_000);

  test("frame level: oversized length headers get too_large, bye and close; truncated frames get nothing; mismatched lengths resynchronise as framed", async () => {
    const rng = new Rng(SEED ^ 0x3333);
    const failures: string[] = [];
    let cases = 0;
    for (let i = 0; i < 600 && failures.length < 20; i++) {
      const kind = i % 3;
      const loggedIn = rng.chance(0.5);
      const c = loggedIn ? await loggedInConn(p) : new FakeConn(p.core);
      const lead = rng.chance(0.5) ? concat(Array.from({ length: rng.int(1, 3) }, () => framed(enc({ t: "ping", id: rng.int(0, 99) })))) : new Uint8Array(0);
      const g = kind === 0 ? oversizedHeader(rng, MAX_FRAME, lead) : kind === 1 ? truncatedFrame(rng, corpusBodies) : shortHeader(rng, corpusBodies);
      const stream = kind === 0 ? g.stream : concat([lead, g.stream]);
      const framing = splitFrames(stream, MAX_FRAME);
      const where = `seed ${SEED} frame-level case ${i} [${g.cat}] stream ${hex(stream, 200)}`;
      const base = c.replies.length;
      // in random pieces, as a socket might deliver it
      let at = 0;
      let err: string | undefined;
      while (at < stream.length && !err) {
        const n = rng.int(1, Math.max(1, stream.length - at));
        err = c.feed(stream.subarray(at, at + n));
        at += n;
      }
      cases++;
      if (err) {
        note(failures, `${where}: exception: ${err}`);
        continue;
      }
      const want = framing.bodies.length + (framing.oversized ? 1 : 0);
      await c.waitReplies(base + want, 5000);
      for (let k = 0; k < 3; k++) await turn();
      const got = c.replies.slice(base);
      if (got.length !== want) note(failures, `${where}: ${got.length} replies, expected ${want}: ${JSON.stringify(got.slice(-3))}`);
      if (framing.oversized) {
        const last = got[got.length - 1];
        if (last?.t !== "error" || last.code !== "too_large" || "id" in last) note(failures, `${where}: last reply ${JSON.stringify(last)}, expected too_large without id`);
        if (c.bye !== "too_large") note(failures, `${where}: bye ${c.bye}, expected too_large`);
        if (!c.ended) note(failures, `${where}: the connection was not closed`);
        // nothing is read after the oversized header
        const n = c.replies.length;
        c.feed(framed(enc({ t: "ping", id: 1 })));
        await turn();
        if (c.replies.length !== n) note(failures, `${where}: a frame after the oversized header was answered`);
      } else if (c.ended || c.bye) note(failures, `${where}: closed (bye ${c.bye}) without an oversized header`);
      for (const x of c.invalid) note(outputProblems, `frame level: ${x}`);
      p.core.closed(c.session);
    }
    // exactly at the limit is accepted; one byte over is not
    const c = new FakeConn(p.core);
    const e = new Enc().mapHeader(3).str("t").str("ping").str("id").int(77).str("pad");
    const pad = MAX_FRAME - e.done().length - 5;
    const atLimit = e.binHeader(pad, "32").bytes(new Uint8Array(pad)).done();
    expect(atLimit.length).toBe(MAX_FRAME);
    expect(await c.request({ t: "ping", id: 1 })).toEqual({ t: "pong", id: 1 });
    c.feed(framed(atLimit));
    expect(await c.waitReplies(2)).toBe(true);
    expect(c.replies[1]).toEqual({ t: "pong", id: 77 });
    c.feed(framed(new Uint8Array(0))); // zero-length body
    expect(await c.waitReplies(3)).toBe(true);
    expect(c.replies[2]).toMatchObject({ t: "error", code: "bad_frame" });
    c.feed(framed(new Uint8Array(0), MAX_FRAME + 1));
    expect(await c.waitReplies(4)).toBe(true);
    expect(c.replies[3]).toMatchObject({ t: "error", code: "too_large" });
    expect(c.bye).toBe("too_large");
    p.core.closed(c.session);
    report.push(`in-process frame level: ${cases} streams (oversized headers, truncated frames, mismatched lengths) in random pieces, plus the exact-limit cases`);
    expect(failures).toEqual([]);
  }, 60_000);

  test("byte streams of many fuzz frames in random pieces, with the shipped rate and held limits: one documented reply per complete frame", async () => {
    // DEFAULTS: 200 requests/s with a 2 s burst, 64 held behind a login: most of a fast stream is rate_limited
    const shipped = await fixtures({ ...DEFAULTS, hashMemory: 64, hashTime: 1 });
    const unlimited = p;
    const rng = new Rng(SEED ^ 0x4444);
    const failures: string[] = [];
    let frames = 0;
    const codes = new Map<string, number>();
    for (let s = 0; s < 24 && failures.length < 20; s++) {
      const target = s % 2 === 0 ? shipped : unlimited;
      const c = s % 4 < 2 ? new FakeConn(target.core) : await loggedInConn(target);
      const bodies = Array.from({ length: rng.int(50, 600) }, () => randomBody(rng, corpusBodies, MAX_FRAME).body);
      const tail = rng.float();
      const parts = bodies.map((b) => framed(b));
      if (tail < 0.2) parts.push(oversizedHeader(rng, MAX_FRAME).stream);
      else if (tail < 0.4) parts.push(truncatedFrame(rng, corpusBodies).stream);
      const stream = concat(parts);
      const framing = splitFrames(stream, MAX_FRAME);
      const want = framing.bodies.length + (framing.oversized ? 1 : 0);
      const base = c.replies.length;
      const where = `seed ${SEED} stream ${s} (${stream.length} bytes, ${want} replies due)`;
      let at = 0;
      while (at < stream.length) {
        const n = rng.chance(0.1) ? rng.int(1, 8) : rng.int(1, 8192);
        const err = c.feed(stream.subarray(at, at + n));
        if (err) {
          note(failures, `${where}: exception at byte ${at}: ${err}`);
          break;
        }
        at += n;
      }
      frames += framing.bodies.length;
      // With the shipped limits a connection may also be closed early: a frame over
      // --max-frame-login before login gets too_large, and one that keeps being refused
      // gets bye limits_exceeded (§1, §2.4). Whether a frame arrives logged in or not
      // depends on the stream's own login and logout requests, so any frame over the
      // pre-login limit may end the stream early.
      const loginMax = target === shipped ? Math.min(DEFAULTS.maxFrameLogin, MAX_FRAME) : MAX_FRAME;
      const early = framing.bodies.some((b) => b.length > loginMax);
      const mayClose = framing.oversized || early || target === shipped;
      if (mayClose) {
        // Replies still pending when it closes (frames held behind a login, sends not yet
        // committed) are not sent; bye is the last frame (§1, §5.3).
        for (let k = 0; k < 2000 && !c.ended && c.replies.length - base < want; k++) await turn();
        for (let k = 0; k < 5; k++) await turn();
        const got = c.replies.length - base;
        const last = c.replies[c.replies.length - 1];
        if (got > want) note(failures, `${where}: ${got} replies`);
        else if (c.bye === "too_large") {
          if (!framing.oversized && !early) note(failures, `${where}: too_large with no frame over the limit`);
          if (last?.code !== "too_large" || "id" in last) note(failures, `${where}: ${got} replies, the last ${JSON.stringify(last)}`);
        } else if (c.bye === "limits_exceeded") {
          if (target !== shipped) note(failures, `${where}: limits_exceeded with no limits`);
        } else if (got !== want) note(failures, `${where}: ${got} replies, bye ${c.bye}`);
      } else {
        if (!(await c.waitReplies(base + want, 20000))) note(failures, `${where}: only ${c.replies.length - base} replies within 20 s`);
        for (let k = 0; k < 5; k++) await turn();
        if (c.replies.length - base !== want) note(failures, `${where}: ${c.replies.length - base} replies`);
      }
      for (const r of c.replies.slice(base)) {
        const code = r.t === "error" ? r.code : r.t;
        bump(codes, code);
        if (r.t === "error" && (!(DOC_CODES as readonly string[]).includes(r.code) || r.code === "internal")) note(failures, `${where}: reply ${JSON.stringify(r)}`);
      }
      if (framing.oversized && c.bye === undefined) note(failures, `${where}: oversized, but no bye`);
      for (const x of c.invalid) note(outputProblems, `stream: ${x}`);
      target.core.closed(c.session);
    }
    for (const x of shipped.observer.invalid) note(outputProblems, `observer (shipped limits): ${x}`);
    expect(shipped.logged).toEqual([]);
    await shipped.core.shutdown();
    report.push(`in-process streams: ${frames} frames in 24 streams, random pieces of 1-8192 bytes; replies ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(failures).toEqual([]);
  }, 60_000);

  test("nothing was logged as a failure inside the core, and no error escaped asynchronously", () => {
    expect(p.logged).toEqual([]);
    expect(uncaught).toEqual([]);
  });
});

describe("in-process: regression inputs, each in a process of its own", () => {
  for (const f of regressions) {
    test(`${f.name}: answered, documented codes, peak memory growth under ${INPUT_GROWTH_LIMIT_MB} MB`, async () => {
      const proc = Bun.spawn([process.execPath, join(import.meta.dir, "helpers", "fuzz-replay.ts"), join(FUZZ_DIR, f.name)], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 50_000);
      const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      clearTimeout(timer);
      expect({ exit: await proc.exited, stderr: err.slice(0, 2000) }).toEqual({ exit: 0, stderr: "" });
      const r = JSON.parse(out.trim().split("\n").pop()!) as ReplayResult;
      const growth = r.hwmAfter - r.hwmBefore;
      report.push(`regression in-process ${f.name}: ${r.replies.length} replies in ${r.ms.toFixed(0)} ms, peak RSS ${r.hwmBefore.toFixed(0)} -> ${r.hwmAfter.toFixed(0)} MiB`);
      expect(r.exceptions).toEqual([]);
      expect(r.logged).toEqual([]);
      expect(r.invalid).toEqual([]);
      if (r.oversized) {
        // The connection closes at the oversized header (§1): replies still pending then (frames
        // held behind a login) are never sent, and too_large is the last reply.
        expect(r.bye).toBe("too_large");
        expect(r.replies.length).toBeLessThanOrEqual(r.expectedReplies);
        expect(r.replies.at(-1)?.code).toBe("too_large");
      } else expect(r.replies.length).toBe(r.expectedReplies);
      expect(r.replies.filter((x) => x.t === "error" && (!(DOC_CODES as readonly string[]).includes(x.code!) || x.code === "internal"))).toEqual([]);
      expect(growth).toBeLessThan(INPUT_GROWTH_LIMIT_MB);
    }, 60_000);
  }
});

// ---- (b) over TCP -----------------------------------------------------------
// The suite is test/helpers/fuzz-tcp-suite.ts; here against one server on a SQLite file
// (test/cluster-fuzz.test.ts runs it against a cluster).

fuzzTcpSuite(
  async () => {
    const tmp = tempDir("tcpchat-fuzz-");
    let server: RunningServer | undefined;
    const dead = (s: RunningServer) => s.proc.exitCode !== null || s.proc.signalCode !== null;
    return {
      name: "one server on SQLite",
      nodes: 1,
      async start(args) {
        server = await startServer(["--db", join(tmp.dir, "fuzz.db"), ...args]);
      },
      port: () => server!.port,
      connectPort: () => server!.port,
      alive: () => [server!.proc.exitCode === null],
      pids: () => [server!.proc.pid],
      stop: async () => [await server!.stop()],
      output: () => server!.output(),
      async fresh() {
        const dir = tempDir("tcpchat-fuzz-reg-");
        const s = await startServer(["--db", join(dir.dir, "r.db")]);
        return {
          port: s.port,
          pid: s.proc.pid,
          user: "replay",
          alive: () => s.proc.exitCode === null,
          exitCode: () => s.proc.exitCode,
          async dispose() {
            if (s.proc.exitCode === null) {
              s.proc.kill("SIGKILL");
              await s.proc.exited;
            }
            dir.cleanup();
          },
        };
      },
      async close() {
        if (server && !dead(server)) {
          server.proc.kill("SIGKILL");
          await server.proc.exited;
        }
        tmp.cleanup();
      },
    };
  },
  { seed: SEED, report, inProcessOutput: outputProblems },
);
