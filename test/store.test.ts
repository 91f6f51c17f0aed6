// One shared suite for the Store contract (src/store/store.ts), run against every
// implementation: MemoryStore, SqliteStore on ":memory:" and SqliteStore on a real
// file. SQLite-only behaviour (persistence, migrations, rollback) follows at the end.
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Database } from "bun:sqlite";
import { sql } from "drizzle-orm";
import { MemoryStore } from "../src/store/memory.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { NewMessage, Page, Store, StoredMessage } from "../src/store/store.ts";
import { convOf, dmConv, groupConv, messageSize } from "../src/store/store.ts";

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "tcpchat-store-test-"));
let fileCounter = 0;
function tmpDbPath(): string {
  return path.join(tmpDir, `db-${++fileCounter}.sqlite`);
}

afterAll(() => {
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

function mids(list: Array<{ mid: number }>): number[] {
  return list.map((m) => m.mid);
}

function isAscending(list: number[]): boolean {
  for (let i = 1; i < list.length; i++) if (!(list[i]! > list[i - 1]!)) return false;
  return true;
}

/** Bytes as a plain array, so Buffer vs Uint8Array does not matter for comparison. */
function bytes(d: Uint8Array | undefined): number[] {
  expect(d).toBeInstanceOf(Uint8Array);
  return Array.from(d!);
}

/** A StoredMessage reduced to plain, comparable data (file bytes as an array). */
function plain(m: StoredMessage | NewMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined) continue;
    if (k === "file") {
      const f = v as { name: string; type: string; data: Uint8Array };
      out.file = { name: f.name, type: f.type, data: bytes(f.data) };
    } else out[k] = v;
  }
  return out;
}

