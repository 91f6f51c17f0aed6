// The shapes an application sees: messages, pushes, replies, options and states.
// Wire shapes come from src/protocol (PROTOCOL.md §3.5, §5); this file names
// them for the client and adds the client's own types.
import type { GroupKind, WireFile, WireMessage, WireSettings } from "../protocol/pushes.ts";
import type { FileField, RequestOf, RequestType } from "../protocol/requests.ts";
import type { Server } from "./link.ts";
import type { PaceOptions } from "./pacer.ts";

/**
 * An entry of the log as in `msg` pushes and `history`/`sync` pages (PROTOCOL.md §3.5): a chat
 * message when it has no `kind`; otherwise an edit, delete, react, unreact or read.
 */
export type ChatMessage = WireMessage;

/** Where an event happened: a group, or the direct conversation with `user` (the other party if `from` is you). */
type Where = { group?: string; user?: string };

/** A message's text was edited (`ref`: the message; `text` absent if the message was deleted since). */
export type EditEvent = Where & { mid: number; ts: number; from: string; ref: number; text?: string };

/** A message was deleted (by its sender, or a group's owner): remove it, or show that it was deleted. */
export type DeleteEvent = Where & { mid: number; ts: number; from: string; ref: number };

/** `from` added (`add`) or took back a reaction on message `ref`. */
export type ReactionEvent = Where & { mid: number; ts: number; from: string; ref: number; emoji: string; add: boolean };

/** This user's read marker in a conversation moved to `read` (on another device, or by this client's markRead). */
export type ReadEvent = Where & { mid: number; ts: number; read: number };

/**
 * A change to a group (PROTOCOL.md §3.3), made by `from`, about `target`: `kind` is create,
 * join, leave, invite, kick, ban, unban, mute, unmute, role, owner (handed on to `target`) or
 * settings. `role`: a role change's new role; `until`: a mute's end; `settings`: what a
 * create or settings entry set.
 */
export type GroupEvent = {
  group: string;
  mid: number;
  ts: number;
  from: string;
  kind: GroupChangeKind;
  target: string;
  role?: string;
  until?: number;
  settings?: GroupSettings;
};

/** A group's settings: what `createGroup` and `configure` take, and a GroupEvent's `settings`. */
export type GroupSettings = WireSettings;

/** The kinds of GroupEvent (PROTOCOL.md §3.3). */
export type GroupChangeKind = GroupKind;

export { isGroupKind, MUTED_FOREVER } from "../protocol/pushes.ts";

/** `from` is typing in a group, or to this user (PROTOCOL.md §5.5): show it for about 5 s. */
export type TypingEvent = Where & { from: string };

/**
 * A file to send (PROTOCOL.md §3.4): a finished upload of this user's (`uploadFile()`), with
 * the name and media type to show. `size` and `sha256` (uploadFile() gives both) only fill in
 * the message `send()` resolves with; they are not sent (the server knows them). `sendFile()`
 * uploads and sends in one go.
 */
export type ChatFile = FileField & { size?: number; sha256?: string };

/** A message's file as the server gives it (PROTOCOL.md §3.5): name, type, size, SHA-256; the bytes are downloaded by the message's mid. */
export type MessageFile = WireFile;

/** A conversation: a group, or the direct conversation with `user`. */
export type Target = { group: string; user?: undefined } | { user: string; group?: undefined };

/** What `send()` takes: a target, text and/or a file, and optionally the app's own `cid`. */
export type SendInput = Target & {
  text?: string;
  file?: ChatFile;
  /** The mid of the message this one answers (a message of the same conversation). */
  reply?: number;
  /** The idempotency key (PROTOCOL.md §3.4); generated (a UUID) when absent. */
  cid?: string;
};

export interface Presence {
  user: string;
  online: boolean;
}

export interface Bye {
  reason: string;
}

/** A group of this user (`groups`, PROTOCOL.md §3.3). */
export interface GroupInfo {
  group: string;
  owner: string;
  role: "owner" | "admin" | "member";
  public: boolean;
  topic: string;
  description: string;
}

/** An open invitation to a group. */
export interface Invitation {
  group: string;
  by: string;
  topic: string;
}

/** A public group in the directory (`list`). */
export interface DirectoryEntry {
  group: string;
  topic: string;
  members: number;
}

export interface Member {
  user: string;
  online: boolean;
  role: "owner" | "admin" | "member";
  /** Muted until this time (ms). */
  muted?: number;
}

/** Who may send this user direct messages (PROTOCOL.md §3.8). */
export type DmPolicy = "anyone" | "groups" | "nobody";

