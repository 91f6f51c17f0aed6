// The core's own counts, for /metrics (src/ops/metrics.ts reads them when scraped).
// Only plain number fields, incremented where the event happens: the hot path pays an
// addition and nothing else. Gauges (connections, sessions, sessions behind, bytes of
// open connections) are not kept here: a scrape counts them from the sessions.

/** How a connection arrived: Bun.listen (tcp) or a WebSocket on the HTTP port (ws). */
export type TransportKind = "tcp" | "ws";

export class CoreStats {
  /** Connections opened, by transport. */
  readonly opened: Record<TransportKind, number> = { tcp: 0, ws: 0 };
  /** Connections closed, by reason (a `bye` reason, or what closed it without one). */
  readonly closed: Record<string, number> = {};
  /** Error replies, by code (PROTOCOL.md §4). */
  readonly errors: Record<string, number> = {};
  /** Successful logins, and logins refused (wrong credentials, a ban, a throttle). */
  logins = 0;
  loginFailures = 0;
  /** Message pushes queued to sessions, live and replayed (PROTOCOL.md §5.1, §5.4). */
  deliveries = 0;
  /** Messages replayed from the store to sessions that fell behind, or after a missed commit. */
  replayed = 0;
  /** Times the broker could not get commits from the bus and every session replayed from the store. */
  missed = 0;
  /**
   * Seconds from a `send` being queued for its commit to its `ok` being queued to the sender
   * (the server's part of a send's round trip: the batching turn and the commit). A histogram
   * when metrics are on (src/ops/metrics.ts sets it).
   */
  ackSeconds: { observe(seconds: number): void } = { observe() {} };
  /** Bytes received from and written to connections that are closed now (open ones are added at scrape). */
  closedBytesIn = 0;
  closedBytesOut = 0;
}
