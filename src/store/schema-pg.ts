// The PostgreSQL schema (drizzle), the counterpart of schema.ts for src/store/postgres.ts.
// `npm run db:generate:pg` (drizzle.pg.config.ts) writes its migrations to src/store/migrations-pg/.
//
// Differences from the SQLite schema, and why:
// - Times are bigint milliseconds (mode "number"), like SQLite's integers: no timestamp types.
// - A message's client-given strings (text, cid, file name and type) are stored as their UTF-8
//   bytes (bytea): PostgreSQL's text cannot hold U+0000, which PROTOCOL.md allows in them.
// - Message ids are assigned by the store under the row lock of `tcpchat_seq`, not by a sequence:
//   see tcpchat_seq below.
// - tokens.id: the insertion order SQLite's rowid gives (addToken keeps the newest tokens).
import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  customType,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
} from "drizzle-orm/pg-core";

/** drizzle-orm 0.45.4 has no bytea column. */
export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
});

export const users = pgTable("users", {
  name: text("name").primaryKey(),
  passHash: text("pass_hash").notNull(),
  created: bigint("created", { mode: "number" }).notNull(),
  /** As in schema.ts. */
  dmPolicy: text("dm_policy").notNull().default("anyone"),
});

/** Login tokens, stored only as SHA-256 hashes: a stolen database yields no usable token. */
export const tokens = pgTable(
  "tokens",
  {
    hash: text("hash").primaryKey(),
    user: text("user")
      .notNull()
      .references(() => users.name),
    created: bigint("created", { mode: "number" }).notNull(),
    expires: bigint("expires", { mode: "number" }).notNull(),
    /** Insertion order: among tokens created in the same millisecond, the first added is the oldest. */
    id: bigint("id", { mode: "number" }).generatedAlwaysAsIdentity().notNull(),
  },
  (t) => [index("tokens_user").on(t.user), index("tokens_expires").on(t.expires)],
);

export const groups = pgTable(
  "groups",
  {
    name: text("name").primaryKey(),
    owner: text("owner")
      .notNull()
      .references(() => users.name),
    created: bigint("created", { mode: "number" }).notNull(),
    /** As in schema.ts. Topic and description have no U+0000 (the protocol refuses it there). */
    public: integer("public").notNull().default(1),
    topic: text("topic").notNull().default(""),
    description: text("description").notNull().default(""),
  },
  (t) => [index("groups_owner").on(t.owner)],
);

export const memberships = pgTable(
  "memberships",
  {
    grp: text("grp")
      .notNull()
      .references(() => groups.name),
    user: text("user")
      .notNull()
      .references(() => users.name),
    joined: bigint("joined", { mode: "number" }).notNull(),
    /** As in schema.ts. */
    role: text("role").notNull().default("member"),
    muted: bigint("muted", { mode: "number" }),
  },
  (t) => [primaryKey({ columns: [t.grp, t.user] }), index("memberships_user").on(t.user)],
);

