// The terminal client of issue #16 driven in real terminals (tmux), keys as a
// person presses them: the line editor (cursor keys, words, kills, Unicode),
// history recall, Tab completion, a bracketed paste, views switched with
// Alt-digits and the status line, what was missed after /quit, and the first run
// (server down, name taken, unknown name, a kept login). What the client sends is
// checked on the other side, with the client library: the exact text stored.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ChatClient, type ChatMessage } from "../src/client/index.ts";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const ROOT = join(import.meta.dir, "..");
const CLI = [process.execPath, "run", join(ROOT, "src", "cli.ts")];
const tmp = tempDir("tcpchat-cli-tmux-");
const SOCKET = `tcpchat-tmux-${process.pid}`;
const PASS = "password1";
const hasTmux = Bun.which("tmux") !== null;
let server: RunningServer;
const clients: ChatClient[] = [];
let n = 0;
const uniq = (p: string) => `${p}${++n}`;

const tmux = (...args: string[]) => Bun.spawnSync(["tmux", "-L", SOCKET, ...args], { stdout: "pipe", stderr: "pipe" });
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

beforeAll(async () => {
  if (hasTmux) server = await startServer(["--db", join(tmp.dir, "chat.db"), ...TEST_ARGS]);
});

afterAll(async () => {
  if (hasTmux) tmux("kill-server");
  for (const c of clients) await c.close();
  if (server?.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

test("tmux is installed (these tests need it)", () => {
  expect(hasTmux).toBe(true);
});

/** A terminal running the CLI; after it exits, "[exited N]" stays on screen. */
function term(args: string[], env: Record<string, string> = {}, cols = 160, rows = 24) {
  const name = uniq("t");
  const vars = Object.entries({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(tmp.dir, "home"), TERM: "xterm-256color", NO_COLOR: "1", ...env }).map(
    ([k, v]) => `${k}=${sh(v)}`,
  );
  const cmd = `cd ${sh(ROOT)} && env -i ${vars.join(" ")} ${[...CLI, ...args].map(sh).join(" ")}; echo "[exited $?]"; sleep 600`;
  const r = tmux("new-session", "-d", "-s", name, "-x", String(cols), "-y", String(rows), cmd);
  if (r.exitCode !== 0) throw new Error(`tmux: ${r.stderr.toString()}`);
  const t = {
    /** Literal text. */
    type: (text: string) => void tmux("send-keys", "-t", `=${name}:`, "-l", "--", text),
    /** Keys by tmux's names: Left, BSpace, C-w, M-2, Enter... */
    keys: (...keys: string[]) => void tmux("send-keys", "-t", `=${name}:`, ...keys),
    line(text: string) {
      t.type(text);
      t.keys("Enter");
    },
    /** A bracketed paste (tmux wraps it in ESC[200~ ... ESC[201~ when the program asked for it). */
    paste(text: string) {
      tmux("set-buffer", "-b", name, "--", text);
      tmux("paste-buffer", "-p", "-d", "-b", name, "-t", `=${name}:`);
    },
    screen: () => tmux("capture-pane", "-p", "-t", `=${name}:`).stdout.toString(),
    /** The input line: the last row that is not empty (tmux leaves out trailing spaces). */
    input: () => t.screen().split("\n").filter((r) => r.trim() !== "").at(-1) ?? "",
    /** The status line, just above it. */
    status: () => t.screen().split("\n").filter((r) => r.trim() !== "").at(-2) ?? "",
    async waitFor(want: string | RegExp, timeoutMs = 15_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = t.screen();
        if (typeof want === "string" ? s.includes(want) : want.test(s)) return s;
        if (Date.now() > deadline) throw new Error(`waited for ${want}; the screen:\n${s}`);
        await Bun.sleep(40);
      }
    },
    /** Waits until the input line is exactly `want`. */
    async waitInput(want: string): Promise<void> {
      const deadline = Date.now() + 10_000;
      while (t.input() !== want) {
        if (Date.now() > deadline) throw new Error(`input line is ${JSON.stringify(t.input())}, not ${JSON.stringify(want)}; the screen:\n${t.screen()}`);
        await Bun.sleep(30);
      }
    },
  };
  return t;
}

const port = () => ["--port", String(server.port)];

/** A user through the library, logged in, collecting what it receives. */
async function libUser(prefix: string) {
  const c = await ChatClient.connect({ port: server.port });
  clients.push(c);
  const name = uniq(prefix);
  await c.register(name, PASS);
  await c.login(name, { pass: PASS });
  const got: ChatMessage[] = [];
  c.on("msg", (m) => got.push(m));
  return {
    c,
    name,
    got,
    /** The next message received whose text passes `pred`. */
    async next(pred: (m: ChatMessage) => boolean = () => true): Promise<ChatMessage> {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const i = got.findIndex(pred);
        if (i >= 0) return got.splice(i, 1)[0]!;
        if (Date.now() > deadline) throw new Error(`nothing received; got ${JSON.stringify(got.map((m) => m.text))}`);
        await Bun.sleep(20);
      }
    },
  };
}

/** A user of the CLI (registered through the library), in a terminal, in `group` with `peer`. */
async function cliUser(group: string, peer: ChatClient, more: string[] = [], shown = group) {
  const name = uniq("me");
  const reg = await ChatClient.connect({ port: server.port });
  await reg.register(name, PASS);
  await reg.close();
  await peer.createGroup(group);
  const t = term([...port(), "--user", name, "--join", group, ...more], { TCPCHAT_PASSWORD: PASS });
  await t.waitFor(`logged in as ${name}`);
  await t.waitInput(`[#${shown}] >`);
  return { t, name };
}

describe.if(hasTmux)("the line editor in a terminal", () => {
  test("cursor keys, Home/End, words, kills; Unicode: a ZWJ family is one Backspace, CJK is two columns", async () => {
    const peer = await libUser("peer");
    const g = uniq("ed");
    const { t } = await cliUser(g, peer.c);
    const sent = async (want: string) => expect((await peer.next((m) => m.group === g)).text).toBe(want);

    t.type("helo");
    t.keys("Left", "Left");
    t.type("l");
    await t.waitInput(`[#${g}] > hello`);
    t.keys("Enter");
    await sent("hello");

    t.type("world");
    t.keys("Home");
    t.type("hello ");
    t.keys("End");
    t.type("!");
    t.keys("C-a");
    t.type(">");
    t.keys("C-e");
    t.type("<");
    await t.waitInput(`[#${g}] > >hello world!<`);
    t.keys("Enter");
    await sent(">hello world!<");

    // words: Alt-b, Ctrl-Left, Alt-f; Ctrl-W, Ctrl-K, Ctrl-U
    t.type("one two three four");
    t.keys("M-b", "C-Left");
    t.type("2 ");
    await t.waitInput(`[#${g}] > one two 2 three four`);
    t.keys("M-f", "C-k");
    await t.waitInput(`[#${g}] > one two 2 three`);
    t.keys("C-w");
    await t.waitInput(`[#${g}] > one two 2`);
    t.keys("Home", "C-Right", "C-u");
    await t.waitInput(`[#${g}] >  two 2`); // and the space Ctrl-W left
    t.keys("Enter");
    await sent(" two 2 ");

    // a family of three joined with ZWJs, and a flag: one Backspace each
    t.type("x 👨‍👩‍👧🇫🇷");
    await t.waitInput(`[#${g}] > x 👨‍👩‍👧🇫🇷`);
    t.keys("BSpace");
    await t.waitInput(`[#${g}] > x 👨‍👩‍👧`);
    t.keys("BSpace");
    t.type("y");
    await t.waitInput(`[#${g}] > x y`);
    t.keys("Enter");
    await sent("x y");

    // CJK, two columns each: Left steps over one character, the text goes in between
    t.type("日本語");
    t.keys("Left", "Left");
    t.type("x");
    await t.waitInput(`[#${g}] > 日x本語`);
    t.keys("Left", "Delete");
    await t.waitInput(`[#${g}] > 日本語`);
    t.keys("Enter");
    await sent("日本語");

    // history: Up recalls, Down goes back to what was being written
    t.type("draft");
    t.keys("Up");
    await t.waitInput(`[#${g}] > 日本語`);
    t.keys("Up");
    await t.waitInput(`[#${g}] > x y`);
    t.keys("Down", "Down");
    await t.waitInput(`[#${g}] > draft`);
    t.keys("C-u", "Up", "Up", "Up");
    await t.waitInput(`[#${g}] >  two 2`); // and the space Ctrl-W left
    t.keys("Enter");
    await sent(" two 2 ");
  }, 60_000);

  test("Tab completes commands, #groups and @users; a paste of three lines is one message", async () => {
    const peer = await libUser("bobby");
    const g = uniq("tab");
    const { t } = await cliUser(g, peer.c);

    t.type("hi @bob");
    t.keys("Tab");
    await t.waitInput(`[#${g}] > hi @${peer.name}`); // and a space
    t.type("see #ta");
    t.keys("Tab");
    await t.waitInput(`[#${g}] > hi @${peer.name} see #${g}`);
    t.keys("Enter");
    expect((await peer.next()).text).toBe(`hi @${peer.name} see #${g} `);

    t.type("/he");
    t.keys("Tab");
    await t.waitInput(`[#${g}] > /help`);
    t.keys("C-u");
    t.type("/tra"); // the commands of #13 too
    t.keys("Tab");
    await t.waitInput(`[#${g}] > /transfer`);
    t.keys("C-u");
    t.type("/unb");
    t.keys("Tab");
    await t.waitInput(`[#${g}] > /unban`);
    t.keys("C-u");
    t.type("/mem");
    t.keys("Tab");
    t.keys("Enter");
    await t.waitFor(`members of #${g}:`);

    t.paste("line one\nline two\nline three\n"); // tmux sends each LF as CR, as terminals do
    await t.waitInput(`[#${g}] > line one↵line two↵line three`);
    t.keys("Enter");
    const m = await peer.next();
    expect(m.text).toBe("line one\nline two\nline three");
    await Bun.sleep(300);
    expect(peer.got.filter((x) => x.group === g)).toEqual([]); // no second message
    // shown as one message, continuation lines indented
    await t.waitFor(/ line one\n {9}line two\n {9}line three\n/);
  }, 60_000);
});

describe.if(hasTmux)("views, the status line, and what was missed", () => {
  test("Alt-digits switch views; the status line counts what arrived elsewhere; after /quit and a new login, a summary and Alt-n", async () => {
    const peer = await libUser("pal");
    const g = uniq("va");
    const g2 = uniq("vb");
    const { t, name } = await cliUser(g, peer.c, ["--join", g2], g2);
    // the last --join is shown first; the status line says where, who, and the connection
    await t.waitInput(`[#${g2}] >`);
    expect(t.status()).toMatch(new RegExp(`^\\[\\d:#${g2}\\] ${name}@127\\.0\\.0\\.1:${server.port} connected`));

    await peer.c.send({ group: g, text: "in the first group" });
    await peer.c.send({ user: name, text: "just for you" });
    await t.waitFor(/\| new: .*\d:@pal\d+\(1!\)/);
    const status = t.status();
    const numberOf = (key: string) => Number(new RegExp(`(\\d):${key}\\(`).exec(status)?.[1]);
    const nG = numberOf(`#${g}`);
    const nDm = numberOf(`@${peer.name}`);
    expect(status).toContain(`${nG}:#${g}(1)`);
    expect(t.screen()).not.toContain("in the first group");

    t.keys(`M-${nDm}`);
    await t.waitInput(`[@${peer.name}] >`);
    await t.waitFor(`@${peer.name} ${peer.name}: just for you`);
    expect(t.status()).not.toContain(`@${peer.name}(`);
    t.line("thanks");
    expect((await peer.next((m) => m.user === peer.name)).text).toBe("thanks");

    t.keys(`M-${nG}`);
    await t.waitInput(`[#${g}] >`);
    await t.waitFor(`#${g} ${peer.name}: in the first group`);
    expect(t.screen()).not.toContain("just for you"); // that view's lines stay in it
    t.line("/history 1");
    await t.waitFor(`history of #${g}: 1 message`);

    // /to opens a view too
    t.line(`/to @${peer.name}`);
    await t.waitInput(`[@${peer.name}] >`);
    await t.waitFor("just for you");

    // away: /quit; messages arrive; a new login says what was missed, Alt-n shows it
    t.line("/quit");
    await t.waitFor("[exited 0]");
    await peer.c.send({ group: g, text: "while you were out 1" });
    await peer.c.send({ group: g, text: `@${name} while you were out 2` });
    const t2 = term([...port(), "--user", name], { TCPCHAT_PASSWORD: PASS });
    await t2.waitFor(`* 2 new in #${g} (1 mention) (Alt-n or /next shows them)`);
    // the most recent conversation is the one shown: /history works at once
    await t2.waitInput(`[#${g}] >`);
    expect(t2.status()).toContain(`#${g} 2 new, Alt-n]`);
    t2.keys("M-n");
    await t2.waitFor(`talking in #${g}: 2 new`);
    await t2.waitFor(new RegExp(`#${g} ${peer.name}: while you were out 1\\n.*#${g} ${peer.name}: @${name} while you were out 2`));
    await t2.waitFor(/^\[\d:#va\d+\] \S+ connected$/m);
    t2.line("/unread");
    await t2.waitFor("* nothing unread");
    t2.line("/quit");
    await t2.waitFor("[exited 0]");
  }, 60_000);
});

describe.if(hasTmux)("a first run that helps", () => {
  test("server down: said before any password, with what to do; exit 1", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const free = l.port;
    l.stop(true);
    const t = term(["--port", String(free), "--user", "nobody"]);
    const s = await t.waitFor("[exited 1]");
    expect(s).toContain(`tcpchat chat: cannot reach 127.0.0.1:${free} — is the server running? start one with \`npm start\``);
    expect(s).not.toContain("Password");
  }, 30_000);

  test("a name taken offers to log in; an unknown name offers to register, stating the password rule", async () => {
    const taken = await libUser("owner");
    // --register of a taken name: the offer, then the login with the password typed
    const t = term([...port(), "--user", taken.name, "--register"]);
    await t.waitFor(`New password for ${taken.name} (8 to 1024 bytes):`);
    t.line("short");
    await t.waitFor("that password is too short: it needs 8 to 1024 bytes, it has 5");
    t.line(PASS);
    await t.waitFor("The same password again:");
    t.line(PASS);
    await t.waitFor(`The name "${taken.name}" is taken. Log in as ${taken.name} with this password? [Y/n]`);
    t.type("y");
    await t.waitFor(`logged in as ${taken.name}`);
    t.line("/quit");
    await t.waitFor("[exited 0]");

    // a login for a name nobody has: the offer to register, then the new account
    const fresh = uniq("fresh");
    const u = term([...port(), "--user", fresh]);
    await u.waitFor(`Password for ${fresh}:`);
    u.line("whatever-it-is");
    await u.waitFor(`Wrong password, or no account "${fresh}" on this server: [t]ry again, [r]egister it, or [q]uit?`);
    u.type("r");
    await u.waitFor(`New password for ${fresh} (8 to 1024 bytes):`);
    u.line("new-password");
    await u.waitFor("The same password again:");
    u.line("new-password");
    await u.waitFor(`logged in as ${fresh}`);
    await u.waitFor(`* created the account ${fresh}`);
    expect(u.screen()).not.toContain("new-password"); // never echoed
    u.line("/quit");
    await u.waitFor("[exited 0]");
    const check = await ChatClient.connect({ port: server.port });
    clients.push(check);
    expect((await check.login(fresh, { pass: "new-password" })).user).toBe(fresh);

    // [q]uit: exit 1 with the reason
    const q = term([...port(), "--user", uniq("nope")]);
    await q.waitFor("Password for");
    q.line("whatever-it-is");
    await q.waitFor("[q]uit?");
    q.type("q");
    expect(await q.waitFor("[exited 1]")).toContain("tcpchat chat: cannot log in: wrong user name or password");
  }, 60_000);

  test("--remember keeps the login in a 0600 file: the next run asks for no password; --forget forgets it", async () => {
    const me = await libUser("rem");
    const xdg = join(tmp.dir, "xdg-rem");
    const env = { XDG_CONFIG_HOME: xdg };
    const t = term([...port(), "--user", me.name, "--remember"], env);
    await t.waitFor(`Password for ${me.name}:`);
    t.line(PASS);
    await t.waitFor(`* login kept in ${join(xdg, "tcpchat", "tokens.json")} (only you can read it)`);
    t.line("/quit");
    await t.waitFor("[exited 0]");
    const file = join(xdg, "tcpchat", "tokens.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, "tcpchat")).mode & 0o777).toBe(0o700);
    expect(Object.keys(JSON.parse(readFileSync(file, "utf8")))).toEqual([`${me.name}@127.0.0.1:${server.port}`]);

    const again = term([...port(), "--user", me.name], env);
    await again.waitFor(`logged in as ${me.name}`);
    expect(again.screen()).not.toContain("Password");
    again.line("/quit");
    await again.waitFor("[exited 0]");

    const forget = term([...port(), "--user", me.name, "--forget"], env);
    await forget.waitFor(`Password for ${me.name}:`);
    expect(existsSync(file)).toBe(false);
  }, 60_000);
});
