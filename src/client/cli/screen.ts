// The interactive screen: a message pane that scrolls, and at the bottom a
// status line and the input line. Printing a message clears those two rows,
// writes the message (the terminal scrolls it up), then draws them again, so
// incoming messages never garble a half-typed line.
//
// Each conversation has its own view (its lines, kept here): lines printed to a
// view other than the one shown are only kept, and showView() redraws the
// screen with another view's lines. Without a terminal (piped output) every
// line of every view is printed as it comes, with no status or input line.
import { type EditorState, view as editorView, width } from "./editor.ts";

export interface Output {
  write(s: string): void;
}

export interface ScreenSize {
  columns: number;
  rows: number;
}

const CLEAR_LINE = "\r\x1b[2K";
/** Lines kept per view, to redraw it. */
const KEEP_LINES = 1000;
/** Bracketed paste on and off (a paste then arrives as one event: keys.ts). */
export const PASTE_ON = "\x1b[?2004h";
export const PASTE_OFF = "\x1b[?2004l";

export class Screen {
  private prompt = "> ";
  private status = "";
  private input: { text: string; cursor: number } = { text: "", cursor: 0 };
  /** The first grapheme shown of a line wider than the screen (it scrolls sideways). */
  private from = 0;
  private active = false;
  private readonly views = new Map<string, string[]>();
  private current = "";

  /** `tty` false: no prompt, no escape codes, lines only (for piped input). */
  constructor(
    private readonly out: Output,
    private readonly size: () => ScreenSize,
    private readonly tty: boolean,
    /** Whether the status line is drawn in reverse video. */
    private readonly color = false,
  ) {}

  /** Clears the screen and puts the status and input lines on the bottom rows; asks for bracketed paste. */
  start(): void {
    this.active = true;
    if (!this.tty) return;
    this.out.write(PASTE_ON);
    this.redraw();
  }

  /** Leaves the bottom rows empty and the cursor on a fresh line; bracketed paste off. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.tty) this.out.write(`${CLEAR_LINE}\x1b[A${CLEAR_LINE}${PASTE_OFF}`);
  }

  /** The view shown (its key). */
  get shown(): string {
    return this.current;
  }

  /** Prints `text` (one or more lines) into `view` (default: the one shown); on screen if that one is shown. */
  print(text: string, view = this.current): void {
    let lines = this.views.get(view);
    if (!lines) this.views.set(view, (lines = []));
    lines.push(...text.split("\n"));
    if (lines.length > KEEP_LINES) lines.splice(0, lines.length - KEEP_LINES);
    if (!this.tty || !this.active) {
      if (view === this.current || !this.tty) this.out.write(`${text}\n`);
      return;
    }
    if (view !== this.current) return;
    this.out.write(`${CLEAR_LINE}\x1b[A${CLEAR_LINE}${text.replace(/\n/g, "\r\n")}\r\n${this.bottom()}`);
  }

  /** Shows another view: the screen is cleared and its last lines drawn. */
  showView(view: string): void {
    if (view === this.current) return;
    this.current = view;
    this.redraw();
  }

  /** Forgets a view's lines. */
  dropView(view: string): void {
    this.views.delete(view);
  }

  setPrompt(prompt: string): void {
    if (prompt === this.prompt) return;
    this.prompt = prompt;
    this.render();
  }

  setStatus(status: string): void {
    if (status === this.status) return;
    this.status = status;
    this.render();
  }

  setInput(st: Pick<EditorState, "text" | "cursor">): void {
    this.input = { text: st.text, cursor: st.cursor };
    this.render();
  }

  /** Draws the status and input lines again. */
  render(): void {
    if (!this.tty || !this.active) return;
    this.out.write(`${CLEAR_LINE}\x1b[A${CLEAR_LINE}${this.bottom()}`);
  }

  /** Clears the screen and draws the shown view's last lines, then the bottom rows (also after a resize, Ctrl-L). */
  redraw(): void {
    if (!this.tty || !this.active) return;
    const { rows, columns } = this.size();
    // The lines that fit above the bottom rows, counting the rows a long one wraps to.
    const lines = this.views.get(this.current) ?? [];
    const pane = Math.max(0, rows - 2);
    let used = 0;
    let first = lines.length;
    while (first > 0) {
      const n = Math.max(1, Math.ceil(width(lines[first - 1]!) / columns));
      if (used + n > pane) break;
      used += n;
      first--;
    }
    const body = lines.slice(first).map((l) => `${l}\r\n`).join("");
    // Ending just above the bottom rows, also when they do not fill the pane.
    const top = Math.max(1, rows - 1 - used);
    this.out.write(`\x1b[2J\x1b[${top};1H${body}\x1b[${Math.max(1, rows - 1)};1H${this.bottom()}`);
  }

  /** The status line, a line break, the input line, and the cursor put where the editor has it. */
  private bottom(): string {
    const { columns } = this.size();
    const status = fit(this.status, columns - 1);
    const painted = this.color ? `\x1b[7m${status}${" ".repeat(Math.max(0, columns - 1 - width(status)))}\x1b[0m` : status;
    const promptWidth = width(this.prompt);
    const room = Math.max(1, columns - promptWidth - 1);
    const v = editorView({ ...this.input, history: [], histIndex: 0, draft: "", killed: "" }, room, this.from);
    this.from = v.from;
    const column = promptWidth + v.column;
    return `${painted}\r\n${this.prompt}${v.text}\r${column > 0 ? `\x1b[${column}C` : ""}`;
  }
}

/** `s` cut to `cols` columns (escape codes kept, the cut marked with …). */
function fit(s: string, cols: number): string {
  if (width(s) <= cols) return s;
  let out = "";
  for (const ch of s) {
    if (width(out + ch) > cols - 1) break;
    out += ch;
  }
  return `${out}…`;
}
