// The web app's state, without the DOM: conversations (groups and direct conversations),
// what is shown in them (messages as they are now, and a few kinds of entry as system
// lines), their unread and mention counts, who is online and who is typing. Tested under
// Bun (test/web/model.test.ts).
//
// Two sources describe a message (PROTOCOL.md §3.5): a history page gives it "as it is
// when read" (current text with `edited`, `reactions`, or a tombstone with `deleted`), and
// the log's entries (edit, delete, react, unreact) change it afterwards. Both are applied
// here, idempotently: every field remembers the mid of the entry that last set it, a page's
// state counts as set at the page's newest mid (everything up to it was committed before
// the page was read), and an entry changes a field only if it is newer. Entries about a
// message not loaded yet are kept and applied when it is.
//
// Unread counts are the server's (`convs`, §3.6); between two `convs`, live entries are
// applied the way the server counts (messages from others above the read marker that are
// not deleted, and the group ones that mention the user). What cannot be known here (a
// deletion or an edit of a message counted by the server but not loaded, a marker that
// moved into the middle of the counted range) marks the conversation stale: the app asks
// `convs` again.
import { type ChatMessage, type Conversation, isGroupKind, type MessageFile, type Target } from "../client/browser.ts";
import { mentions, previewOf } from "./format.ts";

/** `g:<group>` or `u:<other user>`. */
export type ConvKey = string;

/** The entries that change a message. */
const CHANGE_KINDS = new Set(["edit", "delete", "react", "unreact"]);
/** Entries about messages not loaded, kept per conversation until they are (the oldest go first). */
const MAX_ORPHANS = 2000;

export interface Preview {
  mid: number;
  ts: number;
  from: string;
  text?: string;
  file?: { name: string };
}

/** One reaction mark: whether `user` has `emoji` on, and the mid that said so. */
interface Mark {
  on: boolean;
  at: number;
}

/** A message (or a system line) as shown, with what it takes to apply entries to it idempotently. */
export class Shown {
  readonly mid: number;
  readonly ts: number;
  readonly from: string;
  /** Absent: a message. `join`, `leave`: a system line about `target` (done by `from`). */
  readonly kind?: string;
  readonly target?: string;
  readonly cid?: string;
  readonly reply?: number;
  text?: string;
  /** Name, type, size and SHA-256: the bytes are downloaded when wanted (PROTOCOL.md §3.9). */
  file?: MessageFile;
  edited?: number;
  deleted?: number;
  /** Bumped on every change: the view redraws a message whose rev moved. */
  rev = 0;
  /** The mid the state is known at (a page's newest mid, or the message's own). */
  private at: number;
  /** The mid of what set the text (the message itself, a page, or an edit). */
  private textAt: number;
  /** emoji -> user -> mark, in the order they first came. */
  private readonly marks = new Map<string, Map<string, Mark>>();

  constructor(m: ChatMessage, at: number) {
    this.mid = m.mid;
    this.ts = m.ts;
    this.from = m.from;
    const kind = m.kind as string | undefined;
    if (kind !== undefined) this.kind = kind;
    const target = (m as { target?: unknown }).target;
    if (typeof target === "string") this.target = target;
    if (m.cid !== undefined) this.cid = m.cid;
    if (m.reply !== undefined) this.reply = m.reply;
    this.at = this.textAt = Math.max(at, m.mid);
    this.take(m, this.at);
  }

  /** A state from a page or a sync (`at`: what it is known at); older than what is here already changes nothing. */
  merge(m: ChatMessage, at: number): boolean {
    at = Math.max(at, m.mid);
    if (at <= this.at) return false;
    this.at = at;
    return this.take(m, at);
  }

  private take(m: ChatMessage, at: number): boolean {
    let changed = false;
    if (m.deleted !== undefined) return this.erase(m.deleted);
    if (this.deleted !== undefined) return false;
    if (at >= this.textAt) {
      if (this.text !== m.text || this.edited !== m.edited) changed = true;
      this.text = m.text;
      this.edited = m.edited;
      this.textAt = at;
    }
    if (m.file !== undefined && this.file === undefined) {
      this.file = m.file;
      changed = true;
    }
    // Reactions: what the state has is on, what it lacks is off, unless an entry newer than it said otherwise.
    const has = new Set<string>();
    for (const r of m.reactions ?? []) {
      for (const u of r.users) {
        has.add(`${r.emoji}\n${u}`);
        changed = this.mark(r.emoji, u, true, at, -1) || changed;
      }
    }
    for (const [emoji, users] of this.marks) {
      for (const u of users.keys()) if (!has.has(`${emoji}\n${u}`)) changed = this.mark(emoji, u, false, at, -1) || changed;
    }
    if (changed) this.rev++;
    return changed;
  }

