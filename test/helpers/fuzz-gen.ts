// Fuzz inputs: a seeded PRNG, the seed corpus and regression files of
// test/fuzz/, and generators of random, mutated and hand-built hostile frames.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { concat, Enc, enc, framed, type W } from "./fuzz-msgpack.ts";
import { DOC_REQUESTS, EMPTY_SHA256, MAX_CHUNK, MAX_FILE, REQUEST_TYPES } from "./fuzz-oracle.ts";

export const FUZZ_DIR = join(import.meta.dir, "..", "fuzz");

/** The seed: TCPCHAT_FUZZ_SEED if set, else a fixed one, so runs are repeatable. */
export function fuzzSeed(): number {
  const env = process.env.TCPCHAT_FUZZ_SEED;
  return env ? Number(env) >>> 0 : 0x7c4a7c4a;
}

/** sfc32, seeded through splitmix32. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }
  float(): number {
    return this.u32() / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[Math.floor(this.float() * a.length)]!;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** Sizes spread over orders of magnitude: mostly small, sometimes large. */
  size(max: number): number {
    return Math.min(max, Math.floor(Math.exp(this.float() * Math.log(max + 1))) - 1 + (this.chance(0.1) ? 1 : 0));
  }
  /** A new generator whose stream depends on this one's next value. */
  fork(): Rng {
    return new Rng(this.u32());
  }
}

// ---- files: corpus and regressions ------------------------------------------

/**
 * The tiny text format of test/fuzz/ files. `#` starts a comment; `context X`
 * names the connection state to replay in; every other line is `frame <tokens>`
 * (a body: its 4-byte length is prepended) or `raw <tokens>` (bytes as they are).
 * Tokens are hex (`82a174`), `XX*N` (byte XX N times) or `(hex)*N` (a sequence N times).
 */
export interface FuzzFile {
  name: string;
  context: string;
  /** The bytes to write to the connection. */
  stream: Uint8Array;
  /** For `frame` lines: the bodies, in order. */
  bodies: Uint8Array[];
  comment: string;
}

function parseTokens(s: string, where: string): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const tok of s.trim().split(/\s+/)) {
    if (tok === "") continue;
    let m: RegExpMatchArray | null;
    if ((m = tok.match(/^\(([0-9a-fA-F]+)\)\*(\d+)$/)) || (m = tok.match(/^([0-9a-fA-F]{2})\*(\d+)$/))) {
      const unit = Buffer.from(m[1]!, "hex");
      const n = Number(m[2]);
      const out = new Uint8Array(unit.length * n);
      for (let i = 0; i < n; i++) out.set(unit, i * unit.length);
      parts.push(out);
    } else if (/^([0-9a-fA-F]{2})+$/.test(tok)) parts.push(new Uint8Array(Buffer.from(tok, "hex")));
    else throw new Error(`${where}: bad token ${JSON.stringify(tok)}`);
  }
  return concat(parts);
}

export function parseFuzzFile(name: string, text: string): FuzzFile {
  const streams: Uint8Array[] = [];
  const bodies: Uint8Array[] = [];
  const comments: string[] = [];
  let context = "pre-login";
  text.split("\n").forEach((line, i) => {
    const l = line.trim();
    const where = `${name}:${i + 1}`;
    if (l === "") return;
    if (l.startsWith("#")) return void comments.push(l.slice(1).trim());
    const [word, ...rest] = l.split(/\s+/);
    if (word === "context") context = rest.join(" ");
    else if (word === "frame") {
      const body = parseTokens(rest.join(" "), where);
      bodies.push(body);
      streams.push(framed(body));
    } else if (word === "raw") streams.push(parseTokens(rest.join(" "), where));
    else throw new Error(`${where}: expected "frame", "raw", "context" or a # comment`);
  });
  return { name, context, stream: concat(streams), bodies, comment: comments.join(" ") };
}

