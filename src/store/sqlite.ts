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
import { bans, groups, memberships, messages, tcpchatMeta, tokens, users } from "./schema.ts";
import type {
  BanRow,
  Committed,
  CommitResult,
  Durability,
  GroupRow,
  MidSize,
  NewMessage,
  Page,
  Position,
  Store,
  StoredMessage,
  UserRow,
} from "./store.ts";
import { convOf, messageSize } from "./store.ts";

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
  if (r.grp !== null) m.grp = r.grp;
  if (r.toUser !== null) m.toUser = r.toUser;
  if (r.cid !== null) m.cid = r.cid;
  if (r.text !== null) m.text = r.text;
  if (r.fileName !== null) m.file = { name: r.fileName, type: r.fileType ?? "", data: r.fileData ?? new Uint8Array(0) };
  return m;
}

export class SqliteStore implements Store {
  readonly db: BunSQLiteDatabase;
  private readonly client: Database;
  private last: number;
  /** The last commit's number (Committed.seq), counted from 0 at open. */
  private seq = 0;

  /** The one hot statement: raw bun:sqlite, positional (drizzle's placeholder mapping cost ~0.7 µs a row). */
  private readonly insertMessage: Statement;
  private readonly findByCid;

  /** Size-first reads (see historySizes, syncSizes, messagesByMid). */
  private readonly sizesForward: Statement<MidSize>;
  private readonly sizesBackward: Statement<MidSize>;
  private readonly sizesSync: Statement<MidSize>;
  private readonly byMids: Statement<Record<string, unknown>>;
  private readonly walPath: string | undefined;

