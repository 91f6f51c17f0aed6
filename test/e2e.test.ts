// End to end: the real server process, a real SQLite file, real loopback sockets.
// The suite itself is test/helpers/e2e-suite.ts; test/cluster-e2e.test.ts runs it
// against a cluster.
import { E2E_ARGS, e2eSuite } from "./helpers/e2e-suite.ts";
import { oneServer } from "./helpers/targets.ts";

e2eSuite(() => oneServer(E2E_ARGS));
