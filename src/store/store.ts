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

/**
 * "normal": a committed message survives a crash of the server process; "full": it also
 * survives an OS crash or power cut (SQLite: synchronous=FULL, one fsync per batch).
 */
export type Durability = "normal" | "full";

export interface FileData {
  name: string;
  type: string;
  data: Uint8Array;
}

/** A message as given to the store, before it has a `mid`. */
export interface NewMessage {
  sender: string;
  /** Exactly one of `grp` (a group message) and `toUser` (a direct message) is set. */
  grp?: string;
  toUser?: string;
  cid?: string;
  text?: string;
  file?: FileData;
}

/** A committed message, as history and sync return it. */
export interface StoredMessage extends NewMessage {
  mid: number;
  ts: number;
}

export interface CommitResult {
  mid: number;
  ts: number;
  /** True when (sender, cid) was already stored: `mid`/`ts` are the original's and nothing is new. */
  duplicate: boolean;
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
}

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

  /** Creates a group owned by `owner`, with the owner as its first member: its seq, or 0 if it exists. */
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
  allMemberships(): Promise<Array<{ grp: string; user: string }>>;
  /** The groups `user` belongs to, by name. */
  userGroups(user: string): Promise<GroupRow[]>;

  /** The highest committed mid, 0 if none. */
  lastMid(): Promise<number>;
  /** The last commit's seq (0 if none since the sequence began) and the highest mid, as of one moment. */
  position(): Promise<Position>;
  /**
   * Commits a batch in one transaction, assigning each new message the next
   * mid, in order. A message whose (sender, cid) exists already is not stored
   * again; its result is the original's, with `duplicate: true`. All or nothing:
   * if it rejects, nothing of the batch is stored.
   */
  commit(batch: NewMessage[], now: number): Promise<Committed>;
  /** One conversation ("g:<group>" or "d:<a>:<b>"), oldest first, at most `limit`. With `before` and no `after`, the newest below `before`. */
  history(conv: string, page: Page): Promise<StoredMessage[]>;
  /** Messages with mid > after in every group `user` is a member of and every direct message to or from `user`, oldest first. */
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

/** Bytes of `s` in UTF-8. */
function utf8Length(s: string | undefined): number {
  return s === undefined ? 0 : Buffer.byteLength(s);
}

/**
 * A message's approximate size on the wire (PROTOCOL.md §3.5): its text, cid and file
 * (data, name, type) in bytes, plus 96 for the keys, mid, ts and names. Stored with the
 * message (the migration 0001_message_size computes the same for older rows).
 */
export function messageSize(m: NewMessage): number {
  const f = m.file;
  return (
    96 +
    utf8Length(m.text) +
    utf8Length(m.cid) +
    (f ? f.data.length + utf8Length(f.name) + utf8Length(f.type) : 0)
  );
}

/** The conversation key of a message or a history request. */
export function groupConv(grp: string): string {
  return `g:${grp}`;
}

export function dmConv(a: string, b: string): string {
  return a <= b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

export function convOf(m: NewMessage): string {
  return m.grp !== undefined ? groupConv(m.grp) : dmConv(m.sender, m.toUser!);
}
