// Keystrokes from a terminal in raw mode, as events. Bytes may split anywhere
// (a UTF-8 character, an escape sequence or a paste across two reads): all are
// reassembled. Escape sequences of the usual terminals (xterm, VT100 SS3 keys,
// rxvt, the Linux console) become cursor and editing keys; a bracketed paste
// (ESC[200~ ... ESC[201~, asked for with ESC[?2004h) becomes one `paste` event
// whatever it holds, newlines included. What is not known is ignored rather
// than typed into the line.

export type Key =
  | { kind: "text"; text: string }
  | { kind: "paste"; text: string }
  | { kind: "enter" }
  | { kind: "backspace" }
  | { kind: "delete" }
  | { kind: "left" }
  | { kind: "right" }
  | { kind: "up" }
  | { kind: "down" }
  | { kind: "home" } // Home, Ctrl-A
  | { kind: "end" } // End, Ctrl-E
  | { kind: "word-left" } // Alt-b, Ctrl-Left, Alt-Left
  | { kind: "word-right" } // Alt-f, Ctrl-Right, Alt-Right
  | { kind: "kill-line" } // Ctrl-U: to the start of the line
  | { kind: "kill-end" } // Ctrl-K: to its end
  | { kind: "kill-word" } // Ctrl-W, Alt-Backspace
  | { kind: "kill-word-right" } // Alt-d
  | { kind: "yank" } // Ctrl-Y
  | { kind: "tab" }
  | { kind: "view"; n: number } // Alt-1..9, Alt-0 (10)
  | { kind: "next-unread" } // Alt-n
  | { kind: "redraw" } // Ctrl-L
  | { kind: "page-up" }
  | { kind: "page-down" }
  | { kind: "interrupt" } // Ctrl-C
  | { kind: "eof" } // Ctrl-D
  | { kind: "ignored" };

const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

/** Ctrl-letter bytes. */
const CONTROL: Record<number, Key["kind"]> = {
  0x01: "home",
  0x02: "left",
  0x03: "interrupt",
  0x04: "eof",
  0x05: "end",
  0x06: "right",
  0x08: "backspace",
  0x09: "tab",
  0x0b: "kill-end",
  0x0c: "redraw",
  0x0e: "down",
  0x10: "up",
  0x15: "kill-line",
  0x17: "kill-word",
  0x19: "yank",
  0x7f: "backspace",
};

/** CSI sequences by their final byte (and parameters). */
function csiKey(params: string, final: string): Key {
  const [p1 = "", mod = ""] = params.split(";");
  const ctrlOrAlt = mod === "3" || mod === "5" || mod === "9"; // Alt, Ctrl, (Meta in some terminals)
  switch (final) {
    case "A":
      return { kind: "up" };
    case "B":
      return { kind: "down" };
    case "C":
      return { kind: ctrlOrAlt ? "word-right" : "right" };
    case "D":
      return { kind: ctrlOrAlt ? "word-left" : "left" };
    case "H":
      return { kind: "home" };
    case "F":
      return { kind: "end" };
    case "~":
      switch (p1) {
        case "1":
        case "7":
          return { kind: "home" };
        case "4":
        case "8":
          return { kind: "end" };
        case "3":
          return { kind: "delete" };
        case "5":
          return { kind: "page-up" };
        case "6":
          return { kind: "page-down" };
      }
      return { kind: "ignored" };
    case "c": // rxvt: ESC [ c is Shift-Right... and ESC O c Ctrl-Right: see ss3Key
      return { kind: "ignored" };
  }
  return { kind: "ignored" };
}

/** SS3 (ESC O x): keys in application mode; rxvt's Ctrl-arrows are lower case. */
function ss3Key(c: string): Key {
  switch (c) {
    case "A":
      return { kind: "up" };
    case "B":
      return { kind: "down" };
    case "C":
      return { kind: "right" };
    case "D":
      return { kind: "left" };
    case "H":
      return { kind: "home" };
    case "F":
      return { kind: "end" };
    case "c":
      return { kind: "word-right" };
    case "d":
      return { kind: "word-left" };
  }
  return { kind: "ignored" };
}

/** Alt-key (ESC then the key). */
function altKey(c: string): Key {
  if (c >= "1" && c <= "9") return { kind: "view", n: Number(c) };
  if (c === "0") return { kind: "view", n: 10 };
  switch (c) {
    case "b":
      return { kind: "word-left" };
    case "f":
      return { kind: "word-right" };
    case "d":
      return { kind: "kill-word-right" };
    case "n":
      return { kind: "next-unread" };
    case "\x7f":
    case "\x08":
      return { kind: "kill-word" };
  }
  return { kind: "ignored" };
}

