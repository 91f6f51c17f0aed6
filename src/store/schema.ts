// The SQLite schema (drizzle). Names are immutable identifiers (PROTOCOL.md §2.1),
// so users and groups are keyed by name and messages keep the names they were sent with.
import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const users = sqliteTable("users", {
  name: text("name").primaryKey(),
  passHash: text("pass_hash").notNull(),
  created: integer("created").notNull(),
  /** Who may send this user direct messages (DmPolicy in store.ts): anyone, groups (who shares a group), nobody. */
  dmPolicy: text("dm_policy").notNull().default("anyone"),
});

/** Login tokens, stored only as SHA-256 hashes: a stolen database yields no usable token. */
export const tokens = sqliteTable(
  "tokens",
  {
    hash: text("hash").primaryKey(),
    user: text("user")
      .notNull()
      .references(() => users.name),
    created: integer("created").notNull(),
    expires: integer("expires").notNull(),
  },
  // tokens_expires: the periodic purge of expired tokens (Store.maintain) reads only what it deletes
  (t) => [index("tokens_user").on(t.user), index("tokens_expires").on(t.expires)],
);

export const groups = sqliteTable(
  "groups",
  {
    name: text("name").primaryKey(),
    owner: text("owner")
      .notNull()
      .references(() => users.name),
    created: integer("created").notNull(),
    /** 1: anyone may join (and find it with `list`); 0: private, joined by invitation only. */
    public: integer("public").notNull().default(1),
    topic: text("topic").notNull().default(""),
    description: text("description").notNull().default(""),
  },
  // groups_owner: counting the groups a user created (join's --max-groups-created)
  (t) => [index("groups_owner").on(t.owner)],
);

export const memberships = sqliteTable(
  "memberships",
  {
    grp: text("grp")
      .notNull()
      .references(() => groups.name),
    user: text("user")
      .notNull()
      .references(() => users.name),
    joined: integer("joined").notNull(),
    /** "owner" (the one groups.owner names), "admin" or "member" (Role in store.ts). */
    role: text("role").notNull().default("member"),
    /** Muted until this time (ms); NULL: not muted. */
    muted: integer("muted"),
  },
  (t) => [primaryKey({ columns: [t.grp, t.user] }), index("memberships_user").on(t.user)],
);

