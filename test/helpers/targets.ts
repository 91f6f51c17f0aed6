// The two targets the end-to-end suites run against (test/helpers/e2e-suite.ts, groups-suite.ts):
// one server process on a SQLite file, or a cluster of three nodes on one PostgreSQL and one
// nats-server where each new connection goes to the next node in turn (PROTOCOL.md §8).
import { join } from "node:path";
import { roundRobin, startCluster, stopNodes } from "./cluster.ts";
import type { E2ETarget } from "./e2e-suite.ts";
import { type RunningServer, startServer, tempDir } from "./server.ts";

/** One server on a new SQLite file in a temporary directory, started with `args`. */
export async function oneServer(args: string[]): Promise<E2ETarget> {
  const tmp = tempDir();
  const db = join(tmp.dir, "chat.db");
  const all = ["--db", db, ...args];
  let server: RunningServer = await startServer(all);
  return {
    connectPort: () => server.port,
    stop: async () => [await server.stop()],
    async start() {
      server = await startServer(all);
    },
    outputs: () => [server.output()],
    settleMs: 0,
    files: () => [db, `${db}-wal`],
    async close() {
      if (server.proc.exitCode === null) await server.stop();
      tmp.cleanup();
    },
  };
}

/** Three nodes, started with `args`; every new connection on the next node. */
export async function threeNodes(args: string[]): Promise<E2ETarget> {
  const cluster = await startCluster({ nodes: 3, args });
  return {
    connectPort: roundRobin(cluster),
    stop: () => stopNodes(cluster),
    async start() {
      await Promise.all(cluster.nodes.map((_, i) => cluster.restart(i)));
    },
    outputs: () => cluster.nodes.map((n) => n.output()),
    // A push or a presence event from another node crosses NATS: on loopback well under
    // a millisecond, on 2 busy cores sometimes tens of milliseconds.
    settleMs: 300,
    close: () => cluster.stop(),
  };
}
