// The fuzz oracle: what docs/PROTOCOL.md says the reply to one frame must be,
// computed from the bytes with the independent decoder of fuzz-msgpack.ts.
// Steps 1-7 of §2.2 are decided exactly; step 8 (the request itself) depends on
// server state, so there the oracle lists the codes §3 allows for that request.
import { type D, type DecodeInfo, decodeStrict } from "./fuzz-msgpack.ts";

/** §4: every code a reply may carry. */
export const DOC_CODES = [
  "bad_frame",
  "bad_request",
  "unknown_type",
  "too_large",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "quota",
  "rate_limited",
  "unavailable",
  "internal",
] as const;

export const DOC_BYE_REASONS = ["shutdown", "too_large", "login_timeout", "idle", "too_many_connections", "password_changed", "kicked", "banned"];

/** §2: limits on a request's containers. */
export const MAX_ENTRIES = 256;
export const MAX_DEPTH = 8;

type FieldType =
  | "name"
  | "pass"
  | "string"
  | "uint"
  | "file"
  | "cid"
  | "bool"
  | "emoji"
  | "query"
  | "topic"
  | "description"
  | "role"
  | "policy"
  | "sha256"
  | "uploadId"
  | "chunk";
interface Field {
  type: FieldType;
  required?: boolean;
}