/** Who may not join a group (a group's ban, PROTOCOL.md §3.3): until an admin lifts it. */
export const groupBans = sqliteTable(
  "group_bans",
  {
    grp: text("grp").notNull(),
    user: text("user").notNull(),
    by: text("by").notNull(),
    at: integer("at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.grp, t.user] })],
);

/** Open invitations: the invitee may join the group (private ones too); joining uses it up. */
export const invites = sqliteTable(
  "invites",
  {
    grp: text("grp").notNull(),
    user: text("user").notNull(),
    by: text("by").notNull(),
    at: integer("at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.grp, t.user] }), index("invites_user").on(t.user)],
);

/** `user` blocked `blocked`: no direct messages from them (PROTOCOL.md §3.8). */
export const blocks = sqliteTable(
  "blocks",
  {
    user: text("user").notNull(),
    blocked: text("blocked").notNull(),
    at: integer("at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.blocked] })],
);

/**
 * The entries about a message (edit, delete, react, unreact), as index messages_about's WHERE:
 * a query holding this expression, as written, can use that index (sqlite.ts).
 */
export const ABOUT_KINDS = `("messages"."kind" = 'edit' OR "messages"."kind" = 'delete' OR "messages"."kind" = 'react' OR "messages"."kind" = 'unreact')`;

export const messages = sqliteTable(
  "messages",
  {
    /** The server-assigned `mid`: strictly increasing, assigned by the store at commit. */
    mid: integer("mid").primaryKey(),
    ts: integer("ts").notNull(),
    sender: text("sender").notNull(),
    /** Set for a group message. */
    grp: text("grp"),
    /** Set for a direct message: its addressee. */
    toUser: text("to_user"),
    /** Conversation key: "g:<group>" or "d:<a>:<b>" with a <= b, for history paging. */
    conv: text("conv").notNull(),
    cid: text("cid"),
    text: text("text"),
    fileName: text("file_name"),
    fileType: text("file_type"),
    /** Before files were stored apart (PROTOCOL.md §3.9): a file's bytes. Moved into `files` at open; NULL since. */
    fileData: blob("file_data", { mode: "buffer" }),
    /** A message's file: its stored bytes (files.id), their number and SHA-256 (hex). */
    fileId: integer("file_id"),
    fileSize: integer("file_size"),
    fileSha: text("file_sha"),
    /**
     * The message's approximate size on the wire (messageSize in store.ts), so history, sync
     * and the catch-up replay fill a page by bytes from the indexes below without reading
     * any message body. It is in every index they scan, which makes those scans index-only:
     * a row's blob is read only for a message that goes on the page.
     */
    size: integer("size").notNull().default(0),
    /**
     * NULL: a chat message. Otherwise the entry's kind (EntryKind in store.ts: edit, delete,
     * react, unreact, read, and the group changes: create, join, leave, invite...): every change to a conversation is an entry of this one log.
     */
    kind: text("kind"),
    /** A message: the mid it replies to. Another entry: the mid it is about. */
    ref: integer("ref"),
    /** A `read` (stored in conv "r:<sender>"): the conversation whose marker it moves. */
    about: text("about"),
    /** A message: when its text was last edited. */
    edited: integer("edited"),
    /** A message: when it was deleted (its text and file are erased). */
    deleted: integer("deleted"),
    /** A group change (join, kick, ban...): the user it is about. sync gives it to them, member or not. */
    target: text("target"),
    /** A `mute`: until when (ms). */
    until: integer("until"),
  },
  (t) => [
    // History by conversation; also, index-only, unread counts, previews and entryAt (sender,
    // kind and deleted are here, so no row, whose later columns sit behind a file's overflow
    // pages, is read for them).
    index("messages_conv").on(t.conv, t.mid, t.size, t.sender, t.kind, t.deleted),
    // The edits of a message, whose text a delete erases too.
    index("messages_edits")
      .on(t.ref)
      .where(sql`${t.kind} = 'edit'`),
    // The entries about a message, deleted with it (retention, an erased account). ORs, not
    // IN: SQLite evaluates a partial index's WHERE at every insert, and an IN list there builds
    // a temporary table each time, which cost a send 3 us (a third of its commit; migration
    // 0007). A query uses the index when it holds the same expression: ABOUT_KINDS.
    index("messages_about")
      .on(t.ref)
      .where(sql.raw(ABOUT_KINDS)),
    // sync: the group changes about a user, also of groups they are no longer in.
    index("messages_target")
      .on(t.target, t.mid, t.size)
      .where(sql`${t.target} IS NOT NULL`),
    // The messages holding a file (whether a file is still used), and a user's (--file-quota).
    index("messages_file")
      .on(t.fileId)
      .where(sql`${t.fileId} IS NOT NULL`),
    index("messages_sender_file")
      .on(t.sender, t.fileSize)
      .where(sql`${t.fileId} IS NOT NULL`),
    // A sender's cids are unique (PROTOCOL.md §3.4). The cid comes first: the client library's
    // cids begin with the time (src/client/cid.ts), so every sender's new cid goes at the end
    // of the index, the same few pages for a whole batch; ordered by sender first, a batch from
    // 1000 senders changed 1000 pages (docs/BUN.md, "SQLite: costs of a message's commit").
    uniqueIndex("messages_cid_sender")
      .on(t.cid, t.sender)
      .where(sql`${t.cid} IS NOT NULL`),
    // sync: direct messages to and from a user, by mid
    index("messages_dm_to")
      .on(t.toUser, t.mid, t.size)
      .where(sql`${t.toUser} IS NOT NULL`),
    // to_user too, so that leaving out DMs to oneself (counted by messages_dm_to) reads no row
    index("messages_dm_from")
      .on(t.sender, t.mid, t.size, t.toUser)
      .where(sql`${t.toUser} IS NOT NULL`),
  ],
);

/**
 * Users an operator banned (`tcpchat admin ban`): their logins are refused on every node.
 * A deleted account is banned too, with reason "deleted" (its name stays taken).
 */
export const bans = sqliteTable("bans", {
  user: text("user").primaryKey(),
  reason: text("reason").notNull().default(""),
  at: integer("at").notNull(),
});

/**
 * Store-wide values. `last_mid`: the highest mid ever given, written before messages are
 * deleted (retention, an erased account), so that a restart never gives out a mid again
 * when the newest messages are gone (the store otherwise starts from max(mid)).
 */
export const tcpchatMeta = sqliteTable("tcpchat_meta", {
  key: text("key").primaryKey(),
  value: integer("value").notNull(),
});

/** A user's read marker per conversation: it only moves forward (PROTOCOL.md §3.6). */
export const reads = sqliteTable(
  "reads",
  {
    user: text("user").notNull(),
    conv: text("conv").notNull(),
    mid: integer("mid").notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.conv] })],
);

/** The current reactions: one row per (message, user, emoji); `at` is the mid of the entry that added it. */
export const reactions = sqliteTable(
  "reactions",
  {
    mid: integer("mid").notNull(),
    user: text("user").notNull(),
    emoji: text("emoji").notNull(),
    at: integer("at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.mid, t.user, t.emoji] })],
);

/** Who a group message mentions by `@name` (mentionsOf in store.ts), for unread mention counts. */
export const mentions = sqliteTable(
  "mentions",
  {
    user: text("user").notNull(),
    conv: text("conv").notNull(),
    mid: integer("mid").notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.conv, t.mid] }), index("mentions_mid").on(t.mid)],
);

/**
 * The direct conversations of each user (two rows per pair, one for notes to self), so that
 * `convs` lists them without scanning messages. Written the first time a pair talks (the
 * store remembers the pairs it has written, so a message of a known pair writes nothing).
 */
export const dmPeers = sqliteTable(
  "dm_peers",
  {
    user: text("user").notNull(),
    peer: text("peer").notNull(),
    conv: text("conv").notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.peer] })],
);

