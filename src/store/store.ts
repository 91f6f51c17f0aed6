// The storage interface. The server core sees only this; `sqlite.ts` is what
// ships, `memory.ts` is for tests and ephemeral runs, `index.ts` picks one for
// `--db`. One shared suite (test/helpers/store-suite.ts) runs against each.
//
// Every method returns a Promise, so that a store over the network can implement
// it. bun:sqlite and the memory store do their work at once and return settled
// promises. What the core relies on instead of synchronous calls: the batcher
// keeps one commit in flight (src/core/batcher.ts), a connection's requests are
// answered in order while one of them waits (src/core/chat.ts, `busy`), and a
// connection's replay of what it missed is checked against deliveries that land
// while it reads (src/core/chat.ts, `catchUp`).

import { entryText, type GroupAction, type GroupOp, type Refusal, type Role } from "./groups.ts";

/**
 * "normal": a committed message survives a crash of the server process; "full": it also
 * survives an OS crash or power cut (SQLite: synchronous=FULL, one fsync per batch).
 */
export type Durability = "normal" | "full";

/**
 * A message's file (PROTOCOL.md §3.5, §3.9): what it is. Its bytes are stored apart, once per
 * content (Store.readFile). In a NewMessage, `upload` names the sender's finished upload that
 * holds them: the commit uses it up (and refuses the message if it is gone).
 */
export interface FileData {
  name: string;
  type: string;
  size: number;
  /** 64 lowercase hexadecimal digits. */
  sha256: string;
  /** A new message: the sender's finished upload with the bytes. */
  upload?: string;
}

/** An upload (PROTOCOL.md §3.9): a user's file on its way in, or in, not yet sent. */
export interface UploadRow {
  id: string;
  user: string;
  size: number;
  sha256: string;
  /** How many bytes it has. */
  received: number;
  /** All its bytes arrived and their SHA-256 was checked (Store.finishUpload). */
  done: boolean;
  /** The stored file its bytes are in (Store.readFile): its own while it receives them. */
  file: number;
  /** Its last chunk, or its start (ms): it expires --upload-ttl after. */
  touched: number;
}

/** The file of a message that is not deleted (Store.messageFile): where it is and who may see it. */
export interface MessageFile {
  /** The conversation of the message ("g:<group>" or "d:<a>:<b>"). */
  conv: string;
  /** The stored file (Store.readFile). */
  file: number;
  size: number;
  sha256: string;
}

/** What a user's files take (PROTOCOL.md §3.9, --file-quota and --max-uploads). */
export interface FileUsage {
  /** The sizes of their uploads not sent, and of the files of their messages not deleted. */
  bytes: number;
  /** Their uploads not sent. */
  uploads: number;
}

/**
 * What an entry of the log is when it is not a chat message (PROTOCOL.md §3.5, §3.6): every
 * change to a conversation is an entry of the same mid-ordered log, committed like a message.
 * - `edit`: the sender replaced the text of message `ref` with `text`;
 * - `delete`: message `ref` was deleted (its text, file and earlier edits are erased);
 * - `react` / `unreact`: the sender added / removed the reaction `text` (an emoji) on message `ref`;
 * - `read`: the sender's read marker in the conversation moved up to `ref` (stored in the
 *   sender's own log, `r:<sender>`, and delivered to the sender's devices only);
 * - a group change (create, join, leave, invite, kick, ban, unban, mute, unmute, role, owner,
 *   settings: src/store/groups.ts): made by the sender, about `target`; committed by
 *   Store.groupOp with the change itself, never by `commit`.
 * Stored in the `kind` column; a chat message has none (NULL).
 */
export type EntryKind = "edit" | "delete" | "react" | "unreact" | "read" | GroupAction;


/** A message (or another entry of the log) as given to the store, before it has a `mid`. */
export interface NewMessage {
  sender: string;
  /**
   * Exactly one of `grp` (a group message) and `toUser` (a direct message) is set: the
   * conversation of the entry (for a `read`, the conversation whose marker moves).
   */
  grp?: string;
  toUser?: string;
  cid?: string;
  /** A message's text; an edit's new text; a reaction's emoji. */
  text?: string;
  file?: FileData;
  /** Absent: a chat message. */
  kind?: EntryKind;
  /** A message: the mid it replies to. Another entry: the mid it is about (for `read`, the mid read up to). */
  ref?: number;
  /** A group change: the user it is about. */
  target?: string;
  /** A `mute`: until when (ms); absent: until unmuted. */
  until?: number;
}

