// Keystrokes from a terminal in raw mode, as events. Bytes may split anywhere
// (a UTF-8 character or an escape sequence across two reads): both are
// reassembled. Escape sequences (arrows, function keys) are recognised and
// ignored rather than typed into the line.

export type Key =
  | { kind: "text"; text: string }
  | { kind: "enter" }
  | { kind: "backspace" }
  | { kind: "interrupt" } // Ctrl-C
  | { kind: "eof" } // Ctrl-D
  | { kind: "kill-line" } // Ctrl-U
  | { kind: "kill-word" } // Ctrl-W
  | { kind: "ignored" };

export class KeyReader {
  private readonly utf8 = new TextDecoder("utf-8");
  /** An escape sequence not finished in the last read. */
  private esc = "";

  constructor(private readonly onKey: (k: Key) => void) {}

  push(chunk: Uint8Array): void {
    const s = this.esc + this.utf8.decode(chunk, { stream: true });
    this.esc = "";
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
        const end = escapeEnd(s, i);
        if (end < 0) {
          this.esc = s.slice(i); // finish it with the next read
          return;
        }
        this.onKey({ kind: "ignored" });
        i = end;
      } else if (c === "\r" || c === "\n") {
        flush();
        if (c === "\n" && s[i - 1] === "\r") continue; // CR LF is one Enter
        this.onKey({ kind: "enter" });
      } else if (code === 0x7f || code === 0x08) {
        flush();
        this.onKey({ kind: "backspace" });
      } else if (code === 0x03) {
        flush();
        this.onKey({ kind: "interrupt" });
      } else if (code === 0x04) {
        flush();
        this.onKey({ kind: "eof" });
      } else if (code === 0x15) {
        flush();
        this.onKey({ kind: "kill-line" });
      } else if (code === 0x17) {
        flush();
        this.onKey({ kind: "kill-word" });
      } else if (code < 0x20) {
        flush(); // other control keys: nothing
      } else text += c;
    }
    flush();
  }
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
  return i + 1; // Alt+key: swallow the key
}