export function readFuzzDir(sub: "corpus" | "regressions"): FuzzFile[] {
  const dir = join(FUZZ_DIR, sub);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".hex"))
    .sort()
    .map((f) => parseFuzzFile(`${sub}/${f}`, readFileSync(join(dir, f), "utf8")));
}

// ---- framing, as PROTOCOL.md §1 defines it --------------------------------

export interface Framing {
  /** Complete frame bodies, in order. */
  bodies: Uint8Array[];
  /** A length header over the limit was reached (what follows it is never read). */
  oversized: boolean;
  /** Bytes of an incomplete frame at the end. */
  partial: number;
}

export function splitFrames(stream: Uint8Array, maxFrame: number): Framing {
  const bodies: Uint8Array[] = [];
  let pos = 0;
  while (pos < stream.length) {
    if (stream.length - pos < 4) return { bodies, oversized: false, partial: stream.length - pos };
    const n = new DataView(stream.buffer, stream.byteOffset + pos, 4).getUint32(0);
    if (n > maxFrame) return { bodies, oversized: true, partial: 0 };
    if (stream.length - pos - 4 < n) return { bodies, oversized: false, partial: stream.length - pos };
    bodies.push(stream.subarray(pos + 4, pos + 4 + n));
    pos += 4 + n;
  }
  return { bodies, oversized: false, partial: 0 };
}

// ---- generators -----------------------------------------------------------

/** Names the fuzz fixtures use: the corpus refers to them. */
export const FIX = { user: "fuzz", user2: "fuzz2", pass: "password1", group: "fuzzg" };

const FIELD_NAMES = ["t", "id", "user", "pass", "token", "group", "text", "file", "cid", "before", "after", "limit", "name", "type", "data", "mid", "reply", "emoji", "remove", "q", "public", "topic", "description", "secs", "role", "dms", "upload", "offset", "size", "sha256", "len"];

/** 64 hex digits (§3.9), sometimes in upper case (taken as lower), sometimes the SHA-256 of no bytes. */
export function randomSha256(r: Rng): string {
  if (r.chance(0.1)) return EMPTY_SHA256;
  const h = Buffer.from(r.bytes(32)).toString("hex");
  return r.chance(0.2) ? h.toUpperCase() : h;
}

/** An upload id such as the server gives (22 characters of base64url, §3.9), or another string of 1-64 bytes. */
export function randomUploadId(r: Rng): string {
  if (r.chance(0.8)) return Buffer.from(r.bytes(16)).toString("base64url");
  return r.pick(["u", "x".repeat(64), "żółć", `up-${r.u32()}`]);
}

/**
 * A `send`'s file (§3.4): mostly `{upload, name, type}`; sometimes the bytes inline as before
 * §3.9 (`{name, type, data}`, a bad_request), rarely with both an upload and data.
 */
export function randomFile(r: Rng): Record<string, W> {
  const name = r.pick(["a.bin", "a.png", "résumé.pdf", "x".repeat(255)]);
  const type = r.pick(["application/octet-stream", "image/png", ""]);
  const x = r.float();
  if (x < 0.1) return { name, type, data: r.bytes(r.size(512)) };
  if (x < 0.13) return { upload: randomUploadId(r), name, type, data: r.bytes(r.size(64)) };
  return { upload: randomUploadId(r), name, type };
}