function byName(a: { grp: string; user: string }, b: { grp: string; user: string }): number {
  const ka = `${a.grp}\0${a.user}`;
  const kb = `${b.grp}\0${b.user}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function storeSuite(name: string, makeStore: () => Store): void {
  describe(name, () => {
    let store: Store;
    beforeEach(() => {
      store = makeStore();
    });
    afterEach(() => {
      store.close();
    });

    function users(...names: string[]): void {
      for (const n of names) expect(store.createUser(n, `hash-${n}`, 1)).toBe(true);
    }

    describe("users", () => {
      test("createUser returns true, then false for the same name, keeping the first hash", () => {
        expect(store.createUser("alice", "h1", 100)).toBe(true);
        expect(store.createUser("alice", "h2", 200)).toBe(false);
        expect(store.getUser("alice")).toEqual({ name: "alice", passHash: "h1" });
      });

      test("getUser returns exactly name and passHash; unknown user is undefined", () => {
        expect(store.createUser("bob", "$argon2id$v=19$xyz", 5)).toBe(true);
        expect(store.createUser("bob.2", "other", 5)).toBe(true);
        expect(store.getUser("bob")).toEqual({ name: "bob", passHash: "$argon2id$v=19$xyz" });
        expect(store.getUser("bob.2")).toEqual({ name: "bob.2", passHash: "other" });
        expect(store.getUser("bo")).toBeUndefined();
        expect(store.getUser("nobody")).toBeUndefined();
        expect(store.getUser("")).toBeUndefined();
      });
    });

    describe("tokens", () => {
      test("deleteUserTokens revokes every token of that user only; setPassword replaces the hash", () => {
        users("alice", "bob");
        store.addToken("a1", "alice", 1, 1000);
        store.addToken("a2", "alice", 1, 1000);
        store.addToken("b1", "bob", 1, 1000);
        store.deleteUserTokens("alice");
        expect(store.tokenUser("a1", 10)).toBeUndefined();
        expect(store.tokenUser("a2", 10)).toBeUndefined();
        expect(store.tokenUser("b1", 10)).toBe("bob");
        store.setPassword("alice", "new-hash");
        expect(store.getUser("alice")).toEqual({ name: "alice", passHash: "new-hash" });
        expect(store.getUser("bob")).toEqual({ name: "bob", passHash: "hash-bob" });
      });

      test("tokenUser returns the user before expiry and undefined at/after expires", () => {
        users("alice");
        store.addToken("t1", "alice", 100, 200);
        expect(store.tokenUser("t1", 100)).toBe("alice");
        expect(store.tokenUser("t1", 199)).toBe("alice");
        expect(store.tokenUser("t1", 200)).toBeUndefined();
        expect(store.tokenUser("t1", 201)).toBeUndefined();
        expect(store.tokenUser("t1", 1_000_000)).toBeUndefined();
        expect(store.tokenUser("unknown", 100)).toBeUndefined();
      });

      test("deleteToken removes only that token", () => {
        users("alice", "bob");
        store.addToken("ta", "alice", 0, 1000);
        store.addToken("ta2", "alice", 0, 1000);
        store.addToken("tb", "bob", 0, 1000);
        expect(store.tokenUser("ta", 10)).toBe("alice");
        store.deleteToken("ta");
        expect(store.tokenUser("ta", 10)).toBeUndefined();
        expect(store.tokenUser("ta2", 10)).toBe("alice");
        expect(store.tokenUser("tb", 10)).toBe("bob");
        // Deleting an unknown or already-deleted token is harmless.
        store.deleteToken("ta");
        store.deleteToken("never-existed");
        expect(store.tokenUser("tb", 10)).toBe("bob");
      });

      test("addToken with maxPerUser keeps the user's newest tokens; maintain(now) deletes expired ones", () => {
        users("alice", "bob");
        store.addToken("b1", "bob", 1, 1000);
        for (let i = 0; i < 5; i++) store.addToken(`a${i}`, "alice", 10 + i, 1000, 3);
        expect(["a0", "a1", "a2", "a3", "a4"].map((t) => store.tokenUser(t, 20))).toEqual([
          undefined,
          undefined,
          "alice",
          "alice",
          "alice",
        ]);
        expect(store.tokenUser("b1", 20)).toBe("bob"); // another user's tokens do not count
        // Created in the same millisecond: the first added is the oldest.
        store.addToken("x1", "bob", 50, 1000, 2);
        store.addToken("x2", "bob", 50, 1000, 2);
        store.addToken("x3", "bob", 50, 1000, 2);
        expect(["b1", "x1", "x2", "x3"].map((t) => store.tokenUser(t, 60))).toEqual([undefined, undefined, "bob", "bob"]);

        store.addToken("e1", "alice", 20, 100);
        store.addToken("e2", "alice", 20, 101);
        store.maintain(100); // expired: expires <= now
        expect(store.tokenUser("e1", 50)).toBeUndefined(); // deleted, not just expired
        expect(store.tokenUser("e2", 50)).toBe("alice");
        expect(store.tokenUser("a4", 50)).toBe("alice");
        store.maintain(100); // nothing left to do
        expect(store.tokenUser("e2", 50)).toBe("alice");
      });
    });

    describe("groups", () => {
      test("groupsCreatedBy counts the groups a user created, also after leaving them; groupCount the groups they are in", () => {
        users("alice", "bob");
        expect(store.groupsCreatedBy("alice")).toBe(0);
        expect(store.groupCount("alice")).toBe(0);
        store.createGroup("a1", "alice", 1);
        store.createGroup("a2", "alice", 1);
        store.createGroup("b1", "bob", 1);
        store.addMember("b1", "alice", 2);
        expect(store.groupsCreatedBy("alice")).toBe(2);
        expect(store.groupCount("alice")).toBe(3);
        expect(store.groupsCreatedBy("bob")).toBe(1);
        expect(store.groupCount("bob")).toBe(1);
        store.removeMember("a1", "alice");
        expect(store.groupsCreatedBy("alice")).toBe(2);
        expect(store.groupCount("alice")).toBe(2);
        expect(store.groupsCreatedBy("nobody")).toBe(0);
      });

      test("createGroup makes the owner a member; a second createGroup of the same name returns false", () => {
        users("alice", "bob");
        expect(store.getGroup("g")).toBeUndefined();
        expect(store.createGroup("g", "alice", 10)).toBe(true);
        expect(store.getGroup("g")).toEqual({ name: "g", owner: "alice" });
        expect(store.allMemberships()).toEqual([{ grp: "g", user: "alice" }]);
        expect(store.userGroups("alice")).toEqual([{ name: "g", owner: "alice" }]);

        expect(store.createGroup("g", "bob", 11)).toBe(false);
        expect(store.getGroup("g")).toEqual({ name: "g", owner: "alice" });
        expect(store.userGroups("bob")).toEqual([]);
        expect(store.allMemberships()).toEqual([{ grp: "g", user: "alice" }]);
      });

      test("addMember true then false; removeMember true then false", () => {
        users("alice", "bob");
        store.createGroup("g", "alice", 1);
        expect(store.addMember("g", "bob", 2)).toBe(true);
        expect(store.addMember("g", "bob", 3)).toBe(false);
        expect(store.addMember("g", "alice", 3)).toBe(false); // owner is already a member
        expect(store.userGroups("bob")).toEqual([{ name: "g", owner: "alice" }]);

        expect(store.removeMember("g", "bob")).toBe(true);
        expect(store.removeMember("g", "bob")).toBe(false);
        expect(store.userGroups("bob")).toEqual([]);
        expect(store.allMemberships()).toEqual([{ grp: "g", user: "alice" }]);

        // Can re-join after leaving.
        expect(store.addMember("g", "bob", 4)).toBe(true);
        expect(store.userGroups("bob")).toEqual([{ name: "g", owner: "alice" }]);
      });

      test("removeMember of a non-member or of a missing group returns false", () => {
        users("alice", "bob");
        store.createGroup("g", "alice", 1);
        expect(store.removeMember("g", "bob")).toBe(false);
        expect(store.removeMember("nope", "alice")).toBe(false);
        expect(store.allMemberships()).toEqual([{ grp: "g", user: "alice" }]);
      });

      test("userGroups is sorted by name and carries owners", () => {
        users("alice", "bob", "carol");
        // Created out of name order, with different owners.
        store.createGroup("zeta", "bob", 1);
        store.createGroup("alpha", "carol", 2);
        store.createGroup("mid", "alice", 3);
        store.createGroup("_beta", "bob", 4); // names are [a-z0-9_.-]: "_" sorts before letters
        store.createGroup("9lives", "carol", 4); // and digits before "_"
        store.createGroup("other", "carol", 5); // alice is not in this one
        expect(store.addMember("zeta", "alice", 6)).toBe(true);
        expect(store.addMember("alpha", "alice", 7)).toBe(true);
        expect(store.addMember("_beta", "alice", 8)).toBe(true);
        expect(store.addMember("9lives", "alice", 8)).toBe(true);

        expect(store.userGroups("alice")).toEqual([
          { name: "9lives", owner: "carol" },
          { name: "_beta", owner: "bob" },
          { name: "alpha", owner: "carol" },
          { name: "mid", owner: "alice" },
          { name: "zeta", owner: "bob" },
        ]);
        expect(store.userGroups("carol")).toEqual([
          { name: "9lives", owner: "carol" },
          { name: "alpha", owner: "carol" },
          { name: "other", owner: "carol" },
        ]);
        expect(store.userGroups("nobody")).toEqual([]);
      });

      test("allMemberships lists every (group, user) pair exactly once", () => {
        users("alice", "bob", "carol");
        expect(store.allMemberships()).toEqual([]);
        store.createGroup("g1", "alice", 1);
        store.createGroup("g2", "bob", 1);
        store.addMember("g1", "bob", 2);
        store.addMember("g1", "carol", 2);
        store.addMember("g2", "carol", 2);
        store.addMember("g2", "carol", 3); // no-op
        store.removeMember("g1", "carol");

        const all = store.allMemberships().slice().sort(byName);
        expect(all).toEqual([
          { grp: "g1", user: "alice" },
          { grp: "g1", user: "bob" },
          { grp: "g2", user: "bob" },
          { grp: "g2", user: "carol" },
        ]);
      });
    });

    describe("commit", () => {
      beforeEach(() => {
        users("alice", "bob", "carol");
        store.createGroup("g", "alice", 1);
        store.addMember("g", "bob", 1);
      });

      test("empty store: lastMid is 0; an empty batch returns [] and changes nothing", () => {
        expect(store.lastMid()).toBe(0);
        expect(store.commit([], 5)).toEqual([]);
        expect(store.lastMid()).toBe(0);
      });

      test("a batch assigns consecutive, strictly increasing mids after lastMid(); ts is `now`", () => {
        const r1 = store.commit(
          [
            { sender: "alice", grp: "g", text: "a" },
            { sender: "bob", toUser: "alice", text: "b" },
            { sender: "alice", grp: "g", text: "c" },
          ],
          1000,
        );
        expect(r1).toEqual([
          { mid: 1, ts: 1000, duplicate: false },
          { mid: 2, ts: 1000, duplicate: false },
          { mid: 3, ts: 1000, duplicate: false },
        ]);
        expect(store.lastMid()).toBe(3);

        const before = store.lastMid();
        const r2 = store.commit(
          [
            { sender: "bob", grp: "g", text: "d" },
            { sender: "carol", toUser: "bob", text: "e" },
          ],
          2000,
        );
        expect(mids(r2)).toEqual([before + 1, before + 2]);
        expect(r2.every((r) => r.ts === 2000 && !r.duplicate)).toBe(true);
        expect(store.lastMid()).toBe(before + 2);

        // Stored ts is the commit's `now`, per batch.
        const h = store.history(groupConv("g"), { limit: 10 });
        expect(h.map((m) => [m.mid, m.ts, m.text])).toEqual([
          [1, 1000, "a"],
          [3, 1000, "c"],
          [4, 2000, "d"],
        ]);
      });

      test("a stored message round-trips every field it was given", () => {
        const batch: NewMessage[] = [
          { sender: "alice", grp: "g", cid: "c-1", text: "hello group" },
          { sender: "bob", toUser: "carol", cid: "c-2", text: "hello dm" },
          { sender: "carol", toUser: "bob", text: "no cid" },
        ];
        const r = store.commit(batch, 77);
        const got = [
          ...store.history(groupConv("g"), { limit: 10 }),
          ...store.history(dmConv("bob", "carol"), { limit: 10 }),
        ];
        expect(got.map(plain)).toEqual(batch.map((m, i) => plain({ ...m, mid: r[i]!.mid, ts: 77 })));
      });

      test("a (sender, cid) already stored is a duplicate with the ORIGINAL mid and ts, not stored twice", () => {
        const [first] = store.commit([{ sender: "alice", grp: "g", cid: "c1", text: "original" }], 1000);
        expect(first).toEqual({ mid: 1, ts: 1000, duplicate: false });

        const r = store.commit(
          [
            { sender: "alice", grp: "g", cid: "c1", text: "retry with other text" },
            { sender: "alice", grp: "g", cid: "c2", text: "new" },
          ],
          2000,
        );
        expect(r[0]).toEqual({ mid: 1, ts: 1000, duplicate: true });
        // The duplicate consumes no mid: the next new message gets the next one.
        expect(r[1]).toEqual({ mid: 2, ts: 2000, duplicate: false });
        expect(store.lastMid()).toBe(2);

        const h = store.history(groupConv("g"), { limit: 10 });
        expect(h.map((m) => [m.mid, m.ts, m.cid, m.text])).toEqual([
          [1, 1000, "c1", "original"],
          [2, 2000, "c2", "new"],
        ]);

        // A batch made only of a duplicate changes nothing.
        expect(store.commit([{ sender: "alice", grp: "g", cid: "c2" }], 3000)).toEqual([
          { mid: 2, ts: 2000, duplicate: true },
        ]);
        expect(store.lastMid()).toBe(2);
        expect(store.history(groupConv("g"), { limit: 10 })).toHaveLength(2);
      });

      test("(sender, cid) identifies a message across conversations", () => {
        store.commit([{ sender: "alice", grp: "g", cid: "x", text: "to group" }], 10);
        const r = store.commit([{ sender: "alice", toUser: "bob", cid: "x", text: "to bob" }], 20);
        expect(r).toEqual([{ mid: 1, ts: 10, duplicate: true }]);
        expect(store.history(dmConv("alice", "bob"), { limit: 10 })).toEqual([]);
        expect(store.lastMid()).toBe(1);
      });

      test("the same (sender, cid) twice in one batch: the second is a duplicate of the first", () => {
        store.commit([{ sender: "carol", toUser: "bob", text: "earlier" }], 500);
        const r = store.commit(
          [
            { sender: "alice", grp: "g", cid: "same", text: "first" },
            { sender: "bob", grp: "g", text: "between" },
            { sender: "alice", grp: "g", cid: "same", text: "second" },
            { sender: "bob", grp: "g", text: "after" },
          ],
          900,
        );
        expect(r).toEqual([
          { mid: 2, ts: 900, duplicate: false },
          { mid: 3, ts: 900, duplicate: false },
          { mid: 2, ts: 900, duplicate: true },
          { mid: 4, ts: 900, duplicate: false },
        ]);
        expect(store.lastMid()).toBe(4);
        expect(store.history(groupConv("g"), { limit: 10 }).map((m) => m.text)).toEqual([
          "first",
          "between",
          "after",
        ]);
      });

      test("the same cid from a different sender is NOT a duplicate", () => {
        const r = store.commit(
          [
            { sender: "alice", grp: "g", cid: "shared", text: "from alice" },
            { sender: "bob", grp: "g", cid: "shared", text: "from bob" },
          ],
          10,
        );
        expect(r).toEqual([
          { mid: 1, ts: 10, duplicate: false },
          { mid: 2, ts: 10, duplicate: false },
        ]);
        const r2 = store.commit([{ sender: "carol", toUser: "alice", cid: "shared", text: "from carol" }], 20);
        expect(r2).toEqual([{ mid: 3, ts: 20, duplicate: false }]);
        expect(store.history(groupConv("g"), { limit: 10 }).map((m) => m.sender)).toEqual(["alice", "bob"]);
        expect(store.history(dmConv("alice", "carol"), { limit: 10 })).toHaveLength(1);
      });

      test("messages without cid are never duplicates", () => {
        const m: NewMessage = { sender: "alice", grp: "g", text: "same" };
        const r1 = store.commit([m, { ...m }, { ...m }], 10);
        const r2 = store.commit([{ ...m }], 20);
        expect([...r1, ...r2]).toEqual([
          { mid: 1, ts: 10, duplicate: false },
          { mid: 2, ts: 10, duplicate: false },
          { mid: 3, ts: 10, duplicate: false },
          { mid: 4, ts: 20, duplicate: false },
        ]);
        const h = store.history(groupConv("g"), { limit: 10 });
        expect(mids(h)).toEqual([1, 2, 3, 4]);
        expect(h.every((x) => x.cid === undefined && x.text === "same")).toBe(true);
      });

      test("files (name, type, binary data) round-trip byte-exactly", () => {
        const all256 = new Uint8Array(256);
        for (let i = 0; i < 256; i++) all256[i] = i;
        const big = new Uint8Array(200_000);
        for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
        const batch: NewMessage[] = [
          { sender: "alice", grp: "g", file: { name: "bytes.bin", type: "application/octet-stream", data: all256 } },
          {
            sender: "bob",
            toUser: "alice",
            text: "with caption ✓",
            file: { name: "fötö 📷.png", type: "image/png", data: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0xff]) },
          },
          { sender: "alice", grp: "g", file: { name: "big.dat", type: "", data: big } },
          { sender: "alice", grp: "g", file: { name: "empty.txt", type: "text/plain", data: new Uint8Array(0) } },
          // A view into a larger buffer: only the view's bytes are the file.
          {
            sender: "alice",
            grp: "g",
            file: { name: "slice", type: "x/y", data: new Uint8Array([9, 9, 1, 2, 3, 9]).subarray(2, 5) },
          },
        ];
        store.commit(batch, 42);

        const g = store.history(groupConv("g"), { limit: 10 });
        expect(g).toHaveLength(4);
        expect(g[0]!.file!.name).toBe("bytes.bin");
        expect(g[0]!.file!.type).toBe("application/octet-stream");
        expect(bytes(g[0]!.file!.data)).toEqual(Array.from(all256));
        expect(g[0]!.text).toBeUndefined();
        expect(g[1]!.file!.name).toBe("big.dat");
        expect(g[1]!.file!.type).toBe("");
        expect(g[1]!.file!.data.length).toBe(big.length);
        expect(Buffer.from(g[1]!.file!.data).equals(Buffer.from(big))).toBe(true);
        expect(g[2]!.file).toBeDefined();
        expect(g[2]!.file!.name).toBe("empty.txt");
        expect(g[2]!.file!.type).toBe("text/plain");
        expect(bytes(g[2]!.file!.data)).toEqual([]);
        expect(g[3]!.file!.name).toBe("slice");
        expect(bytes(g[3]!.file!.data)).toEqual([1, 2, 3]);

        const d = store.history(dmConv("alice", "bob"), { limit: 10 });
        expect(d).toHaveLength(1);
        expect(d[0]!.text).toBe("with caption ✓");
        expect(d[0]!.file!.name).toBe("fötö 📷.png");
        expect(d[0]!.file!.type).toBe("image/png");
        expect(bytes(d[0]!.file!.data)).toEqual([0x89, 0x50, 0x4e, 0x47, 0, 0, 0xff]);

        // sync returns the same bytes.
        const s = store.sync("alice", 0, 10).find((m) => m.file?.name === "bytes.bin");
        expect(bytes(s?.file?.data)).toEqual(Array.from(all256));
      });

      test("text round-trips, including unicode and emoji", () => {
        const texts = [
          "héllo wörld",
          "👋🏽 family: 👨‍👩‍👧‍👦 flag: 🇳🇿",
          "中文 日本語 한국어 العربية עברית",
          "line1\nline2\ttab \"quotes\" 'single' \\ backslash",
          "", // empty text is still text
          "null char: a\u0000b",
          "lone surrogate-free astral: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
          "x".repeat(100_000),
        ];
        store.commit(
          texts.map((text) => ({ sender: "alice", grp: "g", text })),
          1,
        );
        const h = store.history(groupConv("g"), { limit: 100 });
        expect(h.map((m) => m.text)).toEqual(texts);
      });
    });

    describe("history", () => {
      /** mids of group g, of DM alice<->bob, of DM alice<->carol, in commit order */
      let G: number[];
      let AB: number[];
      let AC: number[];

      beforeEach(() => {
        users("alice", "bob", "carol");
        store.createGroup("g", "alice", 1);
        store.addMember("g", "bob", 1);
        G = [];
        AB = [];
        AC = [];
        // Interleave conversations so that mids in each are not contiguous.
        for (let i = 0; i < 12; i++) {
          const batch: NewMessage[] = [{ sender: i % 2 ? "bob" : "alice", grp: "g", text: `g${i}` }];
          if (i % 3 === 0) batch.push({ sender: "alice", toUser: "bob", text: `ab${i}` });
          if (i % 3 === 1) batch.push({ sender: "bob", toUser: "alice", text: `ba${i}` });
          if (i % 4 === 2) batch.push({ sender: "carol", toUser: "alice", text: `ca${i}` });
          const r = store.commit(batch, 100 + i);
          batch.forEach((m, j) => {
            const mid = r[j]!.mid;
            if (m.grp) G.push(mid);
            else if (convOf(m) === dmConv("alice", "bob")) AB.push(mid);
            else AC.push(mid);
          });
        }
      });

      test("dmConv is symmetric and differs from groupConv", () => {
        expect(dmConv("alice", "bob")).toBe(dmConv("bob", "alice"));
        expect(dmConv("alice", "bob")).not.toBe(dmConv("alice", "carol"));
        expect(groupConv("g")).not.toBe(dmConv("g", "g"));
      });

      test("group and DM conversations are separate", () => {
        const g = store.history(groupConv("g"), { limit: 100 });
        expect(mids(g)).toEqual(G);
        expect(g.every((m) => m.grp === "g" && m.toUser === undefined)).toBe(true);

        const ab = store.history(dmConv("alice", "bob"), { limit: 100 });
        const ba = store.history(dmConv("bob", "alice"), { limit: 100 });
        expect(mids(ab)).toEqual(AB);
        expect(ba).toEqual(ab);
        // Both directions are in the one conversation.
        expect(new Set(ab.map((m) => m.sender))).toEqual(new Set(["alice", "bob"]));
        expect(ab.every((m) => m.grp === undefined && (m.toUser === "alice" || m.toUser === "bob"))).toBe(true);

        expect(mids(store.history(dmConv("carol", "alice"), { limit: 100 }))).toEqual(AC);
        expect(store.history(dmConv("bob", "carol"), { limit: 100 })).toEqual([]);
        expect(store.history(groupConv("nope"), { limit: 100 })).toEqual([]);
        expect(G.length + AB.length + AC.length).toBe(store.lastMid());
      });

      test("no page args: the newest `limit`, oldest first", () => {
        expect(mids(store.history(groupConv("g"), { limit: 3 }))).toEqual(G.slice(-3));
        expect(mids(store.history(groupConv("g"), { limit: 1 }))).toEqual(G.slice(-1));
        expect(mids(store.history(groupConv("g"), { limit: 1000 }))).toEqual(G);
        expect(mids(store.history(dmConv("bob", "alice"), { limit: 2 }))).toEqual(AB.slice(-2));
        expect(store.history(groupConv("g"), { limit: 0 })).toEqual([]);
      });

      test("before: the newest `limit` with mid < before, oldest first", () => {
        expect(mids(store.history(groupConv("g"), { before: G[6]!, limit: 3 }))).toEqual(G.slice(3, 6));
        expect(mids(store.history(groupConv("g"), { before: G[1]!, limit: 3 }))).toEqual(G.slice(0, 1));
        expect(store.history(groupConv("g"), { before: G[0]!, limit: 3 })).toEqual([]);
        expect(store.history(groupConv("g"), { before: 1, limit: 3 })).toEqual([]);
        expect(mids(store.history(groupConv("g"), { before: 1_000_000, limit: 4 }))).toEqual(G.slice(-4));
      });

      test("after: the first `limit` with mid > after, oldest first", () => {
        expect(mids(store.history(groupConv("g"), { after: G[2]!, limit: 3 }))).toEqual(G.slice(3, 6));
        expect(mids(store.history(groupConv("g"), { after: 0, limit: 2 }))).toEqual(G.slice(0, 2));
        expect(mids(store.history(groupConv("g"), { after: G[9]!, limit: 10 }))).toEqual(G.slice(10));
        expect(store.history(groupConv("g"), { after: G[G.length - 1]!, limit: 10 })).toEqual([]);
      });

      test("before and after: only messages strictly within the range, paging forward from after", () => {
        expect(mids(store.history(groupConv("g"), { after: G[1]!, before: G[9]!, limit: 100 }))).toEqual(
          G.slice(2, 9),
        );
        expect(mids(store.history(groupConv("g"), { after: G[1]!, before: G[9]!, limit: 3 }))).toEqual(G.slice(2, 5));
        expect(store.history(groupConv("g"), { after: G[4]!, before: G[5]!, limit: 10 })).toEqual([]);
        expect(store.history(groupConv("g"), { after: G[5]!, before: G[4]!, limit: 10 })).toEqual([]);
      });

      test("every page matches a reference model and is ascending by mid", () => {
        const lastMid = store.lastMid();
        const bounds = [undefined, 0, 1, 2, 3, 5, 8, 13, lastMid - 1, lastMid, lastMid + 1];
        for (const [conv, all] of [
          [groupConv("g"), G],
          [dmConv("alice", "bob"), AB],
          [dmConv("alice", "carol"), AC],
        ] as const) {
          for (const after of bounds)
            for (const before of bounds)
              for (const limit of [0, 1, 2, 5, 100]) {
                const page: Page = { limit };
                if (after !== undefined) page.after = after;
                if (before !== undefined) page.before = before;
                const inRange = all.filter((m) => (after === undefined || m > after) && (before === undefined || m < before));
                const expected = after !== undefined ? inRange.slice(0, limit) : limit === 0 ? [] : inRange.slice(-limit);
                const got = mids(store.history(conv, page));
                expect({ conv, page, got }).toEqual({ conv, page, got: expected });
                expect(isAscending(got)).toBe(true);
              }
        }
      });
    });

    describe("sync", () => {
      /** Reference: every message committed, in mid order. */
      let all: StoredMessage[];

      function commit(batch: NewMessage[], now: number): void {
        const r = store.commit(batch, now);
        batch.forEach((m, i) => {
          if (!r[i]!.duplicate) all.push({ ...m, mid: r[i]!.mid, ts: r[i]!.ts });
        });
      }

      beforeEach(() => {
        all = [];
        users("alice", "bob", "carol", "dave");
        store.createGroup("g1", "alice", 1); // alice, bob
        store.addMember("g1", "bob", 1);
        store.createGroup("g2", "carol", 1); // carol, dave — not alice
        store.addMember("g2", "dave", 1);
        store.createGroup("g3", "bob", 1); // bob, alice (alice joined)
        store.addMember("g3", "alice", 1);

        commit(
          [
            { sender: "bob", grp: "g1", text: "g1 from bob" },
            { sender: "carol", grp: "g2", text: "g2 from carol" },
            { sender: "alice", toUser: "bob", text: "dm alice->bob" },
            { sender: "bob", toUser: "alice", text: "dm bob->alice" },
          ],
          10,
        );
        commit(
          [
            { sender: "carol", toUser: "dave", text: "dm carol->dave" },
            { sender: "alice", toUser: "alice", text: "note to self" },
            { sender: "carol", toUser: "alice", text: "dm carol->alice" },
            { sender: "alice", grp: "g1", text: "g1 from alice" },
            { sender: "dave", grp: "g2", text: "g2 from dave" },
            { sender: "bob", grp: "g3", text: "g3 from bob" },
          ],
          20,
        );
        // Lots of group traffic then a DM, so that a per-source limit has to be merged correctly.
        commit(
          Array.from({ length: 8 }, (_, i) => ({ sender: "bob", grp: "g1", text: `burst ${i}` })),
          30,
        );
        commit([{ sender: "dave", toUser: "alice", text: "dm dave->alice" }], 40);
        commit([{ sender: "alice", toUser: "dave", text: "dm alice->dave" }], 50);
        commit([{ sender: "carol", grp: "g2", text: "g2 late" }], 60);
      });

      function expectedFor(user: string, member: (grp: string) => boolean): StoredMessage[] {
        return all.filter((m) => (m.grp !== undefined ? member(m.grp) : m.sender === user || m.toUser === user));
      }

      test("includes the user's groups and DMs to and from them; excludes others", () => {
        const got = store.sync("alice", 0, 1000);
        const texts = got.map((m) => m.text);
        expect(texts).toEqual(
          expectedFor("alice", (g) => g === "g1" || g === "g3").map((m) => m.text),
        );
        expect(texts).toContain("g1 from bob");
        expect(texts).toContain("g1 from alice");
        expect(texts).toContain("g3 from bob");
        expect(texts).toContain("dm alice->bob");
        expect(texts).toContain("dm bob->alice");
        expect(texts).toContain("dm carol->alice");
        expect(texts).toContain("dm dave->alice");
        expect(texts).toContain("dm alice->dave");
        expect(texts).not.toContain("g2 from carol");
        expect(texts).not.toContain("g2 from dave");
        expect(texts).not.toContain("g2 late");
        expect(texts).not.toContain("dm carol->dave");
        // Full content matches what was committed.
        expect(got.map(plain)).toEqual(expectedFor("alice", (g) => g === "g1" || g === "g3").map(plain));
      });

      test("a DM to self appears exactly once", () => {
        const got = store.sync("alice", 0, 1000);
        expect(got.filter((m) => m.text === "note to self")).toHaveLength(1);
        expect(new Set(mids(got)).size).toBe(got.length);
        // And only for its owner.
        expect(store.sync("bob", 0, 1000).some((m) => m.text === "note to self")).toBe(false);
      });

      test("other users see their own view; a user with no traffic sees nothing", () => {
        const member: Record<string, string[]> = { bob: ["g1", "g3"], carol: ["g2"], dave: ["g2"] };
        for (const [u, gs] of Object.entries(member)) {
          expect(mids(store.sync(u, 0, 1000))).toEqual(mids(expectedFor(u, (g) => gs.includes(g))));
        }
        users("erin");
        expect(store.sync("erin", 0, 1000)).toEqual([]);
        expect(store.sync("ghost", 0, 1000)).toEqual([]);
      });

      test("ascending by mid; respects after and limit (reference model over all combinations)", () => {
        const exp = mids(expectedFor("alice", (g) => g === "g1" || g === "g3"));
        const last = store.lastMid();
        for (let after = 0; after <= last + 1; after++) {
          for (const limit of [0, 1, 2, 3, 5, 8, 1000]) {
            const got = mids(store.sync("alice", after, limit));
            const want = exp.filter((m) => m > after).slice(0, limit);
            expect({ after, limit, got }).toEqual({ after, limit, got: want });
            expect(isAscending(got)).toBe(true);
          }
        }
      });

      test("after leaving a group, its messages are no longer returned", () => {
        expect(store.sync("alice", 0, 1000).some((m) => m.grp === "g1")).toBe(true);
        expect(store.removeMember("g1", "alice")).toBe(true);
        const got = store.sync("alice", 0, 1000);
        expect(got.some((m) => m.grp === "g1")).toBe(false);
        expect(mids(got)).toEqual(mids(expectedFor("alice", (g) => g === "g3")));
        // DMs are unaffected.
        expect(got.some((m) => m.text === "dm bob->alice")).toBe(true);
        // bob, still a member, still sees g1.
        expect(store.sync("bob", 0, 1000).some((m) => m.text === "g1 from alice")).toBe(true);
      });

      test("size-first reads: syncSizes and historySizes give what sync and history would, with messageSize; messagesByMid fetches", () => {
        const file = { name: "naïve.txt", type: "text/plain", data: new Uint8Array(1000).fill(7) };
        commit([{ sender: "alice", grp: "g1", cid: "c-é", text: "héllo", file }], 70);
        const last = store.lastMid();
        const byMid = new Map(all.map((m) => [m.mid, m]));
        const sized = (list: Array<StoredMessage | NewMessage & { mid: number }>) =>
          list.map((m) => ({ mid: m.mid, size: messageSize(m) }));
        for (const user of ["alice", "bob", "carol", "dave"])
          for (let after = 0; after <= last; after++)
            for (const limit of [0, 1, 3, 1000])
              expect(store.syncSizes(user, after, limit)).toEqual(sized(store.sync(user, after, limit)));
        expect(store.syncSizes("alice", 0, 1000)).toEqual(sized(all.filter((m) => mids(store.sync("alice", 0, 1000)).includes(m.mid))));
        // text, cid and file name counted in UTF-8 bytes
        expect(store.syncSizes("alice", last - 1, 10)).toEqual([{ mid: last, size: 96 + 6 + 4 + 1000 + 10 + 10 }]);
        const pages: Page[] = [
          { limit: 2 },
          { limit: 100 },
          { after: 3, limit: 2 },
          { before: last, limit: 2 },
          { after: 1, before: last, limit: 100 },
          { limit: 0 },
        ];
        for (const conv of [groupConv("g1"), dmConv("alice", "bob"), dmConv("alice", "alice"), groupConv("nope")])
          for (const page of pages) expect(store.historySizes(conv, page)).toEqual(sized(store.history(conv, page)));
        // messagesByMid: any order, repeats and unknown mids; ascending, each once
        expect(store.messagesByMid([last, 1, 5, 5, 99_999, 3]).map(plain)).toEqual(
          [1, 3, 5, last].map((m) => plain(byMid.get(m)!)),
        );
        expect(store.messagesByMid([])).toEqual([]);
      });

      test("joining a group makes its messages part of sync", () => {
        expect(store.addMember("g2", "alice", 70)).toBe(true);
        const got = store.sync("alice", 0, 1000);
        expect(mids(got)).toEqual(mids(expectedFor("alice", (g) => g !== "nope")));
      });
    });
  });
}

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
  afterEach(() => {
    for (const s of open.splice(0)) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  });

  for (const durability of ["normal", "full"] as const) {
    test(`data survives close() and reopening the same file (durability ${durability})`, () => {
      const p = tmpDbPath();
      const file = new Uint8Array([0, 1, 2, 250, 255]);
      let s = openStore(p, durability);
      s.createUser("alice", "ha", 1);
      s.createUser("bob", "hb", 1);
      s.addToken("tok", "alice", 1, 1000);
      s.createGroup("g", "alice", 2);
      s.addMember("g", "bob", 3);
      const r = s.commit(
        [
          { sender: "alice", grp: "g", cid: "c1", text: "hi 👋" },
          { sender: "bob", toUser: "alice", text: "dm", file: { name: "f.bin", type: "application/x", data: file } },
        ],
        500,
      );
      expect(mids(r)).toEqual([1, 2]);
      s.close();

      s = openStore(p, durability);
      expect(s.getUser("alice")).toEqual({ name: "alice", passHash: "ha" });
      expect(s.getUser("bob")).toEqual({ name: "bob", passHash: "hb" });
      expect(s.tokenUser("tok", 10)).toBe("alice");
      expect(s.getGroup("g")).toEqual({ name: "g", owner: "alice" });
      expect(s.allMemberships().slice().sort(byName)).toEqual([
        { grp: "g", user: "alice" },
        { grp: "g", user: "bob" },
      ]);
      expect(s.userGroups("bob")).toEqual([{ name: "g", owner: "alice" }]);
      expect(s.lastMid()).toBe(2);
      const g = s.history(groupConv("g"), { limit: 10 });
      expect(g.map(plain)).toEqual([{ mid: 1, ts: 500, sender: "alice", grp: "g", cid: "c1", text: "hi 👋" }]);
      const d = s.history(dmConv("alice", "bob"), { limit: 10 });
      expect(d).toHaveLength(1);
      expect(bytes(d[0]!.file!.data)).toEqual([0, 1, 2, 250, 255]);
      expect(mids(s.sync("alice", 0, 10))).toEqual([1, 2]);

      // Duplicate detection survives the restart; new mids continue after the old ones.
      expect(s.commit([{ sender: "alice", grp: "g", cid: "c1", text: "again" }], 900)).toEqual([
        { mid: 1, ts: 500, duplicate: true },
      ]);
      expect(s.commit([{ sender: "alice", grp: "g", text: "next" }], 900)).toEqual([
        { mid: 3, ts: 900, duplicate: false },
      ]);
      expect(s.createUser("alice", "other", 5)).toBe(false);
      expect(s.createGroup("g", "bob", 5)).toBe(false);
      s.close();

      s = openStore(p, durability);
      expect(s.lastMid()).toBe(3);
    });
  }

  test("reopening an existing database re-applies no migration and does not fail", () => {
    const p = tmpDbPath();
    let s = openStore(p, "normal");
    const first = migrationRows(s);
    expect(first.length).toBeGreaterThan(0);
    s.createUser("alice", "h", 1);
    s.commit([{ sender: "alice", toUser: "alice", text: "x" }], 1);
    s.close();

    for (let i = 0; i < 3; i++) {
      s = openStore(p, i % 2 ? "full" : "normal");
      expect(migrationRows(s)).toEqual(first);
      expect(s.getUser("alice")).toEqual({ name: "alice", passHash: "h" });
      expect(s.lastMid()).toBe(1);
      s.close();
    }
  });

  test("a database from before migration 0001 gets every message's size, as messageSize computes it", () => {
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
    const msgs: NewMessage[] = [
      { sender: "alice", toUser: "alice", text: "héllo" },
      { sender: "alice", toUser: "alice", cid: "c1", file: { name: "é.png", type: "image/png", data: new Uint8Array(5000) } },
      { sender: "alice", toUser: "alice", text: "both", file: { name: "f", type: "", data: new Uint8Array(3) } },
    ];
    msgs.forEach((m, i) =>
      old.run(
        "INSERT INTO messages (mid, ts, sender, to_user, conv, cid, text, file_name, file_type, file_data) VALUES (?, 1, 'alice', 'alice', 'd:alice:alice', ?, ?, ?, ?, ?)",
        [i + 1, m.cid ?? null, m.text ?? null, m.file?.name ?? null, m.file?.type ?? null, m.file?.data ?? null],
      ),
    );
    old.close();

    const s = openStore(p, "normal");
    expect(migrationRows(s)).toHaveLength(journal.entries.length);
    expect(s.historySizes(dmConv("alice", "alice"), { limit: 10 })).toEqual(
      msgs.map((m, i) => ({ mid: i + 1, size: messageSize(m) })),
    );
    expect(s.history(dmConv("alice", "alice"), { limit: 10 }).map((m) => m.text)).toEqual(["héllo", undefined, "both"]);
  });

  test("a fresh database has all tables", () => {
    const s = openStore(":memory:", "normal");
    const names = s.db
      .all<{ name: string }>(sql`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .map((r) => r.name);
    for (const t of ["groups", "memberships", "messages", "tokens", "users"]) expect(names).toContain(t);
  });
});

