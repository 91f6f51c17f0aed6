// Entry point: `bun run src/server.ts [options]`. Parses the config, opens the
// store, listens, and stops gracefully on SIGINT/SIGTERM.
import { statSync } from "node:fs";
import { ConfigError, helpText, parseConfig } from "./config.ts";
import type { Broker } from "./broker/broker.ts";
import { LocalBroker } from "./broker/local.ts";
import { NatsBroker } from "./broker/nats.ts";
import { ChatCore } from "./core/chat.ts";
import { toWire } from "./core/commands/messages.ts";
import { encodeFrame } from "./protocol/codec.ts";
import { openStore, type Store } from "./store/index.ts";
import { type HttpListening, serveHttp } from "./transport/http.ts";
import { type Listening, listen } from "./transport/tcp.ts";

/** A database file that other local users can read holds their DMs and password hashes: say so (it is created 0600). */
function warnIfReadable(db: string): void {
  if (db === ":memory:") return;
  try {
    const mode = statSync(db).mode & 0o777;
    if (mode & 0o077)
      console.error(`tcpchat: warning: ${db} is readable by other users (mode ${mode.toString(8)}); chmod 600 it`);
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
  let store: Store;
  let core: ChatCore;
  try {
    store = await openStore({ db: config.db, durability: config.durability });
  } catch (e) {
    console.error(`tcpchat: cannot open database ${redact(config.db)}: ${(e as Error).message}`);
    return 1;
  }
  if (!/^postgres(ql)?:\/\//.test(config.db)) warnIfReadable(config.db);
  const broker: Broker = config.bus
    ? new NatsBroker({
        servers: config.bus,
        store,
        encode: (m) => encodeFrame(toWire(m, "msg")),
        log: { info: (m) => console.log(`tcpchat: ${m}`), error: (m, e) => console.error(`tcpchat: ${m}`, e ?? "") },
      })
    : new LocalBroker();
  try {
    core = await ChatCore.open(config, store, undefined, broker);
  } catch (e) {
    const what = config.bus ? `join the cluster (db ${redact(config.db)}, bus ${config.bus})` : `read database ${config.db}`;
    console.error(`tcpchat: cannot ${what}: ${(e as Error).message}`);
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
    console.error(`tcpchat: cannot listen on ${config.host}:${config.port}: ${(e as Error).message}`);
    await store.close();
    return 1;
  }
  let web: HttpListening | undefined;
  if (config.httpPort !== "off") {
    try {
      web = serveHttp(core, {
        host: config.host,
        port: config.httpPort,
        tls: config.tlsCert ? { cert: config.tlsCert, key: config.tlsKey } : undefined,
        origins: config.httpOrigins.split(",").map((o) => o.trim()).filter((o) => o !== ""),
        maxFrame: config.maxFrame,
      });
    } catch (e) {
      console.error(`tcpchat: cannot listen for HTTP on ${config.host}:${config.httpPort}: ${(e as Error).message} (--http-port off turns it off)`);
      server.stop();
      await core.shutdown();
      return 1;
    }
  }
  console.log(
    `tcpchat listening on ${server.host}:${server.port} (db ${redact(config.db)}${config.bus ? `, bus ${config.bus}` : ""}${config.tlsCert ? ", TLS" : ""})`,
  );
  if (web) console.log(`tcpchat web app at ${web.url}`);

  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  const stop = async (signal: string) => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    console.log(`tcpchat: ${signal}, shutting down`);
    server.stop();
    web?.stop();
    await core.shutdown();
    console.log("tcpchat: stopped");
    resolve();
  };
  const onSignal = (signal: NodeJS.Signals) => void stop(signal);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  await stopped;
  return 0;
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
