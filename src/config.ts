// The one typed configuration. Each option is written once, in OPTIONS: its
// default, its kind and what it means. The Config type, the flag (`--kebab-case`
// of the key), the environment variable (`TCPCHAT_SNAKE_CASE`), `--help` and the
// README's configuration table (scripts/config-table.ts, checked by a test) are
// all derived from it. Environment variables override defaults and flags
// override both. Validated once.
import type { Durability } from "./store/index.ts";

/** string: not empty; text: may be empty (off); path: a file, may be empty. */
type Kind = "string" | "text" | "int" | "durability" | "path" | "portOrOff";

interface OptionSpec {
  def: string | number;
  kind: Kind;
  /** What it means; the README table and --help print it. */
  help: string;
}

const KiB = 1024;
const MiB = 1024 * 1024;

/** Every option. Defaults are safe for a server on a public port (PROTOCOL.md §2.4). */
export const OPTIONS = {
  host: { def: "127.0.0.1", kind: "string", help: "address to listen on (`0.0.0.0` for all)" },
  port: { def: 7777, kind: "int", help: "TCP port; `0` picks a free one and the start line shows it" },
  db: {
    def: "tcpchat.db",
    kind: "string",
    help: 'SQLite file (created 0600 and migrated at start), or `:memory:`, or `postgres://user@host:port/db` (the shared store of a cluster, migrated at start). One server at a time uses a SQLite file (a second one gets "database is locked", from the lock on the file `<db>-lock` beside it); the `sqlite3` shell can read it meanwhile, but stop the server to copy or change it (or use the admin `backup`)',
  },
  bus: {
    def: "",
    kind: "text",
    help: "`nats://host:port` (several: comma-separated): this node joins a cluster of nodes on that NATS and on the same Postgres `--db`. None: the node runs alone",
  },
  durability: {
    def: "normal",
    kind: "durability",
    help: "`normal`: committed messages survive a server crash; `full`: also an OS crash (fsync per batch)",
  },
  httpPort: {
    def: 7780,
    kind: "portOrOff",
    help: "HTTP port on the same `--host`: the web app at `/` and the protocol over WebSocket at `/ws` (HTTPS and WSS with `--tls-cert`); `0` picks a free one, `off` turns it off",
  },
  httpOrigins: {
    def: "",
    kind: "text",
    help: "origins whose pages may open `/ws`, comma-separated (e.g. `https://chat.example.com`); none: only pages from the server itself. Clients that send no Origin (not browsers) are not checked",
  },
  tlsCert: { def: "", kind: "path", help: "PEM certificate: serve the same protocol over TLS (with `--tls-key`)" },
  tlsKey: { def: "", kind: "path", help: "PEM private key for `--tls-cert`" },
  tlsHandshakeTimeout: {
    def: 10,
    kind: "int",
    help: "seconds a TLS connection has to finish its handshake before it is closed",
  },
  shutdownGrace: { def: 5000, kind: "int", help: "ms to flush clients on shutdown" },
  logLevel: { def: "info", kind: "string", help: "least important log events written: `debug`, `info`, `warn` or `error`" },
  logFormat: {
    def: "",
    kind: "text",
    help: "`json` (one object per line) or `pretty`; none: pretty when stdout is a terminal, JSON otherwise",
  },
  adminSocket: {
    def: "",
    kind: "text",
    help: "Unix socket for `tcpchat admin` (created 0600); none: `<db>.admin.sock` beside a SQLite file, no socket for Postgres or `:memory:`; `off`: none",
  },
  retainDays: {
    def: 0,
    kind: "int",
    help: "messages older than this many days are purged, in small batches, every minute (0: kept forever)",
  },

  maxConns: {
    def: 10000,
    kind: "int",
    help: "open connections in all; more are refused at once. Lowered at start to the descriptor limit less 128, so accepting never fails for want of descriptors",
  },
  maxConnsPerAddr: {
    def: 256,
    kind: "int",
    help: "open connections per client address (IPv6: per /64 prefix); more are refused (0: no limit)",
  },
  maxFrame: { def: 4 * MiB, kind: "int", help: "largest request frame, bytes (a file's chunks are at most this less 1 KiB, and 1 MiB)" },
  maxFrameLogin: {
    def: 64 * KiB,
    kind: "int",
    help: "largest request frame before the connection has logged in, bytes (at most `--max-frame`)",
  },
  maxQueue: {
    def: 16 * MiB,
    kind: "int",
    help: "unsent bytes per connection (each queued frame also counts 256 bytes of overhead): past half, a reader is behind and its missed messages are replayed from the store when it drains; past all of it (unread replies), it is closed",
  },
  maxBuffered: {
    def: 256 * MiB,
    kind: "int",
    help: "unsent output plus partly received input of all connections together, bytes; past it the connections holding the most are closed until it fits",
  },
  writeTimeout: {
    def: 30,
    kind: "int",
    help: "seconds a connection with unsent output may go without reading any of it before it is closed outright",
  },
  stuckTimeout: { def: 60, kind: "int", help: "seconds a reader that is behind may go without its replay moving on before it is closed" },
  maxHeld: { def: 64, kind: "int", help: "requests queued behind a pending login or register" },
  maxHeldBytes: {
    def: 256 * KiB,
    kind: "int",
    help: "bytes of requests queued behind a pending login or register",
  },
  rateMsgs: { def: 200, kind: "int", help: "requests per second per connection (0: no limit)" },
  rateBytes: {
    def: 8 * MiB,
    kind: "int",
    help: "request bytes, and bytes of `history`/`sync` pages, per second per connection (0: no limit)",
  },
  rateMsgsAddr: {
    def: 1000,
    kind: "int",
    help: "requests per second from all connections of one address together (IPv6: a /64; 0: no limit)",
  },
  rateBytesAddr: {
    def: 8 * MiB,
    kind: "int",
    help: "request and page bytes per second from all connections of one address together (0: no limit)",
  },
  rateBurst: { def: 2, kind: "int", help: "seconds of those rates usable at once" },
  maxRefused: {
    def: 100,
    kind: "int",
    help: "requests refused for a limit (`rate_limited`) per connection within 10 s before the connection is closed with `bye limits_exceeded` (0: never)",
  },
  idleTimeout: { def: 300, kind: "int", help: "seconds without a frame before `bye idle` (0: never)" },
  loginTimeout: { def: 30, kind: "int", help: "seconds to log in after connecting (0: forever)" },
  maxText: { def: 64 * KiB, kind: "int", help: "largest message text, UTF-8 bytes" },
  maxPage: { def: 500, kind: "int", help: "largest `history`/`sync` page" },
  maxFile: { def: 100 * MiB, kind: "int", help: "largest file, bytes (uploaded in chunks, PROTOCOL.md §3.9)" },
  fileQuota: {
    def: 1024 * MiB,
    kind: "int",
    help: "bytes of files per user: their uploads not yet sent and the files of their messages not deleted (0: no limit)",
  },
  maxUploads: { def: 16, kind: "int", help: "uploads per user not yet sent (finished or not)" },
  uploadTtl: {
    def: 24 * 3600,
    kind: "int",
    help: "seconds an upload not sent is kept after its last chunk; then it is deleted with its bytes",
  },
  maxGroupSize: { def: 10000, kind: "int", help: "members per group" },
  maxGroupsPerUser: { def: 1000, kind: "int", help: "groups one user may be a member of" },
  maxGroupsCreated: { def: 100, kind: "int", help: "groups one user may create" },
  maxSessionsPerUser: {
    def: 32,
    kind: "int",
    help: "logged-in connections per user; a login beyond it gets `rate_limited`",
  },
  loginsPerUser: {
    def: 60,
    kind: "int",
    help: "successful logins per user per minute (0: no limit); more get `rate_limited`",
  },
  presenceDelay: {
    def: 1000,
    kind: "int",
    help: "ms a user's presence change waits before it is announced; a change undone within it is never sent",
  },
  typingMaxGroup: {
    def: 100,
    kind: "int",
    help: "`typing` notices are not sent in groups of more members than this (0: in no group; direct conversations always)",
  },

  tokenTtl: { def: 30 * 24 * 3600, kind: "int", help: "login token lifetime, seconds" },
  maxTokensPerUser: {
    def: 100,
    kind: "int",
    help: "login tokens kept per user; a password login beyond it revokes the oldest",
  },
  hashMemory: { def: 65536, kind: "int", help: "argon2id memory cost, KiB" },
  hashTime: { def: 2, kind: "int", help: "argon2id time cost" },
  hashQueue: {
    def: 32,
    kind: "int",
    help: "password checks (login, passwd) waiting for a hashing slot, at most max(2, this / 8) of them from one address; more get `rate_limited` at once",
  },
  registerQueue: {
    def: 4,
    kind: "int",
    help: "registrations waiting for their own hashing slot (separate from logins); more get `rate_limited` at once",
  },
  registerPerAddr: {
    def: 10,
    kind: "int",
    help: "registrations per client address per hour (0: no limit)",
  },
  loginFree: {
    def: 5,
    kind: "int",
    help: "failed password checks per user and address before each further one must wait (1 s, doubling up to `--login-backoff-max`; 0: no limit)",
  },
  loginFailsAddr: {
    def: 100,
    kind: "int",
    help: "failed password checks per address (any user; bogus token logins do not count) before the same backoff applies to the address (0: no limit)",
  },
  loginBackoffMax: { def: 60, kind: "int", help: "longest password backoff, seconds" },
  loginConcurrentUser: {
    def: 2,
    kind: "int",
    help: "password checks in progress at once per user from one address (checks for the user from other addresses never count against it); more get `rate_limited` (0: no limit)",
  },
  loginConcurrentAddr: {
    def: 2,
    kind: "int",
    help: "password checks and registrations in progress at once per address; more get `rate_limited` (0: no limit)",
  },
} as const satisfies Record<string, OptionSpec>;