/** One emoji on a message and who put it there, in the order they did. */
export interface Reaction {
  emoji: string;
  users: string[];
}

/** A committed message or entry, as history and sync return it: a message in its current state. */
export interface StoredMessage extends NewMessage {
  mid: number;
  ts: number;
  /** A message: when its text was last edited. */
  edited?: number;
  /** A message: when it was deleted (a tombstone: no text and no file). */
  deleted?: number;
  /** A message: its current reactions, emoji by emoji in the order they were first added. */
  reactions?: Reaction[];
}

export interface CommitResult {
  mid: number;
  ts: number;
  /** True when (sender, cid) was already stored: `mid`/`ts` are the original's and nothing is new. */
  duplicate: boolean;
  /**
   * An edit, delete or reaction whose message was deleted (by an entry committed after the
   * core checked it, or earlier in the same batch): nothing was stored, `mid` is 0.
   */
  refused?: boolean;
  /** A `read`: the sender's read marker in that conversation after it (it only moves forward). */
  read?: number;
}

/** What `entryAt` says of one entry of a conversation, read from an index only. */
export interface EntryInfo {
  sender: string;
  /** Absent: a chat message. */
  kind?: EntryKind;
  /** A deleted message. */
  deleted: boolean;
}

/** The newest message of a conversation, cut short (PROTOCOL.md §3.6, `convs`). */
export interface Preview {
  mid: number;
  ts: number;
  sender: string;
  /** Its first PREVIEW_CHARS characters. */
  text?: string;
  /** Its file without the bytes: their number instead. */
  file?: { name: string; type: string; size: number };
}

/** One conversation of a user, with its read state (Store.convs). */
export interface ConvState {
  /** The conversation key: "g:<group>" or "d:<a>:<b>". */
  conv: string;
  /** A group conversation. */
  grp?: string;
  /** A direct conversation: the other party (the user for notes to self). */
  peer?: string;
  /** The newest mid of the conversation, any kind of entry; 0 if none. */
  last: number;
  /** The user's read marker in it (0 if never set). */
  read: number;
  /** Messages from others after the marker that are not deleted. */
  unread: number;
  /** Those of them (group messages) that mention the user by `@name`. */
  mentions: number;
  /** The newest message that is not deleted, if any. */
  preview?: Preview;
}

/** What one commit did. */
export interface Committed {
  /**
   * The commit's number in the store's sequence of commits (message batches and membership
   * changes alike): consecutive (1, 2, 3...) across
   * every node that commits to the store, in mid order, so a node that learns of commits 7
   * and 9 knows that it missed 8 (src/broker/nats.ts). A commit that rejects takes no number;
   * an empty batch takes none either and gives the last commit's.
   */
  seq: number;
  /** One per message of the batch, in its order. */
  results: CommitResult[];
}

/** Where the store stands: its last commit's `seq` and its highest mid, read together. */
export interface Position {
  seq: number;
  mid: number;
}

export interface UserRow {
  name: string;
  passHash: string;
}

export interface BanRow {
  user: string;
  reason: string;
  at: number;
}

export interface GroupRow {
  name: string;
  owner: string;
  public: boolean;
  topic: string;
  description: string;
}

/** A group of a user (Store.userGroups): the group and the user's role in it. */
export interface UserGroupRow extends GroupRow {
  role: Role;
}

/** A member of a group (Store.groupMembers). */
export interface MemberRow {
  user: string;
  role: Role;
  /** Muted until (ms), 0 if not. */
  muted: number;
}

/** A membership, for loading every node's routing: who is in which group, who is muted there. */
export interface MembershipRow {
  grp: string;
  user: string;
  /** Muted until (ms), 0 if not. */
  muted: number;
}

/** An open invitation (Store.userInvites). */
export interface InviteRow {
  group: string;
  by: string;
  topic: string;
}

/** A public group in the directory (Store.listGroups). */
export interface DirectoryRow {
  name: string;
  topic: string;
  members: number;
}

/** What Store.groupOp did: a change committed as `seq` with its log entry, nothing (so already), or a refusal. */
export type GroupOpResult =
  | { seq: number; mid: number; ts: number; entry: StoredMessage }
  | { seq: 0; refused?: Refusal };

