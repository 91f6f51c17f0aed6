// Groups: create, join, leave, groups, members, list; moderation: invite, kick, ban, unban,
// mute, unmute, role, transfer, configure. PROTOCOL.md §3.3
//
// Who may do what is decided in one place, src/store/groups.ts, inside the store's transaction
// (ctx.changeGroup). The handlers here check the request's caps and shape the replies.
import { ProtocolError } from "../../protocol/errors.ts";
import type { RequestOf } from "../../protocol/requests.ts";
import type { GroupAction, GroupOp, GroupSettings } from "../../store/groups.ts";
import type { Command, Context, Reply } from "../command.ts";
import { requireMember, requireUser } from "./checks.ts";

/** The caps of §2.4 that a user's joining (not a member yet) or creating a group must fit. */
async function checkCaps(ctx: Context, user: string, group: string, creating: boolean): Promise<void> {
  const { config, store } = ctx;
  if (!creating && ctx.hub.membersOf(group).size >= config.maxGroupSize)
    throw new ProtocolError("forbidden", `group "${group}" is full (${config.maxGroupSize} members)`);
  // Without these caps one account could fill the database with groups.
  const { maxGroupsPerUser, maxGroupsCreated } = config;
  if ((await store.groupCount(user)) >= maxGroupsPerUser)
    throw new ProtocolError("forbidden", `you are in ${maxGroupsPerUser} groups already, the most allowed: leave one first`);
  if (creating && (await store.groupsCreatedBy(user)) >= maxGroupsCreated)
    throw new ProtocolError("forbidden", `you have created ${maxGroupsCreated} groups, the most allowed`);
}

/** The reply fields of a change: its entry's mid and ts, absent when nothing changed. */
function changed(r: { mid: number; ts: number } | undefined): Reply {
  return r === undefined ? {} : { mid: r.mid, ts: r.ts };
}

/** The settings a create or configure request gives. */
function settingsOf(req: GroupSettings): GroupSettings | undefined {
  const st: GroupSettings = {};
  if (req.public !== undefined) st.public = req.public;
  if (req.topic !== undefined) st.topic = req.topic;
  if (req.description !== undefined) st.description = req.description;
  return Object.keys(st).length > 0 ? st : undefined;
}

export const create: Command<RequestOf<"create">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const user = session.user!;
    await checkCaps(ctx, user, req.group, true);
    const op: GroupOp = { action: "create", group: req.group, by: user, target: user };
    const st = settingsOf(req);
    if (st) op.settings = st;
    const r = await ctx.changeGroup(op, session);
    return { group: req.group, ...changed(r) };
  },
};

export const join: Command<RequestOf<"join">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const user = session.user!;
    if (!ctx.hub.isMember(req.group, user)) await checkCaps(ctx, user, req.group, false);
    const r = await ctx.changeGroup({ action: "join", group: req.group, by: user, target: user }, session);
    const g = await ctx.store.getGroup(req.group);
    return { group: req.group, owner: g?.owner, topic: g?.topic, ...changed(r) };
  },
};

export const leave: Command<RequestOf<"leave">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const user = session.user!;
    const r = await ctx.changeGroup({ action: "leave", group: req.group, by: user, target: user }, session);
    return { group: req.group, ...changed(r) };
  },
};

/** A moderation request: `by` does `action` to `user` in `group` (decided by src/store/groups.ts). */
function moderation<T extends "invite" | "kick" | "ban" | "unban" | "mute" | "unmute" | "role" | "transfer">(
  action: GroupAction,
  extra?: (req: RequestOf<T>, op: GroupOp) => void,
): Command<RequestOf<T>> {
  return {
    auth: true,
    async run(ctx, session, req): Promise<Reply> {
      const r = req as unknown as { group: string; user: string };
      // The target must exist: a typo is not_found, not a ban of nobody.
      const exists = requireUser(ctx, r.user);
      if (exists !== undefined) await exists;
      const op: GroupOp = { action, group: r.group, by: session.user!, target: r.user };
      extra?.(req, op);
      const done = await ctx.changeGroup(op, session);
      return { group: r.group, user: r.user, ...changed(done) };
    },
  };
}

export const invite = moderation<"invite">("invite");
export const kick = moderation<"kick">("kick");
export const ban = moderation<"ban">("ban");
export const unban = moderation<"unban">("unban");
export const mute = moderation<"mute">("mute", (req, op) => {
  if (req.secs !== undefined && req.secs > 0) op.until = Date.now() + Math.min(req.secs, 10 * 365 * 86400) * 1000;
});
export const unmute = moderation<"unmute">("unmute");
export const role = moderation<"role">("role", (req, op) => {
  op.role = req.role;
});
export const transfer = moderation<"transfer">("owner");

export const configure: Command<RequestOf<"configure">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const st = settingsOf(req);
    if (!st) throw new ProtocolError("bad_request", "nothing to change: give 'public', 'topic' or 'description'");
    const user = session.user!;
    const r = await ctx.changeGroup({ action: "settings", group: req.group, by: user, target: user, settings: st }, session);
    return { group: req.group, ...changed(r) };
  },
};

/** A list reply costs one request of the rate per this many entries beyond the first ones. */
export const REPLY_ITEMS_PER_REQUEST = 100;

export const groups: Command<RequestOf<"groups">> = {
  auth: true,
  async run(ctx, session): Promise<Reply> {
    // One more request of the rate per 100 groups listed (PROTOCOL.md §2.4).
    ctx.chargeExtra(session, Math.floor(ctx.hub.groupCount(session.user!) / REPLY_ITEMS_PER_REQUEST));
    const [rows, invites] = await Promise.all([ctx.store.userGroups(session.user!), ctx.store.userInvites(session.user!)]);
    return {
      groups: rows.map((g) => ({
        group: g.name,
        owner: g.owner,
        role: g.role,
        public: g.public,
        topic: g.topic,
        description: g.description,
      })),
      invites: invites.map((i) => ({ group: i.group, by: i.by, topic: i.topic })),
    };
  },
};

export const members: Command<RequestOf<"members">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    // In a cluster, caught up with the store first, so that a join acknowledged on another
    // node is in it (PROTOCOL.md §8); the list itself is the store's.
    const behind = ctx.caughtUp();
    if (behind !== undefined) await behind;
    const check = requireMember(ctx, req.group, session.user!);
    if (check !== undefined) await check;
    const all = await ctx.store.groupMembers(req.group);
    // One more request of the rate per 100 members listed (PROTOCOL.md §2.4).
    ctx.chargeExtra(session, Math.floor(all.length / REPLY_ITEMS_PER_REQUEST));
    const now = Date.now();
    return {
      group: req.group,
      members: all.map((m) => {
        const out: Reply = { user: m.user, online: ctx.online(m.user), role: m.role };
        if (m.muted > now) out.muted = m.muted;
        return out;
      }),
    };
  },
};

/** `list` pages: default and largest. */
const LIST_DEFAULT = 100;

export const list: Command<RequestOf<"list">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const limit = Math.max(1, Math.min(req.limit ?? LIST_DEFAULT, ctx.config.maxPage));
    ctx.chargeExtra(session, Math.floor(limit / REPLY_ITEMS_PER_REQUEST));
    const rows = await ctx.store.listGroups(req.q, req.after ?? "", limit + 1);
    const more = rows.length > limit;
    return { groups: rows.slice(0, limit).map((g) => ({ group: g.name, topic: g.topic, members: g.members })), more };
  },
};
