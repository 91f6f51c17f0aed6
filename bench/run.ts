// `bun bench`: the fan-out latency suite. See bench/README.md for what it measures and how.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { runFiles } from "./files.ts";
import { Histogram } from "./histogram.ts";
import type { ConnSpec, FromWorker, RunSpec, ToWorker, WorkerResult } from "./ipc.ts";
import { type CaseResult, compareReport, printTable, type Report, serverName, targetsOf } from "./report.ts";
import { renderSvg } from "./svg.ts";
// The cluster's services: the same real nats-server and PostgreSQL the cluster tests start.
import { type NatsServer, type PostgresServer, startNats, startPostgres } from "../test/helpers/services.ts";

const ROOT = join(import.meta.dir, "..");
const PASS = "bench-password";

// ---- options ---------------------------------------------------------------

interface Options {
  quick: boolean;
  scenarios: string[];
  groupSizes: number[];
  sizes: number[];
  warmupMs: number;
  measureMs: number;
  workers: number;
  json: boolean;
  compare?: string;
  out: string;
  idleConns: number;
  save: boolean;
  /** Directory for a CPU profile (.cpuprofile) of each tcpchat server run. */
  profile?: string;
  /** Nodes of the cluster runs; 0: no cluster runs. */
  cluster: number;
  /** Which of the paced and unpaced runs of the fanout, groups, sizes and dm scenarios. */
  pacing: "both" | "paced" | "unpaced";
  /** The files scenario: the group's members and the file's size in bytes. */
  filesMembers: number;
  filesSize: number;
  /**
   * Whether the load's sends carry a `cid`: off (none: the latency stamp ends the text), on (every
   * send), both (each case on one SQLite node runs twice, without and then with; the floor once, without).
   */
  cid: "off" | "on" | "both";
}

const USAGE = `Usage: bun bench [options]
  --quick               a smoke run (well under a minute): few scenarios, short windows
  --scenarios a,b       any of: fanout, groups, sizes, dm, stuck, scale, files, commit (with --cluster) (default: all)
  --group-sizes 1,10    fan-out group sizes (default 1,10,100,1000)
  --sizes 100,65536     message sizes for the sizes scenario, bytes (default 100,1024,8192,65536)
  --duration S          measured seconds per run (default 5; warm-up is 1 s)
  --pacing P            paced, unpaced or both (default) runs of fanout, groups, sizes and dm
  --cid off|on|both     sends without a cid (default: the latency stamp ends the text), with one on
                        every send (as the client library sends), or both: each case on one SQLite node
                        runs twice, without and with ("tcpchat+cid"); the floor runs once, without
  --workers N           load-generator processes (default 2, at least 2)
  --idle-conns N        connections for the connection-scale scenario (default 10000)
  --files-members N     members of the group the files scenario sends one file to (default 1000)
  --files-size BYTES    the file's size in the files scenario (default 10000000)
  --json                print the results as JSON instead of the table
  --compare FILE        print the change of each result against a saved results file
  --out DIR             where results go (default bench/results)
  --no-save             do not write the JSON and SVG files
  --profile DIR         write a CPU profile of the server of each tcpchat case to DIR (slows it down)
  --cluster N           also run each fan-out case on N nodes sharing one PostgreSQL and one nats-server
                        (started for each case), members round robin over the nodes; and the commit
                        scenario (committed messages/s on 1 and N nodes). Scenarios default to fanout,commit`;

/** `v` if it is one of `allowed`, else the usage and exit 2. */
function choice<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T {
  if ((allowed as readonly (string | undefined)[]).includes(v)) return v as T;
  console.error(`bench: ${flag} takes ${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}\n${USAGE}`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    quick: false,
    scenarios: ["fanout", "groups", "sizes", "dm", "stuck", "scale", "files"],
    groupSizes: [1, 10, 100, 1000],
    sizes: [100, 1024, 8192, 65536],
    warmupMs: 1000,
    measureMs: 5000,
    workers: 2,
    json: false,
    out: join(WORKDIR, "bench", "results"),
    idleConns: 10000,
    save: true,
    cluster: 0,
    pacing: "both",
    filesMembers: 1000,
    filesSize: 10_000_000,
    cid: "off",
  };
  const list = (v: string | undefined) => (v ?? "").split(",").filter(Boolean);
  const nums = (v: string | undefined) => list(v).map(Number);
  let explicitScenarios = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i];
    if (a === "--quick") o.quick = true;
    else if (a === "--scenarios") ((o.scenarios = list(v())), (explicitScenarios = true));
    else if (a === "--group-sizes") o.groupSizes = nums(v());
    else if (a === "--sizes") o.sizes = nums(v());
    else if (a === "--duration") o.measureMs = Number(v()) * 1000;
    else if (a === "--pacing") o.pacing = choice(a, v(), ["paced", "unpaced", "both"] as const);
    else if (a === "--cid") o.cid = choice(a, v(), ["off", "on", "both"] as const);
    else if (a === "--workers") o.workers = Math.max(2, Number(v()));
    else if (a === "--idle-conns") o.idleConns = Number(v());
    else if (a === "--files-members") o.filesMembers = Number(v());
    else if (a === "--files-size") o.filesSize = Number(v());
    else if (a === "--json") o.json = true;
    else if (a === "--compare") o.compare = v();
    else if (a === "--out") o.out = v()!;
    else if (a === "--no-save") o.save = false;
    else if (a === "--profile") o.profile = v();
    else if (a === "--cluster") {
      o.cluster = Number(v());
      if (!Number.isInteger(o.cluster) || o.cluster < 1) {
        console.error(`bench: --cluster takes a number of nodes (1 or more)\n${USAGE}`);
        process.exit(2);
      }
    }
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`bench: unknown option ${a}\n${USAGE}`);
      process.exit(2);
    }
  }
  if (o.cluster && !explicitScenarios) o.scenarios = ["fanout", "commit"];
  if (o.quick) {
    if (!explicitScenarios && !o.cluster) o.scenarios = ["fanout", "groups", "dm", "scale"];
    o.groupSizes = o.groupSizes.filter((n) => n <= 100).slice(-2);
    o.sizes = [1024];
    o.warmupMs = 300;
    o.measureMs = Math.min(o.measureMs, 1000);
    // enough that the memory they take stands out of the server's own RSS noise (~0.5 MB)
    o.idleConns = Math.min(o.idleConns, 1000);
  }
  return o;
}

