// Unit tests of the terminal client's pieces: flags, safe file names, making
// text inert, key decoding, and the input line kept intact under printing.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, parseTarget, UsageError } from "../src/client/cli/args.ts";
import { safeFileName, saveDownload } from "../src/client/cli/files.ts";
import { ChatError, chatErrorFrom, IntegrityError } from "../src/client/errors.ts";
import { explain } from "../src/client/cli/explain.ts";
import { convLabel, duration, formatChange, formatMessage, type GroupChange, groupChangeOf, groupChangeText, groupNotice, inert, messageJson, unreadSummary } from "../src/client/cli/format.ts";
import { OwnChanges } from "../src/client/cli/own.ts";
import { Recent } from "../src/client/cli/recent.ts";
import { type Key, KeyReader } from "../src/client/cli/keys.ts";
import { Screen } from "../src/client/cli/screen.ts";
import { tempDir } from "./helpers/server.ts";

const tmp = tempDir("tcpchat-cli-units-");
afterAll(() => tmp.cleanup());

describe("flags", () => {
  test("defaults, values, = form, targets", () => {
    expect(parseArgs(["--user", "ann"])).toMatchObject({ host: "127.0.0.1", port: 7777, user: "ann", downloads: undefined, join: [], remember: false, listen: false, register: false });
    // the config file gives defaults, flags override them
    const file = { host: "10.1.1.1", port: 9, user: "cfg", downloads: "/d" };
    expect(parseArgs([], {}, file)).toMatchObject({ host: "10.1.1.1", port: 9, user: "cfg", downloads: "/d" });
    expect(parseArgs(["--user", "ann", "--port", "8", "--downloads", "x"], {}, file)).toMatchObject({ host: "10.1.1.1", port: 8, user: "ann", downloads: "x" });
    expect(parseArgs(["--user", "ann", "--join", "ops", "--join=#dev", "--remember"])).toMatchObject({ join: ["ops", "dev"], remember: true });
    expect(() => parseArgs(["--user", "ann", "--join", "@bob"])).toThrow("is not a group name");
    const o = parseArgs(["--user=ann", "--host", "10.0.0.1", "--port=9000", "--register", "--send", "hi", "--to", "@bob", "--timeout", "500"]);
    expect(o).toMatchObject({ host: "10.0.0.1", port: 9000, register: true, send: "hi", to: { user: "bob" }, timeoutMs: 500 });
    expect(parseArgs(["--user", "ann", "--listen", "--json", "--since", "42"])).toMatchObject({ listen: true, json: true, since: 42 });
    expect(parseArgs([], { TCPCHAT_USER: "env-user" }).user).toBe("env-user");
    expect(parseTarget("g")).toEqual({ group: "g" });
    expect(parseTarget("#g")).toEqual({ group: "g" });
    expect(parseTarget("@u")).toEqual({ user: "u" });
    expect(parseTarget("@")).toBeUndefined();
    expect(parseTarget("Upper")).toBeUndefined();
    expect(() => parseArgs(["--user"])).toThrow(UsageError);
    expect(() => parseArgs(["--user", "a", "--since", "1"])).toThrow("--since goes with --listen");
  });
});

