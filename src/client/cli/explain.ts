// Errors in plain language: every error code of docs/PROTOCOL.md §4 and of the
// client library (src/client/errors.ts) as a sentence for people, in one table,
// instead of the code and the server's technical message.
import type { ErrorCode } from "../../protocol/errors.ts";
import { AddressError } from "../address.ts";
import { ChatError, type ClientErrorCode, TcpchatError } from "../errors.ts";
import { sizeLabel } from "./format.ts";

/** What is known about the request that failed, to say it better. */
export interface Situation {
  /** The request: "send", "login", "register", "join"... */
  request?: string;
  /** The conversation, "#ops" or "@bob". */
  where?: string;
  /** The user a moderation request or a block is about. */
  user?: string;
  /** The server's limits from the login (PROTOCOL.md §3.2), to say how large is allowed. */
  limits?: { max_text?: number; max_frame?: number; max_file?: number; file_quota?: number };
  /** A file was being sent. */
  file?: boolean;
  /** The server's own words (only a wait time is taken from them). */
  serverMessage?: string;
}

/** The password rule of PROTOCOL.md §3.2 (register), in bytes of UTF-8. */
export const PASS_MIN_BYTES = 8;
export const PASS_MAX_BYTES = 1024;
export const PASSWORD_RULE = `${PASS_MIN_BYTES} to ${PASS_MAX_BYTES} bytes`;

/** The requests that change a group's members (PROTOCOL.md §3.3). */
const MODERATION = new Set(["invite", "kick", "ban", "unban", "mute", "unmute", "role", "transfer"]);
/** The requests that write in a conversation, refused to one muted there. */
const WRITING = new Set(["send", "reply", "edit", "delete", "react", "unreact", "send-file"]);

/** When a mute ends, from the server's words ("... until 2030-01-01T10:00:00.000Z"), as local time. */
function mutedUntil(msg: string): string {
  const iso = /until (\d{4}-\d\d-\d\dT[\d:.]+Z)/.exec(msg)?.[1];
  if (!iso) return " until a moderator unmutes you";
  const d = new Date(iso);
  const time = d.toTimeString().slice(0, 5);
  return d.toDateString() === new Date().toDateString() ? ` until ${time}` : ` until ${d.toISOString().slice(0, 10)} ${time}`;
}

