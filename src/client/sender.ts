// Writing sends from the outbox: oldest first, each with its cid, checked for
// size, retried after a retryable refusal, settled by its ack.
import type { Connection } from "./connection.ts";
import { ChatError, TooLargeError } from "./errors.ts";
import type { Outbox, OutboxEntry } from "./outbox.ts";
import type { ChatMessage, Replies } from "./types.ts";

export interface SenderOptions {
  maxRequestFrame: number;
  sendRetries: number;
}

export class Sender {
  constructor(
    private readonly outbox: Outbox,
    private readonly opts: SenderOptions,
    /** The connection sends may go out on now, if any. */
    private readonly ready: () => Connection | undefined,
    private readonly me: () => string | undefined,
    /** A send was acknowledged as `mid`. */
    private readonly acked: (mid: number) => void,
  ) {}

  /** Writes every queued send, in order, if they can go now. */
  flush(): void {
    const conn = this.ready();
    if (!conn) return;
    for (const e of this.outbox.queued()) this.transmit(conn, e);
  }

  /**
   * The server closed the connection for an oversized frame (PROTOCOL.md §1): the
   * biggest send in flight was over its limit (every frame before the culprit was
   * under it; any bigger one is over it too). Fail it rather than resend it forever.
   */
  failTooLarge(): void {
    const culprit = this.outbox.inflight().reduce<OutboxEntry | undefined>((a, e) => (!a || e.frameSize > a.frameSize ? e : a), undefined);
    if (culprit) {
      this.outbox.fail(culprit, new TooLargeError("too_large", `the frame of ${culprit.frameSize} bytes was over the server's limit`, "send"));
    }
  }

  private transmit(conn: Connection, e: OutboxEntry): void {
    const { group, user, text, file, cid, reply } = e.input;
    e.state = "inflight";
    const check = (size: number) => {
      e.frameSize = size;
      if (size <= this.opts.maxRequestFrame) return undefined;
      return new TooLargeError("too_large", `the message is ${size} bytes, over maxRequestFrame (${this.opts.maxRequestFrame})`, "send");
    };
    // No timeout on the wire: a send waits for its ack as long as the connection lives
    // (the keepalive ping notices a dead one); SendOptions.timeoutMs is the app's limit.
    // The file as the wire has it (PROTOCOL.md §3.4): the upload, named; its size and hash stay here.
    const wireFile = file && { upload: file.upload, name: file.name, type: file.type };
    conn.request({ t: "send", group, user, text, file: wireFile, cid, reply }, 0, check).then(
      (r) => {
        const ack = r as Replies["send"];
        if (!this.outbox.has(e)) return; // settled from a sync page, or timed out
        this.acked(ack.mid);
        const m: ChatMessage = { mid: ack.mid, ts: ack.ts, from: this.me() ?? "" };
        if (group !== undefined) m.group = group;
        if (user !== undefined) m.user = user;
        if (text !== undefined) m.text = text;
        if (file !== undefined) m.file = { name: file.name, type: file.type, size: file.size ?? 0, sha256: file.sha256 ?? "" };
        m.cid = cid;
        if (reply !== undefined) m.reply = reply;
        this.outbox.settle(e, m);
      },
      (err) => {
        if (!this.outbox.has(e)) return;
        if (err instanceof ChatError) {
          if (err.retryable && e.retries < this.opts.sendRetries) {
            e.retries++;
            e.state = "queued";
            setTimeout(() => this.flush(), 100 * 2 ** e.retries);
            return;
          }
          this.outbox.fail(e, err);
          return;
        }
        e.state = "queued"; // DisconnectedError: sent again after the reconnect
      },
    );
  }
}