let opts: Options;

/**
 * How to start the other processes. From source: `bun run` of the files. Inside the
 * single executable (`tcpchat bench`), the executable itself, with hidden commands.
 */
const COMPILED = import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:\\~BUN");
const CMD = {
  server: COMPILED ? [process.execPath, "serve"] : [process.execPath, "run", join(ROOT, "src/server.ts")],
  relay: COMPILED ? [process.execPath, "__bench-relay"] : [process.execPath, "run", join(ROOT, "bench/relay.ts")],
  worker: COMPILED ? [process.execPath, "__bench-worker"] : [process.execPath, "run", join(ROOT, "bench/worker.ts")],
  files: COMPILED ? [process.execPath, "__bench-files"] : [process.execPath, "run", join(ROOT, "bench/files.ts")],
};
/** Where processes run and results go by default: the checkout, or the current directory for the executable. */
const WORKDIR = COMPILED ? process.cwd() : ROOT;
const log = (s: string) => (opts.json ? console.error(s) : console.log(s));
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

// ---- processes -------------------------------------------------------------

type ServerKind = "tcpchat" | "floor" | "cluster";

/** What a case runs against: the floor relay, one node on SQLite, or a cluster of `nodes` nodes. */
interface Setup {
  kind: ServerKind;
  nodes: number;
  /** Whether the sends carry a cid (set by `setupsOf` from `--cid`). */
  cid?: boolean;
}

interface Proc {
  proc: Subprocess;
  port: number;
}

/**
 * Everything the bench started and has not stopped yet, so that an error or a signal stops it:
 * processes by PID, and the services (nats-server, PostgreSQL) through their handles.
 */
const running = new Set<Subprocess>();
const services = new Set<NatsServer | PostgresServer>();
/** The bench's temporary directory (the SQLite files), removed on a signal too. */
let benchDir = "";

function spawnTracked(...args: Parameters<typeof Bun.spawn>): Subprocess {
  const proc = Bun.spawn(...args);
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  return proc;
}

/** Ctrl-C, SIGTERM, SIGHUP: SIGKILL every process started (by PID), stop the services, exit. */
function stopAllOnSignals(): void {
  let stopping = false;
  const onSignal = async (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`bench: ${sig}: stopping ${running.size} processes and ${services.size} services it started`);
    for (const p of running) p.kill("SIGKILL");
    await Promise.race([Promise.allSettled([...services].map((x) => x.stop())), Bun.sleep(15000)]);
    if (benchDir) rmSync(benchDir, { recursive: true, force: true });
    // what is left of the services is SIGKILLed by their own exit hook (test/helpers/services.ts)
    process.exit(sig === "SIGINT" ? 130 : sig === "SIGHUP" ? 129 : 143);
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => void onSignal(sig));
}

async function startProc(cmd: string[]): Promise<Proc> {
  const proc = spawnTracked(cmd, { cwd: WORKDIR, stdout: "pipe", stderr: "inherit", stdin: "ignore" }) as Subprocess<"ignore", "pipe", "inherit">;
  const reader = proc.stdout.getReader();
  let out = "";
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
    const m = out.match(/listening on [^\s:]+:(\d+)/);
    if (m) {
      void (async () => {
        while (!(await reader.read()).done); // keep draining stdout
      })();
      return { proc, port: Number(m[1]) };
    }
  }
  proc.kill();
  throw new Error(`did not start: ${cmd.join(" ")}\n${out}`);
}

/** The bench floods on purpose, from one address: the abuse limits are off (their defaults are in README). */
/** The abuse limits off: the bench floods from one address on purpose. */
const NO_LIMITS = [
  ...["--rate-msgs", "0", "--rate-bytes", "0", "--rate-msgs-addr", "0", "--rate-bytes-addr", "0", "--max-conns-per-addr", "0", "--max-refused", "0"],
  ...["--login-fails-addr", "0", "--login-free", "0", "--login-concurrent-addr", "0", "--login-concurrent-user", "0"],
  ...["--http-port", "off"], // the bench measures TCP only; nodes started side by side would all ask for 7780
  ...["--register-per-addr", "0", "--logins-per-user", "0", "--register-queue", "100000", "--hash-queue", "100000"],
  // Not a limit: presence is announced at login, as before --presence-delay existed, so the
  // presence of a case's thousand logins is sent during its setup, not in the measured window.
  ...["--presence-delay", "0"],
];

