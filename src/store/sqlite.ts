// The shipped Store: bun:sqlite through drizzle-orm, WAL journal, migrations applied at open.
// bun:sqlite is synchronous: each method does its work at once and returns a settled
// promise (src/store/store.ts), so a commit costs the batcher one microtask more than a
// plain call, and nothing else.
// docs/BUN.md: one transaction per batch with prepared statements is ~20x faster than
// autocommit per row, so `commit` takes a whole batch.
import { type Changes, Database, type Statement } from "bun:sqlite";
import { closeSync, openSync, statSync } from "node:fs";
import { and, asc, count, eq, gt, lte, ne, sql } from "drizzle-orm";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import { applyMigrations } from "./migrate.ts";
import { decide, effectsOf, type GroupOp, type MemberFacts, type Role } from "./groups.ts";
import { ABOUT_KINDS, bans, blocks, groupBans, groups, invites, memberships, messages, tcpchatMeta, tokens, users } from "./schema.ts";
import type {
  BanRow,
  Committed,
  CommitResult,
  ConvState,
  DirectoryRow,
  DmPolicy,
  Durability,
  EntryInfo,
  EntryKind,
  FileUsage,
  GroupOpResult,
  GroupRow,
  InviteRow,
  MemberRow,
  MembershipRow,
  MessageFile,
  MidSize,
  NewMessage,
  Page,
  Position,
  Reaction,
  Store,
  StoredMessage,
  UploadRow,
  UserGroupRow,
  UserRow,
} from "./store.ts";
import { SqliteFiles } from "./sqlite-files.ts";
import { Checkpointer, lockDatabase } from "./sqlite-wal.ts";
import { dmConv, groupConv, groupEntry, likePattern, matchesQuery, mentionsOf, messageSize, placement, PREVIEW_CHARS, readTarget } from "./store.ts";

export interface SqliteOptions {
  /** File path, or ":memory:". */
  path: string;
  /**
   * "normal" (WAL + synchronous=NORMAL): a committed message survives a crash of
   * the server process; an OS crash or power cut may lose the last commits.
   * "full" (synchronous=FULL): it also survives those, at one fsync per batch.
   */
  durability: Durability;
}

type MessageRow = typeof messages.$inferSelect;

/**
 * The WAL is cut back to this size when it is next started over (PRAGMA journal_size_limit),
 * and `maintain` truncates it when it has grown past it: without a limit it keeps the size of
 * the largest batch ever committed.
 */
export const WAL_LIMIT = 64 * 1024 * 1024;

/** Largest mid bound (mids are below 2^53). */
const NO_BOUND = Number.MAX_SAFE_INTEGER;

/** Whether `path` names a file on disk (not ":memory:", a temporary database or a URI). */
function isFilePath(path: string): boolean {
  return path !== "" && path !== ":memory:" && !path.startsWith("file:");
}

/**
 * Creates the database file with mode 0600 if it does not exist yet: the messages and
 * password hashes are nobody else's to read. SQLite creates the -wal and -shm files with
 * the mode of the database file. An existing file is left as the operator made it.
 */
function createPrivate(path: string): void {
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
}

/** Rows a write changed. drizzle types bun-sqlite's run() as void; at run time it is bun:sqlite's `Changes`. */
function changed(r: unknown): number {
  return (r as Changes).changes;
}

function toStored(r: MessageRow): StoredMessage {
  const m: StoredMessage = { mid: r.mid, ts: r.ts, sender: r.sender };
  if (r.kind === "read") Object.assign(m, readTarget(r.about!, r.sender));
  else {
    if (r.grp !== null) m.grp = r.grp;
    if (r.toUser !== null) m.toUser = r.toUser;
  }
  if (r.cid !== null) m.cid = r.cid;
  if (r.text !== null) m.text = r.text;
  if (r.fileName !== null && r.fileId !== null)
    m.file = { name: r.fileName, type: r.fileType ?? "", size: r.fileSize ?? 0, sha256: r.fileSha ?? "" };
  if (r.kind !== null) m.kind = r.kind as EntryKind;
  if (r.ref !== null) m.ref = r.ref;
  if (r.edited !== null) m.edited = r.edited;
  if (r.deleted !== null) m.deleted = r.deleted;
  if (r.target !== null) m.target = r.target;
  if (r.until !== null) m.until = r.until;
  return m;
}

/** A groups row (SQLite's or Postgres's: `public` an integer) as the Store gives it. */
export function groupRow(r: { name: string; owner: string; public: number; topic: string; description: string }): GroupRow {
  return { name: r.name, owner: r.owner, public: r.public !== 0, topic: r.topic, description: r.description };
}

/** The columns of groups a GroupRow is read from (drizzle select). */
const GROUP_COLUMNS = {
  name: groups.name,
  owner: groups.owner,
  public: groups.public,
  topic: groups.topic,
  description: groups.description,
};

/** Reaction rows (mid, user, emoji), by mid and then in the order added, as each message's list. */
export function groupReactions(rows: Iterable<{ mid: number; user: string; emoji: string }>): Map<number, Reaction[]> {
  const out = new Map<number, Map<string, Reaction>>();
  for (const r of rows) {
    let by = out.get(r.mid);
    if (!by) out.set(r.mid, (by = new Map()));
    let x = by.get(r.emoji);
    if (!x) by.set(r.emoji, (x = { emoji: r.emoji, users: [] }));
    x.users.push(r.user);
  }
  return new Map([...out].map(([mid, by]) => [mid, [...by.values()]]));
}

/** Messages indexed for search per transaction (between them the event loop runs). */
const INDEX_CHUNK = 5000;

/** Most direct conversations a store remembers having written to dm_peers (then it starts over). */
export const KNOWN_PAIRS_MAX = 1_000_000;

interface ConvRow {
  conv: string;
  grp: string | null;
  peer: string | null;
  read: number;
  last: number;
  unread: number;
  mentions: number;
  pmid: number | null;
}

interface PreviewRow {
  mid: number;
  ts: number;
  sender: string;
  text: string | null;
  file_name: string | null;
  file_type: string | null;
  file_size: number | null;
}

export class SqliteStore implements Store {
  readonly db: BunSQLiteDatabase;
  private readonly client: Database;
  private last: number;
  /** The last commit's number (Committed.seq), counted from 0 at open. */
  private seq = 0;

  /** The one hot statement: raw bun:sqlite, positional (drizzle's placeholder mapping cost ~0.7 µs a row). */
  private readonly insertMessage: Statement;
  /** A text message (no file, no reply): the columns it sets, which binds half the parameters. */
  private readonly insertText: Statement;
  private readonly findByCid;