/** A well-formed request of `type`, as a W value (string keys, in order). */
export function validRequest(r: Rng, type: string, id?: number): Record<string, W> {
  const m: Record<string, W> = { t: type };
  if (id !== undefined) m.id = id;
  switch (type) {
    case "register":
      m.user = `fz${r.u32().toString(36)}`;
      m.pass = FIX.pass;
      break;
    case "login":
      m.user = FIX.user;
      if (r.chance(0.5)) m.pass = r.chance(0.7) ? FIX.pass : "wrong-password";
      else m.token = Buffer.from(r.bytes(32)).toString("base64url");
      break;
    case "create":
    case "join":
    case "leave":
    case "members":
    case "configure":
      m.group = r.chance(0.8) ? FIX.group : `g${r.int(0, 20)}`;
      if (type === "create" || type === "configure") {
        if (r.chance(0.5)) m.public = r.chance(0.5);
        if (r.chance(0.5)) m.topic = r.pick(["", "deploys", "żółć ✓ 🎉"]);
        if (r.chance(0.3)) m.description = `about ${r.u32()}`;
      }
      break;
    case "invite":
    case "kick":
    case "ban":
    case "unban":
    case "mute":
    case "unmute":
    case "role":
    case "transfer":
      m.group = r.chance(0.8) ? FIX.group : `g${r.int(0, 20)}`;
      m.user = r.pick([FIX.user, FIX.user2, `nobody${r.int(0, 9)}`]);
      if (type === "mute" && r.chance(0.5)) m.secs = r.int(0, 100000);
      if (type === "role") m.role = r.pick(["admin", "member"]);
      break;
    case "list":
      if (r.chance(0.5)) m.q = r.pick(["g", "fz", "x%_"]);
      if (r.chance(0.3)) m.after = r.pick(["", "g1", "zzz"]);
      if (r.chance(0.5)) m.limit = r.int(0, 1000);
      break;
    case "block":
    case "unblock":
      m.user = r.pick([FIX.user, FIX.user2, `nobody${r.int(0, 9)}`]);
      break;
    case "privacy":
      if (r.chance(0.5)) m.dms = r.pick(["anyone", "groups", "nobody"]);
      break;
    case "send":
      if (r.chance(0.6)) m.group = FIX.group;
      else m.user = r.chance(0.8) ? FIX.user2 : FIX.user;
      if (r.chance(0.85)) m.text = r.chance(0.1) ? "żółć ✓ 🎉" : `hello ${r.u32()}`;
      if (m.text === undefined || r.chance(0.15)) m.file = randomFile(r);
      if (r.chance(0.7)) m.cid = `c${r.u32().toString(36)}`;
      if (r.chance(0.1)) m.reply = r.int(0, 200);
      break;
    case "edit":
    case "delete":
    case "react":
    case "read":
    case "typing":
      if (r.chance(0.6)) m.group = FIX.group;
      else m.user = r.chance(0.8) ? FIX.user2 : FIX.user;
      if (type !== "typing") m.mid = r.int(0, 200);
      if (type === "edit") m.text = r.chance(0.1) ? "żółć ✓" : `edited ${r.u32()}`;
      if (type === "react") {
        m.emoji = r.pick(["👍", "🎉", "x", "👨‍👩‍👧‍👦"]);
        if (r.chance(0.3)) m.remove = r.chance(0.5);
      }
      break;
    case "history":
      if (r.chance(0.6)) m.group = FIX.group;
      else m.user = FIX.user2;
      if (r.chance(0.3)) m.before = r.int(0, 100000);
      if (r.chance(0.3)) m.after = r.int(0, 1000);
      if (r.chance(0.5)) m.limit = r.int(0, 1000);
      break;
    case "search":
      m.q = r.pick(["hello", "he", "żółć", "日本語", "%_\\", "x"]);
      if (r.chance(0.3)) m.before = r.int(0, 100000);
      if (r.chance(0.5)) m.limit = r.int(0, 1000);
      break;
    case "sync":
      m.after = r.int(0, 1000);
      if (r.chance(0.5)) m.limit = r.int(0, 1000);
      break;
    case "upload":
      // mostly small; sometimes empty, at --max-file or over it
      m.size = r.chance(0.85) ? r.size(1 << 20) : r.pick([0, MAX_FILE, MAX_FILE + 1, 2 ** 40]);
      m.sha256 = m.size === 0 && r.chance(0.5) ? EMPTY_SHA256 : randomSha256(r);
      break;
    case "chunk":
      m.upload = randomUploadId(r);
      m.offset = r.chance(0.5) ? 0 : r.int(0, 1 << 20);
      // rarely past max_chunk (the frame stays under --max-frame)
      m.data = r.chance(0.01) ? new Uint8Array(MAX_CHUNK + r.int(1, 4096)) : r.bytes(Math.max(1, r.size(1024)));
      break;
    case "download":
      // the fixtures' files are among the first mids (test/fuzz/corpus/README.md)
      m.mid = r.chance(0.5) ? r.int(0, 8) : r.int(0, 200);
      if (r.chance(0.5)) m.offset = r.chance(0.5) ? 0 : r.int(0, 5000);
      if (r.chance(0.5)) m.len = r.pick([0, 1, 100, 65536, MAX_CHUNK, MAX_CHUNK + 1, 2 ** 32]);
      break;
  }
  return m;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff];

