// The interactive screen: incoming messages, presence and connection changes
// printed above a status line and an input line; typed lines run as commands or
// messages. Each conversation has its view (views.ts: Alt-1..9, /to); the line
// editor is editor.ts, its keys come from keys.ts.
import { formatServer } from "../address.ts";
import type { ChatClient } from "../client.ts";
import type { ChatMessage, LoginResult, Target } from "../types.ts";
import type { CliOptions } from "./args.ts";
import { COMMAND_NAMES, type CommandContext, runLine } from "./commands.ts";
import { applyKey, type Completer, emptyEditor } from "./editor.ts";
import { explain } from "./explain.ts";
import { failure, formatChange, formatMessage, groupNotice, type MessageView, notice, presenceLine, type Style, targetLabel, unreadSummary } from "./format.ts";
import type { Key } from "./keys.ts";
import { OwnChanges } from "./own.ts";
import { Recent } from "./recent.ts";
import { Screen } from "./screen.ts";
import { readKeys, type Tty } from "./tty.ts";
import { convTarget, viewKey, Views } from "./views.ts";

/** How long /quit waits for messages still being sent. */
const QUIT_FLUSH_MS = 3000;
/** How long "bob is typing" stays after the last typing notice (PROTOCOL.md §5.5). */
const TYPING_SHOWN_MS = 5000;
/** This user's typing is told at most this often (the server passes on one per 3 s). */
const TYPING_EVERY_MS = 3000;
/** Reads are gathered this long before the marker is moved. */
const READ_DELAY_MS = 300;

/** Where /get saves files without --downloads or a config file's `downloads`. */
const DEFAULT_DOWNLOADS = "./downloads";

/** Whether `text` mentions `me` as PROTOCOL.md §3.6 counts mentions (`@name`, whole). */
function mentions(text: string | undefined, me: string): boolean {
  if (!text) return false;
  const re = new RegExp(`(^|[^a-z0-9_.@-])@${me.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")}[.-]*(?![a-z0-9_])`);
  return re.test(text);
}

