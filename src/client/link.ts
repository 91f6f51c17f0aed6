// What a Connection needs of a transport, whatever it is: a `Link` to write to
// and three callbacks. Two kinds exist: a TCP byte stream (transport.ts, Bun
// only) and a WebSocket, one protocol message per WebSocket message
// (websocket.ts, browsers and Bun). No I/O and no runtime imports here, so the
// browser bundle can take it.
import type { Sink } from "../io/writer.ts";

/** The Writer's sink: `write`, `end`, `terminate`, and `messages` for a WebSocket (src/io/writer.ts). */
export type Link = Sink;

export interface LinkHandlers {
  /** Bytes of the stream (TCP), or one whole message body (a link with `messages`). */
  data(chunk: Uint8Array): void;
  /** The link can take more after a short write (TCP) or a QUEUED one (WebSocket). */
  drain(): void;
  /** Called once, when the connection is gone for any reason. */
  closed(error?: Error): void;
}

/** One TCP server: `host` (a name, IPv4, or IPv6 without brackets) and `port`. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** One server reached over WebSocket: `ws://host:7780/ws`, or `wss://...` (PROTOCOL.md §1.1). */
export interface WebSocketAddress {
  url: string;
}

/** A server to connect to, over TCP or WebSocket. */
export type Server = ServerAddress | WebSocketAddress;

/**
 * Where a client is connected (`client.server`): the host and port, and for a
 * WebSocket also its `url` (host and port are then the URL's).
 */
export type ServerInfo = ServerAddress & { url?: string };

/** A server the client can dial: its address, and how to open a link to it. */
export interface Endpoint {
  readonly server: ServerInfo;
  /** The address as text, for error messages. */
  readonly label: string;
  /** Opens a link; rejects with DisconnectedError if it cannot within `timeoutMs`. */
  dial(timeoutMs: number, h: LinkHandlers): Promise<Link>;
}
