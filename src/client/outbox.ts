// Sends that have not been acknowledged yet, in the order the app made them.
// An entry keeps its `cid` for life, so however often it is sent again (after a
// lost connection, or an `internal` error) the server stores it once and answers
// with the original mid (PROTOCOL.md §3.4, §6).
import type { ChatMessage, SendInput } from "./types.ts";

export interface OutboxEntry {
  readonly input: SendInput & { cid: string };
  /** `queued`: waiting to be written; `inflight`: written on the current connection, no reply yet. */
  state: "queued" | "inflight";
  /** Retries after retryable errors so far. */
  retries: number;
  /** Size of the last frame written for it, bytes (to find the culprit of a `bye too_large`). */
  frameSize: number;
  readonly resolve: (m: ChatMessage) => void;
  readonly reject: (e: Error) => void;
  readonly promise: Promise<ChatMessage>;
  timer?: ReturnType<typeof setTimeout>;
}

export class Outbox {
  private entries: OutboxEntry[] = [];
  private readonly byCid = new Map<string, OutboxEntry>();

  get size(): number {
    return this.entries.length;
  }

  add(input: SendInput & { cid: string }): { entry: OutboxEntry; promise: Promise<ChatMessage> } {
    const { promise, resolve, reject } = Promise.withResolvers<ChatMessage>();
    const entry: OutboxEntry = { input, state: "queued", retries: 0, frameSize: 0, resolve, reject, promise };
    this.entries.push(entry);
    this.byCid.set(input.cid, entry);
    return { entry, promise };
  }

  has(e: OutboxEntry): boolean {
    return this.byCid.get(e.input.cid) === e;
  }

  byCidOf(cid: string | undefined): OutboxEntry | undefined {
    return cid === undefined ? undefined : this.byCid.get(cid);
  }

  /** Entries waiting to be written, oldest first. */
  queued(): OutboxEntry[] {
    return this.entries.filter((e) => e.state === "queued");
  }

  inflight(): OutboxEntry[] {
    return this.entries.filter((e) => e.state === "inflight");
  }

  /** The connection is gone: whatever was in flight is sent again on the next one. */
  requeueInflight(): void {
    for (const e of this.entries) e.state = "queued";
  }

  /** Acknowledged (by its `ok`, or found in a `sync` page by its cid). */
  settle(e: OutboxEntry, m: ChatMessage): void {
    if (!this.remove(e)) return;
    e.resolve(m);
  }

  fail(e: OutboxEntry, err: Error): void {
    if (!this.remove(e)) return;
    e.reject(err);
  }

  /** Resolves when every entry present now is settled (acknowledged or failed). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.entries.map((e) => e.promise));
  }

  failAll(err: () => Error): void {
    for (const e of [...this.entries]) this.fail(e, err());
  }

  private remove(e: OutboxEntry): boolean {
    if (!this.has(e)) return false;
    clearTimeout(e.timer);
    this.byCid.delete(e.input.cid);
    this.entries = this.entries.filter((x) => x !== e);
    return true;
  }
}
