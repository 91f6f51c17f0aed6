// Per-connection state. Created in the transport's `open`, never shared.
import type { Config } from "../config.ts";
import { type CostMeter, FRAME_OVERHEAD, type Transport, Writer } from "../io/writer.ts";
import { FrameDecoder, type FrameEvent } from "../protocol/frame.ts";
import type { Routable } from "./hub.ts";
import { Bucket } from "./limits.ts";

/** Seconds over which refused requests are counted against `--max-refused`. */
export const REFUSED_WINDOW = 10;

export interface SessionEvents {
  /** A frame, a refused (skipped) frame, or the fatal too_large. */
  frame(s: Session, ev: FrameEvent): void;
  /** A frame header arrived: read its body, or skip it unread (PROTOCOL.md §2.4). */
  admit(s: Session, length: number): "read" | "skip";
  /** The output queue passed `--max-queue`: the connection was terminated. */
  overflow(s: Session): void;
  /** Queued output was written at the end of a turn: the queue is shorter. */
  flushed(s: Session): void;
}

export class Session implements Routable {
  /** The logged-in user, once `login` succeeded. */
  user: string | undefined;
  /** SHA-256 of this session's login token, for `logout`. */
  tokenHash: string | undefined;
  readonly writer: Writer;
  /** Queued bytes past which message pushes are skipped and replayed later: half the hard bound. */
  readonly behindAt: number;
  readonly decoder: FrameDecoder;
  /** The limit key of the client's address (IPv6: its /64), for per-address limits. */
  readonly addr: string;
  /** An async request (login, register, one waiting for the store) is running: later frames wait in `held`, in order. */
  busy = false;
  /** The running async request caps `held` at --max-held (login, register, passwd, a read after own sends; PROTOCOL.md §2.3). */
  capHeld = false;
  /** A replay of what it missed while behind is running (ChatCore.catchUp). */
  catchingUp = false;
  readonly held: Uint8Array[] = [];
  /** Bytes in `held`. */
  heldBytes = 0;
  /** The connection is gone, or going: no more input is handled. */
  closed = false;
  /** Why it was closed (a `bye` reason, or what closed it without one), for logs and metrics. */
  closeReason: string | undefined;
  /** How the close is logged (`closed, behind for 60 s`...). */
  closeNote: string | undefined;
  /** performance.now() of the connection's start and of its last frame, for the login and idle timeouts. */
  readonly openedAt: number;
  lastFrameAt: number;
  /** performance.now() of the last bytes received, for telling a stalled partial frame. */
  lastReadAt: number;
  /** The highest mid pushed (queued) to this connection as `msg`. */
  lastPushedMid = 0;
  /** performance.now() when the connection fell behind (PROTOCOL.md §5.4), or 0 while it keeps up. */
  behindSince = 0;
  /** The highest mid whose push was skipped because the connection was behind: the replay owes it. */
  lastSkippedMid = 0;
  /** Request rate limits (PROTOCOL.md §2.4), charged when a frame's header arrives. */
  readonly msgBucket: Bucket;
  readonly byteBucket: Bucket;
  /** The request rates this connection shares with the others of its address (set by the core at open). */
  addrLimits?: { msgs: Bucket; bytes: Bucket };
  /** Requests refused for a limit; running out closes the connection (`--max-refused`). */
  readonly refusals: Bucket;
  /** performance.now() when this connection's typing in a conversation ("g:<group>", "u:<user>") was last passed on. */
  readonly typingAt = new Map<string, number>();
  /** The frame being received was refused at its header but read (it is small) so its `id` can be answered. */
  refuseNext = false;
  /** Reading from the socket is paused (its output is not being read, or the server is over its budget). */
  readPaused = false;
  /** `writer.written` at the last sweep, and the bytes written between the last two sweeps. */
  private writtenAtSweep = 0;
  drainedLastSecond = Number.POSITIVE_INFINITY;
  /** Bytes received, ever; at the last sweep; between the last two sweeps. */
  received = 0;
  private receivedAtSweep = 0;
  receivedLastSecond = Number.POSITIVE_INFINITY;
  private readonly loginMax: number;
  private readonly maxFrame: number;

