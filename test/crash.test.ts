// Crash safety: the real server on a SQLite file, four users sending pipelined
// messages (groups and direct) at full rate, killed with SIGKILL at a random
// moment, restarted on the same file with the same arguments, five times over.
// The suite and its checks are test/helpers/crash-suite.ts; test/cluster-crash.test.ts
// runs it against a cluster. SQLite-specific here: reading the rows from a copy of the
// file (with its WAL) that the crash left, while no server runs.
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CRASH_ARGS, crashSuite, type Row } from "./helpers/crash-suite.ts";
import { type RunningServer, startServer, tempDir } from "./helpers/server.ts";

crashSuite(async () => {
  const tmp = tempDir("tcpchat-crash-");
  const DB = join(tmp.dir, "chat.db");
  const ARGS = ["--db", DB, ...CRASH_ARGS];
  let server: RunningServer = await startServer(ARGS);
  let earlier = "";
  const alive = () => server.proc.exitCode === null && server.proc.signalCode === null;
  return {
    name: "one server on SQLite",
    nodes: 1,
    port: () => server.port,
    async kill() {
      const proc = server.proc;
      proc.kill("SIGKILL");
      await proc.exited;
      return [proc.signalCode as string | null];
    },
    async restart() {
      earlier += server.output();
      server = await startServer(ARGS);
    },
    stop: async () => [await server.stop()],
    /**
     * The rows of the database file as the crash left it. The server holds the file
     * with an exclusive lock while it runs, so this reads a copy taken while no
     * server runs: SQLite recovers the copy's WAL, and the original stays exactly as
     * the crash left it for the server's own recovery at restart.
     */
    async readRows(label: string): Promise<Row[]> {
      if (alive()) throw new Error("readRows while the server runs");
      const snap = join(tmp.dir, `snapshot-${label.replace(/\W+/g, "-")}`);
      mkdirSync(snap, { recursive: true });
      for (const ext of ["", "-wal", "-shm", "-journal"]) if (existsSync(DB + ext)) copyFileSync(DB + ext, join(snap, `chat.db${ext}`));
      const db = new Database(join(snap, "chat.db"));
      try {
        return db
          .query("SELECT mid, ts, sender, grp, to_user, conv, cid, text, file_name, file_type, file_size, file_sha, kind, target FROM messages ORDER BY mid")
          .all() as Row[];
      } finally {
        db.close();
        rmSync(snap, { recursive: true, force: true });
      }
    },
    output: () => earlier + server.output(),
    pids: () => [server.proc.pid],
    settleMs: 0,
    async close() {
      if (alive()) {
        server.proc.kill("SIGKILL");
        await server.proc.exited;
      }
      tmp.cleanup();
    },
  };
});
