// PostgresStore (src/store/postgres.ts) against a real PostgreSQL server started for this file
// (test/helpers/services.ts): the shared Store suite, unchanged, each test on an emptied database;
// then what only a shared store has: two stores (two nodes) on one database.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { PostgresStore } from "../src/store/postgres.ts";
import { openStore } from "../src/store/index.ts";
import type { NewMessage } from "../src/store/store.ts";
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
  // DELETE, not TRUNCATE: on tables this small it is several times faster (TRUNCATE makes new files).
  await admin`DELETE FROM messages; DELETE FROM reads; DELETE FROM reactions; DELETE FROM mentions; DELETE FROM dm_peers; DELETE FROM search_text; UPDATE search_state SET indexed = 0 WHERE id = 1; DELETE FROM memberships; DELETE FROM groups; DELETE FROM tokens; DELETE FROM bans; DELETE FROM users;
    DELETE FROM uploads; DELETE FROM file_chunks; DELETE FROM files;
    UPDATE tcpchat_seq SET seq = 0, last_mid = 0 WHERE id = 1`.simple();
  return PostgresStore.open({ url: suiteUrl });
}

storeSuite("PostgresStore", emptied);

describe("PostgresStore specifics", () => {
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

  test("search: pg_trgm is installed and its index serves a search of 3 characters or more; U+0000 in a text is no obstacle", async () => {
    const s = await emptied();
    try {
      expect(s.trigram).toBe(true);
      const plan = (await admin.begin(async (tx) => {
        await tx`SET LOCAL enable_seqscan = off`;
        return tx`EXPLAIN SELECT mid FROM search_text WHERE body ILIKE '%qwen%'`;
      })) as Array<Record<string, string>>;
      expect(plan.map((r) => Object.values(r)[0]).join("\n")).toContain("search_text_trgm");
      await s.createUser("a", "h", 1);
      const [m] = (await s.commit([{ sender: "a", toUser: "a", text: "nul\u0000here qwen" }], 1)).results;
      expect((await s.search("a", "qwen", Number.MAX_SAFE_INTEGER, 5)).map((x) => x.mid)).toEqual([m!.mid]);
      expect((await s.search("a", "l\uFFFDh", Number.MAX_SAFE_INTEGER, 5)).map((x) => x.mid)).toEqual([]);
    } finally {
      await s.close();
    }
  });

  test("U+0000 in cid, file name and type, and a 4 MiB file, round-trip (client strings are stored as UTF-8 bytea)", async () => {
    const s = await emptied();
    try {
      const data = new Uint8Array(4 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
      const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
      const up = await s.createUpload("u1", "a", data.length, sha256, 5);
      for (let off = 0; off < data.length; off += 1 << 20)
        expect(await s.appendUpload(up.id, off, data.subarray(off, off + (1 << 20)), 6)).toBe(off + (1 << 20));
      await s.finishUpload(up.id, 7);
      const file = { name: "f\u0000.bin", type: "x/\u0000", size: data.length, sha256 };
      const m: NewMessage = { sender: "a", toUser: "b", cid: "c\u0000id", text: "t\u0000", file: { ...file, upload: up.id } };
      const [r] = (await s.commit([m], 9)).results;
      expect((await s.commit([{ ...m, text: "again" }], 10)).results).toEqual([{ mid: r!.mid, ts: 9, duplicate: true }]);
      expect((await s.commit([{ ...m, cid: "c", file: undefined }], 11)).results[0]!.duplicate).toBe(false);
      const [got] = await s.messagesByMid([r!.mid]);
      expect(got).toEqual({ ...m, mid: r!.mid, ts: 9, file });
      const f = (await s.messageFile(r!.mid))!;
      expect(f).toEqual({ conv: "d:a:b", file: up.file, size: data.length, sha256 });
      const back: Uint8Array[] = [];
      for (let off = 0; ; ) {
        const part = await s.readFile(f.file, off, 700_000);
        if (part.length === 0) break;
        back.push(part);
        off += part.length;
      }
      expect(Buffer.concat(back).equals(Buffer.from(data))).toBe(true);
      expect(await s.historySizes("d:a:b", { limit: 2 })).toEqual([
        { mid: r!.mid, size: 96 + 2 + 4 + 96 + 6 + 3 },
        { mid: r!.mid + 1, size: 96 + 2 + 1 },
      ]);
    } finally {
      await s.close();
    }
  });

  test("a commit the server refuses stores nothing and takes no seq; the next one continues without a gap", async () => {
    const s = await emptied();
    try {
      await s.commit([{ sender: "a", grp: "g", cid: "kept", text: "one" }], 1);
      const bad = [
        { sender: "a", grp: "g", cid: "lost", text: "good, but in a failing batch" },
        { sender: null as unknown as string, grp: "g", text: "violates NOT NULL" },
      ];
      // Several times, so that each connection of the pool has had a failed transaction.
      for (let i = 0; i < 10; i++) await expect(s.commit(bad, 2)).rejects.toThrow();
      expect(await s.position()).toEqual({ seq: 1, mid: 1 });
      const all = await Promise.all(range(1, 8).map((i) => s.commit([{ sender: "a", grp: "g", cid: `n${i}` }], 3)));
      expect(all.map((c) => c.seq).sort((x, y) => x - y)).toEqual(range(2, 9));
      expect(all.flatMap((c) => c.results.map((r) => r.mid)).sort((x, y) => x - y)).toEqual(range(2, 9));
      expect((await s.commit([{ sender: "a", grp: "g", cid: "lost" }], 4)).results[0]!.duplicate).toBe(false);
      expect((await s.commit([{ sender: "a", grp: "g", cid: "kept" }], 4)).results[0]).toEqual({ mid: 1, ts: 1, duplicate: true });
    } finally {
      await s.close();
    }
  });

  test("after close(), calls reject and nothing is stored", async () => {
    const s = await emptied();
    await s.commit([{ sender: "a", grp: "g", text: "ok" }], 1);
    await s.close();
    await expect(s.commit([{ sender: "a", grp: "g", text: "after close" }], 2)).rejects.toThrow();
    await expect(s.position()).rejects.toThrow();
    const s2 = await PostgresStore.open({ url: suiteUrl });
    try {
      expect(await s2.position()).toEqual({ seq: 1, mid: 1 });
    } finally {
      await s2.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Two nodes on one database
// ---------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32): the same run every time. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

const JOURNAL = (await Bun.file(`${import.meta.dir}/../src/store/migrations-pg/meta/_journal.json`).json()) as {
  entries: unknown[];
};

describe("PostgresStore: two nodes on one database", () => {
  test("stores starting at once on an empty database migrate it once, without error", async () => {
    const url = await pg.createDatabase();
    const stores = await Promise.all(range(1, 4).map(() => PostgresStore.open({ url })));
    const db = new SQL({ url, max: 1 });
    try {
      const rows = await db`SELECT hash FROM drizzle.__drizzle_migrations`;
      expect(rows.length).toBe(JOURNAL.entries.length);
      expect(await db`SELECT id, seq, last_mid FROM tcpchat_seq`).toEqual([{ id: 1, seq: "0", last_mid: "0" }]);
      // Opening again applies nothing.
      await (await PostgresStore.open({ url })).close();
      expect((await db`SELECT hash FROM drizzle.__drizzle_migrations`).length).toBe(JOURNAL.entries.length);
      for (const s of stores) expect(await s.position()).toEqual({ seq: 0, mid: 0 });
    } finally {
      await db.close();
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test("a retry through the other store returns the original; the same cid on both at once is stored once", async () => {
    const url = await pg.createDatabase();
    const [a, b] = await Promise.all([PostgresStore.open({ url }), PostgresStore.open({ url })]);
    try {
      await a.createUser("alice", "h", 1);
      await b.createUser("bob", "h", 1);
      expect(await b.createUser("alice", "other", 2)).toBe(false);
      const g = await a.createGroup("g", "alice", 1);
      expect(await b.addMember("g", "bob", 2)).toBe(g + 1);
      expect(await a.addMember("g", "bob", 2)).toBe(0);

      const [first] = (await a.commit([{ sender: "alice", grp: "g", cid: "x1", text: "original" }], 100)).results;
      expect(first).toEqual({ mid: 1, ts: 100, duplicate: false });
      const retry = await b.commit(
        [
          { sender: "bob", grp: "g", text: "new" },
          { sender: "alice", grp: "g", cid: "x1", text: "retry" },
        ],
        200,
      );
      expect(retry.results).toEqual([
        { mid: 2, ts: 200, duplicate: false },
        { mid: 1, ts: 100, duplicate: true },
      ]);

      // Both nodes get the same (sender, cid) at the same moment: one stores it, the other finds it.
      for (let i = 0; i < 30; i++) {
        const cid = `race-${i}`;
        const [ra, rb] = await Promise.all([
          a.commit([{ sender: "alice", toUser: "bob", cid, text: "a" }], 300 + i),
          b.commit([{ sender: "alice", toUser: "bob", cid, text: "b" }], 300 + i),
        ]);
        const x = ra.results[0]!;
        const y = rb.results[0]!;
        expect(x.mid).toBe(y.mid);
        expect([x.duplicate, y.duplicate].sort()).toEqual([false, true]);
        expect(Math.abs(ra.seq - rb.seq)).toBe(1);
      }
      const p = await a.position();
      expect(p).toEqual(await b.position());
      expect(p.mid).toBe(2 + 30);
      expect((await a.history("d:alice:bob", { limit: 100 })).length).toBe(30);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test(
    "hammer: 2 stores x 200 batches and a reader: seqs 1..N, mids consecutive, every read a prefix, cid retries across nodes",
    async () => {
      const url = await pg.createDatabase();
      const [a, b, reader] = await Promise.all([
        PostgresStore.open({ url }),
        PostgresStore.open({ url }),
        PostgresStore.open({ url }),
      ]);
      try {
        for (const u of ["alice", "bob", "carol", "r", "churn"]) await a.createUser(u, "h", 1);
        const seqs: number[] = [];
        seqs.push(await a.createGroup("g", "r", 1)); // r reads everything: group g and DMs to r
        seqs.push(await b.addMember("g", "alice", 1));
        seqs.push(await a.addMember("g", "bob", 1));
        seqs.push(await b.createGroup("h", "carol", 1));

        /** mid -> what was stored there, from the writers' results. */
        const stored = new Map<number, { sender: string; cid?: string; text: string }>();
        /** Messages with a cid that each store committed: the other one retries some of them. */
        const byStore: Array<Array<{ sender: string; cid: string; mid: number; ts: number }>> = [[], []];
        let retries = 0;
        let writing = 2;

        async function writer(store: PostgresStore, me: number, seed: number): Promise<void> {
          const rand = prng(seed);
          for (let i = 0; i < 200; i++) {
            const n = 1 + Math.floor(rand() * 25);
            const batch: NewMessage[] = [];
            const expectDup: Array<{ mid: number; ts: number } | undefined> = [];
            for (let j = 0; j < n; j++) {
              const other = byStore[1 - me]!;
              if (rand() < 0.08 && other.length > 0) {
                const o = other[Math.floor(rand() * other.length)]!;
                batch.push({ sender: o.sender, grp: "g", cid: o.cid, text: "retry" });
                expectDup.push({ mid: o.mid, ts: o.ts });
                continue;
              }
              const sender = rand() < 0.5 ? "alice" : "bob";
              const m: NewMessage = rand() < 0.6 ? { sender, grp: "g", text: `${me}.${i}.${j}` } : { sender, toUser: "r", text: `${me}.${i}.${j}` };
              if (rand() < 0.5) m.cid = `${me}-${i}-${j}`;
              batch.push(m);
              expectDup.push(undefined);
            }
            const c = await store.commit(batch, 1000 + i);
            seqs.push(c.seq);
            c.results.forEach((r, j) => {
              const d = expectDup[j];
              if (d) {
                retries++;
                expect(r).toEqual({ ...d, duplicate: true });
                return;
              }
              expect(r.duplicate).toBe(false);
              const m = batch[j]!;
              expect(stored.has(r.mid)).toBe(false);
              stored.set(r.mid, { sender: m.sender, ...(m.cid ? { cid: m.cid } : {}), text: m.text! });
              if (m.cid) byStore[me]!.push({ sender: m.sender, cid: m.cid, mid: r.mid, ts: r.ts });
            });
            // Membership changes interleave with the batches in the one sequence.
            if (i % 25 === 0) {
              const s = i % 50 === 0 ? await store.addMember("h", "churn", 2) : await store.removeMember("h", "churn");
              if (s > 0) seqs.push(s);
            }
          }
          writing--;
        }

        /** What the reader saw: every poll must continue exactly where the last one ended. */
        const seen: number[] = [];
        let polls = 0;
        async function read(): Promise<void> {
          let last = 0;
          for (;;) {
            const finished = writing === 0;
            const got = await reader.syncSizes("r", last, 10_000);
            polls++;
            for (const { mid } of got) {
              // A gap here would be a smaller mid committed after a larger one was visible.
              expect(mid).toBe(last + 1);
              last = mid;
              seen.push(mid);
            }
            const p = await reader.position();
            expect(p.mid).toBeGreaterThanOrEqual(last);
            if (finished) return;
          }
        }

        await Promise.all([writer(a, 0, 1), writer(b, 1, 2), read()]);

        const end = await reader.position();
        expect(end).toEqual(await a.position());
        // seqs from both stores (batches and membership changes): exactly 1..N, no gap, no repeat.
        expect(seqs.slice().sort((x, y) => x - y)).toEqual(range(1, end.seq));
        // mids: consecutive, each assigned once.
        expect([...stored.keys()].sort((x, y) => x - y)).toEqual(range(1, end.mid));
        expect(seen).toEqual(range(1, end.mid));
        expect(retries).toBeGreaterThan(20);
        expect(polls).toBeGreaterThan(10);
        // The table holds exactly what the writers were told.
        const all = await reader.sync("r", 0, 100_000);
        expect(all.map((m) => m.mid)).toEqual(range(1, end.mid));
        for (const m of all) {
          const s = stored.get(m.mid)!;
          expect({ sender: m.sender, cid: m.cid, text: m.text }).toEqual({ sender: s.sender, cid: s.cid, text: s.text });
        }
        console.log(`hammer: ${end.seq} commits, ${end.mid} messages, ${retries} cross-node retries, ${polls} reader polls`);
      } finally {
        await Promise.all([a.close(), b.close(), reader.close()]);
      }
    },
    120_000,
  );
});

// ---------------------------------------------------------------------------
// Postgres unavailable (a server of their own: these tests stop and kill it)
// ---------------------------------------------------------------------------

describe("PostgresStore when Postgres goes away", () => {
  let own: PostgresServer;
  beforeAll(async () => {
    own = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await own?.stop();
  });

  /** Resolves with how long `p` took to settle; fails the test if it resolved. */
  async function rejectsIn(p: Promise<unknown>): Promise<number> {
    const t0 = performance.now();
    await expect(p).rejects.toThrow();
    return performance.now() - t0;
  }

  test(
    "killed mid-use: every call rejects within seconds; after the restart the same store works again, nothing acknowledged is lost",
    async () => {
      const url = await own.createDatabase();
      const s = await PostgresStore.open({ url, connectTimeoutMs: 2000, queryTimeoutMs: 5000 });
      try {
        await s.createUser("alice", "h", 1);
        await s.createUser("bob", "h", 1);
        await s.createGroup("g", "alice", 1);

        // Sends as the batcher makes them (one commit at a time), each with its own cid.
        const acked = new Map<string, number>();
        const failed: string[] = [];
        let stop = false;
        let n = 0;
        const traffic = (async () => {
          while (!stop) {
            const cid = `c${n++}`;
            try {
              const c = await s.commit([{ sender: "alice", grp: "g", cid, text: cid }], Date.now());
              acked.set(cid, c.results[0]!.mid);
            } catch {
              failed.push(cid);
              await Bun.sleep(5);
            }
          }
        })();
        while (acked.size < 50) await Bun.sleep(5);

        await own.kill();
        const waits = [
          await rejectsIn(s.position()),
          await rejectsIn(s.getUser("alice")),
          await rejectsIn(s.sync("alice", 0, 10)),
          await rejectsIn(s.history("g:g", { limit: 10 })),
          await rejectsIn(s.commit([{ sender: "bob", toUser: "alice", text: "while down" }], 2)),
          await rejectsIn(s.addMember("g", "bob", 2)),
          await rejectsIn(s.addToken("t", "alice", 1, 10)),
          await rejectsIn(s.maintain(1)),
        ];
        for (const w of waits) expect(w).toBeLessThan(4000);
        await Bun.sleep(200);
        const failedWhileDown = failed.length;
        expect(failedWhileDown).toBeGreaterThan(0);

        await own.start();
        // The same store, not reopened: it reconnects by itself.
        const t0 = performance.now();
        for (;;) {
          try {
            await s.position();
            break;
          } catch {
            expect(performance.now() - t0).toBeLessThan(10_000);
            await Bun.sleep(20);
          }
        }
        const ackedAtRestart = acked.size;
        while (acked.size < ackedAtRestart + 50) await Bun.sleep(5);
        stop = true;
        await traffic;

        expect(await s.getUser("alice")).toEqual({ name: "alice", passHash: "h" });
        expect(await s.addMember("g", "bob", 3)).toBeGreaterThan(0);

        // Every acknowledged message is stored with its mid; every refused one can be sent again
        // with its cid: a duplicate if it was stored after all, a new message otherwise.
        const byCid = new Map((await s.history("g:g", { limit: 100_000 })).map((m) => [m.cid!, m.mid]));
        for (const [cid, mid] of acked) expect(byCid.get(cid)).toBe(mid);
        for (const cid of failed) {
          const [r] = (await s.commit([{ sender: "alice", grp: "g", cid, text: cid }], Date.now())).results;
          if (byCid.has(cid)) expect(r).toMatchObject({ mid: byCid.get(cid), duplicate: true });
          else expect(r!.duplicate).toBe(false);
        }
        // The table is still a sequence without gaps, and the seq row agrees with it.
        const p = await s.position();
        const all = await s.sync("alice", 0, 100_000);
        expect(all.map((m) => m.mid)).toEqual(range(1, p.mid));
        console.log(
          `kill: calls rejected in ${Math.max(...waits).toFixed(0)} ms at most; ${failedWhileDown} sends refused while down, ` +
            `${acked.size} acknowledged, first call after restart ok after ${(performance.now() - t0).toFixed(0)} ms`,
        );
      } finally {
        await s.close();
      }
    },
    60_000,
  );

  test("after a restart of Postgres, the first call of each kind succeeds (dead pooled connections are retried)", async () => {
    const url = await own.createDatabase();
    const s = await PostgresStore.open({ url });
    try {
      await s.createUser("alice", "h", 1);
      await s.createGroup("g", "alice", 1);
      // Several pooled connections, all idle.
      await Promise.all(range(1, 6).map(() => s.sync("alice", 0, 10)));
      for (const call of [
        () => s.position(),
        () => s.commit([{ sender: "alice", grp: "g", text: "after restart" }], 5),
        () => s.createUser("bob", "h", 2),
        () => s.addMember("g", "bob", 2),
        () => s.getUser("alice"),
      ]) {
        await own.restart();
        await call();
      }
      expect((await s.history("g:g", { limit: 10 })).map((m) => m.text)).toEqual(["after restart"]);
      expect(await s.userGroups("bob")).toEqual([{ name: "g", owner: "alice", public: true, topic: "", description: "", role: "member" }]);
    } finally {
      await s.close();
    }
  }, 60_000);

  test("Postgres down at start: open rejects within seconds", async () => {
    const url = await own.createDatabase();
    await own.kill();
    try {
      expect(await rejectsIn(PostgresStore.open({ url, connectTimeoutMs: 2000 }))).toBeLessThan(4000);
    } finally {
      await own.start();
    }
  }, 30_000);
});