  constructor(opts: SqliteOptions) {
    if (isFilePath(opts.path)) createPrivate(opts.path);
    this.walPath = isFilePath(opts.path) ? `${opts.path}-wal` : undefined;
    this.client = new Database(opts.path, { create: true, strict: true });
    // One server owns its database file: EXCLUSIVE locking (set before the first WAL access)
    // keeps the WAL index in process memory, which saves the shared-memory lock syscalls of
    // every transaction (about a third of a one-message commit, measured), and makes a second
    // server on the same file fail at start ("database is locked") instead of interleaving mids.
    this.client.run("PRAGMA locking_mode = EXCLUSIVE");
    this.client.run("PRAGMA journal_mode = WAL");
    this.client.run(`PRAGMA synchronous = ${opts.durability === "full" ? "FULL" : "NORMAL"}`);
    this.client.run("PRAGMA foreign_keys = ON");
    this.client.run("PRAGMA busy_timeout = 5000");
    this.client.run(`PRAGMA journal_size_limit = ${WAL_LIMIT}`);
    this.db = drizzle({ client: this.client });
    applyMigrations(this.db);

    // The SQL drizzle generates for insert(messages).values(...).onConflictDoNothing(), as text.
    this.insertMessage = this.client.prepare(
      "INSERT INTO messages (mid, ts, sender, grp, to_user, conv, cid, text, file_name, file_type, file_data, size) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    // Size-first reads: every scan below is index-only (messages_conv, messages_dm_to and
    // messages_dm_from hold conv/to_user/sender, mid and size), and what is sorted or merged
    // is (mid, size) pairs. A message's row, with its blob, is read only by messagesByMid.
    const range = "SELECT mid, size FROM messages WHERE conv = ? AND mid > ? AND mid < ?";
    this.sizesForward = this.client.prepare(`${range} ORDER BY mid ASC LIMIT ?`);
    this.sizesBackward = this.client.prepare(`${range} ORDER BY mid DESC LIMIT ?`);
    // Three range scans (the user's groups, DMs received, DMs sent but not to oneself), each
    // cut at the limit, merged by mid: cost follows this user's traffic, not the whole table's.
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
      tx.insert(memberships).values({ grp: name, user: owner, joined: now }).run();
      return true;
    });
    return created ? ++this.seq : 0;
  }

  async getGroup(name: string): Promise<GroupRow | undefined> {
    return this.db.select({ name: groups.name, owner: groups.owner }).from(groups).where(eq(groups.name, name)).get();
  }

  async addMember(grp: string, user: string, now: number): Promise<number> {
    return changed(this.db.insert(memberships).values({ grp, user, joined: now }).onConflictDoNothing().run()) === 1
      ? ++this.seq
      : 0;
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

  async allMemberships(): Promise<Array<{ grp: string; user: string }>> {
    return this.db.select({ grp: memberships.grp, user: memberships.user }).from(memberships).all();
  }

  async userGroups(user: string): Promise<GroupRow[]> {
    return this.db
      .select({ name: groups.name, owner: groups.owner })
      .from(memberships)
      .innerJoin(groups, eq(groups.name, memberships.grp))
      .where(eq(memberships.user, user))
      .orderBy(asc(groups.name))
      .all();
  }

  async lastMid(): Promise<number> {
    return this.last;
  }

  async position(): Promise<Position> {
    return { seq: this.seq, mid: this.last };
  }

  commit(batch: NewMessage[], now: number): Promise<Committed> {
    // Not an async function: the hot path runs as a plain call, its result wrapped once.
    try {
      const results = this.commitNow(batch, now);
      // One process holds the database (locking_mode=EXCLUSIVE): the sequence is counted here.
      if (batch.length > 0) this.seq++;
      return Promise.resolve({ seq: this.seq, results });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private commitNow(batch: NewMessage[], now: number): CommitResult[] {
    const start = this.last;
    try {
      return this.db.transaction(() => {
        const out: CommitResult[] = [];
        for (const m of batch) {
          const mid = this.last + 1;
          const r = this.insertMessage.run(
            mid,
            now,
            m.sender,
            m.grp ?? null,
            m.toUser ?? null,
            convOf(m),
            m.cid ?? null,
            m.text ?? null,
            m.file?.name ?? null,
            m.file?.type ?? null,
            m.file?.data ?? null,
            messageSize(m),
          );
          if (r.changes === 1) {
            this.last = mid;
            out.push({ mid, ts: now, duplicate: false });
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
    } catch (e) {
      this.last = start; // rolled back: the mids are free again
      throw e;
    }
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
    const rows = this.byMids.all(JSON.stringify(mids)).map((r) => toStored(mapRawRow(r)));
    return rows.sort((a, b) => a.mid - b.mid);
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

  async eraseUser(user: string): Promise<number> {
    return this.db.transaction(() => {
      this.keepHighWater();
      const n = changed(this.db.delete(messages).where(eq(messages.sender, user)).run());
      this.db.delete(tokens).where(eq(tokens.user, user)).run();
      this.db.update(users).set({ passHash: "" }).where(eq(users.name, user)).run();
      return n;
    });
  }

  async deleteGroup(name: string): Promise<number> {
    return this.db.transaction(() => {
      this.keepHighWater();
      const n = changed(this.db.delete(messages).where(eq(messages.conv, `g:${name}`)).run());
      this.db.delete(memberships).where(eq(memberships.grp, name)).run();
      this.db.delete(groups).where(eq(groups.name, name)).run();
      return n;
    });
  }

  async userMessages(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    const rows = this.client
      .query("SELECT * FROM messages WHERE (sender = ?1 OR to_user = ?1) AND mid > ?2 ORDER BY mid LIMIT ?3")
      .all(user, after, limit) as Array<Record<string, unknown>>;
    return rows.map((r) => toStored(mapRawRow(r)));
  }

  async purge(before: number, limit: number): Promise<number> {
    // The oldest `limit` rows by mid (a range of the primary key), those of them older than
    // `before`: mids are given in commit order, and a message's ts is its commit time.
    return this.db.transaction(() => {
      this.keepHighWater();
      return this.client
        .prepare("DELETE FROM messages WHERE mid IN (SELECT mid FROM messages ORDER BY mid LIMIT ?) AND ts < ?")
        .run(limit, before).changes;
    });
  }

  async backup(path: string): Promise<void> {
    // On the server's own connection (it holds the file exclusively): a consistent snapshot,
    // taken between two commits. The file is created 0600 first (VACUUM INTO takes an empty file).
    createPrivate(path);
    this.client.prepare("VACUUM INTO ?").run(path);
  }

  async maintain(now: number): Promise<void> {
    this.db.delete(tokens).where(lte(tokens.expires, now)).run();
    if (this.walPath === undefined) return;
    let walSize = 0;
    try {
      walSize = statSync(this.walPath).size;
    } catch {
      return; // no WAL file (yet)
    }
    // journal_size_limit cuts the WAL back only when a later write starts it over;
    // after a burst followed by silence, this gives the space back.
    if (walSize > WAL_LIMIT) this.client.run("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  async close(): Promise<void> {
    // close(true) closes now (finalizing statements) instead of deferring: with EXCLUSIVE
    // locking a deferred close would keep the file locked against the next opener.
    this.client.close(true);
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
    size: x.size as number,
  };
}
