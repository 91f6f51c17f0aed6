import { defineConfig } from "drizzle-kit";

// `npm run db:generate:pg` writes a new migration after a change to src/store/schema-pg.ts
// (the PostgreSQL store, src/store/postgres.ts). The SQLite schema has its own: drizzle.config.ts.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema-pg.ts",
  out: "./src/store/migrations-pg",
});