/** The reply to a change that may store an entry: its mid and time if it changed anything. */
export interface MaybeStored {
  mid?: number;
  ts?: number;
}

/** A `history` or `sync` page, oldest first. */
export interface Page {
  msgs: ChatMessage[];
  more: boolean;
}

export interface LoginResult {
  user: string;
  token: string;
  /** The newest mid when the login took effect: live pushes begin after it (PROTOCOL.md §3.2). */
  mid?: number;
  /** The server's request and file limits (PROTOCOL.md §2.4, §3.9); 0 means no limit. The file limits are absent from servers before §3.9. */
  limits?: {
    rate_msgs: number;
    rate_bytes: number;
    rate_burst: number;
    max_frame: number;
    max_text: number;
    max_page: number;
    max_file?: number;
    file_quota?: number;
    max_chunk?: number;
  };
}

export interface JoinResult extends MaybeStored {
  group: string;
  owner: string;
  topic: string;
}

/** The fields of each request's successful reply (without `t` and `id`). */
export interface Replies {
  ping: Record<string, never>;
  register: { user: string };
  login: LoginResult;
  logout: Record<string, never>;
  passwd: { token: string };
  create: { group: string } & MaybeStored;
  join: JoinResult;
  leave: { group: string } & MaybeStored;
  groups: { groups: GroupInfo[]; invites: Invitation[] };
  members: { group: string; members: Member[] };
  send: { mid: number; ts: number };
  history: Page;
  sync: Page;
  edit: Stored;
  delete: Stored;
  react: Stored;
  read: ReadResult;
  convs: { convs: Conversation[] };
  typing: Record<string, never>;
  /** Newest first. */
  search: Page;
  invite: { group: string; user: string } & MaybeStored;
  kick: { group: string; user: string } & MaybeStored;
  ban: { group: string; user: string } & MaybeStored;
  unban: { group: string; user: string } & MaybeStored;
  mute: { group: string; user: string } & MaybeStored;
  unmute: { group: string; user: string } & MaybeStored;
  role: { group: string; user: string } & MaybeStored;
  transfer: { group: string; user: string } & MaybeStored;
  configure: { group: string } & MaybeStored;
  list: { groups: DirectoryEntry[]; more: boolean };
  block: { user: string; changed: boolean };
  unblock: { user: string; changed: boolean };
  blocked: { users: string[] };
  privacy: { dms: DmPolicy };
  upload: { upload: string; offset: number; size: number; done?: boolean };
  chunk: { offset: number; done?: boolean };
  download: { mid: number; offset: number; size: number; sha256: string; data: Uint8Array };
}

/** The reply to an entry that was stored: its mid and time. */
export interface Stored {
  mid: number;
  ts: number;
}

/** The reply to `read`: the marker after it, and the entry's mid and time if one was stored (the marker moved). */
export interface ReadResult {
  read: number;
  mid?: number;
  ts?: number;
}

/** One conversation of `convs` (PROTOCOL.md §3.6). */
export type Conversation = Target & {
  /** The newest mid in it, any kind of entry; 0 if none. */
  last: number;
  /** This user's read marker in it. */
  read: number;
  /** Messages from others after the marker that are not deleted. */
  unread: number;
  /** Those of them that mention this user (`@name`, groups only). */
  mentions: number;
  /** The newest message that is not deleted, cut short; its file without the bytes. */
  preview?: { mid: number; ts: number; from: string; text?: string; file?: { name: string; type: string; size: number } };
};

/** A request as the app writes it: the wire request without `id` (the client assigns ids). */
export type RequestInput<T extends RequestType> = Omit<RequestOf<T>, "id">;

/**
 * Where the client is:
 * - `connecting`: no connection (first dial, or waiting to reconnect);
 * - `open`: connected, not logged in;
 * - `syncing`: logged in, catching up with `sync` (sends wait);
 * - `ready`: logged in and caught up: sends go out, messages are delivered live;
 * - `closed`: `close()` was called, or the client could not log back in. Final.
 */
export type ConnectionState = "connecting" | "open" | "syncing" | "ready" | "closed";