/** Invalid UTF-8 sequences, including overlong forms of ASCII and encoded surrogates. */
const BAD_UTF8 = [[0xff], [0xc0, 0x80], [0xc1, 0xb4], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xe0, 0x80, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc3], [0x80]];

/** How many kinds of value weirdValue makes (its `kind` argument). */
export const WEIRD_KINDS = 26;

/** A value of any MessagePack type, often one a field does not expect. */
export function weirdValue(r: Rng, depth = 0, kind = r.int(0, WEIRD_KINDS - 1)): W {
  switch (kind) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, 1, 7, 127, 128, 255, 256, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53]);
    case 3:
      return r.pick([-1, -32, -33, -128, -129, -(2 ** 31), -(2 ** 53)]);
    case 4:
      return { $int: r.pick([2n ** 63n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 53n - 1n, 0n, 1n]), fmt: "u64" };
    case 5:
      return { $int: r.pick([-1n, -(2n ** 63n), 5n, 0n, 2n ** 53n - 1n]), fmt: r.pick(["i64", "i8", "i32"] as const) };
    case 6:
      return { $f64: r.pick([0.5, 1.0, -0.0, 1.5, NaN, Infinity, -Infinity, 1e300, 2 ** 53, 2 ** 53 - 1, -1.0, 3.0]) };
    case 7:
      return { $f32: r.pick([1.0, 0.5, NaN, -0.0, 16777216, 3.0e38]) };
    case 8:
      return r.pick(["", "a", "ping", "send", FIX.user, FIX.group, "UPPER", "-dash", ".dot", "x".repeat(33), "é", "🎉"]);
    case 9:
      return "x".repeat(r.size(5000));
    case 10:
      return { $str: new Uint8Array([...Buffer.from("ab"), ...r.pick(BAD_UTF8), ...Buffer.from("c")]) };
    case 11:
      return { $str: r.bytes(r.size(64)) };
    case 12:
      return r.bytes(r.size(300));
    case 13:
      return { $bin: new Uint8Array(Buffer.from(r.pick([FIX.user, FIX.group, "hello", "password1"]))) };
    case 14:
      return [];
    case 15:
      return depth < 3 ? [weirdValue(r, depth + 1), weirdValue(r, depth + 1)] : [1, 2];
    case 16:
      return {};
    case 17:
      // a file map: as before §3.9 (bytes inline), or as now (an upload)
      if (depth >= 3) return { a: 1 };
      return r.chance(0.5)
        ? { name: weirdValue(r, depth + 1), type: "x", data: weirdValue(r, depth + 1) }
        : { upload: weirdValue(r, depth + 1), name: weirdValue(r, depth + 1), type: "x" };
    case 18:
      return { $map: [[weirdKey(r), weirdValue(r, depth + 1)]] };
    case 19:
      return { $ext: r.int(-128, 127), data: r.bytes(r.pick([0, 1, 2, 4, 8, 16, 3, 100])) };
    case 20:
      return { $ext: -1, data: r.bytes(r.pick([4, 8, 12, 1, 5, 0])) };
    case 21:
      return { $raw: nested(r, r.int(2, 12)) };
    case 22:
      return { $arr: Array.from({ length: r.pick([255, 256, 257, 300]) }, () => 0) };
    case 23:
      return { $map: Array.from({ length: r.pick([255, 256, 257]) }, (_, i) => [`k${i}`, i] as [W, W]) };
    case 24:
      return "y".repeat(r.pick([65536, 65537, 70000])); // around --max-text
    default:
      return r.pick(["password1", "c1", "a.png", "image/png", EMPTY_SHA256, "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"]);
  }
}

