// The SQLite schema (drizzle). Names are immutable identifiers (PROTOCOL.md §2.1),
// so users and groups are keyed by name and messages keep the names they were sent with.
import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const users = sqliteTable("users", {
  name: text("name").primaryKey(),
  passHash: text("pass_hash").notNull(),
  created: integer("created").notNull(),
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
  (t) => [index("tokens_user").on(t.user)],
);

export const groups = sqliteTable("groups", {
  name: text("name").primaryKey(),
  owner: text("owner")
    .notNull()
    .references(() => users.name),
  created: integer("created").notNull(),
});

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
  },
  (t) => [primaryKey({ columns: [t.grp, t.user] }), index("memberships_user").on(t.user)],
);

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
    fileData: blob("file_data", { mode: "buffer" }),
  },
  (t) => [
    index("messages_conv").on(t.conv, t.mid),
    uniqueIndex("messages_sender_cid")
      .on(t.sender, t.cid)
      .where(sql`${t.cid} IS NOT NULL`),
    // sync: direct messages to and from a user, by mid
    index("messages_dm_to")
      .on(t.toUser, t.mid)
      .where(sql`${t.toUser} IS NOT NULL`),
    index("messages_dm_from")
      .on(t.sender, t.mid)
      .where(sql`${t.toUser} IS NOT NULL`),
  ],
);
