// A real server process for the web tests, with its web app URL: the start line
// `tcpchat web app at http://HOST:PORT/` (test/helpers/server.ts starts it).
import { type RunningServer, startServer } from "../helpers/server.ts";

export interface WebServer {
  server: RunningServer;
  /** `http://127.0.0.1:PORT/`: the page. */
  web: string;
  /** `ws://127.0.0.1:PORT/ws`. */
  ws: string;
  httpPort: number;
}

/** Starts the server with `args` (the helper adds `--port 0 --http-port 0`; a later `--http-port N` wins) and reads its web URL. */
export async function startWebServer(args: string[]): Promise<WebServer> {
  const server = await startServer(args);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = server.output().match(/tcpchat web app at (http:\/\/[^\s"]+)/);
    if (m) {
      const web = m[1]!;
      const u = new URL(web);
      return { server, web, ws: `ws://${u.host}/ws`, httpPort: Number(u.port) };
    }
    if (server.proc.exitCode !== null || Date.now() > deadline) {
      if (server.proc.exitCode === null) await server.stop();
      throw new Error(`the server printed no web app URL: ${server.output()}`);
    }
    await Bun.sleep(20);
  }
}

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

export async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}
