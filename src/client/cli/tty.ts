// The process's terminal, as the CLI uses it: streams, raw mode, and a password
// prompt that does not echo.
import { type Key, KeyReader } from "./keys.ts";

/** How long a lone ESC waits for the rest of a sequence. */
const ESC_WAIT_MS = 50;

export interface Tty {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: Record<string, string | undefined>;
}

export function processTty(): Tty {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/**
 * Reads raw keystrokes until `onKey` returns true or `stop()` is called, then
 * gives the terminal back (raw mode off, stdin paused).
 */
export function readKeys(tty: Tty, onKey: (k: Key) => boolean): { done: Promise<void>; stop(): void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(escTimer);
    tty.stdin.off("data", onData);
    tty.stdin.setRawMode(false);
    tty.stdin.pause();
    resolve();
  };
  const reader = new KeyReader((k) => {
    if (!finished && onKey(k)) finish();
  });
  // A lone ESC is the Escape key if nothing follows it at once (an Alt-key or an
  // escape sequence arrives in one write).
  let escTimer: ReturnType<typeof setTimeout> | undefined;
  const onData = (chunk: Uint8Array) => {
    clearTimeout(escTimer);
    reader.push(chunk);
    if (reader.pending) escTimer = setTimeout(() => reader.flush(), ESC_WAIT_MS);
  };
  tty.stdin.setRawMode(true);
  tty.stdin.on("data", onData);
  tty.stdin.resume();
  return { done: promise, stop: finish };
}

/** Asks for a password without echoing it (raw mode). Undefined if stdin is not a terminal, or on Ctrl-C/Ctrl-D. */
export async function askPassword(tty: Tty, prompt: string): Promise<string | undefined> {
  if (!tty.stdin.isTTY) return undefined;
  tty.stderr.write(prompt);
  let pass = "";
  let ok = false;
  await readKeys(tty, (k) => {
    switch (k.kind) {
      case "text":
      case "paste":
        pass += k.text;
        return false;
      case "backspace":
        pass = [...pass].slice(0, -1).join("");
        return false;
      case "kill-line":
        pass = "";
        return false;
      case "enter":
        ok = true;
        return true;
      case "interrupt":
      case "eof":
        return true;
      default:
        return false;
    }
  }).done;
  tty.stderr.write("\n");
  return ok ? pass : undefined;
}

/**
 * Asks a question answered with one key (`answers`: key -> value, "\r" for Enter).
 * Undefined if stdin is not a terminal, or on Ctrl-C/Ctrl-D; other keys are ignored.
 */
export async function askKey<T>(tty: Tty, prompt: string, answers: Record<string, T>): Promise<T | undefined> {
  if (!tty.stdin.isTTY) return undefined;
  tty.stderr.write(prompt);
  let answer: T | undefined;
  let shown = "";
  await readKeys(tty, (k) => {
    if (k.kind === "interrupt" || k.kind === "eof") return true;
    const c = k.kind === "enter" ? "\r" : k.kind === "text" ? k.text.toLowerCase() : undefined;
    if (c === undefined || !Object.hasOwn(answers, c)) return false;
    answer = answers[c];
    shown = c === "\r" ? "" : c;
    return true;
  }).done;
  tty.stderr.write(`${shown}\n`);
  return answer;
}
