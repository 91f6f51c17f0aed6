// Changes to groups in the store (Store.groupOp, src/store/groups.ts), blocking and the DM policy,
// and what erase and purge leave of the log: one suite run against the memory store, a SQLite file
// and a real PostgreSQL (test/helpers/services.ts), plus what only a shared store has: two stores
// (two nodes) deciding conflicting changes at once, and the decision table itself.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { decide, type GroupFacts, type GroupOp } from "../src/store/groups.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { GroupOpResult, Store } from "../src/store/store.ts";
import { tempDir } from "./helpers/server.ts";
import { type PostgresServer, startPostgres } from "./helpers/services.ts";

let pg: PostgresServer;
const tmp = tempDir("tcpchat-store-groups-");
let dbs = 0;

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  await pg?.stop();
  tmp.cleanup();
});

const NOW = 1_800_000_000_000;

function applied(r: GroupOpResult): { seq: number; mid: number } {
  if (!("entry" in r)) throw new Error(`not applied: ${JSON.stringify(r)}`);
  return { seq: r.seq, mid: r.mid };
}

async function users(s: Store, ...names: string[]): Promise<void> {
  for (const n of names) expect(await s.createUser(n, "h", NOW)).toBe(true);
}

const op = (action: GroupOp["action"], group: string, by: string, target = by, extra: Partial<GroupOp> = {}): GroupOp => ({
  action,
  group,
  by,
  target,
  ...extra,
});

