// The terminal client's flags. Parsing only: no I/O.
import { NAME_RE } from "../../protocol/requests.ts";
import { AddressError, parseServers, type ServerAddress } from "../address.ts";
import type { Target } from "../types.ts";

export interface CliOptions {
  /** --host as given: one address or a comma-separated list. */
  host: string;
  /** --port: the port of addresses in --host that have none. */
  port: number;
  /** --host parsed, in order (the client's `servers`). */
  servers: ServerAddress[];
  user: string;
  register: boolean;
  downloads: string;
  /** --send TEXT: send one message to `to` and exit. */
  send?: string;
  to?: Target;
  /** --listen: print incoming messages, one per line, until killed. */
  listen: boolean;
  json: boolean;
  /** --since MID: with --listen, first print everything after that mid. */
  since?: number;
  /** --timeout MS: how long --send waits for the server. */
  timeoutMs: number;
  help: boolean;
}

export class UsageError extends Error {
  override name = "UsageError";
}

export const USAGE = `Usage: tcpchat chat --user NAME [options]        (or: bun run src/cli.ts ...)

Connects to a tcpchat server. The password is asked for without echo, or taken
from the environment variable TCPCHAT_PASSWORD.

  --host ADDR[,ADDR]  server address (default 127.0.0.1): HOST, HOST:PORT or
                      [IPV6]:PORT; several, comma-separated, are the nodes of a
                      cluster: the first that answers is used, and when the
                      connection is lost the client moves on to the next
  --port PORT         port of the --host addresses that give none (default 7777)
  --user NAME         your user name
  --register          create the account first
  --downloads DIR     where received files are saved (default ./downloads)

Without --send or --listen it opens the interactive screen (/help lists its commands).

  --to G | @USER      the conversation to start in (interactive), or to --send to
  --send TEXT         send TEXT to --to, exit 0 once the server has stored it,
                      non-zero with the error on failure
  --timeout MS        how long --send waits for the server (default 10000)
  --listen            print incoming messages one per line until killed
  --json              with --listen (and --send): JSON lines instead of text
  --since MID         with --listen: first print the messages after MID
  --help, -h          this text`;

/** "g", "#g" -> group g; "@u" -> user u. Undefined if not a valid name. */
export function parseTarget(s: string): Target | undefined {
  if (s.startsWith("@")) {
    const user = s.slice(1);
    return NAME_RE.test(user) ? { user } : undefined;
  }
  const group = s.startsWith("#") ? s.slice(1) : s;
  return NAME_RE.test(group) ? { group } : undefined;
}

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

export function parseArgs(argv: string[], env: Record<string, string | undefined> = {}): CliOptions {
  const o: CliOptions = {
    host: "127.0.0.1",
    port: 7777,
    servers: [],
    user: "",
    register: false,
    downloads: "./downloads",
    listen: false,
    json: false,
    timeoutMs: 10_000,
    help: false,
  };
  let to: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0 && arg.startsWith("--")) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--host":
        o.host = value();
        break;
      case "--port":
        o.port = int("--port", value(), 1, 65535);
        break;
      case "--user":
        o.user = value();
        break;
      case "--register":
        o.register = true;
        break;
      case "--downloads":
        o.downloads = value();
        break;
      case "--send":
        o.send = value();
        break;
      case "--to":
        to = value();
        break;
      case "--listen":
        o.listen = true;
        break;
      case "--json":
        o.json = true;
        break;
      case "--since":
        o.since = int("--since", value(), 0, Number.MAX_SAFE_INTEGER);
        break;
      case "--timeout":
        o.timeoutMs = int("--timeout", value(), 1, 86_400_000);
        break;
      case "--help":
      case "-h":
        o.help = true;
        break;
      default:
        throw new UsageError(`unknown option "${arg}"`);
    }
  }
  if (o.help) return o;
  try {
    o.servers = parseServers(o.host, o.port);
  } catch (e) {
    if (e instanceof AddressError) throw new UsageError(`--host: ${e.message}`);
    throw e;
  }
  o.user ||= env.TCPCHAT_USER ?? "";
  if (!o.user) throw new UsageError("--user is required");
  if (!NAME_RE.test(o.user)) throw new UsageError(`--user "${o.user}" is not a valid name (a-z 0-9 _ - ., at most 32)`);
  if (o.send !== undefined && o.listen) throw new UsageError("--send and --listen exclude each other");
  if (o.send !== undefined && to === undefined) throw new UsageError("--send needs --to GROUP or --to @USER");
  if (to !== undefined) {
    o.to = parseTarget(to);
    if (!o.to) throw new UsageError(`--to "${to}" is not a group or @user name`);
  }
  if (o.since !== undefined && !o.listen) throw new UsageError("--since goes with --listen");
  return o;
}