  /** Size-first reads (see historySizes, syncSizes, messagesByMid). */
  private readonly sizesForward: Statement<MidSize>;
  private readonly sizesBackward: Statement<MidSize>;
  private readonly sizesSync: Statement<MidSize>;
  private readonly byMids: Statement<Record<string, unknown>>;
  private readonly walPath: string | undefined;
  /** A file database: the lock that makes this the one server on it, and its WAL's checkpointer (sqlite-wal.ts). */
  private readonly lock: Database | undefined;
  private readonly checkpointer: Checkpointer | undefined;

  /** Entries other than messages, and what they change (commitEntry). */
  private readonly entryAtStmt: Statement<{ sender: string; kind: string | null; deleted: number | null }>;
  private readonly editTarget: Statement;
  private readonly deleteTarget: Statement;
  private readonly eraseEdits: Statement;
  private readonly dropReactions: Statement;
  private readonly dropMentions: Statement;
  private readonly addReaction: Statement;
  private readonly removeReaction: Statement;
  private readonly addMention: Statement;
  private readonly moveMarker: Statement<{ mid: number }>;
  private readonly addPeer: Statement;
  private readonly markerStmt: Statement<{ mid: number }>;
  private readonly convsStmt: Statement<ConvRow>;
  private readonly previewsStmt: Statement<PreviewRow>;
  private readonly reactionsStmt: Statement<{ mid: number; user: string; emoji: string }>;
  /** dmAllowed: 1 if ?2 may write to ?1 (no block, and ?1's policy lets them). */
  private readonly dmCheck: Statement<{ ok: number }>;
  /** Files (PROTOCOL.md §3.9): uploads, stored files and their chunks. */
  private readonly files: SqliteFiles;
  /** Direct conversations known to be in dm_peers: a message between them writes nothing more. */
  private readonly knownPairs = new Set<string>();

  /** Search (schema.ts, searchState): every message up to `indexed` is in messages_fts. */
  private indexed: number;
  /** The indexer running, if one is. */
  private indexing: Promise<void> | undefined;
  private readonly ftsFill: Statement;
  private readonly ftsAdd: Statement;
  private readonly ftsRemove: Statement;
  private readonly setIndexed: Statement;
  private readonly textOf: Statement<{ text: string | null }>;
  private readonly ftsSearch: Statement<{ mid: number; text: string | null; size: number }>;
  private readonly likeSearch: Statement<{ mid: number; text: string | null; size: number }>;

