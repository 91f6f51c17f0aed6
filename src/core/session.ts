// Per-connection state. Created in the transport's `open`, never shared.
import type { Config } from "../config.ts";
import { FrameDecoder, type FrameEvent } from "../protocol/frame.ts";
import type { Routable } from "./hub.ts";
import { Bucket } from "./limits.ts";
import { type Transport, Writer } from "./writer.ts";

export class Session implements Routable {
  /** The logged-in user, once `login` succeeded. */
  user: string | undefined;
  /** SHA-256 of this session's login token, for `logout`. */
  tokenHash: string | undefined;
  readonly writer: Writer;
  /** Queued bytes past which message pushes are skipped and replayed later: half the hard bound. */
  readonly behindAt: number;
  readonly decoder: FrameDecoder;
  /** An async request (login, register) is running: later frames wait in `held`, in order. */
  busy = false;
  readonly held: Uint8Array[] = [];
  /** The connection is gone, or going: no more input is handled. */
  closed = false;
  /** performance.now() of the connection's start and of its last frame, for the login and idle timeouts. */
  readonly openedAt: number;
  lastFrameAt: number;
  /** The highest mid pushed (queued) to this connection as `msg`. */
  lastPushedMid = 0;
  /** performance.now() when the connection fell behind (PROTOCOL.md §5.4), or 0 while it keeps up. */
  behindSince = 0;
  /** Request rate limits (PROTOCOL.md §2.4). */
  readonly msgBucket: Bucket;
  readonly byteBucket: Bucket;

  constructor(
    readonly id: number,
    readonly transport: Transport,
    config: Config,
    onEvent: (s: Session, ev: FrameEvent) => void,
    onOverflow: (s: Session) => void,
  ) {
    this.writer = new Writer(transport, config.maxQueue, () => onOverflow(this));
    this.behindAt = Math.floor(config.maxQueue / 2);
    this.openedAt = this.lastFrameAt = performance.now();
    this.msgBucket = new Bucket(config.rateMsgs, config.rateBurst, this.openedAt);
    this.byteBucket = new Bucket(config.rateBytes, config.rateBurst, this.openedAt);
    this.decoder = new FrameDecoder(config.maxFrame, (ev) => onEvent(this, ev));
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
    if (this.behindSince !== 0) return;
    if (this.writer.queued + frame.length > this.behindAt) {
      this.behindSince = performance.now();
      return;
    }
    this.writer.send(frame);
    this.lastPushedMid = mid;
  }
}
