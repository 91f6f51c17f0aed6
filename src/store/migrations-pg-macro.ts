// A Bun macro, like migrations-macro.ts for SQLite: it reads drizzle-kit's PostgreSQL migration
// folder (src/store/migrations-pg/) when the code is bundled or transpiled and inlines it as data,
// so the server and the `--compile`d executable need no migration files on disk.
import { readMigrationFiles } from "drizzle-orm/migrator";

export function embeddedPgMigrations() {
  return readMigrationFiles({ migrationsFolder: `${import.meta.dir}/migrations-pg` });
}
