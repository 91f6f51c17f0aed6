// The files part of the Store contract (test/helpers/files-suite.ts) on PostgresStore, against a
// real PostgreSQL server started for this file (test/helpers/services.ts); then what only a shared
// store has: two stores (two nodes) working on the same uploads and files at once, and a database
// from before files were stored apart, converted by migration 0005_files.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { PostgresStore } from "../src/store/postgres.ts";
import { groupConv } from "../src/store/store.ts";
import { sha256Hex } from "./helpers/client.ts";
import { filesSuite, pattern, readAll, storeUpload } from "./helpers/files-suite.ts";
import { type PostgresServer, startPostgres } from "./helpers/services.ts";

let pg: PostgresServer;
/** The database the shared suite runs on, emptied before each of its tests. */
let suiteUrl: string;
let admin: SQL;

beforeAll(async () => {
  pg = await startPostgres();
  suiteUrl = await pg.createDatabase("files");
  await (await PostgresStore.open({ url: suiteUrl })).close();
  admin = new SQL({ url: suiteUrl, max: 1 });
}, 60_000);

afterAll(async () => {
  await admin?.close();
  await pg?.stop();
});

/** An empty store, as a new database is (as in test/store-pg.test.ts). */
async function emptied(): Promise<PostgresStore> {
  await admin`DELETE FROM messages; DELETE FROM reads; DELETE FROM reactions; DELETE FROM mentions; DELETE FROM dm_peers; DELETE FROM search_text; UPDATE search_state SET indexed = 0 WHERE id = 1; DELETE FROM memberships; DELETE FROM invites; DELETE FROM group_bans; DELETE FROM blocks; DELETE FROM groups; DELETE FROM tokens; DELETE FROM bans; DELETE FROM users;
    DELETE FROM uploads; DELETE FROM file_chunks; DELETE FROM files;
    UPDATE tcpchat_seq SET seq = 0, last_mid = 0 WHERE id = 1`.simple();
  return PostgresStore.open({ url: suiteUrl });
}

filesSuite("PostgresStore", emptied);

/** Two stores on a new database, with users ann and bob in group g. */
async function twoNodes(): Promise<{ a: PostgresStore; b: PostgresStore; db: SQL; close(): Promise<void> }> {
  const url = await pg.createDatabase();
  const a = await PostgresStore.open({ url });
  const b = await PostgresStore.open({ url });
  const db = new SQL({ url, max: 1 });
  for (const u of ["ann", "bob"]) await a.createUser(u, "h", 1);
  await a.createGroup("g", "ann", 1);
  await b.addMember("g", "bob", 1);
  return { a, b, db, close: async () => void (await Promise.all([a.close(), b.close(), db.close()])) };
}

const NOW = 1_700_000_000_000;

