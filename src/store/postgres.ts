// The shared Store of a cluster: PostgreSQL through Bun.sql (built into Bun), with drizzle-orm
// (drizzle-orm/bun-sql) for the cold queries and raw SQL for the hot ones (commit, the size-first
// reads). Several nodes commit to one database at once (issue #10, §2).
//
// Ordering across nodes. Every commit (a message batch, or a membership change) updates the one
// row of `tcpchat_seq` (schema-pg.ts) inside its transaction; a message batch does so as its FIRST
// statement. The row lock is held until the transaction ends, so the commits of all nodes run one
// at a time: each gets the next `seq` (dense: a commit that rolls back gives its number back) and
// assigns its mids after the row's `last_mid`, in the application, to new messages only (no gaps:
// a duplicate takes no mid). PostgreSQL makes a transaction visible before it releases its locks,
// so the next writer's mids become visible only after these: the order in which commits become
// visible is mid order, and a reader that has seen mid M can never later find a smaller one
// (docs/CLUSTER.md, "One sequence of commits": a plain sequence breaks this). Two nodes together commit about as
// fast as one: the lock serialises them. A batch is committed in two pipelined round trips
// (commitOnce), so the lock is held across one trip to the node, not three.
//
// Deduplication by (sender, cid) holds across nodes because the lookup of the batch's cids runs
// under the same lock: no other writer can insert between the lookup and the insert.
//
// Failures. Every call rejects when Postgres is unavailable, and never hangs: connecting gives up
// after `connectTimeoutMs`, the server ends statements, lock waits and idle transactions after
// `queryTimeoutMs`, and each call rejects at its own deadline (a frozen server or a lost network
// answers nothing). The pool reconnects by itself when Postgres is back. Reads are retried once on
// a connection error (the first query on a pool whose connections died with the server fails).
// A write is retried once only when it failed before its COMMIT was sent, so that it surely did
// not commit; when the COMMIT's outcome is unknown the call rejects: for `commit`, the core tells
// the clients to send again with the same cid, which deduplication makes safe.
//
// Files (PROTOCOL.md §3.9): in the tables files and file_chunks (schema-pg.ts), so every node
// serves every file; a download reads one substring of one chunk. Several nodes change the same
// uploads and files at once: see "files" below for the row locks that keep a file from being
// dropped while something comes to hold it.
//
// Durability: a commit is acknowledged once Postgres has committed it, with the server's own
// synchronous_commit (on by default: flushed to its WAL). `--durability` (SQLite's synchronous
// setting) does not apply and is ignored: an acknowledged message is never weakened to async.
import { SQL, type TransactionSQL } from "bun";
import { and, asc, count, eq, gt, lte, ne, sql } from "drizzle-orm";
import { type BunSQLDatabase, drizzle } from "drizzle-orm/bun-sql";
import { embeddedPgMigrations } from "./migrations-pg-macro.ts" with { type: "macro" };
import { decide, effectsOf, type GroupOp, type MemberFacts, type Role } from "./groups.ts";
import { bans, blocks, groups, memberships, tokens, users } from "./schema-pg.ts";
import { groupReactions, groupRow, KNOWN_PAIRS_MAX } from "./sqlite.ts";
import type {
  BanRow,
  Committed,
  CommitResult,
  ConvState,
  DirectoryRow,
  DmPolicy,
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
  Store,
  StoredMessage,
  UploadRow,
  UserGroupRow,
  UserRow,
} from "./store.ts";
import { groupConv, groupEntry, likePattern, matchesQuery, mentionsOf, messageSize, placement, previewText, readTarget } from "./store.ts";

const MIGRATIONS = embeddedPgMigrations();

/** pg_advisory_xact_lock key held while migrating: two nodes starting at once migrate one after the other. */
const MIGRATION_LOCK = 0x7463_7063_6861; // "tcpcha"

/** pg_try_advisory_xact_lock key of the retention purge: one node purges at a time. */
const PURGE_LOCK = 0x7463_7075_7267; // "tcpurg"

/** Largest mid bound (mids are below 2^53). */
const NO_BOUND = Number.MAX_SAFE_INTEGER;

/** Messages indexed for search per transaction (under the commit lock: commits wait for it). */
const INDEX_CHUNK = 2000;

/** Search text as PostgreSQL's text can hold it (no U+0000). */
const searchBody = (s: string): string => s.replaceAll("\0", "\uFFFD");

/** Most rows in one INSERT (17 parameters each; PostgreSQL takes at most 65535). */
const INSERT_CHUNK = 2000;

export interface PostgresOptions {
  /** postgres://user@host:port/db (or postgresql://). */
  url: string;
  /** Connections in the pool (a commit and reads run on separate ones). Default 8. */
  max?: number;
  /** Connecting gives up after this. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Each call rejects after this; the server ends a statement, a lock wait or an idle transaction
   * after it too (statement_timeout, lock_timeout, idle_in_transaction_session_timeout), so a
   * node that dies or hangs mid-transaction cannot hold the commit lock of the others. Default 15000 ms.
   */
  queryTimeoutMs?: number;
  /** Idle connections are closed after this. Default 60000 ms. */
  idleTimeoutMs?: number;
}

type Tx = TransactionSQL;

/** Errors that say the connection failed or was lost (not that a statement was refused). */
const CONNECTION_CODES = new Set([
  "ERR_POSTGRES_CONNECTION_CLOSED",
  "ERR_POSTGRES_CONNECTION_REFUSED",
  "ERR_POSTGRES_CONNECTION_TIMEOUT",
  "ERR_POSTGRES_CONNECTION_FAILED",
  "ERR_POSTGRES_IDLE_TIMEOUT",
  "ERR_POSTGRES_LIFETIME_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
]);

/** Whether `e` (or what it wraps: drizzle throws a DrizzleQueryError whose cause is the driver's) is a connection error. */
export function isConnectionError(e: unknown): boolean {
  for (let x = e as { code?: unknown; errno?: unknown; cause?: unknown } | null, depth = 0; depth < 4; depth++) {
    if (!x || typeof x !== "object") return false;
    // SQLSTATE class 08 (connection exception); 57P01-57P03: the server is shutting down or starting.
    if (typeof x.errno === "string" && (x.errno.startsWith("08") || /^57P0[123]$/.test(x.errno))) return true;
    if (typeof x.code === "string" && CONNECTION_CODES.has(x.code)) return true;
    x = x.cause as typeof x;
  }
  return false;
}

/** A call that got no answer in time: for a write, its outcome is unknown. */
export class StoreTimeoutError extends Error {
  override name = "StoreTimeoutError";
}

const decoder = new TextDecoder();
const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
const str = (b: Uint8Array | null): string | undefined => (b === null ? undefined : decoder.decode(b));
const EMPTY = new Uint8Array(0);

interface UploadSql {
  id: string;
  user: string;
  size: string;
  sha256: string;
  received: string;
  done: number;
  file: string;
  touched: string;
}

function toUpload(r: UploadSql): UploadRow {
  return {
    id: r.id,
    user: r.user,
    size: Number(r.size),
    sha256: r.sha256,
    received: Number(r.received),
    done: r.done === 1,
    file: Number(r.file),
    touched: Number(r.touched),
  };
}

/** Whether `e` (or what it wraps) is PostgreSQL's unique_violation. */
function isUniqueViolation(e: unknown): boolean {
  for (let x = e as { errno?: unknown; cause?: unknown } | null, depth = 0; depth < 4; depth++) {
    if (!x || typeof x !== "object") return false;
    if (x.errno === "23505") return true;
    x = x.cause as typeof x;
  }
  return false;
}

/** An int8[] parameter: `{1,2,3}`. */
const int8s = (ids: Iterable<number | string>): string => `{${[...ids].join(",")}}`;

interface MessageRow {
  mid: string;
  ts: string;
  sender: string;
  grp: string | null;
  to_user: string | null;
  cid: Uint8Array | null;
  text: Uint8Array | null;
  file_name: Uint8Array | null;
  file_type: Uint8Array | null;
  file_id: string | null;
  file_size: string | null;
  file_sha: string | null;
  kind: string | null;
  ref: string | null;
  about: string | null;
  edited: string | null;
  deleted: string | null;
  target: string | null;
  until: string | null;
}

/** The columns of groups a GroupRow is read from (drizzle select). */
const GROUP_COLUMNS = {
  name: groups.name,
  owner: groups.owner,
  public: groups.public,
  topic: groups.topic,
  description: groups.description,
};

