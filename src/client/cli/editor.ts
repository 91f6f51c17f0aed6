// The input line's editor, pure: a state and a key give the next state (and,
// for Enter, the line to run). No I/O and no drawing: src/client/cli/screen.ts
// draws what `view()` returns, src/client/cli/keys.ts turns bytes into keys.
//
// The text is a string whose cursor always sits on a grapheme boundary
// (Intl.Segmenter), so Left, Backspace and Delete step over a whole user-perceived
// character: "é" written as e + U+0301, a flag, or a family joined with ZWJs.
// Widths come from Bun.stringWidth (CJK and most emoji take two columns).
import type { Key } from "./keys.ts";

export interface EditorState {
  readonly text: string;
  /** A UTF-16 offset into `text`, on a grapheme boundary. */
  readonly cursor: number;
  /** Lines entered before, oldest first. */
  readonly history: readonly string[];
  /** Which history line is shown: `history.length` is the line being written. */
  readonly histIndex: number;
  /** The line being written, kept while Up/Down show older ones. */
  readonly draft: string;
  /** The text Ctrl-U, Ctrl-K, Ctrl-W or Alt-d took last (Ctrl-Y puts it back). */
  readonly killed: string;
  /** Tab completion in progress: the word's start, what it was, the candidates and which one is shown. */
  readonly completion?: { readonly start: number; readonly word: string; readonly candidates: readonly string[]; readonly index: number };
}

/** Lines kept for Up/Down. */
export const HISTORY_MAX = 500;

export function emptyEditor(history: readonly string[] = []): EditorState {
  return { text: "", cursor: 0, history, histIndex: history.length, draft: "", killed: "" };
}

/** What Tab may complete `word` to; `first`: the word starts the line (commands go there). */
export type Completer = (word: string, first: boolean) => readonly string[];

export interface EditResult {
  state: EditorState;
  /** Enter: the line to run (the editor is empty again). */
  submit?: string;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The user-perceived characters of `s`. */
export function graphemes(s: string): string[] {
  return Array.from(segmenter.segment(s), (x) => x.segment);
}

/** The grapheme boundaries of `s`, 0 and s.length included. */
function boundaries(s: string): number[] {
  const b = Array.from(segmenter.segment(s), (x) => x.index);
  b.push(s.length);
  return b;
}

function prevBoundary(s: string, i: number): number {
  let p = 0;
  for (const b of boundaries(s)) {
    if (b >= i) break;
    p = b;
  }
  return p;
}

function nextBoundary(s: string, i: number): number {
  for (const b of boundaries(s)) if (b > i) return b;
  return s.length;
}

const isSpace = (g: string) => /^\s+$/u.test(g);

/** Start of the word before `i` (spaces, then non-spaces, leftwards): Ctrl-W, Alt-b. */
function wordLeft(s: string, i: number): number {
  const b = boundaries(s).filter((x) => x < i);
  let k = b.length - 1;
  const g = (j: number) => s.slice(b[j], j + 1 < b.length ? b[j + 1] : i);
  while (k >= 0 && isSpace(g(k))) k--;
  while (k >= 0 && !isSpace(g(k))) k--;
  return k < 0 ? 0 : b[k + 1]!;
}

/** End of the word after `i` (spaces, then non-spaces, rightwards): Alt-f, Alt-d. */
function wordRight(s: string, i: number): number {
  const b = boundaries(s).filter((x) => x >= i);
  let k = 0;
  const g = (j: number) => s.slice(b[j], b[j + 1]);
  while (k < b.length - 1 && isSpace(g(k))) k++;
  while (k < b.length - 1 && !isSpace(g(k))) k++;
  return b[k] ?? s.length;
}

function put(st: EditorState, text: string, cursor: number): EditorState {
  return { ...st, text, cursor, completion: undefined };
}

function insert(st: EditorState, s: string): EditorState {
  const text = st.text.slice(0, st.cursor) + s + st.text.slice(st.cursor);
  // The cursor goes after what was inserted, on a boundary of the new text: a
  // combining mark typed after "e" joins it, and the cursor stays after both.
  let cursor = st.cursor + s.length;
  const b = boundaries(text);
  if (!b.includes(cursor)) cursor = b.find((x) => x > cursor) ?? text.length;
  return put(st, text, cursor);
}

function kill(st: EditorState, from: number, to: number): EditorState {
  if (from === to) return st;
  return { ...put(st, st.text.slice(0, from) + st.text.slice(to), from), killed: st.text.slice(from, to) };
}

/** The line as pasted: CR LF and CR become LF; other controls (ESC among them) go; trailing newlines go. */
export function cleanPaste(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\r\n?/g, "\n").replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "").replace(/\n+$/, "");
}

