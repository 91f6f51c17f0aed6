// The interactive client's slash commands, and plain lines (messages to the
// current conversation). Each command is a small async function over a context.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import type { ChatClient } from "../client.ts";
import type { ChatMessage, LoginResult, Target } from "../types.ts";
import { parseTarget } from "./args.ts";
import { explain, type Situation } from "./explain.ts";
import { mediaType } from "./files.ts";
import { ChatError } from "../errors.ts";
import { failure, formatChange, formatMessage, type MessageView, notice, type Style, targetLabel, unreadSummary } from "./format.ts";
import type { Recent } from "./recent.ts";

export interface CommandContext {
  client: ChatClient;
  me: string;
  style: Style;
  /** Prints in the view of `where` (default: the view shown). */
  print(text: string, where?: Target): void;
  /** Where plain lines go. */
  current: Target | undefined;
  /** Shows the view of `t` (opened if new); `undefined`: the next view left, if any (after /leave). */
  setCurrent(t: Target | undefined): void;
  /** Forgets the view of `t` (after /leave). */
  closeView?(t: Target): void;
  /** The views, numbered, for /views. */
  listViews?(): string;
  /** The server's limits (from the login), to say how long a message may be. */
  limits?: LoginResult["limits"];
  /** What was shown of each conversation ("the last message here", quotes). */
  recent: Recent;
  /** How messages are shown (/ids). */
  view: MessageView;
  /** Marks `t` read up to `mid`, or (without) up to its newest message: reading moves the marker. */
  markRead(t: Target, mid?: number): void;
  /** Sends the reads gathered so far, now (before counting what is unread). */
  flushReads?(): Promise<void>;
}

type Command = (ctx: CommandContext, args: string) => Promise<void | "quit">;

export const HELP = `commands:
  /join GROUP          join (or create) a group and talk there
  /leave [GROUP]       leave a group (default: the current one)
  /to GROUP | @USER    talk in a group, or directly with a user (opens its view)
  /views               the open views, numbered: Alt-1..9 shows one
  /msg @USER TEXT      send one direct message without switching
  /groups              your groups
  /members [GROUP]     a group's members and who is online
  /who                 who is online in your groups
  /history [N]         the last N messages here (default 20)
  /send-file PATH      send a file here
  /reply [^ID] TEXT    answer a message here (default: the last one from someone else)
  /edit [^ID] TEXT     change your message (default: your last one here)
  /delete [^ID]        delete your message, or any in a group you own (default: your last one here)
  /react [^ID] EMOJI   react to a message (default: the last one from someone else); /unreact takes it back
  /search TEXT         search your conversations, newest first
  /unread              what is unread, where
  /next                go to the newest conversation with unread messages and show them (Alt-n)
  /ids                 show message ids (^ID) before messages, or stop
  /help                this text
  /quit                leave (also Ctrl-C, Ctrl-D)
anything else is a message to the current conversation (start it with // to send a leading /)
keys: Left/Right, Home/End (Ctrl-A/E), Alt-b/Alt-f and Ctrl-Left/Right (words), Ctrl-W, Ctrl-U,
  Ctrl-K, Ctrl-Y, Up/Down (lines entered before), Tab (commands, #groups, @users), Alt-1..9
  (views), Alt-n (next unread), Ctrl-L (redraw); a paste is one message, sent with Enter`;

/** `e` in plain language, in the context of the command and the conversation. */
function describe(ctx: CommandContext, e: unknown, s: Situation = {}): string {
  return explain(e, { where: ctx.current ? targetLabel(ctx.current) : undefined, limits: ctx.limits, ...s });
}

/** Sends, and prints the message when the server has stored it (or why not). */
function sendAndShow(ctx: CommandContext, input: Parameters<ChatClient["send"]>[0]): void {
  if (ctx.client.state !== "ready") ctx.print(notice(ctx.style, "not connected: the message will be sent when the connection is back"));
  const where: Target = input.group !== undefined ? { group: input.group } : { user: input.user! };
  const elsewhere = !ctx.current || targetLabel(ctx.current) !== targetLabel(where);
  ctx.client.send(input).then(
    (m: ChatMessage) => {
      ctx.recent.add(m);
      const shown = formatMessage(m, ctx.me, ctx.style, undefined, ctx.view);
      ctx.print(shown, where);
      if (elsewhere) ctx.print(shown); // /msg: also where it was typed
    },
    (e) => ctx.print(failure(ctx.style, `not sent to ${targetLabel(where)}: ${explain(e, { request: input.reply !== undefined ? "reply" : "send", where: targetLabel(where), limits: ctx.limits, file: input.file !== undefined })}`)),
  );
}