function toStored(r: MessageRow): StoredMessage {
  const m: StoredMessage = { mid: Number(r.mid), ts: Number(r.ts), sender: r.sender };
  if (r.kind === "read") Object.assign(m, readTarget(r.about!, r.sender));
  else {
    if (r.grp !== null) m.grp = r.grp;
    if (r.to_user !== null) m.toUser = r.to_user;
  }
  if (r.cid !== null) m.cid = str(r.cid);
  if (r.text !== null) m.text = str(r.text);
  if (r.file_name !== null && r.file_id !== null)
    m.file = { name: str(r.file_name)!, type: str(r.file_type) ?? "", size: Number(r.file_size ?? 0), sha256: r.file_sha ?? "" };
  if (r.kind !== null) m.kind = r.kind as EntryKind;
  if (r.ref !== null) m.ref = Number(r.ref);
  if (r.edited !== null) m.edited = Number(r.edited);
  if (r.deleted !== null) m.deleted = Number(r.deleted);
  if (r.target != null) m.target = r.target;
  if (r.until != null) m.until = Number(r.until);
  return m;
}

/** The start of a preview's text (PREVIEW_CHARS code points are at most 4 bytes each). */
const PREVIEW_BYTES = 400;

/** The first characters of UTF-8 `b` cut at any byte: an incomplete last character is left out. */
function previewOf(b: Uint8Array): string {
  return previewText(new TextDecoder().decode(b, { stream: true }));
}

/** An entry's target as read under the commit lock: its conversation, kind and whether deleted. */
interface Target {
  conv: string;
  kind: string | null;
  deleted: boolean;
  /** Its stored file (PROTOCOL.md §3.9), if any. */
  file: number | null;
}