  constructor(
    readonly id: number,
    readonly transport: Transport,
    addr: string,
    config: Config,
    events: SessionEvents,
    private readonly meter: CostMeter,
  ) {
    this.addr = addr;
    this.writer = new Writer(transport, config.maxQueue, () => events.overflow(this), meter, () => events.flushed(this));
    this.behindAt = Math.floor(config.maxQueue / 2);
    this.openedAt = this.lastFrameAt = this.lastReadAt = performance.now();
    this.msgBucket = new Bucket(config.rateMsgs, config.rateBurst, this.openedAt);
    this.byteBucket = new Bucket(config.rateBytes, config.rateBurst, this.openedAt);
    this.refusals = new Bucket(config.maxRefused / REFUSED_WINDOW, REFUSED_WINDOW, this.openedAt);
    this.loginMax = Math.min(config.maxFrameLogin, config.maxFrame);
    this.maxFrame = config.maxFrame;
    this.decoder = new FrameDecoder(
      () => this.frameLimit,
      (ev) => events.frame(this, ev),
      { admit: (n) => events.admit(this, n), held: (d) => meter.add(d) },
    );
  }

  /** The largest frame body accepted now: a smaller limit until the connection has logged in (PROTOCOL.md §1). */
  get frameLimit(): number {
    return this.user === undefined ? this.loginMax : this.maxFrame;
  }

  /**
   * Memory this connection holds: unsent output, a partly received frame, requests held behind
   * a login, input left unread while a request waits for the store.
   */
  get cost(): number {
    return this.writer.cost + this.decoder.allocated + this.heldBytes + this.decoder.pending;
  }

  /** Input waiting to be handled: requests held behind a login, and input the decoder keeps while paused. */
  get waitingBytes(): number {
    return this.heldBytes + this.decoder.pending;
  }

  /** Keeps a frame that must wait behind an async request (copied: the body is a view of the read buffer). */
  hold(body: Uint8Array): void {
    this.held.push(body.slice());
    this.heldBytes += body.length;
    this.meter.add(body.length);
  }

  unhold(): Uint8Array | undefined {
    const b = this.held.shift();
    if (b !== undefined) {
      this.heldBytes -= b.length;
      this.meter.add(-b.length);
    }
    return b;
  }

  /** Lets go of everything held for input (the connection is gone). */
  releaseInput(): void {
    this.meter.add(-this.heldBytes);
    this.held.length = 0;
    this.heldBytes = 0;
    this.decoder.close();
  }

  /** Once a second: how many bytes the client read since the last sweep. */
  sample(): void {
    this.drainedLastSecond = this.writer.written - this.writtenAtSweep;
    this.writtenAtSweep = this.writer.written;
    this.receivedLastSecond = this.received - this.receivedAtSweep;
    this.receivedAtSweep = this.received;
  }

  /**
   * Whether this connection holds memory without making progress: output queued that the
   * client has not been reading (nothing for `stallMs`, or less than `minRate` bytes in the
   * last second while more than that is queued), or a partly received frame whose bytes
   * stopped coming or trickle (the same two tests) while the server is reading it. Only
   * such connections are shed when the server is over its budget.
   */
  stalled(now: number, stallMs: number, minRate: number): boolean {
    const w = this.writer;
    if (w.queued > 0 && (now - w.progressAt > stallMs || (w.cost > minRate && this.drainedLastSecond < minRate)))
      return true;
    const held = this.decoder.allocated;
    // A pause of the server's own (reading paused, or input left undecoded while a request waits) is no stall of the client's.
    if (held === 0 || this.readPaused || this.busy) return false;
    return now - this.lastReadAt > stallMs || (held > minRate && this.receivedLastSecond < minRate);
  }

  send(frame: Uint8Array): void {
    this.writer.send(frame);
  }

  /**
   * Queues a committed message's push, in mid order, unless the connection is behind
   * (PROTOCOL.md §5.4): then, or when this push would take the queue past `behindAt`,
   * it is skipped, to be replayed from the store when the reader has drained.
   */
  push(frame: Uint8Array, mid: number): void {
    // Sent already, by a replay from the store that read past it (ChatCore.missed).
    if (mid <= this.lastPushedMid) return;
    if (this.behindSince !== 0) {
      this.lastSkippedMid = mid;
      return;
    }
    if (this.writer.cost + frame.length + FRAME_OVERHEAD > this.behindAt) {
      // Only what the kernel refused makes a reader behind: hand it what is queued first.
      this.writer.flush();
      if (this.writer.cost + frame.length + FRAME_OVERHEAD > this.behindAt) {
        this.behindSince = performance.now();
        this.lastSkippedMid = mid;
        return;
      }
    }
    this.writer.send(frame);
    this.lastPushedMid = mid;
  }
}