function serverCmd(): string[] {
  return opts.profile && !COMPILED ? [process.execPath, "--cpu-prof", `--cpu-prof-dir=${opts.profile}`, ...CMD.server.slice(1)] : CMD.server;
}

function startServer(kind: "tcpchat" | "floor", dir: string, extra: string[] = []): Promise<Proc> {
  if (kind === "floor") return startProc([...CMD.relay, "--port", "0"]);
  // As shipped (SQLite file, WAL, batching), except cheap argon2 for the bulk registration of bench users.
  return startProc([
    ...serverCmd(),
    "--port",
    "0",
    "--db",
    join(dir, `bench-${Date.now()}-${Math.random().toString(36).slice(2)}.db`),
    ...NO_LIMITS,
    ...(extra.length ? extra : ["--hash-memory", "1024", "--hash-time", "1"]),
  ]);
}

async function stopProc(p: Proc): Promise<void> {
  p.proc.kill("SIGTERM");
  const t = setTimeout(() => p.proc.kill("SIGKILL"), 10000);
  await p.proc.exited;
  clearTimeout(t);
}

/** CPU seconds of the server side, by part: the tcpchat (or relay) processes, nats-server, PostgreSQL. */
interface CpuParts {
  nodes: number;
  nats: number;
  postgres: number;
}

/** The server side of a case: one process, or a cluster with its services. */
interface Servers {
  /** Where connections go (the first node). */
  port: number;
  /** A cluster's nodes' ports; ConnSpec.node indexes it. */
  ports?: number[];
  cpu(): CpuParts;
  rssBytes(): number;
  stop(): Promise<void>;
}

async function startServers(setup: Setup, dir: string, extra: string[]): Promise<Servers> {
  if (setup.kind !== "cluster") {
    const p = await startServer(setup.kind, dir, extra);
    return {
      port: p.port,
      cpu: () => ({ nodes: cpuSeconds(p.proc.pid), nats: 0, postgres: 0 }),
      rssBytes: () => rssBytes(p.proc.pid),
      stop: () => stopProc(p),
    };
  }
  // A fresh PostgreSQL and nats-server for each case (as for one node, a fresh SQLite file): nothing of
  // a case before (its checkpoints, its autovacuum) runs in this one's window. As in the tests: on
  // 127.0.0.1, in a temporary directory (TMPDIR), fsync and synchronous_commit on; NATS max_payload 8MB.
  const nodes: Proc[] = [];
  let pg: PostgresServer | undefined;
  let nats: NatsServer | undefined;
  const stop = async () => {
    await Promise.all(nodes.map(stopProc));
    for (const s of [nats, pg]) {
      if (!s) continue;
      await s.stop();
      services.delete(s);
    }
  };
  try {
    pg = await startPostgres({ database: "tcpchat" });
    services.add(pg);
    nats = await startNats();
    services.add(nats);
    const args = [...serverCmd(), "--port", "0", "--db", pg.url, "--bus", nats.url, ...NO_LIMITS, ...(extra.length ? extra : ["--hash-memory", "1024", "--hash-time", "1"])];
    // The first node migrates the database; the others start after it, together.
    nodes.push(await startProc(args));
    const rest = await Promise.allSettled(Array.from({ length: setup.nodes - 1 }, () => startProc(args)));
    for (const r of rest) if (r.status === "fulfilled") nodes.push(r.value);
    const failed = rest.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  } catch (e) {
    await stop();
    throw e;
  }
  const postmaster = pg.pid;
  const natsPid = nats.pid;
  return {
    port: nodes[0]!.port,
    ports: nodes.map((n) => n.port),
    cpu: () => ({
      nodes: nodes.reduce((a, n) => a + cpuSeconds(n.proc.pid), 0),
      nats: cpuSeconds(natsPid),
      // the postmaster with the CPU of its children that have exited (backends of closed
      // connections), and every child alive: backends, checkpointer, WAL writer, autovacuum...
      postgres: cpuSeconds(postmaster, true) + childrenOf(postmaster).reduce((a, pid) => a + cpuSeconds(pid), 0),
    }),
    rssBytes: () => nodes.reduce((a, n) => a + rssBytes(n.proc.pid), 0),
    stop,
  };
}

/** The fields of /proc/PID/stat after the command name; [] when the process is gone. */
function statFields(pid: number): string[] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return [];
  }
}

/**
 * utime + stime of a process, in seconds (/proc/PID/stat, clock ticks of 1/100 s); with
 * `reaped`, also cutime + cstime: the CPU of its children that have exited and been waited for.
 */
function cpuSeconds(pid: number, reaped = false): number {
  const f = statFields(pid);
  if (f.length === 0) return 0;
  return (Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0)) / 100;
}