/** Events: `on(name, fn)`, or the async iterators `messages()`, `presences()`, `byes()`, `stream(name)`. */
export interface ClientEvents {
  /** A message from someone else, or from another connection of this user; exactly once, in mid order. */
  msg: ChatMessage;
  /**
   * Every entry of the log as it comes, messages included, exactly once, in mid order, before
   * its own event (`msg`, `edit`, `delete`, `reaction`, `read`); also kinds this client does
   * not know. For an app that keeps its own copy of the log.
   */
  entry: ChatMessage;
  edit: EditEvent;
  delete: DeleteEvent;
  reaction: ReactionEvent;
  read: ReadEvent;
  /** A change to a group: a join, a leave, a kick, a new topic... (PROTOCOL.md §3.3). */
  group: GroupEvent;
  typing: TypingEvent;
  presence: Presence;
  /** The server said goodbye (PROTOCOL.md §5.3); the client reconnects by itself. */
  bye: Bye;
  state: ConnectionState;
  /** A failure no promise reports: a listener threw, the token was refused on reconnect, a protocol violation. */
  error: Error;
}

/**
 * The delay is waited once per round over the server list, before the round:
 * after a lost connection the client waits, then tries the next address, and
 * the one after it at once if that fails, and so on until each address has had
 * one try; only then does it wait again, longer. With one server every attempt
 * is a round of its own. Reaching `ready` starts again from `initialDelayMs`.
 */
export interface ReconnectOptions {
  /** First delay after a lost connection, ms. Default 100. */
  initialDelayMs?: number;
  /** Largest delay, ms. Default 5000. */
  maxDelayMs?: number;
  /** Growth per failed round. Default 2. */
  factor?: number;
  /** Fraction of each delay taken away at random (0: none, 1: full jitter). Default 0.5. */
  jitter?: number;
}

export interface ClientOptions {
  /** The one TCP server to connect to. Default "127.0.0.1". Not with `servers` or `url`. Bun only. */
  host?: string;
  /** Its port. Default 7777. Not with `servers` or `url`. */
  port?: number;
  /**
   * One server over WebSocket, instead of `host` and `port`: the `/ws` URL of its
   * HTTP port (PROTOCOL.md §1.1), `ws://host:7780/ws`, or `wss://...` for a server
   * with TLS. In a browser this (or `servers` of `{url}`) is the only way; in a
   * page served by tcpchat, `ws(s)://${location.host}/ws`. Not with `servers`.
   */
  url?: string;
  /**
   * Several servers (nodes of one cluster), instead of `host` and `port` or
   * `url`: `{host, port}` (TCP, Bun only) or `{url}` (WebSocket), mixed as you
   * like. The first connection goes to the first that answers, in order; after a
   * lost connection the client moves on to the next, round robin (see
   * `ReconnectOptions` for the delays). `parseServers("a:7777,b:7777,[::1]:7777")`
   * makes a TCP list from text. A bad list rejects `connect()` with an AddressError.
   */
  servers?: Server[];
  /** Time a request (other than `send`) waits for its reply, ms. Default 10000. */
  requestTimeoutMs?: number;
  /** Time to establish a connection (TCP, or a WebSocket's handshake), ms. Default 10000. With several servers, a dead one that drops packets costs this much per round. */
  connectTimeoutMs?: number;
  /** Largest frame accepted from the server, bytes. Default 64 MiB (the server's `--max-frame` plus 1024 is the minimum, PROTOCOL.md §1). */
  maxFrame?: number;
  /** Largest request frame sent, bytes: larger sends fail at once with `too_large`. Default 4194304 (the server's default `--max-frame`). */
  maxRequestFrame?: number;
  /** Reconnect policy after a lost connection, or `false` to close the client instead. */
  reconnect?: ReconnectOptions | false;
  /** A `ping` every this many ms; no `pong` within `requestTimeoutMs` drops the connection (and reconnects). 0: off. Default 15000. */
  pingIntervalMs?: number;
  /** `limit` of each `sync` page while catching up. Default 500 (the server caps it at `--max-page`). */
  syncPageSize?: number;
  /** How many times a `send` refused with `internal` or `rate_limited` is retried (same `cid`) before it fails. Default 5. */
  sendRetries?: number;
  /**
   * Keeps requests under the server's rate limit (PROTOCOL.md §2.4) by holding
   * them back, in order: defaults a margin under the server's defaults. Set it
   * for a server with other `--rate-*` flags; `false` sends at once.
   */
  pace?: PaceOptions | false;
}

/** Where message delivery starts at login: `"now"` (messages committed from here on), or after a `mid` (0: everything). */
export type Since = "now" | number;

export interface LoginOptions {
  /** Default "now". A number makes the client catch up with `sync` from that mid before `login()` resolves. */
  since?: Since;
}

export interface SendOptions {
  /** Give up after this many ms (rejects with TimeoutError). Default: no limit, the send waits for the server to return. */
  timeoutMs?: number;
}
