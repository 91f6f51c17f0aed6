// The seam between the store and the sessions. Every commit to the store (a batch of
// messages, or a membership change) has a number, its `seq` (src/store/store.ts,
// Committed): consecutive across every node that commits to that store. The core hands
// each of its commits to `commit` or `change`, once, with every message's `msg` push
// encoded once; the broker applies the commits of every node to this node, through the
// handler's callbacks, in seq order, so every node routes every message with the same
// memberships and pushes to each connection in mid order.
//
// local.ts is one node: a commit is applied at once, in the same call. nats.ts is a node
// of a cluster: it publishes a commit once (not once per recipient) and applies the other
// nodes' commits in seq order; a commit it cannot get (lost on the bus, or its node died
// between the commit and the publish) is `missed`: the node's sessions replay what they
// miss from the store (PROTOCOL.md §5.4, §8).

import type { DisconnectReason } from "../protocol/errors.ts";

/** One committed message, as it travels from its commit to every node's sessions. */
export interface Delivery {
  /** Its id: deliveries come in increasing mid order. */
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
   * A group change (PROTOCOL.md §3.3): the user it is about, whose sessions get it too, member or
   * not (the one who left, was kicked, banned or invited).
   */
  also?: string;
  /**
   * The id of the session that sent it, which has its `ok` and gets no push (§5.1).
   * Set on the node that committed it only.
   */
  skip?: number;
}

/**
 * A change to a group's routing, committed to the store with its own seq: `user` joined, left,
 * or is muted until `until` (0: no longer). "none": the change (a new topic, a role) leaves
 * routing as it is; it is applied in order all the same, with its entry's push.
 */
export interface Change {
  kind: "join" | "leave" | "mute" | "none";
  group: string;
  user: string;
  /** `mute`: until when (ms), 0 for unmuted. */
  until?: number;
}

/** `from` is typing in a group, or to one user: an ephemeral event, never stored (PROTOCOL.md §5.5). */
export interface Typing {
  from: string;
  /** Exactly one of `group` and `to` is set. */
  group?: string;
  to?: string;
}

/** What a broker calls on its node, in seq order for deliveries and changes. */
export interface BrokerHandler {
  /** Pushes one committed message to this node's recipient sessions. */
  deliver(d: Delivery): void;
  /** Applies a membership change to this node's routing. */
  change(c: Change): void;
  /**
   * This node may have missed commits up to `pos` (a seq it could not get from the bus):
   * it reloads its routing from the store and replays, from the store, what its sessions
   * are owed up to `pos.mid`. The broker applies nothing more until this resolves.
   */
  missed(pos: { seq: number; mid: number }): Promise<void>;
  /** `user`'s presence elsewhere in the cluster may have changed (Broker.onlineElsewhere). */
  presence(user: string): void;
  /**
   * `user`'s password changed on another node, or an operator kicked, banned or deleted them
   * there: close their sessions here with `bye {reason}` (default `password_changed`).
   */
  revoke(user: string, reason?: DisconnectReason): void;
  /** Someone on another node is typing: tell this node's recipients. */
  typing(t: Typing): void;
}

export interface Broker {
  /**
   * Starts applying commits after `seq` (the store's position, read before the node's routing
   * was loaded) through `handler`. Resolves once the broker is ready (for a cluster: subscribed).
   */
  start(handler: BrokerHandler, seq: number): Promise<void>;
  /** This node committed a batch: its seq, and its messages that are new (not duplicates), in mid order. */
  commit(seq: number, deliveries: Delivery[]): void;
  /**
   * This node committed a change to a group (seq > 0), with the push of its log entry (if any):
   * resolves once applied on this node. Every node applies the change to its routing, then
   * delivers the push (so a joiner gets their own join, and one who left gets the leave).
   */
  change(seq: number, c: Change, entry?: Delivery): Promise<void>;
  /**
   * This node's first session of `user` logged in (true), or its last one left (false). For a
   * login, a promise that resolves once the bus has the news (the login is answered after it,
   * so that a later close of another device, on another node, cannot overtake it).
   */
  presence(user: string, online: boolean): Promise<void> | undefined;
  /** Whether `user` has a session on another node. */
  onlineElsewhere(user: string): boolean;
  /** `user`'s password changed here (or an operator closed them): their sessions on other nodes are closed with `bye {reason}`. */
  revoke(user: string, reason?: DisconnectReason): void;
  /**
   * Someone is typing on this node (the core has told this node's recipients): the other nodes
   * tell theirs. At most once; not in order with commits (it is ephemeral).
   */
  typing(t: Typing): void;
  /**
   * Resolves once this node has applied every commit up to `seq` (or given up on it and
   * reloaded from the store). A node of a cluster may lag the store by the bus's latency:
   * a request about to refuse for want of a membership first waits for this.
   */
  whenApplied(seq: number): Promise<void>;
  /** Whether other nodes commit to the store (the node's routing can lag it). */
  readonly shared: boolean;
  /** Stops delivering. */
  close(): Promise<void>;
}