describe("PostgresStore files: two nodes on one database", () => {
  test("a chunk sent to both nodes at once is written once", async () => {
    const { a, b, db, close } = await twoNodes();
    try {
      const data = pattern(64_000, 3);
      await a.createUpload("u", "ann", data.length, sha256Hex(data), NOW);
      for (let off = 0; off < data.length; off += 4000) {
        const part = data.subarray(off, off + 4000);
        const got = await Promise.all([a.appendUpload("u", off, part, NOW), b.appendUpload("u", off, part, NOW)]);
        expect(got.filter((x) => x !== undefined)).toEqual([off + 4000]);
      }
      const u = (await b.getUpload("u"))!;
      expect(u.received).toBe(data.length);
      expect(Buffer.compare(await readAll(a, u.file, data.length), Buffer.from(data))).toBe(0);
      expect(await db`SELECT count(*)::int AS n FROM file_chunks`).toEqual([{ n: 16 }]);
    } finally {
      await close();
    }
  });

  test("uploads of the same content finished on both nodes at once share one stored file", async () => {
    const { a, b, db, close } = await twoNodes();
    try {
      for (let i = 0; i < 15; i++) {
        const data = pattern(3000 + i, 20 + i);
        const sha = sha256Hex(data);
        for (const [s, id, user] of [[a, `a${i}`, "ann"], [b, `b${i}`, "bob"]] as const) {
          await s.createUpload(id, user, data.length, sha, NOW);
          expect(await s.appendUpload(id, 0, data, NOW)).toBe(data.length);
        }
        const [ua, ub] = await Promise.all([a.finishUpload(`a${i}`, NOW), b.finishUpload(`b${i}`, NOW)]);
        expect(ua.done && ub.done).toBe(true);
        expect(ua.file).toBe(ub.file);
        expect((await a.getUpload(`b${i}`))!.file).toBe(ua.file);
        expect(await db`SELECT count(*)::int AS n FROM files WHERE sha256 = ${sha}`).toEqual([{ n: 1 }]);
        expect(Buffer.compare(await readAll(b, ua.file, data.length), Buffer.from(data))).toBe(0);
      }
      // No bytes of the copies that were dropped are left behind.
      expect(await db`SELECT count(*)::int AS n FROM file_chunks WHERE file NOT IN (SELECT id FROM files)`).toEqual([{ n: 0 }]);
    } finally {
      await close();
    }
  });

  test("the last message holding a file deleted on one node while the other finishes an upload of it: the upload keeps the bytes", async () => {
    const { a, b, close } = await twoNodes();
    try {
      for (let i = 0; i < 15; i++) {
        const data = pattern(2000 + i, 40 + i);
        await storeUpload(a, `s${i}`, "ann", data, NOW);
        const sha = sha256Hex(data);
        const [m] = (await a.commit([{ sender: "ann", grp: "g", file: { name: "f", type: "", size: data.length, sha256: sha, upload: `s${i}` } }], NOW))
          .results;
        await b.createUpload(`r${i}`, "bob", data.length, sha, NOW);
        await b.appendUpload(`r${i}`, 0, data, NOW);
        const [, u] = await Promise.all([a.commit([{ sender: "ann", grp: "g", kind: "delete", ref: m!.mid }], NOW), b.finishUpload(`r${i}`, NOW)]);
        expect(Buffer.compare(await readAll(a, u.file, data.length), Buffer.from(data))).toBe(0);
        // and the message sent with it holds it
        const [sent] = (await b.commit([{ sender: "bob", grp: "g", file: { name: "f", type: "", size: data.length, sha256: sha, upload: `r${i}` } }], NOW))
          .results;
        expect((await a.messageFile(sent!.mid))!.file).toBe(u.file);
      }
    } finally {
      await close();
    }
  });

  test("an upload used by a message on one node while the other expires it: sent with its bytes, or refused and gone", async () => {
    const { a, b, db, close } = await twoNodes();
    try {
      const outcomes = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const data = pattern(1500 + i, 60 + i);
        const u = await storeUpload(a, `e${i}`, "ann", data, NOW);
        const file = { name: "f", type: "", size: data.length, sha256: sha256Hex(data), upload: `e${i}` };
        const [c, expired] = await Promise.all([a.commit([{ sender: "ann", grp: "g", file }], NOW), b.expireUploads(NOW + 1)]);
        const r = c.results[0]!;
        if (r.refused) {
          outcomes.add("refused");
          expect(expired).toBe(1);
          expect((await a.readFile(u.file, 0, 10)).length).toBe(0);
        } else {
          outcomes.add("sent");
          expect(expired).toBe(0);
          expect(Buffer.compare(await readAll(b, (await b.messageFile(r.mid))!.file, data.length), Buffer.from(data))).toBe(0);
        }
      }
      expect(await db`SELECT count(*)::int AS n FROM uploads`).toEqual([{ n: 0 }]);
      console.log(`commit vs expiry: ${[...outcomes].join(", ")}`);
    } finally {
      await close();
    }
  });
});

