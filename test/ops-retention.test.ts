// --retain-days (issue #15) against the real server: a database written beforehand with
// messages committed 10, 6, 1 and 0 days ago (Store.commit takes the commit time, so no
// clock is faked and nothing sleeps for days), then a server with --retain-days 5 purges
// exactly those older than 5 days, in batches, and history and sync answer as PROTOCOL.md
// §3.4 says for purged ranges; new mids still come after the purged ones.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseMetrics } from "../src/ops/registry.ts";
import { BATCH } from "../src/ops/retention.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { NewMessage } from "../src/store/store.ts";
import { TestClient } from "./helpers/client.ts";
import { httpBase, type RunningServer, startServer, TEST_ARGS, tempDir } from "./helpers/server.ts";

const DAY = 86_400_000;
const tmp = tempDir();
const db = join(tmp.dir, "chat.db");
let server: RunningServer;
const OLD_GROUP = 2 * BATCH + 200; // more than one batch
let lastOld = 0;
let firstKept = 0;
const now = Date.now();

beforeAll(async () => {
  const s = new SqliteStore({ path: db, durability: "normal" });
  const hash = await Bun.password.hash("password1", { algorithm: "argon2id", memoryCost: 1024, timeCost: 1 });
  await s.createUser("alice", hash, now);
  await s.createUser("bob", hash, now);
  await s.createGroup("g", "alice", now);
  await s.addMember("g", "bob", now);
  const at = async (ts: number, batch: NewMessage[]) => (await s.commit(batch, ts)).results.map((r) => r.mid);
  for (let i = 0; i < OLD_GROUP; i += 100)
    await at(now - 10 * DAY + i, Array.from({ length: 100 }, (_, j) => ({ sender: "alice", grp: "g", text: `old ${i + j}` })));
  const oldDm = await at(now - 6 * DAY, [0, 1, 2].map((i) => ({ sender: "bob", toUser: "alice", text: `old dm ${i}` })));
  lastOld = oldDm.at(-1)!;
  const kept = await at(now - DAY, Array.from({ length: 20 }, (_, i) => ({ sender: "bob", grp: "g", text: `new ${i}` })));
  firstKept = kept[0]!;
  await at(now, Array.from({ length: 5 }, (_, i) => ({ sender: "alice", toUser: "bob", text: `new dm ${i}` })));
  await s.close();
  server = await startServer(["--db", db, "--retain-days", "5", ...TEST_ARGS]);
});

afterAll(async () => {
  await server?.stop();
  tmp.cleanup();
});

describe("--retain-days", () => {
  test("purges exactly the messages committed before the cutoff, in batches, soon after start", async () => {
    const deadline = Date.now() + 15_000;
    while (!server.output().includes('"retention.purged"')) {
      if (Date.now() > deadline) throw new Error(`no purge: ${server.output()}`);
      await Bun.sleep(50);
    }
    const ev = server
      .output()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((e) => e.event === "retention.purged");
    expect(ev.messages).toBe(OLD_GROUP + 3);
    const m = parseMetrics(await (await fetch(`${httpBase(server.output())}/metrics`)).text());
    expect(m.get("tcpchat_retention_purged_total")).toBe(OLD_GROUP + 3);

    const c = await TestClient.connect(server.port);
    await c.login("bob");
    // sync from the start, or from inside the purged range: the retained messages, from the oldest.
    for (const after of [0, 5, lastOld - 1]) {
      const page = await c.ok({ t: "sync", after, limit: 500 });
      expect(page.more).toBe(false);
      expect(page.msgs.map((x: any) => x.text)).toEqual([
        ...Array.from({ length: 20 }, (_, i) => `new ${i}`),
        ...Array.from({ length: 5 }, (_, i) => `new dm ${i}`),
      ]);
      expect(page.msgs[0].mid).toBe(firstKept);
    }
    // history: nothing before the oldest retained message.
    const h = await c.ok({ t: "history", group: "g", limit: 100 });
    expect(h.msgs).toHaveLength(20);
    expect(h.more).toBe(false);
    expect((await c.ok({ t: "history", group: "g", before: firstKept })).msgs).toEqual([]);
    expect((await c.ok({ t: "history", user: "alice", limit: 100 })).msgs.map((x: any) => x.text)).toEqual(
      Array.from({ length: 5 }, (_, i) => `new dm ${i}`),
    );
    // A new message takes the next mid after everything ever given.
    const r = await c.ok({ t: "send", group: "g", text: "after the purge" });
    expect(r.mid).toBeGreaterThan(firstKept + 24);
    c.close();
  });

  test("tcpchat admin purge runs it now: nothing more to purge", async () => {
    const p = Bun.spawn([process.execPath, "run", join(import.meta.dir, "..", "src/admin.ts"), "--db", db, "purge"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ purged: 0, days: 5 });
  });
});
