// The shared suite for the Store contract (src/store/store.ts): `storeSuite(name,
// makeStore)` runs it against one implementation, each test on a new, empty store
// from `makeStore` (closed after it). test/store.test.ts calls it for MemoryStore,
// SqliteStore on ":memory:" and SqliteStore on a file; a store of another kind is
// tested by calling it once more.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { CommitResult, ConvState, FileData, NewMessage, Page, Store, StoredMessage } from "../../src/store/store.ts";
import { convOf, dmConv, FILE_META_SIZE, groupConv, messageSize, PREVIEW_CHARS } from "../../src/store/store.ts";
import { sha256Hex } from "./client.ts";
import { readAll, storeUpload } from "./files-suite.ts";

/** Commits a batch and gives its per-message results (Committed.results). */
export async function results(store: Store, batch: NewMessage[], now: number): Promise<CommitResult[]> {
  return (await store.commit(batch, now)).results;
}

export function mids(list: Array<{ mid: number }>): number[] {
  return list.map((m) => m.mid);
}

export function isAscending(list: number[]): boolean {
  for (let i = 1; i < list.length; i++) if (!(list[i]! > list[i - 1]!)) return false;
  return true;
}

/** Bytes as a plain array, so Buffer vs Uint8Array does not matter for comparison. */
export function bytes(d: Uint8Array | undefined): number[] {
  expect(d).toBeInstanceOf(Uint8Array);
  return Array.from(d!);
}

let uploads = 0;

/** `data` uploaded by `user` into `store` (finished): a message's file naming that upload (PROTOCOL.md §3.9). */
export async function upFile(store: Store, user: string, name: string, type: string, data: Uint8Array): Promise<FileData> {
  const id = `up-${++uploads}`;
  const u = await storeUpload(store, id, user, data, 1);
  return { name, type, size: data.length, sha256: u.sha256, upload: id };
}

/** A StoredMessage reduced to plain, comparable data (a file without the upload that brought it). */
export function plain(m: StoredMessage | NewMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined) continue;
    if (k === "file") {
      const { upload: _, ...f } = v as FileData;
      out.file = f;
    } else out[k] = v;
  }
  return out;
}

