// The single executable, for real: built by the build script, copied to an empty
// directory, run there on a fresh database, stopped with SIGTERM, run again.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { TestClient } from "./helpers/client.ts";
import { TEST_ARGS, startServer, tempDir } from "./helpers/server.ts";
import { startNats, startPostgres } from "./helpers/services.ts";

const ROOT = join(import.meta.dir, "..");
const build = tempDir("tcpchat-build-");
const run = tempDir("tcpchat-run-");
const exe = join(run.dir, "tcpchat");

beforeAll(() => {
  const r = Bun.spawnSync([process.execPath, "run", join(ROOT, "scripts/build.ts"), "--outdir", build.dir], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  copyFileSync(join(build.dir, "tcpchat-linux-x64"), exe);
  Bun.spawnSync(["chmod", "+x", exe]);
}, 120_000);

afterAll(() => {
  build.cleanup();
  run.cleanup();
});

test("--version prints package.json's version and the commit", () => {
  const r = Bun.spawnSync([exe, "--version"], { cwd: run.dir });
  expect(r.exitCode).toBe(0);
  const commit = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT }).stdout.toString().trim();
  expect(r.stdout.toString()).toContain(`tcpchat ${pkg.version} (commit ${commit}`);
});

test("--help and serve --help describe the commands and options", () => {
  const h = Bun.spawnSync([exe, "--help"], { cwd: run.dir }).stdout.toString();
  expect(h).toContain("serve");
  const s = Bun.spawnSync([exe, "serve", "--help"], { cwd: run.dir }).stdout.toString();
  expect(s).toContain("--max-frame");
  const bad = Bun.spawnSync([exe, "frobnicate"], { cwd: run.dir });
  expect(bad.exitCode).toBe(2);
});

test("runs from an empty directory on a new database, stops on SIGTERM, and keeps everything on restart", async () => {
  const args = ["--db", "chat.db", ...TEST_ARGS]; // relative: inside the run directory
  let server = await startServer(args, [exe, "serve"], run.dir);
  const a = await TestClient.connect(server.port);
  const b = await TestClient.connect(server.port);
  await a.register("alice");
  await a.login("alice");
  await b.register("bob");
  await b.login("bob");
  await a.ok({ t: "create", group: "ops" });
  await b.ok({ t: "join", group: "ops" });
  const sent = await a.ok({ t: "send", group: "ops", text: "from the binary", cid: "b1" });
  const got = await b.nextMsg();
  // The web app is embedded: served from the empty directory, with its policy.
  const web = server.output().match(/web app at (http:\/\/[^\s"]+)/);
  expect(web).not.toBeNull();
  const page = await fetch(web![1]!);
  expect(page.status).toBe(200);
  expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
  expect(await page.text()).toContain("<html");
  expect(got).toMatchObject({ mid: sent.mid, from: "alice", group: "ops", text: "from the binary" });
  expect(await server.stop()).toBe(0);
  expect(existsSync(join(run.dir, "chat.db"))).toBe(true);

  server = await startServer(args, [exe, "serve"], run.dir);
  const b2 = await TestClient.connect(server.port);
  await b2.login("bob");
  const h = await b2.ok({ t: "history", group: "ops" });
  // the group's log: its create, bob's join, the message
  expect(h.msgs.map((m: any) => m.kind ?? m.text)).toEqual(["create", "join", "from the binary"]);
  expect(h.msgs[2]).toEqual({ mid: sent.mid, ts: sent.ts, from: "alice", group: "ops", text: "from the binary", cid: "b1" });
  expect(await server.stop()).toBe(0);
}, 60_000);

test("two executables from an empty directory form a cluster on a new Postgres database and NATS (migrations and the NATS client are embedded)", async () => {
  await using pg = await startPostgres();
  await using nats = await startNats();
  const args = ["--db", pg.url, "--bus", nats.url, ...TEST_ARGS];
  const n1 = await startServer(args, [exe, "serve"], run.dir);
  const n2 = await startServer(args, [exe, "serve"], run.dir);
  try {
    expect(n1.output()).toContain(`bus ${nats.url}`);
    const a = await TestClient.connect(n1.port);
    const b = await TestClient.connect(n2.port);
    await a.register("carol");
    await a.login("carol");
    await b.register("dave");
    await b.login("dave");
    await a.ok({ t: "create", group: "ops" });
    await b.ok({ t: "join", group: "ops" });
    const sent = await a.ok({ t: "send", group: "ops", text: "node to node", cid: "x1" });
    expect(await b.nextMsg()).toMatchObject({ mid: sent.mid, from: "carol", group: "ops", text: "node to node" });
  } finally {
    expect(await n1.stop()).toBe(0);
    expect(await n2.stop()).toBe(0);
  }
}, 60_000);
