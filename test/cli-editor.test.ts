// Unit tests of the terminal client's pure pieces added for issue #16: the line
// editor (src/client/cli/editor.ts), the key decoder (keys.ts), the views and
// their status line (views.ts), plain-language errors (explain.ts), the config
// file and the saved logins (config.ts), and saving a message's file once (files.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ChatError, DisconnectedError } from "../src/client/errors.ts";
import { ConfigError, configDir, readConfig, TokenStore } from "../src/client/cli/config.ts";
import { applyKey, type Completer, type EditorState, emptyEditor, graphemes, view } from "../src/client/cli/editor.ts";
import { explain, passwordProblem } from "../src/client/cli/explain.ts";
import { saveDownloadOnce } from "../src/client/cli/files.ts";
import { type Key, KeyReader } from "../src/client/cli/keys.ts";
import { Views } from "../src/client/cli/views.ts";
import { tempDir } from "./helpers/server.ts";

const tmp = tempDir("tcpchat-cli-editor-");
afterAll(() => tmp.cleanup());

const KINDS = new Set(["enter", "backspace", "delete", "left", "right", "up", "down", "home", "end", "word-left", "word-right", "kill-line", "kill-end", "kill-word", "kill-word-right", "yank", "tab"]);

/** Applies keys: strings are typed, unless they name a key (KINDS). */
function run(keys: (string | Key["kind"] | Key)[], st: EditorState = emptyEditor(), completer?: Completer): { st: EditorState; submitted: string[] } {
  const submitted: string[] = [];
  for (const k of keys) {
    const key: Key = typeof k === "object" ? k : KINDS.has(k) ? ({ kind: k } as Key) : { kind: "text", text: k };
    const r = applyKey(st, key, completer);
    st = r.state;
    if (r.submit !== undefined) submitted.push(r.submit);
  }
  return { st, submitted };
}
const text = (s: string): Key => ({ kind: "text", text: s });

