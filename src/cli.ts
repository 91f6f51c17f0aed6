#!/usr/bin/env bun
// The terminal client: `bun run src/cli.ts --user NAME [options]`, or, from the
// single executable, `tcpchat chat ...` (src/main.ts calls chatMain). Built on
// the client library (src/client); its pieces live in src/client/cli/.
//   interactive screen       (default)          src/client/cli/interactive.ts
//   --send TEXT --to G|@U    one message        src/client/cli/oneshot.ts
//   --listen [--json]        incoming messages  src/client/cli/oneshot.ts
import type { ChatClient } from "./client/client.ts";
import { type CliOptions, parseArgs, USAGE, UsageError } from "./client/cli/args.ts";
import { connect, LoginFailed, makeLogin } from "./client/cli/auth.ts";
import { ConfigError, type FileConfig, readConfig, TokenStore } from "./client/cli/config.ts";
import { explain } from "./client/cli/explain.ts";
import { interactive } from "./client/cli/interactive.ts";
import { joinOrCreate } from "./client/cli/join.ts";
import { listen, sendOnce } from "./client/cli/oneshot.ts";
import { processTty, type Tty } from "./client/cli/tty.ts";
import type { LoginResult } from "./client/types.ts";

/** What a mode is told after the login: the server's limits (to say how long a message may be). */
export type Login = () => Promise<LoginResult>;

/** Runs the terminal client with `argv` (the arguments after "chat"); resolves with the exit status. */
export async function chatMain(argv: string[], tty: Tty = processTty()): Promise<number> {
  let opts: CliOptions;
  try {
    let file: FileConfig = {};
    if (!argv.includes("--help") && !argv.includes("-h")) file = readConfig(tty.env);
    opts = parseArgs(argv, tty.env, file);
  } catch (e) {
    if (e instanceof ConfigError) {
      tty.stderr.write(`tcpchat chat: ${e.message}\n`);
      return 2;
    }
    if (!(e instanceof UsageError)) throw e;
    tty.stderr.write(`tcpchat chat: ${e.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    tty.stdout.write(`${USAGE}\n`);
    return 0;
  }

  // The server first: a stopped one is found out before a password is typed.
  const connected = await connect(opts, tty);
  if (typeof connected === "number") return connected;
  const client: ChatClient = connected;
  try {
    const notes: string[] = [];
    const auth = makeLogin(client, opts, tty, new TokenStore(tty.env), (s, lasting) => {
      // For people at a terminal; scripts get their own output only (and the errors).
      if (tty.stderr.isTTY) tty.stderr.write(`tcpchat chat: ${s}\n`);
      if (lasting) notes.push(s);
    });
    // Logs in, then joins the --join groups (before anything is sent or listened to).
    const login: Login = async () => {
      const r = await auth();
      for (const group of opts.join) {
        try {
          await joinOrCreate(client, group);
        } catch (e) {
          throw new LoginFailed(`cannot join #${group}: ${explain(e, { request: "join" })}`, 1);
        }
      }
      return r;
    };
    try {
      if (opts.send !== undefined) {
        const r = await login();
        return await sendOnce(client, opts, tty, r.limits);
      }
      if (opts.listen) return await listen(client, opts, tty, login);
      return await interactive(client, opts, tty, login, notes);
    } catch (e) {
      if (e instanceof LoginFailed) {
        tty.stderr.write(`tcpchat chat: ${e.message}\n`);
        return e.code;
      }
      throw e;
    }
  } finally {
    await client.close();
  }
}

if (import.meta.main) {
  process.exit(await chatMain(process.argv.slice(2)));
}
