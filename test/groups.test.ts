// Groups and safety end to end (test/helpers/groups-suite.ts) against one server on a SQLite file.
import { join } from "node:path";
import { E2E_ARGS } from "./helpers/e2e-suite.ts";
import { groupsSuite } from "./helpers/groups-suite.ts";
import { type RunningServer, startServer, tempDir } from "./helpers/server.ts";

groupsSuite(async () => {
  const tmp = tempDir();
  const db = join(tmp.dir, "chat.db");
  const args = ["--db", db, ...E2E_ARGS];
  let server: RunningServer = await startServer(args);
  return {
    connectPort: () => server.port,
    stop: async () => [await server.stop()],
    async start() {
      server = await startServer(args);
    },
    outputs: () => [server.output()],
    settleMs: 0,
    async close() {
      if (server.proc.exitCode === null) await server.stop();
      tmp.cleanup();
    },
  };
});