/**
 * Search (PROTOCOL.md §3.7): the full-text index `messages_fts` (FTS5, trigram tokenizer, over
 * messages.text; created by hand in migration 0004: drizzle has no virtual tables) holds the
 * current text of every message up to `indexed`. Messages are indexed after they are stored,
 * by the search that needs them or by the store's housekeeping, so a send writes nothing to it;
 * an edit or a delete of an indexed message updates it in its own transaction.
 */
export const searchState = sqliteTable("search_state", {
  id: integer("id").primaryKey(),
  /** Every message with a mid up to this one is in messages_fts (if it has text and is not deleted). */
  indexed: integer("indexed").notNull(),
});

/**
 * Files (PROTOCOL.md §3.9): a file's bytes are stored once per content, apart from the
 * messages that hold them, in chunks read one at a time (a download never loads a whole file).
 * In the database rather than a directory beside it: written and erased in the same
 * transactions as the messages (no file on disk without its row, nor the reverse, after a
 * crash), copied by `backup`, and the same model serves a cluster from Postgres.
 */
export const files = sqliteTable(
  "files",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** SHA-256 of the bytes, hex; checked before `done` is set. */
    sha256: text("sha256").notNull(),
    size: integer("size").notNull(),
    /** 1: complete and checked (the one file of its content); 0: an upload's bytes, arriving. */
    done: integer("done").notNull().default(0),
    created: integer("created").notNull(),
  },
  (t) => [
    uniqueIndex("files_sha256")
      .on(t.sha256)
      .where(sql`${t.done} = 1`),
  ],
);

/** A file's bytes: chunk `off` holds the bytes from that offset on, as they arrived (at most CHUNK_MAX). */
export const fileChunks = sqliteTable(
  "file_chunks",
  {
    file: integer("file").notNull(),
    off: integer("off").notNull(),
    data: blob("data", { mode: "buffer" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.file, t.off] })],
);

/** Uploads not yet sent (PROTOCOL.md §3.9): a user's bytes on their way into `file`. */
export const uploads = sqliteTable(
  "uploads",
  {
    id: text("id").primaryKey(),
    user: text("user").notNull(),
    size: integer("size").notNull(),
    sha256: text("sha256").notNull(),
    received: integer("received").notNull().default(0),
    done: integer("done").notNull().default(0),
    file: integer("file").notNull(),
    touched: integer("touched").notNull(),
  },
  (t) => [index("uploads_user").on(t.user, t.sha256), index("uploads_touched").on(t.touched), index("uploads_file").on(t.file)],
);
