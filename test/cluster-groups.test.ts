// Groups and safety end to end (test/helpers/groups-suite.ts) against a cluster: three nodes on
// one PostgreSQL and one nats-server, each new connection on the next node, so moderators,
// members and a user's devices sit on different nodes (PROTOCOL.md §8).
import { E2E_ARGS } from "./helpers/e2e-suite.ts";
import { groupsSuite } from "./helpers/groups-suite.ts";
import { threeNodes } from "./helpers/targets.ts";

groupsSuite(() => threeNodes(E2E_ARGS));