describe("the line editor", () => {
  test("typing helo, Left, Left, l gives hello; Home, End, Ctrl-A/E move to the ends", () => {
    expect(run(["helo", "left", "left", "l"]).st).toMatchObject({ text: "hello", cursor: 3 });
    expect(run([text("helo"), "left", "left", text("l")]).st.text).toBe("hello");
    expect(run([text("world"), "home", text("hello "), "end", text("!")]).st.text).toBe("hello world!");
    expect(run([text("abc"), "right", "right"]).st.cursor).toBe(3); // not past the end
    expect(run([text("abc"), "home", "left"]).st.cursor).toBe(0);
  });

  test("Backspace, Delete, Left and Right take whole graphemes: a ZWJ family, a flag, e + combining accent", () => {
    const family = "👨‍👩‍👧";
    expect(family.length).toBe(8); // eight UTF-16 units, five code points
    expect(run([text(`hi ${family}`), "backspace"]).st).toMatchObject({ text: "hi ", cursor: 3 });
    expect(run([text(`a${family}b`), "left", "left", "backspace"]).st.text).toBe(`${family}b`);
    expect(run([text(`a${family}b`), "home", "right", "delete"]).st.text).toBe("ab");
    expect(run([text("🇫🇷x"), "left", "backspace"]).st.text).toBe("x");
    // a combining mark typed after its letter joins it: one grapheme, one Backspace
    expect(run([text("e"), text("\u0301"), "backspace"]).st.text).toBe("");
    expect(graphemes(`日本${family}e\u0301`)).toEqual(["日", "本", family, "e\u0301"]);
  });

  test("word jumps and kills: Alt-b/Alt-f, Ctrl-W, Ctrl-U, Ctrl-K, Alt-d; Ctrl-Y puts back what was killed", () => {
    const line = "send the report now";
    expect(run([text(line), "word-left"]).st.cursor).toBe(line.indexOf("now"));
    expect(run([text(line), "word-left", "word-left"]).st.cursor).toBe(line.indexOf("report"));
    expect(run([text(line), "home", "word-right"]).st.cursor).toBe(4);
    expect(run([text(line), "home", "word-right", "word-right"]).st.cursor).toBe(8);
    expect(run([text(line), "kill-word"]).st.text).toBe("send the report ");
    expect(run([text(line), "kill-word", "kill-word"]).st.text).toBe("send the ");
    expect(run([text(line), "word-left", "kill-line"]).st).toMatchObject({ text: "now", cursor: 0 });
    expect(run([text(line), "word-left", "word-left", "kill-end"]).st.text).toBe("send the ");
    expect(run([text(line), "home", "kill-word-right"]).st.text).toBe(" the report now");
    const y = run([text(line), "word-left", "kill-end", "home", "yank"]).st;
    expect(y.text).toBe("nowsend the report ");
    // words of other scripts are words too
    expect(run([text("日本語 テキスト"), "kill-word"]).st.text).toBe("日本語 ");
  });

  test("Enter gives the line and keeps it for Up/Down; the line being written is kept while browsing", () => {
    const r = run([text("first"), "enter", text("second"), "enter", text("draft"), "up"]);
    expect(r.submitted).toEqual(["first", "second"]);
    expect(r.st.text).toBe("second");
    const up2 = run(["up"], r.st).st;
    expect(up2.text).toBe("first");
    expect(run(["up"], up2).st.text).toBe("first"); // the oldest stays
    expect(run(["down"], up2).st.text).toBe("second");
    expect(run(["down", "down"], up2).st).toMatchObject({ text: "draft", cursor: 5 });
    // a recalled line is edited and entered as a new one; repeats and empty lines are not kept twice
    const again = run(["up", "up", text("!"), "enter", "up"], r.st);
    expect(again.submitted).toEqual(["first!"]);
    expect(again.st.history).toEqual(["first", "second", "first!"]);
    expect(run([text("x"), "enter", text("x"), "enter", "enter"]).st.history).toEqual(["x"]);
  });

  test("Tab completes the word before the cursor: one candidate with a space, several in turn", () => {
    const completer: Completer = (word, first) => {
      if (first && word.startsWith("/")) return ["/join", "/juggle", "/leave", "/help"];
      if (word.startsWith("#")) return ["#ops", "#dev"];
      if (word.startsWith("@")) return ["@bob", "@bobby", "@carol"];
      return [];
    };
    expect(run([text("/le"), "tab"], undefined, completer).st).toMatchObject({ text: "/leave ", cursor: 7 });
    expect(run([text("/j"), "tab"], undefined, completer).st.text).toBe("/join");
    expect(run([text("/j"), "tab", "tab"], undefined, completer).st.text).toBe("/juggle");
    expect(run([text("/j"), "tab", "tab", "tab"], undefined, completer).st.text).toBe("/join");
    expect(run([text("hi @ca"), "tab", text("!")], undefined, completer).st.text).toBe("hi @carol !");
    expect(run([text("see #o"), "tab"], undefined, completer).st.text).toBe("see #ops ");
    // in the middle of a line: what is after the cursor stays
    expect(run([text("@b and more"), "home", "right", "right", "tab", "tab"], undefined, completer).st.text).toBe("@bobby and more");
    // commands only at the start; nothing to complete: nothing changes
    expect(run([text("x /j"), "tab"], undefined, completer).st.text).toBe("x /j");
    expect(run([text("plain"), "tab"], undefined, completer).st.text).toBe("plain");
  });

  test("a paste is inserted as it is, newlines kept (one message), CR LF as LF, escape codes and trailing newlines dropped", () => {
    const r = run([text(">"), { kind: "paste", text: "one\r\ntwo\x1b[31m\nthree\n\n" }, "enter"]);
    expect(r.submitted).toEqual([">one\ntwo[31m\nthree"]);
  });

  test("the view of a long line follows the cursor; wide characters count two columns", () => {
    const st = run([text("0123456789abcdef")]).st;
    // 10 columns of text, the cursor just after them (the screen keeps a column for it)
    expect(view(st, 10)).toEqual({ text: "6789abcdef", column: 10, from: 6 });
    const home = run(["home"], st).st;
    expect(view(home, 10, 7)).toEqual({ text: "0123456789", column: 0, from: 0 });
    const cjk = run([text("日本語"), "left"]).st;
    expect(view(cjk, 20)).toEqual({ text: "日本語", column: 4, from: 0 });
    expect(view(run([text("a\nb")]).st, 20).text).toBe("a\u21b5b");
  });
});

