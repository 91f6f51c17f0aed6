// The end-to-end suite (test/helpers/e2e-suite.ts) against a cluster: three server
// processes on one PostgreSQL and one nats-server (test/helpers/cluster.ts), each new
// connection on the next node in turn, so a user's devices, and the members of a group,
// are on different nodes. PROTOCOL.md §8: to every client, the cluster is one server.
// The restart test stops every node with SIGTERM and starts them again on the same
// database. Nothing of the suite is SQLite-specific.
import { startCluster, roundRobin, stopNodes } from "./helpers/cluster.ts";
import { E2E_ARGS, e2eSuite } from "./helpers/e2e-suite.ts";

e2eSuite(async () => {
  const cluster = await startCluster({ nodes: 3, args: E2E_ARGS });
  const next = roundRobin(cluster);
  return {
    connectPort: next,
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
});