function suite(name: string, make: () => Promise<Store>): void {
  describe(name, () => {
    test("each change is one commit of the sequence with its entry; sync gives the changes about a user after they left", async () => {
      const s = await make();
      try {
        await users(s, "ann", "bob");
        const before = await s.position();
        const c = applied(await s.groupOp(op("create", "ops", "ann", "ann", { settings: { topic: "deploys" } }), NOW));
        expect(c).toEqual({ seq: before.seq + 1, mid: before.mid + 1 });
        const j = applied(await s.groupOp(op("join", "ops", "bob"), NOW));
        expect(j).toEqual({ seq: c.seq + 1, mid: c.mid + 1 });
        // a join of a member changes nothing and takes no number
        expect(await s.groupOp(op("join", "ops", "bob"), NOW)).toEqual({ seq: 0 });
        expect(await s.position()).toEqual({ seq: j.seq, mid: j.mid });
        const sent = await s.commit([{ sender: "ann", grp: "ops", text: "hi" }], NOW);
        const l = applied(await s.groupOp(op("leave", "ops", "bob"), NOW));
        await s.commit([{ sender: "ann", grp: "ops", text: "after" }], NOW);
        expect((await s.sync("bob", 0, 100)).map((m) => `${m.mid}:${m.kind ?? m.text}`)).toEqual([`${j.mid}:join`, `${l.mid}:leave`]);
        const h = await s.history("g:ops", { limit: 10 });
        expect(h.map((m) => m.kind ?? m.text)).toEqual(["create", "join", "hi", "leave", "after"]);
        expect(h[0]).toMatchObject({ sender: "ann", grp: "ops", target: "ann", text: JSON.stringify({ topic: "deploys" }) });
        expect(h[3]).toMatchObject({ sender: "bob", target: "bob", mid: l.mid });
        expect(sent.results[0]!.mid).toBe(j.mid + 1);
        // a joiner has read everything before the join
        await s.groupOp(op("join", "ops", "bob"), NOW);
        expect((await s.convs("bob")).find((x) => x.grp === "ops")?.unread).toBe(0);
        expect(await s.getGroup("ops")).toEqual({ name: "ops", owner: "ann", public: true, topic: "deploys", description: "" });
      } finally {
        await s.close();
      }
    });

    test("roles, bans, invitations, mutes and transfers are stored as decided", async () => {
      const s = await make();
      try {
        await users(s, "ann", "bob", "cy", "dee");
        applied(await s.groupOp(op("create", "priv", "ann", "ann", { settings: { public: false } }), NOW));
        // private: not found without an invitation
        expect(await s.groupOp(op("join", "priv", "bob"), NOW)).toMatchObject({ seq: 0, refused: { code: "not_found" } });
        applied(await s.groupOp(op("invite", "priv", "ann", "bob"), NOW));
        expect(await s.userInvites("bob")).toEqual([{ group: "priv", by: "ann", topic: "" }]);
        expect(await s.standing("priv", "bob")).toEqual({ banned: false, invited: true });
        applied(await s.groupOp(op("join", "priv", "bob"), NOW));
        expect(await s.userInvites("bob")).toEqual([]);
        applied(await s.groupOp(op("role", "priv", "ann", "bob", { role: "admin" }), NOW));
        expect(await s.member("priv", "bob")).toEqual({ user: "bob", role: "admin", muted: 0 });
        // an admin invites; cannot act on the owner
        applied(await s.groupOp(op("invite", "priv", "bob", "cy"), NOW));
        applied(await s.groupOp(op("join", "priv", "cy"), NOW));
        expect(await s.groupOp(op("kick", "priv", "bob", "ann"), NOW)).toMatchObject({ refused: { code: "forbidden" } });
        const m = applied(await s.groupOp(op("mute", "priv", "bob", "cy", { until: NOW + 5000 }), NOW));
        expect((await s.messagesByMid([m.mid]))[0]).toMatchObject({ kind: "mute", target: "cy", until: NOW + 5000 });
        expect((await s.allMemberships()).find((x) => x.user === "cy")?.muted).toBe(NOW + 5000);
        // once it ended, unmute has nothing to do
        expect(await s.groupOp(op("unmute", "priv", "bob", "cy"), NOW + 6000)).toEqual({ seq: 0 });
        applied(await s.groupOp(op("ban", "priv", "bob", "cy"), NOW));
        expect(await s.member("priv", "cy")).toBeUndefined();
        expect(await s.groupOp(op("join", "priv", "cy"), NOW)).toMatchObject({ refused: { code: "forbidden" } });
        expect(await s.groupOp(op("invite", "priv", "ann", "cy"), NOW)).toMatchObject({ refused: { code: "forbidden" } });
        applied(await s.groupOp(op("unban", "priv", "ann", "cy"), NOW));
        expect(await s.standing("priv", "cy")).toEqual({ banned: false, invited: false });
        // transfer: the old owner becomes an admin, the owner column follows
        expect(await s.groupOp(op("leave", "priv", "ann"), NOW)).toMatchObject({ refused: { code: "forbidden" } });
        applied(await s.groupOp(op("owner", "priv", "ann", "bob"), NOW));
        expect((await s.groupMembers("priv")).map((x) => `${x.user}:${x.role}`)).toEqual(["ann:admin", "bob:owner"]);
        expect((await s.getGroup("priv"))?.owner).toBe("bob");
        expect((await s.userGroups("ann"))[0]).toMatchObject({ name: "priv", role: "admin", public: false });
        applied(await s.groupOp(op("settings", "priv", "ann", "ann", { settings: { public: true, description: "open now" } }), NOW));
        expect(await s.listGroups("pri", "", 10)).toEqual([{ name: "priv", topic: "", members: 2 }]);
        // settings as they are already: nothing stored
        expect(await s.groupOp(op("settings", "priv", "ann", "ann", { settings: { public: true } }), NOW)).toEqual({ seq: 0 });
        expect(await s.listGroups("PRI", "priv", 10)).toEqual([]);
      } finally {
        await s.close();
      }
    });

    test("blocks and the DM policy decide dmAllowed", async () => {
      const s = await make();
      try {
        await users(s, "ann", "bob");
        expect(await s.dmAllowed("ann", "bob")).toBe(true);
        expect(await s.setBlock("bob", "ann", true, NOW)).toBe(true);
        expect(await s.setBlock("bob", "ann", true, NOW)).toBe(false);
        expect(await s.blocked("bob")).toEqual(["ann"]);
        expect(await s.dmAllowed("ann", "bob")).toBe(false);
        expect(await s.dmAllowed("bob", "ann")).toBe(true);
        expect(await s.setBlock("bob", "ann", false, NOW)).toBe(true);
        await s.setDmPolicy("bob", "groups");
        expect(await s.dmPolicy("bob")).toBe("groups");
        expect(await s.dmAllowed("ann", "bob")).toBe(false);
        applied(await s.groupOp(op("create", "g", "bob"), NOW));
        applied(await s.groupOp(op("join", "g", "ann"), NOW));
        expect(await s.dmAllowed("ann", "bob")).toBe(true);
        await s.setDmPolicy("bob", "nobody");
        expect(await s.dmAllowed("ann", "bob")).toBe(false);
        expect(await s.dmAllowed("bob", "bob")).toBe(true);
      } finally {
        await s.close();
      }
    });

    test("erase and purge take others' edits and reactions about the gone messages with them", async () => {
      const s = await make();
      try {
        await users(s, "ann", "bob");
        applied(await s.groupOp(op("create", "g", "ann"), NOW));
        applied(await s.groupOp(op("join", "g", "bob"), NOW));
        const [m1, m2] = (await s.commit([{ sender: "bob", grp: "g", text: "bob's" }, { sender: "ann", grp: "g", text: "ann's" }], NOW)).results;
        const r = (
          await s.commit(
            [
              { sender: "ann", grp: "g", kind: "react", ref: m1!.mid, text: "👍" },
              { sender: "bob", grp: "g", kind: "react", ref: m2!.mid, text: "🎉" },
              { sender: "ann", grp: "g", kind: "edit", ref: m2!.mid, text: "ann's, edited" },
            ],
            NOW + 1,
          )
        ).results;
        // erasing bob takes his message, his reaction, and ann's reaction to his message
        await s.eraseUser("bob");
        const left = (await s.history("g:g", { limit: 100 })).map((m) => `${m.mid}:${m.kind ?? "msg"}`);
        expect(left).not.toContain(`${r[0]!.mid}:react`);
        expect(left).not.toContain(`${r[1]!.mid}:react`);
        expect(left).toContain(`${r[2]!.mid}:edit`);
        expect(left).not.toContain(`${m1!.mid}:msg`);
        // purging ann's message (the oldest left, with the group's entries before it) takes her edit too
        await s.purge(NOW + 1, 100);
        expect((await s.history("g:g", { limit: 100 })).map((m) => m.mid)).toEqual([]);
        expect(await s.messagesByMid([r[2]!.mid])).toEqual([]);
      } finally {
        await s.close();
      }
    });
  });
}

