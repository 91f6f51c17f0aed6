// Formatting for the web app: times in the viewer's time zone, sizes, which files are
// shown as images, mentions and previews. No DOM.
import type { ChatFile } from "../client/browser.ts";

/** Image types shown inline (from a blob URL of the message's bytes); anything else is a download. */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"]);

export function isPreviewable(type: string): boolean {
  return IMAGE_TYPES.has(type.toLowerCase().split(";")[0]!.trim());
}

// Making an Intl.DateTimeFormat costs far more than using one: one per kind, locale and zone.
const formats = new Map<string, Intl.DateTimeFormat>();
function format(kind: string, locale: string | undefined, timeZone: string | undefined, o: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const k = `${kind}|${locale ?? ""}|${timeZone ?? ""}`;
  let f = formats.get(k);
  if (!f) formats.set(k, (f = new Intl.DateTimeFormat(locale, { ...o, timeZone })));
  return f;
}

/** `14:05` or `2:05 PM`, in the viewer's time zone and locale (or the given ones, for tests). */
export function timeOf(ts: number, locale?: string, timeZone?: string): string {
  return format("time", locale, timeZone, { hour: "numeric", minute: "2-digit" }).format(ts);
}

/** The full date and time with the zone, for a tooltip: `Monday, 30 November 2026 at 14:05:09 CET`. */
export function fullTimeOf(ts: number, locale?: string, timeZone?: string): string {
  return format("full", locale, timeZone, { dateStyle: "full", timeStyle: "long" }).format(ts);
}

/** A calendar day in the viewer's zone, as a key to compare days: `2026-11-30`. */
export function dayKey(ts: number, timeZone?: string): string {
  return format("day", "en-CA", timeZone, { year: "numeric", month: "2-digit", day: "2-digit" }).format(ts);
}

/** A day divider: "Today", "Yesterday", or the date. */
export function dayLabel(ts: number, now = Date.now(), locale?: string, timeZone?: string): string {
  const k = dayKey(ts, timeZone);
  if (k === dayKey(now, timeZone)) return "Today";
  if (k === dayKey(now - 86_400_000, timeZone)) return "Yesterday";
  return format("date", locale, timeZone, { weekday: "long", day: "numeric", month: "long", year: "numeric" }).format(ts);
}

export function sizeLabel(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// Mentions as the server counts them (PROTOCOL.md §3.6; mentionsOf in src/store/store.ts,
// which test/web/model.test.ts compares with this): `@name` at the start or after a character
// that cannot be in a name, the name whole, without trailing `.` and `-`; at most 32 names.
const MENTION_RE = /(^|[^A-Za-z0-9_.@-])@([a-z0-9_][a-z0-9_.-]{0,31})/g;
const MAX_MENTIONS = 32;

/** Whether `text`, sent by `sender`, mentions `me`. */
export function mentions(text: string | undefined, me: string, sender: string): boolean {
  if (text === undefined || !text.includes("@") || me === sender) return false;
  const seen = new Set<string>();
  for (const m of text.matchAll(MENTION_RE)) {
    const name = m[2]!.replace(/[.-]+$/, "");
    if (name === "" || name === sender) continue;
    if (name === me) return true;
    seen.add(name);
    if (seen.size === MAX_MENTIONS) return false;
  }
  return false;
}

/** The first `n` code points of `s`, with an ellipsis if it was longer. */
export function cut(s: string, n: number): string {
  const cps = Array.from(s);
  return cps.length <= n ? s : `${cps.slice(0, n).join("")}…`;
}

/** A conversation's preview of a message: who, and its text cut short or its file's name. */
export function previewOf(m: { mid: number; ts: number; from: string; text?: string; file?: Pick<ChatFile, "name"> }): {
  mid: number;
  ts: number;
  from: string;
  text?: string;
  file?: { name: string };
} {
  return { mid: m.mid, ts: m.ts, from: m.from, text: m.text === undefined ? undefined : cut(m.text, 100), file: m.file ? { name: m.file.name } : undefined };
}

// User and group names (PROTOCOL.md §2.1) and the shortest password, as the server checks
// them in src/protocol/requests.ts (which uses Node's Buffer, so the page does not import
// it; test/web/model.test.ts checks that these are the same).
export const NAME_RE = /^[a-z0-9_][a-z0-9_.-]{0,31}$/;
export const NAME_RULE = "1-32 characters: a-z 0-9 _ - . (not starting with - or .)";
export const PASS_MIN = 8;