/** Who may send a user direct messages (PROTOCOL.md §3.8). */
export type DmPolicy = "anyone" | "groups" | "nobody";
export const DM_POLICIES: readonly DmPolicy[] = ["anyone", "groups", "nobody"];

/** A message's mid and approximate wire size (`messageSize`), read before any message body. */
export interface MidSize {
  mid: number;
  size: number;
}

export interface Page {
  /** Only messages with mid < before. */
  before?: number;
  /** Only messages with mid > after. */
  after?: number;
  limit: number;
}

export interface Store {
  /** Creates a user; returns false if the name is taken. */
  createUser(name: string, passHash: string, now: number): Promise<boolean>;
  getUser(name: string): Promise<UserRow | undefined>;

  /**
   * Adds a token. With `maxPerUser`, the user then keeps at most that many tokens: the
   * oldest others are deleted (config `maxTokensPerUser`).
   */
  addToken(hash: string, user: string, now: number, expires: number, maxPerUser?: number): Promise<void>;
  /** The user a token hash belongs to, if it exists and has not expired at `now`. */
  tokenUser(hash: string, now: number): Promise<string | undefined>;
  deleteToken(hash: string): Promise<void>;
  /** Revokes every token of `user` (password change). */
  deleteUserTokens(user: string): Promise<void>;
  /** Replaces a user's password hash. */
  setPassword(user: string, passHash: string): Promise<void>;

  // A membership change is a commit of its own: it takes the next `seq` (Committed.seq),
  // which it returns, so that every node applies membership changes and messages in one
  // order (src/broker/broker.ts). 0: nothing changed, and no number was taken.

  /**
   * A change to a group (PROTOCOL.md §3.3): decided by `decide` (src/store/groups.ts) from what
   * the transaction reads, then applied with its entry in the group's log (the next mid, the
   * target in `target`), as one commit of the sequence. Joins (and create) start the joiner's
   * read marker at the newest mid; a join uses up an invitation; a ban removes the member and
   * the invitation; a transfer makes the old owner an admin.
   */
  groupOp(op: GroupOp, now: number): Promise<GroupOpResult>;
  /** `user`'s membership of `grp`, if a member. */
  member(grp: string, user: string): Promise<MemberRow | undefined>;
  /** The members of `grp`, by name. */
  groupMembers(grp: string): Promise<MemberRow[]>;
  /** The open invitations of `user`, by group name. */
  userInvites(user: string): Promise<InviteRow[]>;
  /** Whether `user` is banned from `grp`, or invited to it. */
  standing(grp: string, user: string): Promise<{ banned: boolean; invited: boolean }>;
  /** Public groups by name after `after`, whose name contains `q` (if given), at most `limit`. */
  listGroups(q: string | undefined, after: string, limit: number): Promise<DirectoryRow[]>;

  /** Blocks (or unblocks) `other` for `user`: whether that changed anything. */
  setBlock(user: string, other: string, blocked: boolean, now: number): Promise<boolean>;
  /** Whom `user` blocked, by name. */
  blocked(user: string): Promise<string[]>;
  setDmPolicy(user: string, policy: DmPolicy): Promise<void>;
  dmPolicy(user: string): Promise<DmPolicy>;
  /**
   * Whether `from` may send `to` a direct message: not if `to` blocked `from`, nor if `to`
   * takes them from nobody, or only from people who share a group and `from` shares none.
   * A user may always write to themselves.
   */
  dmAllowed(from: string, to: string): Promise<boolean>;

  /** Creates a group owned by `owner`, with the owner as its first member: its seq, or 0 if it exists. No log entry (operations, tests). */
  createGroup(name: string, owner: string, now: number): Promise<number>;
  getGroup(name: string): Promise<GroupRow | undefined>;
  /** Adds a member: the change's seq, or 0 if already a member (or no such group). */
  addMember(grp: string, user: string, now: number): Promise<number>;
  /** Removes a member: the change's seq, or 0 if not a member. */
  removeMember(grp: string, user: string): Promise<number>;
  /** How many groups `owner` created (config `maxGroupsCreated`). */
  groupsCreatedBy(owner: string): Promise<number>;
  /** How many groups `user` is a member of (config `maxGroupsPerUser`). */
  groupCount(user: string): Promise<number>;
  /** Every membership, for loading the router at start. */
  allMemberships(): Promise<MembershipRow[]>;
  /** The groups `user` belongs to, by name, with their role. */
  userGroups(user: string): Promise<UserGroupRow[]>;