/** A leading `^ID` (a message's mid) and the rest. */
function parseRef(args: string): { mid?: number; rest: string } {
  const m = /^\s*\^(\d+)(?:\s+([\s\S]*))?$/.exec(args);
  if (!m) return { rest: args.trim() };
  return { mid: Number(m[1]), rest: (m[2] ?? "").trim() };
}

/** The message a command is about: `^ID`, else the newest here that `pred` accepts; undefined (and why printed) if none. */
function aboutMessage(ctx: CommandContext, t: Target, mid: number | undefined, pred: (s: { from: string }) => boolean, what: string): number | undefined {
  const m = mid ?? ctx.recent.last(t, pred);
  if (m === undefined) ctx.print(failure(ctx.style, `no ${what} here yet: give its ^ID (/ids shows them)`));
  return m;
}

function needCurrent(ctx: CommandContext): Target | undefined {
  if (!ctx.current) ctx.print(failure(ctx.style, "no conversation yet: /join GROUP or /to @USER first"));
  return ctx.current;
}

/** The group named in `args` ("g" or "#g"), else (with `orCurrent`) the current group. */
function groupArg(ctx: CommandContext, args: string, orCurrent: boolean): string | undefined {
  const name = args.trim();
  if (!name) {
    if (orCurrent && ctx.current?.group) return ctx.current.group;
    ctx.print(failure(ctx.style, "which group?"));
    return undefined;
  }
  const t = name.startsWith("@") ? undefined : parseTarget(name);
  if (t?.group) return t.group;
  ctx.print(failure(ctx.style, `"${name}" is not a group name`));
  return undefined;
}

/** Adds or takes back a reaction. */
async function reactTo(ctx: CommandContext, args: string, add: boolean): Promise<void> {
  const t = needCurrent(ctx);
  if (!t) return;
  const { mid, rest } = parseRef(args);
  if (!rest) {
    ctx.print(failure(ctx.style, `usage: /${add ? "react" : "unreact"} [^ID] EMOJI`));
    return;
  }
  const target = aboutMessage(ctx, t, mid, (s) => s.from !== ctx.me, "message from someone else");
  if (target === undefined) return;
  const r = await ctx.client.react(t, target, rest, { remove: !add });
  ctx.print(formatChange({ ...t, mid: r.mid, ts: r.ts, from: ctx.me, ref: target, emoji: rest, add }, "reaction", ctx.me, ctx.style, ctx.recent.quote(target)));
}