suite("MemoryStore", async () => new MemoryStore());
suite("SqliteStore", async () => new SqliteStore({ path: join(tmp.dir, `s${++dbs}.db`), durability: "normal" }));
suite("PostgresStore", async () => PostgresStore.open({ url: await pg.createDatabase(`g${++dbs}`) }));

describe("two stores on one PostgreSQL (two nodes)", () => {
  test("conflicting changes at once: a transfer and a kick of the same member, never both", async () => {
    const url = await pg.createDatabase("race");
    const [a, b] = await Promise.all([PostgresStore.open({ url }), PostgresStore.open({ url })]);
    try {
      await users(a, "own", "x");
      for (let i = 0; i < 10; i++) {
        const g = `race${i}`;
        applied(await a.groupOp(op("create", g, "own"), NOW));
        applied(await a.groupOp(op("join", g, "x"), NOW));
        const [t, k] = await Promise.all([a.groupOp(op("owner", g, "own", "x"), NOW), b.groupOp(op("kick", g, "own", "x"), NOW)]);
        const done = [t, k].filter((r) => "entry" in r);
        expect(done.length).toBe(1);
        const owner = (await a.getGroup(g))!.owner;
        const members = (await a.groupMembers(g)).map((m) => m.user);
        // either x owns it (the kick came second and was refused) or x is out and own still owns it
        if ("entry" in t) expect([owner, members.includes("x")]).toEqual(["x", true]);
        else expect([owner, members.includes("x")]).toEqual(["own", false]);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("decide, the table of rules (src/store/groups.ts)", () => {
  const base: GroupFacts = { group: { owner: "o", public: true }, actor: undefined, target: undefined, banned: false, invited: false, members: 3, now: NOW };
  const member = { role: "member" as const, muted: 0 };
  const admin = { role: "admin" as const, muted: 0 };
  const owner = { role: "owner" as const, muted: 0 };
  const cases: Array<[string, GroupOp, Partial<GroupFacts>, string]> = [
    ["create of a taken name", op("create", "g", "a"), {}, "conflict"],
    ["create of a free name", op("create", "g", "a"), { group: undefined }, "apply"],
    ["join of a missing group", op("join", "g", "a"), { group: undefined }, "not_found"],
    ["join of a public group", op("join", "g", "a"), {}, "apply"],
    ["join of a private group, uninvited", op("join", "g", "a"), { group: { owner: "o", public: false } }, "not_found"],
    ["join of a private group, invited", op("join", "g", "a"), { group: { owner: "o", public: false }, invited: true }, "apply"],
    ["join of a private group by its owner", op("join", "g", "o"), { group: { owner: "o", public: false } }, "apply"],
    ["join while banned", op("join", "g", "a"), { banned: true }, "forbidden"],
    ["join while a member", op("join", "g", "a"), { target: member }, "noop"],
    ["leave by the owner with others", op("leave", "g", "o"), { target: owner }, "forbidden"],
    ["leave by the owner, last", op("leave", "g", "o"), { target: owner, members: 1 }, "apply"],
    ["leave by a non-member", op("leave", "g", "a"), {}, "not_found"],
    ["kick by a member", op("kick", "g", "a", "b"), { actor: member, target: member }, "forbidden"],
    ["kick of a member by an admin", op("kick", "g", "a", "b"), { actor: admin, target: member }, "apply"],
    ["kick of an admin by an admin", op("kick", "g", "a", "b"), { actor: admin, target: admin }, "forbidden"],
    ["kick of an admin by the owner", op("kick", "g", "o", "b"), { actor: owner, target: admin }, "apply"],
    ["kick of oneself", op("kick", "g", "o", "o"), { actor: owner, target: owner }, "forbidden"],
    ["kick by a stranger of a private group", op("kick", "g", "a", "b"), { group: { owner: "o", public: false }, target: member }, "not_found"],
    ["ban of a non-member", op("ban", "g", "o", "b"), { actor: owner }, "apply"],
    ["ban of the banned non-member", op("ban", "g", "o", "b"), { actor: owner, banned: true }, "noop"],
    ["invite of a member", op("invite", "g", "o", "b"), { actor: owner, target: member }, "conflict"],
    ["invite of the banned", op("invite", "g", "o", "b"), { actor: owner, banned: true }, "forbidden"],
    ["mute of a non-member", op("mute", "g", "o", "b"), { actor: owner }, "not_found"],
    ["unmute of one whose mute ended", op("unmute", "g", "o", "b"), { actor: owner, target: { role: "member", muted: NOW - 1 } }, "noop"],
    ["role by an admin", op("role", "g", "a", "b", { role: "admin" }), { actor: admin, target: member }, "forbidden"],
    ["role of the owner", op("role", "g", "o", "o", { role: "member" }), { actor: owner, target: owner }, "forbidden"],
    ["role unchanged", op("role", "g", "o", "b", { role: "member" }), { actor: owner, target: member }, "noop"],
    ["transfer to a non-member", op("owner", "g", "o", "b"), { actor: owner }, "not_found"],
    ["transfer by an admin", op("owner", "g", "a", "b"), { actor: admin, target: member }, "forbidden"],
    ["settings by an admin", op("settings", "g", "a", "a", { settings: { topic: "x" } }), { actor: admin, target: admin }, "apply"],
    ["settings by a member", op("settings", "g", "a"), { actor: member, target: member }, "forbidden"],
    ["settings as they are", op("settings", "g", "o", "o", { settings: { public: true, topic: "t" } }), { actor: owner, target: owner, group: { owner: "o", public: true, topic: "t" } }, "noop"],
    ["settings, one of them new", op("settings", "g", "o", "o", { settings: { public: false, topic: "t" } }), { actor: owner, target: owner, group: { owner: "o", public: true, topic: "t" } }, "apply"],
  ];
  for (const [what, o, facts, want] of cases)
    test(what, () => {
      const d = decide(o, { ...base, ...facts });
      expect(typeof d === "string" ? (d as string) : d.code).toBe(want);
    });
});
