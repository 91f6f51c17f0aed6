// The only file that touches Bun.listen. It adapts Bun's socket handlers to the
// core's open/data/drain/closed and a `Transport` per connection.
import type { Socket, TCPSocketListener } from "bun";
import type { ChatCore } from "../core/chat.ts";
import type { Session } from "../core/session.ts";

interface Conn {
  session: Session;
  /** TLS only: performance.now() by which the handshake must be done (checked while in `handshaking`). */
  handshakeBy: number;
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
  /** Seconds a TLS connection has to complete its handshake (PROTOCOL.md §1). */
  handshakeTimeout?: number;
}

export function listen(core: ChatCore, opts: ListenOptions): Listening {
  // TLS connections still in their handshake: a client that never starts it would
  // otherwise hold its descriptor forever (nothing it sends reaches the core before).
  const handshaking = new Set<Socket<Conn>>();
  const handshakeMs = (opts.handshakeTimeout ?? 10) * 1000;
  const watch = opts.tls
    ? setInterval(() => {
        const now = performance.now();
        for (const sock of handshaking) {
          if (now < sock.data.handshakeBy) continue;
          handshaking.delete(sock);
          core.terminate(sock.data.session);
        }
      }, 1000)
    : undefined;
  watch?.unref();
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
            pause: () => socket.pause(),
            resume: () => socket.resume(),
            remoteAddress: socket.remoteAddress,
          }),
          handshakeBy: opts.tls ? performance.now() + handshakeMs : 0,
        };
        if (opts.tls) {
          // A TLS connection refused at once (too many) cannot be sent its bye before a
          // handshake: close it now rather than hold it for one.
          if (socket.data.session.closed) core.terminate(socket.data.session);
          else handshaking.add(socket);
        }
      },
      handshake(socket) {
        // Called once the TLS handshake ends, done or failed (a failure also closes the socket).
        handshaking.delete(socket);
      },
      data(socket, chunk) {
        core.data(socket.data.session, chunk);
      },
      drain(socket) {
        core.drain(socket.data.session);
      },
      close(socket) {
        handshaking.delete(socket);
        if (socket.data) core.closed(socket.data.session);
      },
      error(socket, err) {
        core.log.error("socket error", err);
        handshaking.delete(socket);
        if (socket.data) core.closed(socket.data.session);
      },
    },
  });
  return {
    host: server.hostname,
    port: server.port,
    stop: () => {
      if (watch) clearInterval(watch);
      server.stop(false);
    },
  };
}
