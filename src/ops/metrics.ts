// What /metrics shows (README, "Operating tcpchat"), and /readyz's check. Built once per
// server from its core, store and broker. The hot path keeps plain counts (the core's
// CoreStats, the bus's counts) and this file reads them when scraped; the store's commit
// is timed by a wrapper around it (one performance.now() pair per batch, not per message).
import { statSync } from "node:fs";
import type { Broker } from "../broker/broker.ts";
import { NatsBroker } from "../broker/nats.ts";
import { type ChatCore, transportOf } from "../core/chat.ts";
import { ERROR_CODES } from "../protocol/errors.ts";
import { PostgresStore } from "../store/postgres.ts";
import type { Store } from "../store/store.ts";
import { BUILD } from "../version.ts";
import type { Session } from "../core/session.ts";
import { Counter, exponential, type Histogram, Registry, type Sample } from "./registry.ts";

export interface MetricsOptions {
  core: ChatCore;
  /** The store the core runs on (its `commit` is wrapped to be timed). */
  store: Store;
  broker: Broker;
  /** `--db`: a SQLite file's sizes are read from disk. */
  db: string;
  /** Counts of the retention purge (src/ops/retention.ts). */
  retention?: { purged: number; runs: number };
}

/** How often the event loop's lateness is sampled, ms. */
const LOOP_SAMPLE_MS = 100;

