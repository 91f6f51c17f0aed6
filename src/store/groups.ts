// Who may change a group, and how (PROTOCOL.md §3.3): every rule in one place.
//
// Each change to a group (a join, a kick, a ban, a new topic...) is decided here by `decide`,
// from what the store read inside the transaction that then applies it: so a rule holds
// against changes made at the same moment by other connections and other nodes of a cluster
// (their transactions are serialised by the store: SQLite's one writer, Postgres's seq row
// lock). The caps on counts (--max-group-size, --max-groups-per-user, --max-groups-created)
// are the core's, checked before (src/core/commands/groups.ts).
import { type GroupKind, MUTED_FOREVER, type WireSettings } from "../protocol/pushes.ts";

/** A member's rank in a group. The owner is the one `groups.owner` names. */
export type Role = "owner" | "admin" | "member";

/** What a change to a group does; each is also the `kind` of the entry it leaves in the group's log. */
export type GroupAction = GroupKind;

/** A group's settings (PROTOCOL.md §3.3): who may join, and what it is about. */
export type GroupSettings = WireSettings;

/** One change to a group, as the core asks the store for it (Store.groupOp). */
export interface GroupOp {
  action: GroupAction;
  group: string;
  /** Who does it. */
  by: string;
  /** Whom it is about (for create, join and leave: `by`). */
  target: string;
  /** `role`: the new role, "admin" or "member". */
  role?: "admin" | "member";
  /** `mute`: until when (ms); absent: until unmuted. */
  until?: number;
  /** `create` (the group's first settings) and `settings` (what changes). */
  settings?: GroupSettings;
}

/** A member as decide sees them. */
export interface MemberFacts {
  role: Role;
  /** Muted until (ms), 0 if not. */
  muted: number;
}

/** What the store read, in the transaction, for one GroupOp. */
export interface GroupFacts {
  group: { owner: string; public: boolean; topic?: string; description?: string } | undefined;
  /** `by`'s membership. */
  actor: MemberFacts | undefined;
  /** `target`'s membership. */
  target: MemberFacts | undefined;
  /** `target` is banned from the group. */
  banned: boolean;
  /** `target` has an open invitation. */
  invited: boolean;
  /** The group's members now. */
  members: number;
  /** The time of the change (ms), for mutes that ended. */
  now: number;
}

export type RefusalCode = "not_found" | "forbidden" | "conflict";

/** Why a change is refused, as a protocol error (PROTOCOL.md §4). */
export interface Refusal {
  code: RefusalCode;
  msg: string;
}

/** What decide says: do it, nothing to do (it is so already), or a refusal. */
export type Decision = "apply" | "noop" | Refusal;

/** A mute with no end is stored as this time, the protocol's (PROTOCOL.md §3.3, `members`). */
export const FOREVER = MUTED_FOREVER;

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

function refuse(code: RefusalCode, msg: string): Refusal {
  return { code, msg };
}

/** Moderators: the owner and admins. */
export function isModerator(m: MemberFacts | undefined): boolean {
  return m !== undefined && RANK[m.role] >= RANK.admin;
}

/** Whether a member is muted at `now`. */
export function isMuted(m: MemberFacts | undefined, now: number): boolean {
  return m !== undefined && m.muted > now;
}

/**
 * The one decision for every change to a group (PROTOCOL.md §3.3). A private group is not
 * found by those who are not in it and not invited, so that its name tells them nothing more
 * than `create` would (conflict).
 */
