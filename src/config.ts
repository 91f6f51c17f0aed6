// The one typed configuration. Defaults live here, each field says what it means;
// environment variables override defaults and flags override both. Validated once.
import type { Durability } from "./store/sqlite.ts";

export interface Config {
  /** Address to listen on. */
  host: string;
  /** TCP port; 0 picks a free one (the start line prints it). */
  port: number;
  /** SQLite file, or ":memory:" for a store that lives as long as the process. */
  db: string;
  /** "normal": committed messages survive a server crash; "full": also an OS crash or power cut (one fsync per batch). */
  durability: Durability;
  /** Largest frame body accepted, in bytes; a larger length header gets `too_large` and the connection is closed. */
  maxFrame: number;
  /** Unsent bytes allowed to queue for one connection; past it the connection is closed as a slow consumer. */
  maxQueue: number;
  /** Largest `text` of a message, in UTF-8 bytes. */
  maxText: number;
  /** Largest `limit` of `history` and `sync`; larger values are reduced to it. */
  maxPage: number;
  /** Lifetime of a login token, in seconds. */
  tokenTtl: number;
  /** Requests held while a `login`/`register` of the same connection is being checked; more get `rate_limited`. */
  maxHeld: number;
  /** On shutdown, how long to wait for unsent bytes to reach clients, in milliseconds. */
  shutdownGrace: number;
  /** argon2id memory cost in KiB for new password hashes (Bun.password). */
  hashMemory: number;
  /** argon2id time cost (iterations) for new password hashes. */
  hashTime: number;
}

interface Option {
  key: keyof Config;
  flag: string;
  env: string;
  kind: "string" | "int" | "durability";
  help: string;
}

export const DEFAULTS: Config = {
  host: "127.0.0.1",
  port: 7777,
  db: "tcpchat.db",
  durability: "normal",
  maxFrame: 4 * 1024 * 1024,
  maxQueue: 16 * 1024 * 1024,
  maxText: 64 * 1024,
  maxPage: 500,
  tokenTtl: 30 * 24 * 3600,
  maxHeld: 64,
  shutdownGrace: 5000,
  hashMemory: 65536,
  hashTime: 2,
};

const OPTIONS: Option[] = [
  { key: "host", flag: "--host", env: "TCPCHAT_HOST", kind: "string", help: "address to listen on" },
  { key: "port", flag: "--port", env: "TCPCHAT_PORT", kind: "int", help: "TCP port (0: any free port)" },
  { key: "db", flag: "--db", env: "TCPCHAT_DB", kind: "string", help: "SQLite database file, or :memory:" },
  {
    key: "durability",
    flag: "--durability",
    env: "TCPCHAT_DURABILITY",
    kind: "durability",
    help: "normal (survives a server crash) or full (also an OS crash; fsync per batch)",
  },
  { key: "maxFrame", flag: "--max-frame", env: "TCPCHAT_MAX_FRAME", kind: "int", help: "largest frame body, bytes" },
  {
    key: "maxQueue",
    flag: "--max-queue",
    env: "TCPCHAT_MAX_QUEUE",
    kind: "int",
    help: "unsent bytes per connection before it is closed as a slow consumer",
  },
  { key: "maxText", flag: "--max-text", env: "TCPCHAT_MAX_TEXT", kind: "int", help: "largest message text, UTF-8 bytes" },
  { key: "maxPage", flag: "--max-page", env: "TCPCHAT_MAX_PAGE", kind: "int", help: "largest history/sync page" },
  { key: "tokenTtl", flag: "--token-ttl", env: "TCPCHAT_TOKEN_TTL", kind: "int", help: "login token lifetime, seconds" },
  {
    key: "maxHeld",
    flag: "--max-held",
    env: "TCPCHAT_MAX_HELD",
    kind: "int",
    help: "requests held behind a pending login before rate_limited",
  },
  {
    key: "shutdownGrace",
    flag: "--shutdown-grace",
    env: "TCPCHAT_SHUTDOWN_GRACE",
    kind: "int",
    help: "ms to flush clients on shutdown",
  },
  { key: "hashMemory", flag: "--hash-memory", env: "TCPCHAT_HASH_MEMORY", kind: "int", help: "argon2id memory cost, KiB" },
  { key: "hashTime", flag: "--hash-time", env: "TCPCHAT_HASH_TIME", kind: "int", help: "argon2id time cost" },
];

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function parseValue(opt: Option, raw: string, from: string): Config[keyof Config] {
  if (opt.kind === "string") {
    if (raw === "") throw new ConfigError(`${from}: must not be empty`);
    return raw;
  }
  if (opt.kind === "durability") {
    if (raw !== "normal" && raw !== "full") throw new ConfigError(`${from}: must be "normal" or "full", got "${raw}"`);
    return raw;
  }
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new ConfigError(`${from}: must be a non-negative integer, got "${raw}"`);
  return Number(raw);
}

/** Builds the config from defaults, then `env`, then `argv` (flags after the script name). */
export function parseConfig(argv: string[], env: Record<string, string | undefined> = {}): Config {
  const cfg: Record<string, unknown> = { ...DEFAULTS };
  for (const opt of OPTIONS) {
    const raw = env[opt.env];
    if (raw !== undefined) cfg[opt.key] = parseValue(opt, raw, opt.env);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const opt = OPTIONS.find((o) => o.flag === name);
    if (!opt) throw new ConfigError(`unknown option "${arg}" (see --help)`);
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new ConfigError(`${name} needs a value`);
    cfg[opt.key] = parseValue(opt, raw, name);
  }
  return validate(cfg as unknown as Config);
}

function validate(c: Config): Config {
  if (c.port > 65535) throw new ConfigError(`port must be at most 65535, got ${c.port}`);
  if (c.maxFrame < 1024) throw new ConfigError("max-frame must be at least 1024 bytes");
  if (c.maxFrame > 0x7fffffff) throw new ConfigError("max-frame must be below 2 GiB");
  // A reply (history page, a file message) may be as large as a frame: the queue must hold two.
  if (c.maxQueue < 2 * c.maxFrame) throw new ConfigError("max-queue must be at least twice max-frame");
  if (c.maxText < 1 || c.maxText > c.maxFrame) throw new ConfigError("max-text must be between 1 and max-frame");
  if (c.maxPage < 1) throw new ConfigError("max-page must be at least 1");
  if (c.tokenTtl < 1) throw new ConfigError("token-ttl must be at least 1 second");
  if (c.hashMemory < 8 || c.hashTime < 1) throw new ConfigError("hash-memory must be >= 8 KiB and hash-time >= 1");
  return c;
}

export function helpText(): string {
  const lines = ["Usage: bun run src/server.ts [options]", "", "Options (flag / environment variable, default):"];
  for (const o of OPTIONS) {
    lines.push(`  ${`${o.flag} <${o.kind === "int" ? "n" : "value"}>`.padEnd(22)} ${o.help}`);
    lines.push(`  ${"".padEnd(22)} env ${o.env}, default ${JSON.stringify(DEFAULTS[o.key])}`);
  }
  lines.push(`  ${"--help".padEnd(22)} show this text`);
  return lines.join("\n");
}
