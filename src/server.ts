// Entry point: `bun run src/server.ts [options]`. Parses the config, opens the
// store, listens, and stops gracefully on SIGINT/SIGTERM.
import { ConfigError, helpText, parseConfig } from "./config.ts";
import { ChatCore } from "./core/chat.ts";
import { SqliteStore } from "./store/sqlite.ts";
import { listen } from "./transport/tcp.ts";

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
  const store = new SqliteStore({ path: config.db, durability: config.durability });
  const core = new ChatCore(config, store);
  const server = listen(core, config.host, config.port);
  console.log(`tcpchat listening on ${server.host}:${server.port} (db ${config.db})`);

  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  const stop = async (signal: string) => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    console.log(`tcpchat: ${signal}, shutting down`);
    server.stop();
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