/** As in schema.ts. */
export const groupBans = pgTable(
  "group_bans",
  {
    grp: text("grp").notNull(),
    user: text("user").notNull(),
    by: text("by").notNull(),
    at: bigint("at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.grp, t.user] })],
);

export const invites = pgTable(
  "invites",
  {
    grp: text("grp").notNull(),
    user: text("user").notNull(),
    by: text("by").notNull(),
    at: bigint("at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.grp, t.user] }), index("invites_user").on(t.user)],
);

export const blocks = pgTable(
  "blocks",
  {
    user: text("user").notNull(),
    blocked: text("blocked").notNull(),
    at: bigint("at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.blocked] })],
);

export const messages = pgTable(
  "messages",
  {
    /** The server-assigned `mid`: consecutive and increasing, assigned at commit (src/store/postgres.ts). */
    mid: bigint("mid", { mode: "number" }).primaryKey(),
    ts: bigint("ts", { mode: "number" }).notNull(),
    sender: text("sender").notNull(),
    /** Set for a group message. */
    grp: text("grp"),
    /** Set for a direct message: its addressee. */
    toUser: text("to_user"),
    /** Conversation key: "g:<group>" or "d:<a>:<b>" with a <= b, for history paging. */
    conv: text("conv").notNull(),
    /** UTF-8 bytes of the client's cid (see the note at the top). */
    cid: bytea("cid"),
    /** UTF-8 bytes of the text. */
    text: bytea("text"),
    fileName: bytea("file_name"),
    fileType: bytea("file_type"),
    /** Before files were stored apart (PROTOCOL.md §3.9): a file's bytes. Moved into `files` at open; NULL since. */
    fileData: bytea("file_data"),
    /** As in schema.ts: a message's file (files.id), its size and SHA-256 (hex). */
    fileId: bigint("file_id", { mode: "number" }),
    fileSize: bigint("file_size", { mode: "number" }),
    fileSha: text("file_sha"),
    /** messageSize() in store.ts, in every index that history and sync scan (as in schema.ts). */
    size: integer("size").notNull().default(0),
    /** NULL: a chat message; otherwise the entry's kind (EntryKind in store.ts), as in schema.ts. */
    kind: text("kind"),
    /** A message: the mid it replies to. Another entry: the mid it is about. */
    ref: bigint("ref", { mode: "number" }),
    /** A `read` (stored in conv "r:<sender>"): the conversation whose marker it moves. */
    about: text("about"),
    /** A message: when its text was last edited. */
    edited: bigint("edited", { mode: "number" }),
    /** A message: when it was deleted (its text and file are erased). */
    deleted: bigint("deleted", { mode: "number" }),
    /** As in schema.ts: a group change's user, and a mute's end. */
    target: text("target"),
    until: bigint("until", { mode: "number" }),
  },
  (t) => [
    // As in schema.ts: unread counts, previews and entryAt read this index only.
    index("messages_conv").on(t.conv, t.mid, t.size, t.sender, t.kind, t.deleted),
    index("messages_edits")
      .on(t.ref)
      .where(sql`${t.kind} = 'edit'`),
    index("messages_about")
      .on(t.ref)
      .where(sql`${t.kind} IN ('edit', 'delete', 'react', 'unreact')`),
    index("messages_target")
      .on(t.target, t.mid, t.size)
      .where(sql`${t.target} IS NOT NULL`),
    // As in schema.ts: the messages holding a file, and a user's (--file-quota).
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
    index("messages_dm_from")
      .on(t.sender, t.mid, t.size, t.toUser)
      .where(sql`${t.toUser} IS NOT NULL`),
  ],
);

/** A user's read marker per conversation (as in schema.ts). */
export const reads = pgTable(
  "reads",
  {
    user: text("user").notNull(),
    conv: text("conv").notNull(),
    mid: bigint("mid", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.conv] })],
);

/** The current reactions (as in schema.ts); the emoji is a client string: its UTF-8 bytes. */
export const reactions = pgTable(
  "reactions",
  {
    mid: bigint("mid", { mode: "number" }).notNull(),
    user: text("user").notNull(),
    emoji: bytea("emoji").notNull(),
    at: bigint("at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.mid, t.user, t.emoji] })],
);

/** Who a group message mentions (as in schema.ts). */
export const mentions = pgTable(
  "mentions",
  {
    user: text("user").notNull(),
    conv: text("conv").notNull(),
    mid: bigint("mid", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.conv, t.mid] }), index("mentions_mid").on(t.mid)],
);

/** The direct conversations of each user (as in schema.ts). */
export const dmPeers = pgTable(
  "dm_peers",
  {
    user: text("user").notNull(),
    peer: text("peer").notNull(),
    conv: text("conv").notNull(),
  },
  (t) => [primaryKey({ columns: [t.user, t.peer] })],
);

/**
 * One row (id = 1): the store's sequence of commits and its highest mid. Every commit (a message
 * batch or a membership change) updates this row in its transaction, so the row lock orders the
 * commits of every node: they commit one at a time, in the order of their `seq` and their mids,
 * and a reader that has seen mid M can never later find a smaller one (issue #10, §2).
 * The migration that creates it also inserts the row.
 */
export const tcpchatSeq = pgTable(
  "tcpchat_seq",
  {
    id: integer("id").primaryKey(),
    /** The last commit's number (Committed.seq). */
    seq: bigint("seq", { mode: "number" }).notNull().default(0),
    /** The highest committed mid. */
    lastMid: bigint("last_mid", { mode: "number" }).notNull().default(0),
  },
  (t) => [check("tcpchat_seq_one_row", sql`${t.id} = 1`)],
);

/**
 * Users an operator banned (`tcpchat admin ban`): their logins are refused on every node.
 * A deleted account is banned too, with reason "deleted" (its name stays taken).
 */
export const bans = pgTable("bans", {
  user: text("user").primaryKey(),
  reason: text("reason").notNull().default(""),
  at: bigint("at", { mode: "number" }).notNull(),
});

/**
 * Search (PROTOCOL.md §3.7; as in schema.ts, searchState): the current text of every message up
 * to search_state.indexed, as text (PostgreSQL's text cannot hold U+0000: it is replaced by
 * U+FFFD here, and matches are checked on the message's own text), with its conversation. A GIN
 * pg_trgm index on `body` is created at start when the extension can be (PostgresStore.open);
 * without it a search scans this table.
 */
export const searchText = pgTable(
  "search_text",
  {
    mid: bigint("mid", { mode: "number" }).primaryKey(),
    conv: text("conv").notNull(),
    sender: text("sender").notNull(),
    toUser: text("to_user"),
    body: text("body").notNull(),
  },
  (t) => [index("search_text_conv").on(t.conv, t.mid)],
);

export const searchState = pgTable("search_state", {
  id: integer("id").primaryKey(),
  /** Every message with a mid up to this one is in search_text (if it has text and is not deleted). */
  indexed: bigint("indexed", { mode: "number" }).notNull(),
});


/**
 * Files (PROTOCOL.md §3.9), as in schema.ts: a file's bytes once per content, apart from the
 * messages, in chunks read one at a time. A blob table rather than large objects: rows are
 * written, read (substring of one chunk) and deleted in the store's ordinary transactions, by
 * every node, and pg_dump copies them with the rest.
 */
export const files = pgTable(
  "files",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    /** SHA-256 of the bytes, hex; checked before `done` is set. */
    sha256: text("sha256").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    /** 1: complete and checked (the one file of its content); 0: an upload's bytes, arriving. */
    done: integer("done").notNull().default(0),
    created: bigint("created", { mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("files_sha256")
      .on(t.sha256)
      .where(sql`${t.done} = 1`),
  ],
);

/** A file's bytes: chunk `off` holds the bytes from that offset on, as they arrived (at most CHUNK_MAX). */
export const fileChunks = pgTable(
  "file_chunks",
  {
    file: bigint("file", { mode: "number" }).notNull(),
    off: bigint("off", { mode: "number" }).notNull(),
    data: bytea("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.file, t.off] })],
);

/** Uploads not yet sent (PROTOCOL.md §3.9): a user's bytes on their way into `file`. */
export const uploads = pgTable(
  "uploads",
  {
    id: text("id").primaryKey(),
    user: text("user").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    sha256: text("sha256").notNull(),
    received: bigint("received", { mode: "number" }).notNull().default(0),
    done: integer("done").notNull().default(0),
    file: bigint("file", { mode: "number" }).notNull(),
    touched: bigint("touched", { mode: "number" }).notNull(),
  },
  (t) => [index("uploads_user").on(t.user, t.sha256), index("uploads_touched").on(t.touched), index("uploads_file").on(t.file)],
);
