// Cluster faults under load, with real parts only: server processes on a real PostgreSQL
// and a real nats-server (test/helpers/cluster.ts), and the project's client library with
// every node's address. Each test checks, at the end, every client against the store:
// every acknowledged message stored once, and every client has seen every message of
// the group exactly once (its own by their acks, the others' as `msg` events).
import { afterAll, describe, expect, test } from "bun:test";
import { ChatClient, type ChatMessage } from "../src/client/index.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { TestClient } from "./helpers/client.ts";
import type { Msg } from "./helpers/wire.ts";

const PASS = "password1";
const clusters: Cluster[] = [];
const clients: ChatClient[] = [];

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const c of clusters) await c.stop();
});

async function until(cond: () => boolean, what: string, ms = 30000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

interface Member {
  name: string;
  client: ChatClient;
  /** msg events, in order. */
  got: ChatMessage[];
  /** Acknowledged sends: mid by cid. */
  acked: Map<string, number>;
}

/** `count` users, each on a client whose server list starts at node i % nodes, all in group `g`. */
async function members(cluster: Cluster, g: string, count: number, prefix: string): Promise<Member[]> {
  const ports = cluster.ports();
  const out: Member[] = [];
  for (let i = 0; i < count; i++) {
    const order = ports.map((_, k) => ports[(i + k) % ports.length]!);
    const client = await ChatClient.connect({
      servers: order.map((port) => ({ host: "127.0.0.1", port })),
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      requestTimeoutMs: 20000,
      pace: false,
    });
    clients.push(client);
    const name = `${prefix}${i}`;
    await client.register(name, PASS);
    await client.login(name, { pass: PASS });
    if (i === 0) await client.createGroup(g);
    else await client.join(g);
    const m: Member = { name, client, got: [], acked: new Map() };
    client.on("msg", (msg) => void m.got.push(msg));
    out.push(m);
  }
  return out;
}

/** Each member sends `per` messages to `g`, one after another (a send waits through reconnects). */
function sendLoad(ms: Member[], g: string, per: number, onProgress?: () => void): Promise<void[]> {
  return Promise.all(
    ms.map(async (m) => {
      for (let i = 0; i < per; i++) {
        const cid = `${m.name}-${i}`;
        const r = await m.client.send({ group: g, text: `${m.name} #${i}`, cid });
        m.acked.set(cid, r.mid);
        onProgress?.();
      }
    }),
  );
}

/** The group's whole history, read from node `node` by a fresh connection. */
async function storedGroup(cluster: Cluster, node: number, g: string, reader: Member): Promise<Msg[]> {
  const c = await TestClient.connect(cluster.ports()[node]!);
  try {
    await c.ok({ t: "login", user: reader.name, token: reader.client.token });
    const all: Msg[] = [];
    let after = 0;
    for (;;) {
      const page = await c.ok({ t: "history", group: g, after, limit: 500 });
      all.push(...(page.msgs as Msg[]));
      if (!page.more) break;
      after = (page.msgs as Msg[]).at(-1)!.mid;
    }
    return all;
  } finally {
    c.close();
  }
}

/** Nothing lost, nothing twice, in order, for every member, against the store. */
async function check(cluster: Cluster, node: number, g: string, ms: Member[], per: number): Promise<void> {
  const log = await storedGroup(cluster, node, g, ms[0]!);
  // The group's own entries first: the first member's create, the others' joins; then the messages.
  const changes = log.filter((m) => m.kind !== undefined);
  expect(changes.map((m) => [m.kind, m.from])).toEqual(ms.map((m, i) => [i === 0 ? "create" : "join", m.name]));
  const stored = log.filter((m) => m.kind === undefined);
  expect(log.slice(0, changes.length)).toEqual(changes);
  const cids = stored.map((m) => m.cid as string);
  expect(new Set(cids).size).toBe(cids.length); // stored once
  expect(stored.length).toBe(ms.length * per);
  const byCid = new Map(stored.map((m) => [m.cid as string, m.mid as number]));
  for (const m of ms) for (const [cid, mid] of m.acked) expect(byCid.get(cid)).toBe(mid); // every ack is stored
  const all = stored.map((m) => m.mid as number);
  for (const m of ms) {
    const own = new Set(m.acked.values());
    const others = all.filter((mid) => !own.has(mid));
    await until(() => m.got.length >= others.length, `${m.name} to get ${others.length} messages (has ${m.got.length})`);
    await Bun.sleep(50);
    expect(m.got.map((x) => x.mid)).toEqual(others); // exactly once, in mid order
  }
}

describe("cluster faults", () => {
  test("kill -9 of one node under load: its clients move to another node; 0 acknowledged lost, 0 duplicated, nothing missing", async () => {
    const cluster = await startCluster({ nodes: 2 });
    clusters.push(cluster);
    const g = "killg";
    const ms = await members(cluster, g, 6, "k");
    const PER = 80;
    let sent = 0;
    const load = sendLoad(ms, g, PER, () => sent++);
    await until(() => sent >= 120, "the load to get going");
    await cluster.kill(0);
    await load;
    // Those that were on node 0 are on node 1 now.
    for (const m of ms) expect(m.client.server?.port).toBe(cluster.ports()[1]);
    await check(cluster, 1, g, ms, PER);
  }, 90000);

  test("NATS restarts under load: nothing lost once it is back, and delivery resumes by itself", async () => {
    const cluster = await startCluster({ nodes: 2 });
    clusters.push(cluster);
    const g = "natsg";
    const ms = await members(cluster, g, 6, "n");
    const PER = 80;
    let sent = 0;
    const load = sendLoad(ms, g, PER, () => sent++);
    await until(() => sent >= 100, "the load to get going");
    await cluster.nats.kill();
    const during = sent;
    await Bun.sleep(1000);
    await cluster.nats.start();
    await load;
    expect(sent).toBe(ms.length * PER);
    expect(during).toBeLessThan(ms.length * PER); // the outage fell inside the load
    await check(cluster, 0, g, ms, PER);
    // Live delivery across nodes works again (not only replay): a message from node 0 to node 1.
    const a = ms.find((m) => m.client.server?.port === cluster.ports()[0])!;
    const b = ms.find((m) => m.client.server?.port === cluster.ports()[1])!;
    const before = b.got.length;
    const r = await a.client.send({ group: g, text: "after the outage" });
    await until(() => b.got.length > before, "a live push after the outage", 10000);
    expect(b.got.at(-1)!.mid).toBe(r.mid);
  }, 90000);

  test("Postgres unavailable: sends are refused with 'unavailable', nothing unstored is acknowledged, the node recovers by itself", async () => {
    const cluster = await startCluster({ nodes: 2 });
    clusters.push(cluster);
    const c = await TestClient.connect(cluster.ports()[0]!);
    const r = await TestClient.connect(cluster.ports()[1]!);
    try {
      await c.register("pgdown");
      await c.login("pgdown");
      await c.ok({ t: "create", group: "pgg" });
      await r.register("pgreader");
      await r.login("pgreader");
      await r.ok({ t: "join", group: "pgg" });
      const before = await c.ok({ t: "send", group: "pgg", text: "before", cid: "b" });
      await cluster.pg.kill();
      const acked: number[] = [];
      const refused: string[] = [];
      for (let i = 0; i < 5; i++) {
        const reply = await c.request({ t: "send", id: 100 + i, group: "pgg", text: `during ${i}`, cid: `d${i}` });
        if (reply.t === "ok") acked.push(reply.mid);
        else {
          expect(reply.code).toBe("unavailable");
          refused.push(`d${i}`);
        }
      }
      expect(refused.length).toBe(5); // the database is down: nothing can be stored, so nothing is acknowledged
      await cluster.pg.start();
      // The node reconnects by itself: a retry with the same cid is stored, once.
      let ok: Msg | undefined;
      const deadline = Date.now() + 30000;
      while (!ok && Date.now() < deadline) {
        const reply = await c.request({ t: "send", id: 200, group: "pgg", text: "during 0", cid: "d0" });
        if (reply.t === "ok") ok = reply;
        else await Bun.sleep(200);
      }
      expect(ok).toBeDefined();
      expect(ok!.mid).toBeGreaterThan(before.mid);
      await r.waitFor((m) => m.t === "msg" && m.mid === ok!.mid, 10000);
      const h = await r.ok({ t: "history", group: "pgg" });
      expect((h.msgs as Msg[]).map((m) => m.kind ?? m.cid)).toEqual(["create", "join", "b", "d0"]);
    } finally {
      c.close();
      r.close();
    }
  }, 90000);
});
