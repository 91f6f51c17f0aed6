// The end-to-end suite (test/helpers/e2e-suite.ts) against a cluster: three server
// processes on one PostgreSQL and one nats-server (test/helpers/cluster.ts), each new
// connection on the next node in turn, so a user's devices, and the members of a group,
// are on different nodes. PROTOCOL.md §8: to every client, the cluster is one server.
// The restart test stops every node with SIGTERM and starts them again on the same
// database. Nothing of the suite is SQLite-specific.
import { E2E_ARGS, e2eSuite } from "./helpers/e2e-suite.ts";
import { threeNodes } from "./helpers/targets.ts";

e2eSuite(() => threeNodes(E2E_ARGS));
