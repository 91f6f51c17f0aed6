// The interactive screen's conversation views, like irssi's windows: numbered
// in the order they were opened (Alt-1..9 and Alt-0 pick one), each with how
// many messages arrived there unseen, and the status line that shows them.
// Pure: src/client/cli/interactive.ts feeds it, src/client/cli/screen.ts draws.
import type { Conversation, Target } from "../types.ts";
import { targetLabel } from "./format.ts";

export interface View {
  /** "#group", "@user", or HOME. */
  key: string;
  target?: Target;
  /** Messages from others that arrived since the view was last shown. */
  unread: number;
  /** Whether one of them mentions this user, or is a direct message. */
  hot: boolean;
}

/** The view of no conversation (before the first /join or /to). */
export const HOME = "";

export function viewKey(t: Target | undefined): string {
  return t ? targetLabel(t) : HOME;
}

export function convTarget(c: Pick<Conversation, "group" | "user">): Target {
  return c.group !== undefined ? { group: c.group } : { user: c.user! };
}

export class Views {
  readonly list: View[] = [];
  current = HOME;

  get(key: string): View | undefined {
    return this.list.find((v) => v.key === key);
  }

  /** The view of `t`, opened (at the end of the list, or with `front` first) if there is none. */
  open(t: Target, front = false): View {
    const key = viewKey(t);
    let v = this.get(key);
    if (!v) {
      v = { key, target: t, unread: 0, hot: false };
      if (front) this.list.unshift(v);
      else this.list.push(v);
    }
    return v;
  }

  close(key: string): void {
    const i = this.list.findIndex((v) => v.key === key);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** The view numbered `n` (from 1). */
  byNumber(n: number): View | undefined {
    return this.list[n - 1];
  }

  number(key: string): number {
    return this.list.findIndex((v) => v.key === key) + 1;
  }

  /** A message from someone else arrived in `t` (`hot`: it mentions this user, or is direct). Not counted in the view shown. */
  arrived(t: Target, hot: boolean): void {
    const v = this.open(t);
    if (v.key === this.current) return;
    v.unread++;
    v.hot ||= hot;
  }

  /** The view was shown. */
  seen(key: string): void {
    const v = this.get(key);
    if (v) {
      v.unread = 0;
      v.hot = false;
    }
  }

  /** Unread counts from the server (`convs`, PROTOCOL.md §3.6): after the login and after each reconnect. */
  fromConversations(convs: readonly Conversation[]): void {
    for (const c of convs) {
      const v = this.open(convTarget(c));
      v.unread = c.unread;
      v.hot = c.unread > 0 && (c.mentions > 0 || c.user !== undefined);
    }
  }

  /**
   * `[2:#ops] alice@127.0.0.1:7777 connected | new: 1:@bob(1!) 3:#dev(4)`: the
   * view shown (with its own unread, if any), who and where, the connection,
   * and the other views with unseen messages (`!`: a mention or a direct message).
   */
  status(me: string, server: string, connection: string): string {
    const cur = this.get(this.current);
    const here = cur ? `[${this.number(cur.key)}:${cur.key}${cur.unread > 0 ? ` ${cur.unread} new, Alt-n` : ""}]` : "[no conversation: /join GROUP or /to @USER]";
    const act = this.list.filter((v) => v.unread > 0 && v.key !== this.current).map((v) => `${this.number(v.key)}:${v.key}(${v.unread}${v.hot ? "!" : ""})`);
    return `${here} ${me}@${server} ${connection}${act.length > 0 ? ` | new: ${act.join(" ")}` : ""}`;
  }
}