/** A map key of any type. */
export function weirdKey(r: Rng): W {
  return r.pick<W>([
    null,
    true,
    false,
    0,
    1,
    -1,
    { $f64: 1.5 },
    { $f64: NaN },
    new Uint8Array([0x74]), // bin "t"
    [1],
    { a: 1 },
    { $ext: 5, data: new Uint8Array([1]) },
    "__proto__",
    "constructor",
    "toString",
    "",
    "t",
    "id",
    { $str: new Uint8Array([0xc1, 0xb4]) }, // an overlong "t"
    { $int: 116n, fmt: "u64" },
  ]);
}

/** `depth` nested containers around a nil, hand-built. */
export function nested(r: Rng, depth: number): Uint8Array {
  const e = new Enc();
  for (let i = 0; i < depth; i++) {
    if (r.chance(0.5)) e.u8(0x91);
    else e.u8(0x81).str("k");
  }
  return e.u8(0xc0).done();
}

/** A frame body of `n` bytes nesting one-element arrays as deep as it fits (`n - 1` levels). */
export function deepArrays(n: number): Uint8Array {
  const b = new Uint8Array(n).fill(0x91);
  b[n - 1] = 0xc0;
  return b;
}

function pickField(r: Rng, type: string): string {
  const own = Object.keys(DOC_REQUESTS[type]!.fields);
  return r.chance(0.8) && own.length > 0 ? r.pick(own) : r.pick(FIELD_NAMES);
}

export interface Gen {
  cat: string;
  body: Uint8Array;
}

/** Structured: a valid request with 1-3 fields replaced by values of other types (or removed, or nil). */
export function wrongTypes(r: Rng): Gen {
  const type = r.pick(REQUEST_TYPES);
  const m = validRequest(r, type, r.chance(0.9) ? r.int(0, 1e6) : undefined);
  const k = r.int(1, 3);
  for (let i = 0; i < k; i++) {
    const f = r.chance(0.15) ? r.pick(["t", "id"]) : pickField(r, type);
    const how = r.int(0, 9);
    if (how === 0) delete m[f];
    else if (how === 1) m[f] = null;
    else if (how === 2 && typeof m[f] === "string") m[f] = { $bin: new Uint8Array(Buffer.from(m[f] as string)) };
    else m[f] = weirdValue(r);
  }
  if (r.chance(0.1)) m[`x${r.int(0, 9)}`] = weirdValue(r); // an unknown key
  return { cat: "wrong-types", body: enc(m) };
}

/** Every field of a request nil (or one of them). */
export function nils(r: Rng): Gen {
  const type = r.pick(REQUEST_TYPES);
  const m = validRequest(r, type, r.int(0, 1000));
  const all = r.chance(0.5);
  const keys = Object.keys(m);
  for (const k of keys) if (all ? k !== "t" || r.chance(0.2) : k === r.pick(keys)) m[k] = null;
  return { cat: "nil", body: enc(m) };
}

/** Str fields written as bin ("binary where text belongs"). */
export function binForText(r: Rng): Gen {
  const type = r.pick(REQUEST_TYPES);
  const m = validRequest(r, type, r.int(0, 1000));
  for (const k of Object.keys(m)) {
    const v = m[k];
    if (typeof v === "string" && (r.chance(0.5) || k === "t")) m[k] = { $bin: new Uint8Array(Buffer.from(v)) };
  }
  return { cat: "bin-for-text", body: enc(m) };
}