  /** Sets a mark said at `at` if that is newer than the mark there (or, without one, than `floor`). */
  private mark(emoji: string, user: string, on: boolean, at: number, floor: number): boolean {
    let users = this.marks.get(emoji);
    const was = users?.get(user);
    if (at <= (was?.at ?? floor)) return false;
    if (!users) this.marks.set(emoji, (users = new Map()));
    users.set(user, { on, at });
    return (was?.on ?? false) !== on;
  }

  private erase(ts: number): boolean {
    if (this.deleted !== undefined) return false;
    this.deleted = ts;
    this.text = undefined;
    this.file = undefined;
    this.edited = undefined;
    this.marks.clear();
    this.rev++;
    return true;
  }

  /** An edit, delete, react or unreact entry about this message; true if it changed what is shown. */
  apply(e: ChatMessage): boolean {
    if (this.kind !== undefined) return false;
    switch (e.kind as string) {
      case "delete":
        return this.erase(e.ts);
      case "edit":
        if (this.deleted !== undefined || e.text === undefined || e.mid <= this.textAt) return false;
        this.text = e.text;
        this.edited = e.ts;
        this.textAt = e.mid;
        this.rev++;
        return true;
      case "react":
      case "unreact": {
        if (this.deleted !== undefined || !e.emoji) return false;
        // Without a mark, the state (known at `at`) already has whatever came up to `at`.
        const changed = this.mark(e.emoji, e.from, e.kind === "react", e.mid, this.at);
        if (changed) this.rev++;
        return changed;
      }
    }
    return false;
  }

  /** The reactions that are on: each emoji once, in the order it first came, with its users. */
  get reactions(): { emoji: string; users: string[] }[] {
    const out: { emoji: string; users: string[] }[] = [];
    for (const [emoji, users] of this.marks) {
      const on = [...users].filter(([, m]) => m.on).map(([u]) => u);
      if (on.length > 0) out.push({ emoji, users: on });
    }
    return out;
  }
}

export class Conv {
  readonly key: ConvKey;
  readonly kind: "group" | "dm";
  /** The group, or the other user of a direct conversation. */
  readonly name: string;
  readonly target: Target;
  /** The group's owner (may delete anyone's messages), when known. */
  owner?: string;
  /** Messages and system lines known, by increasing mid, no two with the same mid. */
  items: Shown[] = [];
  /** Replied-to messages fetched for their quote (not part of `items`: they may be far older). */
  readonly quoted = new Map<number, Shown>();
  /** The newest page of its history has been fetched. */
  loaded = false;
  /** Older entries than items[0] may exist (history `before` finds out). */
  hasOlder = true;
  /** The smallest mid of any history page fetched, entries included: the next older page starts below it. */
  oldest?: number;
  /** The user's read marker (the largest heard of: it never moves back). */
  read = 0;
  /** The largest mid known in the conversation, any kind of entry: what opening it marks read. */
  lastMid = 0;
  /** The newest message's mid: the list is sorted by it. */
  activity = 0;
  /** The newest message that is not deleted, as `convs` gave it or as it came since. */
  preview?: Preview;
  /** `convs` must be asked again: the counts here may be off (see the top of this file). */
  stale = false;
  // The last `convs`: its `last`, and its unread and mention counts (meant for read markers up to its `read`).
  private baseLast = 0;
  private baseUnread = 0;
  private baseMentions = 0;
  /** Messages from others above baseLast, not deleted, that came since: mid -> mentions the user. */
  private readonly live = new Map<number, boolean>();
  /** Entries about messages not loaded: ref -> entries. */
  private readonly orphans = new Map<number, ChatMessage[]>();
  private orphanCount = 0;

  constructor(
    t: Target,
    private readonly me: string,
  ) {
    this.kind = t.group !== undefined ? "group" : "dm";
    this.name = (t.group ?? t.user)!;
    this.key = keyOf(t);
    this.target = this.kind === "group" ? { group: this.name } : { user: this.name };
  }

  get unread(): number {
    let n = this.read >= this.baseLast ? 0 : this.baseUnread;
    for (const mid of this.live.keys()) if (mid > this.read) n++;
    return n;
  }

  get mentions(): number {
    let n = this.read >= this.baseLast ? 0 : this.baseMentions;
    for (const [mid, m] of this.live) if (m && mid > this.read) n++;
    return n;
  }

