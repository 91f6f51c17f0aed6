// An in-memory Store: same contract as the SQLite one, nothing survives a restart.
import { decide, effectsOf, type GroupOp, type MemberFacts } from "./groups.ts";
import type {
  BanRow,
  DirectoryRow,
  DmPolicy,
  GroupOpResult,
  InviteRow,
  MemberRow,
  MembershipRow,
  UserGroupRow,
  Committed,
  CommitResult,
  ConvState,
  EntryInfo,
  GroupRow,
  MidSize,
  NewMessage,
  Page,
  Position,
  Reaction,
  Store,
  StoredMessage,
  UserRow,
  FileUsage,
  MessageFile,
  UploadRow,
} from "./store.ts";
import { MemoryFiles } from "./memory-files.ts";
import { convOf, groupConv, groupEntry, matchesQuery, mentionsOf, messageSize, placement, previewText } from "./store.ts";

/** A stored entry and where it is placed (src/store/store.ts, placement). */
interface Row {
  m: StoredMessage;
  conv: string;
  grp: string | null;
  toUser: string | null;
  /** A message's stored file (MemoryFiles). */
  file?: number;
}

/** Index of the first row with mid > x, in an array sorted by mid. */
function firstAfter(list: Row[], x: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.m.mid <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function find(list: Row[] | undefined, mid: number): Row | undefined {
  if (!list) return undefined;
  const r = list[firstAfter(list, mid - 1)];
  return r?.m.mid === mid ? r : undefined;
}

function sized(m: StoredMessage): MidSize {
  return { mid: m.mid, size: messageSize(m) };
}

export class MemoryStore implements Store {
  private users = new Map<string, UserRow>();
  /** In insertion order. */
  private tokens = new Map<string, { user: string; created: number; expires: number }>();
  private groups = new Map<string, GroupRow>();
  /** group -> members, in join order, with their role and mute */
  private members = new Map<string, Map<string, MemberFacts>>();
  /** "group\0user" -> who banned them; who invited them */
  private groupBans = new Map<string, string>();
  private invites = new Map<string, string>();
  /** user -> whom they blocked */
  private blocks = new Map<string, Set<string>>();
  private policies = new Map<string, DmPolicy>();
  private all: Row[] = [];
  private byConv = new Map<string, Row[]>();
  private byCid = new Map<string, Row>();
  /** mid -> reactions, in the order they were added. */
  private reactions = new Map<number, Array<{ user: string; emoji: string }>>();
  /** mid -> the users its text mentions (group messages). */
  private mentions = new Map<number, { conv: string; users: string[] }>();
  /** "user\0conv" -> read marker */
  private reads = new Map<string, number>();
  /** user -> peer -> direct conversation key */
  private dmPeers = new Map<string, Map<string, string>>();
  /** The last commit's number (Committed.seq). */
  private seq = 0;
  private bansBy = new Map<string, BanRow>();
  /** The highest mid given, kept when the newest messages are deleted. */
  private highWater = 0;
  /** Files (PROTOCOL.md §3.9): which stored file each message holds is its row's `file`. */
  private readonly files = new MemoryFiles({
    holds: (id) => this.all.some((r) => r.file === id),
    fileBytesOf: (user) => this.all.reduce((n, r) => (r.file !== undefined && r.m.sender === user ? n + r.m.file!.size : n), 0),
  });

  async createUser(name: string, passHash: string): Promise<boolean> {
    if (this.users.has(name)) return false;
    this.users.set(name, { name, passHash });
    return true;
  }

  async getUser(name: string): Promise<UserRow | undefined> {
    const u = this.users.get(name);
    return u && u.passHash !== "" ? u : undefined; // "": an erased account
  }

  async addToken(hash: string, user: string, now: number, expires: number, maxPerUser?: number): Promise<void> {
    this.tokens.set(hash, { user, created: now, expires });
    if (maxPerUser === undefined) return;
    const mine = [...this.tokens].filter(([, t]) => t.user === user);
    if (mine.length <= maxPerUser) return;
    mine.sort((a, b) => a[1].created - b[1].created); // stable: insertion order within a millisecond
    for (const [h] of mine.slice(0, mine.length - maxPerUser)) this.tokens.delete(h);
  }

  async tokenUser(hash: string, now: number): Promise<string | undefined> {
    const t = this.tokens.get(hash);
    return t && t.expires > now ? t.user : undefined;
  }

  async deleteToken(hash: string): Promise<void> {
    this.tokens.delete(hash);
  }

  async deleteUserTokens(user: string): Promise<void> {
    for (const [h, t] of this.tokens) if (t.user === user) this.tokens.delete(h);
  }

  async setPassword(user: string, passHash: string): Promise<void> {
    const u = this.users.get(user);
    if (u) this.users.set(user, { name: user, passHash });
  }

  async createGroup(name: string, owner: string): Promise<number> {
    if (this.groups.has(name)) return 0;
    this.groups.set(name, { name, owner, public: true, topic: "", description: "" });
    this.members.set(name, new Map([[owner, { role: "owner", muted: 0 }]]));
    this.markJoined(name, owner);
    return ++this.seq;
  }

  async groupOp(op: GroupOp, now: number): Promise<GroupOpResult> {
    const g = this.groups.get(op.group);
    const ms = this.members.get(op.group);
    const key = `${op.group}\0${op.target}`;
    const d = decide(op, {
      group: g && { owner: g.owner, public: g.public, topic: g.topic, description: g.description },
      actor: ms?.get(op.by),
      target: ms?.get(op.target),
      banned: this.groupBans.has(key),
      invited: this.invites.has(key),
      members: ms?.size ?? 0,
      now,
    });
    if (d === "noop") return { seq: 0 };
    if (d !== "apply") return { seq: 0, refused: d };
    const grp = op.group;
    const k = (user: string) => `${grp}\0${user}`;
    const member = (user: string) => this.members.get(grp)!.get(user)!;
    for (const e of effectsOf(op)) {
      switch (e.t) {
        case "group":
          this.groups.set(grp, {
            name: grp,
            owner: e.owner,
            public: e.settings.public !== false,
            topic: e.settings.topic ?? "",
            description: e.settings.description ?? "",
          });
          this.members.set(grp, new Map());
          break;
        case "member":
          this.members.get(grp)!.set(e.user, { role: e.role, muted: 0 });
          this.invites.delete(k(e.user));
          this.markJoined(grp, e.user);
          break;
        case "unmember":
          this.members.get(grp)!.delete(e.user);
          break;
        case "invite":
          this.invites.set(k(e.user), e.by);
          break;
        case "uninvite":
          this.invites.delete(k(e.user));
          break;
        case "ban":
          this.groupBans.set(k(e.user), e.by);
          break;
        case "unban":
          this.groupBans.delete(k(e.user));
          break;
        case "mute":
          member(e.user).muted = e.until;
          break;
        case "role":
          member(e.user).role = e.role;
          break;
        case "owner":
          this.groups.get(grp)!.owner = e.user;
          break;
        case "settings": {
          const g = this.groups.get(grp)!;
          if (e.settings.public !== undefined) g.public = e.settings.public;
          if (e.settings.topic !== undefined) g.topic = e.settings.topic;
          if (e.settings.description !== undefined) g.description = e.settings.description;
          break;
        }
      }
    }
    const mid = this.last() + 1;
    const m: StoredMessage = { ...groupEntry(op), mid, ts: now };
    const row: Row = { m, conv: groupConv(grp), grp, toUser: null };
    this.all.push(row);
    let list = this.byConv.get(row.conv);
    if (!list) this.byConv.set(row.conv, (list = []));
    list.push(row);
    return { seq: ++this.seq, mid, ts: now, entry: { ...m } };
  }

  async member(grp: string, user: string): Promise<MemberRow | undefined> {
    const m = this.members.get(grp)?.get(user);
    return m && { user, role: m.role, muted: m.muted };
  }

  async groupMembers(grp: string): Promise<MemberRow[]> {
    return [...(this.members.get(grp) ?? [])]
      .map(([user, m]) => ({ user, role: m.role, muted: m.muted }))
      .sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  }

  async userInvites(user: string): Promise<InviteRow[]> {
    const out: InviteRow[] = [];
    for (const [k, by] of this.invites) {
      const [group, u] = k.split("\0") as [string, string];
      if (u === user) out.push({ group, by, topic: this.groups.get(group)?.topic ?? "" });
    }
    return out.sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  async standing(grp: string, user: string): Promise<{ banned: boolean; invited: boolean }> {
    const key = `${grp}\0${user}`;
    return { banned: this.groupBans.has(key), invited: this.invites.has(key) };
  }

  async listGroups(q: string | undefined, after: string, limit: number): Promise<DirectoryRow[]> {
    return [...this.groups.values()]
      .filter((g) => g.public && g.name > after && (q === undefined || g.name.includes(q.toLowerCase())))
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .slice(0, limit)
      .map((g) => ({ name: g.name, topic: g.topic, members: this.members.get(g.name)?.size ?? 0 }));
  }

  async setBlock(user: string, other: string, blocked: boolean): Promise<boolean> {
    let set = this.blocks.get(user);
    if (!blocked) return set?.delete(other) === true;
    if (!set) this.blocks.set(user, (set = new Set()));
    if (set.has(other)) return false;
    set.add(other);
    return true;
  }

  async blocked(user: string): Promise<string[]> {
    return [...(this.blocks.get(user) ?? [])].sort();
  }

  async setDmPolicy(user: string, policy: DmPolicy): Promise<void> {
    this.policies.set(user, policy);
  }

  async dmPolicy(user: string): Promise<DmPolicy> {
    return this.policies.get(user) ?? "anyone";
  }

  async dmAllowed(from: string, to: string): Promise<boolean> {
    if (from === to) return true;
    if (this.blocks.get(to)?.has(from)) return false;
    const p = this.policies.get(to) ?? "anyone";
    if (p === "anyone") return true;
    if (p === "nobody") return false;
    for (const ms of this.members.values()) if (ms.has(from) && ms.has(to)) return true;
    return false;
  }

  async getGroup(name: string): Promise<GroupRow | undefined> {
    const g = this.groups.get(name);
    return g && { ...g };
  }

  async addMember(grp: string, user: string): Promise<number> {
    const m = this.members.get(grp);
    if (!m || m.has(user)) return 0;
    m.set(user, { role: "member", muted: 0 });
    this.markJoined(grp, user);
    return ++this.seq;
  }

  /** A new member has read everything before their join (PROTOCOL.md §3.6). */
  private markJoined(grp: string, user: string): void {
    const key = `${user}\0${groupConv(grp)}`;
    this.reads.set(key, Math.max(this.reads.get(key) ?? 0, this.last()));
  }

  async removeMember(grp: string, user: string): Promise<number> {
    return this.members.get(grp)?.delete(user) ? ++this.seq : 0;
  }

  async groupsCreatedBy(owner: string): Promise<number> {
    let n = 0;
    for (const g of this.groups.values()) if (g.owner === owner) n++;
    return n;
  }

  async groupCount(user: string): Promise<number> {
    let n = 0;
    for (const users of this.members.values()) if (users.has(user)) n++;
    return n;
  }

  async allMemberships(): Promise<MembershipRow[]> {
    const out: MembershipRow[] = [];
    for (const [grp, users] of this.members) for (const [user, m] of users) out.push({ grp, user, muted: m.muted });
    return out;
  }

  async userGroups(user: string): Promise<UserGroupRow[]> {
    const out: UserGroupRow[] = [];
    for (const [grp, users] of this.members) {
      const m = users.get(user);
      if (m) out.push({ ...this.groups.get(grp)!, role: m.role });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async lastMid(): Promise<number> {
    return this.last();
  }

  async position(): Promise<Position> {
    return { seq: this.seq, mid: this.last() };
  }

  private last(): number {
    return Math.max(this.highWater, this.all.length ? this.all[this.all.length - 1]!.m.mid : 0);
  }

  async entryAt(conv: string, mid: number): Promise<EntryInfo | undefined> {
    const r = find(this.byConv.get(conv), mid);
    if (!r) return undefined;
    const info: EntryInfo = { sender: r.m.sender, deleted: r.m.deleted !== undefined };
    if (r.m.kind !== undefined) info.kind = r.m.kind;
    return info;
  }

  async readMarker(user: string, conv: string): Promise<number> {
    return this.reads.get(`${user}\0${conv}`) ?? 0;
  }

  async convs(user: string): Promise<ConvState[]> {
    const list: ConvState[] = [];
    for (const [grp, users] of this.members) if (users.has(user)) list.push(this.convState(user, groupConv(grp), { grp }));
    for (const [peer, conv] of this.dmPeers.get(user) ?? []) list.push(this.convState(user, conv, { peer }));
    return list;
  }

  private convState(user: string, conv: string, who: { grp?: string; peer?: string }): ConvState {
    const rows = this.byConv.get(conv) ?? [];
    const read = this.reads.get(`${user}\0${conv}`) ?? 0;
    let unread = 0;
    let mentions = 0;
    for (let i = firstAfter(rows, read); i < rows.length; i++) {
      const m = rows[i]!.m;
      if (m.kind !== undefined || m.deleted !== undefined || m.sender === user) continue;
      unread++;
      if (this.mentions.get(m.mid)?.users.includes(user)) mentions++;
    }
    const s: ConvState = { conv, ...who, last: rows.at(-1)?.m.mid ?? 0, read, unread, mentions };
    for (let i = rows.length - 1; i >= 0; i--) {
      const m = rows[i]!.m;
      if (m.kind !== undefined || m.deleted !== undefined) continue;
      s.preview = { mid: m.mid, ts: m.ts, sender: m.sender };
      if (m.text !== undefined) s.preview.text = previewText(m.text);
      if (m.file !== undefined) s.preview.file = { name: m.file.name, type: m.file.type, size: m.file.size };
      break;
    }
    return s;
  }

  async search(user: string, q: string, before: number, limit: number): Promise<MidSize[]> {
    const out: MidSize[] = [];
    for (let i = firstAfter(this.all, before - 1) - 1; i >= 0 && out.length < limit; i--) {
      const { m, grp, toUser } = this.all[i]!;
      if (m.kind !== undefined || m.deleted !== undefined) continue;
      const mine = grp !== null ? this.members.get(grp)?.has(user) === true : m.sender === user || toUser === user;
      if (mine && matchesQuery(m.text, q)) out.push(sized(m));
    }
    return out;
  }

  async commit(batch: NewMessage[], now: number): Promise<Committed> {
    let next = this.last();
    const out: CommitResult[] = [];
    for (const m of batch) {
      const key = m.cid !== undefined ? `${m.sender}\0${m.cid}` : undefined;
      const prior = key !== undefined ? this.byCid.get(key) : undefined;
      if (prior) {
        out.push({ mid: prior.m.mid, ts: prior.m.ts, duplicate: true });
        continue;
      }
      let target: Row | undefined;
      if (m.kind !== undefined && m.kind !== "read") {
        target = find(this.byConv.get(convOf(m)), m.ref!);
        if (!target || target.m.kind !== undefined || target.m.deleted !== undefined) {
          out.push({ mid: 0, ts: now, duplicate: false, refused: true });
          continue;
        }
      }
      let file: { file: number; size: number; sha256: string } | undefined;
      if (m.file?.upload !== undefined) {
        file = this.files.take(m.file.upload, m.sender);
        if (!file) {
          out.push({ mid: 0, ts: now, duplicate: false, refused: true });
          continue;
        }
      }
      const mid = ++next;
      const stored: StoredMessage = { ...m, mid, ts: now };
      if (m.file) stored.file = { name: m.file.name, type: m.file.type, size: file?.size ?? m.file.size, sha256: file?.sha256 ?? m.file.sha256 };
      if (m.kind === "read") stored.ref = Math.min(m.ref!, mid - 1);
      const p = placement(m);
      const row: Row = { m: stored, conv: p.conv, grp: p.grp, toUser: p.toUser };
      if (file) row.file = file.file;
      this.all.push(row);
      let list = this.byConv.get(p.conv);
      if (!list) this.byConv.set(p.conv, (list = []));
      list.push(row);
      if (key !== undefined) this.byCid.set(key, row);
      const result: CommitResult = { mid, ts: now, duplicate: false };
      const t = target?.m;
      switch (m.kind) {
        case undefined:
          if (m.grp !== undefined) this.setMentions(mid, p.conv, mentionsOf(m.text, m.sender));
          else this.addPeers(m.sender, m.toUser!, p.conv);
          break;
        case "edit":
          t!.text = m.text;
          t!.edited = now;
          if (t!.grp !== undefined) this.setMentions(t!.mid, p.conv, mentionsOf(m.text, t!.sender));
          break;
        case "delete": {
          const held = target!.file;
          delete target!.file;
          if (held !== undefined) this.files.dropUnused([held]);
          delete t!.text;
          delete t!.file;
          delete t!.edited;
          t!.deleted = now;
          for (const r of list) if (r.m.kind === "edit" && r.m.ref === t!.mid) delete r.m.text;
          this.reactions.delete(t!.mid);
          this.mentions.delete(t!.mid);
          break;
        }
        case "react":
        case "unreact": {
          const rs = this.reactions.get(t!.mid) ?? [];
          const i = rs.findIndex((r) => r.user === m.sender && r.emoji === m.text);
          if (m.kind === "react" && i < 0) rs.push({ user: m.sender, emoji: m.text! });
          if (m.kind === "unreact" && i >= 0) rs.splice(i, 1);
          if (rs.length > 0) this.reactions.set(t!.mid, rs);
          else this.reactions.delete(t!.mid);
          break;
        }
        case "read": {
          const k = `${m.sender}\0${p.about}`;
          const marker = Math.max(this.reads.get(k) ?? 0, stored.ref!);
          this.reads.set(k, marker);
          result.read = marker;
          break;
        }
      }
      out.push(result);
    }
    if (batch.length > 0) this.seq++;
    return { seq: this.seq, results: out };
  }

  private setMentions(mid: number, conv: string, users: string[]): void {
    if (users.length > 0) this.mentions.set(mid, { conv, users });
    else this.mentions.delete(mid);
  }

  private addPeers(a: string, b: string, conv: string): void {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      let m = this.dmPeers.get(x);
      if (!m) this.dmPeers.set(x, (m = new Map()));
      m.set(y, conv);
    }
  }

  /** A copy of a row's message as it is now, with its reactions: what callers get. */
  private out(r: Row): StoredMessage {
    const m: StoredMessage = { ...r.m };
    if (m.file) m.file = { ...m.file };
    const rs = this.reactions.get(m.mid);
    if (rs && m.kind === undefined) {
      const by = new Map<string, Reaction>();
      for (const { user, emoji } of rs) {
        let x = by.get(emoji);
        if (!x) by.set(emoji, (x = { emoji, users: [] }));
        x.users.push(user);
      }
      m.reactions = [...by.values()];
    }
    return m;
  }

  private historyRows(conv: string, page: Page): Row[] {
    const list = this.byConv.get(conv) ?? [];
    const start = page.after !== undefined ? firstAfter(list, page.after) : 0;
    const end = page.before !== undefined ? firstAfter(list, page.before - 1) : list.length;
    if (end <= start) return [];
    // With `after`, page forward from it; otherwise the newest page below `before`.
    return page.after !== undefined
      ? list.slice(start, Math.min(end, start + page.limit))
      : list.slice(Math.max(start, end - page.limit), end);
  }

  private syncRows(user: string, after: number, limit: number): Row[] {
    const out: Row[] = [];
    for (let i = firstAfter(this.all, after); i < this.all.length && out.length < limit; i++) {
      const r = this.all[i]!;
      const mine =
        r.grp !== null ? this.members.get(r.grp)?.has(user) === true || r.m.target === user : r.m.sender === user || r.toUser === user;
      if (mine) out.push(r);
    }
    return out;
  }

  async history(conv: string, page: Page): Promise<StoredMessage[]> {
    return this.historyRows(conv, page).map((r) => this.out(r));
  }

  async sync(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    return this.syncRows(user, after, limit).map((r) => this.out(r));
  }

  async historySizes(conv: string, page: Page): Promise<MidSize[]> {
    return this.historyRows(conv, page).map((r) => sized(r.m));
  }

  async syncSizes(user: string, after: number, limit: number): Promise<MidSize[]> {
    return this.syncRows(user, after, limit).map((r) => sized(r.m));
  }

  async messagesByMid(mids: readonly number[]): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (const mid of [...mids].sort((a, b) => a - b)) {
      const r = this.all[firstAfter(this.all, mid - 1)];
      if (r?.m.mid === mid && out.at(-1)?.mid !== mid) out.push(this.out(r));
    }
    return out;
  }

  // ---- operations ---------------------------------------------------------------

  async ban(user: string, reason: string, now: number): Promise<void> {
    this.bansBy.set(user, { user, reason, at: now });
  }

  async unban(user: string): Promise<boolean> {
    return this.bansBy.delete(user);
  }

  async banned(user: string): Promise<boolean> {
    return this.bansBy.has(user);
  }

  async bans(): Promise<BanRow[]> {
    return [...this.bansBy.values()].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  }

  /**
   * Deletes the entries that match, from every index, with their reactions and mentions;
   * returns how many.
   */
  private deleteWhere(pred: (r: Row) => boolean): number {
    this.highWater = this.last();
    const gone = new Set<number>();
    const held: number[] = [];
    this.all = this.all.filter((r) => {
      if (!pred(r)) return true;
      gone.add(r.m.mid);
      if (r.file !== undefined) held.push(r.file);
      return false;
    });
    if (gone.size === 0) return 0;
    const n = gone.size;
    // The edits, deletions and reactions about them go with them (from anyone).
    this.all = this.all.filter((r) => {
      const about = r.m.kind === "edit" || r.m.kind === "delete" || r.m.kind === "react" || r.m.kind === "unreact";
      if (!about || !gone.has(r.m.ref!)) return true;
      gone.add(r.m.mid);
      return false;
    });
    for (const [conv, list] of this.byConv) {
      const kept = list.filter((r) => !gone.has(r.m.mid));
      if (kept.length === 0) this.byConv.delete(conv);
      else this.byConv.set(conv, kept);
    }
    for (const [k, r] of this.byCid) if (gone.has(r.m.mid)) this.byCid.delete(k);
    this.files.dropUnused(held);
    for (const mid of gone) {
      this.reactions.delete(mid);
      this.mentions.delete(mid);
    }
    return n;
  }

  async eraseUser(user: string): Promise<number> {
    const n = this.deleteWhere((r) => r.m.sender === user);
    // What the user left on others' messages, and their own conversation state.
    for (const [mid, list] of this.reactions) {
      const kept = list.filter((x) => x.user !== user);
      if (kept.length === 0) this.reactions.delete(mid);
      else if (kept.length !== list.length) this.reactions.set(mid, kept);
    }
    for (const [mid, x] of this.mentions) {
      if (!x.users.includes(user)) continue;
      const users = x.users.filter((u) => u !== user);
      if (users.length === 0) this.mentions.delete(mid);
      else this.mentions.set(mid, { conv: x.conv, users });
    }
    for (const k of this.reads.keys()) if (k.startsWith(`${user}\0`)) this.reads.delete(k);
    this.dmPeers.delete(user);
    for (const k of this.invites.keys()) if (k.endsWith(`\0${user}`)) this.invites.delete(k);
    this.blocks.delete(user);
    for (const set of this.blocks.values()) set.delete(user);
    await this.deleteUserTokens(user);
    const u = this.users.get(user);
    if (u) this.users.set(user, { name: user, passHash: "" });
    return n;
  }

  async deleteGroup(name: string): Promise<number> {
    const n = this.deleteWhere((r) => r.grp === name);
    const conv = groupConv(name);
    for (const k of this.reads.keys()) if (k.endsWith(`\0${conv}`)) this.reads.delete(k);
    this.members.delete(name);
    for (const map of [this.invites, this.groupBans]) for (const k of map.keys()) if (k.startsWith(`${name}\0`)) map.delete(k);
    this.groups.delete(name);
    return n;
  }

  async userMessages(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (let i = firstAfter(this.all, after); i < this.all.length && out.length < limit; i++) {
      const r = this.all[i]!;
      if (r.m.sender === user || r.toUser === user) out.push(r.m);
    }
    return out;
  }

  async purge(before: number, limit: number): Promise<number> {
    const head = new Set(this.all.slice(0, limit).filter((r) => r.m.ts < before));
    return head.size === 0 ? 0 : this.deleteWhere((r) => head.has(r));
  }

  // ---- files (PROTOCOL.md §3.9; memory-files.ts) ---------------------------------

  async createUpload(id: string, user: string, size: number, sha256: string, now: number): Promise<UploadRow> {
    return this.files.createUpload(id, user, size, sha256, now);
  }

  async getUpload(id: string): Promise<UploadRow | undefined> {
    return this.files.getUpload(id);
  }

  async findUpload(user: string, sha256: string, size: number): Promise<UploadRow | undefined> {
    return this.files.findUpload(user, sha256, size);
  }

  async fileUsage(user: string): Promise<FileUsage> {
    return this.files.fileUsage(user);
  }

  async appendUpload(id: string, offset: number, data: Uint8Array, now: number): Promise<number | undefined> {
    return this.files.appendUpload(id, offset, data, now);
  }

  async finishUpload(id: string, now: number): Promise<UploadRow> {
    return this.files.finishUpload(id, now);
  }

  async resetUpload(id: string, now: number): Promise<void> {
    this.files.resetUpload(id, now);
  }

  async readFile(file: number, offset: number, len: number): Promise<Uint8Array> {
    return this.files.readFile(file, offset, len);
  }

  async messageFile(mid: number): Promise<MessageFile | undefined> {
    const r = find(this.all, mid);
    if (!r || r.file === undefined || r.m.kind !== undefined || r.m.deleted !== undefined) return undefined;
    return { conv: r.conv, file: r.file, size: r.m.file!.size, sha256: r.m.file!.sha256 };
  }

  async expireUploads(before: number): Promise<number> {
    return this.files.expireUploads(before);
  }

  async backup(): Promise<void> {
    throw new Error("an in-memory store cannot be backed up");
  }

  async maintain(now: number): Promise<void> {
    for (const [h, t] of this.tokens) if (t.expires <= now) this.tokens.delete(h);
  }

  async close(): Promise<void> {}
}