/** Whether `db` is a SQLite file on disk (not :memory:, not a URL). */
function sqliteFile(db: string): boolean {
  return db !== ":memory:" && db !== "" && !db.startsWith("file:") && !/^postgres(ql)?:\/\//i.test(db);
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly committedGroup: Counter;
  private readonly committedDirect: Counter;
  private readonly duplicates: Counter;
  private readonly batchSize: Histogram;
  private readonly commitSeconds: Histogram;
  private readonly loopDelay: Histogram;
  private readonly loop: Timer;
  private stopped = false;

  constructor(private readonly o: MetricsOptions) {
    const r = this.registry;
    const { core } = o;
    const st = core.stats;

    r.gauge("tcpchat_build_info", "Version of the running server (value 1)", () => [[{ version: BUILD.version, commit: BUILD.commit }, 1]]);
    r.gauge("tcpchat_connections", "Open connections, by transport", () => this.byTransport(() => true));
    r.gauge("tcpchat_sessions", "Logged-in connections, by transport", () => this.byTransport((s) => s.user !== undefined));
    r.gauge("tcpchat_sessions_behind", "Connections that fell behind and replay from the store (PROTOCOL.md 5.4)", () => [
      [{}, this.count((s) => s.behindSince !== 0)],
    ]);
    r.gauge("tcpchat_buffered_bytes", "Unsent output and held input of all connections (--max-buffered)", () => [[{}, core.budget.used]]);
    r.counterFrom("tcpchat_connections_opened_total", "Connections opened, by transport", () => [
      [{ transport: "tcp" }, st.opened.tcp],
      [{ transport: "ws" }, st.opened.ws],
    ]);
    r.counterFrom("tcpchat_connections_closed_total", "Connections closed, by reason (a bye reason, client, or what closed it)", () =>
      Object.entries(st.closed).map(([reason, n]): Sample => [{ reason }, n]),
    );
    const group = (this.committedGroup = new Counter());
    const direct = (this.committedDirect = new Counter());
    r.counterFrom("tcpchat_messages_committed_total", "Messages committed, by kind (group, direct)", () => [
      [{ kind: "group" }, group.value],
      [{ kind: "direct" }, direct.value],
    ]);
    this.duplicates = r.counter("tcpchat_messages_duplicate_total", "Sends that repeated a stored cid (answered, nothing stored)");
    r.counterFrom("tcpchat_deliveries_total", "Message pushes queued to connections (live and replayed)", () => [[{}, st.deliveries]]);
    r.counterFrom("tcpchat_replayed_total", "Messages replayed from the store to connections that were behind", () => [[{}, st.replayed]]);
    r.counterFrom("tcpchat_received_bytes_total", "Bytes received from clients (TCP stream bytes; WebSocket message bytes plus 4 per message)", () => [
      [{}, st.closedBytesIn + this.sum((s) => s.received)],
    ]);
    r.counterFrom("tcpchat_sent_bytes_total", "Bytes written to clients (taken by the kernel or the WebSocket)", () => [
      [{}, st.closedBytesOut + this.sum((s) => s.writer.written)],
    ]);
    r.counterFrom("tcpchat_errors_total", "Error replies, by code (PROTOCOL.md 4)", () =>
      ERROR_CODES.map((code): Sample => [{ code }, st.errors[code] ?? 0]),
    );
    r.counterFrom("tcpchat_rate_limited_total", "Requests refused with rate_limited", () => [[{}, st.errors.rate_limited ?? 0]]);
    r.counterFrom("tcpchat_logins_total", "Successful logins", () => [[{}, st.logins]]);
    r.counterFrom("tcpchat_login_failures_total", "Logins refused (credentials, ban, throttle)", () => [[{}, st.loginFailures]]);
    this.batchSize = r.histogram("tcpchat_commit_batch_size", "Messages per committed batch", exponential(1, 2, 13));
    this.commitSeconds = r.histogram("tcpchat_commit_duration_seconds", "Time to commit one batch to the store", exponential(0.0001, 2, 16));
    st.ackSeconds = r.histogram(
      "tcpchat_send_ack_seconds",
      "Time from a send being queued to its ok being queued to the sender (batching and commit)",
      exponential(0.0001, 2, 16),
    );
    this.loopDelay = r.histogram("tcpchat_event_loop_delay_seconds", `Lateness of a ${LOOP_SAMPLE_MS} ms timer (event-loop stalls)`, exponential(0.001, 2, 14));
    r.gauge("process_resident_memory_bytes", "Resident set size", () => [[{}, process.memoryUsage.rss()]]);
    r.gauge("tcpchat_heap_used_bytes", "JavaScript heap in use", () => [[{}, process.memoryUsage().heapUsed]]);
    r.gauge("tcpchat_db_size_bytes", "Database size (SQLite: the file; Postgres: pg_database_size)", () => this.dbSize());
    if (sqliteFile(o.db))
      r.gauge("tcpchat_db_wal_size_bytes", "SQLite write-ahead log size", () => [[{}, fileSize(`${o.db}-wal`)]]);
    if (o.retention) {
      const ret = o.retention;
      r.counterFrom("tcpchat_retention_purged_total", "Messages purged by --retain-days", () => [[{}, ret.purged]]);
    }
    const b = o.broker;
    if (b instanceof NatsBroker) {
      r.gauge("tcpchat_bus_connected", "1 while connected to NATS", () => [[{}, b.isConnected ? 1 : 0]]);
      r.counterFrom("tcpchat_bus_published_total", "Messages published on the bus", () => [[{}, b.counts.published]]);
      r.counterFrom("tcpchat_bus_received_total", "Messages received from the bus", () => [[{}, b.counts.received]]);
      r.counterFrom("tcpchat_bus_missed_total", "Times commits never came over the bus and every session replayed from the store", () => [
        [{}, b.counts.missed],
      ]);
    }

    let last = performance.now();
    this.loop = setInterval(() => {
      const now = performance.now();
      this.loopDelay.observe(Math.max(0, now - last - LOOP_SAMPLE_MS) / 1000);
      last = now;
    }, LOOP_SAMPLE_MS);
    this.loop.unref();
    this.meterCommits();
  }

  /** Wraps the store's commit: batch size, duration, and committed messages by kind. */
  private meterCommits(): void {
    const store = this.o.store;
    const commit = store.commit.bind(store);
    store.commit = (batch, now) => {
      const t0 = performance.now();
      return commit(batch, now).then((r) => {
        this.commitSeconds.observe((performance.now() - t0) / 1000);
        this.batchSize.observe(batch.length);
        const res = r.results;
        for (let i = 0; i < res.length; i++) {
          if (res[i]!.duplicate) this.duplicates.value++;
          else if (batch[i]!.grp !== undefined) this.committedGroup.value++;
          else this.committedDirect.value++;
        }
        return r;
      });
    };
  }

  private byTransport(pred: (s: Session) => boolean): Sample[] {
    let tcp = 0;
    let ws = 0;
    for (const s of this.o.core.allSessions) {
      if (s.closed || !pred(s)) continue;
      if (transportOf(s) === "ws") ws++;
      else tcp++;
    }
    return [
      [{ transport: "tcp" }, tcp],
      [{ transport: "ws" }, ws],
    ];
  }

  private count(pred: (s: Session) => boolean): number {
    let n = 0;
    for (const s of this.o.core.allSessions) if (!s.closed && pred(s)) n++;
    return n;
  }

  private sum(f: (s: Session) => number): number {
    let n = 0;
    for (const s of this.o.core.allSessions) n += f(s);
    return n;
  }

  private async dbSize(): Promise<Sample[]> {
    const { store, db } = this.o;
    if (store instanceof PostgresStore) {
      const [row] = await store.sql`SELECT pg_database_size(current_database()) AS n`;
      return [[{}, Number(row.n)]];
    }
    return sqliteFile(db) ? [[{}, fileSize(db)]] : [];
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.render();
  }

  /**
   * /readyz: the store answers a cheap read within 2 s, and in a cluster the node is
   * connected to the bus. Returns what is wrong, or undefined when ready.
   */
  async notReady(): Promise<string | undefined> {
    if (this.stopped) return "shutting down";
    const b = this.o.broker;
    if (b instanceof NatsBroker && !b.isConnected) return "not connected to the bus";
    try {
      let timer: Timer | undefined;
      await Promise.race([
        this.o.store.position(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("no answer within 2 s")), 2000);
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (e) {
      return `the store is unreachable: ${(e as Error).message}`;
    }
    return undefined;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.loop);
  }
}
