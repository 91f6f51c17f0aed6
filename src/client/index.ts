/**
 * tcpchat client library: protocol v1 (docs/PROTOCOL.md) over TCP or WebSocket, for Bun.
 * In a browser, import `./browser.ts` instead: the same ChatClient, WebSocket only.
 *
 * ```ts
 * import { ChatClient } from "./src/client/index.ts";
 * const chat = await ChatClient.connect({ host: "127.0.0.1", port: 7777 });
 * await chat.login("alice", { pass: "correct horse" });
 * await chat.join("general");
 * const sent = await chat.send({ group: "general", text: "hello" }); // {mid, ts, from, group, text, cid}
 * for await (const m of chat.messages()) console.log(m.from, m.text);
 * ```
 *
 * ## Exactly once, in order
 *
 * The rule, from the application's point of view:
 *
 * 1. **Every message the user can read, from where delivery starts (the login,
 *    see below), reaches the application exactly once**, in increasing `mid`
 *    order (so in order within each conversation): either as a `msg` event, or
 *    as the value of the `send()` that made it. Reconnects, server restarts, a
 *    connection that falls behind or is closed as stuck do not change that.
 * 2. **Messages this client object sent itself are reported only by their
 *    `send()` promise**, never as a `msg` event; the server does not push a
 *    message back to the connection that sent it either (§5.1). Messages the
 *    same user sent from another connection (another device, another client
 *    object) are `msg` events like anyone else's.
 * 3. **A `send()` is stored once.** It carries a `cid` (the app's, or a UUID) for
 *    its whole life; sent again after a lost connection, the server stores
 *    nothing new and answers with the original `mid` (§3.4). Sends made while
 *    disconnected wait and go out, in order, once the client is logged back in
 *    and caught up; their promises resolve when the server acknowledges them.
 *
 * How: on one connection `msg` pushes come in increasing `mid` order, live or
 * replayed after the connection fell behind (§5.4), and so do `sync` pages. The
 * client keeps a cursor, the largest mid of that stream, and delivers a message
 * only if its mid is above it: that removes duplicates and keeps the order.
 * After every reconnect it logs in with its token and pages through `sync` from
 * the cursor until `more` is false; live pushes that arrive meanwhile are held
 * and delivered after the catch-up, skipping those already delivered. Sends
 * wait while it catches up. An ack does not move the cursor (a connection that
 * fell behind gets acks before the pushes of earlier messages); the client
 * remembers the mids of its acknowledged sends and skips them when a replay or
 * a `sync` page brings them. A message of its own found in a `sync` page before
 * its ack (committed, but the ack was lost with the connection) settles that
 * `send()` by its `cid` instead of being delivered. (Cost: a catch-up fetches
 * the client's own messages since the last message from others once more.)
 *
 * Where delivery starts: `login(user, cred, { since })`. `since: "now"` (the
 * default) delivers what is committed once `login()` has resolved (a message
 * committed while it runs may or may not be); the client finds the newest mid
 * already there with a few `sync {limit: 1}` probes (the protocol has no
 * "latest mid" request). `since: n` delivers everything after mid `n` first
 * (0: the whole readable history); to resume a previous session, pass its
 * `client.cursor`. Messages sent by an earlier client object are not "its own"
 * to a new one: they come as `msg` events if they are after `since`.
 *
 * ## Conversations: edits, deletions, reactions, read state, typing
 *
 * Every change to a conversation is an entry of the same log as its messages
 * (PROTOCOL.md §3.5), so the rule above holds for it too: each reaches the
 * application once, in mid order, also after a reconnect. A message is a `msg`
 * event; an edit, a deletion, a reaction and a read marker moved on another
 * device are `edit`, `delete`, `reaction` and `read` events (and every entry,
 * messages included, is also an `entry` event, before its own). `typing` events
 * are ephemeral. The client's own `edit()`, `delete()`, `react()` and
 * `markRead()` are reported by their promises, like `send()`. `history()` and
 * `sync()` pages hold messages as they are now (`edited`, a `deleted`
 * tombstone, `reactions`) followed by the entries that changed them.
 * `conversations()` gives the unread counts the server computes from the read
 * markers and the log: the same on every device.
 *
 * ```ts
 * chat.on("edit", (e) => show(e.ref, e.text));
 * chat.on("delete", (e) => remove(e.ref));
 * const r = await chat.send({ group: "ops", text: "agreed", reply: 41 });
 * await chat.react({ group: "ops" }, 41, "👍");
 * await chat.markRead({ group: "ops" }, r.mid);
 * for (const c of await chat.conversations()) console.log(c.group ?? c.user, c.unread, c.mentions);
 * ```
 *
 * ## Files
 *
 * A file's bytes never travel in a message (PROTOCOL.md §3.9): a message's `file` is
 * `{name, type, size, sha256}`, and whoever may see it downloads the bytes when they want
 * them. `sendFile()` uploads and sends in one go; `uploadFile()` only uploads (then
 * `send({..., file: {upload, name, type}})`, once per upload). An upload hashes its source
 * (SHA-256, a slice at a time), then sends chunks of the login's `limits.max_chunk`, a few in
 * flight; after a lost connection (or a server restart) it asks `upload` again and goes on
 * from the offset the server has. A download is an async iterator of chunks (a few
 * `download` requests in flight, never the whole file in memory), checked at the end
 * against the message's SHA-256 (IntegrityError if it differs); it too goes on after a
 * reconnect. Sources: a Uint8Array, a Blob or File, or (Bun, this entry) a file path.
 *
 * ```ts
 * const m = await chat.sendFile({ group: "ops" }, "./report.pdf", { text: "the report", onProgress: (p) => bar(p.bytes / p.total) });
 * chat.on("msg", async (m) => {
 *   if (m.file) await chat.downloadToFile(m, `./downloads/${m.mid}`, { onProgress: (p) => bar(p.bytes / p.total) });
 * });
 * for await (const chunk of chat.download(m)) sink.write(chunk); // or downloadStream(m), downloadBlob(m)
 * ```
 *
 * Over the user's `limits.file_quota` (or too many uploads not sent) an upload rejects
 * with QuotaError; over `limits.max_file`, TooLargeError (before anything is sent).
 *
 * ## Errors
 *
 * A server `error` reply rejects with a `ChatError` subclass carrying the
 * server's `code` (`ForbiddenError` has code "forbidden", and so on; an unknown
 * code becomes "internal"). The client's own failures: `TimeoutError` (no reply
 * in `requestTimeoutMs`; the request may still have been carried out),
 * `DisconnectedError` (no connection right now: only `send` waits for one), and
 * `ClosedError` (after `close()`, or when the token was refused on a reconnect).
 * All extend `TcpchatError` and have a `code`.
 *
 * ## Connection
 *
 * One writer per connection queues what `write()` did not take and resends it
 * on `drain`, never writing ahead of queued bytes (docs/BUN.md). After a lost
 * connection or `bye {reason: "shutdown"}` the client reconnects with
 * exponential backoff and jitter; a `ping` every `pingIntervalMs` notices a
 * silent network failure. `close()` ends the session without reconnecting.
 * Requests are paced under the server's rate limit (§2.4, `pace` option) so
 * the server never has to refuse one; a `send` refused anyway with
 * `rate_limited` or `internal` is retried with its `cid` (`sendRetries`), and
 * then, but only then, may be stored after sends made later. Events are
 * buffered without bound for async iterators that read slowly.
 *
 * Several servers (the nodes of a cluster): `servers: [{host, port}, ...]`
 * instead of `host` and `port`, or `servers: parseServers("a:7777,b:7777,[::1]:7777")`.
 * `connect()` takes the first that answers, in order. After a lost connection
 * the client moves on to the next address, round robin: the backoff delay is
 * waited once before each round over the list, and within a round an address
 * that cannot be reached is followed at once by the next. On the new server it
 * does what it does after any reconnect: token login, `sync` from the cursor,
 * queued sends with their `cid`s (the server keeps one message per sender and
 * `cid`, so a send acknowledged by neither server is still stored once, as long
 * as the servers share one store). `client.server` is the current address.
 *
 * ## WebSocket
 *
 * `url: "ws://127.0.0.1:7780/ws"` (or `wss://` for a server with TLS) instead of
 * `host` and `port` speaks the same protocol over the server's HTTP port
 * (PROTOCOL.md §1.1): one MessagePack map per binary WebSocket message.
 * Everything above holds unchanged: reconnect, token login, `sync` catch-up,
 * exactly-once delivery, queued sends by `cid`. Several servers: `servers:
 * [{url: "wss://a/ws"}, {url: "wss://b/ws"}]` (`{host, port}` and `{url}` entries
 * may be mixed). `client.server` then has the URL's host and port and the `url`.
 * It uses the global WebSocket (a browser's, or Bun's). The browser's ws.send()
 * buffers without bound; the client stops writing into it past 1 MiB buffered
 * (`bufferedAmount`) and keeps the rest in its own queue until it drains.
 *
 * `./browser.ts` exports the same client for web pages, built from modules that
 * need neither Bun nor Node (core.ts, websocket.ts): there `url` or `{url}`
 * servers are the only way to connect.
 */
export { ChatClient } from "./client.ts";
export { AddressError, formatServer, parseServer, parseServers, type ServerAddress } from "./address.ts";
// Everything else is the browser entry's: the errors, the types (explicit exports above win over it).
export * from "./browser.ts";