function toSizes(rows: Array<{ mid: string; size: number }>): MidSize[] {
  const out: MidSize[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = { mid: Number(rows[i]!.mid), size: rows[i]!.size };
  return out;
}

/** A message row ready to insert, but for its mid. */
type Prepared = {
  mid: number;
  ts: number;
  sender: string;
  grp: string | null;
  to_user: string | null;
  conv: string;
  cid: Buffer | null;
  text: Buffer | null;
  file_name: Buffer | null;
  file_type: Buffer | null;
  /** The stored file (PROTOCOL.md §3.9), set at commit from the sender's upload. */
  file_id: number | null;
  file_size: number | null;
  file_sha: string | null;
  size: number;
  kind: string | null;
  ref: number | null;
  about: string | null;
};

const COLUMNS = [
  "mid",
  "ts",
  "sender",
  "grp",
  "to_user",
  "conv",
  "cid",
  "text",
  "file_name",
  "file_type",
  "file_id",
  "file_size",
  "file_sha",
  "size",
  "kind",
  "ref",
  "about",
] as const;

function prepare(m: NewMessage, now: number): Prepared {
  const f = m.file;
  const p = placement(m);
  return {
    mid: 0,
    ts: now,
    sender: m.sender,
    grp: p.grp,
    to_user: p.toUser,
    conv: p.conv,
    cid: m.cid === undefined ? null : utf8(m.cid),
    text: m.text === undefined ? null : utf8(m.text),
    file_name: f ? utf8(f.name) : null,
    file_type: f ? utf8(f.type) : null,
    file_id: null,
    file_size: null,
    file_sha: null,
    size: messageSize(m),
    kind: m.kind ?? null,
    ref: m.ref ?? null,
    about: p.about,
  };
}

export class PostgresStore implements Store {
  readonly sql: SQL;
  readonly db: BunSQLDatabase;
  private readonly timeoutMs: number;
  private closed = false;
  /** Direct conversations known to be in dm_peers (as in SqliteStore). */
  private readonly knownPairs = new Set<string>();
  /** Whether search_text has its pg_trgm index (the extension could be created). */
  trigram = false;

  /** Connects, migrates (once across nodes starting together) and resolves with the store; rejects if it cannot. */
  static async open(opts: PostgresOptions): Promise<PostgresStore> {
    const s = new PostgresStore(opts);
    try {
      await s.migrate();
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  private constructor(opts: PostgresOptions) {
    this.timeoutMs = opts.queryTimeoutMs ?? 15000;
    const server = String(this.timeoutMs);
    this.sql = new SQL({
      url: opts.url,
      max: opts.max ?? 8,
      connectionTimeout: Math.max(1, Math.ceil((opts.connectTimeoutMs ?? 5000) / 1000)),
      idleTimeout: Math.max(1, Math.ceil((opts.idleTimeoutMs ?? 60000) / 1000)),
      connection: {
        application_name: "tcpchat",
        statement_timeout: server,
        lock_timeout: server,
        idle_in_transaction_session_timeout: server,
        // Plan each statement for its parameters: Bun.sql prepares statements, and after five runs
        // Postgres may switch to a generic plan, which made syncSizes 20x slower (measured: 1.6 ->
        // 30-40 ms on 300k messages) since it cannot see how selective `mid > after` is.
        plan_cache_mode: "force_custom_plan",
      },
    });
    this.db = drizzle({ client: this.sql });
  }

  /** Applies the embedded migrations not applied yet, in one transaction under an advisory lock. */
  private async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      // A migration may take long on a big table; a second node waits for the first one's lock.
      await tx`SET LOCAL statement_timeout = 0`;
      await tx`SET LOCAL lock_timeout = 0`;
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK}::int8)`;
      // The same bookkeeping as drizzle's own migrate() (pg-core/dialect.ts), so drizzle-kit agrees.
      await tx`CREATE SCHEMA IF NOT EXISTS drizzle`;
      await tx`CREATE TABLE IF NOT EXISTS drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`;
      const [last] = await tx`SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1`;
      for (const m of MIGRATIONS) {
        if (last && Number(last.created_at) >= m.folderMillis) continue;
        for (const stmt of m.sql) if (stmt.trim() !== "") await tx.unsafe(stmt);
        await tx`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES (${m.hash}, ${m.folderMillis})`;
      }
      // Search's trigram index, if the server has pg_trgm (Debian's postgresql has it, in contrib)
      // and this role may create it (a trusted extension: CREATE on the database is enough).
      // Without it, search works the same, by scanning search_text.
      try {
        await tx.savepoint(async (sp) => {
          await sp`CREATE EXTENSION IF NOT EXISTS pg_trgm`;
          await sp`CREATE INDEX IF NOT EXISTS search_text_trgm ON search_text USING gin (body gin_trgm_ops)`;
        });
        this.trigram = true;
      } catch {
        this.trigram = false;
      }
    });
  }

  /** Rejects `p` at the deadline (the work itself may still finish: for a write, the outcome is then unknown). */
  private deadline<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreTimeoutError(`postgres: no answer to ${what} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  /** A read: retried once after a connection error. */
  private read<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.deadline(
      (async () => {
        try {
          return await fn();
        } catch (e) {
          if (this.closed || !isConnectionError(e)) throw e;
          return await fn();
        }
      })(),
      what,
    );
  }

  /**
   * A write in one transaction. Retried once after a connection error that came before the COMMIT
   * was sent (the transaction surely rolled back); an error at or after the COMMIT rejects.
   */
  private write<T>(what: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.deadline(
      (async () => {
        for (let attempt = 0; ; attempt++) {
          let committing = false;
          try {
            return (await this.sql.begin(async (tx) => {
              const r = await fn(tx);
              committing = true;
              return r;
            })) as T;
          } catch (e) {
            if (committing || attempt > 0 || this.closed || !isConnectionError(e)) throw e;
          }
        }
      })(),
      what,
    );
  }

  async createUser(name: string, passHash: string, now: number): Promise<boolean> {
    return this.write("createUser", async (tx) => {
      const r = await tx`INSERT INTO users (name, pass_hash, created) VALUES (${name}, ${passHash}, ${now}::int8)
        ON CONFLICT DO NOTHING RETURNING 1`;
      return r.length === 1;
    });
  }

  getUser(name: string): Promise<UserRow | undefined> {
    return this.read("getUser", async () => {
      const [r] = await this.db
        .select({ name: users.name, passHash: users.passHash })
        .from(users)
        // An erased account keeps its row (its name stays taken) with an empty hash: it is no user.
        .where(and(eq(users.name, name), ne(users.passHash, "")));
      return r;
    });
  }

  async addToken(hash: string, user: string, now: number, expires: number, maxPerUser?: number): Promise<void> {
    await this.write("addToken", async (tx) => {
      await tx`INSERT INTO tokens (hash, "user", created, expires) VALUES (${hash}, ${user}, ${now}::int8, ${expires}::int8)`;
      if (maxPerUser === undefined) return;
      // Keeps the newest maxPerUser: by creation time, then insertion order (id).
      await tx`DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE "user" = ${user}
        ORDER BY created DESC, id DESC OFFSET ${maxPerUser}::int8)`;
    });
  }

  tokenUser(hash: string, now: number): Promise<string | undefined> {
    return this.read("tokenUser", async () => {
      const [r] = await this.db
        .select({ user: tokens.user })
        .from(tokens)
        .where(and(eq(tokens.hash, hash), gt(tokens.expires, now)));
      return r?.user;
    });
  }

  async deleteToken(hash: string): Promise<void> {
    // Idempotent: retried like a read.
    await this.read("deleteToken", () => this.db.delete(tokens).where(eq(tokens.hash, hash)));
  }

  async deleteUserTokens(user: string): Promise<void> {
    await this.read("deleteUserTokens", () => this.db.delete(tokens).where(eq(tokens.user, user)));
  }

  async setPassword(user: string, passHash: string): Promise<void> {
    await this.read("setPassword", () => this.db.update(users).set({ passHash }).where(eq(users.name, user)));
  }

  createGroup(name: string, owner: string, now: number): Promise<number> {
    return this.write("createGroup", async (tx) => {
      const g = await tx`INSERT INTO groups (name, owner, created) VALUES (${name}, ${owner}, ${now}::int8)
        ON CONFLICT DO NOTHING RETURNING 1`;
      if (g.length === 0) return 0;
      const [s] = await tx`WITH m AS (INSERT INTO memberships (grp, "user", joined, role) VALUES (${name}, ${owner}, ${now}::int8, 'owner'))
        UPDATE tcpchat_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq`;
      await this.markJoined(tx, name, owner);
      return Number(s.seq);
    });
  }

  getGroup(name: string): Promise<GroupRow | undefined> {
    return this.read("getGroup", async () => {
      const [r] = await this.db.select(GROUP_COLUMNS).from(groups).where(eq(groups.name, name));
      return r && groupRow(r);
    });
  }

  groupOp(op: GroupOp, now: number): Promise<GroupOpResult> {
    return this.write("groupOp", async (tx) => {
      // The seq row first: every commit of every node waits here, so the facts read below stay
      // true until this transaction ends (src/store/groups.ts).
      const [q] = await tx`SELECT seq, last_mid FROM tcpchat_seq WHERE id = 1 FOR UPDATE`;
      const grp = op.group;
      const user = op.target;
      const [facts] = await tx`SELECT
          (SELECT json_build_object('owner', owner, 'public', public, 'topic', topic, 'description', description) FROM groups WHERE name = ${grp}) AS g,
          (SELECT json_build_object('role', role, 'muted', coalesce(muted, 0)) FROM memberships WHERE grp = ${grp} AND "user" = ${op.by}) AS a,
          (SELECT json_build_object('role', role, 'muted', coalesce(muted, 0)) FROM memberships WHERE grp = ${grp} AND "user" = ${user}) AS t,
          EXISTS (SELECT 1 FROM group_bans WHERE grp = ${grp} AND "user" = ${user}) AS banned,
          EXISTS (SELECT 1 FROM invites WHERE grp = ${grp} AND "user" = ${user}) AS invited,
          (SELECT count(*) FROM memberships WHERE grp = ${grp}) AS members`;
      const fact = (x: { role: string; muted: string | number } | null): MemberFacts | undefined =>
        x ? { role: x.role as Role, muted: Number(x.muted) } : undefined;
      const g = facts.g as { owner: string; public: number; topic: string; description: string } | null;
      const d = decide(op, {
        group: g ? { owner: g.owner, public: g.public !== 0, topic: g.topic, description: g.description } : undefined,
        actor: fact(facts.a),
        target: fact(facts.t),
        banned: facts.banned,
        invited: facts.invited,
        members: Number(facts.members),
        now,
      });
      if (d === "noop") return { seq: 0 } as GroupOpResult;
      if (d !== "apply") return { seq: 0, refused: d } as GroupOpResult;
      for (const e of effectsOf(op)) {
        switch (e.t) {
          case "group": {
            const st = e.settings;
            await tx`INSERT INTO groups (name, owner, created, public, topic, description)
              VALUES (${grp}, ${e.owner}, ${now}::int8, ${st.public === false ? 0 : 1}::int, ${st.topic ?? ""}, ${st.description ?? ""})`;
            break;
          }
          case "member":
            await tx`INSERT INTO memberships (grp, "user", joined, role) VALUES (${grp}, ${e.user}, ${now}::int8, ${e.role})`;
            await tx`DELETE FROM invites WHERE grp = ${grp} AND "user" = ${e.user}`;
            await this.markJoined(tx, grp, e.user);
            break;
          case "unmember":
            await tx`DELETE FROM memberships WHERE grp = ${grp} AND "user" = ${e.user}`;
            break;
          case "invite":
            await tx`INSERT INTO invites (grp, "user", by, at) VALUES (${grp}, ${e.user}, ${e.by}, ${now}::int8)`;
            break;
          case "uninvite":
            await tx`DELETE FROM invites WHERE grp = ${grp} AND "user" = ${e.user}`;
            break;
          case "ban":
            await tx`INSERT INTO group_bans (grp, "user", by, at) VALUES (${grp}, ${e.user}, ${e.by}, ${now}::int8) ON CONFLICT DO NOTHING`;
            break;
          case "unban":
            await tx`DELETE FROM group_bans WHERE grp = ${grp} AND "user" = ${e.user}`;
            break;
          case "mute":
            await tx`UPDATE memberships SET muted = ${e.until || null}::int8 WHERE grp = ${grp} AND "user" = ${e.user}`;
            break;
          case "role":
            await tx`UPDATE memberships SET role = ${e.role} WHERE grp = ${grp} AND "user" = ${e.user}`;
            break;
          case "owner":
            await tx`UPDATE groups SET owner = ${e.user} WHERE name = ${grp}`;
            break;
          case "settings": {
            const st = e.settings;
            if (st.public !== undefined) await tx`UPDATE groups SET public = ${st.public ? 1 : 0}::int WHERE name = ${grp}`;
            if (st.topic !== undefined) await tx`UPDATE groups SET topic = ${st.topic} WHERE name = ${grp}`;
            if (st.description !== undefined) await tx`UPDATE groups SET description = ${st.description} WHERE name = ${grp}`;
            break;
          }
        }
      }
      const mid = Number(q.last_mid) + 1;
      const entry = groupEntry(op);
      await tx`INSERT INTO messages (mid, ts, sender, grp, conv, text, size, kind, target, until)
        VALUES (${mid}::int8, ${now}::int8, ${op.by}, ${grp}, ${groupConv(grp)}, ${entry.text === undefined ? null : utf8(entry.text)},
          ${messageSize(entry)}::int, ${op.action}, ${op.target}, ${entry.until ?? null}::int8)`;
      const [s] = await tx`UPDATE tcpchat_seq SET seq = seq + 1, last_mid = ${mid}::int8 WHERE id = 1 RETURNING seq`;
      return { seq: Number(s.seq), mid, ts: now, entry: { ...entry, mid, ts: now } } as GroupOpResult;
    });
  }

  member(grp: string, user: string): Promise<MemberRow | undefined> {
    return this.read("member", async () => {
      const [m] = await this.sql`SELECT "user", role, muted FROM memberships WHERE grp = ${grp} AND "user" = ${user}`;
      return m ? { user: m.user, role: m.role as Role, muted: Number(m.muted ?? 0) } : undefined;
    });
  }

  groupMembers(grp: string): Promise<MemberRow[]> {
    return this.read("groupMembers", async () => {
      const rows = await this.sql`SELECT "user", role, muted FROM memberships WHERE grp = ${grp} ORDER BY "user" COLLATE "C"`;
      return (rows as Array<{ user: string; role: string; muted: string | null }>).map((m) => ({
        user: m.user,
        role: m.role as Role,
        muted: Number(m.muted ?? 0),
      }));
    });
  }

  userInvites(user: string): Promise<InviteRow[]> {
    return this.read("userInvites", async () =>
      (await this.sql`SELECT i.grp AS "group", i.by, g.topic FROM invites i JOIN groups g ON g.name = i.grp
        WHERE i."user" = ${user} ORDER BY i.grp COLLATE "C"`) as InviteRow[],
    );
  }

  standing(grp: string, user: string): Promise<{ banned: boolean; invited: boolean }> {
    return this.read("standing", async () => {
      const [r] = await this.sql`SELECT EXISTS (SELECT 1 FROM group_bans WHERE grp = ${grp} AND "user" = ${user}) AS banned,
        EXISTS (SELECT 1 FROM invites WHERE grp = ${grp} AND "user" = ${user}) AS invited`;
      return { banned: r.banned, invited: r.invited };
    });
  }

  listGroups(q: string | undefined, after: string, limit: number): Promise<DirectoryRow[]> {
    const like = q === undefined ? "%" : likePattern(q);
    return this.read("listGroups", async () => {
      const rows = await this.sql`SELECT g.name, g.topic, (SELECT count(*) FROM memberships m WHERE m.grp = g.name) AS members
        FROM groups g WHERE g.public = 1 AND g.name COLLATE "C" > ${after} AND g.name ILIKE ${like}
        ORDER BY g.name COLLATE "C" LIMIT ${limit}::int8`;
      return (rows as Array<{ name: string; topic: string; members: string }>).map((r) => ({ ...r, members: Number(r.members) }));
    });
  }

  setBlock(user: string, other: string, blocked: boolean, now: number): Promise<boolean> {
    return this.read("setBlock", async () => {
      const r = blocked
        ? await this.sql`INSERT INTO blocks ("user", blocked, at) VALUES (${user}, ${other}, ${now}::int8) ON CONFLICT DO NOTHING RETURNING 1`
        : await this.sql`DELETE FROM blocks WHERE "user" = ${user} AND blocked = ${other} RETURNING 1`;
      return r.length === 1;
    });
  }

  blocked(user: string): Promise<string[]> {
    return this.read("blocked", async () =>
      (await this.db.select({ b: blocks.blocked }).from(blocks).where(eq(blocks.user, user)).orderBy(sql`${blocks.blocked} COLLATE "C"`)).map(
        (r) => r.b,
      ),
    );
  }

  async setDmPolicy(user: string, policy: DmPolicy): Promise<void> {
    await this.read("setDmPolicy", () => this.db.update(users).set({ dmPolicy: policy }).where(eq(users.name, user)));
  }

  dmPolicy(user: string): Promise<DmPolicy> {
    return this.read("dmPolicy", async () => {
      const [r] = await this.db.select({ p: users.dmPolicy }).from(users).where(eq(users.name, user));
      return (r?.p ?? "anyone") as DmPolicy;
    });
  }

  dmAllowed(from: string, to: string): Promise<boolean> {
    if (from === to) return Promise.resolve(true);
    return this.read("dmAllowed", async () => {
      const [r] = await this.sql`SELECT CASE
          WHEN EXISTS (SELECT 1 FROM blocks WHERE "user" = ${to} AND blocked = ${from}) THEN false
          WHEN u.dm_policy = 'anyone' THEN true
          WHEN u.dm_policy = 'groups' THEN EXISTS (SELECT 1 FROM memberships a JOIN memberships b ON b.grp = a.grp
            WHERE a."user" = ${to} AND b."user" = ${from})
          ELSE false END AS ok FROM users u WHERE u.name = ${to}`;
      return r?.ok === true;
    });
  }

  addMember(grp: string, user: string, now: number): Promise<number> {
    return this.write("addMember", async (tx) => {
      // No such group: 0, as for a member already there. The seq row is locked only for a change.
      const r = await tx`WITH m AS (
          INSERT INTO memberships (grp, "user", joined)
            SELECT ${grp}, ${user}, ${now}::int8 WHERE EXISTS (SELECT 1 FROM groups WHERE name = ${grp})
            ON CONFLICT DO NOTHING RETURNING 1)
        UPDATE tcpchat_seq SET seq = seq + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM m) RETURNING seq`;
      if (r.length === 0) return 0;
      await this.markJoined(tx, grp, user);
      return Number(r[0].seq);
    });
  }

  /** A new member has read everything before their join (PROTOCOL.md §3.6). The seq row is locked by then. */
  private async markJoined(tx: Tx, grp: string, user: string): Promise<void> {
    await tx`INSERT INTO reads ("user", conv, mid) SELECT ${user}, ${groupConv(grp)}, last_mid FROM tcpchat_seq WHERE id = 1
      ON CONFLICT ("user", conv) DO UPDATE SET mid = GREATEST(reads.mid, EXCLUDED.mid)`;
  }

  removeMember(grp: string, user: string): Promise<number> {
    return this.write("removeMember", async (tx) => {
      const r = await tx`WITH d AS (DELETE FROM memberships WHERE grp = ${grp} AND "user" = ${user} RETURNING 1)
        UPDATE tcpchat_seq SET seq = seq + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM d) RETURNING seq`;
      return r.length === 1 ? Number(r[0].seq) : 0;
    });
  }

  groupsCreatedBy(owner: string): Promise<number> {
    return this.read("groupsCreatedBy", async () => {
      const [r] = await this.db.select({ n: count() }).from(groups).where(eq(groups.owner, owner));
      return r!.n;
    });
  }

  groupCount(user: string): Promise<number> {
    return this.read("groupCount", async () => {
      const [r] = await this.db.select({ n: count() }).from(memberships).where(eq(memberships.user, user));
      return r!.n;
    });
  }

  allMemberships(): Promise<MembershipRow[]> {
    return this.read("allMemberships", async () =>
      (await this.db.select({ grp: memberships.grp, user: memberships.user, muted: memberships.muted }).from(memberships)).map((m) => ({
        grp: m.grp,
        user: m.user,
        muted: m.muted ?? 0,
      })),
    );
  }

  userGroups(user: string): Promise<UserGroupRow[]> {
    return this.read("userGroups", async () =>
      (
        await this.db
          .select({ ...GROUP_COLUMNS, role: memberships.role })
          .from(memberships)
          .innerJoin(groups, eq(groups.name, memberships.grp))
          .where(eq(memberships.user, user))
          // Byte order, as SQLite's BINARY collation sorts (the database's collation may differ).
          .orderBy(asc(sqlCollateC(groups.name)))
      ).map((r) => ({ ...groupRow(r), role: r.role as Role })),
    );
  }

  async lastMid(): Promise<number> {
    return (await this.position()).mid;
  }

  position(): Promise<Position> {
    return this.read("position", async () => {
      const [r] = await this.sql`SELECT seq, last_mid FROM tcpchat_seq WHERE id = 1`;
      return { seq: Number(r.seq), mid: Number(r.last_mid) };
    });
  }

  entryAt(conv: string, mid: number): Promise<EntryInfo | undefined> {
    return this.read("entryAt", async () => {
      const [r] = await this.sql`SELECT sender, kind, deleted FROM messages WHERE conv = ${conv} AND mid = ${mid}::int8`;
      if (!r) return undefined;
      const info: EntryInfo = { sender: r.sender, deleted: r.deleted !== null };
      if (r.kind !== null) info.kind = r.kind as EntryKind;
      return info;
    });
  }

  readMarker(user: string, conv: string): Promise<number> {
    return this.read("readMarker", async () => {
      const [r] = await this.sql`SELECT mid FROM reads WHERE "user" = ${user} AND conv = ${conv}`;
      return r ? Number(r.mid) : 0;
    });
  }

  convs(user: string): Promise<ConvState[]> {
    return this.read("convs", async () => {
      // As in SqliteStore.convs: index probes and index-only range scans of messages_conv.
      const rows = (await this.sql`WITH c AS (
          SELECT 'g:' || grp AS conv, grp, NULL::text AS peer FROM memberships WHERE "user" = ${user}
          UNION ALL SELECT conv, NULL, peer FROM dm_peers WHERE "user" = ${user}),
        s AS (SELECT c.conv, c.grp, c.peer, coalesce(r.mid, 0) AS read FROM c LEFT JOIN reads r ON r."user" = ${user} AND r.conv = c.conv)
        SELECT s.conv, s.grp, s.peer, s.read,
          coalesce((SELECT max(mid) FROM messages WHERE conv = s.conv), 0) AS last,
          (SELECT count(*) FROM messages
            WHERE conv = s.conv AND mid > s.read AND kind IS NULL AND deleted IS NULL AND sender <> ${user}) AS unread,
          (SELECT count(*) FROM mentions WHERE "user" = ${user} AND conv = s.conv AND mid > s.read) AS mentions,
          (SELECT mid FROM messages WHERE conv = s.conv AND kind IS NULL AND deleted IS NULL ORDER BY mid DESC LIMIT 1) AS pmid
        FROM s`) as Array<{
        conv: string;
        grp: string | null;
        peer: string | null;
        read: string;
        last: string;
        unread: string;
        mentions: string;
        pmid: string | null;
      }>;
      const mids = rows.filter((r) => r.pmid !== null).map((r) => r.pmid);
      const previews = new Map<number, { mid: string; ts: string; sender: string; text: Uint8Array | null; file_name: Uint8Array | null; file_type: Uint8Array | null; file_size: string | null }>();
      if (mids.length > 0) {
        const list = `{${mids.join(",")}}`;
        const ps = await this.sql`SELECT mid, ts, sender, substring(text from 1 for ${PREVIEW_BYTES}::int) AS text, file_name, file_type,
            file_size FROM messages WHERE mid = ANY(${list}::int8[])`;
        for (const p of ps) previews.set(Number(p.mid), p);
      }
      return rows.map((r) => {
        const s: ConvState = {
          conv: r.conv,
          last: Number(r.last),
          read: Number(r.read),
          unread: Number(r.unread),
          mentions: Number(r.mentions),
        };
        if (r.grp !== null) s.grp = r.grp;
        if (r.peer !== null) s.peer = r.peer;
        const p = r.pmid === null ? undefined : previews.get(Number(r.pmid));
        if (p) {
          s.preview = { mid: Number(p.mid), ts: Number(p.ts), sender: p.sender };
          if (p.text !== null) s.preview.text = previewOf(p.text);
          if (p.file_name !== null) s.preview.file = { name: str(p.file_name)!, type: str(p.file_type) ?? "", size: Number(p.file_size ?? 0) };
        }
        return s;
      });
    });
  }

  async search(user: string, q: string, before: number, limit: number): Promise<MidSize[]> {
    await this.indexSearch();
    const pattern = likePattern(q);
    const out: MidSize[] = [];
    const chunk = Math.max(limit, 64);
    for (let bound = before; out.length < limit; ) {
      // ILIKE (by the trigram index, for 3 characters or more) finds candidates: each is checked
      // with matchesQuery on the message's own text, so every store finds the same messages.
      const rows = (await this.read(
        "search",
        () => this.sql`SELECT s.mid, m.text, m.size FROM search_text s JOIN messages m ON m.mid = s.mid
          WHERE s.body ILIKE ${pattern} AND s.mid < ${bound}::int8 AND m.kind IS NULL AND m.deleted IS NULL
            AND (s.conv IN (SELECT 'g:' || grp FROM memberships WHERE "user" = ${user}) OR s.to_user = ${user}
              OR (s.sender = ${user} AND s.to_user IS NOT NULL))
          ORDER BY s.mid DESC LIMIT ${chunk}::int8`,
      )) as Array<{ mid: string; text: Uint8Array | null; size: number }>;
      for (const r of rows) {
        if (matchesQuery(str(r.text), q)) out.push({ mid: Number(r.mid), size: r.size });
        if (out.length === limit) break;
      }
      if (rows.length < chunk) break;
      bound = Number(rows[rows.length - 1]!.mid);
    }
    return out;
  }

  /**
   * Indexes for search what was stored since (any node may; they take turns): under the commit
   * lock, so that an edit or delete, which updates search_text in its commit, is either already in
   * the text read here or comes after this row is in. Chunk by chunk, commits waiting for each.
   */
  private async indexSearch(): Promise<void> {
    for (;;) {
      const [st] = await this.read("searchState", () => this.sql`SELECT s.indexed, q.last_mid FROM search_state s, tcpchat_seq q
        WHERE s.id = 1 AND q.id = 1`);
      if (Number(st.indexed) >= Number(st.last_mid)) return;
      const done = await this.write("indexSearch", async (tx) => {
        const [q] = await tx`SELECT last_mid FROM tcpchat_seq WHERE id = 1 FOR UPDATE`;
        const [x] = await tx`SELECT indexed FROM search_state WHERE id = 1`;
        const from = Number(x.indexed);
        const upto = Math.min(Number(q.last_mid), from + INDEX_CHUNK);
        if (from >= upto) return true;
        const rows = (await tx`SELECT mid, conv, sender, to_user, text FROM messages
          WHERE mid > ${from}::int8 AND mid <= ${upto}::int8 AND kind IS NULL AND deleted IS NULL AND text IS NOT NULL`) as Array<{
          mid: string;
          conv: string;
          sender: string;
          to_user: string | null;
          text: Uint8Array;
        }>;
        if (rows.length > 0) {
          const items = rows.map((r) => ({ mid: r.mid, conv: r.conv, sender: r.sender, to_user: r.to_user, body: searchBody(str(r.text)!) }));
          await tx`INSERT INTO search_text ${tx(items, "mid", "conv", "sender", "to_user", "body")} ON CONFLICT DO NOTHING`;
        }
        await tx`UPDATE search_state SET indexed = ${upto}::int8 WHERE id = 1`;
        return upto >= Number(q.last_mid);
      });
      if (done) return;
    }
  }

  async commit(batch: NewMessage[], now: number): Promise<Committed> {
    if (batch.length === 0) return { seq: (await this.position()).seq, results: [] };
    // Everything that needs no lock is done before taking it.
    const rows = batch.map((m) => prepare(m, now));
    const keys = batch.map((m) => (m.cid === undefined ? undefined : `${m.sender}\0${m.cid}`));
    // The distinct (sender, cid) pairs of the batch, to look up.
    const withCid: Prepared[] = [];
    const withCidKeys: string[] = [];
    const seenKey = new Set<string>();
    rows.forEach((r, i) => {
      const k = keys[i];
      if (k !== undefined && !seenKey.has(k)) {
        seenKey.add(k);
        withCid.push(r);
        withCidKeys.push(k);
      }
    });

    return this.deadline(
      (async () => {
        for (let attempt = 0; ; attempt++) {
          const at = { committing: false };
          try {
            return await this.commitOnce(batch, rows, keys, withCid, withCidKeys, now, at);
          } catch (e) {
            // Retried only when the COMMIT was not sent: then nothing of it can have been stored.
            if (at.committing || attempt > 0 || this.closed || !isConnectionError(e)) throw e;
          }
        }
      })(),
      "commit",
    );
  }

  /**
   * One commit in two round trips on a connection of its own, each a pipeline of statements sent
   * together: BEGIN, the lock and the cid lookup; then the INSERT (with the new last_mid) and the
   * COMMIT. Between the two, the mids are assigned here. The lock is held from the server's
   * UPDATE of the seq row to its COMMIT: one trip to this process and back, not three.
   */
  private async commitOnce(
    batch: NewMessage[],
    rows: Prepared[],
    keys: Array<string | undefined>,
    withCid: Prepared[],
    withCidKeys: string[],
    now: number,
    at: { committing: boolean },
  ): Promise<Committed> {
    // The mids that edits, deletes and reactions are about: read under the lock with the cids.
    const refs = [...new Set(batchEntries(rows).map((r) => r.ref!))];
    // The uploads the batch's files name (PROTOCOL.md §3.9): locked, so that no expiry or other
    // commit takes one of them before this transaction ends.
    const ups = [...new Set(batch.flatMap((m) => (m.kind === undefined && m.file?.upload !== undefined ? [m.file.upload] : [])))];
    const conn = await this.sql.reserve();
    try {
      // The lock first. The batch's (sender, cid) pairs stored already are read right behind it: the
      // server runs the SELECT once it holds the lock, with a snapshot taken then, so it sees every
      // earlier commit, and no other node can add one of these pairs before this transaction ends.
      // One index probe per pair (LIMIT 1 keeps the planner from a hash join over the whole table).
      const first = await Promise.allSettled([
        conn`BEGIN`,
        conn`UPDATE tcpchat_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq, last_mid`,
        withCid.length === 0
          ? Promise.resolve([])
          : conn`SELECT b.i, m.mid, m.ts
          FROM unnest(${conn.array(withCid.map((r) => r.sender), "TEXT")}, ${conn.array(withCid.map((r) => r.cid), "BYTEA")})
            WITH ORDINALITY AS b(sender, cid, i)
          CROSS JOIN LATERAL (SELECT mid, ts FROM messages WHERE sender = b.sender AND cid = b.cid AND cid IS NOT NULL LIMIT 1) m`,
        refs.length === 0
          ? Promise.resolve([])
          : conn`SELECT mid, conv, kind, deleted, file_id FROM messages WHERE mid = ANY(${`{${refs.join(",")}}`}::int8[])`,
        ups.length === 0
          ? Promise.resolve([])
          : conn`SELECT id, "user", done, file, size, sha256 FROM uploads WHERE id = ANY(${conn.array(ups, "TEXT")}) ORDER BY id FOR UPDATE`,
      ]);
      const failed = first.find((r) => r.status === "rejected");
      if (failed) {
        // Nothing was committed; end the transaction before the connection goes back to the pool.
        if (first[0]!.status === "fulfilled") await conn`ROLLBACK`.catch(() => {});
        throw (failed as PromiseRejectedResult).reason;
      }
      const [s] = (first[1] as PromiseFulfilledResult<Array<{ seq: string; last_mid: string }>>).value;
      const found = (first[2] as PromiseFulfilledResult<Array<{ i: string; mid: string; ts: string }>>).value;
      const seq = Number(s!.seq);
      let last = Number(s!.last_mid);
      const prior = new Map<string, CommitResult>();
      for (const f of found) prior.set(withCidKeys[Number(f.i) - 1]!, { mid: Number(f.mid), ts: Number(f.ts), duplicate: true });
      const targets = new Map<number, Target>();
      for (const t of (
        first[3] as PromiseFulfilledResult<Array<{ mid: string; conv: string; kind: string | null; deleted: string | null; file_id: string | null }>>
      ).value)
        targets.set(Number(t.mid), { conv: t.conv, kind: t.kind, deleted: t.deleted !== null, file: t.file_id === null ? null : Number(t.file_id) });
      /** The finished uploads of the batch's senders, by id: each used up by the first message naming it. */
      const uploadsById = new Map<string, { user: string; done: number; file: string; size: string; sha256: string }>();
      for (const u of (first[4] as PromiseFulfilledResult<Array<{ id: string; user: string; done: number; file: string; size: string; sha256: string }>>)
        .value)
        uploadsById.set(u.id, u);
      const usedUploads: string[] = [];
      /** The files held by the messages this batch deletes: removed at its end if nothing holds them then. */
      const released: number[] = [];

      const results: CommitResult[] = new Array(rows.length);
      const fresh: Prepared[] = [];
      /** What the fresh entries change, in their order (sent after the INSERT). */
      const effects: Array<{ i: number; r: Prepared }> = [];
      const mentionRows: Array<[string, string, number]> = [];
      const pairs: Array<[string, string, string]> = [];
      const newPairs: string[] = [];
      for (let i = 0; i < rows.length; i++) {
        const k = keys[i];
        const p = k === undefined ? undefined : prior.get(k);
        if (p) {
          results[i] = p;
          continue;
        }
        const r = rows[i]!;
        if (r.kind !== null && r.kind !== "read") {
          // The core checked the target; a delete committed since (or earlier in this batch) refuses it.
          const t = targets.get(r.ref!);
          if (!t || t.conv !== r.conv || t.kind !== null || t.deleted) {
            results[i] = { mid: 0, ts: now, duplicate: false, refused: true };
            continue;
          }
          if (r.kind === "delete") {
            t.deleted = true;
            if (t.file !== null) released.push(t.file);
          }
        }
        const upload = r.kind === null ? batch[i]!.file?.upload : undefined;
        if (upload !== undefined) {
          // The sender's finished upload holds the file; gone (expired, sent already) or not
          // theirs: the message is refused and nothing of it is stored.
          const u = uploadsById.get(upload);
          if (!u || u.user !== r.sender || u.done !== 1) {
            results[i] = { mid: 0, ts: now, duplicate: false, refused: true };
            continue;
          }
          uploadsById.delete(upload);
          usedUploads.push(upload);
          r.file_id = Number(u.file);
          r.file_size = Number(u.size);
          r.file_sha = u.sha256;
        }
        r.mid = ++last;
        fresh.push(r);
        results[i] = { mid: r.mid, ts: now, duplicate: false };
        // A later message of this batch with the same (sender, cid) is a duplicate of this one.
        if (k !== undefined) prior.set(k, { mid: r.mid, ts: now, duplicate: true });
        if (r.kind === "read") r.ref = Math.min(batch[i]!.ref!, r.mid - 1); // never past itself (a retry starts again from the request)
        if (r.kind !== null) effects.push({ i, r });
        else if (r.grp !== null) {
          if (batch[i]!.text?.includes("@")) for (const u of mentionsOf(batch[i]!.text, r.sender)) mentionRows.push([u, r.conv, r.mid]);
        } else if (!this.knownPairs.has(r.conv) && !newPairs.includes(r.conv)) {
          pairs.push([r.sender, r.to_user!, r.conv], [r.to_user!, r.sender, r.conv]);
          newPairs.push(r.conv);
        }
      }

      const second: Array<Promise<unknown>> = [];
      for (let i = 0; i < fresh.length; i += INSERT_CHUNK) {
        const chunk = fresh.slice(i, i + INSERT_CHUNK);
        second.push(
          i + INSERT_CHUNK >= fresh.length
            ? conn`WITH ins AS (INSERT INTO messages ${conn(chunk, ...COLUMNS)})
                UPDATE tcpchat_seq SET last_mid = ${last}::int8 WHERE id = 1`
            : conn`INSERT INTO messages ${conn(chunk, ...COLUMNS)}`,
        );
      }
      // The messages hold their files now: the uploads are used up.
      if (usedUploads.length > 0) second.push(conn`DELETE FROM uploads WHERE id = ANY(${conn.array(usedUploads, "TEXT")})`);
      if (mentionRows.length > 0) second.push(insertMentions(conn, mentionRows));
      if (pairs.length > 0)
        second.push(conn`INSERT INTO dm_peers ("user", peer, conv) SELECT * FROM unnest(${conn.array(pairs.map((p) => p[0]), "TEXT")},
          ${conn.array(pairs.map((p) => p[1]), "TEXT")}, ${conn.array(pairs.map((p) => p[2]), "TEXT")}) ON CONFLICT DO NOTHING`);
      /** Index in `second` of each read's marker statement, by its index in the batch. */
      const markers = new Map<number, number>();
      for (const { i, r } of effects) {
        const m = batch[i]!;
        const ref = r.ref!;
        switch (r.kind) {
          case "edit":
            second.push(conn`UPDATE messages SET text = ${r.text}, edited = ${now}::int8,
              size = size - coalesce(length(text), 0) + ${r.text!.length}::int WHERE mid = ${ref}::int8`);
            // Indexed for search already (under this lock, see indexSearch): the new text replaces it.
            second.push(conn`INSERT INTO search_text (mid, conv, sender, to_user, body)
              SELECT mid, conv, sender, to_user, ${searchBody(m.text!)} FROM messages
              WHERE mid = ${ref}::int8 AND mid <= (SELECT indexed FROM search_state WHERE id = 1)
              ON CONFLICT (mid) DO UPDATE SET body = EXCLUDED.body`);
            if (r.grp !== null) {
              second.push(conn`DELETE FROM mentions WHERE mid = ${ref}::int8`);
              const ms = mentionsOf(m.text, m.sender).map((u): [string, string, number] => [u, r.conv, ref]);
              if (ms.length > 0) second.push(insertMentions(conn, ms));
            }
            break;
          case "delete":
            second.push(
              conn`UPDATE messages SET text = NULL, file_name = NULL, file_type = NULL, file_data = NULL, file_id = NULL, file_size = NULL,
                file_sha = NULL, edited = NULL, deleted = ${now}::int8, size = 96 + coalesce(length(cid), 0) WHERE mid = ${ref}::int8`,
              conn`UPDATE messages SET text = NULL, size = 96 + coalesce(length(cid), 0) WHERE kind = 'edit' AND ref = ${ref}::int8`,
              conn`DELETE FROM reactions WHERE mid = ${ref}::int8`,
              conn`DELETE FROM mentions WHERE mid = ${ref}::int8`,
              conn`DELETE FROM search_text WHERE mid = ${ref}::int8`,
            );
            break;
          case "react":
            second.push(conn`INSERT INTO reactions (mid, "user", emoji, at) VALUES (${ref}::int8, ${r.sender}, ${r.text}, ${r.mid}::int8)
              ON CONFLICT DO NOTHING`);
            break;
          case "unreact":
            second.push(conn`DELETE FROM reactions WHERE mid = ${ref}::int8 AND "user" = ${r.sender} AND emoji = ${r.text}`);
            break;
          case "read":
            markers.set(i, second.length);
            second.push(conn`INSERT INTO reads ("user", conv, mid) VALUES (${r.sender}, ${r.about}, ${ref}::int8)
              ON CONFLICT ("user", conv) DO UPDATE SET mid = GREATEST(reads.mid, EXCLUDED.mid) RETURNING mid`);
            break;
        }
      }
      if (released.length > 0) second.push(...dropUnused(conn, released));
      at.committing = true;
      // After a failed statement the server answers this COMMIT with ROLLBACK: either way the
      // transaction ends here.
      const commit = conn`COMMIT`;
      const done = await Promise.allSettled([...second, commit]);
      const bad = done.find((r) => r.status === "rejected");
      if (bad) {
        const e = (bad as PromiseRejectedResult).reason;
        // A statement refused by the server: the COMMIT rolled everything back, for certain.
        if (!isConnectionError(e)) at.committing = false;
        throw e;
      }
      const tag = (done[done.length - 1] as PromiseFulfilledResult<{ command?: string }>).value.command;
      if (tag !== "COMMIT") {
        at.committing = false; // the server says it rolled back
        throw new Error(`postgres: the commit ended in ${tag}`);
      }
      for (const [i, j] of markers) {
        const [m] = (done[j] as PromiseFulfilledResult<Array<{ mid: string }>>).value;
        results[i]!.read = Number(m!.mid);
      }
      if (this.knownPairs.size + newPairs.length > KNOWN_PAIRS_MAX) this.knownPairs.clear();
      for (const c of newPairs) this.knownPairs.add(c);
      return { seq, results };
    } finally {
      conn.release();
    }
  }

  async history(conv: string, page: Page): Promise<StoredMessage[]> {
    return this.messagesByMid((await this.historySizes(conv, page)).map((r) => r.mid));
  }

  async sync(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    return this.messagesByMid((await this.syncSizes(user, after, limit)).map((r) => r.mid));
  }

  historySizes(conv: string, page: Page): Promise<MidSize[]> {
    const after = page.after ?? 0;
    const before = page.before ?? NO_BOUND;
    const limit = page.limit;
    return this.read("historySizes", async () => {
      if (page.after !== undefined) {
        return toSizes(
          await this.sql`SELECT mid, size FROM messages WHERE conv = ${conv} AND mid > ${after}::int8 AND mid < ${before}::int8
            ORDER BY mid ASC LIMIT ${limit}::int8`,
        );
      }
      return toSizes(
        await this.sql`SELECT mid, size FROM messages WHERE conv = ${conv} AND mid > ${after}::int8 AND mid < ${before}::int8
          ORDER BY mid DESC LIMIT ${limit}::int8`,
      ).reverse();
    });
  }

  syncSizes(user: string, after: number, limit: number): Promise<MidSize[]> {
    // Four range scans (the user's groups, DMs received, DMs sent but not to oneself, the group
    // changes about the user), each cut at the limit, merged by mid (UNION: a change of one of the
    // user's groups is found twice): cost follows this user's traffic, not the whole table's.
    return this.read("syncSizes", async () =>
      toSizes(
        await this.sql`SELECT mid, size FROM (
          (SELECT mid, size FROM messages
            WHERE conv IN (SELECT 'g:' || grp FROM memberships WHERE "user" = ${user}) AND mid > ${after}::int8
            ORDER BY mid LIMIT ${limit}::int8)
          UNION ALL
          (SELECT mid, size FROM messages WHERE to_user = ${user} AND mid > ${after}::int8 ORDER BY mid LIMIT ${limit}::int8)
          UNION ALL
          (SELECT mid, size FROM messages
            WHERE sender = ${user} AND to_user IS NOT NULL AND to_user <> ${user} AND mid > ${after}::int8
            ORDER BY mid LIMIT ${limit}::int8)
          UNION
          (SELECT mid, size FROM messages WHERE target = ${user} AND mid > ${after}::int8 ORDER BY mid LIMIT ${limit}::int8)
        ) s ORDER BY mid LIMIT ${limit}::int8`,
      ),
    );
  }

  messagesByMid(mids: readonly number[]): Promise<StoredMessage[]> {
    const wanted = mids.filter((m) => Number.isSafeInteger(m));
    if (wanted.length === 0) return Promise.resolve([]);
    const list = `{${wanted.join(",")}}`;
    return this.read("messagesByMid", async () => {
      const [rows, rs] = await Promise.all([
        this.sql`SELECT mid, ts, sender, grp, to_user, cid, text, file_name, file_type, file_id, file_size, file_sha, kind, ref, about, edited, deleted, target, until
          FROM messages WHERE mid = ANY(${list}::int8[]) ORDER BY mid` as Promise<MessageRow[]>,
        this.sql`SELECT mid, "user", emoji FROM reactions WHERE mid = ANY(${list}::int8[]) ORDER BY mid, at` as Promise<
          Array<{ mid: string; user: string; emoji: Uint8Array }>
        >,
      ]);
      const reactions = groupReactions(rs.map((r) => ({ mid: Number(r.mid), user: r.user, emoji: str(r.emoji)! })));
      return rows.map((r) => {
        const m = toStored(r);
        const x = m.kind === undefined ? reactions.get(m.mid) : undefined;
        if (x) m.reactions = x;
        return m;
      });
    });
  }

  // ---- files (PROTOCOL.md §3.9) ------------------------------------------------------
  // As in SqliteStore (sqlite-files.ts), for several nodes at once: an upload's row is locked by
  // whatever changes it (a chunk, a finish, a reset, an expiry, the commit that uses it up), and a
  // stored file by whatever makes something hold it or drops it (finishUpload, dropUnused).

  createUpload(id: string, user: string, size: number, sha256: string, now: number): Promise<UploadRow> {
    return this.write("createUpload", async (tx) => {
      const [r] = await tx`WITH f AS (INSERT INTO files (sha256, size, done, created) VALUES (${sha256}, ${size}::int8, 0, ${now}::int8) RETURNING id)
        INSERT INTO uploads (id, "user", size, sha256, received, done, file, touched)
          SELECT ${id}, ${user}, ${size}::int8, ${sha256}, 0, 0, f.id, ${now}::int8 FROM f RETURNING *`;
      return toUpload(r as UploadSql);
    });
  }

  getUpload(id: string): Promise<UploadRow | undefined> {
    return this.read("getUpload", async () => {
      const [r] = await this.sql`SELECT * FROM uploads WHERE id = ${id}`;
      return r ? toUpload(r as UploadSql) : undefined;
    });
  }

  findUpload(user: string, sha256: string, size: number): Promise<UploadRow | undefined> {
    return this.read("findUpload", async () => {
      const [r] = await this.sql`SELECT * FROM uploads WHERE "user" = ${user} AND sha256 = ${sha256} AND size = ${size}::int8
        ORDER BY done DESC, received DESC LIMIT 1`;
      return r ? toUpload(r as UploadSql) : undefined;
    });
  }

  fileUsage(user: string): Promise<FileUsage> {
    return this.read("fileUsage", async () => {
      const [r] = await this.sql`SELECT
          coalesce((SELECT sum(size) FROM uploads WHERE "user" = ${user}), 0)
          + coalesce((SELECT sum(file_size) FROM messages WHERE sender = ${user} AND file_id IS NOT NULL AND deleted IS NULL), 0) AS bytes,
          (SELECT count(*) FROM uploads WHERE "user" = ${user}) AS uploads`;
      return { bytes: Number(r.bytes), uploads: Number(r.uploads) };
    });
  }

  appendUpload(id: string, offset: number, data: Uint8Array, now: number): Promise<number | undefined> {
    // One statement (atomic by itself, one round trip): the check and the move of `received`
    // under the upload's row lock, and the chunk. A chunk is never written twice nor leaves a
    // hole. Retried once after a connection error like a read: if the first try did commit, the
    // retry finds the offset moved and writes nothing (the client asks for the offset again).
    return this.read("appendUpload", async () => {
      const [r] = await this.sql`WITH u AS (
          UPDATE uploads SET received = received + ${data.length}::int8, touched = ${now}::int8
          WHERE id = ${id} AND done = 0 AND received = ${offset}::int8 AND ${offset}::int8 + ${data.length}::int8 <= size
          RETURNING received, file),
        c AS (INSERT INTO file_chunks (file, off, data) SELECT file, ${offset}::int8, ${data} FROM u)
        SELECT received FROM u`;
      return r ? Number(r.received) : undefined;
    });
  }

  finishUpload(id: string, now: number): Promise<UploadRow> {
    return this.write("finishUpload", async (tx) => {
      const [row] = await tx`SELECT * FROM uploads WHERE id = ${id} FOR UPDATE`;
      if (!row) throw new Error(`no upload ${id}`);
      const u = toUpload(row as UploadSql);
      let file = u.file;
      /** Uses the stored file of this content if there is one (locked: see dropUnused), or makes the upload's own that file. */
      const settle = async (q: SQL): Promise<void> => {
        const [other] = await q`SELECT id FROM files WHERE sha256 = ${u.sha256} AND done = 1 FOR SHARE`;
        if (other && Number(other.id) !== u.file) {
          // The same content is stored already: this upload uses it, its own copy goes.
          await q`DELETE FROM file_chunks WHERE file = ${u.file}::int8`;
          await q`DELETE FROM files WHERE id = ${u.file}::int8`;
          file = Number(other.id);
        } else if (!other) await q`UPDATE files SET done = 1 WHERE id = ${u.file}::int8`;
      };
      if (!u.done) {
        try {
          await tx.savepoint((sp) => settle(sp));
        } catch (e) {
          // Another node finished an upload of the same content at the same moment (files_sha256
          // is unique among done files): once it committed, this one finds and uses its file.
          if (!isUniqueViolation(e)) throw e;
          await settle(tx);
        }
      }
      await tx`UPDATE uploads SET done = 1, file = ${file}::int8, touched = ${now}::int8 WHERE id = ${id}`;
      return { ...u, done: true, file, touched: now };
    });
  }

  async resetUpload(id: string, now: number): Promise<void> {
    await this.write("resetUpload", async (tx) => {
      const [u] = await tx`SELECT file, done FROM uploads WHERE id = ${id} FOR UPDATE`;
      if (!u || u.done === 1) return;
      await tx`DELETE FROM file_chunks WHERE file = ${u.file}::int8`;
      await tx`UPDATE uploads SET received = 0, touched = ${now}::int8 WHERE id = ${id}`;
    });
  }

  readFile(file: number, offset: number, len: number): Promise<Uint8Array> {
    if (len <= 0) return Promise.resolve(EMPTY);
    // Only the part asked for leaves the server (file_chunks.data is stored uncompressed, so
    // only the slices holding it are read: migration 0005_files).
    return this.read("readFile", async () => {
      const [r] = await this.sql`SELECT substring(data FROM (${offset}::int8 - off + 1)::int FOR ${len}::int) AS data FROM file_chunks
        WHERE file = ${file}::int8 AND off <= ${offset}::int8 ORDER BY off DESC LIMIT 1`;
      return r ? (r.data as Uint8Array) : EMPTY;
    });
  }

  messageFile(mid: number): Promise<MessageFile | undefined> {
    return this.read("messageFile", async () => {
      const [r] = await this.sql`SELECT conv, file_id, file_size, file_sha FROM messages
        WHERE mid = ${mid}::int8 AND kind IS NULL AND deleted IS NULL AND file_id IS NOT NULL`;
      return r ? { conv: r.conv, file: Number(r.file_id), size: Number(r.file_size), sha256: r.file_sha } : undefined;
    });
  }

  expireUploads(before: number): Promise<number> {
    return this.write("expireUploads", async (tx) => {
      const gone = (await tx`DELETE FROM uploads WHERE touched < ${before}::int8 RETURNING file`) as Array<{ file: string }>;
      await dropUnusedIn(tx, gone.map((g) => g.file));
      return gone.length;
    });
  }

  // ---- operations ---------------------------------------------------------------

  async ban(user: string, reason: string, now: number): Promise<void> {
    await this.read("ban", () =>
      this.db.insert(bans).values({ user, reason, at: now }).onConflictDoUpdate({ target: bans.user, set: { reason, at: now } }),
    );
  }

  async unban(user: string): Promise<boolean> {
    const r = await this.read("unban", () => this.sql`DELETE FROM bans WHERE "user" = ${user} RETURNING 1`);
    return r.length === 1;
  }

  banned(user: string): Promise<boolean> {
    return this.read("banned", async () => (await this.sql`SELECT 1 FROM bans WHERE "user" = ${user}`).length === 1);
  }

  bans(): Promise<BanRow[]> {
    return this.read("bans", () => this.db.select().from(bans).orderBy(sql`${bans.user} COLLATE "C"`));
  }

  eraseUser(user: string): Promise<number> {
    return this.write("eraseUser", async (tx) => {
      // What hangs on the user's messages (a search_text row the indexer adds meanwhile for one
      // of them is never a result: search joins messages).
      await tx`DELETE FROM search_text WHERE sender = ${user}`;
      await tx`DELETE FROM reactions WHERE mid IN (SELECT mid FROM messages WHERE sender = ${user})`;
      await tx`DELETE FROM mentions WHERE mid IN (SELECT mid FROM messages WHERE sender = ${user})`;
      await this.deleteAbout(tx, (await tx`SELECT mid FROM messages WHERE sender = ${user}`) as Array<{ mid: string }>);
      const held = (await tx`SELECT DISTINCT file_id FROM messages WHERE sender = ${user} AND file_id IS NOT NULL`) as Array<{ file_id: string }>;
      const r = await tx`DELETE FROM messages WHERE sender = ${user}`;
      await dropUnusedIn(tx, held.map((h) => h.file_id));
      // What the user left on others' messages, and their own conversation state.
      await tx`DELETE FROM reactions WHERE "user" = ${user}`;
      await tx`DELETE FROM mentions WHERE "user" = ${user}`;
      await tx`DELETE FROM reads WHERE "user" = ${user}`;
      await tx`DELETE FROM dm_peers WHERE "user" = ${user}`;
      await tx`DELETE FROM invites WHERE "user" = ${user}`;
      await tx`DELETE FROM blocks WHERE "user" = ${user} OR blocked = ${user}`;
      await tx`DELETE FROM tokens WHERE "user" = ${user}`;
      await tx`UPDATE users SET pass_hash = '' WHERE name = ${user}`;
      this.knownPairs.clear();
      return r.count;
    });
  }

  deleteGroup(name: string): Promise<number> {
    const conv = `g:${name}`;
    return this.write("deleteGroup", async (tx) => {
      await tx`DELETE FROM search_text WHERE conv = ${conv}`;
      await tx`DELETE FROM reactions WHERE mid IN (SELECT mid FROM messages WHERE conv = ${conv})`;
      await tx`DELETE FROM mentions WHERE conv = ${conv}`;
      await tx`DELETE FROM reads WHERE conv = ${conv}`;
      const held = (await tx`SELECT DISTINCT file_id FROM messages WHERE conv = ${conv} AND file_id IS NOT NULL`) as Array<{ file_id: string }>;
      const r = await tx`DELETE FROM messages WHERE conv = ${conv}`;
      await dropUnusedIn(tx, held.map((h) => h.file_id));
      await tx`DELETE FROM memberships WHERE grp = ${name}`;
      await tx`DELETE FROM invites WHERE grp = ${name}`;
      await tx`DELETE FROM group_bans WHERE grp = ${name}`;
      await tx`DELETE FROM groups WHERE name = ${name}`;
      return r.count;
    });
  }

  userMessages(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    return this.read("userMessages", async () => {
      const rows = (await this.sql`SELECT mid, ts, sender, grp, to_user, cid, text, file_name, file_type, file_id, file_size, file_sha, kind, ref, about, edited, deleted, target, until
        FROM messages WHERE (sender = ${user} OR to_user = ${user}) AND mid > ${after}::int8
        ORDER BY mid LIMIT ${limit}::int8`) as MessageRow[];
      return rows.map(toStored);
    });
  }

  purge(before: number, limit: number): Promise<number> {
    // One node at a time (the others skip a round); mids are kept in tcpchat_seq.last_mid.
    return this.write("purge", async (tx) => {
      const [got] = await tx`SELECT pg_try_advisory_xact_lock(${PURGE_LOCK}::int8) AS ok`;
      if (!got.ok) return 0;
      const r = await tx`DELETE FROM messages WHERE mid IN (SELECT mid FROM messages ORDER BY mid LIMIT ${limit}::int8)
        AND ts < ${before}::int8 RETURNING mid, file_id`;
      if (r.count > 0) {
        const mids = `{${(r as Array<{ mid: string }>).map((x) => x.mid).join(",")}}`;
        await tx`DELETE FROM search_text WHERE mid = ANY(${mids}::int8[])`;
        await tx`DELETE FROM reactions WHERE mid = ANY(${mids}::int8[])`;
        await tx`DELETE FROM mentions WHERE mid = ANY(${mids}::int8[])`;
        await this.deleteAbout(tx, r as Array<{ mid: string }>);
        await dropUnusedIn(
          tx,
          (r as Array<{ file_id: string | null }>).flatMap((x) => (x.file_id === null ? [] : [x.file_id])),
        );
      }
      return r.count;
    });
  }

  /** Deletes the edits, deletions and reactions (from anyone) about the messages `mids` selects. */
  private async deleteAbout(tx: Tx, rows: Array<{ mid: string }>): Promise<void> {
    if (rows.length === 0) return;
    const mids = `{${rows.map((x) => x.mid).join(",")}}`;
    const about = (await tx`DELETE FROM messages WHERE kind IN ('edit', 'delete', 'react', 'unreact')
      AND ref = ANY(${mids}::int8[]) RETURNING mid`) as Array<{ mid: string }>;
    if (about.length > 0) await tx`DELETE FROM search_text WHERE mid = ANY(${`{${about.map((x) => x.mid).join(",")}}`}::int8[])`;
  }

  async backup(): Promise<void> {
    throw new Error(
      "a PostgreSQL store is backed up with PostgreSQL's own tools, while the cluster runs: pg_dump -Fc -f tcpchat.dump DBURL (restore: pg_restore -d NEWDB tcpchat.dump)",
    );
  }

  async maintain(now: number): Promise<void> {
    // Postgres reclaims space itself (autovacuum): the expired tokens to delete, and search to index.
    await this.read("maintain", () => this.db.delete(tokens).where(lte(tokens.expires, now)));
    await this.indexSearch();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sql.close({ timeout: 5 });
  }
}