describe("keys", () => {
  const keysOf = (...chunks: string[]) => {
    const out: Key[] = [];
    const r = new KeyReader((k) => out.push(k));
    for (const c of chunks) r.push(new TextEncoder().encode(c));
    return { out, r };
  };
  const kinds = (...chunks: string[]) => keysOf(...chunks).out.map((k) => k.kind);

  test("arrows, Home/End in their several spellings, Delete, Ctrl and Alt keys", () => {
    expect(kinds("\x1b[D\x1b[C\x1b[A\x1b[B\x1bOD\x1bOC")).toEqual(["left", "right", "up", "down", "left", "right"]);
    expect(kinds("\x1b[H\x1b[F\x1bOH\x1bOF\x1b[1~\x1b[4~\x1b[7~\x1b[8~\x01\x05")).toEqual(["home", "end", "home", "end", "home", "end", "home", "end", "home", "end"]);
    expect(kinds("\x1b[1;5D\x1b[1;5C\x1b[1;3D\x1bb\x1bf\x1bOd\x1bOc")).toEqual(["word-left", "word-right", "word-left", "word-left", "word-right", "word-left", "word-right"]);
    expect(kinds("\x1b[3~\x0b\x15\x17\x1b\x7f\x1bd\x19\x09\x0c")).toEqual(["delete", "kill-end", "kill-line", "kill-word", "kill-word", "kill-word-right", "yank", "tab", "redraw"]);
    expect(keysOf("\x1b1\x1b9\x1b0\x1bn").out).toEqual([{ kind: "view", n: 1 }, { kind: "view", n: 9 }, { kind: "view", n: 10 }, { kind: "next-unread" }]);
  });

  test("a bracketed paste is one event, whatever it holds and however it is split", () => {
    expect(keysOf("a\x1b[200~line 1\r\nline 2\x1b[A\x03\x1b[201~b").out).toEqual([
      { kind: "text", text: "a" },
      { kind: "paste", text: "line 1\r\nline 2\x1b[A\x03" },
      { kind: "text", text: "b" },
    ]);
    expect(keysOf("\x1b[20", "0~one\n", "two\x1b[2", "01~\r").out).toEqual([{ kind: "paste", text: "one\ntwo" }, { kind: "enter" }]);
  });

  test("a lone ESC waits for what follows; flush() makes it the Escape key", () => {
    const { out, r } = keysOf("x\x1b");
    expect(out).toEqual([{ kind: "text", text: "x" }]);
    expect(r.pending).toBe(true);
    r.flush();
    expect(out.at(-1)).toEqual({ kind: "ignored" });
    r.push(new TextEncoder().encode("y"));
    expect(out.at(-1)).toEqual({ kind: "text", text: "y" }); // not Alt-y
  });
});

describe("views", () => {
  test("numbered as opened; unseen messages counted outside the view shown; the status line says it", () => {
    const v = new Views();
    v.fromConversations([
      { user: "bob", last: 9, read: 5, unread: 2, mentions: 0 },
      { group: "ops", last: 8, read: 8, unread: 0, mentions: 0 },
    ]);
    v.current = "#ops";
    expect(v.status("alice", "h:1", "connected")).toBe("[2:#ops] alice@h:1 connected | new: 1:@bob(2!)");
    v.arrived({ group: "ops" }, false); // the view shown: not counted
    v.arrived({ group: "dev" }, false); // a new conversation: a new view
    v.arrived({ group: "dev" }, true);
    expect(v.byNumber(3)?.key).toBe("#dev");
    expect(v.status("alice", "h:1", "reconnecting…")).toBe("[2:#ops] alice@h:1 reconnecting… | new: 1:@bob(2!) 3:#dev(2!)");
    v.current = "@bob";
    v.seen("@bob");
    v.close("#ops");
    expect(v.status("alice", "h:1", "connected")).toBe("[1:@bob] alice@h:1 connected | new: 2:#dev(2!)");
    expect(new Views().status("a", "h", "connected")).toStartWith("[no conversation: /join GROUP or /to @USER]");
  });
});