describe("received file names", () => {
  test("keep only a harmless last path part", () => {
    const cases: [string, string][] = [
      ["photo.png", "photo.png"],
      ["../../etc/passwd", "passwd"],
      ["..\\..\\windows\\system32\\evil.dll", "evil.dll"],
      ["/absolute/path/x.txt", "x.txt"],
      ["..", "file"],
      [".", "file"],
      ["", "file"],
      [".bashrc", "bashrc"],
      ["a\x00b\x1b[31mc\x7f.txt", "ab[31mc.txt"],
      ["rtl\u202egnp.exe", "rtlgnp.exe"],
      ["what?<>|.txt", "what____.txt"],
      ["trailing dots...", "trailing dots"],
      ["CON", "_CON"],
      ["nul.txt", "_nul.txt"],
    ];
    for (const [name, want] of cases) expect(safeFileName(name)).toBe(want);
    const long = safeFileName(`${"é".repeat(300)}.jpeg`);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(200);
    expect(long.endsWith(".jpeg")).toBe(true);
  });

  test("are saved without overwriting anything", async () => {
    const dir = join(tmp.dir, "dl", "nested");
    const p1 = await saveDownload(dir, "../r.txt", new TextEncoder().encode("one"));
    const p2 = await saveDownload(dir, "r.txt", new TextEncoder().encode("two"));
    writeFileSync(join(dir, "r (2).txt"), "someone else's");
    const p3 = await saveDownload(dir, "r.txt", new TextEncoder().encode("three"));
    const p4 = await saveDownload(dir, "noext", new TextEncoder().encode("four"));
    const p5 = await saveDownload(dir, "noext", new TextEncoder().encode("five"));
    expect([p1, p2, p3, p4, p5]).toEqual(["r.txt", "r (1).txt", "r (3).txt", "noext", "noext (1)"].map((f) => join(dir, f)));
    expect(readFileSync(join(dir, "r (2).txt"), "utf8")).toBe("someone else's");
    expect(readFileSync(p3, "utf8")).toBe("three");
    expect(readdirSync(dir).length).toBe(6);
  });

  test("a download that fails on the way leaves no file behind", async () => {
    const dir = join(tmp.dir, "dl", "failing");
    async function* chunks() {
      yield new TextEncoder().encode("part");
      throw new Error("the bytes' SHA-256 is not the message's");
    }
    expect(await saveDownload(dir, "x.bin", chunks()).catch((e) => e.message)).toBe("the bytes' SHA-256 is not the message's");
    expect(readdirSync(dir)).toEqual([]);
    async function* fine() {
      yield new TextEncoder().encode("a");
      yield new TextEncoder().encode("b");
    }
    expect(readFileSync(await saveDownload(dir, "x.bin", fine()), "utf8")).toBe("ab");
  });
});

describe("file errors in plain words", () => {
  test("quota (bytes, or unsent uploads), too_large against max_file, a wrong hash, a missing file", () => {
    const limits = { max_file: 100 * 1024 * 1024, file_quota: 1024 * 1024 * 1024 };
    expect(explain(chatErrorFrom("quota", "your files take 1073000000 bytes: 5000000 more would pass your quota of 1073741824 bytes (--file-quota); deleting your messages with files frees it", "upload"), { request: "send-file", file: true, limits })).toBe(
      "no room for that file: your files on the server would take more than your quota of 1024.0 MB; delete some of your messages with files first",
    );
    expect(explain(chatErrorFrom("quota", "you have 16 uploads not yet sent, the most this server keeps (--max-uploads 16): send them, or let them expire", "upload"), { request: "send-file", file: true, limits })).toStartWith(
      "you have too many files being uploaded and not sent yet",
    );
    expect(explain(chatErrorFrom("too_large", "size over --max-file", "upload"), { request: "send-file", file: true, limits })).toBe(
      "that file is too large: the server takes files up to 100.0 MB",
    );
    expect(explain(new IntegrityError(5, "a".repeat(64), "b".repeat(64)))).toBe("the file that arrived is not the one that was sent (its SHA-256 differs): it was not kept");
    expect(explain(chatErrorFrom("not_found", "no such file", "download"), { request: "get" })).toStartWith("there is no such file");
  });
});

