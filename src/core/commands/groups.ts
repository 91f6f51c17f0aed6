// join, leave, groups, members. PROTOCOL.md §3.3
import { ProtocolError } from "../../protocol/errors.ts";
import type { RequestOf } from "../../protocol/requests.ts";
import type { Command } from "../command.ts";
import type { ChatCore } from "../chat.ts";

/** Throws `not_found` for a missing group and `forbidden` for one `user` is not in. */
export function requireMember(core: ChatCore, grp: string, user: string): void {
  if (core.hub.isMember(grp, user)) return;
  if (!core.store.getGroup(grp)) throw new ProtocolError("not_found", `no group "${grp}"`);
  throw new ProtocolError("forbidden", `you are not a member of "${grp}"`);
}

export const join: Command<RequestOf<"join">> = {
  auth: true,
  run({ core, session }, req) {
    const user = session.user!;
    const now = Date.now();
    let created = false;
    const members = core.hub.membersOf(req.group);
    if (!members.has(user)) {
      if (members.size >= core.config.maxGroupSize)
        throw new ProtocolError("forbidden", `group "${req.group}" is full (${core.config.maxGroupSize} members)`);
      // Groups are permanent (PROTOCOL.md §3.3): without these caps one account could fill the database.
      const { maxGroupsPerUser, maxGroupsCreated } = core.config;
      if (core.store.groupCount(user) >= maxGroupsPerUser)
        throw new ProtocolError("forbidden", `you are in ${maxGroupsPerUser} groups already, the most allowed: leave one first`);
      if (!core.store.getGroup(req.group) && core.store.groupsCreatedBy(user) >= maxGroupsCreated)
        throw new ProtocolError("forbidden", `you have created ${maxGroupsCreated} groups, the most allowed`);
    }
    if (core.store.getGroup(req.group)) {
      core.store.addMember(req.group, user, now);
    } else {
      created = core.store.createGroup(req.group, user, now);
      if (!created) core.store.addMember(req.group, user, now);
    }
    core.hub.addMember(req.group, user);
    return { group: req.group, created, owner: core.store.getGroup(req.group)!.owner };
  },
};

export const leave: Command<RequestOf<"leave">> = {
  auth: true,
  run({ core, session }, req) {
    const user = session.user!;
    if (!core.store.removeMember(req.group, user))
      throw new ProtocolError("not_found", `you are not a member of "${req.group}"`);
    core.hub.removeMember(req.group, user);
    return { group: req.group };
  },
};

/** A list reply costs one request of the rate per this many entries beyond the first ones. */
export const REPLY_ITEMS_PER_REQUEST = 100;

export const groups: Command<RequestOf<"groups">> = {
  auth: true,
  run({ core, session }) {
    // One more request of the rate per 100 groups listed (PROTOCOL.md §2.4).
    core.chargeExtra(session, Math.floor(core.hub.groupCount(session.user!) / REPLY_ITEMS_PER_REQUEST));
    return { groups: core.store.userGroups(session.user!).map((g) => ({ group: g.name, owner: g.owner })) };
  },
};

export const members: Command<RequestOf<"members">> = {
  auth: true,
  run({ core, session }, req) {
    requireMember(core, req.group, session.user!);
    const all = core.hub.membersOf(req.group);
    // One more request of the rate per 100 members listed (PROTOCOL.md §2.4).
    core.chargeExtra(session, Math.floor(all.size / REPLY_ITEMS_PER_REQUEST));
    const names = [...all].sort();
    return { group: req.group, members: names.map((user) => ({ user, online: core.hub.online(user) })) };
  },
};
