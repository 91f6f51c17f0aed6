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
//     directory removed, by a watchdog within about 2 s of the test process ending, however it ends.
//   - Times on 2 busy cores: startNats() 15-30 ms; startPostgres() 0.6-1.8 s (the first in a process
//     also runs initdb, 1-2 s; the others copy its result); createDatabase() 0.06-0.5 s; kill() ~40 ms;
//     start() after kill() (crash recovery) 0.2-0.4 s. Both are disk-bound: TMPDIR=/dev/shm puts the
//     directories in memory (fsync then costs nothing; a kill -9 of the server still loses nothing).
//
// Binaries: nats-server from PATH (or /usr/sbin, /usr/bin); initdb, pg_ctl and postgres from the newest
// /usr/lib/postgresql/<ver>/bin, else PATH. `npm test` installs them first (scripts/services.sh). When one is
// missing, starting throws with the command that installs it: a missing service fails, it never skips.
//
// Postgres refuses to run as root: when the tests run as root (CI does), initdb and pg_ctl run as the
// `postgres` user through `su postgres -s /bin/sh -c ...`, and the directories are made theirs.
import { SQL } from "bun";
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
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

// Safety net for services a test did not stop. `bun test` fires no "exit" event (checked with 1.4.5), so
// a watchdog (one `sh` per test process, ignoring SIGINT/SIGTERM/SIGHUP) waits for this process to end,
// however it ends, then SIGKILLs the PIDs and removes the directories listed in a registry file that is
// rewritten whenever a service starts or stops. Under `bun run` the "exit" event does the same at once.
const WATCHDOG = `
trap '' INT TERM HUP
reg="$1"; parent="$2"
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
[ -f "$reg" ] || exit 0
while read -r kind v; do [ "$kind" = pid ] && kill -9 "$v" 2>/dev/null; done < "$reg"
sleep 1
while read -r kind v; do [ "$kind" = dir ] && rm -rf "$v"; done < "$reg"
rm -f "$reg"
`;
const live = new Map<string, { pids: () => number[]; dir: string }>();
let registry = "";

function syncRegistry(): void {
  if (!registry) return;
  const lines: string[] = [];
  for (const { pids, dir } of live.values()) {
    for (const pid of pids()) lines.push(`pid ${pid}`);
    lines.push(`dir ${dir}`);
  }
  writeFileSync(registry + ".tmp", lines.join("\n") + "\n");
  renameSync(registry + ".tmp", registry);
}

function killAll(): void {
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
      // a postgres backend may still be exiting; the watchdog removes it
    }
  }
  live.clear();
  if (registry) rmSync(registry, { force: true });
}

function track(key: string, pids: () => number[], dir: string): void {
  live.set(key, { pids, dir });
  if (!registry) {
    registry = join(tmpdir(), `tcpchat-services-${process.pid}.txt`);
    writeFileSync(registry, "");
    const watchdog = Bun.spawn(["/bin/sh", "-c", WATCHDOG, "tcpchat-services-watchdog", registry, String(process.pid)], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
    });
    watchdog.unref();
    process.once("exit", killAll);
  }
  syncRegistry();
}

