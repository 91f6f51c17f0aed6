// How messages and notices look on a terminal: timestamps, sender names, ANSI
// colours when wanted. Text from other users is made inert first: a peer must
// not be able to move the cursor or recolour the screen with escape codes.
import type { ChatMessage, Target } from "../types.ts";

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

/**
 * One message as terminal lines: `HH:MM:SS #room alice: text` (continuation
 * lines indented), and for a file `... alice sent file "x.png" (12.0 kB) -> path`.
 */
export function formatMessage(m: ChatMessage, me: string, style: Style, savedTo?: string): string {
  const time = paint(style, SGR.dim, clock(m.ts));
  const conv = paint(style, SGR.bold, convLabel(m, me));
  const who = paint(style, m.from === me ? `${SGR.bold};${nameColour(m.from)}` : nameColour(m.from), m.from);
  const head = `${time} ${conv} ${who}`;
  const indent = " ".repeat(clock(m.ts).length + 1);
  const lines: string[] = [];
  if (m.text !== undefined) {
    const [first, ...rest] = inert(m.text, true).split("\n");
    lines.push(`${head}: ${first}`);
    for (const r of rest) lines.push(`${indent}${r}`);
  }
  if (m.file !== undefined) {
    const what = `sent file "${inert(m.file.name)}" (${sizeLabel(m.file.data.length)})`;
    const where = savedTo !== undefined ? ` -> ${inert(savedTo)}` : "";
    lines.push(m.text !== undefined ? `${indent}${what}${where}` : `${head} ${what}${where}`);
  }
  return lines.join("\n");
}

/** The same on one line, for --listen. */
export function formatMessageLine(m: ChatMessage, me: string, savedTo?: string): string {
  const plain: Style = { color: false };
  return formatMessage({ ...m, text: m.text === undefined ? undefined : inert(m.text) }, me, plain, savedTo)
    .split("\n")
    .map((l) => l.trim())
    .join(" ");
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

/** The message as one JSON object (file bytes replaced by their size and where they were saved). */
export function messageJson(m: ChatMessage, savedTo?: string): string {
  const o: Record<string, unknown> = { mid: m.mid, ts: m.ts, from: m.from };
  if (m.group !== undefined) o.group = m.group;
  if (m.user !== undefined) o.user = m.user;
  if (m.text !== undefined) o.text = m.text;
  if (m.file !== undefined) o.file = { name: m.file.name, type: m.file.type, size: m.file.data.length, saved: savedTo ?? null };
  if (m.cid !== undefined) o.cid = m.cid;
  return JSON.stringify(o);
}