/** A map with keys that are not strings, around an otherwise valid request. */
export function oddKeys(r: Rng): Gen {
  const type = r.pick(REQUEST_TYPES);
  const m = validRequest(r, type, r.int(0, 1000));
  const entries: Array<[W, W]> = Object.entries(m).map(([k, v]) => [k, v]);
  const n = r.int(1, 3);
  for (let i = 0; i < n; i++) entries.splice(r.int(0, entries.length), 0, [weirdKey(r), weirdValue(r)]);
  return { cat: "odd-keys", body: enc({ $map: entries }) };
}

/** A random map of known and unknown keys. */
export function randomMap(r: Rng): Gen {
  const n = r.int(0, 8);
  const entries: Array<[W, W]> = [];
  for (let i = 0; i < n; i++) {
    const k = r.chance(0.8) ? r.pick(FIELD_NAMES) : weirdKey(r);
    const v = k === "t" && r.chance(0.7) ? r.pick([...REQUEST_TYPES, "pong", "ok", "msg", "PING"]) : weirdValue(r);
    entries.push([k, v]);
  }
  return { cat: "random-map", body: enc({ $map: entries }) };
}

export function randomBytes(r: Rng): Gen {
  const b = r.bytes(r.size(300));
  if (b.length > 0 && r.chance(0.5)) b[0] = 0x80 | r.int(0, 15); // start like a map
  return { cat: "random-bytes", body: b };
}

/** Containers, strings, binaries and exts announcing more than the frame holds, alone or inside a ping. */
export function claims(r: Rng, maxFrame: number): Gen {
  const e = new Enc();
  const wrapped = r.chance(0.5);
  if (wrapped) e.mapHeader(3).str("t").str("ping").str("id").int(r.int(0, 1000)).str("x");
  const size = r.pick([r.int(0, 300), 255, 256, 257, 65535, 65536, maxFrame, maxFrame + 1, 2 ** 31, 2 ** 32 - 1, r.u32()]);
  switch (r.int(0, 4)) {
    case 0:
      e.strHeader(size, size < 256 ? "8" : size < 65536 ? "16" : "32");
      break;
    case 1:
      e.binHeader(size, size < 256 ? "8" : size < 65536 ? "16" : "32");
      break;
    case 2:
      e.extHeader(r.int(-128, 127), size, size < 256 ? "8" : size < 65536 ? "16" : "32");
      break;
    case 3:
      e.arrHeader(size, size < 65536 ? "16" : "32");
      break;
    default:
      e.mapHeader(size, size < 65536 ? "16" : "32");
  }
  e.bytes(r.bytes(r.int(0, 16)));
  return { cat: "claims", body: e.done() };
}

/** Nesting past the limit, hand-built (encoders refuse it). */
export function deep(r: Rng): Gen {
  const depth = r.chance(0.3) ? r.int(6, 12) : Math.floor(Math.exp(r.float() * Math.log(20000)));
  const inner = nested(r, depth);
  if (r.chance(0.5)) return { cat: "deep", body: inner };
  // under an unknown key of a valid ping: still refused, the limit holds at any depth
  const e = new Enc().mapHeader(3).str("t").str("ping").str("id").int(r.int(0, 1000)).str("deep").bytes(inner);
  return { cat: "deep", body: e.done() };
}

