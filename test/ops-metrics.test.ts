// Operations (issue #15), against the real server process: /metrics before and after known
// traffic (each counter moved by what the traffic should have made it move), /healthz,
// /readyz, and the log: every line JSON, the events of that traffic present, and none of
// the passwords, tokens or message texts used anywhere in it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseMetrics } from "../src/ops/registry.ts";
import { TestClient } from "./helpers/client.ts";
import { httpBase, type RunningServer, startServer, TEST_ARGS, tempDir } from "./helpers/server.ts";

const tmp = tempDir();
let server: RunningServer;
let base: string;
const clients: TestClient[] = [];

async function scrape(): Promise<Map<string, number>> {
  const r = await fetch(`${base}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toContain("text/plain");
  return parseMetrics(await r.text());
}

function delta(a: Map<string, number>, b: Map<string, number>, key: string): number {
  if (!b.has(key)) throw new Error(`no sample ${key} in the second scrape`);
  return b.get(key)! - (a.get(key) ?? 0);
}

async function connect(): Promise<TestClient> {
  const c = await TestClient.connect(server.port);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startServer(["--db", join(tmp.dir, "chat.db"), ...TEST_ARGS]);
  base = httpBase(server.output());
});

afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  await server?.stop();
  tmp.cleanup();
});

const SECRET_PASS = "hunter2-secret-pass";
const SECRET_TEXT = "the launch code is 0000-SECRET-TEXT";

describe("operations: metrics, health, logs", () => {
  test("/healthz and /readyz answer 200 on a working server", async () => {
    const h = await fetch(`${base}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.text()).toBe("ok\n");
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("ready\n");
  });

  test("counters move by what the traffic did", async () => {
    const before = await scrape();
    // Three TCP connections; alice has two devices, bob one; group "ops" of alice and bob.
    const a1 = await connect();
    const a2 = await connect();
    const b = await connect();
    await a1.register("alice", SECRET_PASS);
    await b.register("bob", SECRET_PASS);
    await a1.login("alice", SECRET_PASS);
    await a2.login("alice", SECRET_PASS);
    await b.login("bob", SECRET_PASS);
    await a1.ok({ t: "create", group: "ops" });
    await b.ok({ t: "join", group: "ops" });
    const mid = await scrape();
    expect(delta(before, mid, 'tcpchat_connections{transport="tcp"}')).toBe(3);
    expect(delta(before, mid, 'tcpchat_sessions{transport="tcp"}')).toBe(3);
    expect(delta(before, mid, 'tcpchat_connections_opened_total{transport="tcp"}')).toBe(3);
    expect(delta(before, mid, "tcpchat_logins_total")).toBe(3);

    // 5 group messages from alice's first device: each reaches a2 and b (2 deliveries).
    for (let i = 0; i < 5; i++) await a1.ok({ t: "send", group: "ops", text: `${SECRET_TEXT} ${i}`, cid: `g${i}` });
    // 3 direct messages alice -> bob from a2: each reaches b and a1 (2 deliveries).
    for (let i = 0; i < 3; i++) await a2.ok({ t: "send", user: "bob", text: `${SECRET_TEXT} dm ${i}` });
    // A repeated cid: answered, nothing stored, nothing delivered.
    await a1.ok({ t: "send", group: "ops", text: "again", cid: "g0" });
    await b.waitFor((m) => m.t === "msg" && m.text === `${SECRET_TEXT} dm 2`);
    await a1.waitFor((m) => m.t === "msg" && m.text === `${SECRET_TEXT} dm 2`);
    // Two errors: a request of no known type, and a group b is not in.
    expect((await b.request({ t: "nope" })).code).toBe("unknown_type");
    expect((await b.request({ t: "send", group: "elsewhere", text: "x" })).code).toBe("not_found");
    // One failed login (wrong password) on a fourth connection, which then closes.
    const bad = await connect();
    expect((await bad.request({ t: "login", user: "alice", pass: "wrong-password" })).code).toBe("unauthorized");
    bad.close();
    await Bun.sleep(100);
    const after = await scrape();

    expect(delta(mid, after, 'tcpchat_messages_committed_total{kind="group"}')).toBe(5);
    expect(delta(mid, after, 'tcpchat_messages_committed_total{kind="direct"}')).toBe(3);
    expect(delta(mid, after, "tcpchat_messages_duplicate_total")).toBe(1);
    expect(delta(mid, after, "tcpchat_deliveries_total")).toBe(5 * 2 + 3 * 2);
    // One batch per send (each waited for its ack): 9 batches, 9 messages in all.
    expect(delta(mid, after, "tcpchat_commit_batch_size_count")).toBe(9);
    expect(delta(mid, after, "tcpchat_commit_batch_size_sum")).toBe(9);
    expect(delta(mid, after, "tcpchat_commit_duration_seconds_count")).toBe(9);
    // Every send has its send-to-ack time, the repeated cid too.
    expect(delta(mid, after, "tcpchat_send_ack_seconds_count")).toBe(9);
    expect(delta(mid, after, "tcpchat_send_ack_seconds_sum")).toBeGreaterThan(0);
    expect(delta(mid, after, 'tcpchat_errors_total{code="unknown_type"}')).toBe(1);
    expect(delta(mid, after, 'tcpchat_errors_total{code="not_found"}')).toBe(1);
    expect(delta(mid, after, 'tcpchat_errors_total{code="unauthorized"}')).toBe(1);
    expect(delta(mid, after, "tcpchat_login_failures_total")).toBe(1);
    expect(delta(mid, after, 'tcpchat_connections_opened_total{transport="tcp"}')).toBe(1);
    expect(delta(mid, after, 'tcpchat_connections_closed_total{reason="client"}')).toBe(1);
    expect(delta(mid, after, 'tcpchat_connections{transport="tcp"}')).toBe(0);
    // Bytes: at least the texts sent, and the pushes of them.
    expect(delta(mid, after, "tcpchat_received_bytes_total")).toBeGreaterThan(8 * SECRET_TEXT.length);
    expect(delta(mid, after, "tcpchat_sent_bytes_total")).toBeGreaterThan(16 * SECRET_TEXT.length);
    // The process and the store.
    expect(after.get("process_resident_memory_bytes")!).toBeGreaterThan(10 * 1024 * 1024);
    expect(after.get("tcpchat_db_size_bytes")!).toBeGreaterThan(0);
    expect(after.has("tcpchat_db_wal_size_bytes")).toBe(true);
    expect(after.get('tcpchat_event_loop_delay_seconds_bucket{le="+Inf"}')!).toBeGreaterThan(0);
    expect(after.get("tcpchat_sessions_behind")).toBe(0);
  });

  test("every log line is JSON (stdout is not a terminal); the events are there; no password, token or text", async () => {
    const c = await connect();
    const r = await c.login("alice", SECRET_PASS);
    const tokens = clients.map((x) => x.token).filter((t): t is string => t !== undefined);
    tokens.push(r.token as string);
    c.close();
    await Bun.sleep(200);
    const lines = server.output().trim().split("\n");
    const events = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${l}`);
      }
    });
    for (const e of events) {
      expect(typeof e.ts).toBe("string");
      expect(["debug", "info", "warn", "error"]).toContain(e.level as string);
      expect(typeof e.event).toBe("string");
    }
    const names = events.map((e) => e.event);
    for (const n of ["listening", "web", "conn.open", "conn.close", "login.ok", "login.fail", "user.registered", "group.created"])
      expect(names).toContain(n);
    const fail = events.find((e) => e.event === "login.fail")!;
    expect(fail).toMatchObject({ user: "alice", code: "unauthorized", method: "password", addr: "127.0.0.1" });
    const created = events.find((e) => e.event === "group.created")!;
    expect(created).toMatchObject({ user: "alice", group: "ops" });
    const out = server.output();
    expect(out).not.toContain(SECRET_PASS);
    expect(out).not.toContain("wrong-password");
    expect(out).not.toContain("SECRET-TEXT");
    expect(tokens.length).toBeGreaterThan(3);
    for (const t of tokens) expect(out).not.toContain(t);
  });

  test("--log-level warn drops info events; --log-format pretty writes key=value lines", async () => {
    const t2 = tempDir();
    const s = await startServer(["--db", join(t2.dir, "c.db"), "--log-format", "pretty", "--log-level", "warn", ...TEST_ARGS]).catch(
      (e) => {
        t2.cleanup();
        throw e;
      },
    );
    try {
      const c = await TestClient.connect(s.port);
      await c.register("carol", SECRET_PASS);
      expect((await c.request({ t: "login", user: "carol", pass: "not-it-at-all" })).code).toBe("unauthorized");
      c.close();
      await Bun.sleep(100);
      const out = s.output();
      // The start lines are written whatever the level (startServer read the port from one).
      expect(out).toMatch(/ INFO  listening .*tcpchat listening on /);
      expect(out).toMatch(/ WARN  login\.fail .*user=carol .*code=unauthorized/);
      expect(out).not.toContain("conn.open");
      expect(out).not.toContain("not-it-at-all");
    } finally {
      await s.stop();
      t2.cleanup();
    }
  });
});
