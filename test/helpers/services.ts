// Real services for the cluster tests: a `nats-server` and a PostgreSQL server, each on 127.0.0.1,
// on a free port, in its own temporary directory.
//
// Lifecycle (bun test runs every file in one process, one file after another):
//   - Start what a file needs in its beforeAll and keep the handle; call `stop()` in afterAll.
//     afterAll runs even when tests fail. `stop()` is final: it ends the process and removes the directory.
//   - One Postgres server per test file is the intended use; `createDatabase()` gives each suite or
//     test an empty database on that server in a few milliseconds (a server start costs much more).
//   - Fault tests use `kill()` (SIGKILL), `shutdown()` (graceful, data kept), `start()` (same port, same
//     directory, so JetStream streams and Postgres data survive) and `restart()`.
//   - Every process here is ended by its PID. Whatever a test forgot to stop is SIGKILLed, and its
//     directory removed, when the test process exits (or gets SIGINT/SIGTERM).
//
// Binaries: nats-server from PATH (or /usr/sbin, /usr/bin); initdb, pg_ctl and postgres from the newest
// /usr/lib/postgresql/<ver>/bin, else PATH. `npm test` installs them first (scripts/services.sh). When one is
// missing, starting throws with the command that installs it: a missing service fails, it never skips.
//
// Postgres refuses to run as root: when the tests run as root (CI does), initdb and pg_ctl run as the
// `postgres` user through `su postgres -s /bin/sh -c ...`, and the directories are made theirs.
import { SQL } from "bun";
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const INSTALL_CMD = "apt-get update && apt-get install -y nats-server postgresql";
const HOST = "127.0.0.1";

// ---------------------------------------------------------------- shared bits

/** A TCP port free on 127.0.0.1 right now (bound to port 0, then released). */
export function freePort(): number {
  const l = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** Resolves once `port` on 127.0.0.1 accepts a TCP connection; throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 15000, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      Bun.connect({
        hostname: HOST,
        port,
        socket: {
          open(s) {
            s.end();
            resolve(true);
          },
          data() {},
          connectError() {
            resolve(false);
          },
          error() {
            resolve(false);
          },
        },
      }).catch(() => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the process meant to listen on ${HOST}:${port} has exited`);
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on ${HOST}:${port} within ${timeoutMs} ms`);
    await Bun.sleep(10);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is gone for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** PIDs whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(pidAlive)) {
    if (Date.now() > deadline) return false;
    await Bun.sleep(10);
  }
  return true;
}

function tail(path: string, chars = 3000): string {
  try {
    const s = readFileSync(path, "utf8");
    return s.length > chars ? "..." + s.slice(-chars) : s;
  } catch {
    return "(no log)";
  }
}

/** Directories and PIDs to clean up if the test process ends with services still running. */
const live = new Map<string, { pids: () => number[]; dir: string }>();
let exitHooked = false;
function track(key: string, pids: () => number[], dir: string): void {
  live.set(key, { pids, dir });
  if (exitHooked) return;
  exitHooked = true;
  const killAll = () => {
    for (const { pids, dir } of live.values()) {
      for (const pid of pids()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // a postgres backend may still be exiting; the directory is in tmp
      }
    }
    live.clear();
  };
  process.once("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
  }
}

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755); // mkdtemp makes it 700; the postgres user must be able to enter it
  return dir;
}

// ---------------------------------------------------------------- NATS

export interface NatsOptions {
  /** max_payload in the server config; tcpchat frames reach 4 MiB, the server default is 1 MiB. Default "8MB". */
  maxPayload?: string;
  /** Enable JetStream (stored in the temp dir, so streams survive kill and restart). Default true. */
  jetstream?: boolean;
  /** Extra lines for the config file. */
  config?: string;
}

export interface NatsServer {
  /** nats://127.0.0.1:PORT */
  url: string;
  port: number;
  /** PID of the current nats-server process (changes on start/restart); 0 while down. */
  readonly pid: number;
  readonly running: boolean;
  dir: string;
  /** The server's output so far (all runs). */
  log(): string;
  /** SIGKILL; resolves once the process has exited. The directory is kept. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), resolves once exited. The directory is kept. */
  shutdown(): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it accepts TCP connections. */
  start(): Promise<void>;
  /** shutdown() if running, then start(). */
  restart(): Promise<void>;
  /** Final: ends the process (SIGTERM, SIGKILL after 5 s) and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export function natsServerBinary(): string {
  const found = Bun.which("nats-server") ?? ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => existsSync(p));
  if (!found) throw new Error(`nats-server is not installed; the cluster tests need it. Install it (as root): ${INSTALL_CMD}`);
  return found;
}

/** Starts a real nats-server on 127.0.0.1 on a free port, in a temp dir; resolves once it accepts TCP. */
export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const bin = natsServerBinary();
  const dir = makeTempDir("tcpchat-nats-");
  const port = freePort();
  const conf = join(dir, "nats.conf");
  const logPath = join(dir, "nats.log");
  const lines = [`listen: "${HOST}:${port}"`, `max_payload: ${opts.maxPayload ?? "8MB"}`];
  if (opts.jetstream ?? true) lines.push(`jetstream {`, `  store_dir: "${join(dir, "js")}"`, `}`);
  if (opts.config) lines.push(opts.config);
  writeFileSync(conf, lines.join("\n") + "\n");

