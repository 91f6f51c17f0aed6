// The terminal client driven as a person would, in real terminals: two people
// register, chat in a group, send a file and a direct message, see each other
// come and go, live through a server restart, and read history after coming back.
//
// Two drivers run the same scenario: tmux (when installed) and a pseudo-terminal
// made by python3's `pty` module (always present on these machines), read back
// through a small terminal emulator below. The pty driver always runs, so the
// scenario never silently skips where tmux is missing.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";
import type { Msg } from "./helpers/wire.ts";

const ROOT = join(import.meta.dir, "..");
const CLI = [process.execPath, "run", join(ROOT, "src", "cli.ts")];
const ROWS = 30;
const COLS = 120;
const tmp = tempDir("tcpchat-cli-term-");

// ---- a terminal emulator, enough for what the CLI writes ------------------------------

/** Applies output to a rows x cols screen: text, CR, LF (scrolling), BS, CSI K/J/H/A-D; SGR and modes are ignored. */
export class Emulator {
  readonly grid: string[][];
  private r = 0;
  private c = 0;
  private pending = "";
  private readonly utf8 = new TextDecoder();

  constructor(
    readonly rows: number,
    readonly cols: number,
  ) {
    this.grid = Array.from({ length: rows }, () => Array<string>(cols).fill(" "));
  }

