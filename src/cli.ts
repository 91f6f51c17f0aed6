// The terminal client: `bun run src/cli.ts --user NAME [options]`, or, from the
// single executable, `tcpchat chat ...` (src/main.ts calls chatMain). Built on
// the client library (src/client); its pieces live in src/client/cli/.
//   interactive screen       (default)          src/client/cli/interactive.ts
//   --send TEXT --to G|@U    one message        src/client/cli/oneshot.ts
//   --listen [--json]        incoming messages  src/client/cli/oneshot.ts
import { formatServers } from "./client/address.ts";
import { ChatClient } from "./client/client.ts";
import { ChatError } from "./client/errors.ts";
import { type CliOptions, parseArgs, USAGE, UsageError } from "./client/cli/args.ts";
import { interactive } from "./client/cli/interactive.ts";
import { describeError, listen, sendOnce } from "./client/cli/oneshot.ts";
import { askPassword, processTty, type Tty } from "./client/cli/tty.ts";

/** Runs the terminal client with `argv` (the arguments after "chat"); resolves with the exit status. */
export async function chatMain(argv: string[], tty: Tty = processTty()): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseArgs(argv, tty.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    tty.stderr.write(`tcpchat chat: ${e.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    tty.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const pass = tty.env.TCPCHAT_PASSWORD ?? (await askPassword(tty, `Password for ${opts.user}: `));
  if (pass === undefined) {
    tty.stderr.write("tcpchat chat: no password: set TCPCHAT_PASSWORD, or run in a terminal to be asked\n");
    return 2;
  }

  let client: ChatClient;
  try {
    client = await ChatClient.connect({ servers: opts.servers });
  } catch (e) {
    tty.stderr.write(`tcpchat chat: cannot connect to ${formatServers(opts.servers)}: ${describeError((e as Error).cause ?? e)}\n`);
    return 1;
  }
  try {
    if (opts.register) {
      try {
        await client.register(opts.user, pass);
      } catch (e) {
        const why = e instanceof ChatError && e.code === "conflict" ? `the name "${opts.user}" is taken` : describeError(e);
        tty.stderr.write(`tcpchat chat: cannot register: ${why}\n`);
        return 1;
      }
    }
    const login = async () => {
      await client.login(opts.user, { pass }, { since: opts.since ?? "now" });
    };
    try {
      if (opts.send !== undefined) {
        await login();
        return await sendOnce(client, opts, tty);
      }
      if (opts.listen) return await listen(client, opts, tty, login);
      return await interactive(client, opts, tty, login);
    } catch (e) {
      if (!(e instanceof ChatError) && !(e instanceof Error && "code" in e)) throw e;
      const why = e instanceof ChatError && e.code === "unauthorized" ? "wrong user name or password" : describeError(e);
      tty.stderr.write(`tcpchat chat: cannot log in: ${why}\n`);
      return 1;
    }
  } finally {
    await client.close();
  }
}

if (import.meta.main) {
  process.exit(await chatMain(process.argv.slice(2)));
}
