// The interactive screen: incoming messages, presence and connection changes
// printed above an input line; typed lines run as commands or messages.
import { formatServer } from "../address.ts";
import type { ChatClient } from "../client.ts";
import type { ChatMessage, Target } from "../types.ts";
import type { CliOptions } from "./args.ts";
import { type CommandContext, runLine } from "./commands.ts";
import { saveDownload } from "./files.ts";
import { failure, formatChange, formatMessage, type MessageView, notice, presenceLine, type Style, targetLabel, unreadSummary } from "./format.ts";
import { Recent } from "./recent.ts";
import { describeError } from "./oneshot.ts";
import { Screen } from "./screen.ts";
import { readKeys, type Tty } from "./tty.ts";

/** How long /quit waits for messages still being sent. */
const QUIT_FLUSH_MS = 3000;
/** How long "bob is typing" stays after the last typing notice (PROTOCOL.md §5.5). */
const TYPING_SHOWN_MS = 5000;
/** This user's typing is told at most this often (the server passes on one per 3 s). */
const TYPING_EVERY_MS = 3000;
/** Reads are gathered this long before the marker is moved. */
const READ_DELAY_MS = 300;

export async function interactive(client: ChatClient, opts: CliOptions, tty: Tty, login: () => Promise<void>): Promise<number> {
  const me = opts.user;
  const style: Style = { color: Boolean(tty.stdout.isTTY) && !tty.env.NO_COLOR };
  // Keys one by one, with our own echo and input line, only on a terminal at both ends;
  // otherwise lines as they come (piped input, or output into a pipe).
  const keyboard = Boolean(tty.stdin.isTTY) && Boolean(tty.stdout.isTTY);
  const screen = new Screen(
    { write: (s) => tty.stdout.write(s) },
    () => ({ columns: tty.stdout.columns || 80, rows: tty.stdout.rows || 24 }),
    keyboard,
  );
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

  // Lines go out through one chain, so a message whose file is being saved is
  // not overtaken by the next one. It starts once the screen is up, after a
  // successful login (a refused password leaves the terminal as it was).
  const started = Promise.withResolvers<void>();
  let chain = started.promise;
  const print = (line: string | (() => Promise<string>)) => {
    chain = chain.then(async () => screen.print(typeof line === "string" ? line : await line()));
  };
  const showMessage = async (m: ChatMessage): Promise<string> => {
    if (!m.file) return formatMessage(m, me, style, undefined, view);
    try {
      return formatMessage(m, me, style, await saveDownload(opts.downloads, m.file.name, m.file.data), view);
    } catch (e) {
      return `${formatMessage(m, me, style, undefined, view)}\n${failure(style, `could not save the file: ${describeError(e)}`)}`;
    }
  };

  // Reading moves the marker: what is shown in the current conversation, /to, /history, /next.
  // Gathered for a moment, then one `read` per conversation; the server keeps the marker forward.
  const reads = new Map<string, { t: Target; mid: number }>();
  let readTimer: ReturnType<typeof setTimeout> | undefined;
  const flushReads = () => {
    readTimer = undefined;
    for (const { t, mid } of reads.values()) client.markRead(t, mid).catch(() => {}); // offline: read again later
    reads.clear();
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
    readTimer ??= setTimeout(flushReads, READ_DELAY_MS);
  };
  const summary = () => print(async () => notice(style, await client.conversations().then(unreadSummary, (e) => `unread: ${describeError(e)}`)));

  const done = Promise.withResolvers<number>();
  let connected = true;
  client.on("msg", (m) => {
    recent.add(m);
    const t = recent.targetOf(m);
    if (typing.delete(m.from)) screen.setPrompt(promptFor(ctx.current));
    if (ctx.current && recent.key(ctx.current) === recent.key(t)) markRead(t, m.mid);
    print(() => showMessage(m));
  });
  client.on("edit", (e) => {
    recent.edited(e.ref, e.text);
    print(formatChange(e, "edit", me, style));
  });
  client.on("delete", (e) => {
    const quote = recent.quote(e.ref);
    recent.deleted(e.ref);
    print(formatChange(e, "delete", me, style, quote));
  });
  client.on("reaction", (e) => print(formatChange(e, "reaction", me, style, recent.quote(e.ref))));
  client.on("typing", (e) => {
    typing.set(e.from, { key: recent.key(e.group !== undefined ? { group: e.group } : { user: e.from }), until: Date.now() + TYPING_SHOWN_MS });
    screen.setPrompt(promptFor(ctx.current));
    setTimeout(() => screen.setPrompt(promptFor(ctx.current)), TYPING_SHOWN_MS + 50).unref();
  });
  client.on("presence", (p) => print(presenceLine(style, p.user, p.online)));
  client.on("state", (s) => {
    if (s === "connecting" && connected) {
      connected = false;
      print(notice(style, "connection lost, reconnecting..."));
    } else if (s === "ready" && !connected) {
      connected = true;
      print(notice(style, opts.servers.length > 1 ? `reconnected to ${at()}` : "reconnected"));
      summary();
    } else if (s === "closed") done.resolve(1);
  });
  client.on("error", (e) => print(failure(style, describeError(e))));

  const ctx: CommandContext = {
    client,
    me,
    style,
    print: (line) => print(line),
    current: opts.to,
    setCurrent(t) {
      ctx.current = t;
      screen.setPrompt(promptFor(t));
    },
    recent,
    view,
    markRead,
  };
  screen.setPrompt(promptFor(ctx.current));
  await login();
  screen.start();
  started.resolve();
  print(notice(style, `logged in as ${me} at ${at()}; /help lists the commands`));
  summary(); // "3 new in #ops (1 mention), 1 new from @alice": /next goes there
  if (ctx.current) markRead(ctx.current);

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
  const onResize = () => screen.render();
  tty.stdout.on("resize", onResize);

  // Typing in a conversation (not a command) is told to its other members, every few seconds.
  let toldTypingAt = 0;
  const tellTyping = () => {
    const t = ctx.current;
    const now = Date.now();
    if (!t || screen.input.startsWith("/") || now - toldTypingAt < TYPING_EVERY_MS || client.state !== "ready") return;
    toldTypingAt = now;
    client.typing(t).catch(() => {});
  };

  let stopInput: () => void;
  if (keyboard) {
    stopInput = readKeys(tty, (k) => {
      switch (k.kind) {
        case "text":
          screen.type(k.text);
          tellTyping();
          break;
        case "backspace":
          screen.backspace();
          break;
        case "kill-line":
          screen.killLine();
          break;
        case "kill-word":
          screen.killWord();
          break;
        case "enter":
          submit(screen.take());
          break;
        case "interrupt":
          done.resolve(0);
          return true;
        case "eof":
          if (screen.input === "") {
            done.resolve(0);
            return true;
          }
          break;
      }
      return false;
    }).stop;
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
  clearTimeout(readTimer);
  flushReads();
  process.off("SIGTERM", onSignal);
  process.off("SIGHUP", onSignal);
  process.off("SIGINT", onSignal);
  tty.stdout.off("resize", onResize);
  if (client.pendingSends > 0 && client.state !== "closed") {
    print(notice(style, `sending ${client.pendingSends} more message(s)...`));
    await Promise.race([client.flush(), Bun.sleep(QUIT_FLUSH_MS)]);
  }
  await chain;
  screen.stop();
  return code;
}