  feed(bytes: Uint8Array): void {
    const s = this.pending + this.utf8.decode(bytes, { stream: true });
    this.pending = "";
    for (let i = 0; i < s.length; i++) {
      const ch = s[i]!;
      if (ch === "\x1b") {
        const m = /^\x1b\[([?0-9;]*)([@-~])/.exec(s.slice(i));
        if (!m) {
          if (s.length - i < 16) {
            this.pending = s.slice(i); // an unfinished sequence: wait for the rest
            return;
          }
          continue;
        }
        this.csi(m[1]!, m[2]!);
        i += m[0].length - 1;
      } else if (ch === "\r") this.c = 0;
      else if (ch === "\n") this.lineFeed();
      else if (ch === "\b") this.c = Math.max(0, this.c - 1);
      else if (ch === "\t") this.c = Math.min(this.cols - 1, (Math.floor(this.c / 8) + 1) * 8);
      else if (ch >= " ") {
        if (this.c >= this.cols) {
          this.c = 0;
          this.lineFeed();
        }
        this.grid[this.r]![this.c++] = ch;
      }
    }
  }

  private lineFeed(): void {
    if (this.r === this.rows - 1) {
      this.grid.shift();
      this.grid.push(Array<string>(this.cols).fill(" "));
    } else this.r++;
  }

  private csi(params: string, final: string): void {
    if (params.startsWith("?")) return;
    const p = params.split(";").map((x) => (x === "" ? 0 : Number(x)));
    const n = Math.max(1, p[0] ?? 1);
    const row = this.grid[this.r]!;
    switch (final) {
      case "K":
        if ((p[0] ?? 0) === 0) row.fill(" ", this.c);
        else if (p[0] === 1) row.fill(" ", 0, this.c + 1);
        else row.fill(" ");
        break;
      case "J":
        if ((p[0] ?? 0) === 2) for (const r of this.grid) r.fill(" ");
        else if ((p[0] ?? 0) === 0) {
          row.fill(" ", this.c);
          for (let r = this.r + 1; r < this.rows; r++) this.grid[r]!.fill(" ");
        }
        break;
      case "H":
      case "f":
        this.r = Math.min(this.rows - 1, Math.max(0, (p[0] || 1) - 1));
        this.c = Math.min(this.cols - 1, Math.max(0, (p[1] || 1) - 1));
        break;
      case "A":
        this.r = Math.max(0, this.r - n);
        break;
      case "B":
        this.r = Math.min(this.rows - 1, this.r + n);
        break;
      case "C":
        this.c = Math.min(this.cols - 1, this.c + n);
        break;
      case "D":
        this.c = Math.max(0, this.c - n);
        break;
    }
  }

  text(): string {
    return this.grid.map((r) => r.join("").trimEnd()).join("\n");
  }
}

// ---- terminal drivers --------------------------------------------------------------

interface Term {
  /** Types literal text (no Enter). */
  type(text: string): Promise<void>;
  enter(): Promise<void>;
  /** The screen, row by row, trailing spaces trimmed. */
  screen(): Promise<string>;
  /** Everything the program wrote (escape codes included), where the driver can tell. */
  raw(): string | undefined;
  close(): Promise<void>;
}

type Driver = { name: string; available: () => boolean; open(name: string, cmd: string[], env: Record<string, string>): Promise<Term> };

/** Quotes for sh. */
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The command run in each terminal: the CLI, then a line with its exit status (kept on screen). */
function wrapped(cmd: string[], env: Record<string, string>): string {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${sh(v)}`);
  return `cd ${sh(ROOT)} && env ${vars.join(" ")} ${cmd.map(sh).join(" ")}; echo "[exited $?]"; sleep 600`;
}

const TMUX_SOCKET = `tcpchat-test-${process.pid}`;
const tmux = (...args: string[]) => Bun.spawnSync(["tmux", "-L", TMUX_SOCKET, ...args], { stdout: "pipe", stderr: "pipe" });

const tmuxDriver: Driver = {
  name: "tmux",
  available: () => Bun.which("tmux") !== null,
  async open(name, cmd, env) {
    const r = tmux("new-session", "-d", "-s", name, "-x", String(COLS), "-y", String(ROWS), wrapped(cmd, env));
    if (r.exitCode !== 0) throw new Error(`tmux new-session failed: ${r.stderr.toString()}`);
    return {
      async type(text) {
        tmux("send-keys", "-t", name, "-l", "--", text);
      },
      async enter() {
        tmux("send-keys", "-t", name, "Enter");
      },
      async screen() {
        return tmux("capture-pane", "-p", "-t", name).stdout.toString().replace(/\n$/, "");
      },
      raw: () => undefined,
      async close() {
        tmux("kill-session", "-t", name);
      },
    };
  },
};

/** Runs a command on a new pseudo-terminal of ROWS x COLS; relays our stdin to it and its output to our stdout. */
const PTY_RELAY = `
import os, pty, select, signal, struct, sys, fcntl, termios
rows, cols, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.execvp("sh", ["sh", "-c", cmd])
inp = sys.stdin.fileno()
watch = [fd, inp]
while True:
    r, _, _ = select.select(watch, [], [])
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        os.write(1, data)
    if inp in r:
        data = os.read(inp, 65536)
        if data:
            os.write(fd, data)
        else:
            watch.remove(inp)
            os.kill(pid, signal.SIGHUP)
os.waitpid(pid, 0)
`;

const ptyDriver: Driver = {
  name: "pty",
  available: () => Bun.which("python3") !== null,
  async open(_name, cmd, env) {
    const relay = join(tmp.dir, "pty_relay.py");
    if (!existsSync(relay)) writeFileSync(relay, PTY_RELAY);
    const proc = Bun.spawn(["python3", relay, String(ROWS), String(COLS), wrapped(cmd, env)], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    const emu = new Emulator(ROWS, COLS);
    let raw = "";
    const dec = new TextDecoder();
    void (async () => {
      for await (const chunk of proc.stdout) {
        emu.feed(chunk);
        raw += dec.decode(chunk, { stream: true });
      }
    })();
    const write = async (s: string) => {
      proc.stdin.write(s);
      await proc.stdin.flush();
    };
    return {
      type: write,
      enter: () => write("\r"),
      async screen() {
        return emu.text();
      },
      raw: () => raw,
      async close() {
        proc.kill("SIGKILL");
        await proc.exited;
      },
    };
  },
};

// ---- the scenario ------------------------------------------------------------------

const terms: Term[] = [];
const servers: RunningServer[] = [];

afterAll(async () => {
  for (const t of terms) await t.close();
  if (tmuxDriver.available()) tmux("kill-server");
  for (const s of servers) if (s.proc.exitCode === null) await s.stop();
  tmp.cleanup();
});

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** Polls the screen until `want` matches; fails showing the screen. */
async function waitFor(t: Term, want: RegExp | string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await t.screen();
    if (typeof want === "string" ? s.includes(want) : want.test(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${want} on screen:\n${s}`);
    await Bun.sleep(40);
  }
}