  let proc: ReturnType<typeof Bun.spawn> | null = null;
  let stopped = false;
  const key = `nats:${dir}`;

  const exited = async (p: NonNullable<typeof proc>, signal: NodeJS.Signals, graceMs: number) => {
    p.kill(signal);
    const done = await Promise.race([p.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
    if (!done) {
      p.kill("SIGKILL");
      await p.exited;
    }
  };

  const server: NatsServer = {
    url: `nats://${HOST}:${port}`,
    port,
    dir,
    get pid() {
      return proc && proc.exitCode === null && proc.signalCode === null ? proc.pid : 0;
    },
    get running() {
      return !!proc && proc.exitCode === null && proc.signalCode === null;
    },
    log: () => tail(logPath, 1 << 20),
    async start() {
      if (stopped) throw new Error("startNats: start() after stop()");
      if (server.running) return;
      const fd = openSync(logPath, "a");
      try {
        proc = Bun.spawn([bin, "-c", conf], { cwd: dir, stdin: "ignore", stdout: fd, stderr: fd });
      } finally {
        closeSync(fd);
      }
      proc.unref();
      const p = proc;
      try {
        await waitForPort(port, 15000, () => p.exitCode === null && p.signalCode === null);
      } catch (e) {
        if (p.exitCode === null) await exited(p, "SIGKILL", 0);
        throw new Error(`nats-server did not start on port ${port}: ${(e as Error).message}\n${tail(logPath)}`);
      }
    },
    async kill() {
      if (proc && server.running) await exited(proc, "SIGKILL", 0);
    },
    async shutdown() {
      if (proc && server.running) await exited(proc, "SIGTERM", 5000);
    },
    async restart() {
      await server.shutdown();
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.shutdown();
      live.delete(key);
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  track(key, () => (server.pid ? [server.pid] : []), dir);
  try {
    await server.start();
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

// ---------------------------------------------------------------- PostgreSQL

export interface PostgresOptions {
  /** Name of the database created at start, which `url` points at. Default "test". */
  database?: string;
  /** Extra server settings, e.g. { max_connections: "200" }; they go into postgresql.conf. */
  settings?: Record<string, string>;
}

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:PORT/<database> */
  url: string;
  port: number;
  /** PID of the postmaster while running, else 0. */
  readonly pid: number;
  readonly running: boolean;
  dir: string;
  /** URL for any database on this server. */
  urlFor(database: string): string;
  /** Creates an empty database (a fresh unique name when none is given) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** The server log (tail). */
  log(): string;
  /** SIGKILL of the postmaster; resolves once it and its backends are gone (they exit on their own when the postmaster dies). */
  kill(): Promise<void>;
  /** Fast shutdown (`pg_ctl -m fast stop`), data kept. */
  shutdown(): Promise<void>;
  /** Starts it again on the same port and data directory (crash recovery after kill()); resolves once it accepts connections. */
  start(): Promise<void>;
  /** shutdown() if running, then start(). */
  restart(): Promise<void>;
  /** Final: fast shutdown (SIGKILL if that fails) and removal of the directory. Safe to call twice. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface PostgresBinaries {
  bin: string;
  initdb: string;
  pgCtl: string;
}

export function postgresBinaries(): PostgresBinaries {
  const base = "/usr/lib/postgresql";
  const dirs = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+(\.\d+)?$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => join(base, v, "bin"))
    : [];
  for (const bin of dirs) {
    if (["initdb", "pg_ctl", "postgres"].every((b) => existsSync(join(bin, b)))) {
      return { bin, initdb: join(bin, "initdb"), pgCtl: join(bin, "pg_ctl") };
    }
  }
  const initdb = Bun.which("initdb");
  const pgCtl = Bun.which("pg_ctl");
  if (initdb && pgCtl) return { bin: join(initdb, ".."), initdb, pgCtl };
  throw new Error(`PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed; the cluster tests need them. Install them (as root): ${INSTALL_CMD}`);
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (!line) throw new Error(`the tests run as root, and PostgreSQL must run as the 'postgres' user, which does not exist. Install (as root): ${INSTALL_CMD}`);
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

const asRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL tool (as the postgres user when we are root); resolves with its output, throws on failure. */
async function pgRun(argv: string[], cwd: string): Promise<string> {
  const cmd = asRoot() ? ["su", "postgres", "-s", "/bin/sh", "-c", argv.map(shq).join(" ")] : argv;
  const p = Bun.spawn(cmd, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, LC_ALL: "C" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} failed (exit ${code}):\n${out}${err}`);
  return out + err;
}

let dbCounter = 0;

/**
 * initdb into a temp dir and start PostgreSQL on 127.0.0.1 on a free port (fsync and synchronous_commit on,
 * trust authentication, user `postgres`), then create `opts.database`. Resolves once it accepts connections.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const { initdb, pgCtl } = postgresBinaries();
  const root = asRoot();
  const owner = root ? postgresUser() : null;
  const dir = makeTempDir("tcpchat-pg-");
  const data = join(dir, "data");
  const sock = join(dir, "sock");
  const logPath = join(dir, "postgres.log");
  mkdirSync(sock, { mode: 0o755 });
  writeFileSync(logPath, "");
  if (owner) for (const p of [dir, sock, logPath]) chownSync(p, owner.uid, owner.gid);
  const port = freePort();
  const key = `pg:${dir}`;
  let stopped = false;

  const readPid = (): number => {
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      return pid > 0 && pidAlive(pid) ? pid : 0;
    } catch {
      return 0;
    }
  };
  const urlFor = (db: string) => `postgres://postgres@${HOST}:${port}/${encodeURIComponent(db)}`;

  const server: PostgresServer = {
    url: "",
    port,
    dir,
    get pid() {
      return readPid();
    },
    get running() {
      return readPid() !== 0;
    },
    urlFor,
    log: () => tail(logPath),
    async createDatabase(name?: string) {
      const db = name ?? `t${process.pid}_${++dbCounter}_${Math.random().toString(36).slice(2, 8)}`;
      const sql = new SQL({ url: urlFor("postgres"), max: 1 });
      try {
        await sql.unsafe(`CREATE DATABASE "${db.replace(/"/g, '""')}"`);
      } finally {
        await sql.close();
      }
      return urlFor(db);
    },
    async start() {
      if (stopped) throw new Error("startPostgres: start() after stop()");
      if (server.running) return;
      try {
        await pgRun([pgCtl, "-D", data, "-l", logPath, "-w", "-t", "60", "start"], dir);
        await waitForPort(port, 15000);
      } catch (e) {
        throw new Error(`PostgreSQL did not start on port ${port}: ${(e as Error).message}\n${tail(logPath)}`);
      }
    },
    async kill() {
      const pid = readPid();
      if (!pid) return;
      const children = childrenOf(pid);
      process.kill(pid, "SIGKILL");
      // The backends notice the postmaster's death and exit by themselves; a restart needs them gone
      // (they still hold the shared memory). Those that linger are ended by PID.
      if (!(await waitGone([pid, ...children], 5000))) {
        for (const c of children.filter(pidAlive)) {
          try {
            process.kill(c, "SIGKILL");
          } catch {
            // gone
          }
        }
        await waitGone([pid, ...children], 5000);
      }
      // The dead postmaster stays a zombie until init reaps it (seconds on some machines), and Postgres
      // takes any PID that answers kill(0) as a live server holding its lock files: remove those that
      // name the dead postmaster (the data directory's and the socket's), as after a crash of the machine.
      for (const lock of [join(data, "postmaster.pid"), join(sock, `.s.PGSQL.${port}.lock`)]) {
        try {
          if (Number(readFileSync(lock, "utf8").split("\n")[0]) === pid) rmSync(lock);
        } catch {
          // no lock file
        }
      }
    },
    async shutdown() {
      if (!server.running) return;
      try {
        await pgRun([pgCtl, "-D", data, "-m", "fast", "-w", "-t", "30", "stop"], dir);
      } catch {
        await server.kill();
      }
    },
    async restart() {
      await server.shutdown();
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.shutdown();
      live.delete(key);
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  track(key, () => (server.pid ? [server.pid] : []), dir);

  try {
    await pgRun([initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], dir);
    const settings: Record<string, string> = {
      listen_addresses: `'${HOST}'`,
      port: String(port),
      unix_socket_directories: `'${sock}'`,
      fsync: "on",
      synchronous_commit: "on",
      shared_buffers: "32MB",
      max_connections: "100",
      logging_collector: "off",
      ...opts.settings,
    };
    // postgresql.auto.conf is read last, so these win over initdb's defaults (appending keeps its owner, postgres).
    writeFileSync(join(data, "postgresql.auto.conf"), Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n", { flag: "a" });
    await server.start();
    server.url = await server.createDatabase(opts.database ?? "test");
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}