export function decide(op: GroupOp, f: GroupFacts): Decision {
  const g = f.group;
  const name = `#${op.group}`;
  if (op.action === "create") return g ? refuse("conflict", `${name} exists already`) : "apply";
  const hidden = () => refuse("not_found", `no group ${name}`);
  if (!g) return hidden();
  const self = op.target === op.by;

  if (op.action === "join") {
    if (f.target) return "noop";
    if (f.banned) return refuse("forbidden", `you are banned from ${name}`);
    if (!g.public && !f.invited && g.owner !== op.by) return hidden();
    return "apply";
  }
  if (op.action === "leave") {
    if (!f.target) return refuse("not_found", `you are not a member of ${name}`);
    if (f.target.role === "owner" && f.members > 1)
      return refuse("forbidden", `you own ${name}: hand it on first (transfer), or be its last member`);
    return "apply";
  }

  // Everything else is done by a member to another (or to the group): moderators only.
  if (!f.actor) return g.public || f.invited ? refuse("forbidden", `you are not a member of ${name}`) : hidden();
  if (op.action === "settings") {
    if (!isModerator(f.actor)) return refuse("forbidden", `only the owner and admins of ${name} can change its settings`);
    const st = op.settings ?? {};
    const same =
      (st.public === undefined || st.public === g.public) &&
      (st.topic === undefined || st.topic === g.topic) &&
      (st.description === undefined || st.description === g.description);
    return same ? "noop" : "apply";
  }
  if (op.action === "role" || op.action === "owner") {
    if (f.actor.role !== "owner") return refuse("forbidden", `only the owner of ${name} can ${op.action === "owner" ? "hand it on" : "change roles"}`);
    if (!f.target) return refuse("not_found", `${op.target} is not a member of ${name}`);
    if (self) return op.action === "owner" ? "noop" : refuse("forbidden", "the owner's role changes only by handing the group on (transfer)");
    if (op.action === "role" && f.target.role === op.role) return "noop";
    return "apply";
  }
  if (!isModerator(f.actor)) return refuse("forbidden", `only the owner and admins of ${name} can ${op.action}`);
  if (self) return refuse("forbidden", `you cannot ${op.action} yourself`);
  // Moderators act on those of lower rank only: admins on members, the owner on everyone.
  const outranks = (t: MemberFacts | undefined) => RANK[f.actor!.role] > RANK[t?.role ?? "member"];
  switch (op.action) {
    case "invite":
      if (f.target) return refuse("conflict", `${op.target} is a member of ${name} already`);
      if (f.banned) return refuse("forbidden", `${op.target} is banned from ${name}: unban them first`);
      return f.invited ? "noop" : "apply";
    case "kick":
      if (!f.target) return refuse("not_found", `${op.target} is not a member of ${name}`);
      return outranks(f.target) ? "apply" : refuse("forbidden", `you cannot kick ${op.target}, an ${f.target.role} of ${name}`);
    case "ban":
      if (!outranks(f.target)) return refuse("forbidden", `you cannot ban ${op.target}, an ${f.target!.role} of ${name}`);
      return f.banned && !f.target ? "noop" : "apply";
    case "unban":
      return f.banned ? "apply" : "noop";
    case "mute":
      if (!f.target) return refuse("not_found", `${op.target} is not a member of ${name}`);
      return outranks(f.target) ? "apply" : refuse("forbidden", `you cannot mute ${op.target}, an ${f.target.role} of ${name}`);
    case "unmute":
      if (!f.target) return refuse("not_found", `${op.target} is not a member of ${name}`);
      return isMuted(f.target, f.now) ? "apply" : "noop";
  }
  return refuse("forbidden", `unknown change ${op.action}`);
}

/**
 * One write a change to a group makes, in the group `op.group`. Each store applies a change's
 * effects (effectsOf) in order, in the transaction that decided it, so what a change does is
 * written here once, not once per store.
 */
export type Effect =
  /** The group's row: its owner and first settings (public unless `public: false`). */
  | { t: "group"; owner: string; settings: GroupSettings }
  /** A new member, whose read marker starts at the newest mid (PROTOCOL.md §3.6); their invitation is used up. */
  | { t: "member"; user: string; role: Role }
  | { t: "unmember"; user: string }
  | { t: "invite"; user: string; by: string }
  | { t: "uninvite"; user: string }
  | { t: "ban"; user: string; by: string }
  | { t: "unban"; user: string }
  /** Muted until (ms); 0: not muted. */
  | { t: "mute"; user: string; until: number }
  | { t: "role"; user: string; role: Role }
  /** The group's owner column. */
  | { t: "owner"; user: string }
  /** The settings given, each one set. */
  | { t: "settings"; settings: GroupSettings };

/** What a change `decide` applied writes, in order. */
export function effectsOf(op: GroupOp): Effect[] {
  const user = op.target;
  switch (op.action) {
    case "create":
      return [
        { t: "group", owner: user, settings: op.settings ?? {} },
        { t: "member", user, role: "owner" },
      ];
    case "join":
      return [{ t: "member", user, role: "member" }];
    case "leave":
    case "kick":
      return [{ t: "unmember", user }];
    case "invite":
      return [{ t: "invite", user, by: op.by }];
    case "ban":
      return [
        { t: "unmember", user },
        { t: "uninvite", user },
        { t: "ban", user, by: op.by },
      ];
    case "unban":
      return [{ t: "unban", user }];
    case "mute":
      return [{ t: "mute", user, until: op.until ?? FOREVER }];
    case "unmute":
      return [{ t: "mute", user, until: 0 }];
    case "role":
      return [{ t: "role", user, role: op.role! }];
    case "owner":
      // The old owner becomes an admin; the new one is no longer muted.
      return [
        { t: "role", user: op.by, role: "admin" },
        { t: "role", user, role: "owner" },
        { t: "mute", user, until: 0 },
        { t: "owner", user },
      ];
    case "settings":
      return [{ t: "settings", settings: op.settings ?? {} }];
  }
}

/**
 * How a change alters the routing of every node (Broker change): who is in, who is muted. Read
 * from its effects, so the routing changes as the store does (a transfer unmutes the new owner
 * in both). No change has more than one such effect.
 */
export function routingOf(op: GroupOp): { kind: "join" | "leave" | "mute" | "none"; until?: number } {
  for (const e of effectsOf(op)) {
    if (e.t === "member") return { kind: "join" };
    if (e.t === "unmember") return { kind: "leave" };
    if (e.t === "mute") return { kind: "mute", until: e.until };
  }
  return { kind: "none" };
}

/** An entry's `text` for a change: a role's name, the settings changed (JSON); none for the rest. */
export function entryText(op: GroupOp): string | undefined {
  if (op.action === "role") return op.role;
  if ((op.action === "settings" || op.action === "create") && op.settings) return JSON.stringify(op.settings);
  return undefined;
}