describe("SqliteStore failed commit", () => {
  for (const kind of ["memory", "file"] as const) {
    test(`a commit that throws stores nothing and frees its mids (${kind})`, () => {
      const s = new SqliteStore({ path: kind === "memory" ? ":memory:" : tmpDbPath(), durability: "normal" });
      try {
        s.createUser("alice", "h", 1);
        s.createGroup("g", "alice", 1);
        s.commit(
          [
            { sender: "alice", grp: "g", text: "one" },
            { sender: "alice", grp: "g", cid: "kept", text: "two" },
          ],
          10,
        );
        expect(s.lastMid()).toBe(2);

        expect(() =>
          s.commit(
            [
              { sender: "alice", grp: "g", cid: "lost", text: "good, but in a failing batch" },
              { sender: "alice", toUser: "alice", text: "also good" },
              { sender: null as unknown as string, grp: "g", text: "violates NOT NULL" },
              { sender: "alice", grp: "g", text: "never reached" },
            ],
            20,
          ),
        ).toThrow();

        expect(s.lastMid()).toBe(2);
        expect(s.history(groupConv("g"), { limit: 10 }).map((m) => m.text)).toEqual(["one", "two"]);
        expect(s.history(dmConv("alice", "alice"), { limit: 10 })).toEqual([]);
        expect(mids(s.sync("alice", 0, 10))).toEqual([1, 2]);

        // The next good commit reuses mid 3 (no gap), and the rolled-back cid is free again.
        expect(s.commit([{ sender: "alice", grp: "g", cid: "lost", text: "retry" }], 30)).toEqual([
          { mid: 3, ts: 30, duplicate: false },
        ]);
        // The cid committed before the failure is still a duplicate.
        expect(s.commit([{ sender: "alice", grp: "g", cid: "kept" }], 30)).toEqual([
          { mid: 2, ts: 10, duplicate: true },
        ]);
        expect(s.lastMid()).toBe(3);
        expect(s.history(groupConv("g"), { limit: 10 }).map((m) => [m.mid, m.text])).toEqual([
          [1, "one"],
          [2, "two"],
          [3, "retry"],
        ]);
      } finally {
        s.close();
      }
    });
  }

  test("a failure on the first message of a batch leaves lastMid unchanged", () => {
    const s = new SqliteStore({ path: ":memory:", durability: "normal" });
    try {
      expect(() => s.commit([{ sender: null as unknown as string, grp: "g", text: "bad" }], 1)).toThrow();
      expect(s.lastMid()).toBe(0);
      expect(s.commit([{ sender: "a", grp: "g", text: "ok" }], 2)).toEqual([{ mid: 1, ts: 2, duplicate: false }]);
    } finally {
      s.close();
    }
  });

  test("commit after close() throws and stores nothing", () => {
    const p = tmpDbPath();
    const s = new SqliteStore({ path: p, durability: "normal" });
    s.commit([{ sender: "a", grp: "g", text: "ok" }], 1);
    s.close();
    expect(() => s.commit([{ sender: "a", grp: "g", text: "after close" }], 2)).toThrow();
    const s2 = new SqliteStore({ path: p, durability: "normal" });
    try {
      expect(s2.lastMid()).toBe(1);
      expect(s2.history(groupConv("g"), { limit: 10 }).map((m) => m.text)).toEqual(["ok"]);
    } finally {
      s2.close();
    }
  });
});
