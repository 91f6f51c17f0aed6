// `tcpchat admin` (issue #15) end to end: the real server process on a SQLite file, the real
// admin client (`bun run src/admin.ts`) over the server's Unix socket, and protocol clients
// watching what each command does to them: sessions, kick, ban (across a restart), unban,
// reset-password, delete-group, delete-user, export, and an online backup taken under load
// that restores into a server holding every message acknowledged before the backup began.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex, TestClient } from "./helpers/client.ts";
import { type RunningServer, startServer, TEST_ARGS, tempDir } from "./helpers/server.ts";

const ROOT = join(import.meta.dir, "..");
const tmp = tempDir();
const db = join(tmp.dir, "chat.db");
// No request rates: the backup test sends as fast as four connections can.
const args = ["--db", db, "--rate-msgs", "0", "--rate-msgs-addr", "0", "--rate-bytes", "0", "--rate-bytes-addr", "0", ...TEST_ARGS];
let server: RunningServer;
const clients: TestClient[] = [];

async function admin(...argv: string[]): Promise<{ code: number; out: string; err: string; json: any }> {
  const p = Bun.spawn([process.execPath, "run", join(ROOT, "src/admin.ts"), "--db", db, ...argv], {
    cwd: tmp.dir,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    json = undefined;
  }
  return { code, out, err, json };
}

async function connect(port = server.port): Promise<TestClient> {
  const c = await TestClient.connect(port);
  clients.push(c);
  return c;
}

async function user(name: string, pass = "password1"): Promise<TestClient> {
  const c = await connect();
  await c.register(name, pass);
  await c.login(name, pass);
  return c;
}

beforeAll(async () => {
  server = await startServer(args);
});

afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  if (server?.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

describe("tcpchat admin", () => {
  test("the socket sits beside the database, mode 0600; sessions lists this server's connections", async () => {
    const sock = `${db}.admin.sock`;
    expect(statSync(sock).isSocket()).toBe(true);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const a = await user("sam");
    const r = await admin("sessions");
    expect(r.code).toBe(0);
    const mine = (r.json as Array<Record<string, unknown>>).filter((s) => s.user === "sam");
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ transport: "tcp", addr: "127.0.0.1", behind: false });
    a.close();
  });

  test("unknown commands and users fail with exit 1 and the reason", async () => {
    const r = await admin("frobnicate");
    expect(r.code).toBe(1);
    expect(r.err).toContain('unknown command "frobnicate"');
    const b = await admin("ban", "nobody-here");
    expect(b.code).toBe(1);
    expect(b.err).toContain('no user "nobody-here"');
  });

  test("kick closes the user's connections with bye kicked; they may log in again", async () => {
    const k1 = await user("kate");
    const k2 = await connect();
    await k2.login("kate");
    const r = await admin("kick", "kate");
    expect(r.json).toEqual({ user: "kate", closed: 2 });
    for (const c of [k1, k2]) {
      expect((await c.waitFor((m) => m.t === "bye")).reason).toBe("kicked");
      await c.waitClosed();
    }
    const again = await connect();
    await again.login("kate");
  });

  test("ban closes the user with bye banned, refuses password and token logins, survives a restart; unban lifts it", async () => {
    const b = await user("ben");
    const token = b.token!;
    const r = await admin("ban", "ben", "spamming", "links");
    expect(r.json).toEqual({ user: "ben", banned: true, closed: 1 });
    expect((await b.waitFor((m) => m.t === "bye")).reason).toBe("banned");
    const c = await connect();
    const refused = await c.request({ t: "login", user: "ben", pass: "password1" });
    expect(refused).toMatchObject({ t: "error", code: "unauthorized" });
    expect(refused.msg).toContain("banned");
    expect((await c.request({ t: "login", user: "ben", token })).code).toBe("unauthorized");
    expect((await admin("bans")).json).toEqual([{ user: "ben", reason: "spamming links", at: expect.any(Number) }]);

    // Stored in the database: still banned after a restart.
    expect(await server.stop()).toBe(0);
    server = await startServer(args);
    const d = await connect();
    expect((await d.request({ t: "login", user: "ben", pass: "password1" })).code).toBe("unauthorized");
    expect((await admin("unban", "ben")).json).toEqual({ user: "ben", unbanned: true });
    await d.login("ben");
    expect((await admin("unban", "ben")).json).toEqual({ user: "ben", unbanned: false });
  });

  test("reset-password prints a new password once; the old one and every token stop working; sessions closed", async () => {
    const r1 = await user("rita", "old-password-1");
    const token = r1.token!;
    const r = await admin("reset-password", "rita");
    expect(r.code).toBe(0);
    const pass = r.json.password as string;
    expect(pass.length).toBeGreaterThanOrEqual(16);
    expect((await r1.waitFor((m) => m.t === "bye")).reason).toBe("password_changed");
    const c = await connect();
    expect((await c.request({ t: "login", user: "rita", pass: "old-password-1" })).code).toBe("unauthorized");
    expect((await c.request({ t: "login", user: "rita", token })).code).toBe("unauthorized");
    await c.login("rita", pass);
    expect(server.output()).not.toContain(pass);
  });

  test("delete-group removes every member and the group's messages; the name can be created again", async () => {
    const o = await user("owen");
    const m = await user("mia");
    await o.ok({ t: "create", group: "doomed" });
    await m.ok({ t: "join", group: "doomed" });
    await o.ok({ t: "send", group: "doomed", text: "one" });
    await m.ok({ t: "send", group: "doomed", text: "two" });
    const r = await admin("delete-group", "doomed");
    expect(r.json).toEqual({ group: "doomed", members: 2, messages: 4 }); // the entries of its log: its create, mia's join and the two messages
    expect((await m.request({ t: "send", group: "doomed", text: "x" })).code).toBe("not_found");
    expect((await o.request({ t: "history", group: "doomed" })).code).toBe("not_found");
    expect((await m.ok({ t: "groups" })).groups).toEqual([]);
    expect((await m.ok({ t: "sync", after: 0 })).msgs).toEqual([]);
    expect((await m.request({ t: "join", group: "doomed" })).code).toBe("not_found");
    const again = await m.ok({ t: "create", group: "doomed" });
    // a new group: its log is its create entry alone
    expect((await m.ok({ t: "history", group: "doomed" })).msgs).toEqual([{ mid: again.mid, ts: again.ts, from: "mia", group: "doomed", kind: "create", target: "mia" }]);
  });

  test("export gives the user's groups and every message sent by or directly to them, files as base64", async () => {
    const e = await user("eve");
    const f = await user("finn");
    await e.ok({ t: "create", group: "club" });
    await f.ok({ t: "join", group: "club" });
    await f.ok({ t: "send", group: "club", text: "not eve's" });
    await e.ok({ t: "send", group: "club", text: "hello club" });
    await f.ok({ t: "send", user: "eve", text: "to eve" });
    await e.sendFile({ user: "finn" }, "a.bin", "application/octet-stream", new Uint8Array([1, 2, 3]));
    const r = await admin("export", "eve");
    expect(r.code).toBe(0);
    expect(r.json.user).toBe("eve");
    expect(r.json.banned).toBe(false);
    expect(r.json.groups).toEqual([{ group: "club", owner: "eve" }]);
    const msgs = r.json.messages as Array<Record<string, any>>;
    // eve's entries: the club's create (hers), then the messages
    expect(msgs.map((x) => x.kind ?? x.text ?? x.file?.name)).toEqual(["create", "hello club", "to eve", "a.bin"]);
    expect(msgs[0]).toMatchObject({ from: "eve", group: "club", kind: "create" });
    expect(msgs[1]).toMatchObject({ from: "eve", group: "club" });
    expect(msgs[2]).toMatchObject({ from: "finn", to: "eve" });
    expect(msgs[3]!.file).toEqual({ name: "a.bin", type: "application/octet-stream", size: 3, sha256: sha256Hex(new Uint8Array([1, 2, 3])), base64: "AQID" });
  });

  test("delete-user erases the account: closed, logins refused, name taken, its messages gone, DMs to it not_found", async () => {
    const d = await user("dora");
    const g = await user("gus");
    await d.ok({ t: "create", group: "pair" });
    await g.ok({ t: "join", group: "pair" });
    await d.ok({ t: "send", group: "pair", text: "dora's group text" });
    await g.ok({ t: "send", group: "pair", text: "gus's group text" });
    await d.ok({ t: "send", user: "gus", text: "dora's dm" });
    await g.ok({ t: "send", user: "dora", text: "gus's dm" });
    const r = await admin("delete-user", "dora");
    expect(r.json).toEqual({ user: "dora", deleted: true, closed: 1, groups: 1, messages: 3 }); // the group's create entry and her two messages
    expect((await d.waitFor((m) => m.t === "bye")).reason).toBe("banned");
    const c = await connect();
    expect((await c.request({ t: "login", user: "dora", pass: "password1" })).code).toBe("unauthorized");
    expect((await c.request({ t: "register", user: "dora", pass: "password1" })).code).toBe("conflict");
    // dora's entries are gone, her create of the group too; gus's join stays
    expect((await g.ok({ t: "history", group: "pair" })).msgs.map((m: any) => m.kind ?? m.text)).toEqual(["join", "gus's group text"]);
    // The direct conversation: what gus sent stays his (sync has it); history with a user that is gone is not_found.
    const texts = (await g.ok({ t: "sync", after: 0 })).msgs.map((m: any) => m.text);
    expect(texts).toContain("gus's dm");
    expect(texts).not.toContain("dora's dm");
    expect(texts).not.toContain("dora's group text");
    expect((await g.request({ t: "history", user: "dora" })).code).toBe("not_found");
    expect((await g.ok({ t: "members", group: "pair" })).members.map((m: any) => m.user)).toEqual(["gus"]);
    expect((await g.request({ t: "send", user: "dora", text: "hello?" })).code).toBe("not_found");
    expect((await admin("export", "dora")).code).toBe(1);
  });

  test("backup under load restores into a server holding every message acknowledged before the backup began", async () => {
    const senders: TestClient[] = [];
    for (let i = 0; i < 4; i++) senders.push(await user(`load${i}`));
    for (const s of senders) await s.ok({ t: s === senders[0] ? "create" : "join", group: "load" });
    const acked: Array<{ mid: number; at: number }> = [];
    let running = true;
    const loops = senders.map(async (s, i) => {
      for (let n = 0; running; n++) {
        const file = n % 10 === 0 ? { upload: await s.upload(new Uint8Array(20_000).fill(n % 251)), name: "f", type: "" } : undefined;
        const r = await s.ok({ t: "send", group: "load", text: `m${i}-${n}`, cid: `c${i}-${n}`, file });
        acked.push({ mid: r.mid, at: performance.now() });
      }
    });
    await Bun.sleep(700);
    const started = performance.now();
    const before = acked.filter((a) => a.at < started).map((a) => a.mid);
    const copy = join(tmp.dir, "backup.db");
    const r = await admin("backup", "backup.db"); // relative: resolved in the admin's directory
    expect(r.code).toBe(0);
    expect(r.json.file).toBe(copy);
    await Bun.sleep(300);
    running = false;
    await Promise.all(loops);
    const during = acked.filter((a) => a.at >= started).length;
    console.log(`backup: ${before.length} acked before, ${during} during and after; ${r.json.bytes} bytes in ${r.json.ms} ms`);
    expect(before.length).toBeGreaterThan(50);
    expect(during).toBeGreaterThan(0); // the server kept serving
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    expect((await admin("backup", copy)).err).toContain("exists already");

    // Restore: a second server started on the copy.
    const restored = await startServer(["--db", copy, ...TEST_ARGS]);
    try {
      const c = await TestClient.connect(restored.port);
      clients.push(c);
      await c.login("load0");
      const got = new Set<number>();
      for (let after = 0; ; ) {
        const page = await c.ok({ t: "history", group: "load", after, limit: 500 });
        for (const m of page.msgs) got.add(m.mid);
        if (!page.more) break;
        after = page.msgs.at(-1).mid;
      }
      const missing = before.filter((m) => !got.has(m));
      expect(missing).toEqual([]);
      expect(existsSync(`${copy}.admin.sock`)).toBe(true);
    } finally {
      await restored.stop();
    }
  }, 60_000);

  test("purge without --retain-days is refused", async () => {
    const r = await admin("purge");
    expect(r.code).toBe(1);
    expect(r.err).toContain("retention is off");
  });

  test("the log has an admin event per command, and the socket is removed at stop", async () => {
    const lines = server.output().trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const cmds = lines.filter((l) => l.event === "admin").map((l) => l.cmd);
    for (const c of ["unban", "reset-password", "delete-group", "export", "delete-user", "backup"]) expect(cmds).toContain(c);
    expect(await server.stop()).toBe(0);
    expect(existsSync(`${db}.admin.sock`)).toBe(false);
  });
});
