// Requests, PROTOCOL.md §3: their names, fields and field types. The validator
// turns a decoded map into a typed request or a `bad_request` ProtocolError.
import { ProtocolError } from "./errors.ts";

/** PROTOCOL.md §2.1: 1-32 characters, lowercase letters, digits, '_', '-', '.', not starting with '-' or '.'. */
export const NAME_RE = /^[a-z0-9_][a-z0-9_.-]{0,31}$/;
export const NAME_RULE = "1-32 characters: a-z 0-9 _ - . (not starting with - or .)";
export const PASS_MIN = 8;
export const PASS_MAX = 1024;
export const CID_MAX = 64;
export const FILE_NAME_MAX = 255;
export const FILE_TYPE_MAX = 127;
/** A reaction: a string of 1 to EMOJI_MAX UTF-8 bytes (an emoji, or any short string). */
export const EMOJI_MAX = 64;
/** A search: a string of 1 to QUERY_MAX UTF-8 bytes, without U+0000. */
export const QUERY_MAX = 256;
/** A group's topic and description: at most these many UTF-8 bytes, without U+0000. */
export const TOPIC_MAX = 256;
export const DESCRIPTION_MAX = 1024;
/** What `role` may set (the owner changes only by `transfer`). */
export const ROLES = ["admin", "member"] as const;
/** Who may send a user direct messages (PROTOCOL.md §3.8). */
export const DM_POLICIES = ["anyone", "groups", "nobody"] as const;

/** A file in a `send` (PROTOCOL.md §3.4): a finished upload of the sender's (§3.9), named and typed. */
export interface FileField {
  upload: string;
  name: string;
  type: string;
}

/** A file's SHA-256 in requests and messages: 64 hexadecimal digits (upper case is taken as lower). */
export const SHA256_RE = /^[0-9a-fA-F]{64}$/;
/** The largest chunk of a file in one `chunk` or `download` (PROTOCOL.md §3.9); less when --max-frame is small (maxChunk). */
export const CHUNK_MAX = 1024 * 1024;
/** The longest upload id a request may name (the server's are 22 characters). */
export const UPLOAD_ID_MAX = 64;

/** The largest chunk this server takes and gives: CHUNK_MAX, or less so that a chunk and its envelope fit a frame. */
export function maxChunk(maxFrame: number): number {
  return Math.max(1, Math.min(CHUNK_MAX, maxFrame - 1024));
}

export interface Target {
  group?: string;
  user?: string;
}

export type Request =
  | { t: "ping"; id?: number }
  | { t: "register"; id?: number; user: string; pass: string }
  | { t: "login"; id?: number; user: string; pass?: string; token?: string }
  | { t: "logout"; id?: number }
  | { t: "passwd"; id?: number; old: string; new: string }
  | { t: "create"; id?: number; group: string; public?: boolean; topic?: string; description?: string }
  | { t: "join"; id?: number; group: string }
  | { t: "leave"; id?: number; group: string }
  | { t: "groups"; id?: number }
  | { t: "members"; id?: number; group: string }
  | ({ t: "send"; id?: number; text?: string; file?: FileField; cid?: string; reply?: number } & Target)
  | ({ t: "history"; id?: number; before?: number; after?: number; limit?: number } & Target)
  | { t: "sync"; id?: number; after: number; limit?: number }
  | ({ t: "edit"; id?: number; mid: number; text: string } & Target)
  | ({ t: "delete"; id?: number; mid: number } & Target)
  | ({ t: "react"; id?: number; mid: number; emoji: string; remove?: boolean } & Target)
  | ({ t: "read"; id?: number; mid: number } & Target)
  | { t: "convs"; id?: number }
  | ({ t: "typing"; id?: number } & Target)
  | { t: "search"; id?: number; q: string; before?: number; limit?: number }
  | { t: "invite"; id?: number; group: string; user: string }
  | { t: "kick"; id?: number; group: string; user: string }
  | { t: "ban"; id?: number; group: string; user: string }
  | { t: "unban"; id?: number; group: string; user: string }
  | { t: "mute"; id?: number; group: string; user: string; secs?: number }
  | { t: "unmute"; id?: number; group: string; user: string }
  | { t: "role"; id?: number; group: string; user: string; role: (typeof ROLES)[number] }
  | { t: "transfer"; id?: number; group: string; user: string }
  | { t: "configure"; id?: number; group: string; public?: boolean; topic?: string; description?: string }
  | { t: "list"; id?: number; q?: string; after?: string; limit?: number }
  | { t: "block"; id?: number; user: string }
  | { t: "unblock"; id?: number; user: string }
  | { t: "blocked"; id?: number }
  | { t: "privacy"; id?: number; dms?: (typeof DM_POLICIES)[number] }
  | { t: "upload"; id?: number; size: number; sha256: string }
  | { t: "chunk"; id?: number; upload: string; offset: number; data: Uint8Array }
  | { t: "download"; id?: number; mid: number; offset?: number; len?: number };