/** The entries of a batch that are about an earlier message (their targets are read under the lock). */
function batchEntries(rows: Prepared[]): Prepared[] {
  return rows.filter((r) => r.kind !== null && r.kind !== "read");
}

/**
 * Removes those of the stored files `ids` that no message and no upload holds any more, bytes and
 * all (PROTOCOL.md §3.9): two statements, to run in order in the caller's transaction. The rows are
 * locked first, and only then (in a statement with a snapshot taken after the lock) is it checked
 * whether anything holds them: a finishUpload that points an upload at one of them locks it too
 * (FOR SHARE), so either it waits and finds it gone, or this waits and sees its upload.
 */
function dropUnused(conn: SQL, ids: Iterable<number>): Array<Promise<unknown>> {
  const list = int8s(new Set(ids));
  return [
    conn`SELECT id FROM files WHERE id = ANY(${list}::int8[]) ORDER BY id FOR UPDATE`,
    conn`WITH gone AS (DELETE FROM files f WHERE id = ANY(${list}::int8[])
        AND NOT EXISTS (SELECT 1 FROM messages WHERE file_id = f.id)
        AND NOT EXISTS (SELECT 1 FROM uploads WHERE file = f.id) RETURNING id)
      DELETE FROM file_chunks WHERE file IN (SELECT id FROM gone)`,
  ];
}

/** Runs dropUnused's statements in transaction `tx`. */
async function dropUnusedIn(tx: SQL, ids: Iterable<number | string>): Promise<void> {
  const list = [...ids].map(Number);
  if (list.length === 0) return;
  for (const p of dropUnused(tx, list)) await p;
}

function insertMentions(conn: SQL, rows: Array<[string, string, number]>): Promise<unknown> {
  return conn`INSERT INTO mentions ("user", conv, mid) SELECT * FROM unnest(${conn.array(rows.map((r) => r[0]), "TEXT")},
    ${conn.array(rows.map((r) => r[1]), "TEXT")}, ${conn.array(rows.map((r) => r[2]), "INT8")}) ON CONFLICT DO NOTHING`;
}

/** `col COLLATE "C"`: byte order, whatever the database's default collation. */
function sqlCollateC(col: typeof groups.name) {
  return sql`${col} COLLATE "C"`;
}