async function line(t: Term, text: string): Promise<void> {
  await t.type(text);
  await t.enter();
}

/** The last non-empty row: the input line. */
function inputRow(screen: string): string {
  return screen.split("\n").filter((r) => r.trim() !== "").at(-1) ?? "";
}

const TIME = String.raw`\d\d:\d\d:\d\d`;

async function until(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await Bun.sleep(50);
  }
}
const drivers = [tmuxDriver, ptyDriver].filter((d) => d.available());

test("at least the pseudo-terminal driver is available", () => {
  expect(drivers.map((d) => d.name)).toContain("pty");
});

describe.each(drivers.map((d) => [d.name, d] as const))("interactive client in a terminal (%s)", (name, driver) => {
  test(
    "two people chat, send a file and a direct message, come and go, survive a restart, read history",
    async () => {
      const port = freePort();
      const args = ["--db", join(tmp.dir, `${name}.db`), "--port", String(port), ...TEST_ARGS];
      let server = await startServer(args);
      servers.push(server);
      const A = `${name}_alice`;
      const B = `${name}_bob`;
      const dlA = join(tmp.dir, `${name}-a`);
      const dlB = join(tmp.dir, `${name}-b`);
      const base = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmp.dir, TERM: "xterm-256color" };
      const cli = (user: string, dl: string, ...more: string[]) => [...CLI, "--port", String(port), "--user", user, "--downloads", dl, ...more];

      // alice types her password at the prompt; it is not echoed
      const a = await driver.open(`${name}-a`, cli(A, dlA, "--register"), base);
      terms.push(a);
      await waitFor(a, `New password for ${A} (8 to 1024 bytes):`);
      await line(a, "secret-alice");
      await waitFor(a, "The same password again:");
      await line(a, "secret-alice");
      let sa = await waitFor(a, `logged in as ${A}`);
      expect(sa).not.toContain("secret-alice");
      // bob takes his from the environment; NO_COLOR turns colours off for him
      const bEnv = { ...base, TCPCHAT_PASSWORD: "secret-bob", NO_COLOR: "1" };
      let b = await driver.open(`${name}-b`, cli(B, dlB, "--register"), bEnv);
      terms.push(b);
      await waitFor(b, `logged in as ${B}`);
      expect(inputRow(await b.screen())).toBe(">");

      // joining a group nobody created says how to create it; alice creates it, bob joins
      await line(b, "/join lobby");
      await waitFor(b, "* there is no group #lobby (or it is private): /create lobby makes it, with you as its owner");
      expect(inputRow(await b.screen())).toBe(">");
      await line(a, "/create lobby");
      await waitFor(a, "created #lobby, you own it");
      expect(inputRow(await a.screen())).toBe("[#lobby] >");
      await line(b, "/join lobby");
      await waitFor(b, `joined #lobby (owner ${A})`);
      await waitFor(a, new RegExp(`^${TIME} \\* ${B} joined #lobby$`, "m")); // a notice in alice's view

      // a message, with timestamp, sender and conversation
      await line(b, "hello alice");
      await waitFor(a, new RegExp(`^${TIME} #lobby ${B}: hello alice$`, "m"));
      await waitFor(b, new RegExp(`^${TIME} #lobby ${B}: hello alice$`, "m")); // the sender sees it once stored

      // a message arriving while alice is typing does not garble her line
      await a.type("I am typ");
      await waitFor(a, /> I am typ$/m);
      await line(b, "interrupting you");
      sa = await waitFor(a, new RegExp(`^${TIME} #lobby ${B}: interrupting you$`, "m"));
      expect(inputRow(sa)).toBe("[#lobby] > I am typ");
      await line(a, "ing");
      await waitFor(b, new RegExp(`^${TIME} #lobby ${A}: I am typing$`, "m"));

      // a file: alice sends it; bob sees what it is and how to get it, and nothing is saved until he
      // asks (PROTOCOL.md §3.9); /get saves it under a safe name, checked, never overwriting: /get
      // again (the newest file here) makes a second copy; /get MID PATH saves it there
      const notes = join(tmp.dir, "notes.txt");
      writeFileSync(notes, "line one\nline two\n");
      await line(a, `/send-file ${notes}`);
      await waitFor(a, `sending "notes.txt" (18 B) to #lobby...`);
      await waitFor(a, new RegExp(`^${TIME} #lobby ${A}: \\[file "notes.txt", 18 B\\] \\(/get \\d+\\)$`, "m"));
      const shown = await waitFor(b, new RegExp(`^${TIME} #lobby ${A}: \\[file "notes.txt", 18 B\\] \\(/get (\\d+)\\)$`, "m"));
      const mid = /\[file "notes\.txt", 18 B\] \(\/get (\d+)\)/.exec(shown)![1]!;
      await Bun.sleep(200);
      expect(existsSync(dlB)).toBe(false);
      await line(b, `/get ${mid}`);
      const first = join(dlB, "notes.txt");
      await waitFor(b, `saved [file "notes.txt", 18 B] (SHA-256 checked) -> ${first}`);
      await line(b, "/get");
      const second = join(dlB, "notes (1).txt");
      await waitFor(b, `-> ${second}`);
      const mine = join(tmp.dir, `${name}-mine.txt`);
      await line(b, `/get ${mid} ${mine}`);
      await waitFor(b, `-> ${mine}`);
      for (const p of [first, second, mine]) expect(readFileSync(p, "utf8")).toBe("line one\nline two\n");
      await line(b, "/get 999999");
      await waitFor(b, "no file 999999 in #lobby");
      // a larger file: its upload's progress is in alice's status line as it goes
      const big = join(tmp.dir, "big.bin");
      writeFileSync(big, new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) & 0xff));
      await line(a, `/send-file ${big}`);
      const bigShown = await waitFor(b, new RegExp(`#lobby ${A}: \\[file "big.bin", 3.0 MB\\] \\(/get (\\d+)\\)$`, "m"));
      const raw = a.raw();
      if (raw !== undefined) expect(raw).toMatch(/\| ↑ big\.bin \d+%/);
      const bigMid = /\[file "big\.bin", 3\.0 MB\] \(\/get (\d+)\)/.exec(bigShown)![1]!;
      await line(b, `/get ${bigMid}`);
      await waitFor(b, `saved [file "big.bin", 3.0 MB] (SHA-256 checked) -> ${join(dlB, "big.bin")}`);
      expect(Buffer.compare(readFileSync(join(dlB, "big.bin")), readFileSync(big))).toBe(0);

      // a direct message: labelled with the other party on each side; bob sees it in its own
      // view, the second, which the status line says has something new; Alt-2 shows it, Alt-1 goes back
      await line(a, `/msg @${B} psst, just you`);
      await waitFor(a, new RegExp(`^${TIME} @${B} ${A}: psst, just you$`, "m"));
      await waitFor(b, `| new: 2:@${A}(1!)`);
      expect(await b.screen()).not.toContain("psst");
      await b.type("\x1b2");
      await waitFor(b, new RegExp(`^${TIME} @${A} ${A}: psst, just you$`, "m"));
      expect(inputRow(await b.screen())).toBe(`[@${A}] >`);
      await b.type("\x1b1");
      await waitFor(b, /^\[#lobby\] >$/m);

      // lists
      await line(b, "/members");
      await waitFor(b, `members of #lobby: ${A} (online, owner), ${B} (online)`);
      await line(b, "/who");
      await waitFor(b, `online: ${A}, ${B}`);
      await line(b, "/groups");
      await waitFor(b, `your groups: #lobby (owner ${A})`);
      await line(a, "/help");
      await waitFor(a, "/send-file PATH");
      await waitFor(a, "/get [ID] [PATH]");
      await line(a, "/nonsense");
      await waitFor(a, "unknown command /nonsense");

      // the server restarts: both notice, a message typed meanwhile arrives once, after
      expect(await server.stop()).toBe(0);
      await waitFor(a, "connection lost, reconnecting...");
      await waitFor(b, "connection lost, reconnecting...");
      await line(a, "typed while the server was down");
      await waitFor(a, "the message will be sent when the connection is back");
      server = await startServer(args);
      servers.push(server);
      await waitFor(a, "* reconnected");
      await waitFor(b, "* reconnected");
      const sb = await waitFor(b, new RegExp(`${A}: typed while the server was down$`, "m"));
      expect(sb.split("\n").filter((r) => r.includes("typed while the server was down")).length).toBe(1);

      // bob leaves: alice sees him go; she talks on; he comes back and reads the history
      await line(b, "/quit");
      await waitFor(b, "[exited 0]");
      await waitFor(a, new RegExp(`\\* ${B} went offline$`, "m"));
      await line(a, "while you were away");
      await waitFor(a, new RegExp(`#lobby ${A}: while you were away$`, "m"));
      await b.close();
      b = await driver.open(`${name}-b2`, cli(B, dlB, "--to", "lobby"), bEnv);
      terms.push(b);
      await waitFor(b, `logged in as ${B}`);
      await waitFor(a, new RegExp(`\\* ${B} is online$`, "m"));
      expect(inputRow(await b.screen())).toBe("[#lobby] >");
      await line(b, "/history 4");
      const hist = await waitFor(b, "end of history");
      const h = hist.split("\n");
      const from = h.findIndex((r) => r.includes("history of #lobby: 4 messages (more before)"));
      expect(from).toBeGreaterThanOrEqual(0);
      expect(h.slice(from + 1, from + 6).map((r) => r.replace(/^\d\d:\d\d:\d\d/, "TIME"))).toEqual([
        expect.stringMatching(new RegExp(`^TIME #lobby ${A}: \\[file "notes.txt", 18 B\\] \\(/get \\d+\\)$`)),
        expect.stringMatching(new RegExp(`^TIME #lobby ${A}: \\[file "big.bin", 3.0 MB\\] \\(/get \\d+\\)$`)),
        `TIME #lobby ${A}: typed while the server was down`,
        `TIME #lobby ${A}: while you were away`,
        expect.stringMatching(/^TIME \* end of history$/),
      ]);

      // colours: on for alice's terminal, off for bob (NO_COLOR); the pty driver sees the bytes
      const rawA = a.raw();
      const rawB = b.raw();
      if (rawA !== undefined && rawB !== undefined) {
        expect(rawA).toContain("\x1b[2m"); // dim timestamps
        expect(rawB).not.toMatch(/\x1b\[[0-9;]*m/);
      }

      // leaving shows the next view left: the direct conversation
      await line(b, "/leave");
      await waitFor(b, "* left #lobby");
      expect(inputRow(await b.screen())).toBe(`[@${A}] >`);
      await line(b, "/groups");
      await waitFor(b, "you are in no group");

      await line(a, "/quit");
      await waitFor(a, "[exited 0]");
      await line(b, "/quit");
      await waitFor(b, "[exited 0]");
      expect(await server.stop()).toBe(0);
    },
    90_000,
  );
});

