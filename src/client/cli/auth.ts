// Connecting and logging in, as a first run should go: the server is reached
// before the password is asked (a stopped server is found out at once, with a
// hint to start one); the password rule is stated where one is chosen; a taken
// name offers to log in instead, a refused login offers to register; a token
// kept with --remember logs in without asking (config.ts), and is forgotten
// when the server refuses it. Without a terminal to ask on (scripts), nothing is
// asked: --register with a taken name logs in with the password given, and every
// refusal exits with a sentence saying what to do.
import { formatServers } from "../address.ts";
import { ChatClient } from "../client.ts";
import { ChatError } from "../errors.ts";
import type { LoginResult } from "../types.ts";
import type { CliOptions } from "./args.ts";
import { type TokenStore, tokenKey } from "./config.ts";
import { explain, PASSWORD_RULE, passwordProblem } from "./explain.ts";
import { askKey, askPassword, type Tty } from "./tty.ts";

/** A refusal the CLI reports as `tcpchat chat: <message>` and exits with `code`. */
export class LoginFailed extends Error {
  override name = "LoginFailed";
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** How many passwords one run asks for before giving up. */
const ATTEMPTS = 3;
/** How long a login waits for a connection dropped while the password was typed to come back. */
const REOPEN_MS = 10_000;

/** The client, connected; or the exit status after saying why not. */
export async function connect(opts: CliOptions, tty: Tty): Promise<ChatClient | number> {
  try {
    return await ChatClient.connect({ servers: opts.servers });
  } catch (e) {
    const where = formatServers(opts.servers);
    const hint = "start one with `npm start`";
    if (opts.servers.length === 1) tty.stderr.write(`tcpchat chat: cannot reach ${where} — is the server running? ${hint}\n`);
    else {
      // Each address and why (the library's AggregateError, src/client/core.ts dialFirst).
      const why = (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : explain(e);
      tty.stderr.write(`tcpchat chat: cannot connect to ${where}: ${why} — is any of them running? ${hint}\n`);
    }
    return 1;
  }
}

const isCode = (e: unknown, code: string) => e instanceof ChatError && e.code === code;

/** Waits for a connection (one lost while a password was typed is being made again). */
async function open(client: ChatClient): Promise<void> {
  if (client.state !== "connecting") return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, REOPEN_MS);
    const off = client.on("state", (s) => {
      if (s !== "connecting") done();
    });
    function done() {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
}

/**
 * A `login` for the modes of src/cli.ts: logs in (with a kept token, else a
 * password, registering first with --register) and saves the token with
 * --remember. Throws LoginFailed with what to tell the user.
 */
export function makeLogin(client: ChatClient, opts: CliOptions, tty: Tty, tokens: TokenStore, note: (s: string, lasting?: boolean) => void): () => Promise<LoginResult> {
  const key = tokenKey(opts.user, formatServers(opts.servers));
  const since = opts.since ?? "now";
  const fromEnv = tty.env.TCPCHAT_PASSWORD;
  const canAsk = fromEnv === undefined && Boolean(tty.stdin.isTTY);
  const user = opts.user;

  const keep = (r: LoginResult) => {
    if (opts.remember) {
      tokens.set(key, r.token);
      note(`login kept in ${tokens.path} (only you can read it): the next runs do not ask for the password; --forget forgets it`, true);
    }
    return r;
  };

  const ask = async (prompt: string): Promise<string> => {
    const pass = fromEnv ?? (await askPassword(tty, prompt));
    if (pass === undefined) {
      throw new LoginFailed(canAsk || tty.stdin.isTTY ? "no password given" : "no password: set TCPCHAT_PASSWORD, or run in a terminal to be asked", 2);
    }
    return pass;
  };

  /** A new password, asked twice in a terminal; undefined to ask again. */
  const newPassword = async (): Promise<string | undefined> => {
    const pass = await ask(`New password for ${user} (${PASSWORD_RULE}): `);
    const problem = passwordProblem(pass);
    if (problem) {
      if (!canAsk) throw new LoginFailed(`cannot register: ${problem}`, 2);
      note(problem);
      return undefined;
    }
    if (canAsk && (await ask("The same password again: ")) !== pass) {
      note("the two passwords differ");
      return undefined;
    }
    return pass;
  };

  return async () => {
    if (opts.forget) tokens.set(key, undefined);
    // A kept login first, unless an account is to be made.
    const token = opts.register ? undefined : tokens.get(key);
    if (token !== undefined) {
      try {
        return await client.login(user, { token }, { since });
      } catch (e) {
        if (!isCode(e, "unauthorized")) throw new LoginFailed(`cannot log in: ${explain(e, { request: "login" })}`, 1);
        tokens.set(key, undefined);
        note("the kept login was refused (it expired, or was revoked): it is forgotten; log in with the password", true);
      }
    }

    let register = opts.register;
    for (let attempt = 1; ; attempt++) {
      let pass: string | undefined;
      if (register) {
        pass = await newPassword();
        if (pass === undefined) {
          if (attempt >= ATTEMPTS) throw new LoginFailed("cannot register: no usable password", 1);
          continue;
        }
        await open(client);
        try {
          await client.register(user, pass);
          note(`created the account ${user}`, true);
        } catch (e) {
          if (!isCode(e, "conflict")) throw new LoginFailed(`cannot register: ${explain(e, { request: "register" })}`, 1);
          if (canAsk) {
            const yes = await askKey(tty, `The name "${user}" is taken. Log in as ${user} with this password? [Y/n] `, { y: true, n: false, "\r": true });
            if (!yes) throw new LoginFailed(`cannot register: the name "${user}" is taken; choose another --user`, 1);
          } else if (!opts.register) {
            throw new LoginFailed(`cannot register: the name "${user}" is taken`, 1);
          }
          // A script: log in with the password given (the account may be its own).
          register = false;
          try {
            await open(client);
            return keep(await client.login(user, { pass }, { since }));
          } catch (e2) {
            if (!isCode(e2, "unauthorized") || !canAsk) {
              const why = isCode(e2, "unauthorized") ? `the name "${user}" is taken (and that is not its password)` : explain(e2, { request: "login" });
              throw new LoginFailed(`cannot register: ${why}`, 1);
            }
            note("wrong password");
            if (attempt >= ATTEMPTS) throw new LoginFailed("cannot log in: wrong user name or password", 1);
            continue;
          }
        }
      } else pass = await ask(`Password for ${user}: `);

      await open(client);
      try {
        return keep(await client.login(user, { pass }, { since }));
      } catch (e) {
        if (!isCode(e, "unauthorized")) throw new LoginFailed(`cannot log in: ${explain(e, { request: "login" })}`, 1);
        if (!canAsk) {
          throw new LoginFailed(`cannot log in: wrong user name or password (no account "${user}" yet? add --register to create it)`, 1);
        }
        if (attempt >= ATTEMPTS) throw new LoginFailed("cannot log in: wrong user name or password", 1);
        const choice = await askKey(
          tty,
          `Wrong password, or no account "${user}" on this server: [t]ry again, [r]egister it, or [q]uit? `,
          { t: "again", r: "register", q: "quit", "\r": "again" },
        );
        if (choice === "quit" || choice === undefined) throw new LoginFailed("cannot log in: wrong user name or password", 1);
        register = choice === "register";
      }
    }
  };
}