  /** The highest committed mid, 0 if none. */
  lastMid(): Promise<number>;

  /** Entry `mid` if it is in conversation `conv` (its sender, kind, whether deleted), read from an index only. */
  entryAt(conv: string, mid: number): Promise<EntryInfo | undefined>;
  /** `user`'s read marker in `conv`: 0 if never set. */
  readMarker(user: string, conv: string): Promise<number>;
  /**
   * Every conversation of `user` (the groups they are a member of, the direct conversations
   * with a message), with the read state: newest mid, read marker, unread messages and
   * mentions, the newest message cut short. In no particular order.
   */
  convs(user: string): Promise<ConvState[]>;
  /**
   * Search (PROTOCOL.md §3.7): the messages of `user`'s conversations (their groups now, their
   * direct messages) with mid < `before` whose current text contains `q` (matchesQuery), not
   * deleted, newest first, at most `limit`: their mids and sizes.
   */
  search(user: string, q: string, before: number, limit: number): Promise<MidSize[]>;
  /** The last commit's seq (0 if none since the sequence began) and the highest mid, as of one moment. */
  position(): Promise<Position>;
  /**
   * Commits a batch in one transaction, assigning each new message the next
   * mid, in order. A message whose (sender, cid) exists already is not stored
   * again; its result is the original's, with `duplicate: true`. All or nothing:
   * if it rejects, nothing of the batch is stored.
   *
   * Entries with a `kind` change what they are about in the same transaction (the core has
   * checked that the target is a message of that conversation, and who may change it):
   * an edit replaces the target's text (and its mentions) and sets `edited`; a delete erases
   * the target's text and file (and the text of its edits, its reactions and mentions) and
   * sets `deleted`; a reaction is added or removed; a read moves the sender's marker up to
   * `ref` (but never past the entry itself, nor back). An edit, delete or reaction whose
   * target is deleted by then is `refused` and stores nothing. A group message's `@name`
   * mentions are stored with it (mentionsOf).
   */
  commit(batch: NewMessage[], now: number): Promise<Committed>;
  /** One conversation ("g:<group>" or "d:<a>:<b>"), oldest first, at most `limit`. With `before` and no `after`, the newest below `before`. */
  history(conv: string, page: Page): Promise<StoredMessage[]>;
  /**
   * Messages with mid > after in every group `user` is a member of, every direct message to or
   * from `user`, and every group change about `user` (a leave, a kick, an invitation: also of
   * groups they are not in), oldest first.
   */
  sync(user: string, after: number, limit: number): Promise<StoredMessage[]>;
  /**
   * The mids and sizes of what `history` would return, in the same order, reading no
   * message body: fill a page by bytes with these, then fetch it with `messagesByMid`.
   */
  historySizes(conv: string, page: Page): Promise<MidSize[]>;
  /** The mids and sizes of what `sync` would return, in the same order, reading no message body. */
  syncSizes(user: string, after: number, limit: number): Promise<MidSize[]>;
  /** The stored messages with these mids (any order given), ascending by mid; unknown mids are skipped. */
  messagesByMid(mids: readonly number[]): Promise<StoredMessage[]>;

  // ---- files (PROTOCOL.md §3.9) ----------------------------------------------------------
  // A file's bytes are stored in chunks (as they arrived, each at most CHUNK_MAX bytes) of a
  // stored file, once per content: an upload writes into a file of its own, which on finishing
  // becomes the file of that SHA-256, or is dropped for the one that exists. A file is removed
  // when no message that is not deleted and no upload holds it.

