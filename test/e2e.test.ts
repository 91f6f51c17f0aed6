// End to end: the real server process, a real SQLite file, real loopback sockets.
// The suite itself is test/helpers/e2e-suite.ts; test/cluster-e2e.test.ts runs it
// against a cluster.
import { join } from "node:path";
import { E2E_ARGS, e2eSuite } from "./helpers/e2e-suite.ts";
import { type RunningServer, startServer, tempDir } from "./helpers/server.ts";

e2eSuite(async () => {
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
    files: () => [db, `${db}-wal`],
    async close() {
      if (server.proc.exitCode === null) await server.stop();
      tmp.cleanup();
    },
  };
});