/** §3, field by field (test/fuzz.test.ts checks that this lists the requests of src/protocol/requests.ts). */
export const DOC_REQUESTS: Record<string, { auth: boolean; fields: Record<string, Field>; step8: string[]; success: "ok" | "pong" }> = {
  ping: { auth: false, fields: {}, step8: [], success: "pong" },
  register: {
    auth: false,
    fields: { user: { type: "name", required: true }, pass: { type: "pass", required: true } },
    step8: ["conflict", "rate_limited"],
    success: "ok",
  },
  login: {
    auth: false,
    fields: { user: { type: "name", required: true }, pass: { type: "string" }, token: { type: "string" } },
    step8: ["unauthorized", "conflict", "rate_limited"],
    success: "ok",
  },
  logout: { auth: true, fields: {}, step8: [], success: "ok" },
  passwd: {
    auth: true,
    fields: { old: { type: "string", required: true }, new: { type: "pass", required: true } },
    step8: ["unauthorized", "rate_limited"],
    success: "ok",
  },
  // §3.3
  create: {
    auth: true,
    fields: { group: { type: "name", required: true }, public: { type: "bool" }, topic: { type: "topic" }, description: { type: "description" } },
    step8: ["conflict", "forbidden"],
    success: "ok",
  },
  join: { auth: true, fields: { group: { type: "name", required: true } }, step8: ["not_found", "forbidden"], success: "ok" },
  leave: { auth: true, fields: { group: { type: "name", required: true } }, step8: ["not_found", "forbidden"], success: "ok" },
  groups: { auth: true, fields: {}, step8: [], success: "ok" },
  members: { auth: true, fields: { group: { type: "name", required: true } }, step8: ["not_found", "forbidden"], success: "ok" },
  send: {
    auth: true,
    fields: {
      group: { type: "name" },
      user: { type: "name" },
      text: { type: "string" },
      file: { type: "file" },
      cid: { type: "cid" },
      reply: { type: "uint" },
    },
    step8: ["forbidden", "not_found", "too_large"],
    success: "ok",
  },
  history: {
    auth: true,
    fields: {
      group: { type: "name" },
      user: { type: "name" },
      before: { type: "uint" },
      after: { type: "uint" },
      limit: { type: "uint" },
    },
    step8: ["forbidden", "not_found"],
    success: "ok",
  },
  sync: { auth: true, fields: { after: { type: "uint", required: true }, limit: { type: "uint" } }, step8: [], success: "ok" },
  // §3.6
  edit: {
    auth: true,
    fields: { group: { type: "name" }, user: { type: "name" }, mid: { type: "uint", required: true }, text: { type: "string", required: true } },
    step8: ["forbidden", "not_found", "too_large"],
    success: "ok",
  },
  delete: {
    auth: true,
    fields: { group: { type: "name" }, user: { type: "name" }, mid: { type: "uint", required: true } },
    step8: ["forbidden", "not_found"],
    success: "ok",
  },
  react: {
    auth: true,
    fields: {
      group: { type: "name" },
      user: { type: "name" },
      mid: { type: "uint", required: true },
      emoji: { type: "emoji", required: true },
      remove: { type: "bool" },
    },
    step8: ["forbidden", "not_found"],
    success: "ok",
  },
  read: {
    auth: true,
    fields: { group: { type: "name" }, user: { type: "name" }, mid: { type: "uint", required: true } },
    step8: ["forbidden", "not_found"],
    success: "ok",
  },
  convs: { auth: true, fields: {}, step8: [], success: "ok" },
  typing: { auth: true, fields: { group: { type: "name" }, user: { type: "name" } }, step8: ["forbidden", "not_found"], success: "ok" },
  // §3.7
  search: {
    auth: true,
    fields: { q: { type: "query", required: true }, before: { type: "uint" }, limit: { type: "uint" } },
    step8: [],
    success: "ok",
  },
  // §3.3: moderation
  invite: moderation(["not_found", "forbidden", "conflict"]),
  kick: moderation(["not_found", "forbidden"]),
  ban: moderation(["not_found", "forbidden"]),
  unban: moderation(["not_found", "forbidden"]),
  mute: moderation(["not_found", "forbidden"], { secs: { type: "uint" } }),
  unmute: moderation(["not_found", "forbidden"]),
  role: moderation(["not_found", "forbidden"], { role: { type: "role", required: true } }),
  transfer: moderation(["not_found", "forbidden"]),
  configure: {
    auth: true,
    fields: { group: { type: "name", required: true }, public: { type: "bool" }, topic: { type: "topic" }, description: { type: "description" } },
    // "at least one" of the settings is checked by the request itself (§3.3): bad_request
    step8: ["not_found", "forbidden", "bad_request"],
    success: "ok",
  },
  list: { auth: true, fields: { q: { type: "query" }, after: { type: "string" }, limit: { type: "uint" } }, step8: [], success: "ok" },
  // §3.8
  block: { auth: true, fields: { user: { type: "name", required: true } }, step8: ["not_found"], success: "ok" },
  unblock: { auth: true, fields: { user: { type: "name", required: true } }, step8: [], success: "ok" },
  blocked: { auth: true, fields: {}, step8: [], success: "ok" },
  privacy: { auth: true, fields: { dms: { type: "policy" } }, step8: [], success: "ok" },
  // §3.9. What step 8 can answer is narrowed in expectFor (fileOutcomes) where the bytes or the
  // OracleContext decide it.
  upload: {
    auth: true,
    fields: { size: { type: "uint", required: true }, sha256: { type: "sha256", required: true } },
    // too_large: over --max-file; quota; bad_request: a size of 0 whose SHA-256 is not that of no bytes
    step8: ["too_large", "quota", "bad_request"],
    success: "ok",
  },
  chunk: {
    auth: true,
    fields: { upload: { type: "uploadId", required: true }, offset: { type: "uint", required: true }, data: { type: "chunk", required: true } },
    // bad_request: data over max_chunk, past the size, or the bytes' SHA-256 is not the upload's
    step8: ["not_found", "conflict", "bad_request"],
    success: "ok",
  },
  download: {
    auth: true,
    fields: { mid: { type: "uint", required: true }, offset: { type: "uint" }, len: { type: "uint" } },
    // bad_request: an offset past the file's size
    step8: ["not_found", "bad_request"],
    success: "ok",
  },
};