const COMMANDS: Record<string, Command> = {
  async help(ctx) {
    ctx.print(HELP);
  },
  async quit() {
    return "quit";
  },
  async join(ctx, args) {
    const group = groupArg(ctx, args, false);
    if (!group) return;
    let r;
    try {
      r = await ctx.client.join(group);
    } catch (e) {
      // PROTOCOL.md §3.3: joining never creates; a typo does not make a group.
      if (e instanceof ChatError && e.code === "not_found") {
        ctx.print(notice(ctx.style, `there is no group #${group} (or it is private): /create ${group} makes it, with you as its owner`));
        return;
      }
      throw e;
    }
    ctx.setCurrent({ group });
    ctx.print(notice(ctx.style, `joined #${group} (owner ${r.owner})${r.topic ? `: ${r.topic}` : ""}`));
    ctx.markRead({ group });
  },
  async create(ctx, args) {
    const group = groupArg(ctx, args, false);
    if (!group) return;
    await ctx.client.createGroup(group);
    ctx.setCurrent({ group });
    ctx.print(notice(ctx.style, `created #${group}, you own it`));
    ctx.markRead({ group });
  },
  async leave(ctx, args) {
    const group = groupArg(ctx, args, true);
    if (!group) return;
    await ctx.client.leave(group);
    ctx.closeView?.({ group });
    if (ctx.current?.group === group) ctx.setCurrent(undefined);
    ctx.print(notice(ctx.style, `left #${group}`));
  },
  async to(ctx, args) {
    const t = parseTarget(args.trim());
    if (!t) {
      ctx.print(failure(ctx.style, "usage: /to GROUP or /to @USER"));
      return;
    }
    ctx.setCurrent(t);
    ctx.print(notice(ctx.style, `talking in ${targetLabel(t)}`));
    ctx.markRead(t);
  },
  async msg(ctx, args) {
    const m = /^\s*(@\S+)\s+([\s\S]+)$/.exec(args);
    const t = m ? parseTarget(m[1]!) : undefined;
    if (!m || !t?.user) {
      ctx.print(failure(ctx.style, "usage: /msg @USER TEXT"));
      return;
    }
    sendAndShow(ctx, { user: t.user, text: m[2]! });
  },
  async views(ctx) {
    ctx.print(notice(ctx.style, ctx.listViews?.() ?? "no views"));
  },
  async groups(ctx) {
    const gs = await ctx.client.groups();
    ctx.print(notice(ctx.style, gs.length ? `your groups: ${gs.map((g) => `#${g.group} (owner ${g.owner})`).join(", ")}` : "you are in no group"));
  },
  async members(ctx, args) {
    const group = groupArg(ctx, args, true);
    if (!group) return;
    const ms = await ctx.client.members(group);
    ctx.print(notice(ctx.style, `members of #${group}: ${ms.map((m) => `${m.user} (${m.online ? "online" : "offline"})`).join(", ")}`));
  },
  async who(ctx) {
    const gs = await ctx.client.groups();
    if (gs.length === 0) {
      ctx.print(notice(ctx.style, "you are in no group"));
      return;
    }
    const online = new Set<string>();
    for (const g of gs) for (const m of await ctx.client.members(g.group)) if (m.online) online.add(m.user);
    ctx.print(notice(ctx.style, `online: ${[...online].sort().join(", ")}`));
  },
  async history(ctx, args) {
    const t = needCurrent(ctx);
    if (!t) return;
    const n = args.trim() ? Number(args.trim()) : 20;
    if (!Number.isInteger(n) || n < 1) {
      ctx.print(failure(ctx.style, "usage: /history [N]"));
      return;
    }
    const page = await ctx.client.history(t, { limit: n });
    // Messages as they are now; the entries that changed them (edits, reactions...) are not shown again.
    const msgs = page.msgs.filter((m) => m.kind === undefined);
    ctx.print(notice(ctx.style, `history of ${targetLabel(t)}: ${msgs.length} message${msgs.length === 1 ? "" : "s"}${page.more ? " (more before)" : ""}`));
    for (const m of msgs) {
      ctx.recent.add(m);
      ctx.print(formatMessage(m, ctx.me, ctx.style, undefined, ctx.view));
    }
    ctx.print(notice(ctx.style, "end of history"));
    if (page.msgs.length > 0) ctx.markRead(t, page.msgs[page.msgs.length - 1]!.mid);
  },
  async reply(ctx, args) {
    const t = needCurrent(ctx);
    if (!t) return;
    const { mid, rest } = parseRef(args);
    if (!rest) {
      ctx.print(failure(ctx.style, "usage: /reply [^ID] TEXT"));
      return;
    }
    const target = aboutMessage(ctx, t, mid, (s) => s.from !== ctx.me, "message from someone else");
    if (target !== undefined) sendAndShow(ctx, { ...t, text: rest, reply: target });
  },
  async edit(ctx, args) {
    const t = needCurrent(ctx);
    if (!t) return;
    const { mid, rest } = parseRef(args);
    if (!rest) {
      ctx.print(failure(ctx.style, "usage: /edit [^ID] TEXT"));
      return;
    }
    const target = aboutMessage(ctx, t, mid, (s) => s.from === ctx.me, "message of yours");
    if (target === undefined) return;
    const r = await ctx.client.edit(t, target, rest);
    ctx.recent.edited(target, rest);
    ctx.print(formatChange({ ...t, mid: r.mid, ts: r.ts, from: ctx.me, ref: target, text: rest }, "edit", ctx.me, ctx.style));
  },
  async delete(ctx, args) {
    const t = needCurrent(ctx);
    if (!t) return;
    const { mid, rest } = parseRef(args);
    if (rest) {
      ctx.print(failure(ctx.style, "usage: /delete [^ID]"));
      return;
    }
    const target = aboutMessage(ctx, t, mid, (s) => s.from === ctx.me, "message of yours");
    if (target === undefined) return;
    const r = await ctx.client.delete(t, target);
    const quote = ctx.recent.quote(target);
    ctx.recent.deleted(target);
    ctx.print(formatChange({ ...t, mid: r.mid, ts: r.ts, from: ctx.me, ref: target }, "delete", ctx.me, ctx.style, quote));
  },
  async react(ctx, args) {
    await reactTo(ctx, args, true);
  },
  async unreact(ctx, args) {
    await reactTo(ctx, args, false);
  },
  async search(ctx, args) {
    const q = args.trim();
    if (!q) {
      ctx.print(failure(ctx.style, "usage: /search TEXT"));
      return;
    }
    const page = await ctx.client.search(q, { limit: 20 });
    const n = page.msgs.length;
    ctx.print(notice(ctx.style, `search "${q}": ${n === 0 ? "nothing found" : `${n} message${n === 1 ? "" : "s"}, newest first${page.more ? " (the newest 20)" : ""}`}`));
    for (const m of page.msgs) {
      ctx.recent.add(m);
      ctx.print(formatMessage(m, ctx.me, ctx.style, undefined, { ...ctx.view, ids: true }));
    }
  },
  async unread(ctx) {
    await ctx.flushReads?.();
    ctx.print(notice(ctx.style, unreadSummary(await ctx.client.conversations())));
  },
  async next(ctx) {
    await ctx.flushReads?.();
    const c = (await ctx.client.conversations()).find((x) => x.unread > 0);
    if (!c) {
      ctx.print(notice(ctx.style, "nothing unread"));
      return;
    }
    const t: Target = c.group !== undefined ? { group: c.group } : { user: c.user! };
    ctx.setCurrent(t);
    ctx.print(notice(ctx.style, `talking in ${targetLabel(t)}: ${c.unread} new`));
    const page = await ctx.client.history(t, { after: c.read, limit: 100 });
    for (const m of page.msgs) {
      if (m.kind !== undefined) continue;
      ctx.recent.add(m);
      ctx.print(formatMessage(m, ctx.me, ctx.style, undefined, ctx.view));
    }
    if (page.more) ctx.print(notice(ctx.style, "more: /history"));
    ctx.markRead(t, c.last);
  },
  async ids(ctx) {
    ctx.view.ids = !ctx.view.ids;
    ctx.print(notice(ctx.style, ctx.view.ids ? "message ids (^ID) are shown" : "message ids are hidden"));
  },
  async "send-file"(ctx, args) {
    const t = needCurrent(ctx);
    if (!t) return;
    const path = args.trim();
    if (!path) {
      ctx.print(failure(ctx.style, "usage: /send-file PATH"));
      return;
    }
    let data: Uint8Array;
    try {
      data = new Uint8Array(await readFile(path));
    } catch (e) {
      ctx.print(failure(ctx.style, `cannot read ${path}: ${(e as Error).message}`));
      return;
    }
    sendAndShow(ctx, { ...t, file: { name: basename(path), type: mediaType(path), data } });
  },
};

/** The commands' names, for Tab. */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);

/** Runs one typed line. Returns "quit" for /quit. */
export async function runLine(ctx: CommandContext, line: string): Promise<void | "quit"> {
  const trimmed = line.trim();
  if (trimmed === "") return;
  if (!trimmed.startsWith("/") || trimmed.startsWith("//")) {
    const t = needCurrent(ctx);
    if (t) sendAndShow(ctx, { ...t, text: trimmed.startsWith("//") ? line.trimStart().slice(1) : line });
    return;
  }
  const [, name = "", args = ""] = /^\/(\S*)\s*([\s\S]*)$/.exec(trimmed) ?? [];
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    ctx.print(failure(ctx.style, `unknown command /${name}: /help lists them`));
    return;
  }
  try {
    return await cmd(ctx, args);
  } catch (e) {
    ctx.print(failure(ctx.style, `/${name}: ${describe(ctx, e, { request: name === "to" || name === "next" ? undefined : name })}`));
  }
}
