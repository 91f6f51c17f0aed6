// The terminal client's settings file and its saved logins.
//
//   $XDG_CONFIG_HOME/tcpchat/config.json   (else ~/.config/tcpchat/config.json)
//     {"host": "127.0.0.1", "port": 7777, "user": "alice", "downloads": "~/Downloads/tcpchat"}
//   tokens.json beside it, mode 0600: the login tokens kept with --remember,
//     {"alice@127.0.0.1:7777": "<token>"}, one per user and --host.
//
// A token (PROTOCOL.md §3.2) logs in without the password until it expires or is
// revoked; the client forgets one the server refuses.
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

export interface FileConfig {
  host?: string;
  port?: number;
  user?: string;
  downloads?: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The folder of config.json and tokens.json. */
export function configDir(env: Record<string, string | undefined>): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && xdg.startsWith("/") ? xdg : join(env.HOME || homedir(), ".config");
  return join(base, "tcpchat");
}

/** "~/x" -> "$HOME/x". */
export function expandHome(p: string, env: Record<string, string | undefined>): string {
  return p === "~" || p.startsWith("~/") ? join(env.HOME || homedir(), p.slice(1)) : p;
}

/** The settings file, checked; {} if there is none. Throws ConfigError naming the file and the problem. */
export function readConfig(env: Record<string, string | undefined>): FileConfig {
  const path = join(configDir(env), "config.json");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new ConfigError(`${path} must hold one JSON object`);
  const c: FileConfig = {};
  for (const [k, v] of Object.entries(o)) {
    const bad = (want: string) => new ConfigError(`${path}: "${k}" must be ${want}`);
    switch (k) {
      case "host":
      case "user":
        if (typeof v !== "string" || v === "") throw bad("a non-empty string");
        c[k] = v;
        break;
      case "downloads":
        if (typeof v !== "string" || v === "") throw bad("a non-empty string");
        c.downloads = expandHome(v, env);
        break;
      case "port":
        if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw bad("an integer from 1 to 65535");
        c.port = v as number;
        break;
      default:
        throw new ConfigError(`${path}: unknown setting "${k}" (known: host, port, user, downloads)`);
    }
  }
  return c;
}

/** The saved logins, a file only its owner may read. */
export class TokenStore {
  readonly path: string;

  constructor(env: Record<string, string | undefined>) {
    this.path = join(configDir(env), "tokens.json");
  }

  private all(): Record<string, string> {
    try {
      const o = JSON.parse(readFileSync(this.path, "utf8"));
      return typeof o === "object" && o !== null && !Array.isArray(o) ? o : {};
    } catch {
      return {};
    }
  }

  get(key: string): string | undefined {
    const t = this.all()[key];
    return typeof t === "string" ? t : undefined;
  }

  /** Saves (or with undefined, removes) a token. Written to a new 0600 file renamed into place: never readable by others, not even for a moment. */
  set(key: string, token: string | undefined): void {
    const all = this.all();
    if (token === undefined) {
      if (!(key in all)) return;
      delete all[key];
    } else all[key] = token;
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (Object.keys(all).length === 0) {
      rmSync(this.path, { force: true });
      return;
    }
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600); // whatever the umask
    renameSync(tmp, this.path);
  }
}

/** The key a token is saved under: the user and the servers (formatServers of src/client/address.ts). */
export function tokenKey(user: string, servers: string): string {
  return `${user}@${servers}`;
}