/** PIDs whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (name.charCodeAt(0) > 57 || !/^\d+$/.test(name)) continue;
    if (Number(statFields(Number(name))[1]) === pid) out.push(Number(name));
  }
  return out;
}

function rssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : 0;
}

class Worker {
  readonly proc: Subprocess;
  private waiters: Array<{ cmd: string; resolve: (m: FromWorker) => void; reject: (e: Error) => void }> = [];
  onProgress: (w: Worker, p: Array<[number, number]>) => void = () => {};

  constructor(readonly index: number) {
    this.proc = spawnTracked(CMD.worker, {
      cwd: WORKDIR,
      stdout: "inherit",
      stderr: "inherit",
      serialization: "json",
      ipc: (m: FromWorker) => this.onMessage(m),
    });
  }

  private onMessage(m: FromWorker): void {
    if (m.cmd === "progress") return this.onProgress(this, m.p);
    if (m.cmd === "fail") {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`worker ${this.index}: ${m.error}`));
      return;
    }
    const i = this.waiters.findIndex((w) => w.cmd === m.cmd);
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
  }

  send(m: ToWorker): void {
    this.proc.send(m);
  }

  /** Sends `m` (if given) and waits for the next message of type `reply`. */
  ask<T extends FromWorker["cmd"]>(m: ToWorker | null, reply: T, timeoutMs = 120000): Promise<Extract<FromWorker, { cmd: T }>> {
    const p = new Promise<FromWorker>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`worker ${this.index}: no ${reply} in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        cmd: reply,
        resolve: (x) => (clearTimeout(t), resolve(x)),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
    });
    if (m) this.send(m);
    return p as Promise<Extract<FromWorker, { cmd: T }>>;
  }

  /** Estimates this worker's clock offset against ours (best of 20 round trips) and tells it. */
  async syncClock(): Promise<{ offsetMs: number; uncertaintyMs: number }> {
    let best = { rtt: Infinity, offset: 0 };
    for (let id = 0; id < 20; id++) {
      const t0 = performance.timeOrigin + performance.now();
      const r = await this.ask({ cmd: "clock", id }, "clock");
      const t1 = performance.timeOrigin + performance.now();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: r.t - (t0 + t1) / 2 };
    }
    await this.ask({ cmd: "offset", ms: best.offset }, "ready");
    return { offsetMs: best.offset, uncertaintyMs: best.rtt / 2 };
  }

  async exit(): Promise<void> {
    this.send({ cmd: "exit" });
    const t = setTimeout(() => this.proc.kill(), 5000);
    await this.proc.exited;
    clearTimeout(t);
  }
}

async function startWorkers(n: number): Promise<{ workers: Worker[]; clock: { maxOffsetMs: number; uncertaintyMs: number } }> {
  const workers = Array.from({ length: n }, (_, i) => new Worker(i));
  await Promise.all(workers.map((w) => w.ask(null, "hello", 20000)));
  let maxOffsetMs = 0;
  let uncertaintyMs = 0;
  for (const w of workers) {
    const c = await w.syncClock();
    maxOffsetMs = Math.max(maxOffsetMs, Math.abs(c.offsetMs));
    uncertaintyMs = Math.max(uncertaintyMs, c.uncertaintyMs);
  }
  return { workers, clock: { maxOffsetMs, uncertaintyMs } };
}

// ---- cases -----------------------------------------------------------------

interface Case {
  scenario: string;
  /** Stable key for compare mode. */
  key: string;
  label: string;
  groupSize?: number;
  size: number;
  paced: boolean;
  /** Paced: offered messages per second, in total. */
  rate: number;
  window: number;
  build: (relay: boolean, tag: string) => ConnSpec[];
  random?: boolean;
  /** Deliveries each message makes. */
  fanout: number;
  /** Run against tcpchat only (the floor relay has no answer to what is measured). */
  noFloor?: boolean;
  /** Extra server flags for this case. */
  serverArgs?: string[];
  /** What it runs against, in order; by default the floor (unless noFloor), one node, and with --cluster N a cluster of N (fan-out only). */
  setups?: Setup[];
}

/**
 * G groups, each with one dedicated sender and N receiving members. With `nodes` > 1 (cluster
 * runs) each group's members are spread over the nodes round robin: the sender on node 0 (or,
 * with `spreadSenders`, group g's sender on node g mod nodes), then each receiver on the next.
 */
function fanoutConns(groups: number, n: number, tag: string, nodes = 1, spreadSenders = false): ConnSpec[] {
  const out: ConnSpec[] = [];
  for (let g = 0; g < groups; g++) {
    const sender = out.length;
    const first = spreadSenders ? g % nodes : 0;
    out.push({ idx: sender, user: `${tag}s${g}`, group: `${tag}g${g}`, sender: true, register: true, hears: [], node: first });
    for (let i = 0; i < n; i++)
      out.push({ idx: out.length, user: `${tag}r${g}x${i}`, group: `${tag}g${g}`, sender: false, register: true, hears: [sender], node: (first + 1 + i) % nodes });
  }
  return out;
}

function windowFor(n: number, size: number): number {
  return Math.max(2, Math.min(1024, Math.floor(64000 / n), Math.floor((4 << 20) / size)));
}

function cases(o: Options): Case[] {
  const out: Case[] = [];
  const both = (c: Omit<Case, "paced" | "key" | "label">, rate: number, label: string, key: string) => {
    if (o.pacing !== "unpaced") out.push({ ...c, paced: true, rate, key: `${key}:paced`, label: `${label}, paced ${fmtRate(rate * c.fanout)} deliv/s` });
    if (o.pacing !== "paced") out.push({ ...c, paced: false, key: `${key}:max`, label: `${label}, unpaced` });
  };
  if (o.scenarios.includes("fanout")) {
    for (const n of o.groupSizes) {
      const groups = n === 1 ? 8 : n === 10 ? 4 : 1;
      // paced: 100k deliveries/s, at most 20k messages/s
      const rate = Math.min(20000, 100000 / n);
      both(
        { scenario: "fanout", groupSize: n, size: 100, rate, window: windowFor(n, 100), fanout: n, build: (_r, tag) => fanoutConns(groups, n, tag, Math.max(1, o.cluster)) },
        rate,
        `group of ${n}${groups > 1 ? ` (x${groups} groups)` : ""}`,
        `fanout:${n}`,
      );
    }
  }
  if (o.cluster && o.scenarios.includes("commit")) {
    // Committed messages/s on Postgres, one node against N, unpaced: every group's sender on a node
    // of its own (round robin), so that every node commits. One node on SQLite beside them.
    const setups: Setup[] = [{ kind: "tcpchat", nodes: 1 }, { kind: "cluster", nodes: 1 }];
    if (o.cluster > 1) setups.push({ kind: "cluster", nodes: o.cluster });
    for (const [n, groups] of [
      [1, 8],
      [100, 2],
    ] as const) {
      out.push({
        scenario: "commit",
        key: `commit:${groups}x${n}`,
        label: `${groups} groups of ${n}, senders on every node, unpaced`,
        groupSize: n,
        size: 100,
        paced: false,
        rate: 0,
        window: windowFor(n, 100),
        fanout: n,
        noFloor: true,
        setups,
        build: (_r, tag) => fanoutConns(groups, n, tag, o.cluster, true),
      });
    }
  }
  if (o.scenarios.includes("groups")) {
    const G = o.quick ? 20 : 100;
    const build = (_r: boolean, tag: string): ConnSpec[] => {
      const c: ConnSpec[] = [];
      for (let g = 0; g < G; g++) {
        const base = c.length;
        for (let i = 0; i < 10; i++) {
          const hears = Array.from({ length: 10 }, (_, k) => base + k).filter((k) => k !== base + i);
          c.push({ idx: base + i, user: `${tag}m${g}x${i}`, group: `${tag}g${g}`, sender: true, register: true, hears });
        }
      }
      return c;
    };
    both(
      { scenario: "groups", size: 100, rate: 2000, window: 4, fanout: 9, random: true, build },
      2000,
      `${G * 10} conns in ${G} groups of 10, random senders`,
      `groups:${G}x10`,
    );
  }
  if (o.scenarios.includes("sizes")) {
    for (const size of o.sizes) {
      // paced: 1000 messages/s, or 16 MiB/s for large ones (64 KiB x 1000/s x 10 members is 640 MB/s: more than this machine's receivers take)
      const rate = Math.min(1000, Math.floor((16 << 20) / size));
      both(
        { scenario: "sizes", groupSize: 10, size, rate, window: windowFor(10, size), fanout: 10, build: (_r, tag) => fanoutConns(1, 10, tag) },
        rate,
        `group of 10, ${fmtBytes(size)} messages`,
        `sizes:${size}`,
      );
    }
  }
  if (o.scenarios.includes("stuck")) {
    // 1 of 1000 members stops reading; the server's queue bound is 1 MiB so that it falls
    // behind within the run (the kernel's socket buffers absorb the first few hundred KB).
    const N = o.quick ? 100 : 1000;
    const rate = 100000 / N;
    const base = { scenario: "stuck", groupSize: N, size: 1024, rate, window: windowFor(N, 1024), fanout: N, noFloor: true, serverArgs: ["--max-queue", "1048576", "--max-frame", "262144", "--max-group-size", "4000"] };
    out.push({ ...base, paced: true, key: `stuck:${N}:baseline`, label: `group of ${N}, 1 KiB, everyone reading`, build: (_r, tag) => fanoutConns(1, N, tag) });
    out.push({
      ...base,
      paced: true,
      key: `stuck:${N}:stuck`,
      label: `group of ${N}, 1 KiB, 1 member not reading`,
      build: (_r, tag) => fanoutConns(1, N, tag).map((c, i) => (i === 1 ? { ...c, stuck: true } : c)),
    });
  }
  if (o.scenarios.includes("dm")) {
    const P = o.quick ? 20 : 100;
    const build = (relay: boolean, tag: string): ConnSpec[] => {
      const c: ConnSpec[] = [];
      for (let p = 0; p < P; p++) {
        const a = c.length;
        // the relay has no DMs: a pair is a group of two there
        c.push({ idx: a, user: `${tag}a${p}`, ...(relay ? { group: `${tag}p${p}` } : { toUser: `${tag}b${p}` }), sender: true, register: true, hears: [] });
        c.push({ idx: a + 1, user: `${tag}b${p}`, ...(relay ? { group: `${tag}p${p}` } : {}), sender: false, register: true, hears: [a] });
      }
      return c;
    };
    both({ scenario: "dm", size: 100, rate: 10000, window: 64, fanout: 1, build }, 10000, `${P} direct-message pairs`, `dm:${P}`);
  }
  return out;
}

function fmtRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(x >= 1e4 ? 0 : 1)}k` : `${Math.round(x)}`;
}

