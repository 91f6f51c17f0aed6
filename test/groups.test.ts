// Groups and safety end to end (test/helpers/groups-suite.ts) against one server on a SQLite file.
import { E2E_ARGS } from "./helpers/e2e-suite.ts";
import { groupsSuite } from "./helpers/groups-suite.ts";
import { oneServer } from "./helpers/targets.ts";

groupsSuite(() => oneServer(E2E_ARGS));