describe("formatting", () => {
  test("escape codes and controls from other users are made inert", () => {
    expect(inert("a\x1b[2Jb\x07c\u009bd")).toBe("a\ufffd[2Jb\ufffdc\ufffdd");
    expect(inert("x\r\ny\tz")).toBe("x \u21b5 y    z");
    expect(inert("x\ny", true)).toBe("x\ny");
  });

  test("a message line: time, conversation as seen by me, sender, text; continuation lines indented", () => {
    const ts = new Date(2030, 0, 2, 3, 4, 5).getTime();
    const plain = { color: false };
    expect(formatMessage({ mid: 1, ts, from: "bob", group: "g", text: "hi\nthere" }, "ann", plain)).toBe("03:04:05 #g bob: hi\n         there");
    expect(formatMessage({ mid: 1, ts, from: "ann", user: "bob", text: "psst" }, "ann", plain)).toBe("03:04:05 @bob ann: psst");
    expect(convLabel({ from: "bob", user: "ann" }, "ann")).toBe("@bob");
    const file = { name: "a.png", type: "image/png", size: 2048, sha256: "ab".repeat(32) };
    // A file is not saved as it arrives: its line says how to get it (PROTOCOL.md §3.9).
    expect(formatMessage({ mid: 1, ts, from: "bob", group: "g", file }, "ann", plain)).toBe('03:04:05 #g bob: [file "a.png", 2.0 kB] (/get 1)');
    expect(formatMessage({ mid: 7, ts, from: "bob", group: "g", text: "see", file }, "ann", plain)).toBe('03:04:05 #g bob: see\n         [file "a.png", 2.0 kB] (/get 7)');
    expect(formatMessage({ mid: 1, ts, from: "bob", group: "g", file: { ...file, name: "x\x1b[2J.png" } }, "ann", plain)).toBe('03:04:05 #g bob: [file "x\ufffd[2J.png", 2.0 kB] (/get 1)');
    expect(formatMessage({ mid: 1, ts, from: "bob", group: "g", file }, "ann", plain, "dl/a.png")).toBe('03:04:05 #g bob: [file "a.png", 2.0 kB] -> dl/a.png');
    const coloured = formatMessage({ mid: 1, ts, from: "bob", group: "g", text: "hi" }, "ann", { color: true });
    expect(coloured).toContain("\x1b[2m03:04:05\x1b[0m");
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, "")).toBe("03:04:05 #g bob: hi");
    expect(JSON.parse(messageJson({ mid: 1, ts, from: "bob", group: "g", file }, "dl/a.png"))).toEqual({
      mid: 1,
      ts,
      from: "bob",
      group: "g",
      file: { name: "a.png", type: "image/png", size: 2048, sha256: "ab".repeat(32), saved: "dl/a.png" },
    });
  });
});

describe("conversations in the terminal", () => {
  const ts = new Date(2030, 0, 2, 3, 4, 5).getTime();
  const plain = { color: false };

  test("replies quote what they answer, edited and deleted messages say so, reactions follow, ids on request", () => {
    const recent = new Recent("ann");
    recent.add({ mid: 7, ts, from: "bob", group: "g", text: "shall we have lunch at the usual place, at one?" });
    const view = { quote: (mid: number) => recent.quote(mid) };
    expect(formatMessage({ mid: 8, ts, from: "ann", group: "g", text: "yes", reply: 7 }, "ann", plain, undefined, view)).toBe(
      '03:04:05 #g ann (re ^7 bob: "shall we have lunch at the us…"): yes',
    );
    expect(formatMessage({ mid: 8, ts, from: "ann", group: "g", text: "yes", reply: 6 }, "ann", plain, undefined, view)).toBe("03:04:05 #g ann (re ^6): yes");
    expect(formatMessage({ mid: 9, ts, from: "bob", group: "g", text: "a\nb", edited: ts }, "ann", plain)).toBe("03:04:05 #g bob: a\n         b (edited)");
    expect(formatMessage({ mid: 9, ts, from: "bob", group: "g", deleted: ts }, "ann", plain, undefined, { ids: true })).toBe("03:04:05 ^9 #g bob: (deleted)");
    expect(
      formatMessage({ mid: 9, ts, from: "bob", user: "ann", text: "hi", reactions: [{ emoji: "👍", users: ["ann", "bob"] }, { emoji: "\x1b[2J", users: ["bob"] }] }, "ann", plain),
    ).toBe("03:04:05 @bob bob: hi\n         👍 ann, bob; \ufffd[2J bob");
  });

  test("edits, deletions and reactions of others; the unread summary", () => {
    expect(formatChange({ mid: 10, ts, from: "bob", group: "g", ref: 7, text: "new text" }, "edit", "ann", plain)).toBe("03:04:05 #g bob edited ^7: new text");
    expect(formatChange({ mid: 10, ts, from: "bob", user: "ann", ref: 7 }, "delete", "ann", plain, 'bob: "x"')).toBe('03:04:05 @bob bob deleted ^7 (bob: "x")');
    expect(formatChange({ mid: 10, ts, from: "bob", group: "g", ref: 7, emoji: "👍", add: true }, "reaction", "ann", plain)).toBe("03:04:05 #g bob reacted 👍 to ^7");
    expect(formatChange({ mid: 10, ts, from: "bob", group: "g", ref: 7, emoji: "👍", add: false }, "reaction", "ann", plain)).toBe("03:04:05 #g bob took back 👍 on ^7");
    expect(unreadSummary([])).toBe("nothing unread");
    expect(
      unreadSummary([
        { group: "ops", last: 9, read: 1, unread: 3, mentions: 1 },
        { user: "alice", last: 8, read: 0, unread: 1, mentions: 0 },
        { group: "quiet", last: 5, read: 5, unread: 0, mentions: 0 },
      ]),
    ).toBe("3 new in #ops (1 mention), 1 new from @alice");
  });

  test("what was seen: the last message here (yours, or someone else's), edited and deleted", () => {
    const r = new Recent("ann");
    r.add({ mid: 3, ts, from: "bob", group: "g", text: "b1" });
    r.add({ mid: 5, ts, from: "ann", group: "g", text: "a1" });
    r.add({ mid: 4, ts, from: "bob", user: "ann", text: "dm" });
    r.add({ mid: 6, ts, from: "ann", group: "g", kind: "edit", ref: 5, text: "an entry: not kept" });
    r.add({ mid: 2, ts, from: "bob", group: "g", text: "older, from a history page" });
    expect(r.last({ group: "g" })).toBe(5);
    expect(r.last({ group: "g" }, (s) => s.from !== "ann")).toBe(3);
    expect(r.last({ user: "bob" })).toBe(4);
    r.edited(3, "b1 edited");
    expect(r.quote(3)).toBe('bob: "b1 edited"');
    r.deleted(5);
    expect(r.last({ group: "g" })).toBe(3);
    expect(r.quote(5)).toBeUndefined();
  });
});

