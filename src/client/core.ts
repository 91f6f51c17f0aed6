// ChatClient: one logical session with a tcpchat server over a succession of
// connections. It owns the login state, reconnects, catches up with `sync`,
// keeps unacknowledged sends, and delivers each message once, in mid order.
// The exactly-once rule is documented in index.ts.
//
// This class knows WebSocket servers only (`url`, or `servers: [{url}]`), so the
// browser bundle (browser.ts) takes it without any Bun or Node module. The
// ChatClient of client.ts (index.ts, for Bun) extends it with TCP servers.
import type { Push } from "../protocol/pushes.ts";
import type { RequestType } from "../protocol/requests.ts";
import { Backoff } from "./backoff.ts";
import { findTail, syncPages } from "./catchup.ts";
import { Connection } from "./connection.ts";
import { Delivery } from "./delivery.ts";
import { AddressError, ChatError, chatErrorFrom, ClosedError, DisconnectedError, TimeoutError } from "./errors.ts";
import { Emitter, EventStream } from "./events.ts";
import type { Endpoint, ServerInfo } from "./link.ts";
import { Outbox } from "./outbox.ts";
import { Sender } from "./sender.ts";
import { newCid } from "./cid.ts";
import { checkWebSocketUrl, webSocketEndpoint } from "./websocket.ts";
import {
  describeSource,
  type DownloadOptions,
  downloadChunks,
  type FileHost,
  fileOf,
  type SendFileOptions,
  type UploadOptions,
  type UploadResult,
  type UploadSource,
  uploadFile,
} from "./files.ts";
import { isGroupKind } from "./types.ts";
import type {
  Bye,
  ChatMessage,
  DirectoryEntry,
  DmPolicy,
  GroupEvent,
  GroupSettings,
  Invitation,
  MaybeStored,
  ClientEvents,
  ClientOptions,
  ConnectionState,
  Conversation,
  ReadResult,
  Stored,
  GroupInfo,
  JoinResult,
  LoginOptions,
  LoginResult,
  Member,
  Page,
  Presence,
  Replies,
  RequestInput,
  SendInput,
  SendOptions,
  Target,
} from "./types.ts";

type Resolved = Required<Omit<ClientOptions, "reconnect" | "pace" | "servers" | "url">> & Pick<ClientOptions, "reconnect" | "pace">;

const DEFAULTS: Resolved = {
  host: "127.0.0.1",
  port: 7777,
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxFrame: 64 * 1024 * 1024,
  maxRequestFrame: 4 * 1024 * 1024,
  reconnect: {},
  pingIntervalMs: 15_000,
  syncPageSize: 500,
  sendRetries: 5,
  pace: {},
};

/** `where` of the one server given by the `host` and `port` options (or their defaults). */
export const HOST_AND_PORT = "host and port";

/** The servers to connect to, checked: `url`, `servers`, or the one `host` and `port`. */
function endpointsOf(options: ClientOptions, endpoint: (entry: unknown, where: string) => Endpoint): Endpoint[] {
  const hostPort = options.host !== undefined || options.port !== undefined;
  if (options.url !== undefined) {
    if (options.servers !== undefined || hostPort) throw new AddressError("give one of url, servers, or host and port");
    return [endpoint({ url: options.url }, "url")];
  }
  if (options.servers === undefined) {
    return [endpoint({ host: options.host ?? DEFAULTS.host, port: options.port ?? DEFAULTS.port }, HOST_AND_PORT)];
  }
  if (hostPort) throw new AddressError("give either servers or host and port, not both");
  const servers: unknown = options.servers;
  if (!Array.isArray(servers)) throw new AddressError("servers must be an array of {host, port} or {url}");
  if (servers.length === 0) throw new AddressError("servers is empty: give at least one {host, port} or {url}");
  return servers.map((a: unknown, i) => endpoint(a, `servers[${i}]`));
}

/** Why one address could not be reached, in a few words. */
function dialFailure(e: unknown): string {
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  return cause instanceof Error ? cause.message : String(cause);
}

