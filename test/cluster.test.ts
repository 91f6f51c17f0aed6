// Cluster mode end to end: real server processes sharing a real PostgreSQL over a real
// nats-server, all on loopback (test/helpers/cluster.ts). Clients on different nodes must
// see one server: delivery, presence, membership, revocation, and the ordering invariant
// (PROTOCOL.md §8) under a hammer of concurrent senders on every node.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { isGroupChange, TestClient } from "./helpers/client.ts";
import type { Msg } from "./helpers/wire.ts";

let cluster: Cluster;
const clients: TestClient[] = [];
let n = 0;
const uniq = (p: string) => `${p}${++n}`;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3 });
});

afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  await cluster?.stop();
});

async function connect(node: number): Promise<TestClient> {
  const c = await TestClient.connect(cluster.ports()[node]!);
  clients.push(c);
  return c;
}

/** Registers and logs in a fresh user on node `node`. */
async function user(node: number, prefix = "u"): Promise<TestClient> {
  const c = await connect(node);
  const name = uniq(prefix);
  await c.register(name);
  await c.login(name);
  return c;
}

/** Another device of `of`'s user, on node `node`, logged in by token. */
async function device(of: TestClient, node: number): Promise<TestClient> {
  const c = await connect(node);
  await c.ok({ t: "login", user: of.user, token: of.token });
  c.user = of.user;
  return c;
}

describe("two nodes behave as one server", () => {
  test("a group message and a DM reach every device of every recipient, on every node", async () => {
    const alice = await user(0, "alice");
    const bob = await user(1, "bob");
    const bob2 = await device(bob, 2);
    const alice2 = await device(alice, 1);
    const g = uniq("g");
    expect(await bob.request({ t: "join", group: g })).toMatchObject({ t: "error", code: "not_found" });
    await alice.ok({ t: "create", group: g });
    expect(await bob.ok({ t: "join", group: g })).toMatchObject({ group: g, owner: alice.user, topic: "", mid: expect.any(Number) });
    const sent = await alice.ok({ t: "send", group: g, text: "hello from node 0", cid: "c1" });
    for (const c of [bob, bob2, alice2]) {
      const m = await c.waitFor((x) => x.t === "msg" && x.mid === sent.mid);
      expect(m).toMatchObject({ from: alice.user, group: g, text: "hello from node 0", cid: "c1" });
    }
    const dm = await bob2.ok({ t: "send", user: alice.user, text: "dm from node 2" });
    for (const c of [alice, alice2, bob]) await c.waitFor((x) => x.t === "msg" && x.mid === dm.mid);
    // The sending connection gets no push of its own message.
    await Bun.sleep(100);
    expect(alice.pushes("msg").filter((m) => m.mid === sent.mid)).toHaveLength(0);
  });

  test("a retry with the same cid on another node is acknowledged with the original mid, stored once", async () => {
    const a = await user(0, "retry");
    const a2 = await device(a, 1);
    const first = await a.ok({ t: "send", user: a.user, text: "once", cid: "same" });
    const again = await a2.ok({ t: "send", user: a.user, text: "once", cid: "same" });
    expect(again.mid).toBe(first.mid);
    const s = await a2.ok({ t: "sync", after: first.mid - 1 });
    expect(s.msgs.filter((m: Msg) => m.cid === "same")).toHaveLength(1);
  });

  test("presence: a user online on one node shows online to co-members on another, and offline when the last device leaves", async () => {
    const watcher = await user(0, "watch");
    const g = uniq("pg");
    await watcher.ok({ t: "create", group: g });
    const carol = await user(1, "carol");
    await carol.ok({ t: "join", group: g });
    // Carol's presence crosses the bus on its own, beside the join: it arrives within moments.
    const onlineOf = async (u: string) =>
      ((await watcher.ok({ t: "members", group: g })).members as Msg[]).find((m) => m.user === u)?.online;
    const deadline = Date.now() + 5000;
    while ((await onlineOf(carol.user!)) !== true && Date.now() < deadline) await Bun.sleep(20);
    expect(await onlineOf(carol.user!)).toBe(true);
    const carol2 = await device(carol, 2);
    carol.close();
    await Bun.sleep(300);
    expect((await watcher.ok({ t: "members", group: g })).members).toContainEqual({ user: carol.user, online: true, role: "member" });
    const from = watcher.received.length;
    carol2.close();
    await watcher.waitFor((x) => x.t === "presence" && x.user === carol.user && x.online === false, 5000, from);
    expect((await watcher.ok({ t: "members", group: g })).members).toContainEqual({ user: carol.user, online: false, role: "member" });
  });

  test("membership changes reach every node at once: a member who joins on one node gets the next message sent on another", async () => {
    const owner = await user(0, "own");
    const g = uniq("mg");
    await owner.ok({ t: "create", group: g });
    const joiner = await user(1, "join");
    const joinerElsewhere = await device(joiner, 2);
    await joiner.ok({ t: "join", group: g });
    const sent = await owner.ok({ t: "send", group: g, text: "welcome" });
    await joiner.waitFor((x) => x.t === "msg" && x.mid === sent.mid);
    await joinerElsewhere.waitFor((x) => x.t === "msg" && x.mid === sent.mid);
    await joiner.ok({ t: "leave", group: g });
    const after = await owner.ok({ t: "send", group: g, text: "gone?" });
    const marker = await owner.ok({ t: "send", user: joiner.user, text: "marker" });
    await joinerElsewhere.waitFor((x) => x.t === "msg" && x.mid === marker.mid);
    expect(joinerElsewhere.pushes("msg").some((m) => m.mid === after.mid)).toBe(false);
  });

  test("a join acknowledged on one node holds at once on the others: a send from another device there, members there", async () => {
    for (let i = 0; i < 5; i++) {
      const owner = await user(2, "jo");
      const g = uniq("jg");
      await owner.ok({ t: "create", group: g });
      const u = await user(0, "jn");
      const elsewhere = await device(u, 1);
      await u.ok({ t: "join", group: g });
      // No wait: node 1 may not have applied the join yet; it catches up with the store instead of refusing.
      expect(await elsewhere.request({ t: "send", id: 50, group: g, text: "right away" })).toMatchObject({ t: "ok" });
      const m = await owner.ok({ t: "members", group: g });
      expect((m.members as Msg[]).map((x) => x.user)).toContain(u.user);
    }
  });

    test("passwd on one node closes the user's connections on the others with bye password_changed", async () => {
    const u = await user(0, "pw");
    const other = await device(u, 1);
    const third = await device(u, 2);
    expect(await u.ok({ t: "passwd", old: "password1", new: "password2" })).toHaveProperty("token");
    for (const c of [other, third]) {
      await c.waitFor((x) => x.t === "bye" && x.reason === "password_changed");
      await c.waitClosed();
    }
    // The old token is refused on every node.
    const late = await connect(2);
    expect(await late.request({ t: "login", id: 1, user: u.user, token: u.token })).toMatchObject({ t: "error", code: "unauthorized" });
  });

  test("the login reply's mid: sync from it misses nothing sent on any node after the login", async () => {
    const a = await user(0, "lm");
    const g = uniq("lg");
    await a.ok({ t: "create", group: g });
    const b = await user(1, "lm");
    await b.ok({ t: "join", group: g });
    const b2 = await connect(2);
    const reply = await b2.ok({ t: "login", user: b.user, token: b.token });
    const sent = await a.ok({ t: "send", group: g, text: "after login" });
    await b2.waitFor((x) => x.t === "msg" && x.mid === sent.mid);
    const s = await b2.ok({ t: "sync", after: reply.mid });
    expect(s.msgs.map((m: Msg) => m.mid)).toContain(sent.mid);
  });
});

