// The shipped Store: bun:sqlite through drizzle-orm, WAL journal, migrations applied at open.
// BUN-NOTES: one transaction per batch with prepared statements is ~20x faster than
// autocommit per row, so `commit` takes a whole batch.
import { type Changes, Database, type Statement } from "bun:sqlite";
import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import { applyMigrations } from "./migrate.ts";
import { groups, memberships, messages, tokens, users } from "./schema.ts";
import type { CommitResult, GroupRow, NewMessage, Page, Store, StoredMessage, UserRow } from "./store.ts";
import { convOf } from "./store.ts";

export type Durability = "normal" | "full";

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

  /** The one hot statement: raw bun:sqlite, positional (drizzle's placeholder mapping cost ~0.7 µs a row). */
  private readonly insertMessage: Statement;
  private readonly findByCid;

  constructor(opts: SqliteOptions) {
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
    this.db = drizzle({ client: this.client });
    applyMigrations(this.db);

    // The SQL drizzle generates for insert(messages).values(...).onConflictDoNothing(), as text.
    this.insertMessage = this.client.prepare(
      "INSERT INTO messages (mid, ts, sender, grp, to_user, conv, cid, text, file_name, file_type, file_data) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.findByCid = this.db
      .select({ mid: messages.mid, ts: messages.ts })
      .from(messages)
      .where(and(eq(messages.sender, sql.placeholder("sender")), eq(messages.cid, sql.placeholder("cid"))))
      .prepare();
    this.last = this.db.select({ m: sql<number>`coalesce(max(${messages.mid}), 0)` }).from(messages).get()!.m;
  }

  createUser(name: string, passHash: string, now: number): boolean {
    return changed(this.db.insert(users).values({ name, passHash, created: now }).onConflictDoNothing().run()) === 1;
  }

  getUser(name: string): UserRow | undefined {
    return this.db.select({ name: users.name, passHash: users.passHash }).from(users).where(eq(users.name, name)).get();
  }

  addToken(hash: string, user: string, now: number, expires: number): void {
    this.db.insert(tokens).values({ hash, user, created: now, expires }).run();
  }

  tokenUser(hash: string, now: number): string | undefined {
    return this.db
      .select({ user: tokens.user })
      .from(tokens)
      .where(and(eq(tokens.hash, hash), gt(tokens.expires, now)))
      .get()?.user;
  }

  deleteToken(hash: string): void {
    this.db.delete(tokens).where(eq(tokens.hash, hash)).run();
  }

  deleteUserTokens(user: string): void {
    this.db.delete(tokens).where(eq(tokens.user, user)).run();
  }

  setPassword(user: string, passHash: string): void {
    this.db.update(users).set({ passHash }).where(eq(users.name, user)).run();
  }

  createGroup(name: string, owner: string, now: number): boolean {
    return this.db.transaction((tx) => {
      if (changed(tx.insert(groups).values({ name, owner, created: now }).onConflictDoNothing().run()) !== 1)
        return false;
      tx.insert(memberships).values({ grp: name, user: owner, joined: now }).run();
      return true;
    });
  }

  getGroup(name: string): GroupRow | undefined {
    return this.db.select({ name: groups.name, owner: groups.owner }).from(groups).where(eq(groups.name, name)).get();
  }

  addMember(grp: string, user: string, now: number): boolean {
    return changed(this.db.insert(memberships).values({ grp, user, joined: now }).onConflictDoNothing().run()) === 1;
  }

  removeMember(grp: string, user: string): boolean {
    const r = this.db
      .delete(memberships)
      .where(and(eq(memberships.grp, grp), eq(memberships.user, user)))
      .run();
    return changed(r) === 1;
  }

  allMemberships(): Array<{ grp: string; user: string }> {
    return this.db.select({ grp: memberships.grp, user: memberships.user }).from(memberships).all();
  }

  userGroups(user: string): GroupRow[] {
    return this.db
      .select({ name: groups.name, owner: groups.owner })
      .from(memberships)
      .innerJoin(groups, eq(groups.name, memberships.grp))
      .where(eq(memberships.user, user))
      .orderBy(asc(groups.name))
      .all();
  }

  lastMid(): number {
    return this.last;
  }

  commit(batch: NewMessage[], now: number): CommitResult[] {
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

  history(conv: string, page: Page): StoredMessage[] {
    const conds = [eq(messages.conv, conv)];
    if (page.after !== undefined) conds.push(gt(messages.mid, page.after));
    if (page.before !== undefined) conds.push(lt(messages.mid, page.before));
    const forward = page.after !== undefined;
    const rows = this.db
      .select()
      .from(messages)
      .where(and(...conds))
      .orderBy(forward ? asc(messages.mid) : desc(messages.mid))
      .limit(page.limit)
      .all();
    if (!forward) rows.reverse();
    return rows.map(toStored);
  }

  sync(user: string, after: number, limit: number): StoredMessage[] {
    // Three index range scans (group conversations via messages_conv, DMs received
    // via messages_dm_to, DMs sent via messages_dm_from), each cut at `limit`,
    // merged by mid: cost follows this user's traffic, not the whole table's.
    const rows = this.db.all<MessageRow>(sql`
      SELECT * FROM (
        SELECT * FROM (SELECT m.* FROM ${messages} m
          WHERE m.conv IN (SELECT 'g:' || grp FROM ${memberships} WHERE user = ${user}) AND m.mid > ${after}
          ORDER BY m.mid LIMIT ${limit})
        UNION ALL
        SELECT * FROM (SELECT * FROM ${messages} WHERE to_user = ${user} AND mid > ${after} ORDER BY mid LIMIT ${limit})
        UNION ALL
        SELECT * FROM (SELECT * FROM ${messages}
          WHERE sender = ${user} AND to_user IS NOT NULL AND to_user != ${user} AND mid > ${after}
          ORDER BY mid LIMIT ${limit})
      ) ORDER BY mid LIMIT ${limit}`);
    return rows.map((r) => toStored(mapRawRow(r)));
  }

  close(): void {
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
  };
}
