// The server's log: one line per event (README, "Operating tcpchat"). JSON (one object per
// line: ts, level, event, then the event's fields, `msg` last) or pretty (a timestamp, the
// level, the event and its fields as key=value), `--log-format`, by default pretty on a
// terminal and JSON otherwise; `--log-level` drops what is below it. Debug and info go to
// stdout, warn and error to stderr.
//
// What is logged is names, ids, addresses, reasons and counts. Never a password, a token or
// a message's text: the core passes no request field but names (ChatCore.audit), and an
// error is logged by its name and first line, cut before any "params:" a database driver
// appends (drizzle puts a failed query's parameters, which may be message text, there).
import type { Logger, LogLevel } from "../core/chat.ts";

export type LogFormat = "json" | "pretty";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];

/** An error as one safe line: its name and the first line of its message, without query parameters. */
export function errorText(e: unknown): string {
  if (e === undefined || e === null) return "";
  if (!(e instanceof Error)) return String(e).split("\n")[0]!.slice(0, 300);
  let m = e.message.split(/\n|\bparams:/)[0]!.trim();
  if (m.length > 300) m = `${m.slice(0, 300)}...`;
  const code = (e as { code?: unknown }).code;
  const cause = e.cause instanceof Error && e.cause !== e ? ` (cause: ${errorText(e.cause)})` : "";
  return `${e.name}${typeof code === "string" ? ` ${code}` : ""}: ${m}${cause}`;
}

function prettyValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}

export interface LogSink {
  out(line: string): void;
  err(line: string): void;
}

const STDIO: LogSink = {
  out: (l) => void process.stdout.write(l),
  err: (l) => void process.stderr.write(l),
};

export class StructuredLogger implements Logger {
  private readonly min: number;

  constructor(
    level: LogLevel,
    readonly format: LogFormat,
    private readonly sink: LogSink = STDIO,
  ) {
    this.min = RANK[level];
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.min;
  }

  /**
   * The start lines (`listening`, `web`): written at info whatever `--log-level` says, since
   * scripts and people read the port and the URL from them.
   */
  banner(event: string, fields: Record<string, unknown>): void {
    this.write("info", event, fields);
  }

  event(level: LogLevel, event: string, fields: Record<string, unknown>): void {
    if (RANK[level] < this.min) return;
    this.write(level, event, fields);
  }

  private write(level: LogLevel, event: string, fields: Record<string, unknown>): void {
    const ts = new Date().toISOString();
    let line: string;
    if (this.format === "json") {
      const o: Record<string, unknown> = { ts, level, event };
      let msg: unknown;
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        if (k === "msg") msg = v;
        else o[k] = v;
      }
      if (msg !== undefined) o.msg = msg;
      line = `${JSON.stringify(o)}\n`;
    } else {
      const parts = [ts, level.toUpperCase().padEnd(5), event];
      let msg = "";
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        if (k === "msg") msg = String(v);
        else parts.push(`${k}=${prettyValue(v)}`);
      }
      line = `${parts.join(" ")}${msg ? `  ${msg}` : ""}\n`;
    }
    if (RANK[level] >= RANK.warn) this.sink.err(line);
    else this.sink.out(line);
  }

  info(msg: string): void {
    this.event("info", "log", { msg });
  }

  error(msg: string, err?: unknown): void {
    this.event("error", "error", { msg, err: err === undefined ? undefined : errorText(err) });
  }
}

/** The format when none is given: pretty for a person at a terminal, JSON for a log collector. */
export function defaultFormat(): LogFormat {
  return process.stdout.isTTY ? "pretty" : "json";
}