describe("keys", () => {
  const keysOf = (...chunks: (string | number[])[]) => {
    const out: Key[] = [];
    const r = new KeyReader((k) => out.push(k));
    for (const c of chunks) r.push(typeof c === "string" ? new TextEncoder().encode(c) : new Uint8Array(c));
    return out;
  };

  test("text, enter, editing and control keys; CR LF is one enter", () => {
    expect(keysOf("ab\r", "c\r\n", "\x7f\x08\x03\x04\x15\x17")).toEqual([
      { kind: "text", text: "ab" },
      { kind: "enter" },
      { kind: "text", text: "c" },
      { kind: "enter" },
      { kind: "backspace" },
      { kind: "backspace" },
      { kind: "interrupt" },
      { kind: "eof" },
      { kind: "kill-line" },
      { kind: "kill-word" },
    ]);
  });

  test("a UTF-8 character or an escape sequence split across reads is put back together", () => {
    const e = [...new TextEncoder().encode("é")];
    expect(keysOf([e[0]!], [e[1]!, 0x78])).toEqual([{ kind: "text", text: "éx" }]);
    expect(keysOf("a\x1b[", "1;5D", "b")).toEqual([{ kind: "text", text: "a" }, { kind: "word-left" }, { kind: "text", text: "b" }]);
    expect(keysOf("\x1bOA")).toEqual([{ kind: "up" }]);
    expect(keysOf("\x1b[15~")).toEqual([{ kind: "ignored" }]); // F5: not typed into the line
  });
});

