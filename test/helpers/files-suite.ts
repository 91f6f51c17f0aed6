// The shared suite for the files part of the Store contract (src/store/store.ts, "files";
// PROTOCOL.md §3.9): `filesSuite(name, makeStore)` runs it against one implementation, each
// test on a new, empty store (closed after it). test/store-files.test.ts runs it on the memory
// store and SQLite; test/store-files-pg.test.ts on Postgres.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { NewMessage, Store, UploadRow } from "../../src/store/store.ts";
import { dmConv, groupConv } from "../../src/store/store.ts";
import { sha256Hex } from "./client.ts";

/** `n` bytes of a pattern that depends on `seed`. */
export function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** Reads all of file `file` through readFile, `len` bytes a call. */
export async function readAll(store: Store, file: number, size: number, len = 1 << 20): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let off = 0;
  while (off < size) {
    const b = await store.readFile(file, off, len);
    if (b.length === 0) break;
    parts.push(b);
    off += b.length;
  }
  return Buffer.concat(parts);
}

/** Uploads `data` in chunks of `chunk` and finishes it, as the server does after checking the hash. */
export async function storeUpload(store: Store, id: string, user: string, data: Uint8Array, now: number, chunk = 100_000): Promise<UploadRow> {
  const u = await store.createUpload(id, user, data.length, sha256Hex(data), now);
  for (let off = 0; off < data.length; off += chunk) {
    const got = await store.appendUpload(id, off, data.subarray(off, off + chunk), now);
    expect(got).toBe(Math.min(off + chunk, data.length));
  }
  return store.finishUpload(u.id, now);
}