export function byName(a: { grp: string; user: string }, b: { grp: string; user: string }): number {
  const ka = `${a.grp}\0${a.user}`;
  const kb = `${b.grp}\0${b.user}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function storeSuite(name: string, makeStore: () => Store | Promise<Store>): void {
  describe(name, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    async function users(...names: string[]): Promise<void> {
      for (const n of names) expect(await store.createUser(n, `hash-${n}`, 1)).toBe(true);
    }

    describe("users", () => {
      test("createUser returns true, then false for the same name, keeping the first hash", async () => {
        expect(await store.createUser("alice", "h1", 100)).toBe(true);
        expect(await store.createUser("alice", "h2", 200)).toBe(false);
        expect(await store.getUser("alice")).toEqual({ name: "alice", passHash: "h1" });
      });

      test("getUser returns exactly name and passHash; unknown user is undefined", async () => {
        expect(await store.createUser("bob", "$argon2id$v=19$xyz", 5)).toBe(true);
        expect(await store.createUser("bob.2", "other", 5)).toBe(true);
        expect(await store.getUser("bob")).toEqual({ name: "bob", passHash: "$argon2id$v=19$xyz" });
        expect(await store.getUser("bob.2")).toEqual({ name: "bob.2", passHash: "other" });
        expect(await store.getUser("bo")).toBeUndefined();
        expect(await store.getUser("nobody")).toBeUndefined();
        expect(await store.getUser("")).toBeUndefined();
      });
    });

    describe("tokens", () => {
      test("deleteUserTokens revokes every token of that user only; setPassword replaces the hash", async () => {
        await users("alice", "bob");
        await store.addToken("a1", "alice", 1, 1000);
        await store.addToken("a2", "alice", 1, 1000);
        await store.addToken("b1", "bob", 1, 1000);
        await store.deleteUserTokens("alice");
        expect(await store.tokenUser("a1", 10)).toBeUndefined();
        expect(await store.tokenUser("a2", 10)).toBeUndefined();
        expect(await store.tokenUser("b1", 10)).toBe("bob");
        await store.setPassword("alice", "new-hash");
        expect(await store.getUser("alice")).toEqual({ name: "alice", passHash: "new-hash" });
        expect(await store.getUser("bob")).toEqual({ name: "bob", passHash: "hash-bob" });
      });

      test("tokenUser returns the user before expiry and undefined at/after expires", async () => {
        await users("alice");
        await store.addToken("t1", "alice", 100, 200);
        expect(await store.tokenUser("t1", 100)).toBe("alice");
        expect(await store.tokenUser("t1", 199)).toBe("alice");
        expect(await store.tokenUser("t1", 200)).toBeUndefined();
        expect(await store.tokenUser("t1", 201)).toBeUndefined();
        expect(await store.tokenUser("t1", 1_000_000)).toBeUndefined();
        expect(await store.tokenUser("unknown", 100)).toBeUndefined();
      });

      test("deleteToken removes only that token", async () => {
        await users("alice", "bob");
        await store.addToken("ta", "alice", 0, 1000);
        await store.addToken("ta2", "alice", 0, 1000);
        await store.addToken("tb", "bob", 0, 1000);
        expect(await store.tokenUser("ta", 10)).toBe("alice");
        await store.deleteToken("ta");
        expect(await store.tokenUser("ta", 10)).toBeUndefined();
        expect(await store.tokenUser("ta2", 10)).toBe("alice");
        expect(await store.tokenUser("tb", 10)).toBe("bob");
        // Deleting an unknown or already-deleted token is harmless.
        await store.deleteToken("ta");
        await store.deleteToken("never-existed");
        expect(await store.tokenUser("tb", 10)).toBe("bob");
      });

      test("addToken with maxPerUser keeps the user's newest tokens; maintain(now) deletes expired ones", async () => {
        await users("alice", "bob");
        await store.addToken("b1", "bob", 1, 1000);
        for (let i = 0; i < 5; i++) await store.addToken(`a${i}`, "alice", 10 + i, 1000, 3);
        expect(await Promise.all(["a0", "a1", "a2", "a3", "a4"].map((t) => store.tokenUser(t, 20)))).toEqual([
          undefined,
          undefined,
          "alice",
          "alice",
          "alice",
        ]);
        expect(await store.tokenUser("b1", 20)).toBe("bob"); // another user's tokens do not count
        // Created in the same millisecond: the first added is the oldest.
        await store.addToken("x1", "bob", 50, 1000, 2);
        await store.addToken("x2", "bob", 50, 1000, 2);
        await store.addToken("x3", "bob", 50, 1000, 2);
        expect(await Promise.all(["b1", "x1", "x2", "x3"].map((t) => store.tokenUser(t, 60)))).toEqual([undefined, undefined, "bob", "bob"]);

        await store.addToken("e1", "alice", 20, 100);
        await store.addToken("e2", "alice", 20, 101);
        await store.maintain(100); // expired: expires <= now
        expect(await store.tokenUser("e1", 50)).toBeUndefined(); // deleted, not just expired
        expect(await store.tokenUser("e2", 50)).toBe("alice");
        expect(await store.tokenUser("a4", 50)).toBe("alice");
        await store.maintain(100); // nothing left to do
        expect(await store.tokenUser("e2", 50)).toBe("alice");
      });
    });

    describe("groups", () => {
      /** A GroupRow of a group made by createGroup: public, no topic, no description. */
      const row = (name: string, owner: string) => ({ name, owner, public: true, topic: "", description: "" });
      /** A UserGroupRow: the row and the user's role. */
      const mine = (name: string, owner: string, role: "owner" | "admin" | "member") => ({ ...row(name, owner), role });
      /** A MembershipRow, not muted. */
      const ms = (grp: string, user: string) => ({ grp, user, muted: 0 });

      test("groupsCreatedBy counts the groups a user created, also after leaving them; groupCount the groups they are in", async () => {
        await users("alice", "bob");
        expect(await store.groupsCreatedBy("alice")).toBe(0);
        expect(await store.groupCount("alice")).toBe(0);
        await store.createGroup("a1", "alice", 1);
        await store.createGroup("a2", "alice", 1);
        await store.createGroup("b1", "bob", 1);
        await store.addMember("b1", "alice", 2);
        expect(await store.groupsCreatedBy("alice")).toBe(2);
        expect(await store.groupCount("alice")).toBe(3);
        expect(await store.groupsCreatedBy("bob")).toBe(1);
        expect(await store.groupCount("bob")).toBe(1);
        await store.removeMember("a1", "alice");
        expect(await store.groupsCreatedBy("alice")).toBe(2);
        expect(await store.groupCount("alice")).toBe(2);
        expect(await store.groupsCreatedBy("nobody")).toBe(0);
      });

      test("createGroup makes the owner a member; a second createGroup of the same name returns false", async () => {
        await users("alice", "bob");
        expect(await store.getGroup("g")).toBeUndefined();
        expect(await store.createGroup("g", "alice", 10)).toBeGreaterThan(0);
        expect(await store.getGroup("g")).toEqual(row("g", "alice"));
        expect(await store.allMemberships()).toEqual([ms("g", "alice")]);
        expect(await store.userGroups("alice")).toEqual([mine("g", "alice", "owner")]);

        expect(await store.createGroup("g", "bob", 11)).toBe(0);
        expect(await store.getGroup("g")).toEqual(row("g", "alice"));
        expect(await store.userGroups("bob")).toEqual([]);
        expect(await store.allMemberships()).toEqual([ms("g", "alice")]);
      });

      test("addMember true then false; removeMember true then false", async () => {
        await users("alice", "bob");
        await store.createGroup("g", "alice", 1);
        expect(await store.addMember("g", "bob", 2)).toBeGreaterThan(0);
        expect(await store.addMember("g", "bob", 3)).toBe(0);
        expect(await store.addMember("g", "alice", 3)).toBe(0); // owner is already a member
        expect(await store.userGroups("bob")).toEqual([mine("g", "alice", "member")]);

        expect(await store.removeMember("g", "bob")).toBeGreaterThan(0);
        expect(await store.removeMember("g", "bob")).toBe(0);
        expect(await store.userGroups("bob")).toEqual([]);
        expect(await store.allMemberships()).toEqual([ms("g", "alice")]);

        // Can re-join after leaving.
        expect(await store.addMember("g", "bob", 4)).toBeGreaterThan(0);
        expect(await store.userGroups("bob")).toEqual([mine("g", "alice", "member")]);
      });

      test("removeMember of a non-member or of a missing group returns false", async () => {
        await users("alice", "bob");
        await store.createGroup("g", "alice", 1);
        expect(await store.removeMember("g", "bob")).toBe(0);
        expect(await store.removeMember("nope", "alice")).toBe(0);
        expect(await store.allMemberships()).toEqual([ms("g", "alice")]);
      });

      test("userGroups is sorted by name and carries owners and the user's role", async () => {
        await users("alice", "bob", "carol");
        // Created out of name order, with different owners.
        await store.createGroup("zeta", "bob", 1);
        await store.createGroup("alpha", "carol", 2);
        await store.createGroup("mid", "alice", 3);
        await store.createGroup("_beta", "bob", 4); // names are [a-z0-9_.-]: "_" sorts before letters
        await store.createGroup("9lives", "carol", 4); // and digits before "_"
        await store.createGroup("other", "carol", 5); // alice is not in this one
        expect(await store.addMember("zeta", "alice", 6)).toBeGreaterThan(0);
        expect(await store.addMember("alpha", "alice", 7)).toBeGreaterThan(0);
        expect(await store.addMember("_beta", "alice", 8)).toBeGreaterThan(0);
        expect(await store.addMember("9lives", "alice", 8)).toBeGreaterThan(0);

        expect(await store.userGroups("alice")).toEqual([
          mine("9lives", "carol", "member"),
          mine("_beta", "bob", "member"),
          mine("alpha", "carol", "member"),
          mine("mid", "alice", "owner"),
          mine("zeta", "bob", "member"),
        ]);
        expect(await store.userGroups("carol")).toEqual([
          mine("9lives", "carol", "owner"),
          mine("alpha", "carol", "owner"),
          mine("other", "carol", "owner"),
        ]);
        expect(await store.userGroups("nobody")).toEqual([]);
      });

      test("allMemberships lists every (group, user) pair exactly once", async () => {
        await users("alice", "bob", "carol");
        expect(await store.allMemberships()).toEqual([]);
        await store.createGroup("g1", "alice", 1);
        await store.createGroup("g2", "bob", 1);
        await store.addMember("g1", "bob", 2);
        await store.addMember("g1", "carol", 2);
        await store.addMember("g2", "carol", 2);
        await store.addMember("g2", "carol", 3); // no-op
        await store.removeMember("g1", "carol");

        const all = (await store.allMemberships()).slice().sort(byName);
        expect(all).toEqual([
          ms("g1", "alice"),
          ms("g1", "bob"),
          ms("g2", "bob"),
          ms("g2", "carol"),
        ]);
      });
    });

    describe("commit", () => {
      beforeEach(async () => {
        await users("alice", "bob", "carol");
        await store.createGroup("g", "alice", 1);
        await store.addMember("g", "bob", 1);
      });

      test("empty store: lastMid is 0; an empty batch returns [] and changes nothing", async () => {
        expect(await store.lastMid()).toBe(0);
        expect(await results(store, [], 5)).toEqual([]);
        expect(await store.lastMid()).toBe(0);
      });

      test("each commit takes the next seq; an empty batch takes none; position() reads seq and mid together", async () => {
        const start = await store.position();
        expect(start.mid).toBe(0);
        const c1 = await store.commit([{ sender: "alice", grp: "g", text: "a" }], 10);
        expect(c1.seq).toBe(start.seq + 1);
        const c2 = await store.commit(
          [
            { sender: "alice", grp: "g", text: "b" },
            { sender: "bob", toUser: "alice", text: "c" },
          ],
          20,
        );
        expect(c2.seq).toBe(start.seq + 2);
        expect(await store.commit([], 30)).toEqual({ seq: start.seq + 2, results: [] });
        // A batch of duplicates only is still a commit: it takes a number.
        await store.commit([{ sender: "alice", grp: "g", cid: "k", text: "d" }], 40);
        const dup = await store.commit([{ sender: "alice", grp: "g", cid: "k", text: "d" }], 50);
        expect(dup.seq).toBe(start.seq + 4);
        expect(dup.results[0]!.duplicate).toBe(true);
        expect(await store.position()).toEqual({ seq: start.seq + 4, mid: 4 });
        // Membership changes take numbers of the same sequence; refused ones take none.
        expect(await store.addMember("g", "carol", 60)).toBe(start.seq + 5);
        expect(await store.addMember("g", "carol", 60)).toBe(0);
        expect(await store.createGroup("h", "bob", 60)).toBe(start.seq + 6);
        expect(await store.createGroup("h", "bob", 60)).toBe(0);
        expect(await store.removeMember("g", "carol")).toBe(start.seq + 7);
        expect(await store.removeMember("g", "carol")).toBe(0);
        const c5 = await store.commit([{ sender: "bob", grp: "h", text: "e" }], 70);
        expect(c5.seq).toBe(start.seq + 8);
        expect(await store.position()).toEqual({ seq: start.seq + 8, mid: 5 });
      });

      test("a batch assigns consecutive, strictly increasing mids after lastMid(); ts is `now`", async () => {
        const r1 = await results(store, 
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
        expect(await store.lastMid()).toBe(3);

        const before = await store.lastMid();
        const r2 = await results(store, 
          [
            { sender: "bob", grp: "g", text: "d" },
            { sender: "carol", toUser: "bob", text: "e" },
          ],
          2000,
        );
        expect(mids(r2)).toEqual([before + 1, before + 2]);
        expect(r2.every((r) => r.ts === 2000 && !r.duplicate)).toBe(true);
        expect(await store.lastMid()).toBe(before + 2);

        // Stored ts is the commit's `now`, per batch.
        const h = await store.history(groupConv("g"), { limit: 10 });
        expect(h.map((m) => [m.mid, m.ts, m.text])).toEqual([
          [1, 1000, "a"],
          [3, 1000, "c"],
          [4, 2000, "d"],
        ]);
      });

      test("a stored message round-trips every field it was given", async () => {
        const batch: NewMessage[] = [
          { sender: "alice", grp: "g", cid: "c-1", text: "hello group" },
          { sender: "bob", toUser: "carol", cid: "c-2", text: "hello dm" },
          { sender: "carol", toUser: "bob", text: "no cid" },
        ];
        const r = await results(store, batch, 77);
        const got = [
          ...(await store.history(groupConv("g"), { limit: 10 })),
          ...(await store.history(dmConv("bob", "carol"), { limit: 10 })),
        ];
        expect(got.map(plain)).toEqual(batch.map((m, i) => plain({ ...m, mid: r[i]!.mid, ts: 77 })));
      });

      test("a (sender, cid) already stored is a duplicate with the ORIGINAL mid and ts, not stored twice", async () => {
        const [first] = await results(store, [{ sender: "alice", grp: "g", cid: "c1", text: "original" }], 1000);
        expect(first).toEqual({ mid: 1, ts: 1000, duplicate: false });

        const r = await results(store, 
          [
            { sender: "alice", grp: "g", cid: "c1", text: "retry with other text" },
            { sender: "alice", grp: "g", cid: "c2", text: "new" },
          ],
          2000,
        );
        expect(r[0]).toEqual({ mid: 1, ts: 1000, duplicate: true });
        // The duplicate consumes no mid: the next new message gets the next one.
        expect(r[1]).toEqual({ mid: 2, ts: 2000, duplicate: false });
        expect(await store.lastMid()).toBe(2);

        const h = await store.history(groupConv("g"), { limit: 10 });
        expect(h.map((m) => [m.mid, m.ts, m.cid, m.text])).toEqual([
          [1, 1000, "c1", "original"],
          [2, 2000, "c2", "new"],
        ]);

        // A batch made only of a duplicate changes nothing.
        expect(await results(store, [{ sender: "alice", grp: "g", cid: "c2" }], 3000)).toEqual([
          { mid: 2, ts: 2000, duplicate: true },
        ]);
        expect(await store.lastMid()).toBe(2);
        expect(await store.history(groupConv("g"), { limit: 10 })).toHaveLength(2);
      });

      test("(sender, cid) identifies a message across conversations", async () => {
        await results(store, [{ sender: "alice", grp: "g", cid: "x", text: "to group" }], 10);
        const r = await results(store, [{ sender: "alice", toUser: "bob", cid: "x", text: "to bob" }], 20);
        expect(r).toEqual([{ mid: 1, ts: 10, duplicate: true }]);
        expect(await store.history(dmConv("alice", "bob"), { limit: 10 })).toEqual([]);
        expect(await store.lastMid()).toBe(1);
      });

      test("the same (sender, cid) twice in one batch: the second is a duplicate of the first", async () => {
        await results(store, [{ sender: "carol", toUser: "bob", text: "earlier" }], 500);
        const r = await results(store, 
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
        expect(await store.lastMid()).toBe(4);
        expect((await store.history(groupConv("g"), { limit: 10 })).map((m) => m.text)).toEqual([
          "first",
          "between",
          "after",
        ]);
      });

      test("the same cid from a different sender is NOT a duplicate", async () => {
        const r = await results(store, 
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
        const r2 = await results(store, [{ sender: "carol", toUser: "alice", cid: "shared", text: "from carol" }], 20);
        expect(r2).toEqual([{ mid: 3, ts: 20, duplicate: false }]);
        expect((await store.history(groupConv("g"), { limit: 10 })).map((m) => m.sender)).toEqual(["alice", "bob"]);
        expect(await store.history(dmConv("alice", "carol"), { limit: 10 })).toHaveLength(1);
      });

      test("messages without cid are never duplicates", async () => {
        const m: NewMessage = { sender: "alice", grp: "g", text: "same" };
        const r1 = await results(store, [m, { ...m }, { ...m }], 10);
        const r2 = await results(store, [{ ...m }], 20);
        expect([...r1, ...r2]).toEqual([
          { mid: 1, ts: 10, duplicate: false },
          { mid: 2, ts: 10, duplicate: false },
          { mid: 3, ts: 10, duplicate: false },
          { mid: 4, ts: 20, duplicate: false },
        ]);
        const h = await store.history(groupConv("g"), { limit: 10 });
        expect(mids(h)).toEqual([1, 2, 3, 4]);
        expect(h.every((x) => x.cid === undefined && x.text === "same")).toBe(true);
      });

      test("files: name, type, size and hash round-trip; the bytes, byte-exactly, by readFile (PROTOCOL.md §3.9)", async () => {
        const all256 = new Uint8Array(256);
        for (let i = 0; i < 256; i++) all256[i] = i;
        const big = new Uint8Array(200_000);
        for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
        const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0xff]);
        const file = async (id: string, user: string, name: string, type: string, data: Uint8Array) => {
          const u = await storeUpload(store, id, user, data, 42);
          return { name, type, size: data.length, sha256: u.sha256, upload: id };
        };
        const batch: NewMessage[] = [
          { sender: "alice", grp: "g", file: await file("u1", "alice", "bytes.bin", "application/octet-stream", all256) },
          { sender: "bob", toUser: "alice", text: "with caption ✓", file: await file("u2", "bob", "fötö 📷.png", "image/png", png) },
          { sender: "alice", grp: "g", file: await file("u3", "alice", "big.dat", "", big) },
          { sender: "alice", grp: "g", file: await file("u4", "alice", "empty.txt", "text/plain", new Uint8Array(0)) },
        ];
        await results(store, batch, 42);

        const g = await store.history(groupConv("g"), { limit: 10 });
        expect(g).toHaveLength(3);
        expect(g[0]!.file).toEqual({ name: "bytes.bin", type: "application/octet-stream", size: 256, sha256: sha256Hex(all256) });
        expect(g[0]!.text).toBeUndefined();
        expect(g[1]!.file).toEqual({ name: "big.dat", type: "", size: big.length, sha256: sha256Hex(big) });
        expect(g[2]!.file).toEqual({ name: "empty.txt", type: "text/plain", size: 0, sha256: sha256Hex(new Uint8Array(0)) });
        const f0 = (await store.messageFile(g[0]!.mid))!;
        expect(bytes(await readAll(store, f0.file, 256))).toEqual(Array.from(all256));
        const f1 = (await store.messageFile(g[1]!.mid))!;
        expect(Buffer.from(await readAll(store, f1.file, big.length, 30_000)).equals(Buffer.from(big))).toBe(true);

        const d = await store.history(dmConv("alice", "bob"), { limit: 10 });
        expect(d).toHaveLength(1);
        expect(d[0]!.text).toBe("with caption ✓");
        expect(d[0]!.file).toEqual({ name: "fötö 📷.png", type: "image/png", size: 7, sha256: sha256Hex(png) });
        expect(bytes(await readAll(store, (await store.messageFile(d[0]!.mid))!.file, 7))).toEqual(Array.from(png));

        // sync gives the same file.
        const s = (await store.sync("alice", 0, 10)).find((m) => m.file?.name === "bytes.bin");
        expect(s?.file?.sha256).toBe(sha256Hex(all256));
      });

      test("text round-trips, including unicode and emoji", async () => {
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
        await results(store, 
          texts.map((text) => ({ sender: "alice", grp: "g", text })),
          1,
        );
        const h = await store.history(groupConv("g"), { limit: 100 });
        expect(h.map((m) => m.text)).toEqual(texts);
      });
    });

    describe("history", () => {
      /** mids of group g, of DM alice<->bob, of DM alice<->carol, in commit order */
      let G: number[];
      let AB: number[];
      let AC: number[];

      beforeEach(async () => {
        await users("alice", "bob", "carol");
        await store.createGroup("g", "alice", 1);
        await store.addMember("g", "bob", 1);
        G = [];
        AB = [];
        AC = [];
        // Interleave conversations so that mids in each are not contiguous.
        for (let i = 0; i < 12; i++) {
          const batch: NewMessage[] = [{ sender: i % 2 ? "bob" : "alice", grp: "g", text: `g${i}` }];
          if (i % 3 === 0) batch.push({ sender: "alice", toUser: "bob", text: `ab${i}` });
          if (i % 3 === 1) batch.push({ sender: "bob", toUser: "alice", text: `ba${i}` });
          if (i % 4 === 2) batch.push({ sender: "carol", toUser: "alice", text: `ca${i}` });
          const r = await results(store, batch, 100 + i);
          batch.forEach((m, j) => {
            const mid = r[j]!.mid;
            if (m.grp) G.push(mid);
            else if (convOf(m) === dmConv("alice", "bob")) AB.push(mid);
            else AC.push(mid);
          });
        }
      });

      test("dmConv is symmetric and differs from groupConv", async () => {
        expect(dmConv("alice", "bob")).toBe(dmConv("bob", "alice"));
        expect(dmConv("alice", "bob")).not.toBe(dmConv("alice", "carol"));
        expect(groupConv("g")).not.toBe(dmConv("g", "g"));
      });

      test("group and DM conversations are separate", async () => {
        const g = await store.history(groupConv("g"), { limit: 100 });
        expect(mids(g)).toEqual(G);
        expect(g.every((m) => m.grp === "g" && m.toUser === undefined)).toBe(true);

        const ab = await store.history(dmConv("alice", "bob"), { limit: 100 });
        const ba = await store.history(dmConv("bob", "alice"), { limit: 100 });
        expect(mids(ab)).toEqual(AB);
        expect(ba).toEqual(ab);
        // Both directions are in the one conversation.
        expect(new Set(ab.map((m) => m.sender))).toEqual(new Set(["alice", "bob"]));
        expect(ab.every((m) => m.grp === undefined && (m.toUser === "alice" || m.toUser === "bob"))).toBe(true);

        expect(mids(await store.history(dmConv("carol", "alice"), { limit: 100 }))).toEqual(AC);
        expect(await store.history(dmConv("bob", "carol"), { limit: 100 })).toEqual([]);
        expect(await store.history(groupConv("nope"), { limit: 100 })).toEqual([]);
        expect(G.length + AB.length + AC.length).toBe(await store.lastMid());
      });

      test("no page args: the newest `limit`, oldest first", async () => {
        expect(mids(await store.history(groupConv("g"), { limit: 3 }))).toEqual(G.slice(-3));
        expect(mids(await store.history(groupConv("g"), { limit: 1 }))).toEqual(G.slice(-1));
        expect(mids(await store.history(groupConv("g"), { limit: 1000 }))).toEqual(G);
        expect(mids(await store.history(dmConv("bob", "alice"), { limit: 2 }))).toEqual(AB.slice(-2));
        expect(await store.history(groupConv("g"), { limit: 0 })).toEqual([]);
      });

      test("before: the newest `limit` with mid < before, oldest first", async () => {
        expect(mids(await store.history(groupConv("g"), { before: G[6]!, limit: 3 }))).toEqual(G.slice(3, 6));
        expect(mids(await store.history(groupConv("g"), { before: G[1]!, limit: 3 }))).toEqual(G.slice(0, 1));
        expect(await store.history(groupConv("g"), { before: G[0]!, limit: 3 })).toEqual([]);
        expect(await store.history(groupConv("g"), { before: 1, limit: 3 })).toEqual([]);
        expect(mids(await store.history(groupConv("g"), { before: 1_000_000, limit: 4 }))).toEqual(G.slice(-4));
      });

      test("after: the first `limit` with mid > after, oldest first", async () => {
        expect(mids(await store.history(groupConv("g"), { after: G[2]!, limit: 3 }))).toEqual(G.slice(3, 6));
        expect(mids(await store.history(groupConv("g"), { after: 0, limit: 2 }))).toEqual(G.slice(0, 2));
        expect(mids(await store.history(groupConv("g"), { after: G[9]!, limit: 10 }))).toEqual(G.slice(10));
        expect(await store.history(groupConv("g"), { after: G[G.length - 1]!, limit: 10 })).toEqual([]);
      });

      test("before and after: only messages strictly within the range, paging forward from after", async () => {
        expect(mids(await store.history(groupConv("g"), { after: G[1]!, before: G[9]!, limit: 100 }))).toEqual(
          G.slice(2, 9),
        );
        expect(mids(await store.history(groupConv("g"), { after: G[1]!, before: G[9]!, limit: 3 }))).toEqual(G.slice(2, 5));
        expect(await store.history(groupConv("g"), { after: G[4]!, before: G[5]!, limit: 10 })).toEqual([]);
        expect(await store.history(groupConv("g"), { after: G[5]!, before: G[4]!, limit: 10 })).toEqual([]);
      });

      test("every page matches a reference model and is ascending by mid", async () => {
        const lastMid = await store.lastMid();
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
                const got = mids(await store.history(conv, page));
                expect({ conv, page, got }).toEqual({ conv, page, got: expected });
                expect(isAscending(got)).toBe(true);
              }
        }
      });
    });

    describe("sync", () => {
      /** Reference: every message committed, in mid order. */
      let all: StoredMessage[];

      async function commit(batch: NewMessage[], now: number): Promise<void> {
        const r = await results(store, batch, now);
        batch.forEach((m, i) => {
          if (!r[i]!.duplicate) all.push({ ...m, mid: r[i]!.mid, ts: r[i]!.ts });
        });
      }

      beforeEach(async () => {
        all = [];
        await users("alice", "bob", "carol", "dave");
        await store.createGroup("g1", "alice", 1); // alice, bob
        await store.addMember("g1", "bob", 1);
        await store.createGroup("g2", "carol", 1); // carol, dave — not alice
        await store.addMember("g2", "dave", 1);
        await store.createGroup("g3", "bob", 1); // bob, alice (alice joined)
        await store.addMember("g3", "alice", 1);

        await commit(
          [
            { sender: "bob", grp: "g1", text: "g1 from bob" },
            { sender: "carol", grp: "g2", text: "g2 from carol" },
            { sender: "alice", toUser: "bob", text: "dm alice->bob" },
            { sender: "bob", toUser: "alice", text: "dm bob->alice" },
          ],
          10,
        );
        await commit(
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
        await commit(
          Array.from({ length: 8 }, (_, i) => ({ sender: "bob", grp: "g1", text: `burst ${i}` })),
          30,
        );
        await commit([{ sender: "dave", toUser: "alice", text: "dm dave->alice" }], 40);
        await commit([{ sender: "alice", toUser: "dave", text: "dm alice->dave" }], 50);
        await commit([{ sender: "carol", grp: "g2", text: "g2 late" }], 60);
      });

      function expectedFor(user: string, member: (grp: string) => boolean): StoredMessage[] {
        return all.filter((m) => (m.grp !== undefined ? member(m.grp) : m.sender === user || m.toUser === user));
      }

      test("includes the user's groups and DMs to and from them; excludes others", async () => {
        const got = await store.sync("alice", 0, 1000);
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

      test("a DM to self appears exactly once", async () => {
        const got = await store.sync("alice", 0, 1000);
        expect(got.filter((m) => m.text === "note to self")).toHaveLength(1);
        expect(new Set(mids(got)).size).toBe(got.length);
        // And only for its owner.
        expect((await store.sync("bob", 0, 1000)).some((m) => m.text === "note to self")).toBe(false);
      });

      test("other users see their own view; a user with no traffic sees nothing", async () => {
        const member: Record<string, string[]> = { bob: ["g1", "g3"], carol: ["g2"], dave: ["g2"] };
        for (const [u, gs] of Object.entries(member)) {
          expect(mids(await store.sync(u, 0, 1000))).toEqual(mids(expectedFor(u, (g) => gs.includes(g))));
        }
        await users("erin");
        expect(await store.sync("erin", 0, 1000)).toEqual([]);
        expect(await store.sync("ghost", 0, 1000)).toEqual([]);
      });

      test("ascending by mid; respects after and limit (reference model over all combinations)", async () => {
        const exp = mids(expectedFor("alice", (g) => g === "g1" || g === "g3"));
        const last = await store.lastMid();
        for (let after = 0; after <= last + 1; after++) {
          for (const limit of [0, 1, 2, 3, 5, 8, 1000]) {
            const got = mids(await store.sync("alice", after, limit));
            const want = exp.filter((m) => m > after).slice(0, limit);
            expect({ after, limit, got }).toEqual({ after, limit, got: want });
            expect(isAscending(got)).toBe(true);
          }
        }
      });

      test("after leaving a group, its messages are no longer returned", async () => {
        expect((await store.sync("alice", 0, 1000)).some((m) => m.grp === "g1")).toBe(true);
        expect(await store.removeMember("g1", "alice")).toBeGreaterThan(0);
        const got = await store.sync("alice", 0, 1000);
        expect(got.some((m) => m.grp === "g1")).toBe(false);
        expect(mids(got)).toEqual(mids(expectedFor("alice", (g) => g === "g3")));
        // DMs are unaffected.
        expect(got.some((m) => m.text === "dm bob->alice")).toBe(true);
        // bob, still a member, still sees g1.
        expect((await store.sync("bob", 0, 1000)).some((m) => m.text === "g1 from alice")).toBe(true);
      });

      test("size-first reads: syncSizes and historySizes give what sync and history would, with messageSize; messagesByMid fetches", async () => {
        const file = await upFile(store, "alice", "naïve.txt", "text/plain", new Uint8Array(1000).fill(7));
        await commit([{ sender: "alice", grp: "g1", cid: "c-é", text: "héllo", file }], 70);
        const last = await store.lastMid();
        const byMid = new Map(all.map((m) => [m.mid, m]));
        const sized = (list: Array<StoredMessage | NewMessage & { mid: number }>) =>
          list.map((m) => ({ mid: m.mid, size: messageSize(m) }));
        for (const user of ["alice", "bob", "carol", "dave"])
          for (let after = 0; after <= last; after++)
            for (const limit of [0, 1, 3, 1000])
              expect(await store.syncSizes(user, after, limit)).toEqual(sized(await store.sync(user, after, limit)));
        const aliceMids = mids(await store.sync("alice", 0, 1000));
        expect(await store.syncSizes("alice", 0, 1000)).toEqual(sized(all.filter((m) => aliceMids.includes(m.mid))));
        // text, cid and file name counted in UTF-8 bytes
        expect(await store.syncSizes("alice", last - 1, 10)).toEqual([{ mid: last, size: 96 + 6 + 4 + FILE_META_SIZE + 10 + 10 }]);
        const pages: Page[] = [
          { limit: 2 },
          { limit: 100 },
          { after: 3, limit: 2 },
          { before: last, limit: 2 },
          { after: 1, before: last, limit: 100 },
          { limit: 0 },
        ];
        for (const conv of [groupConv("g1"), dmConv("alice", "bob"), dmConv("alice", "alice"), groupConv("nope")])
          for (const page of pages) expect(await store.historySizes(conv, page)).toEqual(sized(await store.history(conv, page)));
        // messagesByMid: any order, repeats and unknown mids; ascending, each once
        expect((await store.messagesByMid([last, 1, 5, 5, 99_999, 3])).map(plain)).toEqual(
          [1, 3, 5, last].map((m) => plain(byMid.get(m)!)),
        );
        expect(await store.messagesByMid([])).toEqual([]);
      });

      test("joining a group makes its messages part of sync", async () => {
        expect(await store.addMember("g2", "alice", 70)).toBeGreaterThan(0);
        const got = await store.sync("alice", 0, 1000);
        expect(mids(got)).toEqual(mids(expectedFor("alice", (g) => g !== "nope")));
      });
    });

    describe("operations (issue #15)", () => {
      test("ban, banned, bans, unban; a second ban replaces the reason", async () => {
        await users("alice", "bob");
        expect(await store.banned("alice")).toBe(false);
        await store.ban("alice", "spam", 10);
        await store.ban("bob", "", 11);
        await store.ban("alice", "spam again", 12);
        expect(await store.banned("alice")).toBe(true);
        expect(await store.bans()).toEqual([
          { user: "alice", reason: "spam again", at: 12 },
          { user: "bob", reason: "", at: 11 },
        ]);
        expect(await store.unban("alice")).toBe(true);
        expect(await store.unban("alice")).toBe(false);
        expect(await store.banned("alice")).toBe(false);
        expect(await store.bans()).toEqual([{ user: "bob", reason: "", at: 11 }]);
      });

      test("eraseUser deletes what the user sent and their tokens; the name stays taken; mids are not reused", async () => {
        await users("alice", "bob");
        await store.createGroup("g", "alice", 1);
        await store.addMember("g", "bob", 1);
        await store.addToken("t1", "alice", 1, 1e15);
        const r = await results(
          store,
          [
            { sender: "bob", grp: "g", text: "b1" },
            { sender: "alice", grp: "g", text: "a1", cid: "c1" },
            { sender: "alice", toUser: "bob", text: "a2" },
            { sender: "bob", toUser: "alice", text: "b2" },
            { sender: "alice", toUser: "alice", text: "a3" },
          ],
          5,
        );
        const last = r.at(-1)!.mid;
        expect(await store.eraseUser("alice")).toBe(3);
        expect(await store.getUser("alice")).toBeUndefined();
        expect(await store.createUser("alice", "new", 9)).toBe(false);
        expect(await store.tokenUser("t1", 2)).toBeUndefined();
        expect((await store.history(groupConv("g"), { limit: 10 })).map((m) => m.text)).toEqual(["b1"]);
        expect((await store.userMessages("alice", 0, 10)).map((m) => m.text)).toEqual(["b2"]);
        // The newest message was alice's: the next mid still comes after it.
        const [next] = await results(store, [{ sender: "bob", grp: "g", text: "b3" }], 6);
        expect(next!.mid).toBe(last + 1);
        expect((await store.position()).mid).toBe(last + 1);
      });

      test("deleteGroup deletes a group's messages and the group; other conversations stay", async () => {
        await users("alice", "bob");
        await store.createGroup("g", "alice", 1);
        await store.createGroup("h", "alice", 1);
        await results(
          store,
          [
            { sender: "alice", grp: "g", text: "1" },
            { sender: "alice", grp: "h", text: "2" },
            { sender: "alice", toUser: "bob", text: "3" },
            { sender: "alice", grp: "g", text: "4" },
          ],
          5,
        );
        expect(await store.removeMember("g", "alice")).toBeGreaterThan(0);
        expect(await store.deleteGroup("g")).toBe(2);
        expect(await store.getGroup("g")).toBeUndefined();
        expect(await store.history(groupConv("g"), { limit: 10 })).toEqual([]);
        expect((await store.history(groupConv("h"), { limit: 10 })).map((m) => m.text)).toEqual(["2"]);
        expect((await store.history(dmConv("alice", "bob"), { limit: 10 })).map((m) => m.text)).toEqual(["3"]);
        // The name can be taken again.
        expect(await store.createGroup("g", "bob", 2)).toBeGreaterThan(0);
      });

      test("userMessages: sent by or addressed to the user, by mid, paged", async () => {
        await users("alice", "bob", "carol");
        await store.createGroup("g", "bob", 1);
        await store.addMember("g", "alice", 1);
        await results(
          store,
          [
            { sender: "bob", grp: "g", text: "not alice's" },
            { sender: "alice", grp: "g", text: "1" },
            { sender: "bob", toUser: "alice", text: "2" },
            { sender: "bob", toUser: "carol", text: "no" },
            { sender: "alice", toUser: "carol", text: "3", file: await upFile(store, "alice", "f", "t", new Uint8Array([1, 2])) },
          ],
          5,
        );
        const all = await store.userMessages("alice", 0, 10);
        expect(all.map((m) => m.text)).toEqual(["1", "2", "3"]);
        expect(all[2]!.file).toEqual({ name: "f", type: "t", size: 2, sha256: sha256Hex(new Uint8Array([1, 2])) });
        const page = await store.userMessages("alice", all[0]!.mid, 1);
        expect(page.map((m) => m.text)).toEqual(["2"]);
      });

      test("purge deletes, oldest first, what was committed before the cutoff, in batches; mids are not reused", async () => {
        await users("alice");
        await store.createGroup("g", "alice", 1);
        for (let ts = 100; ts < 110; ts++) await results(store, [{ sender: "alice", grp: "g", text: `t${ts}` }], ts);
        expect(await store.purge(105, 3)).toBe(3); // 100, 101, 102
        expect(await store.purge(105, 3)).toBe(2); // 103, 104: fewer than the batch, done
        expect(await store.purge(105, 3)).toBe(0);
        const left = await store.history(groupConv("g"), { limit: 100 });
        expect(left.map((m) => m.ts)).toEqual([105, 106, 107, 108, 109]);
        expect(await store.sync("alice", 0, 100)).toEqual(left);
        const last = left.at(-1)!.mid;
        expect(await store.purge(1000, 100)).toBe(5);
        expect(await store.history(groupConv("g"), { limit: 100 })).toEqual([]);
        const [next] = await results(store, [{ sender: "alice", grp: "g", text: "after" }], 2000);
        expect(next!.mid).toBe(last + 1);
      });
    });

    describe("entries: edits, deletes, reactions, replies, read markers", () => {
      beforeEach(async () => {
        await users("alice", "bob", "carol");
        await store.createGroup("g", "alice", 1);
        await store.addMember("g", "bob", 1);
      });

      /** Commits one entry (or message) and gives its result. */
      async function one(m: NewMessage, now = 100): Promise<CommitResult> {
        return (await results(store, [m], now))[0]!;
      }

      const G = groupConv("g");

      /** Every view of the store agrees on a message: history, sync, messagesByMid, and sizes with messageSize. */
      async function everywhere(mid: number): Promise<StoredMessage> {
        const [m] = await store.messagesByMid([mid]);
        const conv = convOf(m!);
        expect((await store.history(conv, { limit: 1000 })).find((x) => x.mid === mid)).toEqual(m);
        expect((await store.sync(m!.sender, mid - 1, 1)).find((x) => x.mid === mid)).toEqual(m);
        expect(await store.historySizes(conv, { after: mid - 1, before: mid + 1, limit: 1 })).toEqual([{ mid, size: messageSize(m!) }]);
        return m!;
      }

      test("a reply keeps the mid it answers (ref)", async () => {
        const a = await one({ sender: "alice", grp: "g", text: "question" });
        const b = await one({ sender: "bob", grp: "g", text: "answer", ref: a.mid, cid: "r1" });
        expect(plain(await everywhere(b.mid))).toEqual({ mid: b.mid, ts: 100, sender: "bob", grp: "g", text: "answer", ref: a.mid, cid: "r1" });
        expect(await store.entryAt(G, b.mid)).toEqual({ sender: "bob", deleted: false });
      });

      test("an edit replaces the text, sets edited, and is an entry of the conversation with the new text", async () => {
        const a = await one({ sender: "alice", grp: "g", text: "helo", cid: "c1" }, 10);
        const e = await one({ sender: "alice", grp: "g", kind: "edit", ref: a.mid, text: "hello, world é" }, 20);
        expect(e).toEqual({ mid: a.mid + 1, ts: 20, duplicate: false });
        expect(plain(await everywhere(a.mid))).toEqual({ mid: a.mid, ts: 10, sender: "alice", grp: "g", cid: "c1", text: "hello, world é", edited: 20 });
        expect(plain(await everywhere(e.mid))).toEqual({ mid: e.mid, ts: 20, sender: "alice", grp: "g", kind: "edit", ref: a.mid, text: "hello, world é" });
        // Edited twice: the last text wins, edited is the last edit's time.
        await one({ sender: "alice", grp: "g", kind: "edit", ref: a.mid, text: "third" }, 30);
        expect((await everywhere(a.mid)).text).toBe("third");
        expect((await everywhere(a.mid)).edited).toBe(30);
        expect(await store.entryAt(G, e.mid)).toEqual({ sender: "alice", kind: "edit", deleted: false });
        // A file message's caption can be edited; the file stays.
        const f = await one({ sender: "bob", toUser: "carol", file: await upFile(store, "bob", "f.bin", "x/y", new Uint8Array([1, 2, 3])) }, 40);
        await one({ sender: "bob", toUser: "carol", kind: "edit", ref: f.mid, text: "caption" }, 50);
        const fm = await everywhere(f.mid);
        expect(fm.text).toBe("caption");
        expect(fm.file).toMatchObject({ name: "f.bin", size: 3 });
        expect(bytes(await readAll(store, (await store.messageFile(f.mid))!.file, 3))).toEqual([1, 2, 3]);
      });

      test("a delete leaves a tombstone: no text, no file, no earlier edit's text, no reactions; the cid stays", async () => {
        const data = new Uint8Array(3000).fill(0x5a);
        const a = await one({ sender: "alice", grp: "g", cid: "gone", text: "secret", file: await upFile(store, "alice", "secret.txt", "text/plain", data) }, 10);
        const e = await one({ sender: "alice", grp: "g", kind: "edit", ref: a.mid, text: "secret 2" }, 11);
        const r = await one({ sender: "bob", grp: "g", kind: "react", ref: a.mid, text: "👍" }, 12);
        const d = await one({ sender: "bob", grp: "g", kind: "delete", ref: a.mid }, 13);
        expect(d).toEqual({ mid: r.mid + 1, ts: 13, duplicate: false });
        expect(plain(await everywhere(a.mid))).toEqual({ mid: a.mid, ts: 10, sender: "alice", grp: "g", cid: "gone", deleted: 13 });
        expect(plain(await everywhere(e.mid))).toEqual({ mid: e.mid, ts: 11, sender: "alice", grp: "g", kind: "edit", ref: a.mid });
        expect(plain(await everywhere(d.mid))).toEqual({ mid: d.mid, ts: 13, sender: "bob", grp: "g", kind: "delete", ref: a.mid });
        expect(await store.entryAt(G, a.mid)).toEqual({ sender: "alice", deleted: true });
        // Nothing more can be done to it: refused, no mid taken.
        for (const kind of ["edit", "delete", "react", "unreact"] as const) {
          expect(await one({ sender: "alice", grp: "g", kind, ref: a.mid, text: "x" }, 14)).toEqual({ mid: 0, ts: 14, duplicate: false, refused: true });
        }
        expect(await store.lastMid()).toBe(d.mid);
        // Its (sender, cid) is still taken.
        expect(await one({ sender: "alice", grp: "g", cid: "gone", text: "again" }, 15)).toEqual({ mid: a.mid, ts: 10, duplicate: true });
      });

      test("within one batch: a delete refuses the edit and the reaction after it; a target elsewhere or not a message is refused", async () => {
        const a = await one({ sender: "alice", grp: "g", text: "one" });
        const b = await one({ sender: "alice", toUser: "bob", text: "dm" });
        const e = await one({ sender: "alice", grp: "g", kind: "edit", ref: a.mid, text: "one!" });
        const r = await results(
          store,
          [
            { sender: "alice", grp: "g", kind: "edit", ref: a.mid, text: "two" },
            { sender: "alice", grp: "g", kind: "delete", ref: a.mid },
            { sender: "alice", grp: "g", kind: "edit", ref: a.mid, text: "three" },
            { sender: "bob", grp: "g", kind: "react", ref: a.mid, text: "x" },
            { sender: "alice", grp: "g", kind: "edit", ref: b.mid, text: "not in g" },
            { sender: "alice", grp: "g", kind: "react", ref: e.mid, text: "an entry" },
            { sender: "alice", grp: "g", kind: "delete", ref: 999_999 },
            { sender: "alice", grp: "g", text: "still fine" },
          ],
          200,
        );
        const refused = { mid: 0, ts: 200, duplicate: false, refused: true };
        expect(r).toEqual([
          { mid: e.mid + 1, ts: 200, duplicate: false },
          { mid: e.mid + 2, ts: 200, duplicate: false },
          refused,
          refused,
          refused,
          refused,
          refused,
          { mid: e.mid + 3, ts: 200, duplicate: false },
        ]);
        expect((await store.messagesByMid([a.mid]))[0]!.deleted).toBe(200);
        expect((await store.messagesByMid([b.mid]))[0]!.text).toBe("dm");
      });

      test("reactions: the current set on the message, emoji in the order first added, users in the order they reacted", async () => {
        const a = await one({ sender: "alice", grp: "g", text: "vote" });
        const react = (sender: string, emoji: string, on = true) =>
          one({ sender, grp: "g", kind: on ? "react" : "unreact", ref: a.mid, text: emoji });
        await react("bob", "👍");
        await react("alice", "🎉");
        await react("alice", "👍");
        await react("bob", "👍"); // again: no change
        await react("carol", "👍"); // not a member: the store does not check (the core does)
        expect((await everywhere(a.mid)).reactions).toEqual([
          { emoji: "👍", users: ["bob", "alice", "carol"] },
          { emoji: "🎉", users: ["alice"] },
        ]);
        await react("bob", "👍", false);
        await react("bob", "🎉", false); // not there: no change, still an entry
        await react("alice", "🎉", false);
        expect((await everywhere(a.mid)).reactions).toEqual([{ emoji: "👍", users: ["alice", "carol"] }]);
        // Re-added: at the end.
        await react("bob", "👍");
        expect((await everywhere(a.mid)).reactions).toEqual([{ emoji: "👍", users: ["alice", "carol", "bob"] }]);
        const log = (await store.history(G, { after: a.mid, limit: 100 })).map((m) => [m.sender, m.kind, m.text, m.ref]);
        expect(log).toEqual([
          ["bob", "react", "👍", a.mid],
          ["alice", "react", "🎉", a.mid],
          ["alice", "react", "👍", a.mid],
          ["bob", "react", "👍", a.mid],
          ["carol", "react", "👍", a.mid],
          ["bob", "unreact", "👍", a.mid],
          ["bob", "unreact", "🎉", a.mid],
          ["alice", "unreact", "🎉", a.mid],
          ["bob", "react", "👍", a.mid],
        ]);
        await react("alice", "");
        await one({ sender: "bob", grp: "g", kind: "delete", ref: a.mid });
        expect((await everywhere(a.mid)).reactions).toBeUndefined();
      });

      test("a read moves the sender's marker forward only, never past itself; it is in the sender's own log only", async () => {
        const a = await one({ sender: "alice", grp: "g", text: "hi" });
        const b = await one({ sender: "bob", toUser: "alice", text: "dm" });
        expect(await store.readMarker("bob", G)).toBe(0);
        const r1 = await one({ sender: "bob", grp: "g", kind: "read", ref: a.mid }, 50);
        expect(r1).toEqual({ mid: b.mid + 1, ts: 50, duplicate: false, read: a.mid });
        expect(await store.readMarker("bob", G)).toBe(a.mid);
        // Backwards: stored (the log says what was asked), the marker stays.
        const r2 = await one({ sender: "bob", grp: "g", kind: "read", ref: 0 }, 51);
        expect(r2.read).toBe(a.mid);
        // Past the log: only up to the mid before the entry itself.
        const r3 = await one({ sender: "bob", toUser: "alice", kind: "read", ref: 1_000_000 }, 52);
        expect(r3.read).toBe(r3.mid - 1);
        expect(await store.readMarker("bob", dmConv("alice", "bob"))).toBe(r3.mid - 1);
        expect(await store.readMarker("alice", dmConv("alice", "bob"))).toBe(0);
        const s = await store.sync("bob", b.mid, 100);
        expect(s.map(plain)).toEqual([
          { mid: r1.mid, ts: 50, sender: "bob", grp: "g", kind: "read", ref: a.mid },
          { mid: r2.mid, ts: 51, sender: "bob", grp: "g", kind: "read", ref: 0 },
          { mid: r3.mid, ts: 52, sender: "bob", toUser: "alice", kind: "read", ref: r3.mid - 1 },
        ]);
        expect(await store.syncSizes("bob", b.mid, 100)).toEqual(s.map((m) => ({ mid: m.mid, size: messageSize(m) })));
        expect(await store.messagesByMid([r3.mid])).toEqual([s[2]!]);
        // Nobody else's sync or any conversation's history has them.
        expect(mids(await store.sync("alice", 0, 100))).toEqual([a.mid, b.mid]);
        expect(mids(await store.history(G, { limit: 100 }))).toEqual([a.mid]);
        expect(mids(await store.history(dmConv("alice", "bob"), { limit: 100 }))).toEqual([b.mid]);
        expect(await store.entryAt(G, r1.mid)).toBeUndefined();
        // Read markers of one batch: the last one wins where it is the highest.
        const r = await results(
          store,
          [
            { sender: "carol", toUser: "alice", kind: "read", ref: 3 },
            { sender: "carol", toUser: "alice", kind: "read", ref: 2 },
          ],
          60,
        );
        expect(r.map((x) => x.read)).toEqual([3, 3]);
      });

      test("entryAt: an entry of that conversation only", async () => {
        const a = await one({ sender: "alice", grp: "g", text: "x" });
        const b = await one({ sender: "bob", toUser: "carol", text: "y" });
        expect(await store.entryAt(G, a.mid)).toEqual({ sender: "alice", deleted: false });
        expect(await store.entryAt(G, b.mid)).toBeUndefined();
        expect(await store.entryAt(dmConv("carol", "bob"), b.mid)).toEqual({ sender: "bob", deleted: false });
        expect(await store.entryAt(dmConv("carol", "alice"), b.mid)).toBeUndefined();
        expect(await store.entryAt(G, 12345)).toBeUndefined();
      });

      describe("convs", () => {
        function byConv(list: ConvState[]): Record<string, ConvState> {
          return Object.fromEntries(list.map((c) => [c.conv, c]));
        }

        test("eraseUser, deleteGroup and purge leave no reactions, mentions, markers or search results behind", async () => {
          const MAX = Number.MAX_SAFE_INTEGER;
          await store.addMember("g", "carol", 1);
          const m1 = await one({ sender: "alice", grp: "g", text: "needle @bob" }, 10);
          const m2 = await one({ sender: "carol", grp: "g", text: "needle from carol @bob" }, 11);
          await one({ sender: "bob", grp: "g", kind: "react", ref: m2.mid, text: "👍" }, 12);
          await one({ sender: "alice", grp: "g", kind: "react", ref: m2.mid, text: "🎉" }, 12);
          const d1 = await one({ sender: "alice", toUser: "bob", text: "needle dm" }, 13);
          const d2 = await one({ sender: "carol", toUser: "bob", text: "needle dm from carol" }, 14);
          expect((await store.search("bob", "needle", MAX, 10)).map((r) => r.mid)).toEqual([d2.mid, d1.mid, m2.mid, m1.mid]);
          expect(byConv(await store.convs("bob"))[G]).toMatchObject({ unread: 2, mentions: 2 });
          await one({ sender: "alice", grp: "g", kind: "read", ref: d2.mid }, 15);

          await store.eraseUser("alice");
          expect((await store.search("bob", "needle", MAX, 10)).map((r) => r.mid)).toEqual([d2.mid, m2.mid]);
          const bob = byConv(await store.convs("bob"));
          expect(bob[G]).toMatchObject({ unread: 1, mentions: 1 });
          expect(bob[dmConv("alice", "bob")]).toMatchObject({ unread: 0 });
          expect(bob[dmConv("bob", "carol")]).toMatchObject({ unread: 1 });
          const [kept] = await store.messagesByMid([m2.mid]);
          expect(kept!.reactions).toEqual([{ emoji: "👍", users: ["bob"] }]);

          for (const u of ["alice", "bob", "carol"]) await store.removeMember("g", u);
          expect(await store.deleteGroup("g")).toBeGreaterThan(0);
          expect((await store.search("carol", "needle", MAX, 10)).map((r) => r.mid)).toEqual([d2.mid]);
          await store.createGroup("g", "bob", 20);
          expect(byConv(await store.convs("bob"))[G]).toMatchObject({ unread: 0, mentions: 0 });

          expect(await store.purge(1000, 100)).toBeGreaterThan(0);
          expect(await store.search("bob", "needle", MAX, 10)).toEqual([]);
          expect(byConv(await store.convs("bob"))[dmConv("bob", "carol")]).toMatchObject({ unread: 0, mentions: 0 });
        });

        test("every group and direct conversation, with newest mid, marker, unread, mentions and a preview", async () => {
          await store.createGroup("quiet", "bob", 1);
          const m1 = await one({ sender: "alice", grp: "g", text: "hello @bob and @carol" }, 10);
          const m2 = await one({ sender: "bob", grp: "g", text: "hi @alice" }, 11);
          const m3 = await one({ sender: "alice", grp: "g", text: "@bob, @bob. again" }, 12);
          const d1 = await one({ sender: "carol", toUser: "bob", text: "psst" }, 13);
          const n1 = await one({ sender: "bob", toUser: "bob", text: "note" }, 14);
          const bob = byConv(await store.convs("bob"));
          expect(Object.keys(bob).sort()).toEqual([dmConv("bob", "bob"), dmConv("bob", "carol"), G, groupConv("quiet")].sort());
          expect(bob[G]).toEqual({
            conv: G,
            grp: "g",
            last: m3.mid,
            read: 0,
            unread: 2,
            mentions: 2,
            preview: { mid: m3.mid, ts: 12, sender: "alice", text: "@bob, @bob. again" },
          });
          expect(bob[groupConv("quiet")]).toEqual({ conv: groupConv("quiet"), grp: "quiet", last: 0, read: 0, unread: 0, mentions: 0 });
          expect(bob[dmConv("bob", "carol")]).toEqual({
            conv: dmConv("bob", "carol"),
            peer: "carol",
            last: d1.mid,
            read: 0,
            unread: 1,
            mentions: 0,
            preview: { mid: d1.mid, ts: 13, sender: "carol", text: "psst" },
          });
          // Notes to self: never unread.
          expect(bob[dmConv("bob", "bob")]).toMatchObject({ peer: "bob", last: n1.mid, unread: 0, mentions: 0 });
          // alice: her own messages are not unread; bob's mention of her is.
          expect(byConv(await store.convs("alice"))[G]).toMatchObject({ unread: 1, mentions: 1 });
          // carol is not in g: it is not hers (her mention does not make it so).
          const carol = byConv(await store.convs("carol"));
          expect(Object.keys(carol)).toEqual([dmConv("bob", "carol")]);
          expect(carol[dmConv("bob", "carol")]).toMatchObject({ peer: "bob", unread: 0 });
          // Reading moves the counts; entries after the marker (the read itself, an edit) are not unread.
          await one({ sender: "bob", grp: "g", kind: "read", ref: m1.mid });
          expect(byConv(await store.convs("bob"))[G]).toMatchObject({ read: m1.mid, unread: 1, mentions: 1 });
          await one({ sender: "alice", grp: "g", kind: "edit", ref: m3.mid, text: "no mention now" });
          const after = byConv(await store.convs("bob"))[G]!;
          expect(after).toMatchObject({ unread: 1, mentions: 0, preview: { mid: m3.mid, text: "no mention now" } });
          expect(after.last).toBe((await store.lastMid()));
          // A deleted message is neither unread nor the preview.
          await one({ sender: "alice", grp: "g", kind: "delete", ref: m3.mid });
          expect(byConv(await store.convs("bob"))[G]).toMatchObject({ unread: 0, mentions: 0, preview: { mid: m2.mid, sender: "bob", text: "hi @alice" } });
          await one({ sender: "bob", grp: "g", kind: "delete", ref: m2.mid });
          await one({ sender: "alice", grp: "g", kind: "delete", ref: m1.mid });
          const empty = byConv(await store.convs("bob"))[G]!;
          expect(empty.preview).toBeUndefined();
          expect(empty.last).toBe(await store.lastMid());
          // Leaving a group takes it off the list.
          await store.removeMember("g", "bob");
          expect(byConv(await store.convs("bob"))[G]).toBeUndefined();
        });

        test("mentions: group messages only, names as a word, without the sender, edited in and out", async () => {
          await users("bo", "bob.x");
          await store.addMember("g", "bo", 1);
          await store.addMember("g", "bob.x", 1);
          const texts = ["mail bob@example.com", "@bob's turn", "(@bo)", "@bob.x.", "@BOB", "@@bob", "x@bo", "@bob-"];
          for (const text of texts) await one({ sender: "alice", grp: "g", text });
          await one({ sender: "alice", toUser: "bob", text: "@bob in a dm" });
          await one({ sender: "bob", grp: "g", text: "@bob myself" });
          const count = async (u: string) => byConv(await store.convs(u))[G]!.mentions;
          expect(await count("bob")).toBe(2); // "@bob's", "@bob-"
          expect(await count("bo")).toBe(1); // "(@bo)"
          expect(await count("bob.x")).toBe(1); // "@bob.x."
          expect(byConv(await store.convs("bob"))[dmConv("alice", "bob")]!.mentions).toBe(0);
          const m = await one({ sender: "alice", grp: "g", text: "nobody" });
          await one({ sender: "alice", grp: "g", kind: "edit", ref: m.mid, text: "now @bo and @bob" });
          expect([await count("bob"), await count("bo")]).toEqual([3, 2]);
        });

        test("a new member has read what came before; a preview is cut to PREVIEW_CHARS code points; a file's shows its size", async () => {
          await one({ sender: "alice", grp: "g", text: "before carol" });
          await one({ sender: "alice", grp: "g", text: "@carol before" });
          await store.addMember("g", "carol", 5);
          expect(byConv(await store.convs("carol"))[G]).toMatchObject({ read: await store.lastMid(), unread: 0, mentions: 0 });
          const long = `${"😀".repeat(PREVIEW_CHARS - 1)}é-more`;
          const l = await one({ sender: "bob", grp: "g", text: long });
          expect(byConv(await store.convs("carol"))[G]).toMatchObject({ unread: 1, preview: { mid: l.mid, text: `${"😀".repeat(PREVIEW_CHARS - 1)}é` } });
          const f = await one({ sender: "bob", grp: "g", file: await upFile(store, "bob", "pic.png", "image/png", new Uint8Array(70_000)) });
          expect(byConv(await store.convs("carol"))[G]!.preview).toEqual({ mid: f.mid, ts: 100, sender: "bob", file: { name: "pic.png", type: "image/png", size: 70_000 } });
          // Leaving and joining again: what came meanwhile counts as read too.
          await store.removeMember("g", "carol");
          await one({ sender: "bob", grp: "g", text: "while away" });
          await store.addMember("g", "carol", 6);
          expect(byConv(await store.convs("carol"))[G]).toMatchObject({ read: await store.lastMid(), unread: 0 });
        });
      });
    });

    describe("search", () => {
      /** mids newest first, as search gives them */
      const found = async (user: string, q: string, before = Number.MAX_SAFE_INTEGER, limit = 100) =>
        mids(await store.search(user, q, before, limit));

      beforeEach(async () => {
        await users("alice", "bob", "carol");
        await store.createGroup("g", "alice", 1);
        await store.addMember("g", "bob", 1);
        await store.createGroup("h", "carol", 1);
      });

      async function send(m: NewMessage): Promise<number> {
        return (await results(store, [m], 10))[0]!.mid;
      }

      test("parts of words, ASCII in any case, CJK and Korean; fewer than 3 characters too; other characters exactly", async () => {
        const a = await send({ sender: "alice", grp: "g", text: "trying Qwen3.6 today" });
        const b = await send({ sender: "bob", grp: "g", text: "日本語のテキスト and 中文 and 한국어" });
        const c = await send({ sender: "bob", toUser: "alice", text: "ÉCOLE, école, 100% sure_thing \\ \"quoted\"" });
        const d = await send({ sender: "alice", grp: "g", file: await upFile(store, "alice", "qwen.txt", "", new Uint8Array(3)) });
        expect(d).toBeGreaterThan(c);
        expect(await found("alice", "qwen")).toEqual([a]); // not the file's name
        expect(await found("alice", "QWEN3.6")).toEqual([a]);
        expect(await found("alice", "en3")).toEqual([a]);
        expect(await found("alice", "日本語")).toEqual([b]);
        expect(await found("alice", "本語のテ")).toEqual([b]);
        expect(await found("alice", "中文")).toEqual([b]); // 2 characters
        expect(await found("alice", "한국")).toEqual([b]);
        expect(await found("alice", "국어")).toEqual([b]);
        expect(await found("alice", "ÉCOLE")).toEqual([c]);
        expect(await found("alice", "école")).toEqual([c]);
        expect(await found("alice", "cole")).toEqual([c]);
        expect(await found("alice", "COLE")).toEqual([c]);
        expect(await found("alice", "Écol")).toEqual([c]); // É is not é: case is folded for A-Z only
        expect(await found("alice", "0%")).toEqual([c]);
        expect(await found("alice", "%")).toEqual([c]);
        expect(await found("alice", "_")).toEqual([c]);
        expect(await found("alice", "e_t")).toEqual([c]);
        expect(await found("alice", "\\")).toEqual([c]);
        expect(await found("alice", '"quoted"')).toEqual([c]);
        expect(await found("alice", "an")).toEqual([b]);
        expect(await found("alice", "a")).toEqual([c, b, a].filter((m) => m !== c)); // "ÉCOLE, école, 100% sure_thing" has no a
        expect(await found("alice", "zzz")).toEqual([]);
        expect(await found("alice", "q")).toEqual([c, a]); // "quoted", "Qwen"
      });

      test("only the caller's conversations: groups they are in now, their direct messages; messages only", async () => {
        const g1 = await send({ sender: "alice", grp: "g", text: "needle in g" });
        const h1 = await send({ sender: "carol", grp: "h", text: "needle in h" });
        const d1 = await send({ sender: "carol", toUser: "bob", text: "needle to bob" });
        const d2 = await send({ sender: "bob", toUser: "alice", text: "needle to alice" });
        const d3 = await send({ sender: "alice", toUser: "alice", text: "needle to self" });
        const e = await send({ sender: "bob", grp: "g", kind: "edit", ref: g1, text: "needle in g, edited by the log" });
        await send({ sender: "bob", grp: "g", kind: "react", ref: g1, text: "needle" });
        await send({ sender: "alice", grp: "g", kind: "read", ref: g1 });
        expect(e).toBeGreaterThan(0);
        expect(await found("alice", "needle")).toEqual([d3, d2, g1]);
        expect(await found("bob", "needle")).toEqual([d2, d1, g1]);
        expect(await found("carol", "needle")).toEqual([d1, h1]);
        expect(await found("carol", "edited by the log")).toEqual([]);
        expect(await found("alice", "edited by the log")).toEqual([g1]); // the message's current text
        await store.removeMember("g", "bob");
        expect(await found("bob", "needle")).toEqual([d2, d1]);
        await store.addMember("h", "bob", 2);
        expect(await found("bob", "needle")).toEqual([d2, d1, h1]);
        expect(await found("nobody", "needle")).toEqual([]);
      });

      test("newest first, paged with before and limit", async () => {
        const all: number[] = [];
        for (let i = 0; i < 150; i++) {
          all.push(await send({ sender: i % 2 ? "alice" : "bob", grp: "g", text: `item ${i} ${i % 3 === 0 ? "fizz" : "buzz"}` }));
          await send({ sender: "carol", grp: "h", text: `fizz elsewhere ${i}` });
        }
        const fizz = all.filter((_, i) => i % 3 === 0).reverse();
        expect(await found("alice", "fizz")).toEqual(fizz);
        expect(await found("alice", "fizz", Number.MAX_SAFE_INTEGER, 7)).toEqual(fizz.slice(0, 7));
        expect(await found("alice", "fizz", fizz[6]!, 7)).toEqual(fizz.slice(7, 14));
        expect(await found("alice", "fizz", fizz[fizz.length - 1]!, 7)).toEqual([]);
        expect(await found("alice", "fi", fizz[10]!, 5)).toEqual(fizz.slice(11, 16));
        const sizes = await store.search("alice", "fizz", Number.MAX_SAFE_INTEGER, 3);
        const msgs = await store.messagesByMid(sizes.map((x) => x.mid));
        expect(sizes).toEqual(msgs.reverse().map((m) => ({ mid: m.mid, size: messageSize(m) })));
      });

      test("edited messages are found by their current text; deleted ones never, whether searched before or not", async () => {
        const a = await send({ sender: "alice", grp: "g", text: "old words" });
        const b = await send({ sender: "alice", grp: "g", text: "more old words" });
        const f = await send({ sender: "alice", grp: "g", file: await upFile(store, "alice", "f", "", new Uint8Array(1)) });
        expect(await found("bob", "old words")).toEqual([b, a]); // both indexed now
        await send({ sender: "alice", grp: "g", kind: "edit", ref: a, text: "new phrase" });
        await send({ sender: "alice", grp: "g", kind: "edit", ref: f, text: "a caption, new" });
        await send({ sender: "alice", grp: "g", kind: "delete", ref: b });
        expect(await found("bob", "old words")).toEqual([]);
        expect(await found("bob", "new")).toEqual([f, a]);
        expect(await found("bob", "ne")).toEqual([f, a]);
        // Sent, edited and deleted between two searches.
        const c = await send({ sender: "bob", grp: "g", text: "fresh text" });
        const d = await send({ sender: "bob", grp: "g", text: "fresh and gone" });
        await send({ sender: "bob", grp: "g", kind: "edit", ref: c, text: "fresh, edited" });
        await send({ sender: "bob", grp: "g", kind: "delete", ref: d });
        expect(await found("alice", "fresh")).toEqual([c]);
        expect(await found("alice", "text")).toEqual([]);
        await send({ sender: "bob", grp: "g", kind: "delete", ref: c });
        expect(await found("alice", "fresh")).toEqual([]);
        expect(await found("alice", "fr")).toEqual([]);
      });
    });
  });
}