describe("the input line", () => {
  test("printing clears the status and input rows, writes above, and draws both again, the cursor where the editor has it", () => {
    const out: string[] = [];
    const s = new Screen({ write: (x) => out.push(x) }, () => ({ columns: 20, rows: 5 }), true);
    s.setPrompt("[#g] > ");
    s.setStatus("[1:#g] a@h up");
    s.start();
    // bracketed paste on, screen cleared, status on row 4, input on row 5
    expect(out.join("")).toBe("\x1b[?2004h\x1b[2J\x1b[4;1H\x1b[4;1H[1:#g] a@h up\r\n[#g] > \r\x1b[7C");
    out.length = 0;
    s.setInput({ text: "hel", cursor: 3 });
    s.print("12:00:00 bob: hi\nsecond line");
    expect(out.at(-1)).toBe("\r\x1b[2K\x1b[A\r\x1b[2K12:00:00 bob: hi\r\nsecond line\r\n[1:#g] a@h up\r\n[#g] > hel\r\x1b[10C");
    s.setInput({ text: "hello there, long line", cursor: 22 });
    // only the part around the cursor is shown: it never wraps onto a second row
    expect(out.at(-1)).toBe("\r\x1b[2K\x1b[A\r\x1b[2K[1:#g] a@h up\r\n[#g] > e, long line\r\x1b[19C"); // 7 of prompt, 12 of text, 1 for the cursor
    s.setInput({ text: "hello there, long line", cursor: 0 });
    expect(out.at(-1)).toBe("\r\x1b[2K\x1b[A\r\x1b[2K[1:#g] a@h up\r\n[#g] > hello there,\r\x1b[7C");
    s.stop();
    expect(out.at(-1)).toBe("\r\x1b[2K\x1b[A\r\x1b[2K\x1b[?2004l");
  });

  test("lines of another view are kept, not shown; showing that view draws them", () => {
    const out: string[] = [];
    const s = new Screen({ write: (x) => out.push(x) }, () => ({ columns: 20, rows: 6 }), true);
    s.showView("#a");
    s.start();
    s.print("in a");
    out.length = 0;
    s.print("in b", "@b");
    expect(out).toEqual([]);
    s.showView("@b");
    // pane of 4 rows: the one line of @b on row 4, just above the status line
    expect(out.join("")).toBe("\x1b[2J\x1b[4;1Hin b\r\n\x1b[5;1H\r\n> \r\x1b[2C");
    out.length = 0;
    s.showView("#a");
    expect(out.join("")).toContain("in a\r\n");
  });

  test("without a terminal it prints plain lines only, of every view", () => {
    const out: string[] = [];
    const s = new Screen({ write: (x) => out.push(x) }, () => ({ columns: 20, rows: 5 }), false);
    s.start();
    s.setInput({ text: "abc", cursor: 3 });
    s.print("a line");
    s.print("elsewhere", "@x");
    expect(out).toEqual(["a line\n", "elsewhere\n"]);
  });
});

