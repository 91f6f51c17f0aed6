// What the server sends unasked, PROTOCOL.md §5, and the shape of a message on the wire.

/**
 * The changes to a group (PROTOCOL.md §3.3), each the `kind` of the entry it leaves in the
 * group's log, made by `from`, about `target`. The one list: the store, the server's handlers
 * and the clients all take it from here.
 */
export const GROUP_KINDS = ["create", "join", "leave", "invite", "kick", "ban", "unban", "mute", "unmute", "role", "owner", "settings"] as const;
export type GroupKind = (typeof GROUP_KINDS)[number];

const GROUP_KIND_SET: ReadonlySet<unknown> = new Set(GROUP_KINDS);

/** Whether an entry's `kind` is a change to a group. */
export function isGroupKind(kind: unknown): kind is GroupKind {
  return GROUP_KIND_SET.has(kind);
}

/**
 * A mute without an end, as `members` gives it (PROTOCOL.md §3.3): the largest time a JavaScript
 * Date holds. A mute entry without one has no `until`.
 */
export const MUTED_FOREVER = 8_640_000_000_000_000;

/** What an entry of the log is when it is not a chat message (PROTOCOL.md §3.5). */
export type WireKind = "edit" | "delete" | "react" | "unreact" | "read" | GroupKind;

/** A group's settings as a `create` or `settings` entry gives them: those set, or changed. */
export interface WireSettings {
  public?: boolean;
  topic?: string;
  description?: string;
}

/** One emoji on a message and who put it there, in the order they did. */
export interface WireReaction {
  emoji: string;
  users: string[];
}

/** A message's file (PROTOCOL.md §3.5): what it is; its bytes are downloaded by the message's mid (§3.9). */
export interface WireFile {
  name: string;
  type: string;
  size: number;
  /** 64 lowercase hexadecimal digits. */
  sha256: string;
}

/** A message (or another entry of the log) as it appears in `msg` pushes and in `history`/`sync` replies. */
export interface WireMessage {
  mid: number;
  ts: number;
  from: string;
  /** Set for a group message. */
  group?: string;
  /** Set for a direct message: its addressee (as given in `send`). */
  user?: string;
  text?: string;
  file?: WireFile;
  cid?: string;
  /** Absent: a chat message. Otherwise what the entry is (PROTOCOL.md §3.5). */
  kind?: WireKind;
  /** An entry: the mid it is about (for `read`, the mid read up to). */
  ref?: number;
  /** A `react` or `unreact` entry: the emoji. */
  emoji?: string;
  /** A message: the mid it replies to. */
  reply?: number;
  /** A message in history, sync or a replay: when its text was last edited. */
  edited?: number;
  /** A message in history, sync or a replay: when it was deleted (no text, no file). */
  deleted?: number;
  /** A message in history, sync or a replay: its current reactions. */
  reactions?: WireReaction[];
  /** A change to a group: the user it is about. */
  target?: string;
  /** A `role` entry: the target's new role. */
  role?: string;
  /** A `mute` entry: until when (ms); absent: until unmuted. */
  until?: number;
  /** A `create` or `settings` entry: the settings given. */
  settings?: WireSettings;
}

/**
 * `from` is typing in a conversation (PROTOCOL.md §5.5): `group`, or the direct conversation
 * with `from` (`user` is the addressee, the one who gets it). Ephemeral: never stored.
 */
export interface TypingPush {
  t: "typing";
  from: string;
  group?: string;
  user?: string;
}

export type Push =
  | TypingPush
  | ({ t: "msg" } & WireMessage)
  | { t: "presence"; user: string; online: boolean }
  | { t: "bye"; reason: string };