  constructor(opts: SqliteOptions) {
    const file = isFilePath(opts.path);
    const synchronous = opts.durability === "full" ? "FULL" : "NORMAL";
    if (file) {
      createPrivate(opts.path);
      // One server owns its database file: a second one fails at start ("database is locked")
      // instead of interleaving mids (sqlite-wal.ts).
      this.lock = lockDatabase(opts.path);
    }
    this.walPath = file ? `${opts.path}-wal` : undefined;
    let client: Database | undefined;
    try {
      this.client = client = new Database(opts.path, { create: true, strict: true });
      this.client.run("PRAGMA journal_mode = WAL");
      // Checkpoints run on a worker thread of their own, never inside a commit (sqlite-wal.ts).
      // NORMAL locking (SQLite's shared-memory WAL index, which that second connection needs)
      // costs a commit 7-18 us more than EXCLUSIVE did: a checkpoint on the event loop cost 20 ms.
      if (file) this.client.run("PRAGMA wal_autocheckpoint = 0");
      this.client.run(`PRAGMA synchronous = ${synchronous}`);
      this.client.run("PRAGMA foreign_keys = ON");
      this.client.run("PRAGMA busy_timeout = 5000");
      this.client.run(`PRAGMA journal_size_limit = ${WAL_LIMIT}`);
      // A deleted message's text and file are overwritten with zeros where they were, not just
      // unlinked (PROTOCOL.md §3.6); commit() then checkpoints and truncates the WAL, which holds
      // copies of the pages as they were.
      this.client.run("PRAGMA secure_delete = ON");
      this.db = drizzle({ client: this.client });
      applyMigrations(this.db);
      this.files = new SqliteFiles(this.client);
      this.files.convertInline(Date.now());
    } catch (e) {
      // Nothing is left open: the next opener (this process or another) finds the file unlocked.
      client?.close(true);
      this.lock?.close();
      throw e;
    }
    if (file) this.checkpointer = new Checkpointer(opts.path, synchronous);

    // The SQL drizzle generates for insert(messages).values(...).onConflictDoNothing(), as text.
    this.insertMessage = this.client.prepare(
      "INSERT INTO messages (mid, ts, sender, grp, to_user, conv, cid, text, file_name, file_type, file_id, file_size, file_sha, size, kind, ref, about) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.insertText = this.client.prepare(
      "INSERT INTO messages (mid, ts, sender, grp, to_user, conv, cid, text, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    // Index-only (messages_conv holds sender, kind and deleted): no row is read, so no file.
    this.entryAtStmt = this.client.prepare(
      "SELECT sender, kind, deleted FROM messages INDEXED BY messages_conv WHERE conv = ? AND mid = ?",
    );
    this.editTarget = this.client.prepare(
      "UPDATE messages SET text = ?1, edited = ?2, size = size - coalesce(length(CAST(text AS BLOB)), 0) + ?3 WHERE mid = ?4",
    );
    const tombstone = "size = 96 + coalesce(length(CAST(cid AS BLOB)), 0)";
    this.deleteTarget = this.client.prepare(
      `UPDATE messages SET text = NULL, file_name = NULL, file_type = NULL, file_data = NULL, file_id = NULL, file_size = NULL, file_sha = NULL, edited = NULL, deleted = ?1, ${tombstone} WHERE mid = ?2`,
    );
    this.eraseEdits = this.client.prepare(`UPDATE messages SET text = NULL, ${tombstone} WHERE kind = 'edit' AND ref = ?`);
    this.dropReactions = this.client.prepare("DELETE FROM reactions WHERE mid = ?");
    this.dropMentions = this.client.prepare("DELETE FROM mentions WHERE mid = ?");
    this.addReaction = this.client.prepare("INSERT OR IGNORE INTO reactions (mid, user, emoji, at) VALUES (?, ?, ?, ?)");
    this.removeReaction = this.client.prepare("DELETE FROM reactions WHERE mid = ? AND user = ? AND emoji = ?");
    this.addMention = this.client.prepare("INSERT OR IGNORE INTO mentions (user, conv, mid) VALUES (?, ?, ?)");
    this.moveMarker = this.client.prepare(
      "INSERT INTO reads (user, conv, mid) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET mid = max(mid, excluded.mid) RETURNING mid",
    );
    this.addPeer = this.client.prepare("INSERT OR IGNORE INTO dm_peers (user, peer, conv) VALUES (?, ?, ?)");
    this.markerStmt = this.client.prepare("SELECT mid FROM reads WHERE user = ? AND conv = ?");
    this.dmCheck = this.client.prepare(`SELECT CASE
        WHEN EXISTS (SELECT 1 FROM blocks WHERE user = ?1 AND blocked = ?2) THEN 0
        WHEN u.dm_policy = 'anyone' THEN 1
        WHEN u.dm_policy = 'groups' THEN EXISTS (SELECT 1 FROM memberships a JOIN memberships b ON b.grp = a.grp
          WHERE a.user = ?1 AND b.user = ?2)
        ELSE 0 END AS ok FROM users u WHERE u.name = ?1`);
    // Per conversation: index probes and index-only range scans of messages_conv from the marker
    // (unread counts cost what is unread), the newest message not deleted, scanning back from the end.
    this.convsStmt = this.client.prepare(`
      WITH c(conv, grp, peer) AS (
        SELECT 'g:' || grp, grp, NULL FROM memberships WHERE user = ?1
        UNION ALL SELECT conv, NULL, peer FROM dm_peers WHERE user = ?1),
      s AS (SELECT c.conv, c.grp, c.peer, coalesce(r.mid, 0) AS read FROM c LEFT JOIN reads r ON r.user = ?1 AND r.conv = c.conv)
      SELECT s.conv, s.grp, s.peer, s.read,
        coalesce((SELECT max(mid) FROM messages WHERE conv = s.conv), 0) AS last,
        (SELECT count(*) FROM messages INDEXED BY messages_conv
          WHERE conv = s.conv AND mid > s.read AND kind IS NULL AND deleted IS NULL AND sender != ?1) AS unread,
        (SELECT count(*) FROM mentions WHERE user = ?1 AND conv = s.conv AND mid > s.read) AS mentions,
        (SELECT mid FROM messages INDEXED BY messages_conv
          WHERE conv = s.conv AND kind IS NULL AND deleted IS NULL ORDER BY mid DESC LIMIT 1) AS pmid
      FROM s`);
    // substr() of the text stops at the preview's length.
    this.previewsStmt = this.client.prepare(
      `SELECT mid, ts, sender, substr(text, 1, ${PREVIEW_CHARS}) AS text, file_name, file_type, file_size
        FROM messages WHERE mid IN (SELECT value FROM json_each(?))`,
    );
    this.reactionsStmt = this.client.prepare(
      "SELECT mid, user, emoji FROM reactions WHERE mid IN (SELECT value FROM json_each(?)) ORDER BY mid, at",
    );
    // Search: messages (kind NULL) with text, not deleted, are indexed after they are stored.
    this.ftsFill = this.client.prepare(`INSERT INTO messages_fts (rowid, text)
      SELECT mid, text FROM messages WHERE mid > ? AND mid <= ? AND kind IS NULL AND deleted IS NULL AND text IS NOT NULL`);
    this.ftsAdd = this.client.prepare("INSERT INTO messages_fts (rowid, text) VALUES (?, ?)");
    // An external-content index is told the text it holds to take it out (secure-delete: for real).
    this.ftsRemove = this.client.prepare("INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', ?, ?)");
    this.setIndexed = this.client.prepare("UPDATE search_state SET indexed = ? WHERE id = 1");
    this.textOf = this.client.prepare("SELECT text FROM messages WHERE mid = ?");
    // The caller's conversations: their groups now, direct messages to or from them.
    const scope = "(m.conv IN (SELECT 'g:' || grp FROM memberships WHERE user = ?3) OR m.to_user = ?3 OR (m.sender = ?3 AND m.to_user IS NOT NULL))";
    this.ftsSearch = this.client.prepare(`SELECT m.mid, m.text, m.size FROM messages_fts JOIN messages m ON m.mid = messages_fts.rowid
      WHERE messages_fts MATCH ?1 AND messages_fts.rowid < ?2 AND m.kind IS NULL AND m.deleted IS NULL AND ${scope}
      ORDER BY messages_fts.rowid DESC LIMIT ?4`);
    // Fewer than 3 characters: no trigram to look up; the messages themselves, newest first.
    this.likeSearch = this.client.prepare(`SELECT m.mid, m.text, m.size FROM messages m
      WHERE m.mid < ?2 AND m.kind IS NULL AND m.deleted IS NULL AND m.text LIKE ?1 ESCAPE '\\' AND ${scope}
      ORDER BY m.mid DESC LIMIT ?4`);
    // Size-first reads: every scan below is index-only (messages_conv, messages_dm_to and
    // messages_dm_from hold conv/to_user/sender, mid and size), and what is sorted or merged
    // is (mid, size) pairs. A message's row, with its blob, is read only by messagesByMid.
    const range = "SELECT mid, size FROM messages WHERE conv = ? AND mid > ? AND mid < ?";
    this.sizesForward = this.client.prepare(`${range} ORDER BY mid ASC LIMIT ?`);
    this.sizesBackward = this.client.prepare(`${range} ORDER BY mid DESC LIMIT ?`);
    // Four range scans (the user's groups, DMs received, DMs sent but not to oneself, the group
    // changes about the user), each cut at the limit, merged by mid (UNION: a change of one of
    // the user's groups is found twice): cost follows this user's traffic, not the whole table's.
    this.sizesSync = this.client.prepare(`
      SELECT mid, size FROM (
        SELECT * FROM (SELECT mid, size FROM messages
          WHERE conv IN (SELECT 'g:' || grp FROM memberships WHERE user = ?1) AND mid > ?2 ORDER BY mid LIMIT ?3)
        UNION ALL
        SELECT * FROM (SELECT mid, size FROM messages
          WHERE to_user = ?1 AND mid > ?2 ORDER BY mid LIMIT ?3)
        UNION ALL
        SELECT * FROM (SELECT mid, size FROM messages
          WHERE sender = ?1 AND to_user IS NOT NULL AND to_user != ?1 AND mid > ?2 ORDER BY mid LIMIT ?3)
        UNION
        SELECT * FROM (SELECT mid, size FROM messages
          WHERE target = ?1 AND mid > ?2 ORDER BY mid LIMIT ?3)
      ) ORDER BY mid LIMIT ?3`);
    this.byMids = this.client.prepare("SELECT * FROM messages WHERE mid IN (SELECT value FROM json_each(?))");
    this.findByCid = this.db
      .select({ mid: messages.mid, ts: messages.ts })
      .from(messages)
      .where(and(eq(messages.sender, sql.placeholder("sender")), eq(messages.cid, sql.placeholder("cid"))))
      .prepare();
    this.last = this.db.select({ m: sql<number>`coalesce(max(${messages.mid}), 0)` }).from(messages).get()!.m;
    // The newest messages may have been deleted (retention, an erased account): never reuse their mids.
    const hwm = this.db.select({ v: tcpchatMeta.value }).from(tcpchatMeta).where(eq(tcpchatMeta.key, "last_mid")).get();
    if (hwm && hwm.v > this.last) this.last = hwm.v;
    this.indexed = (this.client.query("SELECT indexed FROM search_state WHERE id = 1").get() as { indexed: number }).indexed;
  }

  async createUser(name: string, passHash: string, now: number): Promise<boolean> {
    return changed(this.db.insert(users).values({ name, passHash, created: now }).onConflictDoNothing().run()) === 1;
  }

  async getUser(name: string): Promise<UserRow | undefined> {
    // An erased account keeps its row (its name stays taken) with an empty hash: it is no user.
    return this.db
      .select({ name: users.name, passHash: users.passHash })
      .from(users)
      .where(and(eq(users.name, name), ne(users.passHash, "")))
      .get();
  }

  async addToken(hash: string, user: string, now: number, expires: number, maxPerUser?: number): Promise<void> {
    this.db.transaction((tx) => {
      tx.insert(tokens).values({ hash, user, created: now, expires }).run();
      if (maxPerUser === undefined) return;
      const n = tx.select({ n: count() }).from(tokens).where(eq(tokens.user, user)).get()!.n;
      if (n <= maxPerUser) return;
      // The oldest first (insertion order among tokens created in the same millisecond).
      tx.run(sql`DELETE FROM ${tokens} WHERE rowid IN
        (SELECT rowid FROM ${tokens} WHERE user = ${user} ORDER BY created, rowid LIMIT ${n - maxPerUser})`);
    });
  }

  async tokenUser(hash: string, now: number): Promise<string | undefined> {
    return this.db
      .select({ user: tokens.user })
      .from(tokens)
      .where(and(eq(tokens.hash, hash), gt(tokens.expires, now)))
      .get()?.user;
  }

  async deleteToken(hash: string): Promise<void> {
    this.db.delete(tokens).where(eq(tokens.hash, hash)).run();
  }

  async deleteUserTokens(user: string): Promise<void> {
    this.db.delete(tokens).where(eq(tokens.user, user)).run();
  }

  async setPassword(user: string, passHash: string): Promise<void> {
    this.db.update(users).set({ passHash }).where(eq(users.name, user)).run();
  }

  async createGroup(name: string, owner: string, now: number): Promise<number> {
    const created = this.db.transaction((tx) => {
      if (changed(tx.insert(groups).values({ name, owner, created: now }).onConflictDoNothing().run()) !== 1)
        return false;
      tx.insert(memberships).values({ grp: name, user: owner, joined: now, role: "owner" }).run();
      this.markJoined(name, owner);
      return true;
    });
    return created ? ++this.seq : 0;
  }

  /** A new member has read everything before their join (PROTOCOL.md §3.6). */
  private markJoined(grp: string, user: string): void {
    this.moveMarker.get(user, groupConv(grp), this.last);
  }

  async getGroup(name: string): Promise<GroupRow | undefined> {
    const r = this.db.select(GROUP_COLUMNS).from(groups).where(eq(groups.name, name)).get();
    return r && groupRow(r);
  }

  groupOp(op: GroupOp, now: number): Promise<GroupOpResult> {
    try {
      const r = this.db.transaction(() => this.groupOpNow(op, now));
      if (r.seq > 0) this.seq = r.seq;
      return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** groupOp inside its transaction: read the facts, decide (src/store/groups.ts), apply, log. */
  private groupOpNow(op: GroupOp, now: number): GroupOpResult {
    const g = this.client.query("SELECT owner, public, topic, description FROM groups WHERE name = ?").get(op.group) as
      | { owner: string; public: number; topic: string; description: string }
      | null;
    const memberOf = (user: string): MemberFacts | undefined => {
      const m = this.client.query("SELECT role, muted FROM memberships WHERE grp = ? AND user = ?").get(op.group, user) as
        | { role: string; muted: number | null }
        | null;
      return m ? { role: m.role as Role, muted: m.muted ?? 0 } : undefined;
    };
    const has = (table: string) =>
      this.client.query(`SELECT 1 FROM ${table} WHERE grp = ? AND user = ?`).get(op.group, op.target) !== null;
    const target = memberOf(op.target);
    const d = decide(op, {
      group: g ? { owner: g.owner, public: g.public !== 0, topic: g.topic, description: g.description } : undefined,
      actor: op.by === op.target ? target : memberOf(op.by),
      target,
      banned: has("group_bans"),
      invited: has("invites"),
      members: g ? (this.client.query("SELECT count(*) AS n FROM memberships WHERE grp = ?").get(op.group) as { n: number }).n : 0,
      now,
    });
    if (d === "noop") return { seq: 0 };
    if (d !== "apply") return { seq: 0, refused: d };
    const grp = op.group;
    const run = (q: string, ...params: Array<string | number | null>) => this.client.query(q).run(...params);
    for (const e of effectsOf(op)) {
      switch (e.t) {
        case "group":
          run(
            "INSERT INTO groups (name, owner, created, public, topic, description) VALUES (?, ?, ?, ?, ?, ?)",
            grp,
            e.owner,
            now,
            e.settings.public === false ? 0 : 1,
            e.settings.topic ?? "",
            e.settings.description ?? "",
          );
          break;
        case "member":
          run("INSERT INTO memberships (grp, user, joined, role) VALUES (?, ?, ?, ?)", grp, e.user, now, e.role);
          run("DELETE FROM invites WHERE grp = ? AND user = ?", grp, e.user);
          this.markJoined(grp, e.user);
          break;
        case "unmember":
          run("DELETE FROM memberships WHERE grp = ? AND user = ?", grp, e.user);
          break;
        case "invite":
          run("INSERT INTO invites (grp, user, by, at) VALUES (?, ?, ?, ?)", grp, e.user, e.by, now);
          break;
        case "uninvite":
          run("DELETE FROM invites WHERE grp = ? AND user = ?", grp, e.user);
          break;
        case "ban":
          run("INSERT OR IGNORE INTO group_bans (grp, user, by, at) VALUES (?, ?, ?, ?)", grp, e.user, e.by, now);
          break;
        case "unban":
          run("DELETE FROM group_bans WHERE grp = ? AND user = ?", grp, e.user);
          break;
        case "mute":
          run("UPDATE memberships SET muted = ? WHERE grp = ? AND user = ?", e.until || null, grp, e.user);
          break;
        case "role":
          run("UPDATE memberships SET role = ? WHERE grp = ? AND user = ?", e.role, grp, e.user);
          break;
        case "owner":
          run("UPDATE groups SET owner = ? WHERE name = ?", e.user, grp);
          break;
        case "settings":
          if (e.settings.public !== undefined) run("UPDATE groups SET public = ? WHERE name = ?", e.settings.public ? 1 : 0, grp);
          if (e.settings.topic !== undefined) run("UPDATE groups SET topic = ? WHERE name = ?", e.settings.topic, grp);
          if (e.settings.description !== undefined) run("UPDATE groups SET description = ? WHERE name = ?", e.settings.description, grp);
          break;
      }
    }
    const mid = this.last + 1;
    const entry = groupEntry(op);
    run(
      "INSERT INTO messages (mid, ts, sender, grp, conv, text, size, kind, target, until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      mid,
      now,
      op.by,
      grp,
      groupConv(grp),
      entry.text ?? null,
      messageSize(entry),
      op.action,
      op.target,
      entry.until ?? null,
    );
    this.last = mid;
    return { seq: this.seq + 1, mid, ts: now, entry: { ...entry, mid, ts: now } };
  }

  async member(grp: string, user: string): Promise<MemberRow | undefined> {
    const m = this.client.query("SELECT user, role, muted FROM memberships WHERE grp = ? AND user = ?").get(grp, user) as
      | { user: string; role: string; muted: number | null }
      | null;
    return m ? { user: m.user, role: m.role as Role, muted: m.muted ?? 0 } : undefined;
  }

  async groupMembers(grp: string): Promise<MemberRow[]> {
    const rows = this.client.query("SELECT user, role, muted FROM memberships WHERE grp = ? ORDER BY user").all(grp) as Array<{
      user: string;
      role: string;
      muted: number | null;
    }>;
    return rows.map((m) => ({ user: m.user, role: m.role as Role, muted: m.muted ?? 0 }));
  }

  async userInvites(user: string): Promise<InviteRow[]> {
    return this.client
      .query("SELECT i.grp AS \"group\", i.by AS by, g.topic AS topic FROM invites i JOIN groups g ON g.name = i.grp WHERE i.user = ? ORDER BY i.grp")
      .all(user) as InviteRow[];
  }

  async standing(grp: string, user: string): Promise<{ banned: boolean; invited: boolean }> {
    const q = (t: string) => this.client.query(`SELECT 1 FROM ${t} WHERE grp = ? AND user = ?`).get(grp, user) !== null;
    return { banned: q("group_bans"), invited: q("invites") };
  }

  async listGroups(q: string | undefined, after: string, limit: number): Promise<DirectoryRow[]> {
    const like = q === undefined ? "%" : likePattern(q);
    return this.client
      .query(`SELECT g.name, g.topic, (SELECT count(*) FROM memberships m WHERE m.grp = g.name) AS members
        FROM groups g WHERE g.public = 1 AND g.name > ? AND g.name LIKE ? ESCAPE '\\' ORDER BY g.name LIMIT ?`)
      .all(after, like, limit) as DirectoryRow[];
  }

  async setBlock(user: string, other: string, blocked: boolean, now: number): Promise<boolean> {
    if (blocked) return changed(this.db.insert(blocks).values({ user, blocked: other, at: now }).onConflictDoNothing().run()) === 1;
    return changed(this.db.delete(blocks).where(and(eq(blocks.user, user), eq(blocks.blocked, other))).run()) === 1;
  }

  async blocked(user: string): Promise<string[]> {
    return this.db.select({ b: blocks.blocked }).from(blocks).where(eq(blocks.user, user)).orderBy(asc(blocks.blocked)).all().map((r) => r.b);
  }

  async setDmPolicy(user: string, policy: DmPolicy): Promise<void> {
    this.db.update(users).set({ dmPolicy: policy }).where(eq(users.name, user)).run();
  }

  async dmPolicy(user: string): Promise<DmPolicy> {
    return (this.db.select({ p: users.dmPolicy }).from(users).where(eq(users.name, user)).get()?.p ?? "anyone") as DmPolicy;
  }

  async dmAllowed(from: string, to: string): Promise<boolean> {
    if (from === to) return true;
    const r = this.dmCheck.get(to, from);
    return r !== null && r.ok === 1;
  }

  async addMember(grp: string, user: string, now: number): Promise<number> {
    const added = this.db.transaction((tx) => {
      if (changed(tx.insert(memberships).values({ grp, user, joined: now }).onConflictDoNothing().run()) !== 1) return false;
      this.markJoined(grp, user);
      return true;
    });
    return added ? ++this.seq : 0;
  }

  async removeMember(grp: string, user: string): Promise<number> {
    const r = this.db
      .delete(memberships)
      .where(and(eq(memberships.grp, grp), eq(memberships.user, user)))
      .run();
    return changed(r) === 1 ? ++this.seq : 0;
  }

  async groupsCreatedBy(owner: string): Promise<number> {
    return this.db.select({ n: count() }).from(groups).where(eq(groups.owner, owner)).get()!.n;
  }

  async groupCount(user: string): Promise<number> {
    return this.db.select({ n: count() }).from(memberships).where(eq(memberships.user, user)).get()!.n;
  }

  async allMemberships(): Promise<MembershipRow[]> {
    return this.db
      .select({ grp: memberships.grp, user: memberships.user, muted: memberships.muted })
      .from(memberships)
      .all()
      .map((m) => ({ grp: m.grp, user: m.user, muted: m.muted ?? 0 }));
  }

  async userGroups(user: string): Promise<UserGroupRow[]> {
    return this.db
      .select({ ...GROUP_COLUMNS, role: memberships.role })
      .from(memberships)
      .innerJoin(groups, eq(groups.name, memberships.grp))
      .where(eq(memberships.user, user))
      .orderBy(asc(groups.name))
      .all()
      .map((r) => ({ ...groupRow(r), role: r.role as Role }));
  }

  async lastMid(): Promise<number> {
    return this.last;
  }

  async position(): Promise<Position> {
    return { seq: this.seq, mid: this.last };
  }

  async entryAt(conv: string, mid: number): Promise<EntryInfo | undefined> {
    const r = this.entryAtStmt.get(conv, mid);
    if (!r) return undefined;
    const info: EntryInfo = { sender: r.sender, deleted: r.deleted !== null };
    if (r.kind !== null) info.kind = r.kind as EntryKind;
    return info;
  }

  async readMarker(user: string, conv: string): Promise<number> {
    return this.markerStmt.get(user, conv)?.mid ?? 0;
  }

  async convs(user: string): Promise<ConvState[]> {
    const rows = this.convsStmt.all(user);
    const mids = rows.filter((r) => r.pmid !== null).map((r) => r.pmid!);
    const previews = new Map(
      mids.length === 0 ? [] : this.previewsStmt.all(JSON.stringify(mids)).map((p) => [p.mid, p] as const),
    );
    return rows.map((r) => {
      const s: ConvState = { conv: r.conv, last: r.last, read: r.read, unread: r.unread, mentions: r.mentions };
      if (r.grp !== null) s.grp = r.grp;
      if (r.peer !== null) s.peer = r.peer;
      const p = r.pmid === null ? undefined : previews.get(r.pmid);
      if (p) {
        s.preview = { mid: p.mid, ts: p.ts, sender: p.sender };
        if (p.text !== null) s.preview.text = p.text;
        if (p.file_name !== null) s.preview.file = { name: p.file_name, type: p.file_type ?? "", size: p.file_size ?? 0 };
      }
      return s;
    });
  }

  async search(user: string, q: string, before: number, limit: number): Promise<MidSize[]> {
    await this.indexSearch();
    const trigrams = [...q].length >= 3;
    // The index finds candidates (FTS5 folds case beyond ASCII; LIKE is only a first cut): each is
    // checked with matchesQuery, so every store finds the same messages.
    const key = trigrams ? `"${q.replace(/"/g, '""')}"` : likePattern(q);
    const stmt = trigrams ? this.ftsSearch : this.likeSearch;
    const out: MidSize[] = [];
    const chunk = Math.max(limit, 64);
    for (let bound = before; out.length < limit; ) {
      const rows = stmt.all(key, bound, user, chunk);
      for (const r of rows) {
        if (r.text !== null && matchesQuery(r.text, q)) out.push({ mid: r.mid, size: r.size });
        if (out.length === limit) break;
      }
      if (rows.length < chunk) break;
      bound = rows[rows.length - 1]!.mid;
    }
    return out;
  }

  /**
   * Indexes what was stored since the last time (a search, or the housekeeping): INDEX_CHUNK
   * messages per transaction, yielding to the event loop between them, so that a large backlog
   * (the first search after an upgrade, say) does not stall the server. One indexer at a time.
   */
  private async indexSearch(): Promise<void> {
    while (this.indexing) await this.indexing;
    if (this.indexed >= this.last) return;
    const run = this.runIndexer();
    this.indexing = run;
    try {
      await run;
    } finally {
      if (this.indexing === run) this.indexing = undefined;
    }
  }

  private async runIndexer(): Promise<void> {
    while (this.indexed < this.last) {
      const upto = Math.min(this.last, this.indexed + INDEX_CHUNK);
      this.client.transaction(() => {
        this.ftsFill.run(this.indexed, upto);
        this.setIndexed.run(upto);
      })();
      this.indexed = upto;
      if (this.indexed < this.last) await new Promise<void>((r) => setImmediate(r));
    }
  }

  commit(batch: NewMessage[], now: number): Promise<Committed> {
    // Not an async function: the hot path runs as a plain call, its result wrapped once.
    try {
      const erased = { any: false };
      const results = this.commitNow(batch, now, erased);
      // One process holds the database (lockDatabase in sqlite-wal.ts): the sequence is counted here.
      if (batch.length > 0) this.seq++;
      // A delete zeroed the message's bytes in the pages (secure_delete); the WAL still holds the
      // pages as they were when the message was written: copy it into the file and truncate it.
      const committed = { seq: this.seq, results };
      if (erased.any) return this.truncateWal().then(() => committed);
      return Promise.resolve(committed);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private commitNow(batch: NewMessage[], now: number, erased: { any: boolean }): CommitResult[] {
    const start = this.last;
    const newPairs: string[] = [];
    try {
      const results = this.db.transaction(() => {
        const out: CommitResult[] = [];
        for (const m of batch) {
          const mid = this.last + 1;
          if (m.kind !== undefined) {
            out.push(this.commitEntry(m, mid, now, erased));
            continue;
          }
          const conv = m.grp !== undefined ? groupConv(m.grp) : dmConv(m.sender, m.toUser!);
          // A file: the sender's finished upload holds it, used up by this message (PROTOCOL.md §3.9).
          let file: { file: number; size: number; sha256: string } | undefined;
          if (m.file?.upload !== undefined) {
            const prior = m.cid !== undefined ? this.findByCid.get({ sender: m.sender, cid: m.cid }) : undefined;
            if (prior) {
              out.push({ mid: prior.mid, ts: prior.ts, duplicate: true });
              continue;
            }
            file = this.files.take(m.file.upload, m.sender);
            if (!file) {
              out.push({ mid: 0, ts: now, duplicate: false, refused: true });
              continue;
            }
          }
          const r =
            m.file === undefined && m.ref === undefined
              ? this.insertText.run(mid, now, m.sender, m.grp ?? null, m.toUser ?? null, conv, m.cid ?? null, m.text ?? null, messageSize(m))
              : this.insertMessage.run(
                  mid,
                  now,
                  m.sender,
                  m.grp ?? null,
                  m.toUser ?? null,
                  conv,
                  m.cid ?? null,
                  m.text ?? null,
                  m.file?.name ?? null,
                  m.file?.type ?? null,
                  file?.file ?? null,
                  file?.size ?? null,
                  file?.sha256 ?? null,
                  messageSize(m),
                  null,
                  m.ref ?? null,
                  null,
                );
          if (r.changes === 1) {
            this.last = mid;
            out.push({ mid, ts: now, duplicate: false });
            // A group message's mentions; a direct conversation's first message.
            if (m.grp !== undefined) {
              if (m.text !== undefined && m.text.includes("@"))
                for (const u of mentionsOf(m.text, m.sender)) this.addMention.run(u, conv, mid);
            } else if (!this.knownPairs.has(conv)) {
              this.addPeer.run(m.sender, m.toUser!, conv);
              this.addPeer.run(m.toUser!, m.sender, conv);
              newPairs.push(conv);
            }
          } else {
            // ON CONFLICT DO NOTHING: (sender, cid) is stored already, maybe earlier in this batch.
            const prior = this.findByCid.get({ sender: m.sender, cid: m.cid ?? null });
            // No prior: the conflict was on mid, so another process has written to this database.
            if (!prior) throw new Error(`mid ${mid} is taken: is another server using this database file?`);
            out.push({ mid: prior.mid, ts: prior.ts, duplicate: true });
          }
        }
        return out;
      });
      if (this.knownPairs.size + newPairs.length > KNOWN_PAIRS_MAX) this.knownPairs.clear();
      for (const c of newPairs) this.knownPairs.add(c);
      return results;
    } catch (e) {
      this.last = start; // rolled back: the mids are free again
      throw e;
    }
  }

  /**
   * An entry other than a message, inside commit's transaction: stored as `mid` with what it
   * changes, or refused (an edit, delete or reaction of a message that is not there, or deleted).
   */
  private commitEntry(m: NewMessage, mid: number, now: number, erased: { any: boolean }): CommitResult {
    const p = placement(m);
    let ref = m.ref!;
    if (m.kind === "read") ref = Math.min(ref, mid - 1);
    else {
      const t = this.entryAtStmt.get(p.conv, ref);
      if (!t || t.kind !== null || t.deleted !== null) return { mid: 0, ts: now, duplicate: false, refused: true };
    }
    this.insertMessage.run(
      mid,
      now,
      m.sender,
      p.grp,
      p.toUser,
      p.conv,
      m.cid ?? null,
      m.text ?? null,
      null,
      null,
      null,
      null,
      null,
      messageSize(m),
      m.kind!,
      ref,
      p.about,
    );
    this.last = mid;
    const result: CommitResult = { mid, ts: now, duplicate: false };
    // An indexed message's text is in the search index: replaced, or taken out, with it.
    const indexed = (m.kind === "edit" || m.kind === "delete") && ref <= this.indexed ? this.textOf.get(ref)?.text : null;
    if (indexed != null) this.ftsRemove.run(ref, indexed);
    switch (m.kind) {
      case "edit":
        if (ref <= this.indexed) this.ftsAdd.run(ref, m.text!); // also a file's first caption
        this.editTarget.run(m.text!, now, Buffer.byteLength(m.text!), ref);
        if (m.grp !== undefined) {
          this.dropMentions.run(ref);
          for (const u of mentionsOf(m.text, m.sender)) this.addMention.run(u, p.conv, ref);
        }
        break;
      case "delete": {
        const held = this.files.filesOf("mid = ?", ref);
        this.deleteTarget.run(now, ref);
        this.files.dropUnused(held);
        this.eraseEdits.run(ref);
        this.dropReactions.run(ref);
        this.dropMentions.run(ref);
        erased.any = true;
        break;
      }
      case "react":
        this.addReaction.run(ref, m.sender, m.text!, mid);
        break;
      case "unreact":
        this.removeReaction.run(ref, m.sender, m.text!);
        break;
      case "read":
        result.read = this.moveMarker.get(m.sender, p.about!, ref)!.mid;
        break;
    }
    return result;
  }

  async history(conv: string, page: Page): Promise<StoredMessage[]> {
    return this.messagesByMid((await this.historySizes(conv, page)).map((r) => r.mid));
  }

  async sync(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    return this.messagesByMid((await this.syncSizes(user, after, limit)).map((r) => r.mid));
  }

  async historySizes(conv: string, page: Page): Promise<MidSize[]> {
    const after = page.after ?? 0;
    const before = page.before ?? NO_BOUND;
    if (page.after !== undefined) return this.sizesForward.all(conv, after, before, page.limit);
    return this.sizesBackward.all(conv, after, before, page.limit).reverse();
  }

  async syncSizes(user: string, after: number, limit: number): Promise<MidSize[]> {
    return this.sizesSync.all(user, after, limit);
  }

  async messagesByMid(mids: readonly number[]): Promise<StoredMessage[]> {
    if (mids.length === 0) return [];
    const list = JSON.stringify(mids);
    const rows = this.byMids.all(list).map((r) => toStored(mapRawRow(r)));
    const reactions = groupReactions(this.reactionsStmt.all(list));
    for (const m of rows) {
      const rs = m.kind === undefined ? reactions.get(m.mid) : undefined;
      if (rs) m.reactions = rs;
    }
    return rows.sort((a, b) => a.mid - b.mid);
  }

  // ---- files (PROTOCOL.md §3.9; sqlite-files.ts) ---------------------------------

  async createUpload(id: string, user: string, size: number, sha256: string, now: number): Promise<UploadRow> {
    return this.files.createUpload(id, user, size, sha256, now);
  }

  async getUpload(id: string): Promise<UploadRow | undefined> {
    return this.files.getUpload(id);
  }

  async findUpload(user: string, sha256: string, size: number): Promise<UploadRow | undefined> {
    return this.files.findUpload(user, sha256, size);
  }

  async fileUsage(user: string): Promise<FileUsage> {
    return this.files.fileUsage(user);
  }

  async appendUpload(id: string, offset: number, data: Uint8Array, now: number): Promise<number | undefined> {
    return this.files.appendUpload(id, offset, data, now);
  }

  async finishUpload(id: string, now: number): Promise<UploadRow> {
    return this.files.finishUpload(id, now);
  }

  async resetUpload(id: string, now: number): Promise<void> {
    this.files.resetUpload(id, now);
    // The dropped bytes are zeroed in the pages (secure_delete); the WAL's copies go too.
    await this.truncateWal();
  }

  async readFile(file: number, offset: number, len: number): Promise<Uint8Array> {
    return this.files.readFile(file, offset, len);
  }

  async messageFile(mid: number): Promise<MessageFile | undefined> {
    return this.files.messageFile(mid);
  }

  async expireUploads(before: number): Promise<number> {
    return this.files.expireUploads(before);
  }

  // ---- operations ---------------------------------------------------------------

  async ban(user: string, reason: string, now: number): Promise<void> {
    this.db
      .insert(bans)
      .values({ user, reason, at: now })
      .onConflictDoUpdate({ target: bans.user, set: { reason, at: now } })
      .run();
  }

  async unban(user: string): Promise<boolean> {
    return changed(this.db.delete(bans).where(eq(bans.user, user)).run()) === 1;
  }

  async banned(user: string): Promise<boolean> {
    return this.db.select({ u: bans.user }).from(bans).where(eq(bans.user, user)).get() !== undefined;
  }

  async bans(): Promise<BanRow[]> {
    return this.db.select().from(bans).orderBy(asc(bans.user)).all();
  }

  /** Records the highest mid given before messages are deleted (the constructor reads it back). */
  private keepHighWater(): void {
    this.db
      .insert(tcpchatMeta)
      .values({ key: "last_mid", value: this.last })
      .onConflictDoUpdate({ target: tcpchatMeta.key, set: { value: sql`max(${tcpchatMeta.value}, excluded.value)` } })
      .run();
  }

  /**
   * Deletes the rows of messages that `where` (SQL over messages, parameters `params`) picks,
   * with what hangs on them: their search index entries, reactions and mentions. In a transaction.
   */
  private deleteMessages(where: string, ...params: Array<string | number>): number {
    // The edits, deletions and reactions about them go with them (from anyone).
    const mids = this.client.prepare(`SELECT mid FROM messages WHERE ${where}`).all(...params) as Array<{ mid: number }>;
    if (mids.length === 0) return 0;
    const list = JSON.stringify(mids.map((m) => m.mid));
    const about = this.client
      .prepare(
        `SELECT mid FROM messages WHERE ${ABOUT_KINDS} AND ref IN (SELECT value FROM json_each(?))`,
      )
      .all(list) as Array<{ mid: number }>;
    const n = this.deleteMids(list);
    if (about.length > 0) this.deleteMids(JSON.stringify(about.map((m) => m.mid)));
    return n;
  }

  /** Deletes the messages whose mids are in the JSON array `list`, with their index entries, reactions and mentions. */
  private deleteMids(list: string): number {
    const where = "mid IN (SELECT value FROM json_each(?))";
    const params = [list];
    // An external-content index is told the text it holds to take it out.
    this.client
      .prepare(
        `INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', mid, text FROM messages
          WHERE (${where}) AND mid <= ${this.indexed} AND kind IS NULL AND deleted IS NULL AND text IS NOT NULL`,
      )
      .run(...params);
    this.client.prepare(`DELETE FROM reactions WHERE mid IN (SELECT mid FROM messages WHERE ${where})`).run(...params);
    this.client.prepare(`DELETE FROM mentions WHERE mid IN (SELECT mid FROM messages WHERE ${where})`).run(...params);
    const held = this.files.filesOf(where, ...params);
    const n = this.client.prepare(`DELETE FROM messages WHERE ${where}`).run(...params).changes;
    this.files.dropUnused(held);
    return n;
  }

  async eraseUser(user: string): Promise<number> {
    await this.indexSearch(); // no indexer runs between the deletes below
    const n = this.db.transaction(() => {
      this.keepHighWater();
      const n = this.deleteMessages("sender = ?", user);
      this.files.dropUploadsOf(user); // the files it had not sent
      // What the user left on others' messages, and their own conversation state.
      this.client.prepare("DELETE FROM reactions WHERE user = ?").run(user);
      this.client.prepare("DELETE FROM mentions WHERE user = ?").run(user);
      this.client.prepare("DELETE FROM reads WHERE user = ?").run(user);
      this.client.prepare("DELETE FROM dm_peers WHERE user = ?").run(user);
      this.client.prepare("DELETE FROM invites WHERE user = ?").run(user);
      this.client.prepare("DELETE FROM blocks WHERE user = ?1 OR blocked = ?1").run(user);
      this.db.delete(tokens).where(eq(tokens.user, user)).run();
      this.db.update(users).set({ passHash: "" }).where(eq(users.name, user)).run();
      return n;
    });
    this.knownPairs.clear();
    await this.truncateWal();
    return n;
  }

  async deleteGroup(name: string): Promise<number> {
    await this.indexSearch();
    const n = this.db.transaction(() => {
      this.keepHighWater();
      const conv = `g:${name}`;
      const n = this.deleteMessages("conv = ?", conv);
      this.client.prepare("DELETE FROM reads WHERE conv = ?").run(conv);
      this.client.prepare("DELETE FROM mentions WHERE conv = ?").run(conv);
      this.db.delete(memberships).where(eq(memberships.grp, name)).run();
      this.db.delete(invites).where(eq(invites.grp, name)).run();
      this.db.delete(groupBans).where(eq(groupBans.grp, name)).run();
      this.db.delete(groups).where(eq(groups.name, name)).run();
      return n;
    });
    await this.truncateWal();
    return n;
  }

  async userMessages(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    const rows = this.client
      .query("SELECT * FROM messages WHERE (sender = ?1 OR to_user = ?1) AND mid > ?2 ORDER BY mid LIMIT ?3")
      .all(user, after, limit) as Array<Record<string, unknown>>;
    return rows.map((r) => toStored(mapRawRow(r)));
  }

  async purge(before: number, limit: number): Promise<number> {
    await this.indexSearch();
    // The oldest `limit` rows by mid (a range of the primary key), those of them older than
    // `before`: mids are given in commit order, and a message's ts is its commit time.
    return this.db.transaction(() => {
      this.keepHighWater();
      return this.deleteMessages("mid IN (SELECT mid FROM messages ORDER BY mid LIMIT ?) AND ts < ?", limit, before);
    });
  }

  async backup(path: string): Promise<void> {
    // On the server's own connection (the one that writes): a consistent snapshot,
    // taken between two commits. The file is created 0600 first (VACUUM INTO takes an empty file).
    createPrivate(path);
    this.client.prepare("VACUUM INTO ?").run(path);
  }

  async maintain(now: number): Promise<void> {
    await this.indexSearch();
    this.db.delete(tokens).where(lte(tokens.expires, now)).run();
    if (this.walPath === undefined) return;
    let walSize = 0;
    try {
      walSize = statSync(this.walPath).size;
    } catch {
      return; // no WAL file (yet)
    }
    // journal_size_limit cuts the WAL back only when a later write starts it over (and then to
    // the limit itself: the search indexing above may just have done so); after a burst followed
    // by silence, this gives the space back.
    if (walSize >= WAL_LIMIT) await this.truncateWal();
  }

  /**
   * Copies the whole WAL into the database file and truncates it (after a deletion: the WAL
   * holds the pages as they were). SQLite answers busy at once, without waiting, while another
   * connection checkpoints: the checkpointer's (sqlite-wal.ts) is waited out, a few ms at a time.
   */
  private async truncateWal(): Promise<void> {
    if (this.walPath === undefined) return;
    const deadline = performance.now() + 30_000;
    for (;;) {
      const r = this.client.query("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number } | null;
      if (!r || r.busy === 0 || performance.now() > deadline) return;
      await Bun.sleep(2);
    }
  }

  async close(): Promise<void> {
    // The checkpointer's connection first: the server's, closed last, checkpoints what is left
    // and removes the WAL. close(true) closes now (finalizing statements) instead of deferring.
    await this.checkpointer?.close();
    this.client.close(true);
    this.lock?.close();
  }
}

/** Raw `db.all` rows carry column names (snake_case); map them to the drizzle field names. */
function mapRawRow(r: Record<string, unknown> | MessageRow): MessageRow {
  const x = r as Record<string, unknown>;
  return {
    mid: x.mid as number,
    ts: x.ts as number,
    sender: x.sender as string,
    grp: (x.grp ?? null) as string | null,
    toUser: (x.to_user ?? null) as string | null,
    conv: x.conv as string,
    cid: (x.cid ?? null) as string | null,
    text: (x.text ?? null) as string | null,
    fileName: (x.file_name ?? null) as string | null,
    fileType: (x.file_type ?? null) as string | null,
    fileData: (x.file_data ?? null) as Buffer | null,
    fileId: (x.file_id ?? null) as number | null,
    fileSize: (x.file_size ?? null) as number | null,
    fileSha: (x.file_sha ?? null) as string | null,
    size: x.size as number,
    kind: (x.kind ?? null) as string | null,
    ref: (x.ref ?? null) as number | null,
    about: (x.about ?? null) as string | null,
    edited: (x.edited ?? null) as number | null,
    deleted: (x.deleted ?? null) as number | null,
    target: (x.target ?? null) as string | null,
    until: (x.until ?? null) as number | null,
  };
}
