// In-memory routing: who is online where, and who is in which group.
// Loaded from the store at start; every membership change goes to the store
// first and then here, so the two stay in step.

/** What the hub needs of a session: its user and a way to send it bytes. */
export interface Routable {
  /** Unique among the sessions of this process (from 1): what a delivery's `skip` names. */
  readonly id: number;
  readonly user: string | undefined;
  send(frame: Uint8Array): void;
  /** A committed message's push: the session may skip it if it is behind (it will replay it). */
  push(frame: Uint8Array, mid: number): void;
}

export class Hub<S extends Routable = Routable> {
  /** user -> open, logged-in sessions */
  private readonly sessions = new Map<string, Set<S>>();
  /** group -> member names */
  private readonly members = new Map<string, Set<string>>();
  /** user -> groups, for presence */
  private readonly groupsOf = new Map<string, Set<string>>();
  /**
   * group -> every open session of its members, as a flat array: the fan-out loop of a
   * message walks one array instead of a Map lookup and a Set iterator per member
   * (measured 72 -> 50 ns per delivery at 1000 members). Built by a group's first
   * message after a membership change; a login or a close adds or removes its one
   * session in the arrays that exist, so a login does not cost a rebuild of every group
   * of its user (issue #10: 49 ms per login for a user in 200k groups).
   */
  private readonly fanout = new Map<string, S[]>();
  /** Fan-out arrays built so far (for tests: logins and closes must not cause rebuilds). */
  fanoutBuilds = 0;
  /** "group\0user" -> muted until (ms): the members who may not send there (PROTOCOL.md §3.3). */
  private readonly muted = new Map<string, number>();

  load(memberships: Iterable<{ grp: string; user: string; muted?: number }>): void {
    for (const { grp, user, muted } of memberships) {
      this.addMember(grp, user);
      if (muted) this.setMuted(grp, user, muted);
    }
  }

  /** Replaces every membership with these (the store's, after a node missed changes). */
  reload(memberships: Iterable<{ grp: string; user: string; muted?: number }>): void {
    this.members.clear();
    this.groupsOf.clear();
    this.fanout.clear();
    this.muted.clear();
    this.load(memberships);
  }

  /** `user` may not send in `grp` until `until` (ms); 0: they may. */
  setMuted(grp: string, user: string, until: number): void {
    if (until > 0) this.muted.set(`${grp}\0${user}`, until);
    else this.muted.delete(`${grp}\0${user}`);
  }

  /** Until when `user` is muted in `grp` (ms), if they are at `now`. */
  mutedUntil(grp: string, user: string, now: number): number | undefined {
    if (this.muted.size === 0) return undefined;
    const until = this.muted.get(`${grp}\0${user}`);
    return until !== undefined && until > now ? until : undefined;
  }

  addMember(grp: string, user: string): void {
    let m = this.members.get(grp);
    if (!m) this.members.set(grp, (m = new Set()));
    m.add(user);
    let g = this.groupsOf.get(user);
    if (!g) this.groupsOf.set(user, (g = new Set()));
    g.add(grp);
    this.fanout.delete(grp);
  }

  removeMember(grp: string, user: string): void {
    this.muted.delete(`${grp}\0${user}`);
    this.members.get(grp)?.delete(user);
    this.groupsOf.get(user)?.delete(grp);
    this.fanout.delete(grp);
  }

  /** How many groups `user` is a member of. */
  groupCount(user: string): number {
    return this.groupsOf.get(user)?.size ?? 0;
  }

  isMember(grp: string, user: string): boolean {
    return this.members.get(grp)?.has(user) === true;
  }

  membersOf(grp: string): ReadonlySet<string> {
    return this.members.get(grp) ?? new Set();
  }

  /** Registers a logged-in session; true if it is the user's first. */
  attach(s: S): boolean {
    const user = s.user!;
    let set = this.sessions.get(user);
    if (!set) this.sessions.set(user, (set = new Set()));
    if (set.has(s)) return false;
    set.add(s);
    for (const grp of this.groupsOf.get(user) ?? []) this.fanout.get(grp)?.push(s);
    return set.size === 1;
  }

  /** Forgets a session; true if it was the user's last. */
  detach(s: S, user: string): boolean {
    const set = this.sessions.get(user);
    if (!set || !set.delete(s)) return false;
    for (const grp of this.groupsOf.get(user) ?? []) {
      const targets = this.fanout.get(grp);
      if (!targets) continue;
      const i = targets.indexOf(s);
      if (i < 0) continue;
      targets[i] = targets[targets.length - 1]!; // order does not matter: swap with the last
      targets.pop();
    }
    if (set.size > 0) return false;
    this.sessions.delete(user);
    return true;
  }

  /** How many sessions `user` has logged in. */
  sessionCount(user: string): number {
    return this.sessions.get(user)?.size ?? 0;
  }

  sessionsOf(user: string): S[] {
    return [...(this.sessions.get(user) ?? [])];
  }

  online(user: string): boolean {
    return this.sessions.has(user);
  }

  /** Writes the same bytes to every session of `user`. */
  sendToUser(user: string, frame: Uint8Array): void {
    const set = this.sessions.get(user);
    if (!set) return;
    for (const s of set) s.send(frame);
  }

  /** Pushes message `mid` (the same bytes) to every session of `user`, except the one with id `skip`: how many. */
  pushToUser(user: string, frame: Uint8Array, mid: number, skip = 0): number {
    const set = this.sessions.get(user);
    if (!set) return 0;
    let n = 0;
    for (const s of set)
      if (s.id !== skip) {
        s.push(frame, mid);
        n++;
      }
    return n;
  }

  /** Pushes message `mid` (the same bytes) to every session of every member of `grp`, except the one with id `skip`: how many. */
  pushToGroup(grp: string, frame: Uint8Array, mid: number, skip = 0): number {
    let targets = this.fanout.get(grp);
    if (!targets) {
      targets = [];
      this.fanoutBuilds++;
      for (const user of this.members.get(grp) ?? []) for (const s of this.sessions.get(user) ?? []) targets.push(s);
      this.fanout.set(grp, targets);
    }
    let skipped = 0;
    for (let i = 0; i < targets.length; i++) {
      const s = targets[i]!;
      if (s.id !== skip) s.push(frame, mid);
      else skipped = 1;
    }
    return targets.length - skipped;
  }

  /** Online users sharing at least one group with `user`, not counting `user`. */
  coMembersOnline(user: string): Set<string> {
    const out = new Set<string>();
    for (const grp of this.groupsOf.get(user) ?? []) {
      for (const other of this.members.get(grp) ?? []) if (other !== user && this.sessions.has(other)) out.add(other);
    }
    return out;
  }
}