describe("plain-language errors", () => {
  test("codes become sentences, with the server's limit; no codes or setting names", () => {
    const e = (code: string, msg = "x", req = "send") => new ChatError(code, msg, req);
    expect(explain(e("too_large", "the message is 70000 bytes, over maxRequestFrame (4194304)"), { limits: { max_text: 65536, max_frame: 4194304 } })).toBe(
      "that message is too long (the server allows 65536 bytes)",
    );
    expect(explain(e("too_large"), { file: true, limits: { max_text: 65536, max_frame: 4194304, max_file: 100 * 1024 * 1024 } })).toBe(
      "that file is too large: the server takes files up to 100.0 MB",
    );
    expect(explain(e("too_large"), { file: true, limits: { max_text: 65536, max_frame: 4194304 } })).toBe("that file is too large for the server");
    expect(explain(e("forbidden"), { where: "#ops" })).toBe("you are not allowed to do that in #ops (are you a member? /join ops first)");
    expect(explain(e("not_found"), { where: "@zed" })).toBe('there is no user "zed"');
    expect(explain(e("unauthorized", "bad", "login"))).toBe("wrong user name or password");
    expect(explain(e("rate_limited", "too many failed password checks: retry in 4 s", "login"))).toContain("try again in 4 s");
    expect(explain(e("bad_request", "'pass' must be a string of 8 to 1024 bytes", "register"))).not.toContain("'pass'");
    expect(explain(new DisconnectedError("send"))).toBe("not connected to the server");
    for (const code of ["bad_frame", "bad_request", "unknown_type", "too_large", "unauthorized", "forbidden", "not_found", "conflict", "rate_limited", "unavailable", "internal"]) {
      const s = explain(e(code, "maxRequestFrame --max-text"));
      expect(s).not.toContain(code);
      expect(s).not.toMatch(/maxRequestFrame|--max/);
    }
    expect(passwordProblem("short")).toBe("that password is too short: it needs 8 to 1024 bytes, it has 5");
    expect(passwordProblem("long enough")).toBeUndefined();
    expect(passwordProblem("é".repeat(513))).toContain("too long");
  });
});

describe("config file and saved logins", () => {
  test("read from $XDG_CONFIG_HOME or ~/.config, checked; tokens saved 0600 and removed", () => {
    const home = join(tmp.dir, "home");
    const env = { HOME: home };
    expect(configDir(env)).toBe(join(home, ".config", "tcpchat"));
    expect(configDir({ HOME: home, XDG_CONFIG_HOME: join(tmp.dir, "xdg") })).toBe(join(tmp.dir, "xdg", "tcpchat"));
    expect(readConfig(env)).toEqual({});
    mkdirSync(configDir(env), { recursive: true });
    writeFileSync(join(configDir(env), "config.json"), JSON.stringify({ host: "h", port: 9000, user: "ann", downloads: "~/dl" }));
    expect(readConfig(env)).toEqual({ host: "h", port: 9000, user: "ann", downloads: join(home, "dl") });
    writeFileSync(join(configDir(env), "config.json"), '{"prot": 1}');
    expect(() => readConfig(env)).toThrow(ConfigError);
    expect(() => readConfig(env)).toThrow('unknown setting "prot"');
    writeFileSync(join(configDir(env), "config.json"), "{nope");
    expect(() => readConfig(env)).toThrow("is not valid JSON");

    const store = new TokenStore(env);
    store.set("ann@h:9000", "tok1");
    store.set("bob@h:9000", "tok2");
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(new TokenStore(env).get("ann@h:9000")).toBe("tok1");
    store.set("ann@h:9000", undefined);
    expect(store.get("ann@h:9000")).toBeUndefined();
    expect(store.get("bob@h:9000")).toBe("tok2");
    expect(readdirSync(configDir(env)).sort()).toEqual(["config.json", "tokens.json"]); // no temporary file left
  });
});

describe("received files", () => {
  test("a message's file is saved once: seen again, its path is given again", async () => {
    const dir = join(tmp.dir, "dl");
    const data = new TextEncoder().encode("hello");
    let fetched = 0;
    const bytes = () => {
      fetched++;
      return data;
    };
    const p1 = await saveDownloadOnce(dir, 41, "a.txt", data.length, bytes);
    expect(await saveDownloadOnce(dir, 41, "a.txt", data.length, bytes)).toBe(p1);
    expect(fetched).toBe(1); // seen again: not downloaded again
    const p2 = await saveDownloadOnce(dir, 42, "a.txt", data.length, bytes); // another message: another file
    expect(p2).toBe(join(dir, "a (1).txt"));
    expect(readdirSync(dir).filter((f) => !f.startsWith(".")).sort()).toEqual(["a (1).txt", "a.txt"]);
  });
});