  /** A new upload of `user`, with an empty file of its own for its bytes. */
  createUpload(id: string, user: string, size: number, sha256: string, now: number): Promise<UploadRow>;
  getUpload(id: string): Promise<UploadRow | undefined>;
  /** `user`'s upload of that content not yet sent (finished or not), if any: the one to resume. */
  findUpload(user: string, sha256: string, size: number): Promise<UploadRow | undefined>;
  fileUsage(user: string): Promise<FileUsage>;
  /**
   * Appends `data` to unfinished upload `id` if it has exactly `offset` bytes and `data` does
   * not go past its size: its byte count after, or undefined (nothing written) if not.
   */
  appendUpload(id: string, offset: number, data: Uint8Array, now: number): Promise<number | undefined>;
  /**
   * Upload `id` has all its bytes and the caller checked their SHA-256: it is done. If a file of
   * that content is stored already, the upload now uses it and its own bytes are dropped.
   */
  finishUpload(id: string, now: number): Promise<UploadRow>;
  /** Drops upload `id`'s bytes (their SHA-256 was wrong): it starts again at 0. */
  resetUpload(id: string, now: number): Promise<void>;
  /** At most `len` bytes of file `file` from `offset` (fewer at the end of a stored chunk, none past the end). */
  readFile(file: number, offset: number, len: number): Promise<Uint8Array>;
  /** The file of message `mid`, if it is a message with a file that is not deleted. */
  messageFile(mid: number): Promise<MessageFile | undefined>;
  /** Deletes the uploads (finished or not) not sent and untouched since `before`, with their bytes: how many. */
  expireUploads(before: number): Promise<number>;

  // ---- operations (issue #15: tcpchat admin, retention) ----------------------------------

  /** Bans `user` (a repeat replaces the reason): logins are refused while the ban lasts. */
  ban(user: string, reason: string, now: number): Promise<void>;
  /** Lifts a ban: false if there was none. */
  unban(user: string): Promise<boolean>;
  /** Whether `user` is banned. */
  banned(user: string): Promise<boolean>;
  /** Every ban, by user name. */
  bans(): Promise<BanRow[]>;
  /**
   * Erases an account: every message it sent (group and direct) is deleted, its tokens too,
   * and its password hash is emptied (no password matches; getUser no longer finds it). The
   * users row stays, so the name is never given out again; the caller removes its memberships
   * (each a commit of its own) and bans it. Returns how many messages were deleted.
   */
  eraseUser(user: string): Promise<number>;
  /**
   * Deletes a group with no members left (the caller removes them first, each a commit of its
   * own): its messages and its row; the name may be taken again. Returns the messages deleted.
   */
  deleteGroup(name: string): Promise<number>;
  /** Messages sent by `user` or addressed to `user` directly, with mid > after, oldest first (export). */
  userMessages(user: string, after: number, limit: number): Promise<StoredMessage[]>;
  /**
   * Retention: deletes up to `limit` of the oldest messages committed before `before` (ms),
   * in mid order: returns how many. The highest mid ever given is kept, so mids are never reused.
   */
  purge(before: number, limit: number): Promise<number>;
  /**
   * A consistent copy of the whole database into the new file `path`, taken while the store
   * keeps serving (SQLite: VACUUM INTO). Rejects for a store that cannot (Postgres: use pg_dump).
   */
  backup(path: string): Promise<void>;

  /**
   * Housekeeping, called about once a minute (cheap when there is nothing to do): deletes
   * the tokens expired at `now` and gives back the disk space of a WAL grown past its limit.
   */
  maintain(now: number): Promise<void>;

  close(): Promise<void>;
}

/**
 * The stored bytes of file `file` up to `size`, a stored chunk at a time (Store.readFile), in
 * order; it stops early at a hole (the caller compares what it got with `size`).
 */
export async function* fileBytes(store: Store, file: number, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < size; ) {
    const b = await store.readFile(file, off, size - off);
    if (b.length === 0) return;
    yield b;
    off += b.length;
  }
}

/** `s` with the ASCII letters A-Z in lower case, every other character as it is. */
export function foldAscii(s: string): string {
  return /[A-Z]/.test(s) ? s.replace(/[A-Z]+/g, (x) => x.toLowerCase()) : s;
}

/**
 * Whether a message's text matches a search (PROTOCOL.md §3.7): it contains `q`, ASCII letters
 * in either case, every other character exactly (so "qwen" finds "Qwen3.6", "日本" finds "日本語").
 * Every store decides a match by this, after its index (FTS5, pg_trgm) has found candidates.
 */
export function matchesQuery(text: string | undefined, q: string): boolean {
  return text !== undefined && foldAscii(text).includes(foldAscii(q));
}

/** `q` as a LIKE pattern matching texts that contain it (escape character `\`). */
export function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A preview's text is cut to this many characters (code points). */
export const PREVIEW_CHARS = 100;