export type RequestType = Request["t"];
export type RequestOf<T extends RequestType> = Extract<Request, { t: T }>;

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
interface FieldSpec {
  type: FieldType;
  required?: boolean;
}

/** A change one member makes to another's standing in a group (PROTOCOL.md §3.3). */
const MODERATION: Record<string, FieldSpec> = {
  group: { type: "name", required: true },
  user: { type: "name", required: true },
};

/** The field table: each request's fields, their types, and which are required. */
export const REQUEST_FIELDS: Record<RequestType, Record<string, FieldSpec>> = {
  ping: {},
  register: { user: { type: "name", required: true }, pass: { type: "pass", required: true } },
  login: { user: { type: "name", required: true }, pass: { type: "string" }, token: { type: "string" } },
  logout: {},
  passwd: { old: { type: "string", required: true }, new: { type: "pass", required: true } },
  create: {
    group: { type: "name", required: true },
    public: { type: "bool" },
    topic: { type: "topic" },
    description: { type: "description" },
  },
  join: { group: { type: "name", required: true } },
  leave: { group: { type: "name", required: true } },
  groups: {},
  members: { group: { type: "name", required: true } },
  send: {
    group: { type: "name" },
    user: { type: "name" },
    text: { type: "string" },
    file: { type: "file" },
    cid: { type: "cid" },
    reply: { type: "uint" },
  },
  history: {
    group: { type: "name" },
    user: { type: "name" },
    before: { type: "uint" },
    after: { type: "uint" },
    limit: { type: "uint" },
  },
  sync: { after: { type: "uint", required: true }, limit: { type: "uint" } },
  edit: {
    group: { type: "name" },
    user: { type: "name" },
    mid: { type: "uint", required: true },
    text: { type: "string", required: true },
  },
  delete: { group: { type: "name" }, user: { type: "name" }, mid: { type: "uint", required: true } },
  react: {
    group: { type: "name" },
    user: { type: "name" },
    mid: { type: "uint", required: true },
    emoji: { type: "emoji", required: true },
    remove: { type: "bool" },
  },
  read: { group: { type: "name" }, user: { type: "name" }, mid: { type: "uint", required: true } },
  convs: {},
  typing: { group: { type: "name" }, user: { type: "name" } },
  search: { q: { type: "query", required: true }, before: { type: "uint" }, limit: { type: "uint" } },
  invite: MODERATION,
  kick: MODERATION,
  ban: MODERATION,
  unban: MODERATION,
  mute: { ...MODERATION, secs: { type: "uint" } },
  unmute: MODERATION,
  role: { ...MODERATION, role: { type: "role", required: true } },
  transfer: MODERATION,
  configure: {
    group: { type: "name", required: true },
    public: { type: "bool" },
    topic: { type: "topic" },
    description: { type: "description" },
  },
  list: { q: { type: "query" }, after: { type: "string" }, limit: { type: "uint" } },
  block: { user: { type: "name", required: true } },
  unblock: { user: { type: "name", required: true } },
  blocked: {},
  privacy: { dms: { type: "policy" } },
  upload: { size: { type: "uint", required: true }, sha256: { type: "sha256", required: true } },
  chunk: {
    upload: { type: "uploadId", required: true },
    offset: { type: "uint", required: true },
    data: { type: "chunk", required: true },
  },
  download: { mid: { type: "uint", required: true }, offset: { type: "uint" }, len: { type: "uint" } },
};

/** Requests about one conversation: exactly one of `group` and `user`. */
const ONE_CONVERSATION: ReadonlySet<string> = new Set(["send", "history", "edit", "delete", "react", "read", "typing"]);

export function isRequestType(t: unknown): t is RequestType {
  return typeof t === "string" && Object.hasOwn(REQUEST_FIELDS, t);
}

export function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** UTF-8 length, the unit of every string limit in the protocol (PROTOCOL.md §2). */
function bytes(s: string): number {
  return Buffer.byteLength(s);
}

/**
 * A string the client may store and have relayed: well-formed UTF-16, so it
 * encodes back to valid UTF-8. The MessagePack decoder does not validate short
 * strings, so invalid UTF-8 (a lone surrogate's bytes) would otherwise reach
 * other clients as invalid strings (found by test/fuzz.test.ts).
 */
function isText(v: unknown): v is string {
  return typeof v === "string" && v.isWellFormed();
}

function bad(msg: string): never {
  throw new ProtocolError("bad_request", msg);
}

