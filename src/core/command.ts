// The command table's types. Each request type maps to one small handler that
// declares whether it needs a logged-in session; the shared checks (decode,
// `id`, `t`, login, field validation) run once in the dispatcher, before it.
// Handlers see the server only through `Context`: exactly what they use, which
// ChatCore implements (src/core/chat.ts). Nothing here imports chat.ts.
import type { Config } from "../config.ts";
import type { DisconnectReason } from "../protocol/errors.ts";
import type { Request, RequestOf, RequestType } from "../protocol/requests.ts";
import type { GroupOp } from "../store/groups.ts";
import type { NewMessage, Store } from "../store/store.ts";
import type { LoginGuard } from "./guard.ts";
import type { Hub } from "./hub.ts";
import type { Session } from "./session.ts";

/** Fields of a successful reply, merged into `{t:"ok", id}`; a `t` of its own replaces "ok" (ping's "pong"). */
export type Reply = Record<string, unknown>;

/** Returned by a handler whose reply is sent later (send: after the commit). */
export const DEFER: unique symbol = Symbol("defer");

/**
 * A reply now, a reply later (the dispatcher holds the connection's later requests until it
 * settles, PROTOCOL.md §2.3), or DEFER, now or later.
 */
export type Result = Reply | typeof DEFER | Promise<Reply | typeof DEFER>;

/** What handlers may use of the server. */
export interface Context {
  readonly config: Config;
  readonly store: Store;
  /** Routing: who is online, who is in which group. Membership changes go to the store first, then here. */
  readonly hub: Hub<Session>;
  /** The login, passwd and register throttles (PROTOCOL.md §3.2). */
  readonly guard: LoginGuard;

  /** Queues a message for the next commit; `session` gets the ack (with request `id`) after it. */
  enqueue(session: Session, id: number | undefined, msg: NewMessage): void;
  /**
   * Resolves once this session's sends queued so far are committed (or failed), at once if it
   * has none: history and sync then include them (PROTOCOL.md §3.4). Undefined when none is
   * pending, so a handler can stay synchronous.
   */
  ownSendsSettled(session: Session): Promise<void> | undefined;

  /**
   * Commits a change to a group (Store.groupOp: decided by src/store/groups.ts), then applies it
   * to the routing of every node with its log entry's push to the group's members and to the
   * user it is about (not to `session`, which gets the reply). Throws the refusal as a protocol
   * error. Resolves with the entry's mid and ts, or undefined when nothing changed (it was so).
   */
  changeGroup(op: GroupOp, session?: Session): Promise<{ mid: number; ts: number } | undefined>;
  /**
   * In a cluster: resolves once this node has applied every commit the store held when it was
   * called (a join made on another node a moment ago, say). Undefined on a node of its own,
   * whose routing never lags its store.
   */
  caughtUp(): Promise<void> | undefined;
  /** Whether `user` has a logged-in session anywhere (on any node of a cluster). */
  online(user: string): boolean;
  /** Closes `user`'s sessions on the other nodes of a cluster with `bye password_changed`. */
  revokeElsewhere(user: string): void;
  /**
   * The session's user is typing in a conversation they may write to (checked): tells the
   * group's other members, or the addressee, on every node, unless the group is larger than
   * --typing-max-group or this connection told that conversation less than TYPING_EVERY_MS ago.
   */
  typing(session: Session, target: { group?: string; user?: string }): void;

  /** Routes a session that just logged in (`session.user` set): live pushes start now. */
  attach(session: Session): Promise<void> | undefined;
  /** Un-routes a session (logout). */
  detach(session: Session): void;
  /** Sends `bye {reason}` and closes the connection (PROTOCOL.md §5.3). */
  bye(session: Session, reason: DisconnectReason): void;
  /** Charges `extra` more requests of the connection's rates, or throws `rate_limited` (PROTOCOL.md §2.4). */
  chargeExtra(session: Session, extra: number): void;
  /**
   * Pays `bytes` of output (a history or sync page) from the connection's and address's byte
   * rates (PROTOCOL.md §2.4): undefined when they can pay now, else a promise that resolves
   * once they have (or the connection is gone).
   */
  paceOutput(session: Session, bytes: number): Promise<void> | undefined;
  /** Whether a user of that name exists: a boolean when known without the store, else a promise. */
  userExists(name: string): boolean | Promise<boolean>;
  /** Throws `internal` once the server is shutting down (after a wait, before writing). */
  assertRunning(): void;
}

export interface Command<R extends Request = Request> {
  /** Usable only after login (else `unauthorized`). */
  auth: boolean;
  /**
   * It may wait long (password hashing): requests held behind it are limited to `--max-held`
   * (PROTOCOL.md §2.3). Others that wait (for the store) hold later requests without that cap.
   */
  long?: boolean;
  run(ctx: Context, session: Session, req: R): Result;
}

export type CommandTable = { [T in RequestType]: Command<RequestOf<T>> };