/** §3.3: a moderation request names a group and a user. */
function moderation(step8: string[], extra: Record<string, Field> = {}) {
  return {
    auth: true,
    fields: { group: { type: "name", required: true }, user: { type: "name", required: true }, ...extra } as Record<string, Field>,
    step8,
    success: "ok" as const,
  };
}

/** §3.4, §3.6: the requests about one conversation name exactly one of group and user. */
const ONE_CONVERSATION = ["send", "history", "edit", "delete", "react", "read", "typing"];

export const REQUEST_TYPES = Object.keys(DOC_REQUESTS);

const NAME_RE = /^[a-z0-9_][a-z0-9_.-]{0,31}$/;
const MAX_UINT = 2n ** 53n - 1n;
/** §3.9: a SHA-256 is 64 hexadecimal digits, upper case taken as lower. */
const SHA256_RE = /^[0-9a-fA-F]{64}$/;
/** The SHA-256 of no bytes: the only one a `upload {size: 0}` can be finished with (§3.9). */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** §3.9 as shipped: --max-file (100 MiB), and max_chunk (1 MiB at the default --max-frame). */
export const MAX_FILE = 100 * 1024 * 1024;
export const MAX_CHUNK = 1024 * 1024;
/** §3.9: an upload id a request names is a string of at most 64 bytes. */
const UPLOAD_ID_MAX = 64;

/** One acceptable reply: `id: undefined` means the reply must have no id. */
export interface Outcome {
  t: "ok" | "pong" | "error";
  code?: string;
  id: number | undefined;
}

export interface Expectation {
  outcomes: Outcome[];
  /**
   * Only the generic checks apply (one reply, a documented code). No input needs this since
   * the server refuses every invalid UTF-8 str (§2); kept for inputs the oracle cannot decide.
   */
  lenient: boolean;
  /** What the oracle decided, for failure messages. */
  why: string;
  /** The request type, when the frame got that far. */
  type?: string;
  /** Steps 1-7 passed: the frame is a well-formed request. */
  valid: boolean;
}

export function isUintD(d: D): boolean {
  if (d.k === "int") return d.v >= 0n && d.v <= MAX_UINT;
  if (d.k === "float") return Number.isInteger(d.v) && d.v >= 0 && d.v <= Number(MAX_UINT);
  return false;
}

function uintValue(d: D): number {
  return d.k === "int" ? Number(d.v) : (d as { v: number }).v;
}

function strBytes(d: D): number {
  return d.k === "str" ? d.bytes : -1;
}

/** The map as the server sees it: str keys (and number keys, as strings), the last of equal keys wins. */
function fieldsOf(entries: Array<[D, D]>): Map<string, D> {
  const m = new Map<string, D>();
  for (const [k, v] of entries) {
    if (k.k === "str") m.set(k.v, v);
    else if (k.k === "int") m.set(String(Number(k.v)), v);
    else if (k.k === "float") m.set(String(k.v), v);
  }
  return m;
}

function present(m: Map<string, D>, key: string): D | undefined {
  const v = m.get(key);
  return v === undefined || v.k === "nil" ? undefined : v;
}