function forbidden(s: Situation): string {
  const msg = s.serverMessage ?? "";
  const g = s.where?.startsWith("#") ? s.where : undefined;
  const who = s.user ?? "them";
  if (s.request === "join")
    return "you cannot join that group: you are banned from it, it is full, or you are in (or created) as many groups as the server allows";
  if (s.request === "create") return "you cannot create another group: you created, or are in, as many groups as the server allows";
  if (/muted/.test(msg)) return `you are muted in ${g ?? "that group"}${mutedUntil(msg)}: you cannot send, edit or react there`;
  if (s.where?.startsWith("@") && (s.request === undefined || WRITING.has(s.request)))
    return `${s.where.slice(1)} does not take direct messages from you`;
  if (s.request === "leave") return `you own ${g ?? "that group"} and others are still in it: hand it on first (/transfer @USER)`;
  const outsider = /you are not a member/.test(msg);
  if (outsider && (s.request === "configure" || s.request === "role" || s.request === "transfer" || MODERATION.has(s.request ?? "")))
    return `you are not a member of ${g ?? "that group"}`;
  if (s.request === "configure") return `only the owner and admins of ${g ?? "the group"} can change its settings`;
  if (s.request === "role" || s.request === "transfer") {
    if (/owner's role/.test(msg)) return "the owner stays the owner until they hand the group on (/transfer @USER)";
    return `only the owner of ${g ?? "the group"} can do that`;
  }
  if (s.request !== undefined && MODERATION.has(s.request)) {
    if (/yourself/.test(msg)) return "you cannot do that to yourself";
    if (/is banned/.test(msg)) return `${who} is banned from ${g ?? "the group"}: /unban @${who} first`;
    if (/only the owner and admins/.test(msg)) return `only the owner and admins of ${g ?? "the group"} can do that`;
    if (/you cannot/.test(msg)) return `${who} ranks as high as you in ${g ?? "the group"}: an admin acts only on members, the owner on everyone`;
    return `you are not allowed to do that in ${g ?? "that group"}`;
  }
  return g ? `you are not allowed to do that in ${g} (are you a member? /join ${g.slice(1)} first)` : "you are not allowed to do that";
}

function notFound(s: Situation): string {
  const msg = s.serverMessage ?? "";
  if (s.request === "edit" || s.request === "delete" || s.request === "react" || s.request === "unreact" || s.request === "reply") {
    return "that message does not exist here (or was deleted)";
  }
  if (s.request === "get" || s.request === "download") return "there is no such file: the message has none, was deleted, or is not in a conversation of yours";
  if (s.request === "leave") return "you are not in that group";
  if (s.request === "block" || s.request === "unblock") return `there is no user "${s.user ?? ""}"`;
  if (s.request !== undefined && MODERATION.has(s.request)) {
    if (/no user/.test(msg)) return `there is no user "${s.user ?? ""}"`;
    if (/is not a member/.test(msg)) return `${s.user ?? "they"} is not a member of ${s.where ?? "that group"}`;
  }
  if (s.where?.startsWith("@")) return `there is no user "${s.where.slice(1)}"`;
  if (s.where?.startsWith("#")) return `there is no group "${s.where.slice(1)}" (or it is private)`;
  return "no such user, group or message";
}

/** The sentence for each code; `s` says what was being done. */
const SENTENCES: Record<ErrorCode | ClientErrorCode, (s: Situation) => string> = {
  bad_frame: () => "the server could not read what this client sent (please report it: a client bug)",
  bad_request: (s) =>
    s.request === "register"
      ? `the server does not accept that name or password (names: a-z 0-9 _ - . up to 32; passwords: ${PASSWORD_RULE})`
      : "the server does not accept that request as it is written",
  unknown_type: () => "the server does not know that request (is it an older version?)",
  too_large: (s) => {
    if (s.file) {
      const n = s.limits?.max_file;
      return n ? `that file is too large: the server takes files up to ${sizeLabel(n)}` : "that file is too large for the server";
    }
    const n = s.limits?.max_text ?? s.limits?.max_frame;
    return `that message is too long${n ? ` (the server allows ${n} bytes)` : ""}`;
  },
  unauthorized: (s) => (s.request === "login" ? "wrong user name or password" : "you are not logged in"),
  forbidden: forbidden,
  not_found: notFound,
  conflict: (s) => {
    if (s.request === "register") return "that name is taken";
    if (s.request === "create") return `that name is taken${s.where?.startsWith("#") ? `: /join ${s.where.slice(1)} joins it, if it is public` : ""}`;
    if (s.request === "invite") return `${s.user ?? "they"} ${s.where ? `is a member of ${s.where}` : "is a member"} already`;
    return "already done (already logged in?)";
  },
  quota: (s) => {
    // PROTOCOL.md §3.9: the user's bytes (--file-quota), or their unsent uploads (--max-uploads); the server's words say which.
    if (/upload/i.test(s.serverMessage ?? "") && !/quota|bytes/i.test(s.serverMessage ?? ""))
      return "you have too many files being uploaded and not sent yet: let them finish, or wait a day for the unsent ones to be dropped";
    const q = s.limits?.file_quota;
    return `no room for that file: your files on the server would take more than your quota${q ? ` of ${sizeLabel(q)}` : ""}; delete some of your messages with files first`;
  },
  rate_limited: (s) => {
    const wait = /retry in ([\d.]+) ?s/.exec(s.serverMessage ?? "")?.[1];
    return `the server asks to slow down: too many requests or logins just now; try again in ${wait ? `${wait} s` : "a moment"}`;
  },
  unavailable: () => "the server cannot reach its database right now: nothing was stored; try again later",
  internal: () => "the server failed to do it; trying again is safe",
  timeout: () => "the server did not answer in time",
  disconnected: () => "not connected to the server",
  closed: () => "the client is closing",
  integrity: () => "the file that arrived is not the one that was sent (its SHA-256 differs): it was not kept",
};

/** The error `e` in plain language. */
export function explain(e: unknown, s: Situation = {}): string {
  if (e instanceof TcpchatError) {
    const request = s.request ?? (e instanceof ChatError ? e.request : undefined);
    return SENTENCES[e.code]({ ...s, request, serverMessage: e instanceof ChatError ? e.serverMessage : undefined });
  }
  if (e instanceof AddressError) return e.message;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "no such file or folder";
    if (code === "EACCES" || code === "EPERM") return "permission denied";
    if (code === "EISDIR") return "that is a folder, not a file";
    if (code === "ENOSPC") return "the disk is full";
    if (code === "EEXIST") return "a file of that name is there already (it is never overwritten)";
    return e.message;
  }
  return String(e);
}

/** Why a password cannot be used for an account, or undefined if it can. */
export function passwordProblem(pass: string): string | undefined {
  const n = Buffer.byteLength(pass);
  if (n < PASS_MIN_BYTES) return `that password is too short: it needs ${PASSWORD_RULE}, it has ${n}`;
  if (n > PASS_MAX_BYTES) return `that password is too long: it needs ${PASSWORD_RULE}, it has ${n}`;
  return undefined;
}
