// Error codes, PROTOCOL.md §4. Codes are the stable contract; messages are for humans.

export const ERROR_CODES = [
  "bad_frame", // the frame is not one valid MessagePack map
  "bad_request", // a field is missing, of the wrong type, or out of range
  "unknown_type", // `t` names no request
  "too_large", // a frame (fatal) or a field (text) exceeds its limit
  "unauthorized", // not logged in, or wrong credentials
  "forbidden", // logged in, but not allowed (not a member)
  "not_found", // no such user or group
  "conflict", // already exists / already logged in
  "quota", // an upload would pass the user's file quota or upload count (PROTOCOL.md §3.9)
  "rate_limited", // too many requests held while a login is in progress
  "unavailable", // the database could not be reached: nothing was stored; retry later (a send: with the same cid)
  "internal", // the server failed; the request may be retried
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A failure that becomes `{t:"error", id, code, msg}` on the wire. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly code: ErrorCode,
    msg: string,
  ) {
    super(msg);
  }
}

/** Why the server closes a connection, sent as `bye {reason}` where the stream allows it. PROTOCOL.md §6. */
export type DisconnectReason =
  | "shutdown" // server is stopping: reconnect later, then `sync`
  | "too_large" // a frame header exceeded the limit: the stream cannot continue
  | "slow_consumer" // unsent bytes exceeded the queue bound: reconnect, then `sync`
  | "idle" // no frame within the idle timeout: send `ping` to keep a connection open
  | "login_timeout" // not logged in within the login timeout
  | "too_many_connections" // the server, or the client's address, has too many open connections
  | "limits_exceeded" // the connection kept sending requests that were refused for a limit
  | "password_changed" // the user's password was changed on another connection: log in again
  | "kicked" // an operator closed the user's connections (tcpchat admin kick): may reconnect
  | "banned"; // an operator banned or deleted the account: its logins are refused
