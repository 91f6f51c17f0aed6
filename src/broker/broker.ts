// The seam between a committed message and its delivery to sessions. The core
// hands every committed message to `publish`, once, with its `msg` push encoded
// once; the broker calls the delivery callback (`subscribe`) on every node that
// serves sessions, and that callback fans the same bytes out to the node's own
// sessions (src/core/chat.ts, `deliver`). The local broker (local.ts) is one node:
// publish calls deliver at once. A broker between nodes publishes once per message,
// not once per recipient, and delivers on each node.

/** One committed message, as it travels from its commit to every node's sessions. */
export interface Delivery {
  /** Its id: deliveries of one publisher come in increasing mid order. */
  mid: number;
  /** The `msg` push (PROTOCOL.md §5.1), encoded once: every recipient session gets these bytes. */
  frame: Uint8Array;
  /** The sender (a direct message goes to the sender's other sessions too). */
  from: string;
  /** A group message: every member's sessions. Exactly one of `group` and `to` is set. */
  group?: string;
  /** A direct message: the addressee's sessions (and the sender's). */
  to?: string;
  /**
   * The id of the session that sent it, which has its `ok` and gets no push (§5.1).
   * Meaningful on the node that published it only: a broker delivering on other nodes
   * must drop it there.
   */
  skip?: number;
}

export interface Broker {
  /** Hands one committed message on for delivery. Called in mid order, once per message. */
  publish(d: Delivery): void;
  /** Sets this node's delivery callback (one per node): it pushes `d` to the node's sessions. */
  subscribe(deliver: (d: Delivery) => void): void;
  /** Stops delivering. */
  close(): Promise<void>;
}
