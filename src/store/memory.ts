// An in-memory Store: same contract as the SQLite one, nothing survives a restart.
import type { BanRow, Committed, CommitResult, GroupRow, MidSize, NewMessage, Page, Position, Store, StoredMessage, UserRow } from "./store.ts";
import { convOf, messageSize } from "./store.ts";

/** Index of the first element with mid > x, in an array sorted by mid. */
function firstAfter(list: StoredMessage[], x: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.mid <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sized(m: StoredMessage): MidSize {
  return { mid: m.mid, size: messageSize(m) };
}

export class MemoryStore implements Store {
  private users = new Map<string, UserRow>();
  /** In insertion order. */
  private tokens = new Map<string, { user: string; created: number; expires: number }>();
  private groups = new Map<string, GroupRow>();
  /** group -> members, in join order */
  private members = new Map<string, Set<string>>();
  private all: StoredMessage[] = [];
  private byConv = new Map<string, StoredMessage[]>();
  private byCid = new Map<string, StoredMessage>();
  /** The last commit's number (Committed.seq). */
  private seq = 0;
  private bansBy = new Map<string, BanRow>();
  /** The highest mid given, kept when the newest messages are deleted. */
  private highWater = 0;

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
    this.groups.set(name, { name, owner });
    this.members.set(name, new Set([owner]));
    return ++this.seq;
  }

  async getGroup(name: string): Promise<GroupRow | undefined> {
    return this.groups.get(name);
  }

  async addMember(grp: string, user: string): Promise<number> {
    const m = this.members.get(grp);
    if (!m || m.has(user)) return 0;
    m.add(user);
    return ++this.seq;
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

  async allMemberships(): Promise<Array<{ grp: string; user: string }>> {
    const out: Array<{ grp: string; user: string }> = [];
    for (const [grp, users] of this.members) for (const user of users) out.push({ grp, user });
    return out;
  }

  async userGroups(user: string): Promise<GroupRow[]> {
    const out: GroupRow[] = [];
    for (const [grp, users] of this.members) if (users.has(user)) out.push(this.groups.get(grp)!);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async lastMid(): Promise<number> {
    return this.last();
  }

  async position(): Promise<Position> {
    return { seq: this.seq, mid: this.last() };
  }

  private last(): number {
    return Math.max(this.highWater, this.all.length ? this.all[this.all.length - 1]!.mid : 0);
  }

  async commit(batch: NewMessage[], now: number): Promise<Committed> {
    let next = this.last();
    const out: CommitResult[] = [];
    for (const m of batch) {
      const key = m.cid !== undefined ? `${m.sender}\0${m.cid}` : undefined;
      const prior = key !== undefined ? this.byCid.get(key) : undefined;
      if (prior) {
        out.push({ mid: prior.mid, ts: prior.ts, duplicate: true });
        continue;
      }
      const stored: StoredMessage = { ...m, mid: ++next, ts: now };
      this.all.push(stored);
      const conv = convOf(m);
      let list = this.byConv.get(conv);
      if (!list) this.byConv.set(conv, (list = []));
      list.push(stored);
      if (key !== undefined) this.byCid.set(key, stored);
      out.push({ mid: stored.mid, ts: now, duplicate: false });
    }
    if (batch.length > 0) this.seq++;
    return { seq: this.seq, results: out };
  }

  async history(conv: string, page: Page): Promise<StoredMessage[]> {
    const list = this.byConv.get(conv) ?? [];
    const start = page.after !== undefined ? firstAfter(list, page.after) : 0;
    const end = page.before !== undefined ? firstAfter(list, page.before - 1) : list.length;
    if (end <= start) return [];
    // With `after`, page forward from it; otherwise the newest page below `before`.
    return page.after !== undefined
      ? list.slice(start, Math.min(end, start + page.limit))
      : list.slice(Math.max(start, end - page.limit), end);
  }

  async sync(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (let i = firstAfter(this.all, after); i < this.all.length && out.length < limit; i++) {
      const m = this.all[i]!;
      const mine =
        m.grp !== undefined ? this.members.get(m.grp)?.has(user) === true : m.sender === user || m.toUser === user;
      if (mine) out.push(m);
    }
    return out;
  }

  async historySizes(conv: string, page: Page): Promise<MidSize[]> {
    return (await this.history(conv, page)).map(sized);
  }

  async syncSizes(user: string, after: number, limit: number): Promise<MidSize[]> {
    return (await this.sync(user, after, limit)).map(sized);
  }

  async messagesByMid(mids: readonly number[]): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (const mid of [...mids].sort((a, b) => a - b)) {
      const m = this.all[firstAfter(this.all, mid - 1)];
      if (m?.mid === mid && out.at(-1)?.mid !== mid) out.push(m);
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

  /** Deletes the messages that match, from every index; returns how many. */
  private deleteWhere(pred: (m: StoredMessage) => boolean): number {
    this.highWater = this.last();
    const before = this.all.length;
    this.all = this.all.filter((m) => !pred(m));
    for (const [conv, list] of this.byConv) {
      const kept = list.filter((m) => !pred(m));
      if (kept.length === 0) this.byConv.delete(conv);
      else this.byConv.set(conv, kept);
    }
    for (const [k, m] of this.byCid) if (pred(m)) this.byCid.delete(k);
    return before - this.all.length;
  }

  async eraseUser(user: string): Promise<number> {
    const n = this.deleteWhere((m) => m.sender === user);
    await this.deleteUserTokens(user);
    const u = this.users.get(user);
    if (u) this.users.set(user, { name: user, passHash: "" });
    return n;
  }

  async deleteGroup(name: string): Promise<number> {
    const n = this.deleteWhere((m) => m.grp === name);
    this.members.delete(name);
    this.groups.delete(name);
    return n;
  }

  async userMessages(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (let i = firstAfter(this.all, after); i < this.all.length && out.length < limit; i++) {
      const m = this.all[i]!;
      if (m.sender === user || m.toUser === user) out.push(m);
    }
    return out;
  }

  async purge(before: number, limit: number): Promise<number> {
    const head = new Set(this.all.slice(0, limit).filter((m) => m.ts < before));
    return head.size === 0 ? 0 : this.deleteWhere((m) => head.has(m));
  }

  async backup(): Promise<void> {
    throw new Error("an in-memory store cannot be backed up");
  }

  async maintain(now: number): Promise<void> {
    for (const [h, t] of this.tokens) if (t.expires <= now) this.tokens.delete(h);
  }

  async close(): Promise<void> {}
}
