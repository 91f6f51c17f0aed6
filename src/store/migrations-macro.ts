// A Bun macro: runs when the code is bundled or transpiled, not at run time.
// It reads drizzle-kit's migration folder and inlines it as data, so the server
// (and the `--compile`d executable, wherever it runs) needs no files on disk.
import { readMigrationFiles } from "drizzle-orm/migrator";

export function embeddedMigrations() {
  return readMigrationFiles({ migrationsFolder: `${import.meta.dir}/migrations` });
}