describe("conversations in a terminal (pty)", () => {
  test(
    "unread at login, /next, reading moves the marker, /reply, /react, /edit, /delete, /search, others' edits, typing both ways",
    async () => {
      const port = freePort();
      const server = await startServer(["--db", join(tmp.dir, "conv.db"), "--port", String(port), ...TEST_ARGS]);
      servers.push(server);
      const { TestClient } = await import("./helpers/client.ts");
      const bob = await TestClient.connect(port);
      await bob.register("bob");
      await bob.login("bob");
      const alice = await TestClient.connect(port);
      await alice.register("alice");
      await alice.login("alice");
      await bob.ok({ t: "create", group: "ops" });
      await alice.ok({ t: "join", group: "ops" });
      // While alice is away: two in #ops (one mentions her), then a direct message.
      await bob.ok({ t: "send", group: "ops", text: "deploy at 5" });
      await bob.ok({ t: "send", group: "ops", text: "@alice can you check?" });
      await bob.ok({ t: "send", user: "alice", text: "psst" });
      const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmp.dir, TERM: "xterm-256color", NO_COLOR: "1", TCPCHAT_PASSWORD: "password1" };
      const a = await ptyDriver.open("conv-a", [...CLI, "--port", String(port), "--user", "alice", "--downloads", join(tmp.dir, "conv-dl")], env);
      terms.push(a);
      await waitFor(a, "logged in as alice");
      await waitFor(a, "* 1 new from @bob, 2 new in #ops (1 mention)");
      const unread = async () => {
        const r = await alice.ok({ t: "convs" });
        return Object.fromEntries(r.convs.map((c: Msg) => [c.group ?? `@${c.user}`, c.unread]));
      };
      // /next: the newest conversation with unread messages, shown and read.
      await line(a, "/next");
      await waitFor(a, "talking in @bob: 1 new");
      await waitFor(a, new RegExp(`^${TIME} @bob bob: psst$`, "m"));
      await until(async () => (await unread())["@bob"] === 0);
      expect(await unread()).toEqual({ "@bob": 0, ops: 2 });
      await line(a, "/to ops");
      await until(async () => (await unread()).ops === 0);
      // A message in the conversation being read is read.
      const lunch = await bob.ok({ t: "send", group: "ops", text: "lunch?" });
      await waitFor(a, new RegExp(`^${TIME} #ops bob: lunch\\?$`, "m"));
      await until(async () => (await alice.ok({ t: "convs" })).convs.find((c: Msg) => c.group === "ops").read >= lunch.mid);
      await line(a, "/reply sure");
      const reply = await bob.waitFor((m) => m.t === "msg" && m.text === "sure");
      expect(reply.reply).toBe(lunch.mid);
      await waitFor(a, `#ops alice (re ^${lunch.mid} bob: "lunch?"): sure`);
      await line(a, "/react +1");
      expect(await bob.waitFor((m) => m.t === "msg" && m.kind === "react")).toMatchObject({ ref: lunch.mid, emoji: "+1", from: "alice" });
      await waitFor(a, `alice reacted +1 to ^${lunch.mid}`);
      await line(a, "/edit sure, at one");
      expect(await bob.waitFor((m) => m.t === "msg" && m.kind === "edit")).toMatchObject({ ref: reply.mid, text: "sure, at one" });
      await waitFor(a, `alice edited ^${reply.mid}: sure, at one`);
      await line(a, "/delete");
      expect(await bob.waitFor((m) => m.t === "msg" && m.kind === "delete")).toMatchObject({ ref: reply.mid, from: "alice" });
      await line(a, "/search lunch");
      await waitFor(a, 'search "lunch": 1 message, newest first');
      await waitFor(a, new RegExp(`^${TIME} \\^${lunch.mid} #ops bob: lunch\\?$`, "m"));
      // Others' changes, and typing, as they happen.
      await bob.ok({ t: "edit", group: "ops", mid: lunch.mid, text: "lunch at noon?" });
      await waitFor(a, `#ops bob edited ^${lunch.mid}: lunch at noon?`);
      await bob.ok({ t: "typing", group: "ops" });
      await waitFor(a, /\[#ops\] bob is typing… >/);
      await a.type("on my w");
      expect(await bob.waitFor((m) => m.t === "typing")).toEqual({ t: "typing", from: "alice", group: "ops" });
      await a.enter();
      await line(a, "/unread");
      await waitFor(a, "* nothing unread");
      await line(a, "/quit");
      await waitFor(a, "[exited 0]");
      expect(await server.stop()).toBe(0);
    },
    60_000,
  );
});

describe("groups and safety in a terminal (pty)", () => {
  test(
    "create, a private group and an invitation, /list, join; an admin made; a mute refuses a send; kick and ban seen by all; /block refuses a DM; /history shows the changes",
    async () => {
      const port = freePort();
      const server = await startServer(["--db", join(tmp.dir, "groups.db"), "--port", String(port), ...TEST_ARGS]);
      servers.push(server);
      const { TestClient } = await import("./helpers/client.ts");
      const reg = await TestClient.connect(port);
      for (const u of ["ann", "ben", "cat"]) await reg.register(u);
      reg.close();
      const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmp.dir, TERM: "xterm-256color", NO_COLOR: "1", TCPCHAT_PASSWORD: "password1" };
      const open = async (user: string) => {
        const t = await ptyDriver.open(`grp-${user}`, [...CLI, "--port", String(port), "--user", user, "--downloads", join(tmp.dir, "grp-dl")], env);
        terms.push(t);
        await waitFor(t, `logged in as ${user}`);
        return t;
      };
      const ann = await open("ann");
      const ben = await open("ben");
      const cat = await open("cat");
      const notice = (text: string) => new RegExp(`^${TIME} \\* ${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m");

      // ann creates a public group with a topic, and a private one
      await line(ann, "/create lobby");
      await waitFor(ann, "created #lobby, you own it");
      await line(ann, "/topic deploys at five");
      await waitFor(ann, notice("you set the topic of #lobby: deploys at five"));
      await line(ann, "/topic");
      await waitFor(ann, notice("topic of #lobby: deploys at five"));
      await line(ann, "/create secret");
      await waitFor(ann, "created #secret, you own it");
      await line(ann, "/private");
      await waitFor(ann, notice("you made #secret private"));

      // /list finds the public one only; the private one cannot be joined, nor seen
      await line(ben, "/list");
      await waitFor(ben, notice("public groups: 1; /join GROUP joins one"));
      await waitFor(ben, notice("#lobby (1 member): deploys at five"));
      expect(await ben.screen()).not.toContain("#secret");
      await line(ben, "/list zzz");
      await waitFor(ben, notice('no public groups matching "zzz"'));
      await line(ben, "/join secret");
      await waitFor(ben, "there is no group #secret (or it is private)");

      // the invitation: a notice for the invitee, /invites lists it, /join takes it
      await line(ann, "/invite @ben");
      await waitFor(ann, notice("you invited ben to #secret"));
      await waitFor(ben, notice("ann invited you to #secret (/join secret)"));
      await line(ben, "/invites");
      await waitFor(ben, notice("invitations: #secret (from ann); /join GROUP accepts one"));
      await line(ben, "/join secret");
      await waitFor(ben, `joined #secret (owner ann)`);
      await waitFor(ann, notice("ben joined #secret"));
      await line(ann, "/invite cat");
      await waitFor(cat, notice("ann invited you to #secret (/join secret)"));
      await line(cat, "/join #secret");
      await waitFor(cat, "joined #secret (owner ann)");
      await waitFor(ann, notice("cat joined #secret"));
      await waitFor(ben, notice("cat joined #secret"));

      // roles: only the owner makes admins; a member cannot moderate
      await line(cat, "/kick @ben");
      await waitFor(cat, "! /kick: only the owner and admins of #secret can do that");
      await line(ann, "/op @ben");
      await waitFor(ann, notice("you made ben an admin of #secret"));
      await waitFor(ben, notice("ann made you an admin of #secret"));
      await waitFor(cat, notice("ann made ben an admin of #secret"));
      await line(ben, "/kick @ann");
      await waitFor(ben, "! /kick: ann ranks as high as you in #secret: an admin acts only on members, the owner on everyone");

      // a mute: seen by all; the muted one's message is refused in plain words
      await line(ben, "/mute @cat 10");
      await waitFor(ben, notice("you muted cat in #secret for 10 min"));
      await waitFor(ann, notice("ben muted cat in #secret for 10 min"));
      await waitFor(cat, notice("ben muted you in #secret for 10 min"));
      await line(cat, "can I still talk?");
      await waitFor(cat, /^! not sent to #secret: you are muted in #secret until (\d{4}-\d\d-\d\d )?\d\d:\d\d: you cannot send, edit or react there$/m);
      await line(ann, "/members");
      await waitFor(ann, /members of #secret: .*cat \(online, muted until (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\)/);
      await line(ben, "/unmute @cat");
      await waitFor(cat, notice("ben unmuted you in #secret"));
      await line(cat, "thanks");
      await waitFor(ann, new RegExp(`^${TIME} #secret cat: thanks$`, "m"));

      // a kick, then a ban: each seen by the others, and by the one removed
      await line(ben, "/kick @cat");
      await waitFor(ann, notice("ben kicked cat from #secret"));
      await waitFor(cat, notice("ben kicked you from #secret"));
      await line(ann, "/ban #secret @cat");
      await waitFor(ann, notice("you banned cat from #secret"));
      await waitFor(ben, notice("ann banned cat from #secret"));
      await line(cat, "/join secret");
      await waitFor(cat, "! /join: you cannot join that group: you are banned from it");
      await line(ann, "/invite @cat");
      await waitFor(ann, "! /invite: cat is banned from #secret: /unban @cat first");

      // blocking: a direct message refused, with the same words as a privacy setting
      await line(cat, "/msg @ben hello");
      await waitFor(ben, /\| new: \d:@cat\(1!\)$/m); // in its own view
      await line(ben, "/block @cat");
      await waitFor(ben, notice("blocked cat: their direct messages to you are refused (they are not told why)"));
      await line(ben, "/blocked");
      await waitFor(ben, notice("you block: cat"));
      await line(cat, "/msg @ben are you there?");
      await waitFor(cat, "! not sent to @ben: ben does not take direct messages from you");
      await line(ben, "/unblock @cat");
      await waitFor(ben, notice("unblocked cat"));
      await line(ben, "/dms nobody");
      await waitFor(ben, notice("nobody may send you direct messages (notes to yourself still work)"));
      await line(ann, "/msg @ben psst");
      await waitFor(ann, "! not sent to @ben: ben does not take direct messages from you");
      await line(ben, "/dms");
      await waitFor(ben, notice("nobody may send you direct messages (notes to yourself still work)"));
      expect(await ben.screen()).not.toContain("psst");

      // the group is handed on; /history shows the changes among the messages
      await line(ann, "/transfer @ben");
      await waitFor(ann, notice("you handed #secret on to ben"));
      await waitFor(ben, notice("ann handed #secret on to you"));
      await line(ann, "/history 6");
      const hist = await waitFor(ann, "end of history");
      const h = hist.split("\n");
      const from = h.findLastIndex((r) => r.includes("history of #secret: 1 message (more before)"));
      expect(from).toBeGreaterThanOrEqual(0);
      expect(h.slice(from + 1, from + 8).map((r) => r.replace(/^\d\d:\d\d:\d\d/, "TIME"))).toEqual([
        "TIME * ben muted cat in #secret for 10 min",
        "TIME * ben unmuted cat in #secret",
        "TIME #secret cat: thanks",
        "TIME * ben kicked cat from #secret",
        "TIME * you banned cat from #secret",
        "TIME * you handed #secret on to ben",
        expect.stringMatching(/^TIME \* end of history$/),
      ]);
      for (const t of [ann, ben, cat]) await line(t, "/quit");
      for (const t of [ann, ben, cat]) await waitFor(t, "[exited 0]");
      expect(await server.stop()).toBe(0);
    },
    90_000,
  );
});

describe("the emulator used by the pty driver", () => {
  test("scrolls, clears lines, moves the cursor", () => {
    const e = new Emulator(3, 10);
    e.feed(new TextEncoder().encode("\x1b[2J\x1b[3;1Hone\r\ntwo\r\nthree\r\x1b[2Kfour\x1b[1;1Hx\x1b[31mred\x1b[0m"));
    expect(e.text()).toBe("xred\ntwo\nfour");
  });
});
