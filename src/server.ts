// Entry point: `bun run src/server.ts [options]`. Parses the config, opens the
// store, listens, and stops gracefully on SIGINT/SIGTERM.
import { statSync } from "node:fs";
import { adminSocketPath, ConfigError, helpText, parseConfig } from "./config.ts";
import type { Broker } from "./broker/broker.ts";
import { LocalBroker } from "./broker/local.ts";
import { NatsBroker } from "./broker/nats.ts";
import { ChatCore } from "./core/chat.ts";
import { toWire } from "./core/commands/messages.ts";
import { encodeFrame } from "./protocol/codec.ts";
import { openStore, type Store } from "./store/index.ts";
import { type HttpListening, serveHttp } from "./transport/http.ts";
import { type Listening, listen } from "./transport/tcp.ts";
import type { LogLevel } from "./core/chat.ts";
import { defaultFormat, errorText, type LogFormat, StructuredLogger } from "./ops/log.ts";
import { ServerMetrics } from "./ops/metrics.ts";
import { type AdminListening, serveAdmin } from "./ops/admin.ts";
import { Retention } from "./ops/retention.ts";

/** A database file that other local users can read holds their DMs and password hashes: say so (it is created 0600). */
function warnIfReadable(db: string, log: StructuredLogger): void {
  if (db === ":memory:") return;
  try {
    const mode = statSync(db).mode & 0o777;
    if (mode & 0o077)
      log.event("warn", "db.readable", { db, mode: mode.toString(8), msg: `tcpchat: warning: ${db} is readable by other users (mode ${mode.toString(8)}); chmod 600 it` });
  } catch {
    // not a plain file path (a URI): nothing to check
  }
}

/** A database URL without its password, for logs. */
function redact(db: string): string {
  return db.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/, "$1:***@");
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(helpText());
    return 0;
  }
  let config;
  try {
    config = parseConfig(argv, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`tcpchat: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const log = new StructuredLogger(config.logLevel as LogLevel, (config.logFormat || defaultFormat()) as LogFormat);
  // The signal handlers go in first: Bun installs one some time after process.on() returns,
  // and a SIGTERM sent as soon as "listening" was printed killed the process unhandled in
  // about half of 30 tries (exit 143, no shutdown; with the handlers installed here, none).
  // Before the server is up a signal ends the process as its default action would; from the
  // "listening" line on, it stops the server gracefully.
  let stopNow: ((signal: NodeJS.Signals) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopNow) stopNow(signal);
    else process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const fatal = (event: string, msg: string, e?: unknown) => log.event("error", event, { msg, err: e === undefined ? undefined : errorText(e) });
  let store: Store;
  let core: ChatCore;
  try {
    store = await openStore({ db: config.db, durability: config.durability });
  } catch (e) {
    fatal("start.failed", `tcpchat: cannot open database ${redact(config.db)}: ${(e as Error).message}`);
    return 1;
  }
  if (!/^postgres(ql)?:\/\//.test(config.db)) warnIfReadable(config.db, log);
  const broker: Broker = config.bus
    ? new NatsBroker({
        servers: config.bus,
        store,
        encode: (m) => encodeFrame(toWire(m, "msg")),
        log: { info: (m) => log.event("info", "bus", { msg: `tcpchat: ${m}` }), error: (m, e) => log.error(`tcpchat: ${m}`, e) },
      })
    : new LocalBroker();
  try {
    core = await ChatCore.open(config, store, log, broker);
  } catch (e) {
    const what = config.bus ? `join the cluster (db ${redact(config.db)}, bus ${config.bus})` : `read database ${config.db}`;
    fatal("start.failed", `tcpchat: cannot ${what}: ${(e as Error).message}`);
    await broker.close().catch(() => {});
    await store.close();
    return 1;
  }
  let server: Listening;
  try {
    server = listen(core, {
      host: config.host,
      port: config.port,
      tls: config.tlsCert ? { cert: config.tlsCert, key: config.tlsKey } : undefined,
      handshakeTimeout: config.tlsHandshakeTimeout,
    });
  } catch (e) {
    fatal("start.failed", `tcpchat: cannot listen on ${config.host}:${config.port}: ${(e as Error).message}`);
    await store.close();
    return 1;
  }
  const retention = new Retention(store, config.retainDays, log);
  const metrics = new ServerMetrics({ core, store, broker, db: config.db, retention });
  let web: HttpListening | undefined;
  if (config.httpPort !== "off") {
    try {
      web = serveHttp(core, {
        host: config.host,
        port: config.httpPort,
        tls: config.tlsCert ? { cert: config.tlsCert, key: config.tlsKey } : undefined,
        origins: config.httpOrigins.split(",").map((o) => o.trim()).filter((o) => o !== ""),
        maxFrame: config.maxFrame,
        ops: { metrics: () => metrics.render(), notReady: () => metrics.notReady() },
      });
    } catch (e) {
      fatal("start.failed", `tcpchat: cannot listen for HTTP on ${config.host}:${config.httpPort}: ${(e as Error).message} (--http-port off turns it off)`);
      server.stop();
      await core.shutdown();
      return 1;
    }
  }
  let admin: AdminListening | undefined;
  const adminPath = adminSocketPath(config);
  if (adminPath !== undefined) {
    try {
      admin = await serveAdmin(adminPath, { core, store, retention });
    } catch (e) {
      const why = `tcpchat: cannot open the admin socket ${adminPath}: ${(e as Error).message}`;
      if (config.adminSocket === "") {
        // The default place (beside the database) may not suit a socket (a path too long): serve without.
        log.event("warn", "admin.unavailable", { path: adminPath, msg: `${why}; running without one (give --admin-socket PATH)` });
      } else {
        fatal("start.failed", `${why} (--admin-socket off turns it off)`);
        server.stop();
        web?.stop();
        await core.shutdown();
        return 1;
      }
    }
  }
  retention.start();
  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  const stop = async (signal: string) => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    log.event("info", "stopping", { signal, msg: `tcpchat: ${signal}, shutting down` });
    metrics.stop();
    server.stop();
    web?.stop();
    await admin?.close();
    await retention.stop();
    await core.shutdown();
    log.event("info", "stopped", { msg: "tcpchat: stopped" });
    resolve();
  };
  stopNow = (signal) => void stop(signal);
  // "listening" last: whoever waits for it (a script, a test) finds the other two lines already out.
  if (web) log.banner("web", { url: web.url, msg: `tcpchat web app at ${web.url}` });
  if (admin) log.event("info", "admin.socket", { path: admin.path, msg: `tcpchat admin socket at ${admin.path}` });
  log.banner("listening", {
    host: server.host,
    port: server.port,
    msg: `tcpchat listening on ${server.host}:${server.port} (db ${redact(config.db)}${config.bus ? `, bus ${config.bus}` : ""}${config.tlsCert ? ", TLS" : ""})`,
  });
  await stopped;
  return 0;
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
