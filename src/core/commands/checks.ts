// The checks requests share (PROTOCOL.md §2.2 step 8): a user that exists, a group one is a
// member of and not muted in, an addressee who takes one's direct messages, a conversation one
// may use. Each returns undefined when it passes at once (the hot path of `send` stays
// synchronous), or a promise when the store must answer first.
import { ProtocolError } from "../../protocol/errors.ts";
import type { Target } from "../../protocol/requests.ts";
import { FOREVER } from "../../store/groups.ts";
import type { Context } from "../command.ts";

/** Throws `not_found` for a user that does not exist: undefined when known at once, else a promise. */
export function requireUser(ctx: Context, user: string): Promise<void> | undefined {
  const known = ctx.userExists(user);
  if (known === true) return undefined;
  const missing = () => new ProtocolError("not_found", `no user "${user}"`);
  if (known === false) return Promise.reject(missing());
  return known.then((yes) => {
    if (!yes) throw missing();
  });
}

/**
 * The checks of a group message's sender: a member (requireMember), not muted (PROTOCOL.md §3.3).
 * Undefined when they pass at once.
 */
export function requireSender(ctx: Context, grp: string, me: string): Promise<void> | undefined {
  const member = requireMember(ctx, grp, me);
  if (member === undefined) return requireUnmuted(ctx, grp, me);
  return member.then(() => requireUnmuted(ctx, grp, me));
}

/** The checks of a direct message: the addressee exists and takes them from `me` (PROTOCOL.md §3.8). */
export async function requireDm(ctx: Context, me: string, to: string): Promise<void> {
  const exists = requireUser(ctx, to);
  if (exists !== undefined) await exists;
  await requireDmAllowed(ctx, me, to);
}

/**
 * Throws `not_found` for a missing group and `forbidden` for one `user` is not in. A member
 * is known from the hub at once (undefined: the fast path of `send`). Otherwise, in a
 * cluster, this node first catches up with the store (the user may have joined on another
 * node a moment ago: PROTOCOL.md §8) and looks again; then the store says which refusal.
 * A private group is `not_found` to those who are not in it and not invited.
 */
export function requireMember(ctx: Context, grp: string, user: string): Promise<void> | undefined {
  if (ctx.hub.isMember(grp, user)) return undefined;
  const refuse = () =>
    ctx.store.getGroup(grp).then(async (g) => {
      if (!g || (!g.public && !(await ctx.store.standing(grp, user)).invited))
        throw new ProtocolError("not_found", `no group "${grp}"`);
      throw new ProtocolError("forbidden", `you are not a member of "${grp}"`);
    });
  const behind = ctx.caughtUp();
  if (behind === undefined) return refuse();
  return behind.then(() => (ctx.hub.isMember(grp, user) ? undefined : refuse()));
}

/**
 * Refuses (`forbidden`) a member who is muted in `grp` now (PROTOCOL.md §3.3): undefined when
 * they are not (the fast path of `send`). As requireMember does before refusing, a node of a
 * cluster first catches up with the store (an unmute made on another node a moment ago) and
 * looks again.
 */
export function requireUnmuted(ctx: Context, grp: string, user: string): Promise<void> | undefined {
  if (ctx.hub.mutedUntil(grp, user, Date.now()) === undefined) return undefined;
  const refuse = () => {
    const until = ctx.hub.mutedUntil(grp, user, Date.now());
    if (until !== undefined)
      throw new ProtocolError("forbidden", `you are muted in "${grp}"${until < FOREVER ? ` until ${new Date(until).toISOString()}` : ""}`);
  };
  const behind = ctx.caughtUp();
  return behind === undefined ? Promise.resolve().then(refuse) : behind.then(refuse);
}

/** Throws `forbidden` when `to` does not take direct messages from the session's user (PROTOCOL.md §3.8). */
export async function requireDmAllowed(ctx: Context, me: string, to: string): Promise<void> {
  if (!(await ctx.store.dmAllowed(me, to))) throw new ProtocolError("forbidden", `${to} does not take direct messages from you`);
}

/**
 * The conversation a request names, checked as `send` checks it (PROTOCOL.md §3.4): a group the
 * caller is a member of (`forbidden`, `not_found`), or the direct conversation with an existing
 * user (`not_found`). Undefined when that is known at once, else a promise.
 */
export function requireConversation(ctx: Context, me: string, req: Target): Promise<void> | undefined {
  return req.group !== undefined ? requireMember(ctx, req.group, me) : requireUser(ctx, req.user!);
}
