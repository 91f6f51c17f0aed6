// The web app's state, without the DOM: conversations (groups and direct
// conversations), their messages in mid order, unread counts and read marks,
// who is online, and what is kept between visits. Tested under Bun
// (test/web/model.test.ts).
import type { ChatMessage, Target } from "../client/browser.ts";

/** `g:<group>` or `u:<other user>`. */
export type ConvKey = string;

export interface Conv {
  key: ConvKey;
  kind: "group" | "dm";
  /** The group, or the other user of a direct conversation. */
  name: string;
  target: Target;
  /** Messages known, by increasing mid, no two with the same mid. */
  msgs: ChatMessage[];
  /** The newest page of its history has been fetched. */
  loaded: boolean;
  /** Older messages than msgs[0] may exist (history `before` finds out). */
  hasOlder: boolean;
  /**
   * The smallest mid of any history page fetched, entries included (edits, reactions...: the
   * app shows messages only, PROTOCOL.md §3.5): the next older page starts below it.
   */
  oldest?: number;
  /** Messages from others above `lastRead`, counted as they arrived. */
  unread: number;
  /** The largest mid the user has seen in this conversation. */
  lastRead: number;
  /** The largest mid known in this conversation: the list is sorted by it. */
  lastMid: number;
}

/** What is kept between visits, per user, in the tab's or the device's storage. */
export interface Saved {
  /** The client's cursor: the next login delivers what came after it. */
  cursor: number;
  convs: { key: ConvKey; lastMid: number; lastRead: number; unread: number }[];
}

/** The subset of Web Storage used here (sessionStorage, localStorage, or a Map in tests). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function keyOf(t: Target): ConvKey {
  return t.group !== undefined ? `g:${t.group}` : `u:${t.user}`;
}

export function targetOf(key: ConvKey): Target {
  const name = key.slice(2);
  return key.startsWith("g:") ? { group: name } : { user: name };
}

/** The conversation a message belongs to, seen by `me` (PROTOCOL.md §3.5). */
export function targetOfMessage(m: Pick<ChatMessage, "group" | "user" | "from">, me: string): Target {
  if (m.group !== undefined) return { group: m.group };
  return { user: m.from === me ? (m.user ?? me) : m.from };
}

/** Index of the first message with mid >= `mid` (binary search). */
function lowerBound(msgs: ChatMessage[], mid: number): number {
  let lo = 0;
  let hi = msgs.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (msgs[m]!.mid < mid) lo = m + 1;
    else hi = m;
  }
  return lo;
}

export class ChatModel {
  readonly convs = new Map<ConvKey, Conv>();
  /** Presence as last heard (members, presence pushes): absent means unknown. */
  readonly online = new Map<string, boolean>();
  /** The conversation on screen. */
  current: ConvKey | undefined;
  /** Whether the page is visible: messages of the current conversation are read only then. */
  visible = true;

  constructor(readonly me: string) {}

  conv(t: Target): Conv {
    const key = keyOf(t);
    let c = this.convs.get(key);
    if (!c) {
      const kind = t.group !== undefined ? "group" : "dm";
      c = {
        key,
        kind,
        name: (t.group ?? t.user)!,
        target: kind === "group" ? { group: t.group! } : { user: t.user! },
        msgs: [],
        loaded: false,
        hasOlder: true,
        unread: 0,
        lastRead: 0,
        lastMid: 0,
      };
      this.convs.set(key, c);
    }
    return c;
  }

  /** Whether `c`'s new messages are being read right now. */
  private reading(c: Conv): boolean {
    return this.current === c.key && this.visible;
  }

