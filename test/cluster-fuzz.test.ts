// The over-TCP part of the fuzz test (test/helpers/fuzz-tcp-suite.ts) against a cluster:
// two nodes on one PostgreSQL and one nats-server (test/helpers/cluster.ts), the fuzz
// workers' connections (and their reconnections) spread over both, the bystander's two
// users on different nodes (each round trip crosses NATS), one hostile client on each
// node. Each regression input goes to a freshly restarted node of a second two-node
// cluster with the shipped configuration (a new database on the same PostgreSQL).
// The in-process part of test/fuzz.test.ts does not depend on the store or the bus and
// runs once, there.
import { type Cluster, roundRobin, startCluster, stopNodes } from "./helpers/cluster.ts";
import { fuzzSeed } from "./helpers/fuzz-gen.ts";
import { fuzzTcpSuite } from "./helpers/fuzz-tcp-suite.ts";

const report: string[] = [];

fuzzTcpSuite(
  async () => {
    let cluster: Cluster | undefined;
    let shipped: Cluster | undefined;
    let next: () => number = () => 0;
    const dead = (i: number) => cluster!.nodes[i]!.proc.exitCode !== null || cluster!.nodes[i]!.proc.signalCode !== null;
    return {
      name: "a cluster of 2 nodes on PostgreSQL and NATS",
      nodes: 2,
      async start(args) {
        cluster = await startCluster({ nodes: 2, args });
        next = roundRobin(cluster);
      },
      port: (i) => cluster!.ports()[i]!,
      connectPort: () => next(),
      alive: () => cluster!.nodes.map((_, i) => !dead(i)),
      pids: () => cluster!.nodes.map((n) => n.proc.pid),
      stop: () => stopNodes(cluster!),
      output: () => cluster!.output(),
      async fresh(k) {
        // The shipped configuration (no arguments beyond --db, --bus and --port), node k % 2 started anew for input k.
        shipped ??= await startCluster({ nodes: 2, args: [], pg: cluster!.pg });
        const c = shipped;
        const i = k % c.nodes.length;
        await c.restart(i);
        const n = c.nodes[i]!;
        return {
          port: c.ports()[i]!,
          pid: n.proc.pid,
          user: `replay${k}`, // one database for every input
          alive: () => n.proc.exitCode === null,
          exitCode: () => n.proc.exitCode,
          async dispose() {},
        };
      },
      async close() {
        await shipped?.stop();
        await cluster?.stop();
      },
    };
  },
  { seed: fuzzSeed(), report },
);
