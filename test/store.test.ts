// The shared Store suite (test/helpers/store-suite.ts), run against every
// implementation: MemoryStore, SqliteStore on ":memory:" and SqliteStore on a real
// file. SQLite-only behaviour (persistence, migrations, rollback) follows.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Database } from "bun:sqlite";
import { sql } from "drizzle-orm";
import { MemoryStore } from "../src/store/memory.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { ABOUT_KINDS } from "../src/store/schema.ts";
import type { NewMessage } from "../src/store/store.ts";
import { dmConv, groupConv, messageSize } from "../src/store/store.ts";
import { sha256Hex } from "./helpers/client.ts";
import { readAll } from "./helpers/files-suite.ts";
import { byName, bytes, mids, plain, results, storeSuite, upFile } from "./helpers/store-suite.ts";

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "tcpchat-store-test-"));
let fileCounter = 0;
function tmpDbPath(): string {
  return path.join(tmpDir, `db-${++fileCounter}.sqlite`);
}

afterAll(() => {
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

storeSuite("MemoryStore", () => new MemoryStore());
storeSuite("SqliteStore :memory:", () => new SqliteStore({ path: ":memory:", durability: "normal" }));
storeSuite("SqliteStore file", () => new SqliteStore({ path: tmpDbPath(), durability: "normal" }));

// ---------------------------------------------------------------------------
// SQLite only
// ---------------------------------------------------------------------------

function migrationRows(s: SqliteStore): Array<{ hash: string; created_at: number }> {
  return s.db.all<{ hash: string; created_at: number }>(
    sql`SELECT hash, created_at FROM __drizzle_migrations ORDER BY created_at`,
  );
}

describe("SqliteStore persistence", () => {
  const open: SqliteStore[] = [];
  function openStore(p: string, durability: "normal" | "full"): SqliteStore {
    const s = new SqliteStore({ path: p, durability });
    open.push(s);
    return s;
  }
  afterEach(async () => {
    for (const s of open.splice(0)) {
      try {
        await s.close();
      } catch {
        // already closed
      }
    }
  });

  for (const durability of ["normal", "full"] as const) {
    test(`data survives close() and reopening the same file (durability ${durability})`, async () => {
      const p = tmpDbPath();
      const file = new Uint8Array([0, 1, 2, 250, 255]);
      let s = openStore(p, durability);
      await s.createUser("alice", "ha", 1);
      await s.createUser("bob", "hb", 1);
      await s.addToken("tok", "alice", 1, 1000);
      await s.createGroup("g", "alice", 2);
      await s.addMember("g", "bob", 3);
      const r = await results(s, 
        [
          { sender: "alice", grp: "g", cid: "c1", text: "hi 👋" },
          { sender: "bob", toUser: "alice", text: "dm", file: await upFile(s, "bob", "f.bin", "application/x", file) },
        ],
        500,
      );
      expect(mids(r)).toEqual([1, 2]);
      await s.close();

      s = openStore(p, durability);
      expect(await s.getUser("alice")).toEqual({ name: "alice", passHash: "ha" });
      expect(await s.getUser("bob")).toEqual({ name: "bob", passHash: "hb" });
      expect(await s.tokenUser("tok", 10)).toBe("alice");
      expect(await s.getGroup("g")).toEqual({ name: "g", owner: "alice", public: true, topic: "", description: "" });
      expect((await s.allMemberships()).slice().sort(byName)).toEqual([
        { grp: "g", user: "alice", muted: 0 },
        { grp: "g", user: "bob", muted: 0 },
      ]);
      expect(await s.userGroups("bob")).toEqual([{ name: "g", owner: "alice", public: true, topic: "", description: "", role: "member" }]);
      expect(await s.lastMid()).toBe(2);
      const g = await s.history(groupConv("g"), { limit: 10 });
      expect(g.map(plain)).toEqual([{ mid: 1, ts: 500, sender: "alice", grp: "g", cid: "c1", text: "hi 👋" }]);
      const d = await s.history(dmConv("alice", "bob"), { limit: 10 });
      expect(d).toHaveLength(1);
      expect(bytes(await readAll(s, (await s.messageFile(d[0]!.mid))!.file, 5))).toEqual([0, 1, 2, 250, 255]);
      expect(mids(await s.sync("alice", 0, 10))).toEqual([1, 2]);

      // Duplicate detection survives the restart; new mids continue after the old ones.
      expect(await results(s, [{ sender: "alice", grp: "g", cid: "c1", text: "again" }], 900)).toEqual([
        { mid: 1, ts: 500, duplicate: true },
      ]);
      expect(await results(s, [{ sender: "alice", grp: "g", text: "next" }], 900)).toEqual([
        { mid: 3, ts: 900, duplicate: false },
      ]);
      expect(await s.createUser("alice", "other", 5)).toBe(false);
      expect(await s.createGroup("g", "bob", 5)).toBe(0);
      await s.close();

      s = openStore(p, durability);
      expect(await s.lastMid()).toBe(3);
    });
  }

  test("reopening an existing database re-applies no migration and does not fail", async () => {
    const p = tmpDbPath();
    let s = openStore(p, "normal");
    const first = migrationRows(s);
    expect(first.length).toBeGreaterThan(0);
    await s.createUser("alice", "h", 1);
    await results(s, [{ sender: "alice", toUser: "alice", text: "x" }], 1);
    await s.close();

    for (let i = 0; i < 3; i++) {
      s = openStore(p, i % 2 ? "full" : "normal");
      expect(migrationRows(s)).toEqual(first);
      expect(await s.getUser("alice")).toEqual({ name: "alice", passHash: "h" });
      expect(await s.lastMid()).toBe(1);
      await s.close();
    }
  });

  test("a database from before migration 0001 gets every message's size, as messageSize computes it", async () => {
    const p = tmpDbPath();
    const init = fs.readFileSync(path.join(import.meta.dir, "../src/store/migrations/0000_init.sql"), "utf8");
    const journal = JSON.parse(
      fs.readFileSync(path.join(import.meta.dir, "../src/store/migrations/meta/_journal.json"), "utf8"),
    ) as { entries: Array<{ tag: string; when: number }> };
    const old = new Database(p);
    for (const stmt of init.split("--> statement-breakpoint")) old.run(stmt);
    old.run("CREATE TABLE __drizzle_migrations (id INTEGER PRIMARY KEY, hash text NOT NULL, created_at numeric)");
    old.run("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('x', ?)", [journal.entries[0]!.when]);
    old.run("INSERT INTO users VALUES ('alice', 'h', 1)");
    const bytesOf = [undefined, new Uint8Array(5000), new Uint8Array(3)];
    const msgs: NewMessage[] = [
      { sender: "alice", toUser: "alice", text: "héllo" },
      { sender: "alice", toUser: "alice", cid: "c1", file: { name: "é.png", type: "image/png", size: 5000, sha256: sha256Hex(bytesOf[1]!) } },
      { sender: "alice", toUser: "alice", text: "both", file: { name: "f", type: "", size: 3, sha256: sha256Hex(bytesOf[2]!) } },
    ];
    msgs.forEach((m, i) =>
      old.run(
        "INSERT INTO messages (mid, ts, sender, to_user, conv, cid, text, file_name, file_type, file_data) VALUES (?, 1, 'alice', 'alice', 'd:alice:alice', ?, ?, ?, ?, ?)",
        [i + 1, m.cid ?? null, m.text ?? null, m.file?.name ?? null, m.file?.type ?? null, bytesOf[i] ?? null],
      ),
    );
    old.close();

    const s = openStore(p, "normal");
    expect(migrationRows(s)).toHaveLength(journal.entries.length);
    expect(await s.historySizes(dmConv("alice", "alice"), { limit: 10 })).toEqual(
      msgs.map((m, i) => ({ mid: i + 1, size: messageSize(m) })),
    );
    expect((await s.history(dmConv("alice", "alice"), { limit: 10 })).map((m) => m.text)).toEqual(["héllo", undefined, "both"]);
  });

  test("a fresh database has all tables", async () => {
    const s = openStore(":memory:", "normal");
    const names = s.db
      .all<{ name: string }>(sql`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .map((r) => r.name);
    for (const t of ["groups", "memberships", "messages", "tokens", "users"]) expect(names).toContain(t);
  });

  test("a message's insert evaluates every partial index without a temporary table (an IN list in one cost a send 3 us: migration 0007), and the erasure's query still uses messages_about", () => {
    const s = new SqliteStore({ path: ":memory:", durability: "normal" });
    const client = (s as unknown as { client: import("bun:sqlite").Database }).client;
    const program = client
      .query("EXPLAIN INSERT INTO messages (mid, ts, sender, grp, conv, text, size) VALUES (1, 2, 'a', 'g', 'g:g', 't', 1) ON CONFLICT DO NOTHING")
      .all() as Array<{ opcode: string }>;
    expect(program.length).toBeGreaterThan(20);
    expect(program.filter((op) => op.opcode === "OpenEphemeral")).toEqual([]);
    const plan = client
      .query(
        `EXPLAIN QUERY PLAN SELECT mid FROM messages WHERE ${ABOUT_KINDS} AND ref IN (SELECT value FROM json_each('[1]'))`,
      )
      .all() as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join("; ")).toContain("USING INDEX messages_about");
  });
});

describe("SqliteStore failed commit", () => {
  for (const kind of ["memory", "file"] as const) {
    test(`a commit that throws stores nothing and frees its mids (${kind})`, async () => {
      const s = new SqliteStore({ path: kind === "memory" ? ":memory:" : tmpDbPath(), durability: "normal" });
      try {
        await s.createUser("alice", "h", 1);
        await s.createGroup("g", "alice", 1);
        await results(s, 
          [
            { sender: "alice", grp: "g", text: "one" },
            { sender: "alice", grp: "g", cid: "kept", text: "two" },
          ],
          10,
        );
        expect(await s.lastMid()).toBe(2);

        await expect(
          results(s, 
            [
              { sender: "alice", grp: "g", cid: "lost", text: "good, but in a failing batch" },
              { sender: "alice", toUser: "alice", text: "also good" },
              { sender: null as unknown as string, grp: "g", text: "violates NOT NULL" },
              { sender: "alice", grp: "g", text: "never reached" },
            ],
            20,
          ),
        ).rejects.toThrow();

        expect(await s.lastMid()).toBe(2);
        expect((await s.history(groupConv("g"), { limit: 10 })).map((m) => m.text)).toEqual(["one", "two"]);
        expect(await s.history(dmConv("alice", "alice"), { limit: 10 })).toEqual([]);
        expect(mids(await s.sync("alice", 0, 10))).toEqual([1, 2]);

        // The next good commit reuses mid 3 (no gap), and the rolled-back cid is free again.
        expect(await results(s, [{ sender: "alice", grp: "g", cid: "lost", text: "retry" }], 30)).toEqual([
          { mid: 3, ts: 30, duplicate: false },
        ]);
        // The cid committed before the failure is still a duplicate.
        expect(await results(s, [{ sender: "alice", grp: "g", cid: "kept" }], 30)).toEqual([
          { mid: 2, ts: 10, duplicate: true },
        ]);
        expect(await s.lastMid()).toBe(3);
        expect((await s.history(groupConv("g"), { limit: 10 })).map((m) => [m.mid, m.text])).toEqual([
          [1, "one"],
          [2, "two"],
          [3, "retry"],
        ]);
      } finally {
        await s.close();
      }
    });
  }

  test("a failure on the first message of a batch leaves lastMid unchanged and takes no seq", async () => {
    const s = new SqliteStore({ path: ":memory:", durability: "normal" });
    try {
      await expect(results(s, [{ sender: null as unknown as string, grp: "g", text: "bad" }], 1)).rejects.toThrow();
      expect(await s.position()).toEqual({ seq: 0, mid: 0 });
      expect(await s.commit([{ sender: "a", grp: "g", text: "ok" }], 2)).toEqual({
        seq: 1,
        results: [{ mid: 1, ts: 2, duplicate: false }],
      });
    } finally {
      await s.close();
    }
  });

  test("commit after close() throws and stores nothing", async () => {
    const p = tmpDbPath();
    const s = new SqliteStore({ path: p, durability: "normal" });
    await results(s, [{ sender: "a", grp: "g", text: "ok" }], 1);
    await s.close();
    await expect(results(s, [{ sender: "a", grp: "g", text: "after close" }], 2)).rejects.toThrow();
    const s2 = new SqliteStore({ path: p, durability: "normal" });
    try {
      expect(await s2.lastMid()).toBe(1);
      expect((await s2.history(groupConv("g"), { limit: 10 })).map((m) => m.text)).toEqual(["ok"]);
    } finally {
      await s2.close();
    }
  });
});

describe("SqliteStore operations (issue #15)", () => {
  test("after the newest messages were purged or erased, a reopened store does not give their mids again", async () => {
    const p = tmpDbPath();
    let s = new SqliteStore({ path: p, durability: "normal" });
    await s.createUser("alice", "h", 1);
    await s.createUser("bob", "h", 1);
    await results(s, [{ sender: "alice", toUser: "bob", text: "1" }], 100);
    const [r2] = await results(s, [{ sender: "bob", toUser: "alice", text: "2" }], 200);
    expect(await s.purge(1000, 10)).toBe(2);
    await s.close();
    s = new SqliteStore({ path: p, durability: "normal" });
    const [r3] = await results(s, [{ sender: "alice", toUser: "bob", text: "3" }], 300);
    expect(r3!.mid).toBe(r2!.mid + 1);
    expect(await s.eraseUser("alice")).toBe(1);
    await s.close();
    s = new SqliteStore({ path: p, durability: "normal" });
    expect((await s.position()).mid).toBe(r3!.mid);
    await s.close();
  });

  test("backup: VACUUM INTO a new file 0600, readable as a store with everything committed; an existing file is refused", async () => {
    const p = tmpDbPath();
    const s = new SqliteStore({ path: p, durability: "normal" });
    await s.createUser("alice", "h", 1);
    await results(s, [{ sender: "alice", toUser: "alice", text: "kept" }], 100);
    const copy = tmpDbPath();
    await s.backup(copy);
    expect(fs.statSync(copy).mode & 0o777).toBe(0o600);
    await expect(s.backup(copy)).rejects.toThrow();
    await s.close();
    const c = new SqliteStore({ path: copy, durability: "normal" });
    expect((await c.history(dmConv("alice", "alice"), { limit: 10 })).map((m) => m.text)).toEqual(["kept"]);
    await c.close();
  });
});

describe("SqliteStore deletion", () => {
  /** The bytes of the database file and of its WAL (if any), as they are on disk now. */
  function onDisk(p: string): Buffer {
    const wal = `${p}-wal`;
    return Buffer.concat([fs.readFileSync(p), fs.existsSync(wal) ? fs.readFileSync(wal) : Buffer.alloc(0)]);
  }

  test("a deleted message's text, file name, file bytes and earlier edits are gone from the database file and its WAL", async () => {
    const p = tmpDbPath();
    const s = new SqliteStore({ path: p, durability: "normal" });
    try {
      const tag = crypto.randomUUID();
      const text = `TEXT-${tag}`;
      const edit = `EDIT-${tag}`;
      const name = `NAME-${tag}.bin`;
      // A file of many pages (overflow pages, freed by the delete), with a marker at both ends.
      const data = new Uint8Array(50_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
      const fileTag = Buffer.from(`FILE-${tag}`);
      data.set(fileTag, 0);
      data.set(fileTag, data.length - fileTag.length);
      const kept = `KEPT-${tag}`;
      await s.createUser("alice", "h", 1);
      await s.createGroup("g", "alice", 1);
      const [m] = await results(s, [{ sender: "alice", grp: "g", text, file: await upFile(s, "alice", name, "application/x-secret", data) }], 10);
      await results(s, [{ sender: "alice", grp: "g", kind: "edit", ref: m!.mid, text: edit }], 11);
      await results(s, [{ sender: "alice", grp: "g", text: kept }], 12);
      const before = onDisk(p);
      for (const x of [text, edit, name, kept]) expect({ x, found: before.includes(x) }).toEqual({ x, found: true });
      expect(before.includes(fileTag)).toBe(true);

      await results(s, [{ sender: "alice", grp: "g", kind: "delete", ref: m!.mid }], 13);
      const after = onDisk(p);
      for (const x of [text, edit, name]) expect({ x, found: after.includes(x) }).toEqual({ x, found: false });
      expect(after.includes(fileTag)).toBe(false);
      expect(after.includes(Buffer.from(data.subarray(1000, 1064)))).toBe(false);
      expect(after.includes(kept)).toBe(true); // the rest is still there
      expect((await s.history(groupConv("g"), { limit: 10 })).map((x) => x.text)).toEqual([undefined, undefined, kept, undefined]);
    } finally {
      await s.close();
    }
  });

  test("a deleted message's text is gone from the file and the WAL also while the checkpointer's thread is copying a large WAL (SQLite answers busy, it is waited out)", async () => {
    const p = tmpDbPath();
    const s = new SqliteStore({ path: p, durability: "normal" });
    try {
      await s.createUser("alice", "h", 1);
      await s.createGroup("g", "alice", 1);
      const filler = "f".repeat(100_000);
      for (let round = 0; round < 8; round++) {
        const text = `SECRET-${crypto.randomUUID()}`;
        const [m] = await results(s, [{ sender: "alice", grp: "g", text }], 1);
        // 4 MB more: the worker is copying them when the delete commits.
        await results(s, Array.from({ length: 40 }, () => ({ sender: "alice", grp: "g", text: filler })), 2);
        await Bun.sleep(round * 15);
        await results(s, [{ sender: "alice", grp: "g", kind: "delete", ref: m!.mid }], 3);
        expect({ round, found: onDisk(p).includes(text) }).toEqual({ round, found: false });
      }
    } finally {
      await s.close();
    }
  }, 60000);
});

describe("SqliteStore migration 0003 (conversations)", () => {
  test("a database from before it: direct conversations are listed, and everything stored before counts as read", async () => {
    const p = tmpDbPath();
    const dir = path.join(import.meta.dir, "../src/store/migrations");
    const journal = JSON.parse(fs.readFileSync(path.join(dir, "meta/_journal.json"), "utf8")) as { entries: Array<{ tag: string; when: number }> };
    const old = new Database(p);
    old.run("CREATE TABLE __drizzle_migrations (id INTEGER PRIMARY KEY, hash text NOT NULL, created_at numeric)");
    for (const e of journal.entries.slice(0, 2)) {
      for (const stmt of fs.readFileSync(path.join(dir, `${e.tag}.sql`), "utf8").split("--> statement-breakpoint")) old.run(stmt);
      old.run("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('x', ?)", [e.when]);
    }
    for (const u of ["alice", "bob", "carol"]) old.run("INSERT INTO users VALUES (?, 'h', 1)", [u]);
    old.run("INSERT INTO groups VALUES ('g', 'alice', 1)");
    old.run("INSERT INTO memberships VALUES ('g', 'alice', 1), ('g', 'bob', 1)");
    const rows: Array<[string, string | null, string | null, string]> = [
      ["alice", "g", null, "g:g"],
      ["bob", null, "alice", "d:alice:bob"],
      ["carol", null, "alice", "d:alice:carol"],
      ["alice", null, "bob", "d:alice:bob"],
    ];
    rows.forEach(([sender, grp, to, conv], i) =>
      old.run("INSERT INTO messages (mid, ts, sender, grp, to_user, conv, text, size) VALUES (?, 1, ?, ?, ?, ?, 'x', 97)", [i + 1, sender, grp, to, conv]),
    );
    old.close();

    const s = new SqliteStore({ path: p, durability: "normal" });
    try {
      const convs = (await s.convs("alice")).sort((a, b) => (a.conv < b.conv ? -1 : 1));
      expect(convs.map((c) => [c.conv, c.grp ?? c.peer, c.last, c.read, c.unread])).toEqual([
        ["d:alice:bob", "bob", 4, 4, 0],
        ["d:alice:carol", "carol", 3, 4, 0],
        ["g:g", "g", 1, 4, 0],
      ]);
      expect((await s.convs("carol")).map((c) => [c.peer, c.read, c.unread])).toEqual([["alice", 4, 0]]);
      // New messages count from there; a new direct conversation is listed for both.
      await results(s, [{ sender: "bob", toUser: "carol", text: "new" }, { sender: "bob", grp: "g", text: "new" }], 2);
      expect((await s.convs("carol")).map((c) => [c.peer, c.unread]).sort()).toEqual([["alice", 0], ["bob", 1]]);
      expect((await s.convs("alice")).find((c) => c.grp === "g")!.unread).toBe(1);
    } finally {
      await s.close();
    }
  });
});

describe("SqliteStore search index", () => {
  test("a large backlog is indexed in chunks, the server running between them; an edit and a delete between chunks are right", async () => {
    const s = new SqliteStore({ path: tmpDbPath(), durability: "normal" });
    try {
      await s.createUser("alice", "h", 1);
      await s.createGroup("g", "alice", 1);
      const batch = Array.from({ length: 12_000 }, (_, i) => ({ sender: "alice", grp: "g", text: `row ${i} ${i % 1000 === 0 ? "milestone" : "plain"}` }));
      const r = await results(s, batch, 1);
      const searching = s.search("alice", "milestone", Number.MAX_SAFE_INTEGER, 100);
      await new Promise((resolve) => setImmediate(resolve)); // one chunk done
      await results(s, [{ sender: "alice", grp: "g", kind: "delete", ref: r[0]!.mid }], 2); // indexed already
      await results(s, [{ sender: "alice", grp: "g", kind: "edit", ref: r[11_000]!.mid, text: "row 11000 renamed" }], 2); // not yet
      expect((await searching).length).toBeGreaterThanOrEqual(10);
      const found = mids(await s.search("alice", "milestone", Number.MAX_SAFE_INTEGER, 100));
      expect(found).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((k) => r[k * 1000]!.mid).filter((m) => m !== r[11_000]!.mid));
      expect(mids(await s.search("alice", "renamed", Number.MAX_SAFE_INTEGER, 100))).toEqual([r[11_000]!.mid]);
      expect(mids(await s.search("alice", "row 0 ", Number.MAX_SAFE_INTEGER, 100))).toEqual([]);
    } finally {
      await s.close();
    }
  });

  test("a deleted message's trigrams leave the index (secure-delete); the index carries on after a reopen", async () => {
    const p = tmpDbPath();
    let s = new SqliteStore({ path: p, durability: "normal" });
    const client = (x: SqliteStore) => (x as unknown as { client: Database }).client;
    const terms = (x: SqliteStore): Set<string> => {
      const c = client(x);
      c.run("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_terms USING fts5vocab(main, messages_fts, row)");
      return new Set((c.query("SELECT term FROM temp.fts_terms").all() as Array<{ term: string }>).map((r) => r.term));
    };
    try {
      await s.createUser("alice", "h", 1);
      await s.createGroup("g", "alice", 1);
      const [m] = await results(s, [{ sender: "alice", grp: "g", text: "zqxjk secret" }], 1);
      await results(s, [{ sender: "alice", grp: "g", text: "kept words" }], 2);
      expect(mids(await s.search("alice", "zqxjk", Number.MAX_SAFE_INTEGER, 10))).toEqual([m!.mid]);
      expect(terms(s).has("zqx")).toBe(true);
      await results(s, [{ sender: "alice", grp: "g", kind: "delete", ref: m!.mid }], 3);
      const left = terms(s);
      for (const t of ["zqx", "qxj", "xjk", "jk ", "cre"]) expect({ t, in: left.has(t) }).toEqual({ t, in: false });
      expect(left.has("kep")).toBe(true);
      await s.close();

      s = new SqliteStore({ path: p, durability: "normal" });
      const [n] = await results(s, [{ sender: "alice", grp: "g", text: "kept again" }], 4);
      expect(mids(await s.search("alice", "kept", Number.MAX_SAFE_INTEGER, 10))).toEqual([n!.mid, 2]);
      // Each message once in the index (the watermark survived the reopen).
      const c = client(s);
      expect((c.query("SELECT count(*) AS n FROM messages_fts WHERE messages_fts MATCH 'kept'").get() as { n: number }).n).toBe(2);
      const plan = (c.query("EXPLAIN QUERY PLAN SELECT m.mid FROM messages_fts JOIN messages m ON m.mid = messages_fts.rowid WHERE messages_fts MATCH 'abc' AND messages_fts.rowid < 9 ORDER BY messages_fts.rowid DESC LIMIT 5").all() as Array<{ detail: string }>).map((r) => r.detail);
      expect(plan.join("\n")).toContain("VIRTUAL TABLE INDEX");
    } finally {
      await s.close();
    }
  });
});

describe("SqliteStore WAL and ownership (src/store/sqlite-wal.ts)", () => {
  const text = "x".repeat(200);
  const batch = (n: number): NewMessage[] => Array.from({ length: n }, () => ({ sender: "alice", grp: "g", text }));

  test("a second store on the same file is refused with 'database is locked' until the first is closed", async () => {
    const p = tmpDbPath();
    const a = new SqliteStore({ path: p, durability: "normal" });
    await a.commit(batch(3), 1);
    expect(fs.existsSync(`${p}-lock-journal`)).toBe(false); // the lock holds no data: no journal beside it
    expect(() => new SqliteStore({ path: p, durability: "normal" })).toThrow(/database is locked/);
    // Refused without touching anything: the first store goes on.
    expect((await a.commit(batch(1), 2)).results[0]!.mid).toBe(4);
    await a.close();
    const b = new SqliteStore({ path: p, durability: "normal" });
    expect((await b.commit(batch(1), 3)).results[0]!.mid).toBe(5);
    await b.close();
    expect(fs.statSync(`${p}-lock`).mode & 0o777).toBe(0o600);
  });

  test("commits never checkpoint (wal_autocheckpoint 0); a worker thread copies the WAL into the database file within moments, while this thread only sleeps", async () => {
    const p = tmpDbPath();
    const s = new SqliteStore({ path: p, durability: "normal" });
    const client = (s as unknown as { client: Database }).client;
    expect(client.query("PRAGMA wal_autocheckpoint").get()).toEqual({ wal_autocheckpoint: 0 });
    const dbBefore = fs.statSync(p).size;
    // About 3 MB of messages: SQLite's own checkpoint (at 1000 pages) would run inside these commits.
    for (let i = 0; i < 60; i++) await s.commit(batch(200), i);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && fs.statSync(p).size < dbBefore + 3_000_000) await Bun.sleep(20);
    expect(fs.statSync(p).size).toBeGreaterThan(dbBefore + 3_000_000);
    // Everything is copied, so the next commit starts the WAL over.
    await Bun.sleep(300);
    await s.commit(batch(1), 100);
    const frames = client.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { log: number };
    expect(frames.log).toBeLessThan(50);
    expect((await s.history(groupConv("g"), { limit: 1 }))[0]!.mid).toBe(60 * 200 + 1);
    await s.close();
    expect(fs.existsSync(`${p}-wal`)).toBe(false); // the last connection checkpointed and removed it
  });
});
