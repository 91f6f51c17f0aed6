// The server core over a fake transport: a connection object the core writes to,
// for tests that need no sockets (short writes, stuck readers, limits, timeouts).
import { expect } from "bun:test";
import { type Config, DEFAULTS } from "../../src/config.ts";
import { ChatCore, type Logger } from "../../src/core/chat.ts";
import type { Session } from "../../src/core/session.ts";
import type { Transport } from "../../src/io/writer.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/store.ts";
import { isGroupChange } from "./client.ts";
import { frameOf, type Msg, MsgReader } from "./wire.ts";

export const quiet: Logger = { info() {}, error() {} };

/** After the batcher's setImmediate and the writers' microtasks. */
export const turn = () => new Promise((r) => setImmediate(r));

export interface FakeConnOptions {
  remoteAddress?: string;
  /** Like a real socket, report the close to the core when ended or terminated. */
  reportClose?: boolean;
}

/** A connection whose kernel takes `accept` bytes per write (Infinity: all), recording what it took. */
export class FakeConn implements Transport {
  accept = Infinity;
  readonly reader = new MsgReader();
  ended = false;
  terminated = false;
  writes = 0;
  readonly remoteAddress: string;
  readonly session: Session;
  private readonly reportClose: boolean;

  constructor(
    readonly core: ChatCore,
    opts: FakeConnOptions = {},
  ) {
    this.remoteAddress = opts.remoteAddress ?? "127.0.0.1";
    this.reportClose = opts.reportClose ?? false;
    this.session = core.open(this);
  }
  write(data: Uint8Array): number {
    if (this.ended || this.terminated) return -1;
    this.writes++;
    const n = Math.min(this.accept, data.length);
    this.reader.push(data.subarray(0, n));
    return n;
  }
  end(): void {
    this.ended = true;
    if (this.reportClose) this.core.closed(this.session);
  }
  terminate(): void {
    this.terminated = true;
    if (this.reportClose) this.core.closed(this.session);
  }
  /** Reading paused by the core: like a socket, input waits (in `unread`) until resumed. */
  paused = false;
  readonly unread: Uint8Array[] = [];
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    while (!this.paused && this.unread.length > 0) this.core.data(this.session, this.unread.shift()!);
  }
  /** Bytes from the client, as a socket's `data` would deliver them (held while paused). */
  data(bytes: Uint8Array): void {
    if (this.paused) this.unread.push(bytes);
    else this.core.data(this.session, bytes);
  }
  get msgs(): Msg[] {
    return this.reader.msgs;
  }
  /** The `msg` pushes received that are not changes to a group (PROTOCOL.md §3.3): messages, edits, reactions... */
  get chat(): Msg[] {
    return this.reader.msgs.filter((m) => m.t === "msg" && !isGroupChange(m));
  }
  send(m: Msg): void {
    this.data(frameOf(m));
  }
  /** Sends and waits until the reply with this id arrived. */
  async req(m: Msg): Promise<Msg> {
    this.send(m);
    const deadline = Date.now() + 5000; // password hashing runs on a thread pool: wait by the clock
    while (Date.now() < deadline) {
      const r = this.msgs.find((x) => x.id === m.id);
      if (r) return r;
      await turn();
    }
    throw new Error(`no reply to ${JSON.stringify(m)}`);
  }
}

/** A core on a MemoryStore with cheap argon2 and `over` applied to the defaults. */
export function makeCore(over: Partial<Config> = {}, store: Store = new MemoryStore()): Promise<ChatCore> {
  return ChatCore.open({ ...DEFAULTS, hashMemory: 64, hashTime: 1, ...over }, store, quiet);
}

let ids = 1_000_000;
export const nextId = () => ids++;

/** A new connection, registered (if needed) and logged in as `name`. */
export async function loggedIn(core: ChatCore, name: string, opts: FakeConnOptions = {}): Promise<FakeConn> {
  const c = new FakeConn(core, opts);
  if (!(await core.userExists(name))) expect((await c.req({ t: "register", id: nextId(), user: name, pass: "password1" })).t).toBe("ok");
  expect((await c.req({ t: "login", id: nextId(), user: name, pass: "password1" })).t).toBe("ok");
  return c;
}
