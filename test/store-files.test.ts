// The files part of the Store contract (test/helpers/files-suite.ts) on the memory store and
// SQLite, and SQLite's own: a database from before files were stored apart is converted.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MemoryStore } from "../src/store/memory.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { groupConv } from "../src/store/store.ts";
import { sha256Hex } from "./helpers/client.ts";
import { filesSuite, pattern, readAll } from "./helpers/files-suite.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tcpchat-files-test-"));
let n = 0;
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

filesSuite("MemoryStore", () => new MemoryStore());
filesSuite("SqliteStore file", () => new SqliteStore({ path: path.join(tmp, `f${++n}.db`), durability: "normal" }));

describe("SqliteStore: files from before they were stored apart", () => {
  test("inline bytes become a stored file (one per content) at open; the rows keep no bytes", async () => {
    const file = path.join(tmp, "old.db");
    const s1 = new SqliteStore({ path: file, durability: "normal" });
    await s1.createUser("ann", "h", 1);
    await s1.createGroup("g", "ann", 1);
    const [m] = (await s1.commit([{ sender: "ann", grp: "g", text: "x" }], 1)).results;
    const [m2] = (await s1.commit([{ sender: "ann", grp: "g", text: "y" }], 1)).results;
    await s1.close();
    // As an older server left them: the bytes in the row.
    const big = pattern(2_500_000, 8);
    const db = new Database(file);
    db.run("UPDATE messages SET file_name = 'old.bin', file_type = 'x/y', file_data = ? WHERE mid = ?", [big, m!.mid]);
    db.run("UPDATE messages SET file_name = 'same.bin', file_type = '', file_data = ? WHERE mid = ?", [big, m2!.mid]);
    db.close();
    const s2 = new SqliteStore({ path: file, durability: "normal" });
    const [a, b] = await s2.history(groupConv("g"), { limit: 10, after: 0 }).then((h) => h.filter((x) => x.file));
    expect(a!.file).toEqual({ name: "old.bin", type: "x/y", size: big.length, sha256: sha256Hex(big) });
    expect(b!.file!.name).toBe("same.bin");
    const fa = (await s2.messageFile(a!.mid))!;
    expect((await s2.messageFile(b!.mid))!.file).toBe(fa.file);
    expect(Buffer.compare(await readAll(s2, fa.file, big.length), Buffer.from(big))).toBe(0);
    await s2.close();
    const check = new Database(file, { readonly: true });
    expect(check.query("SELECT count(*) AS n FROM messages WHERE file_data IS NOT NULL").get()).toEqual({ n: 0 });
    check.close();
  });
});