function fmtBytes(x: number): string {
  return x >= 1024 ? `${x / 1024} KiB` : `${x} B`;
}

// ---- one run -----------------------------------------------------------------

let tagCounter = 0;

async function runCase(c: Case, setup: Setup, dir: string): Promise<CaseResult> {
  const kind = setup.kind;
  const server = await startServers(setup, dir, c.serverArgs ? [...c.serverArgs, "--hash-memory", "1024", "--hash-time", "1"] : []);
  let workers: Worker[] = [];
  const tag = `b${tagCounter++}`;
  try {
    const started = await startWorkers(opts.workers);
    workers = started.workers;
    const clock = started.clock;
    const built = c.build(kind === "floor", tag);
    // Receivers and senders spread round-robin over the workers; in a cluster run, the connections
    // of each node round robin over them (starting one worker further for each node), so that
    // every worker holds members of every node. The same for every setup of a case.
    const byWorker: ConnSpec[][] = workers.map(() => []);
    const perNode = new Map<number, number>();
    for (const s of built) {
      const n = s.node ?? 0;
      const j = perNode.get(n) ?? 0;
      perNode.set(n, j + 1);
      byWorker[(j + n) % workers.length]!.push(s);
    }
    // Which node each connects to: node mod the setup's nodes (one server: all of them to it).
    // Cross-node: a connection that hears a sender connected to another node.
    const nodeOf = new Map(built.map((s) => [s.idx, kind === "cluster" ? (s.node ?? 0) % setup.nodes : 0]));
    const place = (s: ConnSpec): ConnSpec => {
      const node = nodeOf.get(s.idx)!;
      return { ...s, node, cross: s.hears.some((h) => nodeOf.get(h) !== node) };
    };
    for (const list of byWorker) list.splice(0, list.length, ...list.map(place));
    const conns = byWorker.flat();
    await Promise.all(
      workers.map((w, i) =>
        w.ask(
          { cmd: "setup", port: server.port, ports: server.ports, host: "127.0.0.1", conns: byWorker[i]!, pass: PASS, relay: kind === "floor" },
          "ready",
          300000,
        ),
      ),
    );

    // window credits: the min seq received per sender over every worker that hears it
    const senderWorker = new Map<number, Worker>();
    const heardBy = new Map<number, Set<number>>();
    byWorker.forEach((list, wi) => {
      for (const s of list) {
        if (s.sender) senderWorker.set(s.idx, workers[wi]!);
        if (s.stuck) continue; // does not hold the window back
        for (const h of s.hears) {
          let set = heardBy.get(h);
          if (!set) heardBy.set(h, (set = new Set()));
          set.add(wi);
        }
      }
    });
    const progress = new Map<number, Map<number, number>>();
    const lastCredit = new Map<number, number>();
    const onProgress = (w: Worker, p: Array<[number, number]>) => {
      const credits = new Map<Worker, Array<[number, number]>>();
      for (const [s, seq] of p) {
        let m = progress.get(s);
        if (!m) progress.set(s, (m = new Map()));
        m.set(w.index, seq);
        const hearers = heardBy.get(s)!;
        if (m.size < hearers.size) continue;
        let min = Infinity;
        for (const v of m.values()) min = Math.min(min, v);
        if (min > (lastCredit.get(s) ?? -1)) {
          lastCredit.set(s, min);
          const sw = senderWorker.get(s)!;
          let list = credits.get(sw);
          if (!list) credits.set(sw, (list = []));
          list.push([s, min]);
        }
      }
      for (const [sw, list] of credits) sw.send({ cmd: "credit", c: list });
    };
    for (const w of workers) w.onProgress = onProgress;

    const senders = conns.filter((s) => s.sender).length;
    const from = nowUs() + opts.warmupMs * 1000;
    const to = from + opts.measureMs * 1000;
    let cpu0: CpuParts = { nodes: 0, nats: 0, postgres: 0 };
    let cpu1 = cpu0;
    const t0 = setTimeout(() => (cpu0 = server.cpu()), opts.warmupMs);
    const t1 = setTimeout(() => (cpu1 = server.cpu()), opts.warmupMs + opts.measureMs);
    workers.forEach((w, i) => {
      const local = byWorker[i]!.filter((s) => s.sender).length;
      const run: RunSpec = {
        paced: c.paced,
        rate: (c.rate * local) / senders,
        window: c.window,
        size: c.size,
        cid: setup.cid === true,
        random: c.random === true,
        measureFromUs: from,
        measureToUs: to,
      };
      w.send({ cmd: "start", run });
    });
    await Bun.sleep(opts.warmupMs + opts.measureMs + 20);
    clearTimeout(t0);
    clearTimeout(t1);
    const rss = server.rssBytes();
    const sentParts = await Promise.all(workers.map((w) => w.ask({ cmd: "stop" }, "sent")));
    await Promise.all(workers.map((w) => w.ask({ cmd: "unstick" }, "ready"))); // stuck members read again
    const sent = sentParts.flatMap((p) => p.sent);
    const results = await Promise.all(
      workers.map((w) => w.ask({ cmd: "final", sent, drainMs: 15000 }, "result", 60000)),
    );
    const cpu = { nodes: cpu1.nodes - cpu0.nodes, nats: cpu1.nats - cpu0.nats, postgres: cpu1.postgres - cpu0.postgres };
    return summarize(c, setup, results, cpu, rss, clock, sent);
  } finally {
    await Promise.all(workers.map((w) => w.exit()));
    await server.stop();
  }
}