/** A valid body with 1-6 random mutations. */
export function mutate(r: Rng, bodies: Uint8Array[]): Gen {
  let b = Array.from(r.pick(bodies));
  const k = r.int(1, 6);
  for (let i = 0; i < k; i++) {
    const at = r.int(0, Math.max(0, b.length - 1));
    switch (r.int(0, 8)) {
      case 0:
        if (b.length) b[at]! ^= 1 << r.int(0, 7);
        break;
      case 1:
        if (b.length) b[at] = r.int(0, 255);
        break;
      case 2:
        if (b.length) b[at] = r.pick(INTERESTING_BYTES);
        break;
      case 3:
        b.splice(at, 0, ...r.bytes(r.int(1, 8)));
        break;
      case 4:
        b.splice(at, r.int(1, 8));
        break;
      case 5:
        b = b.slice(0, r.int(0, b.length)); // truncated value, correct frame length
        break;
      case 6:
        b.splice(at, 0, ...b.slice(at, at + r.int(1, 16))); // duplicated run
        break;
      case 7: {
        const other = r.pick(bodies);
        const from = r.int(0, other.length);
        b.splice(at, r.int(0, 8), ...other.subarray(from, from + r.int(1, 12)));
        break;
      }
      default:
        b.push(...r.bytes(r.int(1, 4))); // trailing bytes after the value
    }
  }
  return { cat: "mutated", body: new Uint8Array(b) };
}

/** A well-formed request with invalid UTF-8 (overlong forms, encoded surrogates, stray bytes) in one of its strings. */
export function badUtf8(r: Rng): Gen {
  const type = r.chance(0.6) ? "send" : r.pick(REQUEST_TYPES);
  const m = validRequest(r, type, r.int(0, 1e6));
  const strs = Object.keys(m).filter((k) => typeof m[k] === "string" && k !== "t");
  if (type === "send" && r.chance(0.5)) strs.push("text", "text", "cid");
  const k = strs.length ? r.pick(strs) : "text";
  const bad = r.pick(BAD_UTF8);
  const at = r.int(0, 6);
  const s: W = { $str: new Uint8Array([...Buffer.from("hello!".slice(0, at)), ...bad, ...Buffer.from("hello!".slice(at))]) };
  const file = m.file as Record<string, W> | undefined;
  // in a file's name, type or upload id: a str one map down
  if (file && r.chance(0.5)) file[r.pick(Object.keys(file).filter((f) => f !== "data"))] = s;
  else m[k] = s;
  return { cat: "bad-utf8", body: enc(m) };
}

/** One random body from every generator, weighted. */
export function randomBody(r: Rng, corpus: Uint8Array[], maxFrame: number): Gen {
  const x = r.float();
  if (x < 0.4) return mutate(r, corpus);
  if (x < 0.58) return wrongTypes(r);
  if (x < 0.63) return nils(r);
  if (x < 0.68) return binForText(r);
  if (x < 0.74) return oddKeys(r);
  if (x < 0.82) return randomMap(r);
  if (x < 0.85) return randomBytes(r);
  if (x < 0.87) return badUtf8(r);
  if (x < 0.94) return claims(r, maxFrame);
  return deep(r);
}

/** Frame-level inputs: the stream itself is wrong. */
export interface StreamGen {
  cat: string;
  stream: Uint8Array;
}

export function oversizedHeader(r: Rng, maxFrame: number, before: Uint8Array = new Uint8Array(0)): StreamGen {
  const n = r.pick([maxFrame + 1, maxFrame + 2, 2 ** 31, 2 ** 32 - 1, r.int(maxFrame + 1, 2 ** 32 - 1)]);
  const e = new Enc().bytes(before).bytes(framed(new Uint8Array(0), n).subarray(0, 4));
  return { cat: "oversized-header", stream: e.bytes(r.bytes(r.int(0, 64))).done() };
}

export function truncatedFrame(r: Rng, corpus: Uint8Array[]): StreamGen {
  const body = r.pick(corpus);
  const f = framed(body);
  const cut = r.int(1, f.length - 1); // some header bytes, or the header and part of the body
  return { cat: "truncated-frame", stream: f.subarray(0, cut) };
}

/** Frames whose header claims more than the body has, with a valid frame after: the decoder reads into it. */
export function shortHeader(r: Rng, corpus: Uint8Array[]): StreamGen {
  const body = r.pick(corpus);
  return { cat: "length-mismatch", stream: concat([framed(body, body.length + r.int(1, 40)), framed(r.pick(corpus))]) };
}

export { concat, enc, framed };
