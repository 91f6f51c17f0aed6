// `tcpchat admin COMMAND [ARGS]` (and `npm run admin -- ...`): talks to a running server over
// its admin socket (src/ops/admin.ts). The socket is `--socket PATH`, else TCPCHAT_ADMIN_SOCKET,
// else the one the server makes beside its SQLite file: `--db PATH` (or TCPCHAT_DB, or the
// default tcpchat.db) plus `.admin.sock`, as the server derives it.
import { createConnection } from "node:net";
import { resolve } from "node:path";
import { adminSocketPath, DEFAULTS } from "./config.ts";

export const ADMIN_USAGE = `Usage: tcpchat admin [--socket PATH | --db PATH] COMMAND [ARGS]

Commands (the answer is JSON on stdout; exit 1 with the reason on stderr on failure):
  sessions                 this server's open connections (user, address, transport, age, bytes)
  kick USER                close USER's connections on every node (bye "kicked"); they may log in again
  ban USER [REASON]        refuse USER's logins, revoke their tokens, close their connections (bye "banned")
  unban USER               lift a ban
  bans                     every ban
  reset-password USER      a new random password (printed once), every token revoked, connections closed
  delete-group GROUP       remove every member, delete the group and its messages (the name becomes free)
  delete-user USER         erase an account: close it, ban it (reason "deleted"), remove it from its groups,
                           delete every message it sent and its tokens; the name is never given out again
  export USER              USER's data as JSON: groups, and every message sent by or directly to USER
                           (files as base64)
  backup FILE              a consistent copy of the SQLite database into FILE (new), while the server
                           serves; restore = start a server with --db FILE. Postgres: use pg_dump
  purge                    run the --retain-days purge now

Options:
  --socket PATH            the server's --admin-socket (env TCPCHAT_ADMIN_SOCKET)
  --db PATH                the server's --db, when the socket is the default one beside it (env TCPCHAT_DB)`;

/** Sends one command; resolves with the server's answer. */
export function adminRequest(socket: string, cmd: string, args: string[]): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  return new Promise((resolveP, reject) => {
    const c = createConnection(socket);
    let buf = "";
    c.setEncoding("utf8");
    c.on("connect", () => c.write(`${JSON.stringify({ cmd, args })}\n`));
    c.on("data", (d: string) => {
      buf += d;
    });
    c.on("error", (e) => reject(new Error(`cannot reach the server's admin socket ${socket}: ${e.message}`)));
    c.on("end", () => {
      try {
        resolveP(JSON.parse(buf));
      } catch {
        reject(new Error(`the server's answer is not JSON: ${buf.slice(0, 200)}`));
      }
    });
  });
}

export async function adminMain(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let socket = env.TCPCHAT_ADMIN_SOCKET;
  let db = env.TCPCHAT_DB ?? DEFAULTS.db;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") {
      console.log(ADMIN_USAGE);
      return 0;
    }
    if (a === "--socket" || a === "--db") {
      const v = argv[++i];
      if (v === undefined) {
        console.error(`tcpchat admin: ${a} needs a value\n\n${ADMIN_USAGE}`);
        return 2;
      }
      if (a === "--socket") socket = v;
      else db = v;
    } else rest.push(a);
  }
  const [cmd, ...args] = rest;
  if (cmd === undefined) {
    console.error(ADMIN_USAGE);
    return 2;
  }
  const path = socket ?? adminSocketPath({ adminSocket: "", db });
  if (path === undefined) {
    console.error("tcpchat admin: a server on Postgres or :memory: has no default admin socket: give --socket (its --admin-socket)");
    return 2;
  }
  // A backup is written by the server, which may run elsewhere: a relative name means here.
  if (cmd === "backup" && args[0] !== undefined) args[0] = resolve(args[0]);
  let answer;
  try {
    answer = await adminRequest(path, cmd, args);
  } catch (e) {
    console.error(`tcpchat admin: ${(e as Error).message}`);
    return 1;
  }
  if (!answer.ok) {
    console.error(`tcpchat admin: ${answer.error}`);
    return 1;
  }
  console.log(JSON.stringify(answer.result, null, 2));
  return 0;
}

if (import.meta.main) {
  process.exit(await adminMain(process.argv.slice(2)));
}
