// ChatClient for Bun: the client of core.ts, which speaks WebSocket, plus TCP
// servers (`host` and `port`, or `servers: [{host, port}]`). index.ts exports it.
import { checkServer } from "./address.ts";
import { HOST_AND_PORT, ChatClient as WebSocketChatClient } from "./core.ts";
import type { Endpoint, ServerAddress } from "./link.ts";
import type { ClientOptions } from "./types.ts";
import { tcpEndpoint } from "./transport.ts";

export class ChatClient extends WebSocketChatClient {
  /** As core.ts's connect() (it makes an instance of `this` class), typed as this class. */
  static override async connect(options: ClientOptions = {}): Promise<ChatClient> {
    return (await super.connect(options)) as ChatClient;
  }

  /** `{host, port}`: TCP; `{url}`: WebSocket. */
  protected override endpoint(entry: unknown, where: string): Endpoint {
    if (typeof entry === "object" && entry !== null && "url" in entry) return super.endpoint(entry, where);
    // The `host` and `port` options are taken as given, as they always were: a bad one fails to connect.
    if (where === HOST_AND_PORT) return tcpEndpoint(entry as ServerAddress);
    return tcpEndpoint(checkServer(entry, where));
  }
}