export class KeyReader {
  private readonly utf8 = new TextDecoder("utf-8");
  /** An escape sequence not finished in the last read. */
  private esc = "";
  /** Inside a bracketed paste: what it held so far. */
  private paste: string | undefined;

  constructor(private readonly onKey: (k: Key) => void) {}

  /** Whether an escape sequence is waiting for more bytes (a lone ESC, if none come: see flush()). */
  get pending(): boolean {
    return this.esc !== "";
  }

  /** No more bytes came after a lone ESC: it was the Escape key (ignored). */
  flush(): void {
    if (this.esc === "\x1b") {
      this.esc = "";
      this.onKey({ kind: "ignored" });
    }
  }

  push(chunk: Uint8Array): void {
    let s = this.esc + this.utf8.decode(chunk, { stream: true });
    this.esc = "";
    if (this.paste !== undefined) {
      s = this.paste + s;
      this.paste = undefined;
      const end = s.indexOf(PASTE_END);
      if (end < 0) {
        this.paste = s;
        return;
      }
      this.onKey({ kind: "paste", text: s.slice(0, end) });
      s = s.slice(end + PASTE_END.length);
    }
    let text = "";
    const flush = () => {
      if (text) this.onKey({ kind: "text", text });
      text = "";
    };
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      const code = c.charCodeAt(0);
      if (c === "\x1b") {
        flush();
        if (s.startsWith(PASTE_START, i)) {
          const from = i + PASTE_START.length;
          const end = s.indexOf(PASTE_END, from);
          if (end < 0) {
            this.paste = s.slice(from); // the rest comes with the next reads
            return;
          }
          this.onKey({ kind: "paste", text: s.slice(from, end) });
          i = end + PASTE_END.length - 1;
          continue;
        }
        if (PASTE_START.startsWith(s.slice(i)) && s.length - i < PASTE_START.length) {
          this.esc = s.slice(i); // maybe the start of a paste
          return;
        }
        const end = escapeEnd(s, i);
        if (end < 0) {
          this.esc = s.slice(i); // finish it with the next read
          return;
        }
        this.onKey(decodeEscape(s.slice(i, end + 1)));
        i = end;
      } else if (c === "\r" || c === "\n") {
        flush();
        if (c === "\n" && s[i - 1] === "\r") continue; // CR LF is one Enter
        this.onKey({ kind: "enter" });
      } else if (code < 0x20 || code === 0x7f) {
        flush();
        const kind = CONTROL[code];
        if (kind) this.onKey({ kind } as Key); // other control keys: nothing
      } else text += c;
    }
    flush();
  }
}

/** One complete escape sequence as a key. */
function decodeEscape(seq: string): Key {
  if (seq[1] === "[") return csiKey(seq.slice(2, -1), seq.at(-1)!);
  if (seq[1] === "O") return ss3Key(seq[2]!);
  if (seq.length === 2) return altKey(seq[1]!);
  // ESC ESC [ C and the like: Alt-arrows in some terminals.
  if (seq[1] === "\x1b") {
    const inner = decodeEscape(seq.slice(1));
    if (inner.kind === "left") return { kind: "word-left" };
    if (inner.kind === "right") return { kind: "word-right" };
    return inner;
  }
  return { kind: "ignored" };
}

/** Index of the last character of the escape sequence starting at `i`, or -1 if it is not complete yet. */
function escapeEnd(s: string, i: number): number {
  if (i + 1 >= s.length) return -1;
  const next = s[i + 1]!;
  if (next === "[") {
    // CSI: parameters and intermediates, then a final byte 0x40-0x7e
    for (let j = i + 2; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c >= 0x40 && c <= 0x7e) return j;
    }
    return -1;
  }
  if (next === "O") return i + 2 < s.length ? i + 2 : -1; // SS3: one more character
  if (next === "\x1b") {
    // ESC ESC [...: Alt with an arrow (rxvt); ESC ESC alone: two Escapes
    if (i + 2 >= s.length) return -1;
    if (s[i + 2] === "[" || s[i + 2] === "O") {
      const inner = escapeEnd(s, i + 1);
      return inner;
    }
    return i; // the first ESC alone
  }
  return i + 1; // Alt+key
}