describe("the ordering invariant across nodes", () => {
  test("3 nodes x 4 senders hammering shared groups: every client's pushes and sync match the store, no gap, no reordering", async () => {
    const groups = [uniq("h"), uniq("h")];
    const senders: TestClient[] = [];
    const readers: TestClient[] = [];
    for (let node = 0; node < 3; node++) {
      for (let i = 0; i < 4; i++) {
        const c = await user(node, "hs");
        for (const g of groups) await c.ok({ t: senders.length === 0 ? "create" : "join", group: g });
        senders.push(c);
      }
      const r = await user(node, "hr");
      for (const g of groups) await r.ok({ t: "join", group: g });
      readers.push(r);
    }
    const start = readers.map((r) => r.received.length);
    const PER = 60;
    const acked: number[] = [];
    await Promise.all(
      senders.map(async (c, k) => {
        for (let i = 0; i < PER; i++) {
          const r = await c.ok({ t: "send", group: groups[(i + k) % 2], text: `${c.user}:${i}`, cid: `${i}` });
          acked.push(r.mid);
        }
      }),
    );
    const total = senders.length * PER;
    expect(new Set(acked).size).toBe(total);
    // Every reader gets every message, live, once, in increasing mid order.
    for (let i = 0; i < readers.length; i++) {
      const r = readers[i]!;
      const deadline = Date.now() + 15000;
      // (the pushes of the last joins, from other nodes, may come after `start`: they are no messages)
      const got = () => r.received.slice(start[i]).filter((m) => m.t === "msg" && !isGroupChange(m) && groups.includes(m.group));
      while (got().length < total && Date.now() < deadline) await Bun.sleep(20);
      const mids = got().map((m) => m.mid as number);
      expect(mids.length).toBe(total);
      for (let j = 1; j < mids.length; j++) expect(mids[j]!).toBeGreaterThan(mids[j - 1]!);
      expect(new Set(mids)).toEqual(new Set(acked));
    }
    // Each reader's sync stream, paged from before the hammer, is the same list: the final table.
    const lo = Math.min(...acked) - 1;
    for (const r of readers) {
      const seen: number[] = [];
      let after = lo;
      for (;;) {
        const page = await r.ok({ t: "sync", after, limit: 100 });
        const ms = (page.msgs as Msg[]).filter((m) => groups.includes(m.group));
        seen.push(...ms.map((m) => m.mid as number));
        if (!page.more) break;
        after = (page.msgs as Msg[]).at(-1)!.mid;
      }
      expect(seen).toEqual([...acked].sort((a, b) => a - b));
    }
  }, 60000);
});
