/**
 * tcpchat client library for web pages: the ChatClient of index.ts (the same
 * reconnect, token login, `sync` catch-up, exactly-once delivery and queued
 * sends by `cid`; documented there) over WebSocket only. Nothing here needs Bun
 * or Node, so a browser bundle can take it (src/web/app.ts does).
 *
 * ```ts
 * import { ChatClient } from "../client/browser.ts";
 * const scheme = location.protocol === "https:" ? "wss" : "ws";
 * const chat = await ChatClient.connect({ url: `${scheme}://${location.host}/ws` });
 * await chat.login("alice", { pass: "correct horse" });
 * ```
 */
export { ChatClient } from "./core.ts";
export {
  AddressError,
  BadFrameError,
  BadRequestError,
  ChatError,
  chatErrorFrom,
  type ClientErrorCode,
  ClosedError,
  ConflictError,
  DisconnectedError,
  ForbiddenError,
  IntegrityError,
  InternalError,
  QuotaError,
  UnavailableError,
  NotFoundError,
  RateLimitedError,
  TcpchatError,
  TimeoutError,
  TooLargeError,
  UnauthorizedError,
  UnknownTypeError,
} from "./errors.ts";
export type { Server, ServerAddress, ServerInfo, WebSocketAddress } from "./link.ts";
export type {
  Bye,
  ChatFile,
  ChatMessage,
  ClientEvents,
  ClientOptions,
  ConnectionState,
  Conversation,
  DeleteEvent,
  DirectoryEntry,
  DmPolicy,
  EditEvent,
  GroupChangeKind,
  GroupEvent,
  GroupInfo,
  GroupSettings,
  Invitation,
  JoinResult,
  LoginOptions,
  LoginResult,
  MaybeStored,
  MessageFile,
  Member,
  Page,
  Presence,
  ReactionEvent,
  ReadEvent,
  ReadResult,
  ReconnectOptions,
  Replies,
  RequestInput,
  SendInput,
  SendOptions,
  Since,
  Stored,
  Target,
  TypingEvent,
} from "./types.ts";
export type { PaceOptions } from "./pacer.ts";
export type { DownloadOptions, FileProgress, SendFileOptions, UploadOptions, UploadResult, UploadSource } from "./files.ts";
export { sha256, type Sha256 } from "./sha256.ts";
export type { ErrorCode } from "../protocol/errors.ts";
export { isGroupKind, MUTED_FOREVER } from "../protocol/pushes.ts";
