// The only file that touches Bun.connect: a TCP connection as a `Link` (write,
// end, terminate) plus three callbacks (data, drain, closed). Bun only: the
// browser bundle (browser.ts) never imports it.
import type { Socket } from "bun";
import { formatServer } from "./address.ts";
import { DisconnectedError } from "./errors.ts";
import type { Endpoint, Link, LinkHandlers, ServerAddress } from "./link.ts";

/** A TCP server as an Endpoint. `write` gives the bytes the kernel took, or -1 once closed (docs/BUN.md). */
export function tcpEndpoint(server: ServerAddress): Endpoint {
  return {
    server: { host: server.host, port: server.port },
    label: formatServer(server),
    dial: (timeoutMs, h) => dial(server.host, server.port, timeoutMs, h),
  };
}

/** Opens a TCP connection; rejects with DisconnectedError if it cannot within `timeoutMs`. */
export async function dial(host: string, port: number, timeoutMs: number, h: LinkHandlers): Promise<Link> {
  let done = false;
  const closed = (err?: Error) => {
    if (done) return;
    done = true;
    h.closed(err);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const connecting = Bun.connect({
    hostname: host,
    port,
    socket: {
      binaryType: "uint8array",
      open(s) {
        s.setNoDelay(true);
      },
      data: (_s, chunk) => h.data(chunk),
      drain: () => h.drain(),
      end: (s) => {
        s.end(); // the server half-closed (after `bye`): finish our side too
      },
      close: (_s, err) => closed(err),
      error: (_s, err) => closed(err),
      connectError: () => {}, // reported by the rejected promise below
    },
  });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new DisconnectedError("connect", { cause: new Error(`no connection within ${timeoutMs} ms`) }));
    }, timeoutMs);
  });
  let socket: Socket<undefined>;
  try {
    socket = await Promise.race([connecting, timeout]);
  } catch (e) {
    if (timedOut) void connecting.then((s) => s.terminate(), () => {});
    throw e instanceof DisconnectedError ? e : new DisconnectedError("connect", { cause: e });
  } finally {
    clearTimeout(timer);
  }
  return {
    write: (b) => socket.write(b),
    end: () => socket.end(),
    terminate: () => socket.terminate(),
  };
}
