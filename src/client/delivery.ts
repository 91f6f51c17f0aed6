// Delivery of messages to the app, exactly once and in mid order (the rule is
// in index.ts). On one connection `msg` pushes come in increasing mid order,
// whether live or replayed after the connection fell behind (PROTOCOL.md §5.4),
// and so do `sync` pages; so a message is delivered only if its mid is above
// the cursor, the largest mid seen in that stream: that is both the dedupe and
// the order. During a catch-up live pushes are held, then released behind the
// `sync` pages.
//
// Acks are not part of that stream: a connection that fell behind gets the ack
// of its own send before the pushes of messages committed earlier, so an ack
// must not move the cursor. Its mid is remembered instead, so the message is
// skipped when it shows up in a replay or a `sync` page.
import type { Outbox } from "./outbox.ts";
import type { ChatMessage } from "./types.ts";

export class Delivery {
  /** Largest mid of the message stream (pushes, sync pages) delivered or skipped: the `sync` cursor (PROTOCOL.md §6). */
  cursor = 0;
  /** Mids of this client's acknowledged sends above the cursor. */
  private readonly own = new Set<number>();
  /** Live `msg` pushes held while a catch-up runs. */
  private held: ChatMessage[] | null = null;

  constructor(
    private readonly outbox: Outbox,
    /** The logged-in user, to recognise this client's own messages. */
    private readonly me: () => string | undefined,
    private readonly emit: (m: ChatMessage) => void,
  ) {}

  /** From now on, live pushes wait (a catch-up is starting, or a login that will start one). */
  hold(): void {
    this.held ??= [];
  }

  /** Delivers what was held (after the catch-up's pages) and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const m of held) this.deliver(m);
  }

  /** Forgets what was held: the connection is gone, the next catch-up will bring it. */
  drop(): void {
    this.held = null;
  }

  /** A live `msg` push. */
  live(m: ChatMessage): void {
    if (this.held) this.held.push(m);
    else this.deliver(m);
  }

  /** Puts the cursor at `mid`: the app's `since`, or the tail found at a login "now". */
  moveTo(mid: number): void {
    this.cursor = mid;
    this.prune();
  }

  /** A send of this client was acknowledged as `mid`: skip that message when the stream brings it. */
  acked(mid: number): void {
    if (mid > this.cursor) this.own.add(mid);
  }

  /**
   * The one place a message reaches the app. A message this client sent
   * (acknowledged, or found by its cid among the unacknowledged sends because
   * its ack was lost with a connection) is not delivered; in the second case it
   * settles its `send()`.
   */
  deliver(m: ChatMessage): void {
    if (m.mid <= this.cursor) return;
    this.cursor = m.mid;
    if (this.own.size > 0) {
      const mine = this.own.delete(m.mid);
      this.prune();
      if (mine) return;
    }
    if (m.from === this.me()) {
      const pending = this.outbox.byCidOf(m.cid);
      if (pending) {
        this.outbox.settle(pending, m);
        return;
      }
    }
    this.emit(m);
  }

  /** Own mids at or below the cursor can no longer come: the stream is past them. */
  private prune(): void {
    for (const mid of this.own) if (mid <= this.cursor) this.own.delete(mid);
  }
}