/** Tab: complete the word before the cursor, or (pressed again) show the next candidate. */
function complete(st: EditorState, completer: Completer | undefined): EditorState {
  const c = st.completion;
  if (c && c.candidates.length > 1) {
    const index = (c.index + 1) % c.candidates.length;
    const before = st.text.slice(0, c.start);
    const after = st.text.slice(st.cursor);
    const word = c.candidates[index]!;
    return { ...st, text: before + word + after, cursor: before.length + word.length, completion: { ...c, index } };
  }
  if (!completer) return st;
  const start = wordLeftNoSpace(st.text, st.cursor);
  const word = st.text.slice(start, st.cursor);
  const first = st.text.slice(0, start).trim() === "";
  const candidates = [...new Set(completer(word, first))].filter((x) => x.startsWith(word) && x !== word).sort();
  if (candidates.length === 0) return st;
  const before = st.text.slice(0, start);
  const after = st.text.slice(st.cursor);
  if (candidates.length === 1) {
    const done = candidates[0]! + (after.startsWith(" ") ? "" : " ");
    return { ...put(st, before + done + after, start + done.length) };
  }
  // Several: the first one now, the next ones on the next Tabs.
  const shown = candidates[0]!;
  return { ...st, text: before + shown + after, cursor: start + shown.length, completion: { start, word, candidates, index: 0 } };
}

/** Start of the run of non-spaces just before `i` (empty if a space is before it). */
function wordLeftNoSpace(s: string, i: number): number {
  let j = i;
  while (j > 0 && !/\s/u.test(s[j - 1]!)) j--;
  return j;
}

/** One key. `completer` answers Tab. */
export function applyKey(st: EditorState, key: Key, completer?: Completer): EditResult {
  const { text, cursor } = st;
  switch (key.kind) {
    case "text":
      return { state: insert(st, key.text) };
    case "paste":
      return { state: insert(st, cleanPaste(key.text)) };
    case "left":
      return { state: put(st, text, prevBoundary(text, cursor)) };
    case "right":
      return { state: put(st, text, nextBoundary(text, cursor)) };
    case "home":
      return { state: put(st, text, 0) };
    case "end":
      return { state: put(st, text, text.length) };
    case "word-left":
      return { state: put(st, text, wordLeft(text, cursor)) };
    case "word-right":
      return { state: put(st, text, wordRight(text, cursor)) };
    case "backspace":
      return { state: cursor === 0 ? st : put(st, text.slice(0, prevBoundary(text, cursor)) + text.slice(cursor), prevBoundary(text, cursor)) };
    case "delete":
      return { state: cursor === text.length ? st : put(st, text.slice(0, cursor) + text.slice(nextBoundary(text, cursor)), cursor) };
    case "kill-line": // Ctrl-U: what is before the cursor
      return { state: kill(st, 0, cursor) };
    case "kill-end": // Ctrl-K: what is after it
      return { state: kill(st, cursor, text.length) };
    case "kill-word": // Ctrl-W, Alt-Backspace: the word before it
      return { state: kill(st, wordLeft(text, cursor), cursor) };
    case "kill-word-right": // Alt-d
      return { state: kill(st, cursor, wordRight(text, cursor)) };
    case "yank":
      return { state: st.killed ? insert(st, st.killed) : st };
    case "up": {
      if (st.histIndex === 0) return { state: st };
      const draft = st.histIndex === st.history.length ? text : st.draft;
      const line = st.history[st.histIndex - 1]!;
      return { state: { ...put(st, line, line.length), histIndex: st.histIndex - 1, draft } };
    }
    case "down": {
      if (st.histIndex >= st.history.length) return { state: st };
      const i = st.histIndex + 1;
      const line = i === st.history.length ? st.draft : st.history[i]!;
      return { state: { ...put(st, line, line.length), histIndex: i } };
    }
    case "tab":
      return { state: complete(st, completer) };
    case "enter": {
      let history = st.history;
      if (text.trim() !== "" && history.at(-1) !== text) history = [...history, text].slice(-HISTORY_MAX);
      return { state: { ...emptyEditor(history), killed: st.killed }, submit: text };
    }
    default:
      return { state: st };
  }
}

/** How one grapheme is drawn on the input line: newlines and tabs of a paste as visible marks, other controls as �. */
function shown(g: string): string {
  if (g === "\n") return "\u21b5";
  if (g === "\t") return "\u21e5";
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f-\u009f]/.test(g) ? "\ufffd" : g;
}

/** Columns a string takes on a terminal. */
export function width(s: string): number {
  return Bun.stringWidth(s);
}

/**
 * What to draw of the line in `room` columns: the part around the cursor (the
 * line scrolls sideways, keeping `from`, the first grapheme shown last time, when
 * the cursor is still in view), and the cursor's column in it.
 */
export function view(st: EditorState, room: number, from = 0): { text: string; column: number; from: number } {
  const gs = graphemes(st.text);
  const ws = gs.map((g) => width(shown(g)));
  let at = graphemes(st.text.slice(0, st.cursor)).length;
  at = Math.min(at, gs.length);
  let start = Math.min(from, at);
  const colsFrom = (a: number, b: number) => ws.slice(a, b).reduce((x, y) => x + y, 0);
  // Too far right: move the start until the cursor (and the grapheme under it) fits.
  while (start < at && colsFrom(start, at) + (ws[at] ?? 0) > room) start++;
  let out = "";
  let used = 0;
  for (let i = start; i < gs.length; i++) {
    if (used + ws[i]! > room) break;
    out += shown(gs[i]!);
    used += ws[i]!;
  }
  return { text: out, column: colsFrom(start, at), from: start };
}