function summarize(
  c: Case,
  setup: Setup,
  rs: WorkerResult[],
  cpu: CpuParts,
  rss: number,
  clock: { maxOffsetMs: number; uncertaintyMs: number },
  sent: Array<[number, number]>,
): CaseResult {
  const serverCpu = cpu.nodes + cpu.nats + cpu.postgres;
  const hist = new Histogram();
  const cross = new Histogram();
  const last = new Map<number, number>();
  for (const r of rs) {
    hist.merge(r.hist);
    cross.merge(r.crossHist);
    for (const [k, v] of r.lastMember) if (v > (last.get(k) ?? -1)) last.set(k, v);
  }
  const lastHist = new Histogram();
  for (const v of last.values()) lastHist.record(v);
  const sec = opts.measureMs / 1000;
  const sentInWindow = rs.reduce((a, r) => a + r.sentInWindow, 0);
  const deliveries = rs.reduce((a, r) => a + r.receivedInWindow, 0);
  const genCpu = rs.map((r) => r.cpuUs / 1e6 / sec);
  const lost = rs.reduce((a, r) => a + r.lost, 0);
  const dups = rs.reduce((a, r) => a + r.dups, 0);
  const errors = rs.reduce((a, r) => a + r.errors, 0);
  const offered = c.paced ? c.rate : undefined;
  const msgsPerSec = sentInWindow / sec;
  // The generator is the limit when one of its processes was busy nearly all the time,
  // or, paced, when it could not even offer the load.
  const genLimited = genCpu.some((x) => x > 0.9) || (offered !== undefined && msgsPerSec < 0.95 * offered);
  const pct = (h: Histogram, p: number) => h.percentile(p) / 1000;
  return {
    key: c.key,
    scenario: c.scenario,
    label: c.label,
    server: setup.kind,
    ...(setup.kind === "cluster" ? { nodes: setup.nodes } : {}),
    ...(setup.cid ? { cid: true } : {}),
    paced: c.paced,
    groupSize: c.groupSize,
    size: c.size,
    offeredMsgsPerSec: offered,
    msgsPerSec,
    deliveriesPerSec: deliveries / sec,
    latencyMs: { p50: pct(hist, 50), p90: pct(hist, 90), p99: pct(hist, 99), p999: pct(hist, 99.9), max: pct(hist, 100) },
    lastMemberMs: { p50: pct(lastHist, 50), p99: pct(lastHist, 99), max: pct(lastHist, 100) },
    samples: hist.total,
    ...(setup.kind === "cluster"
      ? {
          // none on one node
          ...(cross.total ? { crossNodeMs: { p50: pct(cross, 50), p90: pct(cross, 90), p99: pct(cross, 99), p999: pct(cross, 99.9), max: pct(cross, 100) } } : {}),
          crossSamples: cross.total,
          serverCpuParts: cpu,
        }
      : {}),
    serverCpuSec: serverCpu,
    deliveriesPerCpuSec: serverCpu > 0 ? deliveries / serverCpu : 0,
    serverRssMB: rss / 1e6,
    generatorCpu: genCpu,
    generatorLimited: genLimited,
    lost,
    duplicated: dups,
    errors,
    closedConnections: rs.reduce((a, r) => a + r.closed, 0),
    stuckReceived: rs.reduce((a, r) => a + r.stuckReceived, 0),
    messagesSent: sent.reduce((a, [, n]) => a + n, 0),
    clock,
  };
}

