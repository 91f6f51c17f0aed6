// Client errors, one class per failure. A server `error` reply
// becomes a ChatError carrying the server's stable `code` (PROTOCOL.md §4);
// the client's own failures (no reply in time, connection gone, client closed)
// have classes of their own with codes that cannot clash with the server's.
import { ERROR_CODES, type ErrorCode } from "../protocol/errors.ts";

/** Codes of failures the client detects itself, never sent by a server. */
export type ClientErrorCode = "timeout" | "disconnected" | "closed" | "integrity";

/** Base of every error this library throws or rejects with. */
export abstract class TcpchatError extends Error {
  abstract readonly code: ErrorCode | ClientErrorCode;
}

/**
 * The server refused a request: `{t:"error", code, msg}`. `code` is one of
 * PROTOCOL.md §4; an unknown code is reported as "internal" (as §4 advises)
 * with the server's word kept in `serverCode`.
 */
export class ChatError extends TcpchatError {
  override name = "ChatError";
  readonly code: ErrorCode;
  /** The code exactly as the server sent it. */
  readonly serverCode: string;
  constructor(
    serverCode: string,
    /** The server's human-readable message (wording may change: do not parse it). */
    readonly serverMessage: string,
    /** The request type that failed. */
    readonly request?: string,
  ) {
    super(`${request ? `${request}: ` : ""}${serverCode}: ${serverMessage}`);
    this.serverCode = serverCode;
    this.code = (ERROR_CODES as readonly string[]).includes(serverCode) ? (serverCode as ErrorCode) : "internal";
  }
  /** Whether the same request may succeed if simply sent again (`internal`, `unavailable`, `rate_limited`). */
  get retryable(): boolean {
    return this.code === "internal" || this.code === "unavailable" || this.code === "rate_limited";
  }
}

export class BadFrameError extends ChatError {
  override name = "BadFrameError";
}
export class BadRequestError extends ChatError {
  override name = "BadRequestError";
}
export class UnknownTypeError extends ChatError {
  override name = "UnknownTypeError";
}
export class TooLargeError extends ChatError {
  override name = "TooLargeError";
}
export class UnauthorizedError extends ChatError {
  override name = "UnauthorizedError";
}
export class ForbiddenError extends ChatError {
  override name = "ForbiddenError";
}
export class NotFoundError extends ChatError {
  override name = "NotFoundError";
}
export class ConflictError extends ChatError {
  override name = "ConflictError";
}
/** An upload would pass the caller's file quota or upload count (PROTOCOL.md §3.9, §4); `serverMessage` says which. */
export class QuotaError extends ChatError {
  override name = "QuotaError";
}
export class RateLimitedError extends ChatError {
  override name = "RateLimitedError";
}
export class UnavailableError extends ChatError {
  override name = "UnavailableError";
}
export class InternalError extends ChatError {
  override name = "InternalError";
}

const BY_CODE: Record<ErrorCode, typeof ChatError> = {
  bad_frame: BadFrameError,
  bad_request: BadRequestError,
  unknown_type: UnknownTypeError,
  too_large: TooLargeError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  conflict: ConflictError,
  quota: QuotaError,
  rate_limited: RateLimitedError,
  unavailable: UnavailableError,
  internal: InternalError,
};

/** The typed error for an `error` reply. */
export function chatErrorFrom(code: unknown, msg: unknown, request?: string): ChatError {
  const c = typeof code === "string" ? code : "internal";
  const Cls = (Object.hasOwn(BY_CODE, c) ? BY_CODE[c as ErrorCode] : InternalError) as new (
    code: string,
    msg: string,
    request?: string,
  ) => ChatError;
  return new Cls(c, typeof msg === "string" ? msg : "", request);
}

/** No reply within the request's timeout. The request may still have been carried out. */
export class TimeoutError extends TcpchatError {
  override name = "TimeoutError";
  readonly code = "timeout";
  constructor(
    readonly request: string,
    readonly timeoutMs: number,
  ) {
    super(`${request}: no reply within ${timeoutMs} ms`);
  }
}

/** The connection was lost (or there was none) before the reply came. */
export class DisconnectedError extends TcpchatError {
  override name = "DisconnectedError";
  readonly code = "disconnected";
  constructor(
    readonly request: string,
    options?: { cause?: unknown },
  ) {
    super(`${request}: not connected to the server`, options);
  }
}

/** The client was closed (by `close()`, or because it could not log back in). */
export class ClosedError extends TcpchatError {
  override name = "ClosedError";
  readonly code = "closed";
  constructor(
    readonly request: string,
    options?: { cause?: unknown },
  ) {
    super(`${request}: the client is closed`, options);
  }
}

/**
 * A downloaded file's bytes do not have the SHA-256 its message gives (PROTOCOL.md §3.5, §3.9):
 * they were damaged on the way, or the server gave other bytes. Do not use them.
 */
export class IntegrityError extends TcpchatError {
  override name = "IntegrityError";
  readonly code = "integrity";
  constructor(
    readonly mid: number,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`download of ${mid}: the bytes' SHA-256 is ${actual}, the message says ${expected}`);
  }
}

/** A server address, URL or address list that cannot be used; the message says which and why. */
export class AddressError extends TypeError {
  override name = "AddressError";
}
