// How messages and notices look on a terminal: timestamps, sender names, ANSI
// colours when wanted. Text from other users is made inert first: a peer must
// not be able to move the cursor or recolour the screen with escape codes.
import { isGroupKind, type ChatMessage, type Conversation, type DeleteEvent, type EditEvent, type GroupEvent, type ReactionEvent, type Target } from "../types.ts";

export interface Style {
  color: boolean;
}

const RESET = "\x1b[0m";
const SGR = { dim: "2", bold: "1", red: "31", green: "32", yellow: "33", cyan: "36" } as const;
const NAME_COLOURS = ["31", "32", "33", "34", "35", "36", "91", "92", "93", "94", "95", "96"];

function paint(style: Style, codes: string, s: string): string {
  return style.color ? `\x1b[${codes}m${s}${RESET}` : s;
}

/** A stable colour per name. */
function nameColour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return NAME_COLOURS[h % NAME_COLOURS.length]!;
}

/**
 * Removes what a terminal would interpret: C0 and C1 controls (ESC among them),
 * DEL, and bidirectional overrides. A tab becomes spaces; newlines are kept only
 * with `keepNewlines` (else shown as "↵ ").
 */
export function inert(s: string, keepNewlines = false): string {
  let out = s.replace(/\r\n?/g, "\n").replace(/\t/g, "    ");
  out = out.replace(/\n/g, keepNewlines ? "\n" : " \u21b5 ");
  // eslint-disable-next-line no-control-regex
  return out.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "\ufffd");
}