function checkField(key: string, type: FieldType, v: unknown): void {
  switch (type) {
    case "name":
      if (typeof v !== "string" || !NAME_RE.test(v)) bad(`'${key}' must be a name of ${NAME_RULE}`);
      return;
    case "pass":
      if (!isText(v) || bytes(v) < PASS_MIN || bytes(v) > PASS_MAX)
        bad(`'${key}' must be a string of ${PASS_MIN}-${PASS_MAX} UTF-8 bytes`);
      return;
    case "string":
      if (!isText(v)) bad(`'${key}' must be a valid UTF-8 string`);
      return;
    case "uint":
      if (!isUint(v)) bad(`'${key}' must be an unsigned integer`);
      return;
    case "cid":
      if (!isText(v) || v.length < 1 || bytes(v) > CID_MAX)
        bad(`'${key}' must be a string of 1-${CID_MAX} UTF-8 bytes`);
      return;
    case "emoji":
      if (!isText(v) || v.length < 1 || bytes(v) > EMOJI_MAX)
        bad(`'${key}' must be a string of 1-${EMOJI_MAX} UTF-8 bytes`);
      return;
    case "bool":
      if (typeof v !== "boolean") bad(`'${key}' must be true or false`);
      return;
    case "query":
      if (!isText(v) || v.length < 1 || bytes(v) > QUERY_MAX || v.includes("\0"))
        bad(`'${key}' must be a string of 1-${QUERY_MAX} UTF-8 bytes without U+0000`);
      return;
    case "topic":
    case "description": {
      const max = type === "topic" ? TOPIC_MAX : DESCRIPTION_MAX;
      if (!isText(v) || bytes(v) > max || v.includes("\0")) bad(`'${key}' must be a string of at most ${max} UTF-8 bytes without U+0000`);
      return;
    }
    case "role":
      if (!(ROLES as readonly unknown[]).includes(v)) bad(`'${key}' must be one of ${ROLES.join(", ")}`);
      return;
    case "policy":
      if (!(DM_POLICIES as readonly unknown[]).includes(v)) bad(`'${key}' must be one of ${DM_POLICIES.join(", ")}`);
      return;
    case "sha256":
      if (typeof v !== "string" || !SHA256_RE.test(v)) bad(`'${key}' must be a SHA-256: 64 hexadecimal digits`);
      return;
    case "uploadId":
      if (!isText(v) || v.length < 1 || bytes(v) > UPLOAD_ID_MAX) bad(`'${key}' must be an upload id, a string of 1-${UPLOAD_ID_MAX} bytes`);
      return;
    case "chunk":
      // Its upper bound depends on --max-frame (maxChunk): the handler checks it.
      if (!(v instanceof Uint8Array) || v.length === 0) bad(`'${key}' must be binary (MessagePack bin) of at least 1 byte`);
      return;
    case "file": {
      if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array)
        bad(`'${key}' must be a map {upload, name, type}`);
      const f = v as Record<string, unknown>;
      if (f.data != null)
        bad(`'${key}' must be {upload, name, type}, without data: the bytes are uploaded first, with upload and chunk (PROTOCOL.md §3.9)`);
      if (!isText(f.upload) || f.upload.length < 1 || bytes(f.upload) > UPLOAD_ID_MAX)
        bad(`'${key}.upload' must be an upload id, a string of 1-${UPLOAD_ID_MAX} bytes`);
      if (!isText(f.name) || f.name.length < 1 || bytes(f.name) > FILE_NAME_MAX)
        bad(`'${key}.name' must be a string of 1-${FILE_NAME_MAX} UTF-8 bytes`);
      if (!isText(f.type) || bytes(f.type) > FILE_TYPE_MAX)
        bad(`'${key}.type' must be a string of at most ${FILE_TYPE_MAX} UTF-8 bytes`);
      return;
    }
  }
}

/**
 * Checks a decoded map against the field table of its `t`. Unknown extra
 * fields are ignored (PROTOCOL.md §2: forward compatibility). Cross-field rules
 * (exactly one of group/user, pass or token) are checked here too, so handlers
 * only see well-formed requests.
 */
export function validateRequest(t: RequestType, m: Record<string, unknown>, id?: number): Request {
  const fields = REQUEST_FIELDS[t];
  // A fresh object holding only known, non-nil fields: handlers never see extras or nils.
  const out: Record<string, unknown> = { t };
  if (id !== undefined) out.id = id;
  for (const key in fields) {
    const spec = fields[key]!;
    const v = m[key];
    if (v === undefined || v === null) {
      if (spec.required) bad(`'${key}' is required`);
      continue;
    }
    checkField(key, spec.type, v);
    out[key] = v;
  }
  if (ONE_CONVERSATION.has(t)) {
    if ((m.group == null) === (m.user == null)) bad("exactly one of 'group' or 'user' is required");
  }
  if (t === "send" && !m.text && m.file == null) bad("a message needs a non-empty 'text', a 'file', or both");
  if (t === "edit" && !m.text) bad("an edit needs a non-empty 'text'");
  if (t === "login" && (m.pass == null) === (m.token == null)) bad("exactly one of 'pass' or 'token' is required");
  return out as unknown as Request;
}
