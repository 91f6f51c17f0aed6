// What the terminal client has seen of each conversation: its last messages, so that
// /edit, /delete, /reply and /react can default to "the last one here", a reply can quote
// what it answers, and reading a conversation knows how far it has read.
import type { ChatMessage, MessageFile, Target } from "../types.ts";
import { snippet } from "./format.ts";

interface Seen {
  mid: number;
  from: string;
  text?: string;
  /** Its file, for /get (PROTOCOL.md §3.5: name, type, size, SHA-256). */
  file?: MessageFile;
}

/** Messages kept per conversation. */
const KEEP = 200;

export class Recent {
  private readonly byConv = new Map<string, Seen[]>();
  private readonly byMid = new Map<number, Seen>();

  constructor(private readonly me: string) {}

  /** A conversation's key: "#group" or "@other". */
  key(t: Target): string {
    return t.group !== undefined ? `#${t.group}` : `@${t.user}`;
  }

  /** The conversation of a message, as this user sees it. */
  targetOf(m: Pick<ChatMessage, "group" | "user" | "from">): Target {
    if (m.group !== undefined) return { group: m.group };
    return { user: m.from === this.me ? (m.user ?? this.me) : m.from };
  }

  /** A message was shown (entries other than messages, and deleted ones, are not kept). */
  add(m: ChatMessage): void {
    if (m.kind !== undefined || m.deleted !== undefined || this.byMid.has(m.mid)) return;
    const k = this.key(this.targetOf(m));
    let list = this.byConv.get(k);
    if (!list) this.byConv.set(k, (list = []));
    const s: Seen = { mid: m.mid, from: m.from, text: m.text ?? (m.file ? `[${m.file.name}]` : undefined) };
    if (m.file) s.file = m.file;
    // Kept in mid order (a history page can bring older ones).
    let i = list.length;
    while (i > 0 && list[i - 1]!.mid > m.mid) i--;
    list.splice(i, 0, s);
    this.byMid.set(m.mid, s);
    if (list.length > KEEP) this.byMid.delete(list.shift()!.mid);
  }

  edited(mid: number, text: string | undefined): void {
    const s = this.byMid.get(mid);
    if (s && text !== undefined) s.text = text;
  }

  deleted(mid: number): void {
    const s = this.byMid.get(mid);
    if (!s) return;
    this.byMid.delete(mid);
    for (const list of this.byConv.values()) {
      const i = list.indexOf(s);
      if (i >= 0) list.splice(i, 1);
    }
  }

  /** The newest message here that `pred` accepts. */
  last(t: Target, pred: (s: { mid: number; from: string }) => boolean = () => true): number | undefined {
    const list = this.byConv.get(this.key(t)) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (pred(list[i]!)) return list[i]!.mid;
    return undefined;
  }

  /** The file of message `mid`, if it was seen and has one. */
  file(mid: number): MessageFile | undefined {
    return this.byMid.get(mid)?.file;
  }

  /** The newest message with a file here. */
  lastFile(t: Target): number | undefined {
    return this.last(t, (s) => this.byMid.get(s.mid)?.file !== undefined);
  }

  /** `alice: "lunch?"` for a message seen, to quote it. */
  quote(mid: number): string | undefined {
    const s = this.byMid.get(mid);
    return s === undefined ? undefined : `${s.from}: "${snippet(s.text ?? "")}"`;
  }
}
