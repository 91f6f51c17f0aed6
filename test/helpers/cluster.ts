// A real cluster for tests: one PostgreSQL and one nats-server on loopback
// (test/helpers/services.ts) and N server processes (`bun run src/server.ts`) on them,
// each on its own port. A test file starts one with `startCluster`, and stops it in
// afterAll. Nodes can be killed (SIGKILL) and started again on the same port.
import { type RunningServer, startServer, TEST_ARGS } from "./server.ts";
import { type NatsServer, type PostgresServer, startNats, startPostgres } from "./services.ts";

export interface Cluster {
  pg: PostgresServer;
  nats: NatsServer;
  /** The database every node shares. */
  db: string;
  nodes: RunningServer[];
  /** The ports of the nodes, in order (a killed node keeps its place and port). */
  ports(): number[];
  /** Arguments every node got (beyond --db, --bus and --port). */
  args: string[];
  /** SIGKILL of node i; resolves once it has exited. */
  kill(i: number): Promise<void>;
  /** Starts node i again on its port (after kill or stop). */
  restart(i: number): Promise<void>;
  /** Adds one more node. */
  add(): Promise<RunningServer>;
  /** Every node's output so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  nodes?: number;
  /** Arguments for every node; TEST_ARGS by default. */
  args?: string[];
  /** Share the services of another cluster (a new database on its Postgres, a new subject prefix is not needed: a new NATS is cheap). */
  pg?: PostgresServer;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const ownPg = opts.pg === undefined;
  const pg = opts.pg ?? (await startPostgres());
  let nats: NatsServer | undefined;
  try {
    nats = await startNats();
    const db = await pg.createDatabase();
    const args = opts.args ?? TEST_ARGS;
    const nodeArgs = (port: number) => ["--db", db, "--bus", nats!.url, ...args, ...(port ? ["--port", String(port)] : [])];
    const nodes: RunningServer[] = [];
    const ports: number[] = [];
    const startNode = async (port: number): Promise<RunningServer> => {
      // startServer passes --port 0 first; a later --port wins.
      const s = await startServer(nodeArgs(port));
      return s;
    };
    // The first node migrates the database; the others start together after it.
    nodes.push(await startNode(0));
    const rest = await Promise.all(Array.from({ length: (opts.nodes ?? 2) - 1 }, () => startNode(0)));
    nodes.push(...rest);
    for (const n of nodes) ports.push(n.port);
    const c: Cluster = {
      pg,
      nats,
      db,
      nodes,
      args,
      ports: () => [...ports],
      async kill(i) {
        const n = nodes[i]!;
        if (n.proc.exitCode === null && n.proc.signalCode === null) {
          n.proc.kill("SIGKILL");
          await n.proc.exited;
        }
      },
      async restart(i) {
        await c.kill(i);
        nodes[i] = await startNode(ports[i]!);
      },
      async add() {
        const n = await startNode(0);
        nodes.push(n);
        ports.push(n.port);
        return n;
      },
      output: () => nodes.map((n, i) => `--- node ${i} (port ${ports[i]}) ---\n${n.output()}`).join("\n"),
      async stop() {
        for (const n of nodes) {
          if (n.proc.exitCode !== null || n.proc.signalCode !== null) continue;
          n.proc.kill("SIGTERM");
          const t = setTimeout(() => n.proc.kill("SIGKILL"), 8000);
          await n.proc.exited;
          clearTimeout(t);
        }
        await nats!.stop();
        if (ownPg) await pg.stop();
      },
    };
    return c;
  } catch (e) {
    await nats?.stop();
    if (ownPg) await pg.stop();
    throw e;
  }
}

/**
 * The nodes' ports in turn, one per call, starting at node `start`: connections spread
 * round robin, so consecutive connections (two devices of a user, the members of a
 * group) land on different nodes. Follows restarts (a restarted node keeps its port).
 */
export function roundRobin(c: Cluster, start = 0): () => number {
  let i = start;
  return () => {
    const ports = c.ports();
    return ports[i++ % ports.length]!;
  };
}

/** SIGTERM to every running node at once; the exit codes, once all have exited (restart(i) starts each again). */
export async function stopNodes(c: Cluster): Promise<number[]> {
  return await Promise.all(c.nodes.map((n) => (n.proc.exitCode !== null || n.proc.signalCode !== null ? n.proc.exited : n.stop())));
}