/** Why field `key` of type `type` is not well typed, or "" if it is. */
function checkField(key: string, type: FieldType, v: D): string {
  switch (type) {
    case "name":
      return v.k === "str" && NAME_RE.test(v.v) ? "" : `${key}: not a name`;
    case "pass":
      return v.k === "str" && v.bytes >= 8 && v.bytes <= 1024 ? "" : `${key}: not a password of 8-1024 bytes`;
    case "string":
      return v.k === "str" ? "" : `${key}: not a string`;
    case "uint":
      return isUintD(v) ? "" : `${key}: not a uint`;
    case "cid":
      return v.k === "str" && v.bytes >= 1 && v.bytes <= 64 ? "" : `${key}: not a cid of 1-64 bytes`;
    case "emoji":
      return v.k === "str" && v.bytes >= 1 && v.bytes <= 64 ? "" : `${key}: not an emoji of 1-64 bytes`;
    case "bool":
      return v.k === "bool" ? "" : `${key}: not a bool`;
    case "query":
      return v.k === "str" && v.bytes >= 1 && v.bytes <= 256 && !v.v.includes("\0") ? "" : `${key}: not a query of 1-256 bytes without U+0000`;
    case "topic":
    case "description": {
      const max = type === "topic" ? 256 : 1024;
      return v.k === "str" && v.bytes <= max && !v.v.includes("\0") ? "" : `${key}: not a string of at most ${max} bytes without U+0000`;
    }
    case "role":
      return v.k === "str" && (v.v === "admin" || v.v === "member") ? "" : `${key}: not admin or member`;
    case "policy":
      return v.k === "str" && ["anyone", "groups", "nobody"].includes(v.v) ? "" : `${key}: not anyone, groups or nobody`;
    case "sha256":
      return v.k === "str" && SHA256_RE.test(v.v) ? "" : `${key}: not a SHA-256 of 64 hex digits`;
    case "uploadId":
      return v.k === "str" && v.bytes >= 1 && v.bytes <= UPLOAD_ID_MAX ? "" : `${key}: not an upload id of 1-${UPLOAD_ID_MAX} bytes`;
    case "chunk":
      // its upper bound, max_chunk, is the request's own check (expectFor)
      return v.k === "bin" && v.v.length >= 1 ? "" : `${key}: not a bin of at least 1 byte`;
    case "file": {
      // §3.4: {upload, name, type}; a file map with `data` (the bytes inline, before §3.9) is refused
      if (v.k !== "map" || v.v === null) return `${key}: not a map`;
      const f = fieldsOf(v.v);
      const upload = present(f, "upload");
      if (present(f, "data") !== undefined && upload === undefined) return "file.data: the bytes inline, without an upload";
      if (!upload || strBytes(upload) < 1 || strBytes(upload) > UPLOAD_ID_MAX) return "file.upload";
      const name = f.get("name");
      const ftype = f.get("type");
      if (!name || strBytes(name) < 1 || strBytes(name) > 255) return "file.name";
      if (!ftype || strBytes(ftype) < 0 || strBytes(ftype) > 127) return "file.type";
      return "";
    }
  }
}

/** A message holding a file (§3.5), as the oracle knows it: its size, and whether the caller can see it. */
export interface KnownFile {
  size: number;
  /** true: the caller can always see it; false: never; undefined: it depends on the state (a group the caller may have left). */
  visible: boolean | undefined;
}

export interface OracleContext {
  loggedIn: boolean;
  /**
   * The caller's uploads, when the test knows them (§3.9): a `chunk` naming another id gets
   * `not_found`, a `send` of a file naming one can only succeed as the repeat of a cid (§3.4).
   * Upload ids are random (the server's are 22 characters of base64url), so a fuzzer that
   * never reads an `upload` reply can pass an empty set.
   */
  uploads?: ReadonlySet<string>;
  /** Every message holding a file, by mid, when the test knows them: a `download` of another mid gets `not_found`. */
  files?: ReadonlyMap<number, KnownFile>;
}