describe("changes to groups as notices", () => {
  const at = Date.UTC(2030, 0, 1, 12, 0, 0);
  const e = (kind: string, more: Partial<GroupChange> = {}): GroupChange => ({ group: "ops", ts: at, from: "alice", target: "bob", kind: kind as GroupChange["kind"], ...more });
  const says = (g: GroupChange, me = "carol") => groupChangeText(g, me);

  test("each kind in words, as the others read it", () => {
    expect(says(e("create", { target: "alice" }))).toBe("alice created #ops");
    expect(says(e("join", { from: "bob" }))).toBe("bob joined #ops");
    expect(says(e("leave", { from: "bob" }))).toBe("bob left #ops");
    expect(says(e("invite"))).toBe("alice invited bob to #ops");
    expect(says(e("kick"))).toBe("alice kicked bob from #ops");
    expect(says(e("ban"))).toBe("alice banned bob from #ops");
    expect(says(e("unban"))).toBe("alice lifted the ban on bob in #ops");
    expect(says(e("mute", { until: at + 10 * 60_000 }))).toBe("alice muted bob in #ops for 10 min");
    expect(says(e("mute", { until: at + 3 * 3600_000 }))).toBe("alice muted bob in #ops for 3 h");
    expect(says(e("mute"))).toBe("alice muted bob in #ops until unmuted");
    expect(says(e("unmute"))).toBe("alice unmuted bob in #ops");
    expect(says(e("role", { role: "admin" }))).toBe("alice made bob an admin of #ops");
    expect(says(e("role", { role: "member" }))).toBe("alice made bob a member of #ops (no longer an admin)");
    expect(says(e("owner"))).toBe("alice handed #ops on to bob");
    expect(says(e("settings", { settings: { topic: "deploys" } }))).toBe("alice set the topic of #ops: deploys");
    expect(says(e("settings", { settings: { public: false, topic: "" } }))).toBe("alice made #ops private; cleared the topic of #ops");
    expect(says(e("settings", { settings: { topic: "x\x1b[2Jy" } }))).toBe("alice set the topic of #ops: x\ufffd[2Jy"); // made inert
  });

  test("'you' for this user; an invitation says how to accept it; unknown kinds are ignored", () => {
    expect(says(e("invite", { group: "secret" }), "bob")).toBe("alice invited you to #secret (/join secret)");
    expect(says(e("kick"), "alice")).toBe("you kicked bob from #ops");
    expect(says(e("owner"), "bob")).toBe("alice handed #ops on to you");
    expect(says(e("merge"))).toBeUndefined();
    expect(says(e("role", { role: "emperor" }))).toBeUndefined();
    expect(groupNotice({ color: false }, e("kick"), "carol")).toMatch(/^\d\d:\d\d:\d\d \* alice kicked bob from #ops$/);
  });

  test("entries of a history page: a change to a group is one; a message, an edit or an unknown kind is not", () => {
    expect(groupChangeOf({ mid: 5, ts: at, from: "alice", group: "ops", kind: "mute", target: "bob", until: at + 60_000 })).toEqual(e("mute", { until: at + 60_000 }));
    expect(groupChangeOf({ mid: 5, ts: at, from: "bob", group: "ops", kind: "join" })).toEqual(e("join", { from: "bob", target: "bob" }));
    expect(groupChangeOf({ mid: 5, ts: at, from: "bob", group: "ops", text: "hi" })).toBeUndefined();
    expect(groupChangeOf({ mid: 5, ts: at, from: "bob", group: "ops", kind: "edit", ref: 3, text: "x" })).toBeUndefined();
    expect(groupChangeOf({ mid: 5, ts: at, from: "bob", group: "ops", kind: "later" as never })).toBeUndefined();
    expect(duration(0)).toBe("1 min");
    expect(duration(3 * 86400_000)).toBe("3 days");
  });

  test("a change this client made is said once, whether its push comes before or after the reply", () => {
    const own = new OwnChanges("alice");
    const kick = e("kick");
    let end = own.begin("kick", "ops", "bob");
    end(10);
    expect(own.show(10, kick)).toBe(false); // the reply came first: the command said it
    end = own.begin("kick", "ops", "bob");
    expect(own.show(11, kick)).toBe(false); // the push came first: the command will say it
    end(11);
    expect(own.show(11, kick)).toBe(true); // (a replay later is shown)
    expect(own.show(12, e("kick", { from: "dave" }))).toBe(true); // someone else's
    end = own.begin("kick", "ops", "bob");
    end(); // refused: nothing pending
    expect(own.show(13, kick)).toBe(true); // the same change from another device
  });

  test("refusals of group and safety requests in plain words", () => {
    const err = (code: string, msg: string, request: string) => new ChatError(code as never, msg, request);
    expect(explain(err("forbidden", 'you are muted in "ops"', "send"), { where: "#ops" })).toBe("you are muted in #ops until a moderator unmutes you: you cannot send, edit or react there");
    expect(explain(err("forbidden", "bob does not take direct messages from you", "send"), { where: "@bob" })).toBe("bob does not take direct messages from you");
    expect(explain(err("forbidden", "only the owner and admins of ops can kick", "kick"), { where: "#ops", user: "bob" })).toBe("only the owner and admins of #ops can do that");
    expect(explain(err("forbidden", "bob is banned from ops: unban them first", "invite"), { where: "#ops", user: "bob" })).toBe("bob is banned from #ops: /unban @bob first");
    expect(explain(err("forbidden", "only the owner of ops can hand it on", "transfer"), { where: "#ops", user: "bob" })).toBe("only the owner of #ops can do that");
    expect(explain(err("forbidden", "you own ops: hand it on first (transfer), or be its last member", "leave"), { where: "#ops" })).toBe(
      "you own #ops and others are still in it: hand it on first (/transfer @USER)",
    );
    expect(explain(err("not_found", "bob is not a member of ops", "kick"), { where: "#ops", user: "bob" })).toBe("bob is not a member of #ops");
    expect(explain(err("not_found", 'no user "zed"', "ban"), { where: "#ops", user: "zed" })).toBe('there is no user "zed"');
    expect(explain(err("conflict", "bob is a member of ops already", "invite"), { where: "#ops", user: "bob" })).toBe("bob is a member of #ops already");
    expect(explain(err("conflict", "ops exists already", "create"), { where: "#ops" })).toBe("that name is taken: /join ops joins it, if it is public");
  });
});
