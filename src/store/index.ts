// The store a server runs on, picked from its config: today `--db` is a SQLite file
// path or ":memory:" (src/store/sqlite.ts). Every Store implements src/store/store.ts.
import { SqliteStore } from "./sqlite.ts";
import type { Durability, Store } from "./store.ts";

export type { Durability, Store } from "./store.ts";

export interface StoreOptions {
  /** `--db`: a SQLite file path, or ":memory:". */
  db: string;
  /** `--durability` (see Durability). */
  durability: Durability;
}

/** Opens (creating and migrating if needed) the store `--db` names. Rejects if it cannot be opened. */
export async function openStore(opts: StoreOptions): Promise<Store> {
  return new SqliteStore({ path: opts.db, durability: opts.durability });
}
