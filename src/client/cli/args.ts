// The terminal client's flags. Parsing only: no I/O.
import { NAME_RE } from "../../protocol/requests.ts";
import { AddressError, parseServers, type ServerAddress } from "../address.ts";
import type { Target } from "../types.ts";
import type { FileConfig } from "./config.ts";

export interface CliOptions {
  /** --host as given: one address or a comma-separated list. */
  host: string;
  /** --port: the port of addresses in --host that have none. */
  port: number;
  /** --host parsed, in order (the client's `servers`). */
  servers: ServerAddress[];
  user: string;
  register: boolean;
  /** --downloads, or the config file's: where /get saves files (default ./downloads); --listen downloads every file into it, and without it none. */
  downloads?: string;
  /** --join GROUP (repeatable): joined after the login, before --send, --listen or the screen. */
  join: string[];
  /** --remember: keep the login token (config.ts) for the next runs. */
  remember: boolean;
  /** --forget: remove a kept token first. */
  forget: boolean;
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

Connects to a tcpchat server, then asks for the password (without echo), or
takes it from the environment variable TCPCHAT_PASSWORD, or logs in with the
token kept by --remember.

  --host ADDR[,ADDR]  server address (default 127.0.0.1): HOST, HOST:PORT or
                      [IPV6]:PORT; several, comma-separated, are the nodes of a
                      cluster: the first that answers is used, and when the
                      connection is lost the client moves on to the next
  --port PORT         port of the --host addresses that give none (default 7777)
  --user NAME         your user name
  --register          create the account first (if the name is taken, log in)
  --remember          keep the login (a token, in a file only you can read) so
                      the next runs do not ask for the password
  --forget            forget a kept login first
  --join GROUP        join GROUP (created if it does not exist) after logging
                      in, before --send or --listen; may be given several times
  --downloads DIR     where /get saves files (default ./downloads); files are
                      downloaded only when asked: /get, or --listen with
                      --downloads (then every file received)

Without --send or --listen it opens the interactive screen (/help lists its commands).

  --to G | @USER      the conversation to start in (interactive), or to --send to
  --send TEXT         send TEXT to --to, exit 0 once the server has stored it,
                      non-zero with the error on failure
  --timeout MS        how long --send waits for the server (default 10000)
  --listen            print incoming messages one per line until killed
  --json              with --listen (and --send): JSON lines instead of text
  --since MID         with --listen: first print the messages after MID
  --help, -h          this text

Defaults for --host, --port, --user and --downloads can be put in
$XDG_CONFIG_HOME/tcpchat/config.json (else ~/.config/tcpchat/config.json), e.g.
  {"host": "127.0.0.1", "port": 7777, "user": "alice", "downloads": "~/chat-files"}`;

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

export function parseArgs(argv: string[], env: Record<string, string | undefined> = {}, file: FileConfig = {}): CliOptions {
  const o: CliOptions = {
    host: file.host ?? "127.0.0.1",
    port: file.port ?? 7777,
    servers: [],
    user: "",
    register: false,
    downloads: file.downloads,
    join: [],
    remember: false,
    forget: false,
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
      case "--join": {
        const g = value();
        const t = g.startsWith("@") ? undefined : parseTarget(g);
        if (!t?.group) throw new UsageError(`--join "${g}" is not a group name (a-z 0-9 _ - ., at most 32)`);
        o.join.push(t.group);
        break;
      }
      case "--remember":
        o.remember = true;
        break;
      case "--forget":
        o.forget = true;
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
  o.user ||= env.TCPCHAT_USER ?? file.user ?? "";
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
