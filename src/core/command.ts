// The command table's types. Each request type maps to one small handler that
// declares whether it needs a logged-in session; the shared checks (decode,
// `id`, `t`, login, field validation) run once in the dispatcher, before it.
import type { Request, RequestOf, RequestType } from "../protocol/requests.ts";
import type { ChatCore } from "./chat.ts";
import type { Session } from "./session.ts";

/** Fields of a successful reply, merged into `{t:"ok", id}`; a `t` of its own replaces "ok" (ping's "pong"). */
export type Reply = Record<string, unknown>;

/** Returned by a handler whose reply is sent later (send: after the commit). */
export const DEFER: unique symbol = Symbol("defer");

export type Result = Reply | typeof DEFER | Promise<Reply>;

export interface Context {
  core: ChatCore;
  session: Session;
}

export interface Command<R extends Request = Request> {
  /** Usable only after login (else `unauthorized`). */
  auth: boolean;
  run(ctx: Context, req: R): Result;
}

export type CommandTable = { [T in RequestType]: Command<RequestOf<T>> };