export class ChatClient {
  private readonly opts: Resolved;
  private readonly servers: Endpoint[];
  /** Index in `servers` of the current connection, or of the last address tried. */
  private at = 0;
  /** Addresses still to try in this round of reconnecting before the next backoff delay. */
  private roundLeft = 0;
  private readonly emitter: Emitter<ClientEvents>;
  private readonly backoff: Backoff;
  private readonly outbox = new Outbox();
  private readonly delivery: Delivery;
  private readonly sender: Sender;
  private conn: Connection | undefined;
  private creds: { user: string; token: string } | undefined;
  private _state: ConnectionState = "connecting";
  /** A login "now" whose tail probe has not finished: the cursor is not known yet. */
  private needTail = false;
  /** The login reply's `mid`: where live pushes begin, so a login "now" needs no tail probe. */
  private loginMid: number | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pinging = false;
  private closing = false;
  private readonly streams = new Set<EventStream<unknown>>();
  /** The last login reply's limits (PROTOCOL.md §3.2). */
  private limitsNow: LoginResult["limits"];
  /** Uploads this client finished, by id: their size and hash, for the message a send of one resolves with. */
  private readonly finished = new Map<string, { size: number; sha256: string }>();

  protected constructor(options: ClientOptions) {
    this.opts = { ...DEFAULTS, ...options } as Resolved;
    this.servers = endpointsOf(options, (entry, where) => this.endpoint(entry, where));
    this.backoff = new Backoff(this.opts.reconnect || {});
    this.emitter = new Emitter<ClientEvents>((err, name) => {
      // Reported as an "error" event, unless an "error" listener threw (no loop) or nobody listens.
      if (name !== "error" && this.emitter.listenerCount("error") > 0) {
        this.emitter.emit("error", err instanceof Error ? err : new Error(String(err)));
      } else {
        console.error(`tcpchat client: a "${String(name)}" listener threw:`, err);
      }
    });
    const me = () => this.creds?.user;
    this.delivery = new Delivery(this.outbox, me, (m) => this.emitEntry(m));
    // Sends go out when ready, or when not logged in at all (the server then says why not).
    const sendable = () => (this._state === "ready" || (this._state === "open" && !this.creds) ? this.conn : undefined);
    this.sender = new Sender(this.outbox, this.opts, sendable, me, (mid) => this.delivery.acked(mid));
  }

  /**
   * Connects to the first server that answers, trying them in order; rejects with
   * DisconnectedError if none can be reached (with several, its `cause` is an
   * AggregateError naming each address), or AddressError for a bad `servers`. Log in next.
   */
  static async connect(options: ClientOptions = {}): Promise<ChatClient> {
    const c = new this(options);
    c.conn = await c.dialFirst();
    c.setState("open");
    c.startPing();
    return c;
  }

  /**
   * One server entry as an Endpoint, checked (`where` names it in an AddressError).
   * Here only `{url}`: a WebSocket; the ChatClient of client.ts adds `{host, port}`.
   */
  protected endpoint(entry: unknown, where: string): Endpoint {
    if (typeof entry === "object" && entry !== null && "url" in entry) {
      return webSocketEndpoint(checkWebSocketUrl(entry.url, where === "url" ? "url" : `${where}.url`));
    }
    if (typeof entry === "object" && entry !== null && "host" in entry) {
      throw new AddressError(`${where}: TCP needs Bun and the client of src/client/index.ts; this build speaks WebSocket only: give url`);
    }
    throw new AddressError(`${where} must be {url}, got ${JSON.stringify(entry)}`);
  }

  // ---- state ---------------------------------------------------------------

  get state(): ConnectionState {
    return this._state;
  }

  /** The logged-in user, if any. */
  get user(): string | undefined {
    return this.creds?.user;
  }

  /** The login token (to log in elsewhere, or to keep). */
  get token(): string | undefined {
    return this.creds?.token;
  }

  /** The largest mid delivered or acknowledged: pass it as `since` to a later login to resume from here. */
  get cursor(): number {
    return this.delivery.cursor;
  }

  /** The server of the current connection (`{host, port}`, and `url` for a WebSocket); undefined while there is none. */
  get server(): ServerInfo | undefined {
    const conn = this.conn;
    return conn ? { ...conn.server } : undefined;
  }

