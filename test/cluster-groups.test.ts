// Groups and safety end to end (test/helpers/groups-suite.ts) against a cluster: three nodes on
// one PostgreSQL and one nats-server, each new connection on the next node, so moderators,
// members and a user's devices sit on different nodes (PROTOCOL.md §8).
import { startCluster, roundRobin, stopNodes } from "./helpers/cluster.ts";
import { E2E_ARGS } from "./helpers/e2e-suite.ts";
import { groupsSuite } from "./helpers/groups-suite.ts";

groupsSuite(async () => {
  const cluster = await startCluster({ nodes: 3, args: E2E_ARGS });
  const next = roundRobin(cluster);
  return {
    connectPort: next,
    stop: () => stopNodes(cluster),
    async start() {
      await Promise.all(cluster.nodes.map((_, i) => cluster.restart(i)));
    },
    outputs: () => cluster.nodes.map((n) => n.output()),
    settleMs: 300,
    close: () => cluster.stop(),
  };
});