/** The replies §2.2 and §3 allow for one frame body. */
export function expectFor(body: Uint8Array, ctx: OracleContext): Expectation {
  const dec = decodeStrict(body, 3);
  const info: DecodeInfo = dec.info;
  const badFrame: Outcome = { t: "error", code: "bad_frame", id: undefined };
  const only = (o: Outcome[], why: string, extra: Partial<Expectation> = {}): Expectation => ({
    outcomes: o,
    lenient: false,
    why,
    valid: false,
    ...extra,
  });
  // §2: containers over the limits are refused as bad_frame, whatever else the frame is.
  if (info.maxEntries > MAX_ENTRIES) return only([badFrame], `a container of ${info.maxEntries} entries`);
  if (info.depthNonEmpty > MAX_DEPTH) return only([badFrame], `nested ${info.depthNonEmpty} deep`);
  if (!dec.ok) {
    return only([badFrame], `not one MessagePack value: ${dec.error}`);
  }
  const v = dec.value;
  if (v.k !== "map") return only([badFrame], `a ${v.k}, not a map`);
  // Spec-valid MessagePack that the server's decoder refuses: bad_frame is accepted as well as the documented answer.
  const alsoBadFrame = info.oddKey || info.protoKey || info.badTimestamp || info.depth > MAX_DEPTH;
  const lenient = false;
  const m = fieldsOf(v.v!);
  const res = (o: Outcome[], why: string, extra: Partial<Expectation> = {}): Expectation => ({
    outcomes: alsoBadFrame ? [...o, badFrame] : o,
    lenient,
    why: alsoBadFrame ? `${why} (or bad_frame: odd key/ext/empty container past depth ${MAX_DEPTH})` : why,
    valid: false,
    ...extra,
  });
  // §2: a str that is not valid UTF-8, a key or a value at any depth: bad_request, before anything
  // is decoded, so without the id.
  if (info.badUtf8) return res([{ t: "error", code: "bad_request", id: undefined }], "a str is not valid UTF-8");
  let id: number | undefined;
  const idv = present(m, "id");
  if (idv !== undefined) {
    if (!isUintD(idv)) return res([{ t: "error", code: "bad_request", id: undefined }], "id is not a uint");
    id = uintValue(idv);
  }
  const t = m.get("t");
  if (t === undefined || t.k !== "str") return res([{ t: "error", code: "bad_request", id }], "t is not a string");
  const type = t.v;
  const spec = Object.hasOwn(DOC_REQUESTS, type) ? DOC_REQUESTS[type] : undefined;
  if (!spec) return res([{ t: "error", code: "unknown_type", id }], `unknown type ${JSON.stringify(type.slice(0, 20))}`);
  if (spec.auth && !ctx.loggedIn) return res([{ t: "error", code: "unauthorized", id }], `${type} before login`, { type });
  const badReq = (why: string) => res([{ t: "error", code: "bad_request", id }], `${type}: ${why}`, { type });
  for (const [key, f] of Object.entries(spec.fields)) {
    const fv = present(m, key);
    if (fv === undefined) {
      if (f.required) return badReq(`${key} missing`);
      continue;
    }
    const why = checkField(key, f.type, fv);
    if (why) return badReq(why);
  }
  if (ONE_CONVERSATION.includes(type) && (present(m, "group") === undefined) === (present(m, "user") === undefined))
    return badReq("not exactly one of group and user");
  if (type === "send") {
    const text = present(m, "text");
    if (present(m, "file") === undefined && (text === undefined || strBytes(text) === 0)) return badReq("no text and no file");
  }
  if (type === "edit" && strBytes(present(m, "text")!) === 0) return badReq("an empty text");
  if (type === "login" && (present(m, "pass") === undefined) === (present(m, "token") === undefined))
    return badReq("not exactly one of pass and token");
  const why = `a well-formed ${type}`;
  const step8 = (codes: readonly string[], success = true): Outcome[] => [
    ...(success ? [{ t: spec.success, id }] : []),
    ...codes.map((code) => ({ t: "error" as const, code, id })),
  ];
  const files = fileOutcomes(type, m, ctx, step8);
  if (files) return res(files.outcomes, `${why}: ${files.why}`, { type, valid: true });
  return res(step8(spec.step8), why, { type, valid: true });
}

/**
 * §3.9 (and §3.4's file), where the request's own bytes or the OracleContext decide more than
 * DOC_REQUESTS' step8 lists: undefined where they do not.
 */