  /** Takes the server's counts for this conversation (one row of `convs`). */
  fromServer(s: Conversation): void {
    this.moveRead(s.read);
    this.baseLast = s.last;
    this.baseUnread = s.unread;
    this.baseMentions = s.mentions;
    // A marker above the server's (a `read` of this device not committed when it counted) that
    // does not pass `last` leaves part of the counted messages read: how many is not known here.
    this.stale = this.read > s.read && this.read < s.last && s.unread > 0;
    for (const mid of [...this.live.keys()]) if (mid <= s.last) this.live.delete(mid);
    this.lastMid = Math.max(this.lastMid, s.last);
    if (s.preview && s.preview.mid >= (this.preview?.mid ?? 0)) {
      const p = s.preview;
      this.preview = { mid: p.mid, ts: p.ts, from: p.from, text: p.text, file: p.file ? { name: p.file.name } : undefined };
    } else if (!s.preview && this.preview && this.preview.mid <= s.last) this.preview = undefined;
    this.activity = Math.max(this.activity, s.preview?.mid ?? 0);
  }

  /** Moves the read marker forward to `mid`; true if it moved. */
  moveRead(mid: number): boolean {
    if (mid <= this.read) return false;
    const from = this.read;
    this.read = mid;
    for (const m of [...this.live.keys()]) if (m <= mid) this.live.delete(m);
    // Some of the counted ones are read now, some perhaps not: the server knows which.
    if (from < this.baseLast && mid < this.baseLast && this.baseUnread > 0) this.stale = true;
    return true;
  }

  /** Whether the server counted message `mid` (it is among the unread of the last `convs`). */
  private counted(mid: number): boolean {
    return mid > this.read && mid <= this.baseLast && this.baseUnread > 0;
  }

  find(mid: number): Shown | undefined {
    const at = lowerBound(this.items, mid);
    const s = this.items[at];
    return s?.mid === mid ? s : this.quoted.get(mid);
  }

  /** A message or system line in its place; merged into the one there if that mid is known. `at`: what its state is known at. */
  put(m: ChatMessage, at: number): { shown: Shown; added: boolean; changed: boolean } {
    const i = lowerBound(this.items, m.mid);
    const had = this.items[i];
    if (had?.mid === m.mid) return { shown: had, added: false, changed: had.merge(m, at) };
    const quoted = this.quoted.get(m.mid);
    const shown = quoted ?? new Shown(m, at);
    if (quoted) {
      this.quoted.delete(m.mid);
      shown.merge(m, at);
    }
    this.items.splice(i, 0, shown);
    this.adopt(shown);
    return { shown, added: true, changed: true };
  }

  /** A replied-to message fetched on its own, for a quote. */
  putQuoted(m: ChatMessage, at: number): Shown {
    const had = this.find(m.mid);
    if (had) {
      had.merge(m, at);
      return had;
    }
    const s = new Shown(m, at);
    this.quoted.set(m.mid, s);
    this.adopt(s);
    return s;
  }

  /** Applies the entries that came before `s` was loaded. */
  private adopt(s: Shown): void {
    const waiting = this.orphans.get(s.mid);
    if (!waiting) return;
    this.orphans.delete(s.mid);
    this.orphanCount -= waiting.length;
    for (const e of waiting) s.apply(e);
  }

  private keepOrphan(e: ChatMessage): void {
    const ref = e.ref!;
    let list = this.orphans.get(ref);
    if (!list) this.orphans.set(ref, (list = []));
    list.push(e);
    this.orphanCount++;
    while (this.orphanCount > MAX_ORPHANS) {
      const [oldest] = this.orphans.keys();
      if (oldest === undefined) break;
      this.orphanCount -= this.orphans.get(oldest)!.length;
      this.orphans.delete(oldest);
    }
  }

  /** A message of the live stream (or the reply to one's own send). */
  message(m: ChatMessage): { shown: Shown; added: boolean } {
    const { shown, added } = this.put(m, m.mid);
    this.lastMid = Math.max(this.lastMid, m.mid);
    if (m.deleted === undefined) {
      this.activity = Math.max(this.activity, m.mid);
      if (m.mid >= (this.preview?.mid ?? 0)) this.preview = previewOf(m);
      if (m.from !== this.me && m.mid > this.read && m.mid > this.baseLast) {
        this.live.set(m.mid, this.kind === "group" && mentions(m.text, this.me, m.from));
      }
    }
    return { shown, added };
  }

