// The terminal client without a terminal: --send and --listen (text and JSON
// lines) as scripts use them, exit statuses, and the errors people will hit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ChatClient } from "../src/client/index.ts";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const ROOT = join(import.meta.dir, "..");
const CLI = [process.execPath, "run", join(ROOT, "src", "cli.ts")];
const tmp = tempDir("tcpchat-cli-");
let server: RunningServer;
let n = 0;
const uniq = (p: string) => `${p}${++n}`;
const PASS = "password1";
const clients: ChatClient[] = [];
const listeners: ReturnType<typeof Bun.spawn>[] = [];

beforeAll(async () => {
  server = await startServer(["--db", join(tmp.dir, "chat.db"), ...TEST_ARGS]);
});

afterAll(async () => {
  for (const p of listeners) if (p.exitCode === null) p.kill("SIGKILL");
  for (const c of clients) await c.close();
  if (server.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion with stdin closed (no terminal). */
async function cli(args: string[], env: Record<string, string> = { TCPCHAT_PASSWORD: PASS }): Promise<Run> {
  const p = Bun.spawn([...CLI, ...args], {
    cwd: tmp.dir,
    env: { PATH: process.env.PATH ?? "", HOME: join(tmp.dir, "home"), ...env }, // HOME: no config file of the machine's user
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

const port = () => ["--port", String(server.port)];

/** A user created through the library, logged in. */
async function user(prefix = "u"): Promise<ChatClient> {
  const c = await ChatClient.connect({ port: server.port });
  clients.push(c);
  const name = uniq(prefix);
  await c.register(name, PASS);
  await c.login(name, { pass: PASS });
  return c;
}

/** A running `--listen` process and the lines it printed so far. */
function listen(args: string[]) {
  const p = Bun.spawn([...CLI, ...port(), "--listen", ...args], {
    cwd: tmp.dir,
    env: { PATH: process.env.PATH ?? "", HOME: join(tmp.dir, "home"), TCPCHAT_PASSWORD: PASS },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  listeners.push(p);
  const lines: string[] = [];
  let err = "";
  const done = (async () => {
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of p.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
  })();
  void (async () => {
    for await (const chunk of p.stderr) err += new TextDecoder().decode(chunk);
  })();
  return {
    p,
    lines,
    stderr: () => err,
    async waitLines(count: number, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (lines.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} lines, got ${JSON.stringify(lines)}; stderr: ${err}`);
        if (p.exitCode !== null) throw new Error(`listener exited ${p.exitCode}: ${err}`);
        await Bun.sleep(10);
      }
      return lines;
    },
    /** SIGTERM; resolves with the exit status once output is drained. */
    async stop() {
      p.kill("SIGTERM");
      const code = await p.exited;
      await done;
      return code;
    },
  };
}

/** Waits until the listener is logged in: a message sent now will be delivered live. */
async function listening(l: ReturnType<typeof listen>, me: ChatClient, to: string): Promise<void> {
  // The CLI has no "ready" line; send probes until one shows up, then drop them from the lines.
  for (let i = 0; ; i++) {
    await me.send({ user: to, text: `probe ${i}` });
    const deadline = Date.now() + 500;
    while (Date.now() < deadline && !l.lines.some((x) => x.includes("probe"))) await Bun.sleep(10);
    if (l.lines.some((x) => x.includes("probe"))) break;
    if (i > 40) throw new Error(`listener never got a probe; stderr: ${l.stderr()}`);
  }
  l.lines.length = 0;
}

describe("--send", () => {
  test("sends, exits 0 once stored; --json prints the stored message", async () => {
    const b = await user();
    const name = uniq("sender");
    const r1 = await cli([...port(), "--user", name, "--register", "--send", "first", "--to", `@${b.user}`]);
    expect(r1).toEqual({ code: 0, stdout: "", stderr: "" });
    const r2 = await cli([...port(), "--user", name, "--send", "second", "--to", `@${b.user}`, "--json"]);
    expect(r2.code).toBe(0);
    const m = JSON.parse(r2.stdout);
    expect(m).toMatchObject({ from: name, user: b.user, text: "second" });
    const h = await b.history({ user: name });
    expect(h.msgs.map((x) => x.text)).toEqual(["first", "second"]);
    expect(h.msgs[1]).toEqual(m);
  });

  test("to a group by name or #name; refusals exit 1 with the server's reason", async () => {
    const owner = await user();
    const g = uniq("grp");
    await owner.createGroup(g);
    const name = uniq("gs");
    const notMember = await cli([...port(), "--user", name, "--register", "--send", "hi", "--to", g]);
    expect(notMember.code).toBe(1);
    expect(notMember.stderr).toBe(`tcpchat chat: not sent to #${g}: you are not allowed to do that in #${g} (are you a member? /join ${g} first)\n`);
    const c = await ChatClient.connect({ port: server.port });
    clients.push(c);
    await c.login(name, { pass: PASS });
    await c.join(g);
    const ok = await cli([...port(), "--user", name, "--send", "hi group", "--to", `#${g}`]);
    expect(ok.code).toBe(0);
    // the group's log: its create and join entries (no messages), then the message
    const log = (await owner.history({ group: g })).msgs;
    expect(log.map((m) => m.kind ?? m.text)).toEqual(["create", "join", "hi group"]);
    const nobody = await cli([...port(), "--user", name, "--send", "x", "--to", `@${uniq("nobody")}`]);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/^tcpchat chat: not sent to @nobody\d+: there is no user "nobody\d+"\n$/);
  });

  test("wrong password, taken name, unknown name, no server: exit 1 with a sentence saying what to do", async () => {
    const name = uniq("pw");
    expect((await cli([...port(), "--user", name, "--register", "--send", "x", "--to", `@${name}`])).code).toBe(0);
    const wrong = await cli([...port(), "--user", name, "--send", "x", "--to", `@${name}`], { TCPCHAT_PASSWORD: "not-it-at-all" });
    expect(wrong).toEqual({ code: 1, stdout: "", stderr: `tcpchat chat: cannot log in: wrong user name or password (no account "${name}" yet? add --register to create it)\n` });
    // --register of a name taken, with its password: a bot run twice logs in the second time
    const again = await cli([...port(), "--user", name, "--register", "--send", "again", "--to", `@${name}`]);
    expect(again).toEqual({ code: 0, stdout: "", stderr: "" });
    const taken = await cli([...port(), "--user", name, "--register", "--send", "x", "--to", `@${name}`], { TCPCHAT_PASSWORD: "someone-elses" });
    expect(taken).toEqual({ code: 1, stdout: "", stderr: `tcpchat chat: cannot register: the name "${name}" is taken (and that is not its password)\n` });
    const short = await cli([...port(), "--user", uniq("pw"), "--register", "--send", "x", "--to", `@${name}`], { TCPCHAT_PASSWORD: "short" });
    expect(short).toEqual({ code: 2, stdout: "", stderr: "tcpchat chat: cannot register: that password is too short: it needs 8 to 1024 bytes, it has 5\n" });
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const freePort = l.port;
    l.stop(true);
    // the server is tried before any password is needed: without one, the same message
    for (const env of [{ TCPCHAT_PASSWORD: PASS }, {}] as Record<string, string>[]) {
      const down = await cli(["--port", String(freePort), "--user", name, "--send", "x", "--to", `@${name}`], env);
      expect(down).toEqual({ code: 1, stdout: "", stderr: `tcpchat chat: cannot reach 127.0.0.1:${freePort} — is the server running? start one with \`npm start\`\n` });
    }
  });

  test("a text over the server's limit: the limit in words, no protocol code, no echo of the text", async () => {
    const name = uniq("big");
    const r = await cli([...port(), "--user", name, "--register", "--send", "x".repeat(70_000), "--to", `@${name}`]);
    expect(r).toEqual({ code: 1, stdout: "", stderr: `tcpchat chat: not sent to @${name}: that message is too long (the server allows 65536 bytes)\n` });
  });

  test("usage errors exit 2 with the usage; --help exits 0", async () => {
    for (const [args, msg] of [
      [["--send", "x", "--to", "g"], "--user is required"],
      [["--user", "Bad Name"], "not a valid name"],
      [["--user", "a", "--send", "x"], "--send needs --to"],
      [["--user", "a", "--send", "x", "--to", "@"], "is not a group or @user name"],
      [["--user", "a", "--bogus"], 'unknown option "--bogus"'],
      [["--user", "a", "--port", "99999"], "--port must be an integer"],
      [["--user", "a", "--listen", "--send", "x", "--to", "g"], "exclude each other"],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(msg);
      expect(r.stderr).toContain("Usage: tcpchat chat");
    }
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--listen");
  });

  test("without TCPCHAT_PASSWORD and without a terminal to ask on, exit 2", async () => {
    const r = await cli([...port(), "--user", "someone", "--send", "x", "--to", "g"], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no password");
  });
});

describe("for scripts and bots: --join, the config file, a kept login", () => {
  test("--join GROUP joins (creating it) before --send; again, it just joins; --listen --join hears the group", async () => {
    const bot = uniq("bot");
    const g = uniq("botg");
    const first = await cli([...port(), "--user", bot, "--register", "--join", g, "--send", "build 1 passed", "--to", g]);
    expect(first).toEqual({ code: 0, stdout: "", stderr: "" });
    const again = await cli([...port(), "--user", bot, "--register", "--join", g, "--send", "build 2 passed", "--to", `#${g}`]);
    expect(again).toEqual({ code: 0, stdout: "", stderr: "" });
    const other = await user("bj");
    await other.join(g);
    // the first run created the group (its `create` entry, by the bot); the second only joined: no entry
    const log = (await other.history({ group: g })).msgs;
    expect(log.map((m) => (m.kind ? `${m.kind} ${m.from}` : m.text))).toEqual([`create ${bot}`, "build 1 passed", "build 2 passed", `join ${other.user}`]);
    const listener = uniq("blis");
    expect((await cli([...port(), "--user", listener, "--register", "--send", "setup", "--to", `@${listener}`])).code).toBe(0);
    const l = listen(["--user", listener, "--join", g, "--json"]);
    await listening(l, other, listener);
    await other.send({ group: g, text: "to the group" });
    await l.waitLines(1);
    expect(JSON.parse(l.lines[0]!)).toMatchObject({ group: g, text: "to the group" });
    expect(await l.stop()).toBe(0);
  });

  test("host, port and user from the config file; --remember keeps a token (0600) used next time without a password; a refused one is forgotten", async () => {
    const name = uniq("cfg");
    const xdg = join(tmp.dir, "xdg");
    mkdirSync(join(xdg, "tcpchat"), { recursive: true });
    writeFileSync(join(xdg, "tcpchat", "config.json"), JSON.stringify({ host: "127.0.0.1", port: server.port, user: name }));
    const env = { XDG_CONFIG_HOME: xdg };
    const first = await cli(["--register", "--remember", "--send", "one", "--to", `@${name}`], { ...env, TCPCHAT_PASSWORD: PASS });
    expect(first).toEqual({ code: 0, stdout: "", stderr: "" });
    const tokens = join(xdg, "tcpchat", "tokens.json");
    expect(statSync(tokens).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(tokens, "utf8"));
    expect(Object.keys(saved)).toEqual([`${name}@127.0.0.1:${server.port}`]);
    // no password now: the kept login is used
    expect(await cli(["--send", "two", "--to", `@${name}`], env)).toEqual({ code: 0, stdout: "", stderr: "" });
    // the server refuses it (here: not a token it issued): forgotten, and a password is needed again
    writeFileSync(tokens, JSON.stringify({ [`${name}@127.0.0.1:${server.port}`]: "x".repeat(43) }), { mode: 0o600 });
    const refused = await cli(["--send", "three", "--to", `@${name}`], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("no password");
    expect(existsSync(tokens)).toBe(false);
    const c = await ChatClient.connect({ port: server.port });
    clients.push(c);
    await c.login(name, { pass: PASS });
    expect((await c.history({ user: name })).msgs.map((m) => m.text)).toEqual(["one", "two"]);
    // a bad config file: exit 2 naming it
    writeFileSync(join(xdg, "tcpchat", "config.json"), '{"port": "x"}');
    const bad = await cli(["--send", "x", "--to", "@x"], env);
    expect(bad).toEqual({ code: 2, stdout: "", stderr: `tcpchat chat: ${join(xdg, "tcpchat", "config.json")}: "port" must be an integer from 1 to 65535\n` });
  });
});

describe("--listen", () => {
  test("--json prints each incoming message as one JSON line, in order, files (with --downloads) downloaded and saved safely; SIGTERM exits 0", async () => {
    const name = uniq("lj");
    expect((await cli([...port(), "--user", name, "--register", "--send", "setup", "--to", `@${name}`])).code).toBe(0);
    const downloads = join(tmp.dir, "dl-json");
    const l = listen(["--user", name, "--json", "--downloads", downloads]);
    const a = await user("ljs");
    await listening(l, a, name);

    const sent = [];
    sent.push(await a.send({ user: name, text: "one" }));
    sent.push(await a.send({ user: name, text: "two\nlines \x1b[31mred" }));
    const data = new Uint8Array([0, 1, 2, 250, 255]);
    sent.push(await a.sendFile({ user: name }, data, { name: "../../evil\x07.sh", type: "text/x-sh" }));
    sent.push(await a.sendFile({ user: name }, data, { name: "../../evil\x07.sh", type: "text/x-sh" }));
    // and one from the CLI itself, from another user
    const other = uniq("lj-other");
    expect((await cli([...port(), "--user", other, "--register", "--send", "from the cli", "--to", `@${name}`])).code).toBe(0);
    await l.waitLines(5);
    const got = l.lines.map((x) => JSON.parse(x));
    expect(got.slice(0, 4).map((m) => m.mid)).toEqual(sent.map((m) => m.mid));
    expect(got[0]).toEqual({ mid: sent[0]!.mid, ts: sent[0]!.ts, from: a.user, user: name, text: "one", cid: sent[0]!.cid });
    expect(got[1].text).toBe("two\nlines \x1b[31mred"); // JSON carries the text exactly
    const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
    expect(got[2].file).toEqual({ name: "../../evil\x07.sh", type: "text/x-sh", size: 5, sha256, saved: join(downloads, "evil.sh") });
    expect(got[3].file.saved).toBe(join(downloads, "evil (1).sh"));
    expect(got[4]).toMatchObject({ from: other, user: name, text: "from the cli" });
    expect(readdirSync(downloads).sort()).toEqual([".tcpchat-saved", "evil (1).sh", "evil.sh"]);
    expect(new Uint8Array(readFileSync(join(downloads, "evil.sh")))).toEqual(data);
    expect(existsSync(join(tmp.dir, "..", "evil.sh"))).toBe(false);
    expect(await l.stop()).toBe(0);
  });

  test("text lines: time, conversation, sender, one line per message with control codes made inert", async () => {
    const name = uniq("lt");
    expect((await cli([...port(), "--user", name, "--register", "--send", "setup", "--to", `@${name}`])).code).toBe(0);
    const a = await user("lts");
    const g = uniq("ltg");
    await a.createGroup(g);
    const c = await ChatClient.connect({ port: server.port });
    clients.push(c);
    await c.login(name, { pass: PASS });
    await c.join(g);
    const l = listen(["--user", name]);
    await listening(l, a, name);
    await a.send({ group: g, text: "hello group" });
    await a.send({ user: name, text: "two\nlines \x1b[31mred" });
    await l.waitLines(2);
    expect(l.lines[0]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d #${g} ${a.user}: hello group$`));
    expect(l.lines[1]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d @${a.user} ${a.user}: two \u21b5 lines \ufffd\\[31mred$`));
    expect(l.lines.join("")).not.toContain("\x1b");
    expect(await l.stop()).toBe(0);
  });

  test("files are downloaded and saved only with --downloads; a replayed message's file is not saved twice", async () => {
    const name = uniq("lf");
    expect((await cli([...port(), "--user", name, "--register", "--send", "setup", "--to", `@${name}`])).code).toBe(0);
    const a = await user("lfs");
    const data = new TextEncoder().encode("report");
    const m = await a.sendFile({ user: name }, data, { name: "r.txt", type: "text/plain" });
    const since = String(m.mid - 1);
    // no --downloads: printed, not saved, and no ./downloads appears
    const l0 = listen(["--user", name, "--json", "--since", since]);
    await l0.waitLines(1);
    expect(JSON.parse(l0.lines[0]!).file).toEqual({ name: "r.txt", type: "text/plain", size: 6, sha256: m.file!.sha256, saved: null });
    expect(await l0.stop()).toBe(0);
    expect(existsSync(join(tmp.dir, "downloads"))).toBe(false);
    // with it, twice over the same messages: one file
    const dir = join(tmp.dir, "dl-once");
    for (let i = 0; i < 2; i++) {
      const l = listen(["--user", name, "--json", "--since", since, "--downloads", dir]);
      await l.waitLines(1);
      expect(JSON.parse(l.lines[0]!).file.saved).toBe(join(dir, "r.txt"));
      expect(await l.stop()).toBe(0);
    }
    expect(readdirSync(dir).filter((f) => !f.startsWith("."))).toEqual(["r.txt"]);
  });

  test("--since prints what came after that mid first, then live messages", async () => {
    const name = uniq("ls");
    expect((await cli([...port(), "--user", name, "--register", "--send", "setup", "--to", `@${name}`])).code).toBe(0);
    const a = await user("lss");
    const m1 = await a.send({ user: name, text: "old 1" });
    await a.send({ user: name, text: "old 2" });
    const l = listen(["--user", name, "--json", "--since", String(m1.mid - 1)]);
    await l.waitLines(2);
    await a.send({ user: name, text: "live" });
    await l.waitLines(3);
    expect(l.lines.map((x) => JSON.parse(x).text)).toEqual(["old 1", "old 2", "live"]);
    expect(await l.stop()).toBe(0);
  });
});
