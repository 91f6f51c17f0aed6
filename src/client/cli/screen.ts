// The interactive screen: a message pane that scrolls, and an input line kept
// at the bottom. Printing a message clears the input line, writes the message
// (the terminal scrolls it up), then draws the prompt and what was typed again,
// so incoming messages never garble a half-typed line.

export interface Output {
  write(s: string): void;
}

export interface ScreenSize {
  columns: number;
  rows: number;
}

const CLEAR_LINE = "\r\x1b[2K";

export class Screen {
  private buffer = "";
  private prompt = "> ";
  private active = false;

  /** `tty` false: no prompt, no escape codes, lines only (for piped input). */
  constructor(
    private readonly out: Output,
    private readonly size: () => ScreenSize,
    private readonly tty: boolean,
  ) {}

  /** Clears the screen and puts the input line on the bottom row. */
  start(): void {
    this.active = true;
    if (!this.tty) return;
    this.out.write(`\x1b[2J\x1b[${this.size().rows};1H`);
    this.render();
  }

  /** Leaves the input line empty and the cursor on a fresh line. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.tty) this.out.write(`${CLEAR_LINE}`);
  }

  /** Prints `text` (one or more lines) above the input line. */
  print(text: string): void {
    if (!this.tty || !this.active) {
      this.out.write(`${text}\n`);
      return;
    }
    this.out.write(`${CLEAR_LINE}${text.replace(/\n/g, "\r\n")}\r\n${this.line()}`);
  }

  setPrompt(prompt: string): void {
    this.prompt = prompt;
    this.render();
  }

  get input(): string {
    return this.buffer;
  }

  type(text: string): void {
    this.buffer += text;
    this.render();
  }

  backspace(): void {
    const chars = [...this.buffer];
    chars.pop();
    this.buffer = chars.join("");
    this.render();
  }

  killLine(): void {
    this.buffer = "";
    this.render();
  }

  killWord(): void {
    this.buffer = this.buffer.replace(/\S*\s*$/, "");
    this.render();
  }

  /** Takes the typed line (for Enter) and empties the input. */
  take(): string {
    const line = this.buffer;
    this.buffer = "";
    this.render();
    return line;
  }

  /** Draws the input line again (also after a terminal resize). */
  render(): void {
    if (!this.tty || !this.active) return;
    this.out.write(`${CLEAR_LINE}${this.line()}`);
  }

  /** Prompt plus as much of the end of the buffer as fits on one row (it scrolls sideways). */
  private line(): string {
    // eslint-disable-next-line no-control-regex
    const visible = this.prompt.replace(/\x1b\[[0-9;]*m/g, "");
    const room = Math.max(1, this.size().columns - [...visible].length - 1);
    const chars = [...this.buffer];
    const shown = chars.length > room ? chars.slice(chars.length - room).join("") : this.buffer;
    return `${this.prompt}${shown}`;
  }
}
