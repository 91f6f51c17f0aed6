// PostgresStore (src/store/postgres.ts) against a real PostgreSQL server started for this file
// (test/helpers/services.ts): the shared Store suite, unchanged, each test on an emptied database;
// then what only a shared store has: two stores (two nodes) on one database.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { PostgresStore } from "../src/store/postgres.ts";
import { openStore } from "../src/store/index.ts";
import { storeSuite } from "./helpers/store-suite.ts";
import { type PostgresServer, startPostgres } from "./helpers/services.ts";

let pg: PostgresServer;
/** The database the shared suite runs on, emptied before each of its tests. */
let suiteUrl: string;
let admin: SQL;

beforeAll(async () => {
  pg = await startPostgres();
  suiteUrl = await pg.createDatabase("suite");
  // Migrate it once; each test then starts from empty tables (much faster than a database per test).
  await (await PostgresStore.open({ url: suiteUrl })).close();
  admin = new SQL({ url: suiteUrl, max: 1 });
}, 60_000);

afterAll(async () => {
  await admin?.close();
  await pg?.stop();
});

/** Empties every table and starts the sequence over: an empty store, as a new database has. */
async function emptied(): Promise<PostgresStore> {
  await admin`TRUNCATE messages, memberships, groups, tokens, users RESTART IDENTITY`;
  await admin`UPDATE tcpchat_seq SET seq = 0, last_mid = 0 WHERE id = 1`;
  return PostgresStore.open({ url: suiteUrl });
}

storeSuite("PostgresStore", emptied);

describe("PostgresStore selection", () => {
  test("openStore picks Postgres for postgres:// and postgresql:// URLs", async () => {
    for (const url of [suiteUrl, suiteUrl.replace(/^postgres:/, "postgresql:")]) {
      const s = await openStore({ db: url, durability: "normal" });
      try {
        expect(s).toBeInstanceOf(PostgresStore);
        expect(typeof (await s.position()).seq).toBe("number");
      } finally {
        await s.close();
      }
    }
  });
});