  /** An edit, delete, react or unreact of the live stream (or one's own, from its reply); true if something shown changed. */
  change(e: ChatMessage): boolean {
    this.lastMid = Math.max(this.lastMid, e.mid);
    const ref = e.ref;
    if (ref === undefined) return false;
    const s = this.find(ref);
    const before = s ? { deleted: s.deleted !== undefined, mention: this.mentionIn(s) } : undefined;
    let changed = false;
    if (s) changed = s.apply(e);
    else this.keepOrphan(e);
    // Only a message's sender edits it; a deletion may be the group owner's.
    const author = e.kind === "edit" ? e.from : s?.from;
    const mine = author === this.me;
    if (e.kind === "delete") {
      this.live.delete(ref);
      if (this.counted(ref) && !mine && !before?.deleted) {
        // Counted by the server and now gone: known exactly only when the message is here.
        if (s && !this.stale) {
          this.baseUnread = Math.max(0, this.baseUnread - 1);
          if (before?.mention) this.baseMentions = Math.max(0, this.baseMentions - 1);
        } else this.stale = true;
      }
      if (this.preview?.mid === ref) {
        const newest = [...this.items].reverse().find((x) => x.kind === undefined && x.deleted === undefined);
        this.preview = newest && this.loaded ? previewOf(newest) : undefined;
        if (!this.preview) this.stale = true;
      }
    } else if (e.kind === "edit" && e.text !== undefined) {
      if (this.live.has(ref)) this.live.set(ref, this.kind === "group" && mentions(e.text, this.me, e.from));
      else if (this.kind === "group" && this.counted(ref) && !mine) {
        const now = s ? this.mentionIn(s) : undefined;
        if (s && before && !this.stale) this.baseMentions = Math.max(0, this.baseMentions + Number(now) - Number(before.mention));
        else this.stale = true;
      }
      if (this.preview?.mid === ref) this.preview = { ...this.preview, text: e.text };
    }
    return changed;
  }

  private mentionIn(s: Shown): boolean {
    return this.kind === "group" && s.deleted === undefined && mentions(s.text, this.me, s.from);
  }

  /**
   * A page of history: the newest (`older` false) or one before the oldest loaded (`older`
   * true). Messages with their state, join and leave lines; other entries only tell where the
   * page begins (their changes are in the state of the messages they are about). Never unread.
   * Returns how many items were new.
   */
  page(msgs: ChatMessage[], more: boolean, older: boolean): number {
    let n = 0;
    let top = 0;
    for (const m of msgs) top = Math.max(top, m.mid);
    for (const m of msgs) {
      const kind = m.kind as string | undefined;
      if (kind !== undefined && !isGroupKind(kind)) continue;
      if (this.put(m, top).added) n++;
      if (kind === undefined && m.deleted === undefined) this.activity = Math.max(this.activity, m.mid);
    }
    if (msgs.length > 0) this.oldest = Math.min(this.oldest ?? Infinity, msgs[0]!.mid);
    this.lastMid = Math.max(this.lastMid, top);
    if (older) this.hasOlder = more && msgs.length > 0;
    else {
      this.loaded = true;
      // Older than the page: `more` says so; what we held before it is older still, perhaps.
      this.hasOlder = more || (msgs.length > 0 && this.items.length > 0 && this.items[0]!.mid < msgs[0]!.mid);
    }
    return n;
  }
}

export function keyOf(t: Target): ConvKey {
  return t.group !== undefined ? `g:${t.group}` : `u:${t.user}`;
}

export function targetOf(key: ConvKey): Target {
  const name = key.slice(2);
  return key.startsWith("g:") ? { group: name } : { user: name };
}

/** The conversation an entry belongs to, seen by `me` (PROTOCOL.md §3.5). */
export function targetOfMessage(m: Pick<ChatMessage, "group" | "user" | "from">, me: string): Target {
  if (m.group !== undefined) return { group: m.group };
  return { user: m.from === me ? (m.user ?? me) : m.from };
}

