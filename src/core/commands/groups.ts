// join, leave, groups, members. PROTOCOL.md §3.3
import { ProtocolError } from "../../protocol/errors.ts";
import type { RequestOf } from "../../protocol/requests.ts";
import type { Command, Context, Reply } from "../command.ts";

/**
 * Throws `not_found` for a missing group and `forbidden` for one `user` is not in. A member
 * is known from the hub at once (undefined: the fast path of `send`). Otherwise, in a
 * cluster, this node first catches up with the store (the user may have joined on another
 * node a moment ago: PROTOCOL.md §8) and looks again; then the store says which refusal.
 */
export function requireMember(ctx: Context, grp: string, user: string): Promise<void> | undefined {
  if (ctx.hub.isMember(grp, user)) return undefined;
  const refuse = () =>
    ctx.store.getGroup(grp).then((g) => {
      if (!g) throw new ProtocolError("not_found", `no group "${grp}"`);
      throw new ProtocolError("forbidden", `you are not a member of "${grp}"`);
    });
  const behind = ctx.caughtUp();
  if (behind === undefined) return refuse();
  return behind.then(() => (ctx.hub.isMember(grp, user) ? undefined : refuse()));
}

export const join: Command<RequestOf<"join">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const { store, config } = ctx;
    const user = session.user!;
    const now = Date.now();
    const members = ctx.hub.membersOf(req.group);
    const existing = await store.getGroup(req.group);
    if (!members.has(user)) {
      if (members.size >= config.maxGroupSize)
        throw new ProtocolError("forbidden", `group "${req.group}" is full (${config.maxGroupSize} members)`);
      // Groups are permanent (PROTOCOL.md §3.3): without these caps one account could fill the database.
      const { maxGroupsPerUser, maxGroupsCreated } = config;
      if ((await store.groupCount(user)) >= maxGroupsPerUser)
        throw new ProtocolError("forbidden", `you are in ${maxGroupsPerUser} groups already, the most allowed: leave one first`);
      if (!existing && (await store.groupsCreatedBy(user)) >= maxGroupsCreated)
        throw new ProtocolError("forbidden", `you have created ${maxGroupsCreated} groups, the most allowed`);
    }
    let created = false;
    let owner: string;
    let seq: number;
    if (existing) {
      seq = await store.addMember(req.group, user, now);
      owner = existing.owner;
    } else {
      seq = await store.createGroup(req.group, user, now);
      if (seq > 0) {
        created = true;
        owner = user;
      } else {
        // Another connection created it meanwhile: join it as a member.
        seq = await store.addMember(req.group, user, now);
        owner = (await store.getGroup(req.group))!.owner;
      }
    }
    // Routed from here on, on every node, in order with the messages (src/broker/broker.ts).
    if (seq > 0) await ctx.membership(seq, { kind: "join", group: req.group, user });
    return { group: req.group, created, owner };
  },
};

export const leave: Command<RequestOf<"leave">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const user = session.user!;
    const seq = await ctx.store.removeMember(req.group, user);
    if (seq === 0) throw new ProtocolError("not_found", `you are not a member of "${req.group}"`);
    await ctx.membership(seq, { kind: "leave", group: req.group, user });
    return { group: req.group };
  },
};

/** A list reply costs one request of the rate per this many entries beyond the first ones. */
export const REPLY_ITEMS_PER_REQUEST = 100;

export const groups: Command<RequestOf<"groups">> = {
  auth: true,
  async run(ctx, session): Promise<Reply> {
    // One more request of the rate per 100 groups listed (PROTOCOL.md §2.4).
    ctx.chargeExtra(session, Math.floor(ctx.hub.groupCount(session.user!) / REPLY_ITEMS_PER_REQUEST));
    const rows = await ctx.store.userGroups(session.user!);
    return { groups: rows.map((g) => ({ group: g.name, owner: g.owner })) };
  },
};

export const members: Command<RequestOf<"members">> = {
  auth: true,
  run(ctx, session, req) {
    const answer = (): Reply => {
      const all = ctx.hub.membersOf(req.group);
      // One more request of the rate per 100 members listed (PROTOCOL.md §2.4).
      ctx.chargeExtra(session, Math.floor(all.size / REPLY_ITEMS_PER_REQUEST));
      const names = [...all].sort();
      return { group: req.group, members: names.map((user) => ({ user, online: ctx.online(user) })) };
    };
    // In a cluster the list is this node's routing: caught up with the store first, so that a
    // join acknowledged on another node is in it (PROTOCOL.md §8).
    const behind = ctx.caughtUp();
    const check = () => requireMember(ctx, req.group, session.user!);
    if (behind !== undefined) return behind.then(() => check()).then(answer);
    // A member answers from the hub at once; a refusal comes from the store.
    const c = check();
    return c === undefined ? answer() : c.then(answer);
  },
};