  /** The server's limits from the last login (PROTOCOL.md §3.2: rates, sizes, `max_file`, `file_quota`, `max_chunk`). */
  get limits(): LoginResult["limits"] | undefined {
    return this.limitsNow;
  }

  /** Sends not acknowledged yet (queued while disconnected, or in flight). */
  get pendingSends(): number {
    return this.outbox.size;
  }

  // ---- events ----------------------------------------------------------------

  on<K extends keyof ClientEvents>(name: K, fn: (v: ClientEvents[K]) => void): () => void {
    return this.emitter.on(name, fn);
  }

  off<K extends keyof ClientEvents>(name: K, fn: (v: ClientEvents[K]) => void): void {
    this.emitter.off(name, fn);
  }

  /** The events `name` from now on, as an async iterator; it ends when the client closes. */
  stream<K extends keyof ClientEvents>(name: K): AsyncIterableIterator<ClientEvents[K]> {
    const s: EventStream<ClientEvents[K]> = new EventStream(() => {
      off();
      this.streams.delete(s as EventStream<unknown>);
    });
    const off = this.emitter.on(name, (v) => s.push(v));
    this.streams.add(s as EventStream<unknown>);
    if (this._state === "closed") s.end();
    return s;
  }

  messages(): AsyncIterableIterator<ChatMessage> {
    return this.stream("msg");
  }

  presences(): AsyncIterableIterator<Presence> {
    return this.stream("presence");
  }

  byes(): AsyncIterableIterator<Bye> {
    return this.stream("bye");
  }

  /** Resolves the next time the client is `ready` (at once if it is); rejects with ClosedError if it closes first. */
  whenReady(): Promise<void> {
    if (this._state === "ready") return Promise.resolve();
    if (this._state === "closed") return Promise.reject(new ClosedError("ready"));
    return new Promise((resolve, reject) => {
      const off = this.emitter.on("state", (s) => {
        if (s === "ready") resolve();
        else if (s === "closed") reject(new ClosedError("ready"));
        else return;
        off();
      });
    });
  }

  // ---- requests ----------------------------------------------------------------

  /**
   * Any request, typed by its `t`; resolves with the reply's fields. Fails with
   * DisconnectedError at once when there is no connection (only `send` waits for one).
   */
  async request<T extends RequestType>(req: RequestInput<T> & { t: T }, timeoutMs = this.opts.requestTimeoutMs): Promise<Replies[T]> {
    if (this._state === "closed") throw new ClosedError(req.t);
    const conn = this.conn;
    if (!conn) throw new DisconnectedError(req.t);
    return (await conn.request(req as { t: string }, timeoutMs)) as Replies[T];
  }