/** Index of the first item with mid >= `mid` (binary search). */
function lowerBound(items: { mid: number }[], mid: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (items[m]!.mid < mid) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** What applying an entry did, for the app to redraw. */
export interface Applied {
  conv?: Conv;
  /** A message or system line was added, or one shown changed. */
  shown: boolean;
  /** A new message (not a change): `from` stops typing. */
  message?: Shown;
}

export class ChatModel {
  readonly convs = new Map<ConvKey, Conv>();
  /** Presence as last heard (members, presence pushes): absent means unknown. */
  readonly online = new Map<string, boolean>();
  /** Who is typing where. */
  readonly typing = new Typing();
  /** The conversation on screen. */
  current: ConvKey | undefined;
  /** Whether the page is visible: the current conversation is read only then. */
  visible = true;

  constructor(readonly me: string) {}

  conv(t: Target): Conv {
    const key = keyOf(t);
    let c = this.convs.get(key);
    if (!c) this.convs.set(key, (c = new Conv(t, this.me)));
    return c;
  }

  /**
   * One entry of the live stream (the client's `entry` events, in mid order, each once), or
   * the reply to one's own send or change: messages, changes to them, read markers moving,
   * join and leave lines. Kinds not known here are ignored (new ones will come, §3.5).
   */
  apply(e: ChatMessage): Applied {
    const kind = e.kind as string | undefined;
    if (kind !== undefined && !CHANGE_KINDS.has(kind) && !isGroupKind(kind) && kind !== "read") return { shown: false };
    const c = this.conv(targetOfMessage(e, this.me));
    if (kind === undefined) {
      const { shown, added } = c.message(e);
      if (added) this.typing.stop(c.key, e.from);
      return { conv: c, shown: added, message: added ? shown : undefined };
    }
    if (kind === "read") {
      c.lastMid = Math.max(c.lastMid, e.mid);
      c.moveRead(e.ref ?? 0);
      return { conv: c, shown: false };
    }
    if (isGroupKind(kind)) {
      c.lastMid = Math.max(c.lastMid, e.mid);
      return { conv: c, shown: c.put(e, e.mid).added };
    }
    return { conv: c, shown: c.change(e) };
  }

  /** The rows of `convs`: counts, markers and previews; conversations not here yet are added. */
  fromServer(list: Conversation[]): void {
    for (const s of list) this.conv(s.group !== undefined ? { group: s.group } : { user: s.user! }).fromServer(s);
  }

  /** Whether `c` is on screen and the page visible: what comes in it is read at once. */
  reading(c: Conv): boolean {
    return this.current === c.key && this.visible;
  }

  /** Everything known in `c` is seen: the mid to send in a `read`, or undefined if the marker is there already. */
  markRead(c: Conv): number | undefined {
    return c.moveRead(c.lastMid) ? c.read : undefined;
  }

  get totalUnread(): number {
    let n = 0;
    for (const c of this.convs.values()) n += c.unread;
    return n;
  }

  /** Groups or direct conversations, the newest message first, then by name. */
  list(kind: "group" | "dm"): Conv[] {
    return [...this.convs.values()].filter((c) => c.kind === kind).sort((a, b) => b.activity - a.activity || a.name.localeCompare(b.name));
  }

  /** Forgets a conversation (after leaving a group). */
  remove(key: ConvKey): void {
    this.convs.delete(key);
    if (this.current === key) this.current = undefined;
  }
}

/** How long a typing push is shown without another (PROTOCOL.md §5.5: about 5 s). */
export const TYPING_SHOW_MS = 5000;
/** How often one's own typing is told while it goes on: just over the server's 3 s (§3.6), so none is dropped. */
export const TYPING_SEND_MS = 3100;

/** Who is typing in each conversation, until about 5 s after their last push or their next message. */
export class Typing {
  private readonly until = new Map<ConvKey, Map<string, number>>();

  seen(key: ConvKey, user: string, now: number): void {
    let m = this.until.get(key);
    if (!m) this.until.set(key, (m = new Map()));
    m.set(user, now + TYPING_SHOW_MS);
  }

  stop(key: ConvKey, user: string): void {
    this.until.get(key)?.delete(user);
  }

  /** Who is typing in `key` at `now`, in the order they started. */
  who(key: ConvKey, now: number): string[] {
    const m = this.until.get(key);
    if (!m) return [];
    for (const [u, t] of m) if (t <= now) m.delete(u);
    return [...m.keys()];
  }

  /** When the next indicator runs out, if any does. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const m of this.until.values()) for (const t of m.values()) next = next === undefined ? t : Math.min(next, t);
    return next;
  }
}

/** "bob is typing…", "bob and carl are typing…", "bob, carl and 2 others are typing…". */
export function typingLabel(names: string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  const rest = names.length - 2;
  return `${names[0]}, ${names[1]} and ${rest} other${rest === 1 ? "" : "s"} are typing…`;
}

/** When to tell the server that the user is typing: at once, then every TYPING_SEND_MS while it goes on. */
export class TypingThrottle {
  private readonly last = new Map<ConvKey, number>();

  due(key: ConvKey, now: number): boolean {
    const t = this.last.get(key);
    if (t !== undefined && now - t < TYPING_SEND_MS) return false;
    this.last.set(key, now);
    return true;
  }

  /** A message was sent: the next keystroke tells again. */
  reset(key: ConvKey): void {
    this.last.delete(key);
  }
}