export function filesSuite(name: string, makeStore: () => Store | Promise<Store>): void {
  describe(`${name}: files`, () => {
    let store: Store;
    const now = 1_700_000_000_000;

    beforeEach(async () => {
      store = await makeStore();
      for (const u of ["ann", "bob", "cat"]) await store.createUser(u, "h", now);
      await store.createGroup("g", "ann", now);
      await store.addMember("g", "bob", now);
    });
    afterEach(async () => {
      await store.close();
    });

    async function sendFile(sender: string, to: { grp?: string; toUser?: string }, upload: string, data: Uint8Array, extra: Partial<NewMessage> = {}) {
      const m: NewMessage = {
        sender,
        ...to,
        ...extra,
        file: { name: "f.bin", type: "application/octet-stream", size: data.length, sha256: sha256Hex(data), upload },
      };
      return (await store.commit([m], now)).results[0]!;
    }

    test("an upload takes chunks only at its offset and within its size; its bytes read back by offset", async () => {
      const data = pattern(250_000);
      const u = await store.createUpload("u1", "ann", data.length, sha256Hex(data), now);
      expect(u).toMatchObject({ id: "u1", user: "ann", size: 250_000, received: 0, done: false });
      expect(await store.appendUpload("u1", 0, data.subarray(0, 100_000), now + 1)).toBe(100_000);
      // the same chunk again, a hole, past the size: nothing written
      expect(await store.appendUpload("u1", 0, data.subarray(0, 100_000), now + 2)).toBeUndefined();
      expect(await store.appendUpload("u1", 150_000, data.subarray(150_000, 200_000), now + 2)).toBeUndefined();
      expect(await store.appendUpload("u1", 100_000, pattern(150_001), now + 2)).toBeUndefined();
      expect(await store.appendUpload("nope", 0, data.subarray(0, 10), now + 2)).toBeUndefined();
      expect((await store.getUpload("u1"))!.received).toBe(100_000);
      expect(await store.appendUpload("u1", 100_000, data.subarray(100_000), now + 3)).toBe(250_000);
      const got = (await store.getUpload("u1"))!;
      expect(got).toMatchObject({ received: 250_000, done: false, touched: now + 3 });
      // any offset, any length: at most to the end of the stored chunk it falls in
      expect(Array.from(await store.readFile(got.file, 99_990, 5))).toEqual(Array.from(data.subarray(99_990, 99_995)));
      const across = await store.readFile(got.file, 99_990, 50);
      expect(across.length).toBe(10);
      expect(Array.from(across)).toEqual(Array.from(data.subarray(99_990, 100_000)));
      expect((await store.readFile(got.file, 250_000, 10)).length).toBe(0);
      expect(Buffer.compare(await readAll(store, got.file, 250_000, 70_000), Buffer.from(data))).toBe(0);
    });

    test("findUpload resumes the user's own upload of that content; usage counts uploads and sent files", async () => {
      const data = pattern(1000);
      await store.createUpload("u1", "ann", 1000, sha256Hex(data), now);
      await store.appendUpload("u1", 0, data.subarray(0, 400), now);
      expect((await store.findUpload("ann", sha256Hex(data), 1000))!.id).toBe("u1");
      expect((await store.findUpload("ann", sha256Hex(data), 999))).toBeUndefined();
      expect(await store.findUpload("bob", sha256Hex(data), 1000)).toBeUndefined();
      expect(await store.fileUsage("ann")).toEqual({ bytes: 1000, uploads: 1 });
      await store.appendUpload("u1", 400, data.subarray(400), now);
      await store.finishUpload("u1", now);
      expect((await store.findUpload("ann", sha256Hex(data), 1000))!.done).toBe(true);
      const r = await sendFile("ann", { grp: "g" }, "u1", data);
      expect(r.mid).toBeGreaterThan(0);
      // sent: no longer an upload, still the user's bytes (a message not deleted holds them)
      expect(await store.getUpload("u1")).toBeUndefined();
      expect(await store.fileUsage("ann")).toEqual({ bytes: 1000, uploads: 0 });
      expect(await store.fileUsage("bob")).toEqual({ bytes: 0, uploads: 0 });
    });

    test("a message holds the file of a finished upload of its sender's, once; history shows name, type, size, hash", async () => {
      const data = pattern(5000, 3);
      await storeUpload(store, "u1", "ann", data, now);
      await store.createUpload("u2", "ann", 10, sha256Hex(pattern(10)), now); // not finished
      expect((await sendFile("bob", { grp: "g" }, "u1", data)).refused).toBe(true); // not bob's
      expect((await sendFile("ann", { grp: "g" }, "u2", pattern(10))).refused).toBe(true); // not finished
      const r = await sendFile("ann", { grp: "g" }, "u1", data, { text: "hi", cid: "c1" });
      expect(r).toMatchObject({ duplicate: false });
      // a retry with the same cid: the original, the upload is not needed again
      expect(await sendFile("ann", { grp: "g" }, "u1", data, { text: "hi", cid: "c1" })).toMatchObject({ mid: r.mid, duplicate: true });
      // used up
      expect((await sendFile("ann", { grp: "g" }, "u1", data, { cid: "c2" })).refused).toBe(true);
      const [m] = await store.history(groupConv("g"), { limit: 10, after: 0 }).then((h) => h.filter((x) => x.file));
      expect(m!.file).toEqual({ name: "f.bin", type: "application/octet-stream", size: 5000, sha256: sha256Hex(data) });
      expect(m!.text).toBe("hi");
      const f = (await store.messageFile(r.mid))!;
      expect(f).toMatchObject({ conv: groupConv("g"), size: 5000, sha256: sha256Hex(data) });
      expect(Buffer.compare(await readAll(store, f.file, 5000), Buffer.from(data))).toBe(0);
      expect(await store.messageFile(r.mid + 100)).toBeUndefined();
      const [text] = (await store.commit([{ sender: "ann", grp: "g", text: "no file" }], now)).results;
      expect(await store.messageFile(text!.mid)).toBeUndefined();
      const [c] = await store.convs("ann").then((cs) => cs.filter((x) => x.grp === "g"));
      expect(c!.preview).toMatchObject({ mid: text!.mid });
    });

    test("the same content is stored once; its bytes go when the last message holding it is deleted", async () => {
      const data = pattern(3000, 5);
      await storeUpload(store, "a1", "ann", data, now);
      await storeUpload(store, "b1", "bob", data, now); // the same bytes: uses ann's file
      const ua = await sendFile("ann", { grp: "g" }, "a1", data);
      const ub = await sendFile("bob", { toUser: "cat" }, "b1", data);
      const fa = (await store.messageFile(ua.mid))!;
      const fb = (await store.messageFile(ub.mid))!;
      expect(fb.file).toBe(fa.file);
      expect(fb.conv).toBe(dmConv("bob", "cat"));
      await store.commit([{ sender: "ann", grp: "g", kind: "delete", ref: ua.mid }], now);
      expect(await store.messageFile(ua.mid)).toBeUndefined();
      const [tomb] = await store.messagesByMid([ua.mid]);
      expect(tomb!.file).toBeUndefined();
      expect(tomb!.deleted).toBe(now);
      // bob's message still holds it
      expect((await readAll(store, fa.file, 3000)).length).toBe(3000);
      expect(await store.fileUsage("ann")).toEqual({ bytes: 0, uploads: 0 });
      await store.commit([{ sender: "bob", toUser: "cat", kind: "delete", ref: ub.mid }], now);
      expect((await store.readFile(fa.file, 0, 100)).length).toBe(0);
    });

    test("a wrong hash: resetUpload drops the bytes and starts it at 0", async () => {
      const data = pattern(2000);
      await store.createUpload("u1", "ann", 2000, sha256Hex(pattern(2000, 9)), now);
      await store.appendUpload("u1", 0, data, now);
      const u = (await store.getUpload("u1"))!;
      await store.resetUpload("u1", now + 5);
      expect(await store.getUpload("u1")).toMatchObject({ received: 0, done: false });
      expect((await store.readFile(u.file, 0, 100)).length).toBe(0);
      expect(await store.appendUpload("u1", 0, data.subarray(0, 10), now + 6)).toBe(10);
    });

    test("uploads not sent expire with their bytes; a file a message holds stays", async () => {
      const kept = pattern(1500, 2);
      const lost = pattern(1600, 4);
      await storeUpload(store, "sent", "ann", kept, now);
      await sendFile("ann", { grp: "g" }, "sent", kept);
      const idle = await storeUpload(store, "idle", "ann", lost, now);
      await store.createUpload("half", "ann", 10, sha256Hex(pattern(10)), now);
      await store.appendUpload("half", 0, pattern(5), now);
      const fresh = await storeUpload(store, "fresh", "bob", pattern(100, 7), now + 10_000);
      expect(await store.expireUploads(now + 5000)).toBe(2);
      expect(await store.getUpload("idle")).toBeUndefined();
      expect(await store.getUpload("half")).toBeUndefined();
      expect((await store.readFile(idle.file, 0, 100)).length).toBe(0);
      expect((await store.getUpload("fresh"))!.file).toBe(fresh.file);
      expect((await store.readFile(fresh.file, 0, 100)).length).toBe(100);
      expect(await store.fileUsage("ann")).toEqual({ bytes: 1500, uploads: 0 });
    });

    test("an upload of content stored already keeps the stored file when it expires", async () => {
      const data = pattern(800, 6);
      await storeUpload(store, "a1", "ann", data, now);
      const sent = await sendFile("ann", { grp: "g" }, "a1", data);
      await storeUpload(store, "b1", "bob", data, now);
      expect(await store.expireUploads(now + 1)).toBe(1);
      const f = (await store.messageFile(sent.mid))!;
      expect((await readAll(store, f.file, 800)).length).toBe(800);
    });

    test("retention, an erased account and a deleted group take the files only they held", async () => {
      const d1 = pattern(700, 11);
      const d2 = pattern(900, 12);
      await storeUpload(store, "x1", "ann", d1, now);
      const m1 = await sendFile("ann", { grp: "g" }, "x1", d1);
      await storeUpload(store, "x2", "bob", d2, now);
      const m2 = await sendFile("bob", { toUser: "ann" }, "x2", d2);
      const f1 = (await store.messageFile(m1.mid))!.file;
      const f2 = (await store.messageFile(m2.mid))!.file;
      await store.eraseUser("bob");
      expect((await store.readFile(f2, 0, 10)).length).toBe(0);
      expect((await store.readFile(f1, 0, 10)).length).toBe(10);
      await store.removeMember("g", "bob");
      await store.removeMember("g", "ann");
      await store.deleteGroup("g");
      expect((await store.readFile(f1, 0, 10)).length).toBe(0);
      // retention
      const d3 = pattern(600, 13);
      await storeUpload(store, "x3", "ann", d3, now);
      const m3 = await sendFile("ann", { toUser: "cat" }, "x3", d3);
      const f3 = (await store.messageFile(m3.mid))!.file;
      expect(await store.purge(now + 1, 1000)).toBeGreaterThan(0);
      expect((await store.readFile(f3, 0, 10)).length).toBe(0);
    });
  });
}
