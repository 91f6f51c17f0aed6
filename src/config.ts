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
  /**
   * Unsent bytes allowed to queue for one connection. Past half of it the connection is
   * "behind": message pushes stop being queued and are replayed from the store once it
   * drains; past all of it (replies alone) it is closed.
   */
  maxQueue: number;
  /** Seconds a connection may stay behind without catching up before it is closed. */
  stuckTimeout: number;
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
  /** Requests per second one connection may make, on average; 0: no limit. */
  rateMsgs: number;
  /** Request bytes per second one connection may send, on average; 0: no limit. */
  rateBytes: number;
  /** Seconds of the average rate a connection may use at once (the burst). */
  rateBurst: number;
  /** Failed logins per user name in 5 minutes before further logins for it get `rate_limited`; 0: no limit. */
  loginFailsUser: number;
  /** Failed logins per client address in 5 minutes before further logins from it get `rate_limited`; 0: no limit. */
  loginFailsAddr: number;
  /** Open connections per client address; more are refused with `bye {reason:"too_many_connections"}`; 0: no limit. */
  maxConnsPerAddr: number;
  /** Seconds without a frame from the client before the connection is closed (`bye {reason:"idle"}`); 0: never. */
  idleTimeout: number;
  /** Seconds a new connection has to log in (`bye {reason:"login_timeout"}`); 0: forever. */
  loginTimeout: number;
  /** Largest number of members in a group; `join` beyond it gets `forbidden`. */
  maxGroupSize: number;
  /** PEM certificate file: with `tlsKey`, the server speaks TLS (same protocol inside). */
  tlsCert: string;
  /** PEM private key file for `tlsCert`. */
  tlsKey: string;
}

interface Option {
  key: keyof Config;
  flag: string;
  env: string;
  kind: "string" | "int" | "durability" | "path";
  help: string;
}

export const DEFAULTS: Config = {
  host: "127.0.0.1",
  port: 7777,
  db: "tcpchat.db",
  durability: "normal",
  maxFrame: 4 * 1024 * 1024,
  maxQueue: 16 * 1024 * 1024,
  stuckTimeout: 60,
  maxText: 64 * 1024,
  maxPage: 500,
  tokenTtl: 30 * 24 * 3600,
  maxHeld: 64,
  shutdownGrace: 5000,
  hashMemory: 65536,
  hashTime: 2,
  rateMsgs: 200,
  rateBytes: 8 * 1024 * 1024,
  rateBurst: 2,
  loginFailsUser: 10,
  loginFailsAddr: 100,
  maxConnsPerAddr: 1000,
  idleTimeout: 300,
  loginTimeout: 30,
  maxGroupSize: 10000,
  tlsCert: "",
  tlsKey: "",
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
    help: "unsent bytes per connection: half of it marks the reader behind, all of it closes",
  },
  {
    key: "stuckTimeout",
    flag: "--stuck-timeout",
    env: "TCPCHAT_STUCK_TIMEOUT",
    kind: "int",
    help: "s a reader may stay behind before it is closed",
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
  { key: "rateMsgs", flag: "--rate-msgs", env: "TCPCHAT_RATE_MSGS", kind: "int", help: "requests/s per connection (0: no limit)" },
  { key: "rateBytes", flag: "--rate-bytes", env: "TCPCHAT_RATE_BYTES", kind: "int", help: "request bytes/s per connection (0: no limit)" },
  { key: "rateBurst", flag: "--rate-burst", env: "TCPCHAT_RATE_BURST", kind: "int", help: "seconds of rate usable at once" },
  {
    key: "loginFailsUser",
    flag: "--login-fails-user",
    env: "TCPCHAT_LOGIN_FAILS_USER",
    kind: "int",
    help: "failed logins per user per 5 min (0: no limit)",
  },
  {
    key: "loginFailsAddr",
    flag: "--login-fails-addr",
    env: "TCPCHAT_LOGIN_FAILS_ADDR",
    kind: "int",
    help: "failed logins per address per 5 min (0: no limit)",
  },
  {
    key: "maxConnsPerAddr",
    flag: "--max-conns-per-addr",
    env: "TCPCHAT_MAX_CONNS_PER_ADDR",
    kind: "int",
    help: "open connections per address (0: no limit)",
  },
  { key: "idleTimeout", flag: "--idle-timeout", env: "TCPCHAT_IDLE_TIMEOUT", kind: "int", help: "s without a frame before close (0: never)" },
  { key: "loginTimeout", flag: "--login-timeout", env: "TCPCHAT_LOGIN_TIMEOUT", kind: "int", help: "s to log in after connecting (0: forever)" },
  { key: "maxGroupSize", flag: "--max-group-size", env: "TCPCHAT_MAX_GROUP_SIZE", kind: "int", help: "members per group" },
  { key: "tlsCert", flag: "--tls-cert", env: "TCPCHAT_TLS_CERT", kind: "path", help: "PEM certificate: serve TLS (with --tls-key)" },
  { key: "tlsKey", flag: "--tls-key", env: "TCPCHAT_TLS_KEY", kind: "path", help: "PEM private key for --tls-cert" },
];

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function parseValue(opt: Option, raw: string, from: string): Config[keyof Config] {
  if (opt.kind === "string") {
    if (raw === "") throw new ConfigError(`${from}: must not be empty`);
    return raw;
  }
  if (opt.kind === "path") return raw;
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
  if (c.rateBurst < 1) throw new ConfigError("rate-burst must be at least 1 second");
  if (c.rateBytes > 0 && c.rateBytes * c.rateBurst < c.maxFrame)
    throw new ConfigError("rate-bytes x rate-burst must be at least max-frame, or a largest frame could never pass");
  if (c.maxGroupSize < 1) throw new ConfigError("max-group-size must be at least 1");
  if ((c.tlsCert === "") !== (c.tlsKey === "")) throw new ConfigError("--tls-cert and --tls-key go together");
  return c;
}

export function helpText(): string {
  const lines = ["Usage: bun run src/server.ts [options]", "", "Options (flag / environment variable, default):"];
  for (const o of OPTIONS) {
    lines.push(`  ${`${o.flag} <${o.kind === "int" ? "n" : o.kind === "path" ? "file" : "value"}>`.padEnd(22)} ${o.help}`);
    lines.push(`  ${"".padEnd(22)} env ${o.env}, default ${JSON.stringify(DEFAULTS[o.key])}`);
  }
  lines.push(`  ${"--help".padEnd(22)} show this text`);
  return lines.join("\n");
}
