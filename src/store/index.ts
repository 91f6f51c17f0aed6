// The store a server runs on, picked from its config: `--db` is a SQLite file path or
// ":memory:" (src/store/sqlite.ts), or a postgres:// URL (src/store/postgres.ts, the shared
// store of a cluster). Every Store implements src/store/store.ts.
import { PostgresStore } from "./postgres.ts";
import { SqliteStore } from "./sqlite.ts";
import type { Durability, Store } from "./store.ts";

export type { Durability, Store } from "./store.ts";

export interface StoreOptions {
  /** `--db`: a SQLite file path, ":memory:", or postgres://user@host:port/db (also postgresql://). */
  db: string;
  /** `--durability` (see Durability). SQLite only: a Postgres commit is durable as the server is configured. */
  durability: Durability;
}

/** Whether `--db` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/** Opens (creating and migrating if needed) the store `--db` names. Rejects if it cannot be opened. */
export async function openStore(opts: StoreOptions): Promise<Store> {
  if (isPostgresUrl(opts.db)) return PostgresStore.open({ url: opts.db });
  return new SqliteStore({ path: opts.db, durability: opts.durability });
}