/** Most distinct names one message mentions (the rest are not counted). */
export const MAX_MENTIONS = 32;

const MENTION_RE = /(^|[^A-Za-z0-9_.@-])@([a-z0-9_][a-z0-9_.-]{0,31})/g;

/**
 * The users a group message's text mentions, `@name` (PROTOCOL.md §3.6): a name preceded by
 * the start of the text or by a character that cannot be part of a name, its trailing `.`
 * and `-` taken as punctuation. Distinct, without the sender, at most MAX_MENTIONS.
 */
export function mentionsOf(text: string | undefined, sender: string): string[] {
  if (text === undefined || !text.includes("@")) return [];
  const out = new Set<string>();
  for (const m of text.matchAll(MENTION_RE)) {
    const name = m[2]!.replace(/[.-]+$/, "");
    if (name !== "" && name !== sender) out.add(name);
    if (out.size === MAX_MENTIONS) break;
  }
  return [...out];
}

/** The first PREVIEW_CHARS code points of `s`. */
export function previewText(s: string): string {
  if (s.length <= PREVIEW_CHARS) return s;
  let i = 0;
  let n = 0;
  while (i < s.length && n < PREVIEW_CHARS) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
    n++;
  }
  return s.slice(0, i);
}

/** Bytes of `s` in UTF-8. */
function utf8Length(s: string | undefined): number {
  return s === undefined ? 0 : Buffer.byteLength(s);
}

/**
 * A message's approximate size on the wire (PROTOCOL.md §3.5): its text, cid and file
 * (name, type, and FILE_META_SIZE for its size and hash) in bytes, plus 96 for the keys,
 * mid, ts and names. Stored with the
 * message (the migration 0001_message_size computes the same for older rows).
 */
export function messageSize(m: NewMessage): number {
  const f = m.file;
  return 96 + utf8Length(m.text) + utf8Length(m.cid) + (f ? FILE_META_SIZE + utf8Length(f.name) + utf8Length(f.type) : 0);
}

/** A file's size and SHA-256 on the wire, with their keys: what a message's file adds to it besides its name and type. */
export const FILE_META_SIZE = 96;

/** The log entry a change to a group leaves (PROTOCOL.md §3.3): by whom, about whom, and what it set. */
export function groupEntry(op: GroupOp): NewMessage {
  const m: NewMessage = { sender: op.by, grp: op.group, kind: op.action, target: op.target };
  const text = entryText(op);
  if (text !== undefined) m.text = text;
  if (op.action === "mute" && op.until !== undefined) m.until = op.until;
  return m;
}

/** The conversation key of a message or a history request. */
export function groupConv(grp: string): string {
  return `g:${grp}`;
}

export function dmConv(a: string, b: string): string {
  return a <= b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

/** The conversation an entry is about: its group's, or the direct one of its sender and addressee. */
export function convOf(m: NewMessage): string {
  return m.grp !== undefined ? groupConv(m.grp) : dmConv(m.sender, m.toUser!);
}

/** The conversation key of a user's own log, where their `read` entries are stored. */
export function readsConv(user: string): string {
  return `r:${user}`;
}

/** Where an entry is stored and routed: the columns grp, to_user, conv and about. */
export interface Placement {
  grp: string | null;
  toUser: string | null;
  conv: string;
  /** A `read`: the conversation whose marker it moves. */
  about: string | null;
}

/**
 * A `read` is stored in its sender's own log (conv `r:<sender>`, addressed to the sender, so
 * that `sync` gives it to the sender's devices and no one else's); everything else in its
 * conversation.
 */
export function placement(m: NewMessage): Placement {
  if (m.kind === "read") return { grp: null, toUser: m.sender, conv: readsConv(m.sender), about: convOf(m) };
  return { grp: m.grp ?? null, toUser: m.toUser ?? null, conv: convOf(m), about: null };
}

/** The other party of a direct conversation key "d:<a>:<b>", seen by `me`. */
export function peerOf(conv: string, me: string): string {
  const [, a, b] = conv.split(":") as [string, string, string];
  return a === me ? b : a;
}

/** The inverse of `placement` for a `read`: the group, or the addressee, of the conversation it marks. */
export function readTarget(about: string, sender: string): { grp?: string; toUser?: string } {
  return about.startsWith("g:") ? { grp: about.slice(2) } : { toUser: peerOf(about, sender) };
}