// ---- connection scale ------------------------------------------------------

async function runScale(dir: string): Promise<Report["scale"]> {
  const result: NonNullable<Report["scale"]> = {};
  // password logins per second, with argon2id as shipped (64 MiB, t=2)
  {
    const server = await startServer("tcpchat", dir, ["--hash-memory", "65536", "--hash-time", "2"]);
    const { workers } = await startWorkers(2);
    try {
      const users = Array.from({ length: 8 }, (_, i) => `pw${i}`);
      await workers[0]!.ask({ cmd: "tokens", port: server.port, host: "127.0.0.1", users, pass: PASS }, "tokens");
      const ms = opts.quick ? 1000 : 3000;
      const cpu0 = cpuSeconds(server.proc.pid);
      const parts = await Promise.all(
        workers.map((w) => w.ask({ cmd: "logins", port: server.port, host: "127.0.0.1", users, pass: PASS, ms, concurrency: 4 }, "logins")),
      );
      const n = parts.reduce((a, p) => a + p.n, 0);
      result.passwordLoginsPerSec = n / (ms / 1000);
      result.passwordLoginCpuMs = ((cpuSeconds(server.proc.pid) - cpu0) * 1000) / n;
    } finally {
      await Promise.all(workers.map((w) => w.exit()));
      await stopProc(server);
    }
  }
  // idle logged-in connections: memory per connection, token logins per second
  {
    const server = await startServer("tcpchat", dir);
    const { workers } = await startWorkers(2);
    try {
      const users = Array.from({ length: 100 }, (_, i) => `idle${i}`);
      const { tokens } = await workers[0]!.ask({ cmd: "tokens", port: server.port, host: "127.0.0.1", users, pass: PASS }, "tokens");
      Bun.gc(true);
      await Bun.sleep(200);
      const rss0 = rssBytes(server.proc.pid);
      const per = Math.floor(opts.idleConns / workers.length);
      const t0 = performance.now();
      const parts = await Promise.all(
        workers.map((w) => w.ask({ cmd: "idle", port: server.port, host: "127.0.0.1", users: tokens, count: per }, "idle", 600000)),
      );
      const secs = (performance.now() - t0) / 1000;
      await Bun.sleep(500);
      const rss1 = rssBytes(server.proc.pid);
      const open = parts.reduce((a, p) => a + p.open, 0);
      result.idleConnections = open;
      result.tokenLoginsPerSec = open / secs;
      result.bytesPerIdleConnection = (rss1 - rss0) / open;
      result.serverRssMB = rss1 / 1e6;
    } finally {
      await Promise.all(workers.map((w) => w.exit()));
      await stopProc(server);
    }
  }
  return result;
}

// ---- main --------------------------------------------------------------------