  /**
   * A message arrived (live, caught up, or the ack of one's own send): stored in its
   * conversation once. Counts as unread if it is from someone else, newer than the
   * read mark, and its conversation is not being read. Returns its conversation and
   * whether it was new.
   */
  add(m: ChatMessage): { conv: Conv; added: boolean } {
    const c = this.conv(targetOfMessage(m, this.me));
    const added = this.insert(c, m);
    if (added) {
      c.lastMid = Math.max(c.lastMid, m.mid);
      if (m.from === this.me || this.reading(c)) c.lastRead = Math.max(c.lastRead, m.mid);
      else if (m.mid > c.lastRead) c.unread++;
    }
    return { conv: c, added };
  }

  /** Inserts at its place by mid; false if that mid is there already. */
  private insert(c: Conv, m: ChatMessage): boolean {
    const at = lowerBound(c.msgs, m.mid);
    if (c.msgs[at]?.mid === m.mid) return false;
    c.msgs.splice(at, 0, m);
    return true;
  }

  /**
   * A page of history: the newest page (`older` false) or one before msgs[0]
   * (`older` true). History is never unread. Returns how many messages were new.
   */
  page(c: Conv, msgs: ChatMessage[], more: boolean, older: boolean): number {
    let n = 0;
    // Messages only: not the other entries of the log, nor what is left of a deleted message.
    for (const m of msgs) if (m.kind === undefined && m.deleted === undefined && this.insert(c, m)) n++;
    if (msgs.length > 0) c.oldest = Math.min(c.oldest ?? Infinity, msgs[0]!.mid);
    const last = c.msgs.at(-1);
    if (last) c.lastMid = Math.max(c.lastMid, last.mid);
    if (older) c.hasOlder = more && msgs.length > 0;
    else {
      c.loaded = true;
      // Older than the page: `more` says so; messages we held before it are older still maybe.
      c.hasOlder = more || (msgs.length > 0 && c.msgs[0]!.mid < msgs[0]!.mid);
    }
    if (this.reading(c)) this.markRead(c);
    return n;
  }

  /** Everything in `c` has been seen. */
  markRead(c: Conv): void {
    c.unread = 0;
    c.lastRead = Math.max(c.lastRead, c.lastMid);
  }

  open(key: ConvKey | undefined): void {
    this.current = key;
    const c = key === undefined ? undefined : this.convs.get(key);
    if (c && this.visible) this.markRead(c);
  }

  setVisible(v: boolean): void {
    this.visible = v;
    const c = this.current === undefined ? undefined : this.convs.get(this.current);
    if (c && v) this.markRead(c);
  }

  get totalUnread(): number {
    let n = 0;
    for (const c of this.convs.values()) n += c.unread;
    return n;
  }

  /** Groups or direct conversations, most recent activity first, then by name. */
  list(kind: "group" | "dm"): Conv[] {
    return [...this.convs.values()]
      .filter((c) => c.kind === kind)
      .sort((a, b) => b.lastMid - a.lastMid || a.name.localeCompare(b.name));
  }

  /** Forgets a conversation (after leaving a group). */
  remove(key: ConvKey): void {
    this.convs.delete(key);
    if (this.current === key) this.current = undefined;
  }

  save(cursor: number): Saved {
    return {
      cursor,
      convs: [...this.convs.values()].map((c) => ({ key: c.key, lastMid: c.lastMid, lastRead: c.lastRead, unread: c.unread })),
    };
  }

  /** Takes back what `save` gave (conversations, read marks, unread counts); returns the cursor. */
  restore(s: Saved): number {
    for (const e of s.convs) {
      if (!/^[gu]:./.test(e.key)) continue;
      const c = this.conv(targetOf(e.key));
      c.lastMid = Math.max(c.lastMid, e.lastMid | 0);
      c.lastRead = Math.max(c.lastRead, e.lastRead | 0);
      c.unread = Math.max(0, e.unread | 0);
    }
    return s.cursor | 0;
  }
}

/** Parses what `save` stored; undefined if it is missing or not that shape. */
export function parseSaved(text: string | null): Saved | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Saved;
    if (typeof v !== "object" || v === null || typeof v.cursor !== "number" || !Array.isArray(v.convs)) return undefined;
    return v;
  } catch {
    return undefined;
  }
}