function fileOutcomes(
  type: string,
  m: Map<string, D>,
  ctx: OracleContext,
  step8: (codes: readonly string[], success?: boolean) => Outcome[],
): { outcomes: Outcome[]; why: string } | undefined {
  switch (type) {
    case "upload": {
      const size = uintValue(present(m, "size")!);
      if (size > MAX_FILE) return { outcomes: step8(["too_large"], false), why: `size ${size} over --max-file` };
      // A size of 0 has no chunk to come: the hash is checked at once. A wrong one is a bad_request,
      // and its upload (reset to offset 0, which it is at) may then be resumed by the same request: ok.
      const sha = (present(m, "sha256") as { v: string }).v.toLowerCase();
      if (size === 0 && sha !== EMPTY_SHA256) return { outcomes: step8(["bad_request", "quota"]), why: "size 0, not the SHA-256 of no bytes" };
      return { outcomes: step8(["quota"]), why: "within --max-file" };
    }
    case "chunk": {
      const data = present(m, "data") as { v: Uint8Array };
      if (data.v.length > MAX_CHUNK) return { outcomes: step8(["bad_request"], false), why: `data of ${data.v.length} bytes, over max_chunk` };
      const upload = (present(m, "upload") as { v: string }).v;
      if (ctx.uploads && !ctx.uploads.has(upload)) return { outcomes: step8(["not_found"], false), why: "not an upload of the caller's" };
      return undefined;
    }
    case "download": {
      if (!ctx.files) return undefined;
      const mid = uintValue(present(m, "mid")!);
      const f = ctx.files.get(mid);
      if (!f || f.visible === false) return { outcomes: step8(["not_found"], false), why: f ? "a file the caller cannot see" : "no file at that mid" };
      const off = present(m, "offset");
      const past = off !== undefined && uintValue(off) > f.size;
      const codes = [...(past ? ["bad_request"] : []), ...(f.visible === undefined ? ["not_found"] : [])];
      return { outcomes: step8(codes, !past), why: `a file of ${f.size} bytes${past ? ", from past its end" : ""}${f.visible ? "" : " the caller may see"}` };
    }
    case "send": {
      const file = present(m, "file");
      if (file === undefined || file.k !== "map" || !file.v) return undefined;
      const f = fieldsOf(file.v);
      const upload = (present(f, "upload") as { v: string }).v;
      // §2 ignores keys a request does not define, §3.4 refuses a file map with `data`: with an
      // upload beside it, the server takes the first (data is ignored); either is accepted here.
      const inline = present(f, "data") !== undefined;
      if (ctx.uploads && !ctx.uploads.has(upload)) {
        // not_found, unless the cid repeats an earlier send (§3.4: answered as that one)
        const codes = ["forbidden", "not_found", ...(inline ? ["bad_request"] : [])];
        if (present(m, "cid") === undefined) return { outcomes: step8(codes, false), why: "a file of no upload of the caller's, no cid" };
        return { outcomes: step8([...codes, "too_large"]), why: "a file of no upload of the caller's (ok only as a cid's repeat)" };
      }
      if (inline) return { outcomes: step8(["forbidden", "not_found", "too_large", "bad_request"]), why: "a file with an upload and data" };
      return undefined;
    }
  }
  return undefined;
}

/** Whether `reply` (a decoded server frame) is one of the outcomes. */
export function matches(exp: Expectation, reply: Record<string, unknown>): boolean {
  const t = reply.t;
  if (t !== "ok" && t !== "pong" && t !== "error") return false;
  if (t === "error" && !(DOC_CODES as readonly string[]).includes(reply.code as string)) return false;
  if (exp.lenient) return t !== "error" || reply.code !== "internal";
  return exp.outcomes.some(
    (o) => o.t === t && (t !== "error" || o.code === reply.code) && (o.id === undefined ? !("id" in reply) : reply.id === o.id),
  );
}

export function describeOutcomes(exp: Expectation): string {
  return exp.outcomes.map((o) => `${o.t}${o.code ? `:${o.code}` : ""}${o.id === undefined ? "" : `#${o.id}`}`).join(" | ");
}