function untrack(key: string): void {
  live.delete(key);
  syncRegistry();
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
  const conf = join(dir, "nats.conf");
  const logPath = join(dir, "nats.log");
  writeFileSync(logPath, "");
  const writeConf = (port: number) => {
    const lines = [`listen: "${HOST}:${port}"`, `max_payload: ${opts.maxPayload ?? "8MB"}`];
    if (opts.jetstream ?? true) lines.push(`jetstream {`, `  store_dir: "${join(dir, "js")}"`, `}`);
    if (opts.config) lines.push(opts.config);
    writeFileSync(conf, lines.join("\n") + "\n");
  };

  let proc: ReturnType<typeof Bun.spawn> | null = null;
  let stopped = false;
  const key = `nats:${dir}`;
  const isUp = (p: typeof proc) => !!p && p.exitCode === null && p.signalCode === null;

  const exited = async (p: NonNullable<typeof proc>, signal: NodeJS.Signals, graceMs: number) => {
    p.kill(signal);
    const done = await Promise.race([p.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
    if (!done) {
      p.kill("SIGKILL");
      await p.exited;
    }
  };

  /** One attempt on the configured port: resolves once this process logs that it is ready and the port accepts TCP. */
  const launch = async (port: number): Promise<void> => {
    const from = Bun.file(logPath).size;
    const fd = openSync(logPath, "a");
    let p: NonNullable<typeof proc>;
    try {
      p = Bun.spawn([bin, "-c", conf], { cwd: dir, stdin: "ignore", stdout: fd, stderr: fd });
    } finally {
      closeSync(fd);
    }
    p.unref();
    proc = p;
    const deadline = Date.now() + 15000;
    // Its own "Server is ready" line, not just an open port: a port taken by someone else in the
    // meantime would also accept connections.
    while (!readFileSync(logPath, "utf8").slice(from).includes("Server is ready")) {
      if (!isUp(p) || Date.now() > deadline) {
        if (isUp(p)) await exited(p, "SIGKILL", 0);
        await p.exited;
        const out = readFileSync(logPath, "utf8").slice(from);
        const err = new Error(`nats-server did not start on ${HOST}:${port}:\n${out.slice(-3000)}`);
        (err as Error & { inUse?: boolean }).inUse = /address already in use/i.test(out);
        throw err;
      }
      await Bun.sleep(5);
    }
    await waitForPort(port, 5000, () => isUp(p));
  };

  let port = 0;
  const server: NatsServer = {
    url: "",
    port: 0,
    dir,
    get pid() {
      return proc && isUp(proc) ? proc.pid : 0;
    },
    get running() {
      return isUp(proc);
    },
    log: () => readFileSync(logPath, "utf8"),
    async start() {
      if (stopped) throw new Error("startNats: start() after stop()");
      if (isUp(proc)) return;
      try {
        await launch(port);
      } finally {
        syncRegistry();
      }
    },
    async kill() {
      if (proc && isUp(proc)) await exited(proc, "SIGKILL", 0);
      syncRegistry();
    },
    async shutdown() {
      if (proc && isUp(proc)) await exited(proc, "SIGTERM", 5000);
      syncRegistry();
    },
    async restart() {
      await server.shutdown();
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.shutdown();
      untrack(key);
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  track(key, () => (server.pid ? [server.pid] : []), dir);
  try {
    // The free port may be taken between freePort() and the server's bind: try another (first start only).
    for (let attempt = 1; ; attempt++) {
      port = freePort();
      writeConf(port);
      try {
        await launch(port);
        break;
      } catch (e) {
        if (!(e as { inUse?: boolean }).inUse || attempt >= 5) throw e;
      }
    }
    server.port = port;
    server.url = `nats://${HOST}:${port}`;
    syncRegistry();
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
 * initdb runs once per test process, into a template directory that each startPostgres() copies
 * (initdb takes 1-2 s here, a copy 0.1-0.4 s). Removed when the process exits.
 */
let template: Promise<string> | null = null;
function templateData(initdb: string, owner: { uid: number; gid: number } | null): Promise<string> {
  template ??= (async () => {
    const dir = makeTempDir("tcpchat-pgtpl-");
    if (owner) chownSync(dir, owner.uid, owner.gid);
    track(`pgtpl:${dir}`, () => [], dir);
    const data = join(dir, "data");
    await pgRun([initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], dir);
    return data;
  })();
  return template;
}

/**
 * Starts PostgreSQL on 127.0.0.1 on a free port in a temp dir (a copy of an initdb'd template; fsync and
 * synchronous_commit on, trust authentication, superuser `postgres`), then creates `opts.database`.
 * Resolves once it accepts connections.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const { initdb, pgCtl } = postgresBinaries();
  const owner = asRoot() ? postgresUser() : null;
  const dir = makeTempDir("tcpchat-pg-");
  const data = join(dir, "data");
  const sock = join(dir, "sock");
  const logPath = join(dir, "postgres.log");
  mkdirSync(sock, { mode: 0o755 });
  writeFileSync(logPath, "");
  if (owner) for (const p of [dir, sock, logPath]) chownSync(p, owner.uid, owner.gid);
  let port = 0;
  const key = `pg:${dir}`;
  let stopped = false;

  const writeSettings = () => {
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
    // postgresql.auto.conf is read last, so these win over postgresql.conf. Rewriting keeps its owner (postgres).
    writeFileSync(
      join(data, "postgresql.auto.conf"),
      "# Written by test/helpers/services.ts\n" + Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
    );
  };
  const readPid = (): number => {
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      return pid > 0 && pidAlive(pid) ? pid : 0;
    } catch {
      return 0;
    }
  };
  const urlFor = (db: string) => `postgres://postgres@${HOST}:${port}/${encodeURIComponent(db)}`;
  /** One attempt; pg_ctl -w returns once this postmaster accepts connections on its socket. */
  const launch = async () => {
    const from = Bun.file(logPath).size;
    try {
      await pgRun([pgCtl, "-D", data, "-l", logPath, "-w", "-t", "60", "start"], dir);
      await waitForPort(port, 15000);
    } catch (e) {
      const out = readFileSync(logPath, "utf8").slice(from);
      const err = new Error(`PostgreSQL did not start on ${HOST}:${port}: ${(e as Error).message}\n${out.slice(-3000)}`);
      (err as Error & { inUse?: boolean }).inUse = /could not bind|address already in use/i.test(out);
      throw err;
    }
  };

  const server: PostgresServer = {
    url: "",
    port: 0,
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
        await launch();
      } finally {
        syncRegistry();
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
      syncRegistry();
    },
    async shutdown() {
      if (!server.running) return;
      try {
        await pgRun([pgCtl, "-D", data, "-m", "fast", "-w", "-t", "30", "stop"], dir);
      } catch {
        await server.kill();
      }
      syncRegistry();
    },
    async restart() {
      await server.shutdown();
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.shutdown();
      untrack(key);
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  track(key, () => (server.pid ? [server.pid] : []), dir);

  try {
    await pgRun(["cp", "-a", await templateData(initdb, owner), data], dir);
    // The free port may be taken between freePort() and the server's bind: try another (first start only).
    for (let attempt = 1; ; attempt++) {
      port = freePort();
      writeSettings();
      try {
        await launch();
        break;
      } catch (e) {
        if (!(e as { inUse?: boolean }).inUse || attempt >= 5) throw e;
      }
    }
    server.port = port;
    syncRegistry();
    server.url = await server.createDatabase(opts.database ?? "test");
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}
