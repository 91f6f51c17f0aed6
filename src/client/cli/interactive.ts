// The interactive screen: incoming messages, presence and connection changes
// printed above an input line; typed lines run as commands or messages.
import { formatServer } from "../address.ts";
import type { ChatClient } from "../client.ts";
import type { ChatMessage, Target } from "../types.ts";
import type { CliOptions } from "./args.ts";
import { type CommandContext, runLine } from "./commands.ts";
import { saveDownload } from "./files.ts";
import { failure, formatMessage, notice, presenceLine, type Style, targetLabel } from "./format.ts";
import { describeError } from "./oneshot.ts";
import { Screen } from "./screen.ts";
import { readKeys, type Tty } from "./tty.ts";

/** How long /quit waits for messages still being sent. */
const QUIT_FLUSH_MS = 3000;

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
  const promptFor = (t: Target | undefined) => (t ? `[${targetLabel(t)}] > ` : "> ");

  // Lines go out through one chain, so a message whose file is being saved is
  // not overtaken by the next one. It starts once the screen is up, after a
  // successful login (a refused password leaves the terminal as it was).
  const started = Promise.withResolvers<void>();
  let chain = started.promise;
  const print = (line: string | (() => Promise<string>)) => {
    chain = chain.then(async () => screen.print(typeof line === "string" ? line : await line()));
  };
  const showMessage = async (m: ChatMessage): Promise<string> => {
    if (!m.file) return formatMessage(m, me, style);
    try {
      return formatMessage(m, me, style, await saveDownload(opts.downloads, m.file.name, m.file.data));
    } catch (e) {
      return `${formatMessage(m, me, style)}\n${failure(style, `could not save the file: ${describeError(e)}`)}`;
    }
  };

  const done = Promise.withResolvers<number>();
  let connected = true;
  client.on("msg", (m) => print(() => showMessage(m)));
  client.on("presence", (p) => print(presenceLine(style, p.user, p.online)));
  client.on("state", (s) => {
    if (s === "connecting" && connected) {
      connected = false;
      print(notice(style, "connection lost, reconnecting..."));
    } else if (s === "ready" && !connected) {
      connected = true;
      print(notice(style, opts.servers.length > 1 ? `reconnected to ${at()}` : "reconnected"));
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
  };
  screen.setPrompt(promptFor(ctx.current));
  await login();
  screen.start();
  started.resolve();
  print(notice(style, `logged in as ${me} at ${at()}; /help lists the commands`));

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

  let stopInput: () => void;
  if (keyboard) {
    stopInput = readKeys(tty, (k) => {
      switch (k.kind) {
        case "text":
          screen.type(k.text);
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