/** `notes`: what the login said (on stderr, before the screen cleared it), said again on the screen. */
export async function interactive(client: ChatClient, opts: CliOptions, tty: Tty, login: () => Promise<LoginResult>, notes: readonly string[] = []): Promise<number> {
  const me = opts.user;
  const style: Style = { color: Boolean(tty.stdout.isTTY) && !tty.env.NO_COLOR };
  // Keys one by one, with our own echo and input line, only on a terminal at both ends;
  // otherwise lines as they come (piped input, or output into a pipe).
  const keyboard = Boolean(tty.stdin.isTTY) && Boolean(tty.stdout.isTTY);
  const screen = new Screen(
    { write: (s) => tty.stdout.write(s) },
    () => ({ columns: tty.stdout.columns || 80, rows: tty.stdout.rows || 24 }),
    keyboard,
    style.color,
  );
  const views = new Views();
  const downloads = opts.downloads ?? DEFAULT_DOWNLOADS;
  /** Names Tab completes: groups and users seen. */
  const groupsKnown = new Set<string>();
  const usersKnown = new Set<string>();
  let connection = "connected";
  /** Uploads and downloads going on, as the status line shows them ("↑ notes.txt 45%"). */
  const transfers = new Map<string, string>();
  const updateStatus = () => screen.setStatus(views.status(me, at(), connection) + (transfers.size > 0 ? ` | ${[...transfers.values()].join(" ")}` : ""));
  const at = () => {
    const server = client.server;
    return server ? formatServer(server) : "(no connection)";
  };
  const recent = new Recent(me);
  const view: MessageView = { quote: (mid) => recent.quote(mid) };
  /** Who is typing where (conversation key), until when. */
  const typing = new Map<string, { key: string; until: number }>();
  const typingHere = (t: Target | undefined): string[] => {
    if (!t) return [];
    const now = Date.now();
    return [...typing].filter(([, x]) => x.key === recent.key(t) && x.until > now).map(([u]) => u);
  };
  const promptFor = (t: Target | undefined) => {
    if (!t) return "> ";
    const who = typingHere(t);
    const status = who.length === 0 ? "" : ` ${who.join(", ")} ${who.length === 1 ? "is" : "are"} typing…`;
    return `[${targetLabel(t)}]${status} > `;
  };

  // Lines go out through one chain, in order. It starts once the screen is up, after a
  // successful login (a refused password leaves the terminal as it was).
  const started = Promise.withResolvers<void>();
  let chain = started.promise;
  /** Prints into the view of `where` (default: the one shown now). */
  const print = (line: string | (() => Promise<string>), where?: Target) => {
    const key = where ? viewKey(where) : views.current;
    chain = chain.then(async () => screen.print(typeof line === "string" ? line : await line(), key));
  };
  // A file is not saved as it arrives (its bytes are not in the message, PROTOCOL.md §3.9):
  // its line says `(/get MID)`, which downloads it.
  const showMessage = async (m: ChatMessage): Promise<string> => formatMessage(m, me, style, undefined, view);

  // Reading moves the marker: what is shown in the current conversation, /to, /history, /next.
  // Gathered for a moment, then one `read` per conversation; the server keeps the marker forward.
  const reads = new Map<string, { t: Target; mid: number }>();
  let readTimer: ReturnType<typeof setTimeout> | undefined;
  const flushReads = async () => {
    clearTimeout(readTimer);
    readTimer = undefined;
    const sent = [...reads.values()].map(({ t, mid }) => client.markRead(t, mid).catch(() => {})); // offline: read again later
    reads.clear();
    await Promise.all(sent);
  };
  const markRead = (t: Target, mid?: number) => {
    if (mid === undefined) {
      // Up to the conversation's newest entry, if anything there is unread.
      client
        .conversations()
        .then((cs) => {
          const c = cs.find((x) => (t.group !== undefined ? x.group === t.group : x.user === t.user));
          if (c && c.unread > 0) markRead(t, c.last);
        })
        .catch(() => {});
      return;
    }
    const k = recent.key(t);
    reads.set(k, { t, mid: Math.max(mid, reads.get(k)?.mid ?? 0) });
    readTimer ??= setTimeout(() => void flushReads(), READ_DELAY_MS);
  };
  // What was missed: said at login and after each reconnect, and counted in the status line.
  const summary = () =>
    print(async () => {
      try {
        const convs = await client.conversations();
        views.fromConversations(convs);
        for (const c of convs) if (c.group !== undefined) groupsKnown.add(c.group);
        updateStatus();
        const s = unreadSummary(convs);
        return notice(style, s === "nothing unread" ? s : `${s} (Alt-n or /next shows them)`);
      } catch (e) {
        return notice(style, `unread: ${explain(e)}`);
      }
    });

  const done = Promise.withResolvers<number>();
  let connected = true;
  client.on("msg", (m) => {
    recent.add(m);
    const t = recent.targetOf(m);
    usersKnown.add(m.from);
    if (m.group !== undefined) groupsKnown.add(m.group);
    if (typing.delete(m.from)) screen.setPrompt(promptFor(ctx.current));
    if (ctx.current && recent.key(ctx.current) === recent.key(t)) {
      markRead(t, m.mid);
      views.seen(views.current);
    } else if (m.from !== me) views.arrived(t, m.group === undefined || mentions(m.text, me));
    else views.open(t);
    updateStatus();
    print(() => showMessage(m), t);
  });
  const changeIn = (e: { group?: string; user?: string; from: string }) => recent.targetOf(e);
  client.on("edit", (e) => {
    recent.edited(e.ref, e.text);
    print(formatChange(e, "edit", me, style), changeIn(e));
  });
  client.on("delete", (e) => {
    const quote = recent.quote(e.ref);
    recent.deleted(e.ref);
    print(formatChange(e, "delete", me, style, quote), changeIn(e));
  });
  client.on("reaction", (e) => print(formatChange(e, "reaction", me, style, recent.quote(e.ref)), changeIn(e)));
  // Changes to groups (PROTOCOL.md §3.3) as notices in the group's view: "* bob joined #ops".
  // An invitation goes to the view shown (there is no view of a group one is not in yet);
  // being kicked or banned is said there too. Those this client made, its command said.
  const own = new OwnChanges(me);
  client.on("group", (e) => {
    if (!own.show(e.mid, e)) return;
    const line = groupNotice(style, e, me);
    if (line === undefined) return; // a kind this client does not know
    groupsKnown.add(e.group);
    for (const u of [e.from, e.target]) if (u !== me) usersKnown.add(u);
    const t: Target = { group: e.group };
    const here = ctx.current?.group === e.group;
    if (e.kind === "invite" && e.target === me) {
      print(line, here ? t : ctx.current);
      return;
    }
    views.open(t);
    updateStatus();
    print(line, t);
    if (!here && e.target === me && e.from !== me && (e.kind === "kick" || e.kind === "ban")) print(line, ctx.current);
  });
  client.on("typing", (e) => {
    typing.set(e.from, { key: recent.key(e.group !== undefined ? { group: e.group } : { user: e.from }), until: Date.now() + TYPING_SHOWN_MS });
    screen.setPrompt(promptFor(ctx.current));
    setTimeout(() => screen.setPrompt(promptFor(ctx.current)), TYPING_SHOWN_MS + 50).unref();
  });
  client.on("presence", (p) => {
    usersKnown.add(p.user);
    print(presenceLine(style, p.user, p.online));
  });
  client.on("state", (s) => {
    if (s === "connecting" && connected) {
      connected = false;
      connection = "reconnecting…";
      updateStatus();
      print(notice(style, "connection lost, reconnecting..."));
    } else if (s === "ready" && !connected) {
      connected = true;
      connection = "connected";
      updateStatus();
      print(notice(style, opts.servers.length > 1 ? `reconnected to ${at()}` : "reconnected"));
      summary();
    } else if (s === "closed") done.resolve(1);
  });
  client.on("error", (e) => print(failure(style, explain(e))));

  /** Group members are fetched once per group shown, for Tab. */
  const membersFetched = new Set<string>();
  /** Shows the view of `t` (`read`: what arrived there counts as seen). */
  const show = (t: Target | undefined, read = true) => {
    ctx.current = t;
    if (t?.group !== undefined && !membersFetched.has(t.group)) {
      membersFetched.add(t.group);
      client.members(t.group).then((ms) => ms.forEach((m) => usersKnown.add(m.user)), () => membersFetched.delete(t.group!));
    }
    if (t) views.open(t);
    views.current = viewKey(t);
    if (read) views.seen(views.current);
    screen.showView(views.current);
    screen.setPrompt(promptFor(t));
    updateStatus();
  };
  const ctx: CommandContext = {
    client,
    me,
    style,
    print: (line, where) => print(line, where),
    current: opts.to,
    setCurrent(t) {
      // After /leave: the view before it in the list (or after, or none).
      if (t === undefined) {
        const n = views.number(views.current);
        const other = views.list[Math.max(0, n - 2)] ?? views.list[0];
        t = other?.target;
      }
      show(t);
    },
    closeView(t) {
      views.close(viewKey(t));
      screen.dropView(viewKey(t));
      updateStatus();
    },
    listViews: () =>
      views.list.length === 0 ? "no views yet: /join GROUP or /to @USER" : `views: ${views.list.map((v, i) => `${i + 1}:${v.key}${v.key === views.current ? " (shown)" : ""}`).join(", ")}`,
    recent,
    view,
    markRead,
    flushReads,
    own,
    downloads,
    progress(key, text) {
      if (text === undefined) transfers.delete(key);
      else transfers.set(key, text);
      updateStatus();
    },
  };
  screen.setPrompt(promptFor(ctx.current));
  const loggedIn = await login();
  ctx.limits = loggedIn.limits;
  // The views: the conversations, most recent first; the one to start in is --to,
  // else the last --join, else the most recent, so /history works from the start.
  const convs = await client.conversations().catch(() => []);
  views.fromConversations(convs);
  for (const c of convs) if (c.group !== undefined) groupsKnown.add(c.group);
  for (const g of opts.join) groupsKnown.add(g);
  for (const v of views.list) if (v.target?.user) usersKnown.add(v.target.user);
  const lastJoined = opts.join.at(-1);
  const first: Target | undefined = opts.to ?? (lastJoined !== undefined ? { group: lastJoined } : convs[0] ? convTarget(convs[0]) : undefined);
  if (first) views.open(first, !views.get(viewKey(first)));
  show(first, opts.to !== undefined);
  screen.start();
  started.resolve();
  print(notice(style, `logged in as ${me} at ${at()}; /help lists the commands${first ? `; talking in ${targetLabel(first)}` : ""}`));
  for (const n of notes) print(notice(style, n));
  summary(); // "3 new in #ops (1 mention), 1 new from @alice": /next goes there
  if (opts.to) markRead(opts.to);

  // Typed lines run one after another, in the order they were entered.
  let commands = Promise.resolve();
  const submit = (line: string) => {
    commands = commands.then(async () => {
      if ((await runLine(ctx, line)) === "quit") done.resolve(0);
    });
  };

  const onSignal = () => done.resolve(0);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  process.on("SIGINT", onSignal);
  const onResize = () => screen.redraw();
  tty.stdout.on("resize", onResize);

  // Typing in a conversation (not a command) is told to its other members, every few seconds.
  let toldTypingAt = 0;
  const tellTyping = () => {
    const t = ctx.current;
    const now = Date.now();
    if (!t || editor.text.startsWith("/") || now - toldTypingAt < TYPING_EVERY_MS || client.state !== "ready") return;
    toldTypingAt = now;
    client.typing(t).catch(() => {});
  };

  // Tab: commands at the start of the line, #groups and @users anywhere.
  const completer: Completer = (word, firstWord) => {
    if (firstWord && word.startsWith("/")) return COMMAND_NAMES.map((c) => `/${c}`);
    if (word.startsWith("#")) return [...groupsKnown].map((g) => `#${g}`);
    if (word.startsWith("@")) return [...usersKnown].filter((u) => u !== me).map((u) => `@${u}`);
    return [];
  };
  let editor = emptyEditor();
  const onKey = (k: Key): boolean => {
    switch (k.kind) {
      case "interrupt":
        done.resolve(0);
        return true;
      case "eof":
        if (editor.text === "") {
          done.resolve(0);
          return true;
        }
        editor = applyKey(editor, { kind: "delete" }).state;
        break;
      case "view": {
        const v = views.byNumber(k.n);
        if (!v) print(failure(style, `no view ${k.n}: /views lists them`));
        else if (v.key !== views.current) {
          show(v.target);
          if (v.target) markRead(v.target);
        }
        break;
      }
      case "next-unread":
        submit("/next");
        break;
      case "redraw":
        screen.redraw();
        break;
      default: {
        const r = applyKey(editor, k, completer);
        editor = r.state;
        if (r.submit !== undefined) submit(r.submit);
        else if (k.kind === "text" || k.kind === "paste") tellTyping();
      }
    }
    screen.setInput(editor);
    return false;
  };

  let stopInput: () => void;
  if (keyboard) {
    stopInput = readKeys(tty, onKey).stop;
  } else {
    // Piped input: one command or message per line; the end of input is /quit.
    let rest = "";
    const dec = new TextDecoder();
    const onData = (chunk: Uint8Array) => {
      rest += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        submit(rest.slice(0, nl).replace(/\r$/, ""));
        rest = rest.slice(nl + 1);
      }
    };
    const onEnd = () => {
      if (rest) submit(rest);
      commands = commands.then(() => done.resolve(0));
    };
    tty.stdin.on("data", onData);
    tty.stdin.on("end", onEnd);
    tty.stdin.resume();
    stopInput = () => {
      tty.stdin.off("data", onData);
      tty.stdin.off("end", onEnd);
      tty.stdin.pause();
    };
  }

  const code = await done.promise;
  stopInput();
  void flushReads();
  process.off("SIGTERM", onSignal);
  process.off("SIGHUP", onSignal);
  process.off("SIGINT", onSignal);
  tty.stdout.off("resize", onResize);
  const unfinished = [...transfers.keys()].filter((k) => k.startsWith("up")).length;
  // The server keeps what it has of them for a while (--upload-ttl): the same file sent again goes on from there.
  if (unfinished > 0) print(notice(style, `${unfinished} file(s) not sent: the upload stopped here; /send-file the same file later continues it`));
  if (client.pendingSends > 0 && client.state !== "closed") {
    print(notice(style, `sending ${client.pendingSends} more message(s)...`));
    await Promise.race([client.flush(), Bun.sleep(QUIT_FLUSH_MS)]);
  }
  await chain;
  screen.stop();
  return code;
}
