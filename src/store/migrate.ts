// Applies drizzle-kit's migrations (src/store/migrations/) from data embedded at build time.
import type { BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { embeddedMigrations } from "./migrations-macro.ts" with { type: "macro" };

const MIGRATIONS = embeddedMigrations();

export function applyMigrations(db: BunSQLiteDatabase): number {
  // Same bookkeeping table as drizzle's own migrate(), so drizzle-kit tools agree with us.
  (db as unknown as { dialect: { migrate(m: unknown, s: unknown, c: unknown): void }; session: unknown }).dialect.migrate(
    MIGRATIONS,
    (db as unknown as { session: unknown }).session,
    {},
  );
  return MIGRATIONS.length;
}
