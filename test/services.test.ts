// The real-service helpers (test/helpers/services.ts) work: a nats-server and a PostgreSQL server start
// on loopback, carry traffic, survive kill -9 and restart, and are gone after stop().
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { existsSync } from "node:fs";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startNats, startPostgres, type NatsServer, type PostgresServer } from "./helpers/services.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe("nats-server", () => {
  let nats: NatsServer;
  let nc: NatsConnection | undefined;
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  test("publish/subscribe round trip, a 4 MiB payload, kill -9, restart on the same port, reconnect", async () => {
    expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
    expect(nats.pid).toBeGreaterThan(0);
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const got: Uint8Array[] = [];
    const sub = nc.subscribe("t.echo", {
      callback: (_err, m) => {
        got.push(m.data);
      },
    });
    await nc.flush();

    // Above the server's default max_payload of 1 MiB: the helper's config raised it.
    const big = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    nc.publish("t.echo", new Uint8Array([1, 2, 3]));
    nc.publish("t.echo", big);
    await until(() => got.length === 2, 5000, "two messages");
    expect([...got[0]!]).toEqual([1, 2, 3]);
    expect(Buffer.compare(got[1]!, big)).toBe(0);

    const reconnected = (async () => {
      for await (const s of nc!.status()) if (s.type === "reconnect") return;
    })();
    const oldPid = nats.pid;
    await nats.kill();
    expect(nats.running).toBe(false);
    expect(nats.pid).toBe(0);
    await nats.start();
    expect(nats.pid).toBeGreaterThan(0);
    expect(nats.pid).not.toBe(oldPid);
    await reconnected;

    // The subscription came back by itself on the restarted server.
    await until(() => {
      nc!.publish("t.echo", new Uint8Array([9]));
      return got.some((d) => d.length === 1 && d[0] === 9);
    }, 5000, "a message after the reconnect");
    sub.unsubscribe();
  });

  test("stop() ends the process and removes the directory; stop() twice is harmless", async () => {
    const n = await startNats({ jetstream: false });
    const pid = n.pid;
    expect(alive(pid)).toBe(true);
    await n.stop();
    await n.stop();
    await until(() => !alive(pid), 2000, "the nats-server to be reaped");
    expect(existsSync(n.dir)).toBe(false);
  });
});

describe("postgres", () => {
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  test("query, fsync on, kill -9, restart on the same port and data, query again", async () => {
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/test`);
    const sql = new SQL(pg.url);
    try {
      const [row] = await sql`select current_database() as db, current_setting('fsync') as fsync, 1 + 1 as two`;
      expect(row).toEqual({ db: "test", fsync: "on", two: 2 });
      await sql`create table t (id int primary key, v text)`;
      await sql`insert into t values (1, 'committed before the crash')`;

      await pg.kill();
      expect(pg.running).toBe(false);
      await pg.start();
      expect(pg.running).toBe(true);
      // The first query on a pool after a restart may fail (docs/CLUSTER.md, drivers): retry once.
      const q = () => sql`select v from t where id = 1`;
      const rows = await q().catch(() => q());
      expect(rows[0]?.v).toBe("committed before the crash");

      await pg.restart(); // graceful this time
      const again = await q().catch(() => q());
      expect(again[0]?.v).toBe("committed before the crash");
    } finally {
      await sql.close();
    }
  });

  test("createDatabase gives each caller an empty database on the same server", async () => {
    const a = await pg.createDatabase();
    const b = await pg.createDatabase("named_one");
    expect(b).toBe(`postgres://postgres@127.0.0.1:${pg.port}/named_one`);
    expect(a).not.toBe(b);
    for (const url of [a, b]) {
      const sql = new SQL(url);
      try {
        const [{ n }] = await sql`select count(*)::int as n from pg_tables where schemaname = 'public'`;
        expect(n).toBe(0);
      } finally {
        await sql.close();
      }
    }
  });

  test("stop() ends the postmaster and removes the directory", async () => {
    const p = await startPostgres({ database: "other" });
    const pid = p.pid;
    expect(pid).toBeGreaterThan(0);
    await p.stop();
    await p.stop();
    expect(p.running).toBe(false);
    expect(existsSync(p.dir)).toBe(false);
  });
});