  /** Round-trip time in ms. */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.request({ t: "ping" });
    return performance.now() - t0;
  }

  async register(user: string, pass: string): Promise<{ user: string }> {
    return this.request({ t: "register", user, pass });
  }

  /**
   * Logs in with a password or a token. Resolves once the client is `ready`:
   * logged in and, with `since` a mid, caught up to now. From then on the client
   * logs back in with the token after every reconnect.
   */
  async login(user: string, cred: { pass: string } | { token: string }, opts: LoginOptions = {}): Promise<LoginResult> {
    const conn = this.conn;
    if (this._state === "closed") throw new ClosedError("login");
    if (!conn) throw new DisconnectedError("login");
    const since = opts.since ?? "now";
    // With a `since`, pushes must be held from the moment the login can succeed:
    // one may arrive in the same read as the login's reply, before the catch-up.
    if (since !== "now") this.delivery.hold();
    let r: LoginResult;
    try {
      r = await this.request({ t: "login", user, ...cred });
    } catch (e) {
      if (conn === this.conn) this.delivery.drop();
      throw e;
    }
    this.creds = { user: r.user, token: r.token };
    this.limitsNow = r.limits;
    this.loginMid = typeof r.mid === "number" ? r.mid : undefined;
    if (since === "now") this.needTail = true;
    else {
      this.needTail = false;
      this.delivery.moveTo(since);
    }
    const ready = this.whenReady();
    void this.resume(conn, false);
    await ready;
    return r;
  }

  /** Revokes this login's token; the connection stays, logged out (no more automatic login). */
  async logout(): Promise<void> {
    await this.request({ t: "logout" });
    this.creds = undefined;
    this.delivery.drop();
    if (this.conn) this.setState("open");
  }

  /** Changes the password; every other token of the user is revoked, this client keeps going with a new one. */
  async passwd(oldPass: string, newPass: string): Promise<void> {
    const r = await this.request({ t: "passwd", old: oldPass, new: newPass });
    if (this.creds) this.creds = { user: this.creds.user, token: r.token };
  }

  // Changes to groups (PROTOCOL.md §3.3). Each resolves with the reply: the `mid` and `ts` of the
  // entry it stored in the group's log, or neither when it changed nothing (muting the muted);
  // like an edit, an own change is not reported back as an event by the catch-up (changed()).

  /** Creates a group, with this user as its owner. Public unless `public: false`. */
  async createGroup(group: string, settings: GroupSettings = {}): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "create", group, ...settings }));
  }

  /** Joins a group that exists: a public one, or a private one this user is invited to. */
  async join(group: string): Promise<JoinResult> {
    return this.changed(await this.request({ t: "join", group }));
  }

  async leave(group: string): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "leave", group }));
  }

  async groups(): Promise<GroupInfo[]> {
    return (await this.request({ t: "groups" })).groups;
  }

  /** This user's open invitations. */
  async invitations(): Promise<Invitation[]> {
    return (await this.request({ t: "groups" })).invites;
  }

  /** Public groups by name (after `after`), whose name contains `q`. */
  async listGroups(opts: { q?: string; after?: string; limit?: number } = {}): Promise<{ groups: DirectoryEntry[]; more: boolean }> {
    return this.request({ t: "list", ...opts });
  }

  /** Changes the group's settings (owner and admins). */
  async configure(group: string, settings: GroupSettings): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "configure", group, ...settings }));
  }

  async invite(group: string, user: string): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "invite", group, user }));
  }

  async kick(group: string, user: string): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "kick", group, user }));
  }

  async ban(group: string, user: string): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "ban", group, user }));
  }

  async unban(group: string, user: string): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "unban", group, user }));
  }

  /** Mutes a member for `secs` seconds, or until unmuted. */
  async mute(group: string, user: string, secs?: number): Promise<MaybeStored> {
    return this.changed(await this.request(secs === undefined ? { t: "mute", group, user } : { t: "mute", group, user, secs }));
  }

  async unmute(group: string, user: string): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "unmute", group, user }));
  }

  /** Makes a member an admin, or a member again (the owner only). */
  async setRole(group: string, user: string, role: "admin" | "member"): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "role", group, user, role }));
  }

  /** Hands the group on to another member (the owner only; the old owner becomes an admin). */
  async transfer(group: string, user: string): Promise<MaybeStored> {
    return this.changed(await this.request({ t: "transfer", group, user }));
  }

  /** Blocks a user: no direct messages from them. Resolves with whether that changed anything. */
  async block(user: string): Promise<boolean> {
    return (await this.request({ t: "block", user })).changed;
  }

  /** Resolves with whether the user was blocked. */
  async unblock(user: string): Promise<boolean> {
    return (await this.request({ t: "unblock", user })).changed;
  }

  async blocked(): Promise<string[]> {
    return (await this.request({ t: "blocked" })).users;
  }

  /** Who may send this user direct messages; without `dms`, says it. */
  async privacy(dms?: DmPolicy): Promise<DmPolicy> {
    return (await this.request(dms === undefined ? { t: "privacy" } : { t: "privacy", dms })).dms;
  }

  async members(group: string): Promise<Member[]> {
    return (await this.request({ t: "members", group })).members;
  }

  /** One page of a conversation, oldest first (PROTOCOL.md §3.4). Does not touch delivery. */
  async history(target: Target, page: { before?: number; after?: number; limit?: number } = {}): Promise<Page> {
    return this.request({ t: "history", ...target, ...page });
  }

  /**
   * Replaces the text of message `mid` of a conversation (only its sender may: else ForbiddenError).
   * Resolves with the `edit` entry's mid and time once stored; everyone else gets an `edit` event.
   * Like every change below, reported to this client by its promise, not as an event (its entry is
   * skipped when a catch-up brings it); one whose reply was lost with a connection may come
   * back as an event, which applies the same change again.
   */
  async edit(target: Target, mid: number, text: string): Promise<Stored> {
    return this.acked(await this.request({ t: "edit", ...target, mid, text }));
  }

  /** Deletes message `mid` (its sender, or a group's owner): its text and file are erased on the server. */
  async delete(target: Target, mid: number): Promise<Stored> {
    return this.acked(await this.request({ t: "delete", ...target, mid }));
  }

  /** Adds this user's reaction `emoji` to message `mid`, or takes it back with `{remove: true}`. */
  async react(target: Target, mid: number, emoji: string, opts: { remove?: boolean } = {}): Promise<Stored> {
    return this.acked(await this.request({ t: "react", ...target, mid, emoji, remove: opts.remove }));
  }

  /**
   * Marks a conversation read up to `mid`: the marker only moves forward, and this user's other
   * devices get a `read` event. Resolves with the marker after it. `read` events also fire here
   * (from other devices), so an app can keep its unread badges with `conversations()` and these.
   */
  async markRead(target: Target, mid: number): Promise<ReadResult> {
    return this.changed(await this.request({ t: "read", ...target, mid }));
  }

  /** Every conversation with its newest mid, read marker, unread and mention counts and a preview, most recent first. */
  async conversations(): Promise<Conversation[]> {
    return (await this.request({ t: "convs" })).convs;
  }

  /**
   * The messages of this user's conversations containing `q` (parts of words, A-Z in either case),
   * newest first; page on with `before`: the last mid of the previous page (PROTOCOL.md §3.7).
   */
  async search(q: string, page: { before?: number; limit?: number } = {}): Promise<Page> {
    return this.request({ t: "search", q, ...page });
  }

  /** Tells the conversation's other members that this user is typing (call it every few seconds while they type). */
  async typing(target: Target): Promise<void> {
    await this.request({ t: "typing", ...target });
  }

  /** An own change was stored as `r.mid`: the catch-up must not report it back as an event. */
  private acked<R extends Stored>(r: R): R {
    this.delivery.acked(r.mid);
    return r;
  }

  /** A change that may have stored nothing: acked() if it stored an entry. */
  private changed<R extends MaybeStored>(r: R): R {
    if (r.mid !== undefined) this.delivery.acked(r.mid);
    return r;
  }

  /** One raw `sync` page. The client syncs by itself after reconnecting; this does not touch delivery. */
  async sync(after: number, limit?: number): Promise<Page> {
    return this.request({ t: "sync", after, limit });
  }

  /**
   * Sends a message; resolves with it as stored (mid, ts, from...) once the server
   * has committed it. Made while disconnected, it waits and goes out after the
   * reconnect, with the same `cid`, so it is stored once. Rejects with a ChatError
   * if the server refuses it (forbidden, not_found, too_large...), ClosedError if
   * the client closes first, TimeoutError after `timeoutMs` if given.
   */
  send(input: SendInput, opts: SendOptions = {}): Promise<ChatMessage> {
    if (this._state === "closed") return Promise.reject(new ClosedError("send"));
    const cid = input.cid ?? newCid();
    if (this.outbox.byCidOf(cid)) return Promise.reject(chatErrorFrom("bad_request", `cid "${cid}" is already pending`, "send"));
    let file = input.file;
    if (file && (file.size === undefined || file.sha256 === undefined)) {
      // An upload of this client's: the message resolved with says its size and hash.
      const known = this.finished.get(file.upload);
      if (known) file = { ...known, ...file, size: file.size ?? known.size, sha256: file.sha256 ?? known.sha256 };
    }
    const { entry, promise } = this.outbox.add(file ? { ...input, file, cid } : { ...input, cid });
    if (opts.timeoutMs !== undefined) {
      entry.timer = setTimeout(() => this.outbox.fail(entry, new TimeoutError("send", opts.timeoutMs!)), opts.timeoutMs);
    }
    this.sender.flush();
    return promise;
  }

  // ---- files (PROTOCOL.md §3.9) ----------------------------------------------------------

  /** What the transfers of files.ts need of this client. */
  private get files(): FileHost {
    return {
      request: (req, timeoutMs) => this.request(req as never, timeoutMs) as never,
      ready: () => this.readyForFiles(),
      limits: () => this.limitsNow,
      maxRequestFrame: this.opts.maxRequestFrame,
    };
  }

  /** A transfer's next request may go: ready; or not logged in at all (the server says no); waits through a reconnect. */
  private readyForFiles(): Promise<void> {
    if (this._state === "open" && !this.creds) return Promise.resolve();
    return this.whenReady();
  }

  /**
   * Uploads a file (PROTOCOL.md §3.9): computes its SHA-256, then sends it in chunks of the
   * server's `max_chunk`, a few in flight, reporting progress. A lost connection pauses it; after
   * the reconnect it goes on from the offset the server has (also across server restarts). Resolves
   * with the upload's id for `send({file: {upload, name, type}})`; `sendFile()` does both. Rejects
   * with TooLargeError (over `max_file`), QuotaError (the user's `file_quota` or upload count),
   * BadRequestError (the bytes changed while being sent: their hash is not the one announced).
   */
  async uploadFile(source: UploadSource, opts: UploadOptions = {}): Promise<UploadResult> {
    if (this._state === "closed") throw new ClosedError("upload");
    const r = await uploadFile(this.files, source, opts);
    this.finished.set(r.upload, { size: r.size, sha256: r.sha256 });
    return r;
  }

  /**
   * Uploads a file and sends it to a conversation, with `text` if given: resolves with the message
   * as stored, its `file` `{name, type, size, sha256}`. The name and type are the source's (a
   * File's) unless given; bytes in memory need a `name`.
   */
  async sendFile(target: Target, source: UploadSource, opts: SendFileOptions = {}): Promise<ChatMessage> {
    const d = describeSource(source);
    const name = opts.name ?? d.name;
    if (!name) throw new TypeError("sendFile: give the file a name (opts.name)");
    const type = opts.type ?? d.type ?? "";
    const up = await this.uploadFile(source, opts);
    const input = { ...target, text: opts.text, reply: opts.reply, cid: opts.cid, file: { upload: up.upload, name, type, size: up.size, sha256: up.sha256 } };
    return this.send(input as SendInput, { timeoutMs: opts.timeoutMs });
  }

  /**
   * The bytes of a message's file, downloaded on demand in chunks (PROTOCOL.md §3.9), a few
   * requests in flight: an async iterator of chunks, never the whole file in memory. Given the
   * message (not just its mid) the bytes are checked against its `file.sha256` at the end
   * (IntegrityError: do not use them). A lost connection pauses it; it goes on after the reconnect.
   * NotFoundError: no such message, no file, deleted, or not visible to this user.
   */
  download(m: ChatMessage | number, opts: DownloadOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
    if (this._state === "closed") throw new ClosedError("download");
    const f = fileOf(m);
    return downloadChunks(this.files, f.mid, f, opts);
  }

  /** download() as a ReadableStream (pulled: a chunk is asked for as the reader wants more). */
  downloadStream(m: ChatMessage | number, opts: DownloadOptions = {}): ReadableStream<Uint8Array> {
    const it = this.download(m, opts);
    return new ReadableStream<Uint8Array>(
      {
        async pull(ctrl) {
          const r = await it.next();
          if (r.done) ctrl.close();
          else ctrl.enqueue(r.value);
        },
        async cancel() {
          await it.return(undefined);
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** The whole file as a Blob, checked (for a page: an <img> or an <a download> of its URL). `type` default: the message's file's. */
  async downloadBlob(m: ChatMessage | number, opts: DownloadOptions & { type?: string } = {}): Promise<Blob> {
    const parts: Uint8Array<ArrayBuffer>[] = [];
    for await (const chunk of this.download(m, opts)) parts.push(chunk as Uint8Array<ArrayBuffer>);
    return new Blob(parts, { type: opts.type ?? fileOf(m).type ?? "" });
  }

  /** Resolves when every send made so far is acknowledged or has failed. */
  async flush(): Promise<void> {
    await this.outbox.settled();
  }

  /** Ends the session: no reconnect; unacknowledged sends reject with ClosedError (`flush()` first to wait for them); iterators finish. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.stopPing();
    this.outbox.failAll(() => new ClosedError("send"));
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await conn.end();
    this.setState("closed");
  }

  // ---- connection life ---------------------------------------------------------------

  /** The first connection: each address in order, once, until one answers. */
  private async dialFirst(): Promise<Connection> {
    const errors: unknown[] = [];
    for (let i = 0; i < this.servers.length; i++) {
      try {
        const conn = await this.dial(this.servers[i]!);
        this.at = i;
        return conn;
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length === 1) throw errors[0];
    const why = errors.map((e, i) => `${this.servers[i]!.label}: ${dialFailure(e)}`).join("; ");
    throw new DisconnectedError("connect", { cause: new AggregateError(errors, why) });
  }

  private dial(endpoint: Endpoint): Promise<Connection> {
    const conn: Promise<Connection> = Connection.open(
      {
        endpoint,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        maxFrame: this.opts.maxFrame,
        pace: this.opts.pace ?? {},
      },
      {
        push: (c, p) => this.onPush(c, p),
        closed: (c, bye) => this.onClosed(c, bye),
        stray: (c, m) => {
          if (c === this.conn) this.emitter.emit("error", new ChatError(String(m.code ?? "internal"), String(m.msg ?? ""), "(no id)"));
        },
      },
    );
    return conn;
  }

  private setState(s: ConnectionState): void {
    if (this._state === s || this._state === "closed") return;
    this._state = s;
    this.emitter.emit("state", s);
    if (s === "closed") for (const st of [...this.streams]) st.end();
  }

  private onClosed(conn: Connection, bye: string | undefined): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    this.delivery.drop();
    this.stopPing();
    if (bye === "too_large") this.sender.failTooLarge();
    this.outbox.requeueInflight();
    if (this.closing) return;
    if (this.opts.reconnect === false) {
      this.fatal(new DisconnectedError("connection", { cause: new Error(`connection lost${bye ? ` (bye ${bye})` : ""}`) }));
      return;
    }
    this.setState("connecting");
    this.scheduleReconnect();
  }

  /**
   * A new round of reconnecting, after the backoff delay: each address once,
   * starting with the one after the address last used, the next at once when
   * one fails (ReconnectOptions).
   */
  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    this.roundLeft = this.servers.length;
    this.reconnectTimer = setTimeout(() => void this.reconnect(), this.backoff.next());
  }

  private async reconnect(): Promise<void> {
    if (this.closing) return;
    this.at = (this.at + 1) % this.servers.length;
    this.roundLeft--;
    let conn: Connection;
    try {
      conn = await this.dial(this.servers[this.at]!);
    } catch {
      if (this.closing) return;
      if (this.roundLeft > 0) {
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = setTimeout(() => void this.reconnect(), 0);
      } else this.scheduleReconnect();
      return;
    }
    if (this.closing) {
      conn.terminate();
      return;
    }
    this.conn = conn;
    this.setState("open");
    this.startPing();
    if (this.creds) await this.resume(conn, true);
    else {
      this.backoff.reset();
      this.sender.flush();
    }
  }

  /**
   * Brings a logged-in connection to `ready`: log in with the token (after a
   * reconnect), then catch up: a `sync` from the cursor with live pushes held
   * back, or, for a login "now", find the tail while pushes flow.
   */
  private async resume(conn: Connection, relogin: boolean): Promise<void> {
    this.setState("syncing");
    const creds = this.creds!;
    // Hold live pushes from before the login's reply can arrive (see login()).
    if (!this.needTail) this.delivery.hold();
    try {
      if (relogin) {
        const r = (await conn.request({ t: "login", user: creds.user, token: creds.token }, this.opts.requestTimeoutMs)) as Partial<LoginResult>;
        if (conn === this.conn && r.limits) this.limitsNow = r.limits;
      }
      if (conn !== this.conn) return;
      const sync = (after: number, limit: number) =>
        conn.request({ t: "sync", after, limit }, this.opts.requestTimeoutMs) as Promise<unknown> as Promise<Page>;
      if (this.needTail) {
        // Pushes are delivered as they come: each is newer than the login. If one
        // came, the stream has its start and everything after it will follow, in
        // order (also if the connection falls behind, §5.4). If none came, start
        // after the tail: a mid that existed, so nothing committed later is below it.
        const before = this.delivery.cursor;
        // The login reply says where live pushes begin; a server that does not is probed.
        const tail = this.loginMid ?? (await findTail(sync));
        if (conn !== this.conn) return;
        if (this.delivery.cursor === before) this.delivery.moveTo(Math.max(before, tail));
        this.needTail = false;
      } else {
        for await (const page of syncPages(sync, this.delivery.cursor, this.opts.syncPageSize)) {
          if (conn !== this.conn) return;
          for (const m of page) this.delivery.deliver(m);
        }
        if (conn !== this.conn) return;
        this.delivery.release();
      }
    } catch (e) {
      if (conn !== this.conn) return;
      if (e instanceof ChatError && e.code === "unauthorized") {
        this.fatal(e); // the token was revoked or expired: only the app can log in again
        return;
      }
      conn.terminate(); // anything else: drop this connection and try again
      return;
    }
    this.backoff.reset();
    this.setState("ready");
    this.sender.flush();
  }

  private fatal(err: Error): void {
    this.emitter.emit("error", err);
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.stopPing();
    this.outbox.failAll(() => new ClosedError("send", { cause: err }));
    const conn = this.conn;
    this.conn = undefined;
    conn?.terminate();
    this.setState("closed");
  }

  private startPing(): void {
    this.stopPing();
    if (this.opts.pingIntervalMs <= 0) return;
    this.pingTimer = setInterval(() => {
      const conn = this.conn;
      if (!conn || this.pinging) return;
      this.pinging = true;
      conn
        .request({ t: "ping" }, this.opts.requestTimeoutMs)
        .catch((e) => {
          if (e instanceof TimeoutError) conn.terminate(); // silent network failure: reconnect
        })
        .finally(() => (this.pinging = false));
    }, this.opts.pingIntervalMs);
  }

  private stopPing(): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  // ---- pushes ---------------------------------------------------------------

  /** One entry of the log, delivered once and in order: `entry`, then its own event (PROTOCOL.md §3.5). */
  private emitEntry(m: ChatMessage): void {
    const e = this.emitter;
    e.emit("entry", m);
    const where = m.group !== undefined ? { group: m.group } : { user: m.user };
    switch (m.kind) {
      case undefined:
        e.emit("msg", m);
        return;
      case "edit":
        e.emit("edit", { ...where, mid: m.mid, ts: m.ts, from: m.from, ref: m.ref!, text: m.text });
        return;
      case "delete":
        e.emit("delete", { ...where, mid: m.mid, ts: m.ts, from: m.from, ref: m.ref! });
        return;
      case "react":
      case "unreact":
        e.emit("reaction", { ...where, mid: m.mid, ts: m.ts, from: m.from, ref: m.ref!, emoji: m.emoji ?? "", add: m.kind === "react" });
        return;
      case "read":
        e.emit("read", { ...where, mid: m.mid, ts: m.ts, read: m.ref! });
        return;
    }
    if (isGroupKind(m.kind) && m.group !== undefined) {
      const g: GroupEvent = { group: m.group, mid: m.mid, ts: m.ts, from: m.from, kind: m.kind, target: m.target ?? m.from };
      if (m.role !== undefined) g.role = m.role;
      if (m.until !== undefined) g.until = m.until;
      if (m.settings !== undefined) g.settings = m.settings;
      e.emit("group", g);
    }
  }

  private onPush(conn: Connection, p: Push): void {
    if (conn !== this.conn) return;
    switch (p.t) {
      case "msg": {
        const { t: _t, ...m } = p;
        this.delivery.live(m);
        return;
      }
      case "presence":
        this.emitter.emit("presence", { user: p.user, online: p.online });
        return;
      case "typing": {
        const { t: _t, ...e } = p;
        this.emitter.emit("typing", e);
        return;
      }
      case "bye":
        this.emitter.emit("bye", { reason: p.reason });
        return;
    }
  }
}