describe("PostgresStore: files from before they were stored apart", () => {
  test("migration 0005_files: inline bytes become a stored file (one per content); the rows keep no bytes", async () => {
    const url = await pg.createDatabase();
    const db = new SQL({ url, max: 1 });
    try {
      // The database as the server before §3.9 left it: the migrations up to 0004, and messages
      // with their bytes inline.
      const migrations = readMigrationFiles({ migrationsFolder: `${import.meta.dir}/../src/store/migrations-pg` });
      const files = migrations.findIndex((m) => m.sql.some((s) => s.includes('CREATE TABLE "files"')));
      expect(files).toBeGreaterThan(0);
      await db.begin(async (tx) => {
        await tx`CREATE SCHEMA drizzle`;
        await tx`CREATE TABLE drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`;
        for (const m of migrations.slice(0, files)) {
          for (const stmt of m.sql) if (stmt.trim() !== "") await tx.unsafe(stmt);
          await tx`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES (${m.hash}, ${m.folderMillis})`;
        }
      });
      const big = pattern(2_500_000, 8);
      const u8 = (s: string) => Buffer.from(s);
      const old = [
        { mid: 1, name: "old.bin", type: "x/y", data: big, text: "caption" },
        { mid: 2, name: "same.bin", type: "", data: big, text: null },
        { mid: 3, name: "empty", type: "text/plain", data: new Uint8Array(0), text: null },
        { mid: 4, name: "small\u0000", type: "a/b", data: pattern(10, 2), text: null },
      ];
      for (const m of old) {
        const size = 96 + (m.text?.length ?? 0) + m.data.length + u8(m.name).length + u8(m.type).length;
        await db`INSERT INTO messages (mid, ts, sender, grp, conv, text, file_name, file_type, file_data, size)
          VALUES (${m.mid}, 5, 'ann', 'g', 'g:g', ${m.text === null ? null : u8(m.text)}, ${u8(m.name)}, ${u8(m.type)}, ${m.data}, ${size})`;
      }
      await db`INSERT INTO messages (mid, ts, sender, grp, conv, text, size) VALUES (5, 5, 'ann', 'g', 'g:g', ${u8("plain")}, 101)`;
      await db`UPDATE tcpchat_seq SET seq = 5, last_mid = 5 WHERE id = 1`;

      const s = await PostgresStore.open({ url });
      try {
        const h = await s.history(groupConv("g"), { limit: 10, after: 0 });
        expect(h.map((m) => m.file)).toEqual([
          { name: "old.bin", type: "x/y", size: big.length, sha256: sha256Hex(big) },
          { name: "same.bin", type: "", size: big.length, sha256: sha256Hex(big) },
          { name: "empty", type: "text/plain", size: 0, sha256: sha256Hex(new Uint8Array(0)) },
          { name: "small\u0000", type: "a/b", size: 10, sha256: sha256Hex(pattern(10, 2)) },
          undefined,
        ]);
        expect(h[0]!.text).toBe("caption");
        // messageSize counts the file's name, type, size and hash now, not its bytes
        expect(await s.historySizes(groupConv("g"), { limit: 10, after: 0 })).toEqual([
          { mid: 1, size: 96 + 7 + 96 + 7 + 3 },
          { mid: 2, size: 96 + 96 + 8 },
          { mid: 3, size: 96 + 96 + 5 + 10 },
          { mid: 4, size: 96 + 96 + 6 + 3 },
          { mid: 5, size: 101 },
        ]);
        const f1 = (await s.messageFile(1))!;
        expect((await s.messageFile(2))!.file).toBe(f1.file);
        expect(Buffer.compare(await readAll(s, f1.file, big.length), Buffer.from(big))).toBe(0);
        expect(Array.from(await readAll(s, (await s.messageFile(4))!.file, 10))).toEqual(Array.from(pattern(10, 2)));
        expect((await s.readFile((await s.messageFile(3))!.file, 0, 10)).length).toBe(0);
        expect(await db`SELECT count(*)::int AS n FROM messages WHERE file_data IS NOT NULL`).toEqual([{ n: 0 }]);
        expect(await db`SELECT count(*)::int AS n, max(length(data))::int AS max FROM file_chunks`).toEqual([{ n: 4, max: 1 << 20 }]);
        expect(await db`SELECT count(*)::int AS n FROM files WHERE done = 1`).toEqual([{ n: 3 }]);
        // the converted files go like any other when their messages do
        await s.commit([{ sender: "ann", grp: "g", kind: "delete", ref: 1 }], 6);
        expect((await readAll(s, f1.file, big.length)).length).toBe(big.length);
        await s.commit([{ sender: "ann", grp: "g", kind: "delete", ref: 2 }], 7);
        expect((await s.readFile(f1.file, 0, 10)).length).toBe(0);
      } finally {
        await s.close();
      }
    } finally {
      await db.close();
    }
  }, 60_000);
});