type Options = typeof OPTIONS;
type ValueOf<K extends Kind> = K extends "int"
  ? number
  : K extends "durability"
    ? Durability
    : K extends "portOrOff"
      ? number | "off"
      : string;

export type Config = { -readonly [K in keyof Options]: ValueOf<Options[K]["kind"]> };
export type ConfigKey = keyof Config;

export const DEFAULTS: Config = Object.fromEntries(
  Object.entries(OPTIONS).map(([k, o]) => [k, o.def]),
) as unknown as Config;

export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function envOf(key: string): string {
  return `TCPCHAT_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

const KEYS = Object.keys(OPTIONS) as ConfigKey[];
const BY_FLAG = new Map(KEYS.map((k) => [flagOf(k), k]));

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function parseValue(key: ConfigKey, raw: string, from: string): Config[ConfigKey] {
  const kind: Kind = OPTIONS[key].kind;
  if (kind === "string") {
    if (raw === "") throw new ConfigError(`${from}: must not be empty`);
    return raw;
  }
  if (kind === "path" || kind === "text") return raw;
  if (kind === "portOrOff" && raw === "off") return "off";
  if (kind === "durability") {
    if (raw !== "normal" && raw !== "full") throw new ConfigError(`${from}: must be "normal" or "full", got "${raw}"`);
    return raw;
  }
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new ConfigError(`${from}: must be a non-negative integer, got "${raw}"`);
  return Number(raw);
}

/**
 * The admin socket's path (`--admin-socket`): as given; `<db>.admin.sock` beside a SQLite file
 * when none is given; undefined for `off`, or with none given for Postgres and `:memory:`.
 */
export function adminSocketPath(c: Pick<Config, "adminSocket" | "db">): string | undefined {
  if (c.adminSocket === "off") return undefined;
  if (c.adminSocket !== "") return c.adminSocket;
  if (c.db === ":memory:" || c.db.startsWith("file:") || /^postgres(ql)?:\/\//i.test(c.db)) return undefined;
  return `${c.db}.admin.sock`;
}

/** Builds the config from defaults, then `env`, then `argv` (flags after the script name). */
export function parseConfig(argv: string[], env: Record<string, string | undefined> = {}): Config {
  const cfg: Record<string, unknown> = { ...DEFAULTS };
  for (const key of KEYS) {
    const raw = env[envOf(key)];
    if (raw !== undefined) cfg[key] = parseValue(key, raw, envOf(key));
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = BY_FLAG.get(name);
    if (!key) throw new ConfigError(`unknown option "${arg}" (see --help)`);
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new ConfigError(`${name} needs a value`);
    cfg[key] = parseValue(key, raw, name);
  }
  return validate(cfg as unknown as Config);
}

function validate(c: Config): Config {
  if (c.port > 65535) throw new ConfigError(`port must be at most 65535, got ${c.port}`);
  if (c.httpPort !== "off" && c.httpPort > 65535) throw new ConfigError(`http-port must be at most 65535 or "off", got ${c.httpPort}`);
  for (const o of c.httpOrigins.split(",").filter((x) => x.trim() !== ""))
    if (!/^https?:\/\/[^/\s]+$/.test(o.trim()))
      throw new ConfigError(`--http-origins: "${o.trim()}" is not an origin such as https://chat.example.com`);
  if (c.maxFrame < 1024) throw new ConfigError("max-frame must be at least 1024 bytes");
  if (c.maxFrame > 0x7fffffff) throw new ConfigError("max-frame must be below 2 GiB");
  if (c.maxFrameLogin < 1024) throw new ConfigError("max-frame-login must be at least 1024 bytes");
  // A reply (history page, a file message) may be as large as a frame: the queue must hold two.
  if (c.maxQueue < 2 * c.maxFrame) throw new ConfigError("max-queue must be at least twice max-frame");
  if (c.maxBuffered < c.maxQueue) throw new ConfigError("max-buffered must be at least max-queue");
  if (c.maxText < 1 || c.maxText > c.maxFrame) throw new ConfigError("max-text must be between 1 and max-frame");
  if (c.maxPage < 1) throw new ConfigError("max-page must be at least 1");
  if (c.tokenTtl < 1) throw new ConfigError("token-ttl must be at least 1 second");
  if (c.hashMemory < 8 || c.hashTime < 1) throw new ConfigError("hash-memory must be >= 8 KiB and hash-time >= 1");
  if (c.rateBurst < 1) throw new ConfigError("rate-burst must be at least 1 second");
  if (c.rateBytes > 0 && c.rateBytes * c.rateBurst < c.maxFrame)
    throw new ConfigError("rate-bytes x rate-burst must be at least max-frame, or a largest frame could never pass");
  if (c.rateBytesAddr > 0 && c.rateBytesAddr * c.rateBurst < c.maxFrame)
    throw new ConfigError("rate-bytes-addr x rate-burst must be at least max-frame, or a largest frame could never pass");
  for (const k of ["maxConns", "maxFile", "maxUploads", "uploadTtl", "maxGroupSize", "maxGroupsPerUser", "maxSessionsPerUser", "maxTokensPerUser", "writeTimeout"] as const)
    if (c[k] < 1) throw new ConfigError(`${flagOf(k).slice(2)} must be at least 1`);
  if (c.loginBackoffMax < 1) throw new ConfigError("login-backoff-max must be at least 1 second");
  // `members` and `groups` answer in one frame (PROTOCOL.md §3.3): at most 64 bytes per member
  // and 96 per group (names are at most 32 bytes), so the caps must keep them within a frame.
  if (c.maxGroupSize * 64 > c.maxFrame) throw new ConfigError("max-group-size x 64 bytes must fit in max-frame (the members reply)");
  if (c.maxGroupsPerUser * 96 > c.maxFrame) throw new ConfigError("max-groups-per-user x 96 bytes must fit in max-frame (the groups reply)");
  if (!["debug", "info", "warn", "error"].includes(c.logLevel))
    throw new ConfigError(`--log-level must be debug, info, warn or error, got "${c.logLevel}"`);
  if (c.logFormat !== "" && c.logFormat !== "json" && c.logFormat !== "pretty")
    throw new ConfigError(`--log-format must be json or pretty, got "${c.logFormat}"`);
  if ((c.tlsCert === "") !== (c.tlsKey === "")) throw new ConfigError("--tls-cert and --tls-key go together");
  if (c.bus !== "") {
    if (!/^postgres(ql)?:\/\//.test(c.db))
      throw new ConfigError("--bus needs a store every node shares: --db postgres://... (a SQLite file belongs to one server)");
    for (const u of c.bus.split(","))
      if (!/^(nats|tls):\/\/[^\s,]+$/.test(u.trim())) throw new ConfigError(`--bus: "${u.trim()}" is not a nats:// address`);
  }
  return c;
}

function shown(key: ConfigKey): string {
  const d = OPTIONS[key].def;
  return d === "" ? "none" : String(d);
}

export function helpText(): string {
  const lines = ["Usage: tcpchat serve [options]   (or: bun run src/server.ts [options])", "", "Options (flag / environment variable, default):"];
  for (const k of KEYS) {
    const o = OPTIONS[k];
    const arg = o.kind === "int" ? "n" : o.kind === "portOrOff" ? "n|off" : o.kind === "path" ? "file" : "value";
    lines.push(`  ${`${flagOf(k)} <${arg}>`.padEnd(28)} ${o.help.replaceAll("`", "")}`);
    lines.push(`  ${"".padEnd(28)} env ${envOf(k)}, default ${shown(k)}`);
  }
  lines.push(`  ${"--help".padEnd(28)} show this text`);
  return lines.join("\n");
}

/** The README's configuration table, in Markdown (scripts/config-table.ts prints it; a test keeps README in step). */
export function markdownTable(): string {
  const rows = ["| flag | environment | default | meaning |", "| --- | --- | --- | --- |"];
  for (const k of KEYS) rows.push(`| \`${flagOf(k)}\` | \`${envOf(k)}\` | \`${shown(k)}\` | ${OPTIONS[k].help} |`);
  return rows.join("\n");
}
