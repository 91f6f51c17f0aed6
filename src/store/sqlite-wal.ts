// The housekeeping of a SQLite database's WAL off the event loop, and the lock that keeps
// one server per database file (docs/BUN.md, "SQLite: checkpoints").
//
// A checkpoint copies the WAL's pages into the database file and syncs both: about 20 ms
// on this kind of machine, most of it fsync. SQLite's automatic checkpoint runs it inside
// the commit that passes 1000 pages, on the event loop, where every message arriving
// meanwhile waits for it: it was the tail of the send-to-receive latency at light load
// (p99 about 10 ms against the floor relay's 1.5 ms). So the server's connection never
// checkpoints by itself (wal_autocheckpoint = 0); a worker thread with a connection of its
// own checkpoints (PASSIVE: it never blocks the server's commits) whenever the WAL has
// changed, at most every CHECKPOINT_MS. Two connections need SQLite's shared-memory WAL
// index, so the server's connection uses NORMAL locking; what EXCLUSIVE locking did besides,
// refusing a second server on the same file, is done by an exclusive lock on a file beside
// the database ("<db>-lock"), held while the store is open.
import { Database } from "bun:sqlite";
import { closeSync, openSync } from "node:fs";

/** At most this often (ms) a checkpoint runs, when the WAL has changed since the last one. */
export const CHECKPOINT_MS = 100;

/**
 * Takes the lock that makes this process the database's one server: an exclusive SQLite lock
 * on "<path>-lock" (created 0600), held by the returned connection until it is closed. Throws
 * "database is locked" when another store holds it, in this process or another.
 */
export function lockDatabase(path: string): Database {
  const lockPath = `${path}-lock`;
  try {
    closeSync(openSync(lockPath, "wx", 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const lock = new Database(lockPath, { create: true });
  try {
    lock.run("PRAGMA busy_timeout = 0");
    lock.run("PRAGMA journal_mode = MEMORY"); // it holds no data: no "-lock-journal" file beside it
    // In EXCLUSIVE locking mode a connection keeps every lock it has taken: after this
    // transaction it holds the file's exclusive lock until it closes (or its process ends).
    lock.run("PRAGMA locking_mode = EXCLUSIVE");
    lock.run("BEGIN EXCLUSIVE");
    lock.run("COMMIT");
    return lock;
  } catch (e) {
    lock.close();
    throw new Error(`database ${path} is locked: another server is using it (${(e as Error).message})`);
  }
}

/** The worker's code: its own connection, a PASSIVE checkpoint whenever the WAL file changed. */
const WORKER_SOURCE = `
import { Database } from "bun:sqlite";
import { statSync } from "node:fs";
let db, timer, last = "", stopped = false;
function tick(path, every) {
  if (stopped) return;
  let now = "";
  try { const s = statSync(path + "-wal"); now = s.size + ":" + s.mtimeMs; } catch {}
  if (now !== "" && now !== last) {
    last = now;
    try { db.query("PRAGMA wal_checkpoint(PASSIVE)").get(); }
    catch (e) { postMessage({ error: String(e && e.message || e) }); }
  }
  timer = setTimeout(tick, every, path, every);
}
self.onmessage = (e) => {
  const m = e.data;
  if (m.open) {
    db = new Database(m.path);
    // A checkpoint syncs as the checkpointing connection's setting says: the same as the server's.
    db.run("PRAGMA synchronous = " + m.synchronous);
    db.run("PRAGMA busy_timeout = 1000");
    db.run("PRAGMA wal_autocheckpoint = 0");
    postMessage({ ready: true });
    tick(m.path, m.every);
  } else if (m.stop) {
    stopped = true;
    clearTimeout(timer);
    try { db && db.close(); } catch {}
    postMessage({ closed: true });
  }
};
`;

let workerUrl: string | undefined;

/** A worker thread that checkpoints one database's WAL (see the top of this file). */
export class Checkpointer {
  private readonly worker: Worker;
  private closing: Promise<void> | undefined;
  /** Errors the worker reported (a checkpoint that failed is tried again at the next change). */
  errors = 0;
  lastError: string | undefined;

  constructor(path: string, synchronous: "NORMAL" | "FULL") {
    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    this.worker = new Worker(workerUrl);
    this.worker.unref(); // the store's close() ends it; it must not keep a process alive by itself
    this.worker.onmessage = (e: MessageEvent) => {
      const m = e.data as { error?: string };
      if (m.error !== undefined) {
        this.errors++;
        this.lastError = m.error;
      }
    };
    this.worker.postMessage({ open: true, path, synchronous, every: CHECKPOINT_MS });
  }

  /** Stops the worker after its checkpoint in progress, and closes its connection. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timeout);
        this.worker.terminate();
        resolve();
      };
      // A worker that does not answer (it never started) is ended anyway.
      const timeout = setTimeout(done, 5000);
      this.worker.onmessage = (e: MessageEvent) => {
        if ((e.data as { closed?: boolean }).closed) done();
      };
      this.worker.postMessage({ stop: true });
    });
    return this.closing;
  }
}
