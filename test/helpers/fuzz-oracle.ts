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
  "rate_limited",
  "internal",
] as const;

export const DOC_BYE_REASONS = ["shutdown", "too_large", "login_timeout", "idle", "too_many_connections", "password_changed", "kicked", "banned"];

/** §2: limits on a request's containers. */
export const MAX_ENTRIES = 256;
export const MAX_DEPTH = 8;

type FieldType = "name" | "pass" | "string" | "uint" | "file" | "cid" | "bool" | "emoji" | "query" | "topic" | "description" | "role" | "policy";
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
    case "file": {
      if (v.k !== "map" || v.v === null) return `${key}: not a map`;
      const f = fieldsOf(v.v);
      const name = f.get("name");
      const ftype = f.get("type");
      const data = f.get("data");
      if (!name || strBytes(name) < 1 || strBytes(name) > 255) return "file.name";
      if (!ftype || strBytes(ftype) < 0 || strBytes(ftype) > 127) return "file.type";
      if (!data || data.k !== "bin") return "file.data";
      return "";
    }
  }
}

export interface OracleContext {
  loggedIn: boolean;
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
  const outcomes: Outcome[] = [{ t: spec.success, id }];
  for (const code of spec.step8) outcomes.push({ t: "error", code, id });
  return res(outcomes, `a well-formed ${type}`, { type, valid: true });
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