/** `bun bench [options]` and `tcpchat bench [options]`; returns the exit code. */
export async function benchMain(argv: string[]): Promise<number> {
  opts = parseOptions(argv);
  const dir = mkdtempSync(join(tmpdir(), "tcpchat-bench-"));
  benchDir = dir;
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memGiB: Math.round(totalmem() / 2 ** 30),
    bun: Bun.version,
    os: `${process.platform} ${process.arch}`,
  };
  const report: Report = { started: new Date().toISOString(), machine, options: { ...opts }, results: [] };
  const all = cases(opts);
  // --cid: on, every setup's sends carry one; both, the single SQLite node runs twice (without,
  // then with) and the others once without (the floor relays bytes: a cid changes nothing there).
  const setupsOf = (c: Case): Setup[] =>
    (
      c.setups ?? [
        ...(c.noFloor ? [] : [{ kind: "floor", nodes: 1 } as const]),
        { kind: "tcpchat", nodes: 1 },
        ...(opts.cluster && c.scenario === "fanout" ? [{ kind: "cluster", nodes: opts.cluster } as const] : []),
      ]
    ).flatMap((s): Setup[] =>
      s.kind === "tcpchat" && opts.cid === "both" ? [{ ...s, cid: false }, { ...s, cid: true }] : [{ ...s, cid: opts.cid === "on" }],
    );
  const runs = all.reduce((a, c) => a + setupsOf(c).length, 0);
  log(
    `tcpchat bench: ${all.length} cases, ${runs} runs${opts.cluster ? ` (cluster: ${opts.cluster} nodes on PostgreSQL and NATS)` : ""}, ${opts.workers} load generators, ${opts.measureMs / 1000} s measured each, ${opts.cid === "off" ? "sends without cid" : opts.cid === "on" ? "a cid on every send" : "one SQLite node without and with cid"} (${machine.cpus} cores, ${machine.cpuModel}, bun ${machine.bun})`,
  );
  stopAllOnSignals();
  let failed = false;
  try {
    for (const c of all) {
      for (const setup of setupsOf(c)) {
        const r = await runCase(c, setup, dir);
        report.results.push(r);
        const bad = r.lost || r.duplicated || r.errors;
        // tcpchat must lose nothing; the floor relay has no store, and closes readers it cannot keep up with
        if (bad && setup.kind !== "floor") failed = true;
        log(
          `  ${serverName(r).padEnd(11)} ${c.label.padEnd(52)} ${fmtRate(r.deliveriesPerSec).padStart(7)} deliv/s  p50 ${r.latencyMs.p50.toFixed(2)} ms  p99 ${r.latencyMs.p99.toFixed(2)} ms${r.crossNodeMs ? ` (cross-node p50 ${r.crossNodeMs.p50.toFixed(2)} p99 ${r.crossNodeMs.p99.toFixed(2)})` : ""}  ${fmtRate(r.deliveriesPerCpuSec)} deliv/CPU-s${r.generatorLimited ? "  [generator-limited]" : ""}${bad ? `  LOST ${r.lost} DUP ${r.duplicated} ERR ${r.errors}` : ""}`,
        );
      }
    }
    if (opts.scenarios.includes("scale")) {
      log("  connection scale ...");
      report.scale = await runScale(dir);
    }
    if (opts.scenarios.includes("files")) {
      log(`  files: ${opts.filesSize} bytes to a group of ${opts.filesMembers} ...`);
      const server = await startServer("tcpchat", dir, ["--hash-memory", "1024", "--hash-time", "1", "--max-group-size", String(Math.max(10000, opts.filesMembers + 1))]);
      try {
        report.files = await runFiles({
          port: server.port,
          pid: server.proc.pid,
          members: opts.filesMembers,
          size: opts.filesSize,
          workers: opts.workers,
          window: 2,
          chunk: 1024 * 1024,
          workerCmd: CMD.files,
          cwd: WORKDIR,
          log,
          cpuSeconds: (pid) => cpuSeconds(pid),
          track: (p) => {
            running.add(p);
            void p.exited.then(() => running.delete(p));
          },
        });
        if (report.files.verified !== opts.filesMembers) failed = true;
      } finally {
        await stopProc(server);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report.targets = targetsOf(report);
  report.finished = new Date().toISOString();

  if (opts.json) console.log(JSON.stringify(report, null, 2));
  else printTable(report);
  if (opts.compare) console.log(compareReport(report, JSON.parse(readFileSync(opts.compare, "utf8")) as Report));
  if (opts.save) {
    mkdirSync(opts.out, { recursive: true });
    const stamp = report.started.replace(/[:.]/g, "-");
    const base = join(opts.out, `bench-${stamp}${opts.quick ? "-quick" : ""}`);
    writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    // the chart: with --cid both, the runs without cid (those the floor ran beside)
    writeFileSync(`${base}.svg`, renderSvg(opts.cid === "both" ? { ...report, results: report.results.filter((r) => !r.cid) } : report));
    log(`results: ${base}.json, ${base}.svg`);
  }
  if (failed) log("FAILED: tcpchat lost or duplicated messages, or answered with errors");
  for (const r of report.results)
    if (r.server === "floor" && (r.lost || r.duplicated))
      log(`note: the floor lost ${r.lost} messages in "${r.label}" (it closes readers whose queue passes 64 MiB): compare that case with care`);
  return failed ? 1 : 0;
}

if (import.meta.main) process.exit(await benchMain(process.argv.slice(2)));
