// Operations in a cluster (issue #15): two nodes on one PostgreSQL and one NATS, and a third
// with an admin socket (a Postgres store has no default one). /readyz needs the store and the
// bus; /metrics counts the bus; a ban made through one node closes the user's connection on
// another and every node refuses the login; backup is refused with a pointer to pg_dump.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { adminRequest } from "../src/admin.ts";
import { parseMetrics } from "../src/ops/registry.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { TestClient } from "./helpers/client.ts";
import { httpBase, type RunningServer, startServer, TEST_ARGS, tempDir } from "./helpers/server.ts";

let cluster: Cluster;
let third: RunningServer;
const tmp = tempDir();
const sock = join(tmp.dir, "node3.sock");
const clients: TestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 2 });
  third = await startServer(["--db", cluster.db, "--bus", cluster.nats.url, "--admin-socket", sock, ...TEST_ARGS]);
}, 60_000);

afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  await third?.stop();
  await cluster?.stop();
  tmp.cleanup();
});

async function connect(port: number): Promise<TestClient> {
  const c = await TestClient.connect(port);
  clients.push(c);
  return c;
}

describe("operations in a cluster", () => {
  test("/readyz is ready with the store and the bus; /metrics counts the bus and the Postgres size", async () => {
    for (const out of [cluster.nodes[0]!.output(), third.output()]) {
      const r = await fetch(`${httpBase(out)}/readyz`);
      expect(r.status).toBe(200);
    }
    const m0 = parseMetrics(await (await fetch(`${httpBase(third.output())}/metrics`)).text());
    expect(m0.get("tcpchat_bus_connected")).toBe(1);
    expect(m0.get("tcpchat_db_size_bytes")!).toBeGreaterThan(1_000_000);
    const a = await connect(cluster.ports()[0]!);
    await a.register("ann");
    await a.login("ann");
    await a.ok({ t: "create", group: "c" });
    for (let i = 0; i < 5; i++) await a.ok({ t: "send", group: "c", text: `x${i}` });
    await Bun.sleep(300);
    const m1 = parseMetrics(await (await fetch(`${httpBase(third.output())}/metrics`)).text());
    // The third node heard node 0's create and five commits (and beats, presence).
    expect(m1.get("tcpchat_bus_received_total")! - m0.get("tcpchat_bus_received_total")!).toBeGreaterThanOrEqual(6);
    const n0 = parseMetrics(await (await fetch(`${httpBase(cluster.nodes[0]!.output())}/metrics`)).text());
    expect(n0.get('tcpchat_messages_committed_total{kind="group"}')).toBe(5);
    expect(n0.get("tcpchat_bus_published_total")!).toBeGreaterThanOrEqual(6);
  });

  test("a ban through one node closes the user on another; every node refuses the login", async () => {
    const b = await connect(cluster.ports()[1]!);
    await b.register("bert");
    await b.login("bert");
    const r = await adminRequest(sock, "ban", ["bert", "abuse"]);
    expect(r).toEqual({ ok: true, result: { user: "bert", banned: true, closed: 0 } });
    expect((await b.waitFor((m) => m.t === "bye")).reason).toBe("banned");
    for (const port of [...cluster.ports(), third.port]) {
      const c = await connect(port);
      expect((await c.request({ t: "login", user: "bert", pass: "password1" })).code).toBe("unauthorized");
    }
    expect((await adminRequest(sock, "unban", ["bert"])).ok).toBe(true);
    const again = await connect(cluster.ports()[0]!);
    await again.login("bert");
  });

  test("/readyz is 503 while NATS is down, and ready again once it is back", async () => {
    const url = `${httpBase(third.output())}/readyz`;
    const until = async (status: number) => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const r = await fetch(url);
        const text = await r.text();
        if (r.status === status) return text;
        if (Date.now() > deadline) throw new Error(`/readyz stayed ${r.status}: ${text}`);
        await Bun.sleep(50);
      }
    };
    await cluster.nats.kill();
    expect(await until(503)).toContain("not connected to the bus");
    await cluster.nats.start();
    expect(await until(200)).toBe("ready\n");
  }, 40_000);

  test("backup on Postgres is refused, pointing at pg_dump", async () => {
    const r = await adminRequest(sock, "backup", [join(tmp.dir, "x.db")]);
    expect(r.ok).toBe(false);
    expect(r.error).toContain("pg_dump");
  });
});
