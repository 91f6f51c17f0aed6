// The only file that touches Bun.listen. It adapts Bun's socket handlers to the
// core's open/data/drain/closed and a `Transport` per connection.
import type { Socket, TCPSocketListener } from "bun";
import type { ChatCore } from "../core/chat.ts";
import type { Session } from "../core/session.ts";

interface Conn {
  session: Session;
}

export interface Listening {
  host: string;
  port: number;
  /** Stops accepting; open connections stay until the core closes them. */
  stop(): void;
}

export interface ListenOptions {
  host: string;
  port: number;
  /** PEM files: when given, connections are TLS (the protocol inside is unchanged). */
  tls?: { cert: string; key: string };
}

export function listen(core: ChatCore, opts: ListenOptions): Listening {
  const server: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: opts.host,
    port: opts.port,
    ...(opts.tls ? { tls: { cert: Bun.file(opts.tls.cert), key: Bun.file(opts.tls.key) } } : {}),
    socket: {
      binaryType: "uint8array",
      open(socket: Socket<Conn>) {
        socket.setNoDelay(true);
        // `data` given to Bun.listen would be shared by every socket: each gets its own here.
        socket.data = {
          session: core.open({
            write: (b) => socket.write(b),
            end: () => socket.end(),
            terminate: () => socket.terminate(),
            remoteAddress: socket.remoteAddress,
          }),
        };
      },
      data(socket, chunk) {
        core.data(socket.data.session, chunk);
      },
      drain(socket) {
        core.drain(socket.data.session);
      },
      close(socket) {
        if (socket.data) core.closed(socket.data.session);
      },
      error(socket, err) {
        core.log.error("socket error", err);
        if (socket.data) core.closed(socket.data.session);
      },
    },
  });
  return {
    host: server.hostname,
    port: server.port,
    stop: () => server.stop(false),
  };
}