export function clock(ts: number): string {
  const d = new Date(ts);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The conversation of a message, seen by `me`: "#group", or "@other party". */
export function convLabel(m: Pick<ChatMessage, "group" | "user" | "from">, me: string): string {
  if (m.group !== undefined) return `#${m.group}`;
  return `@${m.from === me ? m.user : m.from}`;
}

export function targetLabel(t: Target): string {
  return t.group !== undefined ? `#${t.group}` : `@${t.user}`;
}

export function sizeLabel(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A message's file as shown: `[file "report.pdf", 1.2 MB]`. */
export function fileLabel(f: { name: string; size: number }): string {
  return `[file "${inert(f.name)}", ${sizeLabel(f.size)}]`;
}

/** How far a transfer is, for the status line: `↑ report.pdf 45%`. */
export function progressLabel(up: boolean, name: string, bytes: number, total: number): string {
  const pct = total > 0 ? Math.floor((bytes / total) * 100) : 100;
  return `${up ? "↑" : "↓"} ${inert(name)} ${pct}%`;
}

/** How a message is shown: its id (`^mid`, with /ids), and what a reply answers (from what the client saw). */
export interface MessageView {
  ids?: boolean;
  /** "alice: lunch?" for a message this client has seen, to quote what a reply answers. */
  quote?: (mid: number) => string | undefined;
}

/** A message referred to: `^mid`, which /edit, /delete, /reply and /react take. */
export function ref(mid: number): string {
  return `^${mid}`;
}

/** The first words of a text, on one line, for quoting. */
export function snippet(text: string, max = 30): string {
  const one = inert(text);
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/**
 * One message as terminal lines: `HH:MM:SS #room alice: text` (continuation
 * lines indented), and for a file `... alice: [file "x.png", 12.0 kB] (/get 12)` (or `-> path` once saved).
 * A reply says what it answers, `(re ^12 bob: "lunch?")`; an edited one ends in
 * `(edited)`; a deleted one is `(deleted)`; reactions follow on a line of their own.
 */
export function formatMessage(m: ChatMessage, me: string, style: Style, savedTo?: string, view: MessageView = {}): string {
  const time = paint(style, SGR.dim, clock(m.ts));
  const conv = paint(style, SGR.bold, convLabel(m, me));
  const who = paint(style, m.from === me ? `${SGR.bold};${nameColour(m.from)}` : nameColour(m.from), m.from);
  const id = view.ids ? `${paint(style, SGR.dim, ref(m.mid))} ` : "";
  let head = `${time} ${id}${conv} ${who}`;
  if (m.reply !== undefined) {
    const q = view.quote?.(m.reply);
    head += paint(style, SGR.dim, ` (re ${ref(m.reply)}${q !== undefined ? ` ${q}` : ""})`);
  }
  const indent = " ".repeat(clock(m.ts).length + 1);
  const lines: string[] = [];
  if (m.deleted !== undefined) return `${head}: ${paint(style, SGR.dim, "(deleted)")}`;
  const edited = m.edited !== undefined ? paint(style, SGR.dim, " (edited)") : "";
  if (m.text !== undefined) {
    const [first, ...rest] = inert(m.text, true).split("\n");
    lines.push(`${head}: ${first}`);
    for (const r of rest) lines.push(`${indent}${r}`);
    lines[lines.length - 1] += edited;
  }
  if (m.file !== undefined) {
    // The bytes are not in the message (PROTOCOL.md §3.9): /get downloads them, on demand.
    const what = fileLabel(m.file);
    const where = savedTo !== undefined ? ` -> ${inert(savedTo)}` : ` ${paint(style, SGR.dim, `(/get ${m.mid})`)}`;
    lines.push(m.text !== undefined ? `${indent}${what}${where}` : `${head}: ${what}${where}`);
  }
  if (m.reactions?.length) lines.push(`${indent}${m.reactions.map((r) => `${inert(r.emoji)} ${r.users.join(", ")}`).join("; ")}`);
  return lines.join("\n");
}

/** Someone edited, deleted or reacted to a message (`quote`: what the client saw of it). */
export function formatChange(e: EditEvent | DeleteEvent | ReactionEvent, kind: "edit" | "delete" | "reaction", me: string, style: Style, quote?: string): string {
  const time = paint(style, SGR.dim, clock(e.ts));
  const conv = paint(style, SGR.bold, convLabel(e, me));
  const who = paint(style, nameColour(e.from), e.from);
  const about = `${ref(e.ref)}${quote !== undefined ? ` (${quote})` : ""}`;
  if (kind === "edit") {
    const text = (e as EditEvent).text;
    return `${time} ${conv} ${who} edited ${ref(e.ref)}: ${text === undefined ? "" : inert(text)}`;
  }
  if (kind === "delete") return `${time} ${conv} ${who} deleted ${about}`;
  const r = e as ReactionEvent;
  return `${time} ${conv} ${who} ${r.add ? `reacted ${inert(r.emoji)} to` : `took back ${inert(r.emoji)} on`} ${about}`;
}

/** What is unread: "3 new in #ops (1 mention), 1 new from @alice", or "nothing unread". */
export function unreadSummary(convs: Conversation[]): string {
  const parts = convs
    .filter((c) => c.unread > 0)
    .map((c) => {
      const where = c.group !== undefined ? `in #${c.group}` : `from @${c.user}`;
      const mentions = c.mentions > 0 ? ` (${c.mentions} mention${c.mentions === 1 ? "" : "s"})` : "";
      return `${c.unread} new ${where}${mentions}`;
    });
  return parts.length === 0 ? "nothing unread" : parts.join(", ");
}

/** The same on one line, for --listen. */
export function formatMessageLine(m: ChatMessage, me: string, savedTo?: string): string {
  const plain: Style = { color: false };
  return formatMessage({ ...m, text: m.text === undefined ? undefined : inert(m.text) }, me, plain, savedTo)
    .split("\n")
    .map((l) => l.trim())
    .join(" ");
}

/** How long a mute lasts, in words: "10 min", "2 h", "3 days" (rounded). */
export function duration(ms: number): string {
  const min = Math.max(1, Math.round(ms / 60_000));
  if (min < 120) return `${min} min`;
  const h = Math.round(min / 60);
  if (h < 48) return `${h} h`;
  const d = Math.round(h / 24);
  return `${d} day${d === 1 ? "" : "s"}`;
}

/** A group change from the log (PROTOCOL.md §3.3) in a log entry's fields, as the client library's `group` event has it. */
export type GroupChange = Pick<GroupEvent, "group" | "from" | "kind" | "target" | "ts"> & Partial<Pick<GroupEvent, "role" | "until" | "settings">>;

/** The `group` event of a log entry (`entry`, a `history` page), or undefined for one that is not a change to a group. */
export function groupChangeOf(m: ChatMessage): GroupChange | undefined {
  if (!isGroupKind(m.kind) || m.group === undefined) return undefined;
  const g: GroupChange = { group: m.group, ts: m.ts, from: m.from, kind: m.kind as GroupEvent["kind"], target: m.target ?? m.from };
  if (m.role !== undefined) g.role = m.role;
  if (m.until !== undefined) g.until = m.until;
  if (m.settings !== undefined) g.settings = m.settings;
  return g;
}

/**
 * A change to a group in words, as `me` reads it: "bob joined #ops", "alice kicked
 * you from #ops", "alice muted bob in #ops for 10 min", "alice made bob an admin of
 * #ops", "alice handed #ops on to bob", "alice set the topic of #ops: deploys",
 * "alice invited you to #secret (/join secret)". Undefined for a kind this client
 * does not know (PROTOCOL.md §3.5: ignored).
 */
export function groupChangeText(e: GroupChange, me: string): string | undefined {
  const who = (u: string) => (u === me ? "you" : u);
  const by = who(e.from);
  const them = who(e.target);
  const g = `#${e.group}`;
  switch (e.kind) {
    case "create":
      return `${by} created ${g}`;
    case "join":
      return `${by} joined ${g}`;
    case "leave":
      return `${by} left ${g}`;
    case "invite":
      return `${by} invited ${them} to ${g}${e.target === me ? ` (/join ${e.group})` : ""}`;
    case "kick":
      return `${by} kicked ${them} from ${g}`;
    case "ban":
      return `${by} banned ${them} from ${g}`;
    case "unban":
      return `${by} lifted the ban on ${them} in ${g}`;
    case "mute":
      return `${by} muted ${them} in ${g} ${e.until !== undefined ? `for ${duration(e.until - e.ts)}` : "until unmuted"}`;
    case "unmute":
      return `${by} unmuted ${them} in ${g}`;
    case "role":
      return e.role === "admin" ? `${by} made ${them} an admin of ${g}` : e.role === "member" ? `${by} made ${them} a member of ${g} (no longer an admin)` : undefined;
    case "owner":
      return `${by} handed ${g} on to ${them}`;
    case "settings": {
      const st = e.settings ?? {};
      const parts: string[] = [];
      if (st.public === true) parts.push(`made ${g} public`);
      if (st.public === false) parts.push(`made ${g} private`);
      if (st.topic !== undefined) parts.push(st.topic === "" ? `cleared the topic of ${g}` : `set the topic of ${g}: ${inert(st.topic)}`);
      if (st.description !== undefined) parts.push(st.description === "" ? `cleared the description of ${g}` : `set the description of ${g}: ${inert(st.description)}`);
      return parts.length === 0 ? `${by} changed the settings of ${g}` : `${by} ${parts.join("; ")}`;
    }
    default:
      return undefined;
  }
}

/** The same as a notice line, at the entry's time; undefined for an unknown kind. */
export function groupNotice(style: Style, e: GroupChange, me: string): string | undefined {
  const text = groupChangeText(e, me);
  return text === undefined ? undefined : notice(style, text, e.ts);
}

export function notice(style: Style, text: string, ts = Date.now()): string {
  return `${paint(style, SGR.dim, clock(ts))} ${paint(style, SGR.cyan, `* ${text}`)}`;
}

export function failure(style: Style, text: string): string {
  return paint(style, SGR.red, `! ${text}`);
}

export function presenceLine(style: Style, user: string, online: boolean): string {
  const state = online ? paint(style, SGR.green, "is online") : paint(style, SGR.yellow, "went offline");
  return `${paint(style, SGR.dim, clock(Date.now()))} ${paint(style, SGR.cyan, "*")} ${user} ${state}`;
}

/** The message as one JSON object (its file with where it was saved, if it was: --listen --downloads). */
export function messageJson(m: ChatMessage, savedTo?: string): string {
  const o: Record<string, unknown> = { mid: m.mid, ts: m.ts, from: m.from };
  if (m.group !== undefined) o.group = m.group;
  if (m.user !== undefined) o.user = m.user;
  if (m.text !== undefined) o.text = m.text;
  if (m.file !== undefined) o.file = { name: m.file.name, type: m.file.type, size: m.file.size, sha256: m.file.sha256, saved: savedTo ?? null };
  if (m.cid !== undefined) o.cid = m.cid;
  return JSON.stringify(o);
}
