// The interactive client's slash commands, and plain lines (messages to the
// current conversation). Each command is a small async function over a context.
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename } from "node:path";
import type { ChatClient } from "../client.ts";
import { type ChatMessage, type DmPolicy, type GroupChangeKind, type LoginResult, type MaybeStored, MUTED_FOREVER, type Target } from "../types.ts";
import { parseTarget } from "./args.ts";
import { explain, type Situation } from "./explain.ts";
import { mediaType, saveAs, saveDownload } from "./files.ts";
import { ChatError, TooLargeError } from "../errors.ts";
import { failure, fileLabel, formatChange, formatMessage, type GroupChange, groupChangeOf, groupNotice, inert, type MessageView, notice, progressLabel, sizeLabel, type Style, targetLabel, unreadSummary } from "./format.ts";
import type { OwnChanges } from "./own.ts";
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
  /** The changes to groups this client is making, so that their pushed entries are not shown twice. */
  own?: OwnChanges;
  /** Where /get saves files (the --downloads folder). */
  downloads?: string;
  /** Shows how far a transfer is (in the status line), under `key`; `undefined` takes it away. */
  progress?(key: string, text: string | undefined): void;
}

/** Numbers the transfers shown in the status line. */
let transfers = 0;

/** Reports a transfer's progress in whole percents (not on every chunk). */
function progressOf(ctx: CommandContext, key: string, up: boolean, name: string): (p: { phase: string; bytes: number; total: number }) => void {
  let shown = -1;
  return (p) => {
    const pct = p.total > 0 ? Math.floor((p.bytes / p.total) * 100) : 0;
    if (pct === shown) return;
    shown = pct;
    ctx.progress?.(key, p.phase === "hashing" ? `${up ? "↑" : "↓"} ${inert(name)} checking ${pct}%` : progressLabel(up, name, p.bytes, p.total));
  };
}

/** A path as typed: surrounding quotes dropped, a leading ~ is the home folder. */
function typedPath(arg: string): string {
  let p = arg.trim();
  if (/^(["']).*\1$/.test(p) && p.length >= 2) p = p.slice(1, -1);
  if (p === "~" || p.startsWith("~/")) p = homedir() + p.slice(1);
  return p;
}

type Command = (ctx: CommandContext, args: string) => Promise<void | "quit">;

export const HELP = `commands:
  /join GROUP          join a group and talk there (a private one needs an invitation)
  /create GROUP        create a group, with you as its owner
  /leave [GROUP]       leave a group (default: the current one)
  /list [TEXT]         public groups (whose name contains TEXT)
  /invites             your open invitations
  /to GROUP | @USER    talk in a group, or directly with a user (opens its view)
  /views               the open views, numbered: Alt-1..9 shows one
  /msg @USER TEXT      send one direct message without switching
  /groups              your groups
  /members [GROUP]     a group's members and who is online
  /who                 who is online in your groups
  /history [N]         the last N messages here (default 20)
  /send-file PATH      send a file here (its progress shows in the status line)
  /get [ID] [PATH]     download the file of message ID (shown after it: "(/get ID)"; default:
                       the newest file here) into the downloads folder, or to PATH
  /reply [^ID] TEXT    answer a message here (default: the last one from someone else)
  /edit [^ID] TEXT     change your message (default: your last one here)
  /delete [^ID]        delete your message, or any in a group you own (default: your last one here)
  /react [^ID] EMOJI   react to a message (default: the last one from someone else); /unreact takes it back
  /search TEXT         search your conversations, newest first
  /unread              what is unread, where
  /next                go to the newest conversation with unread messages and show them (Alt-n)
  /ids                 show message ids (^ID) before messages, or stop
in a group you run (these act on the current group, or on #GROUP given first):
  /invite @USER        let USER join (also a private group)
  /kick @USER          remove USER (they may join again); /ban @USER: and keep them out; /unban @USER
  /mute @USER [MIN]    USER may not send here (for MIN minutes, or until /unmute @USER)
  /op @USER, /deop @USER  make USER an admin, or a member again (the owner only)
  /transfer @USER      hand the group on to USER (the owner only; you stay an admin)
  /topic [TEXT]        show or set the topic; /private, /public: who may join
safety:
  /block @USER         no direct messages from USER; /unblock @USER; /blocked lists them
  /dms [anyone|groups|nobody]  who may send you direct messages (groups: who shares a group with you)
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

/**
 * The group a group command acts on: `#GROUP` as the first word of `args`, else
 * the current group; and the rest of `args`. Undefined (and why printed) if none.
 */
function groupFirst(ctx: CommandContext, args: string, usage: string): { group: string; rest: string } | undefined {
  const m = /^\s*#(\S*)\s*([\s\S]*)$/.exec(args);
  if (m) {
    const t = parseTarget(`#${m[1]}`);
    if (t?.group) return { group: t.group, rest: m[2]!.trim() };
    ctx.print(failure(ctx.style, `"#${m[1]}" is not a group name`));
    return undefined;
  }
  if (ctx.current?.group !== undefined) return { group: ctx.current.group, rest: args.trim() };
  ctx.print(failure(ctx.style, `which group? /to a group first, or give it: ${usage}`));
  return undefined;
}

/** A user name, "@bob" or "bob"; undefined if it is not one. */
function userName(word: string | undefined): string | undefined {
  if (!word) return undefined;
  return parseTarget(word.startsWith("@") ? word : `@${word}`)?.user;
}

/** The group and the user of `/kick [#GROUP] @USER ...`, and the words after them. */
function groupAndUser(ctx: CommandContext, args: string, usage: string): { group: string; user: string; more: string[] } | undefined {
  const g = groupFirst(ctx, args, usage);
  if (!g) return undefined;
  const [word, ...more] = g.rest.split(/\s+/).filter(Boolean);
  const user = userName(word);
  if (!user) {
    ctx.print(failure(ctx.style, `usage: ${usage}`));
    return undefined;
  }
  return { group: g.group, user, more };
}

/** Prints in the group's view, and in the view shown too if that is another one. */
function printFor(ctx: CommandContext, group: string, line: string): void {
  ctx.print(line, { group });
  if (ctx.current?.group !== group) ctx.print(line);
}

/**
 * Makes a change to a group (PROTOCOL.md §3.3) and says how it went: the entry it
 * stored, in the words the others see it in (its push is then not shown again),
 * or `unchanged` if it stored none (muting the muted); a refusal in plain words.
 */
async function changeGroup(
  ctx: CommandContext,
  what: { request: string; kind: GroupChangeKind; group: string; target: string; extra?: Partial<GroupChange> | ((ts: number) => Partial<GroupChange>); unchanged: string },
  run: () => Promise<MaybeStored>,
): Promise<void> {
  const { group, target, kind } = what;
  const end = ctx.own?.begin(kind, group, target);
  let r: MaybeStored;
  try {
    r = await run();
  } catch (e) {
    end?.();
    printFor(ctx, group, failure(ctx.style, `/${what.request}: ${explain(e, { request: what.request, where: `#${group}`, user: target, limits: ctx.limits })}`));
    return;
  }
  end?.(r.mid);
  if (r.mid === undefined || r.ts === undefined) {
    printFor(ctx, group, notice(ctx.style, `nothing changed: ${what.unchanged}`));
    return;
  }
  const extra = typeof what.extra === "function" ? what.extra(r.ts) : what.extra;
  const line = groupNotice(ctx.style, { group, ts: r.ts, from: ctx.me, kind, target, ...extra }, ctx.me);
  if (line) printFor(ctx, group, line);
}

/** A moderation command: `/NAME [#GROUP] @USER`, made by the library's method of the same request. */
function moderation(
  request: "invite" | "kick" | "ban" | "unban" | "unmute" | "transfer",
  kind: GroupChangeKind,
  unchanged: (user: string, group: string) => string,
  call: (client: ChatClient, group: string, user: string) => Promise<MaybeStored>,
): Command {
  return async (ctx, args) => {
    const usage = `/${request} [#GROUP] @USER`;
    const a = groupAndUser(ctx, args, usage);
    if (!a) return;
    if (a.more.length > 0) {
      ctx.print(failure(ctx.style, `usage: ${usage}`));
      return;
    }
    const { group, user } = a;
    await changeGroup(ctx, { request, kind, group, target: user, unchanged: unchanged(user, `#${group}`) }, () => call(ctx.client, group, user));
  };
}

/** `/op` and `/deop`: a member's role (the owner only). */
function roleCommand(role: "admin" | "member"): Command {
  return async (ctx, args) => {
    const usage = `/${role === "admin" ? "op" : "deop"} [#GROUP] @USER`;
    const a = groupAndUser(ctx, args, usage);
    if (!a || a.more.length > 0) {
      if (a) ctx.print(failure(ctx.style, `usage: ${usage}`));
      return;
    }
    const { group, user } = a;
    await changeGroup(
      ctx,
      { request: "role", kind: "role", group, target: user, extra: { role }, unchanged: `${user} is ${role === "admin" ? "an admin" : "a member"} of #${group} already` },
      () => ctx.client.setRole(group, user, role),
    );
  };
}

/** `/private` and `/public`. */
function visibility(pub: boolean): Command {
  return async (ctx, args) => {
    const g = groupFirst(ctx, args, `/${pub ? "public" : "private"} [#GROUP]`);
    if (!g) return;
    const { group } = g;
    await changeGroup(
      ctx,
      { request: "configure", kind: "settings", group, target: ctx.me, extra: { settings: { public: pub } }, unchanged: `#${group} is ${pub ? "public" : "private"} already` },
      () => ctx.client.configure(group, { public: pub }),
    );
  };
}

/** `/block` and `/unblock`. */
function blocking(block: boolean): Command {
  return async (ctx, args) => {
    const user = userName(args.trim());
    if (!user) {
      ctx.print(failure(ctx.style, `usage: /${block ? "block" : "unblock"} @USER`));
      return;
    }
    let changed: boolean;
    try {
      changed = block ? await ctx.client.block(user) : await ctx.client.unblock(user);
    } catch (e) {
      ctx.print(failure(ctx.style, `/${block ? "block" : "unblock"}: ${explain(e, { request: block ? "block" : "unblock", user })}`));
      return;
    }
    if (block) ctx.print(notice(ctx.style, changed ? `blocked ${user}: their direct messages to you are refused (they are not told why)` : `${user} was blocked already`));
    else ctx.print(notice(ctx.style, changed ? `unblocked ${user}` : `${user} was not blocked`));
  };
}

const DMS: Record<DmPolicy, string> = {
  anyone: "anyone may send you direct messages",
  groups: "only people who share a group with you may send you direct messages",
  nobody: "nobody may send you direct messages (notes to yourself still work)",
};

/** An entry of a history page: a message, or a change to the group as a notice; other entries are not shown. */
function showEntry(ctx: CommandContext, m: ChatMessage): void {
  if (m.kind === undefined) {
    ctx.recent.add(m);
    ctx.print(formatMessage(m, ctx.me, ctx.style, undefined, ctx.view));
    return;
  }
  const g = groupChangeOf(m);
  const line = g && groupNotice(ctx.style, g, ctx.me);
  if (line) ctx.print(line);
}

/** A time today as HH:MM:SS, else with its date. */
function clockOrDate(ts: number): string {
  const d = new Date(ts);
  const time = d.toTimeString().slice(0, 8);
  return d.toDateString() === new Date().toDateString() ? time : `${d.toISOString().slice(0, 10)} ${time}`;
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
    const end = ctx.own?.begin("join", group, ctx.me);
    try {
      r = await ctx.client.join(group);
      end?.(r.mid);
    } catch (e) {
      end?.();
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
    const end = ctx.own?.begin("create", group, ctx.me);
    try {
      end?.((await ctx.client.createGroup(group)).mid);
    } catch (e) {
      end?.();
      throw e;
    }
    ctx.setCurrent({ group });
    ctx.print(notice(ctx.style, `created #${group}, you own it`));
    ctx.markRead({ group });
  },
  async leave(ctx, args) {
    const group = groupArg(ctx, args, true);
    if (!group) return;
    const end = ctx.own?.begin("leave", group, ctx.me);
    try {
      end?.((await ctx.client.leave(group)).mid);
    } catch (e) {
      end?.();
      throw e;
    }
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
    const about = (m: (typeof ms)[number]) => {
      const parts = [m.online ? "online" : "offline"];
      if (m.role !== "member") parts.push(m.role);
      if (m.muted !== undefined) parts.push(m.muted >= MUTED_FOREVER ? "muted" : `muted until ${clockOrDate(m.muted)}`);
      return `${m.user} (${parts.join(", ")})`;
    };
    ctx.print(notice(ctx.style, `members of #${group}: ${ms.map(about).join(", ")}`));
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
    // Messages as they are now, and the changes to the group (joins, kicks...) between them;
    // the entries that changed messages (edits, reactions...) are not shown again.
    const msgs = page.msgs.filter((m) => m.kind === undefined);
    ctx.print(notice(ctx.style, `history of ${targetLabel(t)}: ${msgs.length} message${msgs.length === 1 ? "" : "s"}${page.more ? " (more before)" : ""}`));
    for (const m of page.msgs) showEntry(ctx, m);
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
    for (const m of page.msgs) showEntry(ctx, m);
    if (page.more) ctx.print(notice(ctx.style, "more: /history"));
    ctx.markRead(t, c.last);
  },
  async ids(ctx) {
    ctx.view.ids = !ctx.view.ids;
    ctx.print(notice(ctx.style, ctx.view.ids ? "message ids (^ID) are shown" : "message ids are hidden"));
  },
  async list(ctx, args) {
    const q = args.trim();
    const r = await ctx.client.listGroups({ ...(q ? { q } : {}), limit: 50 });
    const matching = q ? ` matching "${inert(q)}"` : "";
    if (r.groups.length === 0) {
      ctx.print(notice(ctx.style, `no public groups${matching}${q ? "" : " yet: /create GROUP makes one"}`));
      return;
    }
    ctx.print(notice(ctx.style, `public groups${matching}: ${r.groups.length}${r.more ? " (the first 50: /list TEXT narrows it)" : ""}; /join GROUP joins one`));
    for (const g of r.groups) ctx.print(notice(ctx.style, `#${g.group} (${g.members} member${g.members === 1 ? "" : "s"})${g.topic ? `: ${inert(g.topic)}` : ""}`));
  },
  async invites(ctx) {
    const inv = await ctx.client.invitations();
    if (inv.length === 0) {
      ctx.print(notice(ctx.style, "no open invitations"));
      return;
    }
    ctx.print(notice(ctx.style, `invitations: ${inv.map((i) => `#${i.group} (from ${i.by})${i.topic ? `: ${inert(i.topic)}` : ""}`).join(", ")}; /join GROUP accepts one`));
  },
  invite: moderation("invite", "invite", (u, g) => `${u} is invited to ${g} already`, (c, g, u) => c.invite(g, u)),
  kick: moderation("kick", "kick", (u, g) => `${u} is not in ${g}`, (c, g, u) => c.kick(g, u)),
  ban: moderation("ban", "ban", (u, g) => `${u} is banned from ${g} already`, (c, g, u) => c.ban(g, u)),
  unban: moderation("unban", "unban", (u, g) => `${u} is not banned from ${g}`, (c, g, u) => c.unban(g, u)),
  unmute: moderation("unmute", "unmute", (u, g) => `${u} is not muted in ${g}`, (c, g, u) => c.unmute(g, u)),
  transfer: moderation("transfer", "owner", (u, g) => `${u} owns ${g} already`, (c, g, u) => c.transfer(g, u)),
  op: roleCommand("admin"),
  deop: roleCommand("member"),
  private: visibility(false),
  public: visibility(true),
  async mute(ctx, args) {
    const usage = "/mute [#GROUP] @USER [MINUTES]";
    const a = groupAndUser(ctx, args, usage);
    if (!a) return;
    const min = a.more.length === 0 ? undefined : Number(a.more[0]);
    if (a.more.length > 1 || (min !== undefined && !(Number.isFinite(min) && min > 0 && min <= 10 * 365 * 24 * 60))) {
      ctx.print(failure(ctx.style, `usage: ${usage} (minutes: more than 0, at most ten years)`));
      return;
    }
    const { group, user } = a;
    const secs = min === undefined ? undefined : Math.max(1, Math.round(min * 60));
    await changeGroup(
      ctx,
      {
        request: "mute",
        kind: "mute",
        group,
        target: user,
        // The mute ends `secs` after the entry (its `until`, as the others see it).
        extra: (ts) => (secs === undefined ? {} : { until: ts + secs * 1000 }),
        unchanged: `${user} is muted in #${group} already`,
      },
      () => ctx.client.mute(group, user, secs),
    );
  },
  async topic(ctx, args) {
    const g = groupFirst(ctx, args, "/topic [#GROUP] [TEXT]");
    if (!g) return;
    const { group, rest } = g;
    if (!rest) {
      const info = (await ctx.client.groups()).find((x) => x.group === group);
      if (!info) ctx.print(failure(ctx.style, `you are not in #${group}`));
      else ctx.print(notice(ctx.style, info.topic ? `topic of #${group}: ${inert(info.topic)}` : `#${group} has no topic: /topic TEXT sets one`));
      return;
    }
    await changeGroup(
      ctx,
      { request: "configure", kind: "settings", group, target: ctx.me, extra: { settings: { topic: rest } }, unchanged: `that is the topic of #${group} already` },
      () => ctx.client.configure(group, { topic: rest }),
    );
  },
  block: blocking(true),
  unblock: blocking(false),
  async blocked(ctx) {
    const users = await ctx.client.blocked();
    ctx.print(notice(ctx.style, users.length === 0 ? "you block nobody" : `you block: ${users.join(", ")}`));
  },
  async dms(ctx, args) {
    const want = args.trim();
    if (want !== "" && want !== "anyone" && want !== "groups" && want !== "nobody") {
      ctx.print(failure(ctx.style, "usage: /dms [anyone|groups|nobody]"));
      return;
    }
    const now = await ctx.client.privacy(want === "" ? undefined : want);
    ctx.print(notice(ctx.style, DMS[now]));
  },
  async "send-file"(ctx, args) {
    const t = needCurrent(ctx);
    if (!t) return;
    const path = typedPath(args);
    if (!path) {
      ctx.print(failure(ctx.style, "usage: /send-file PATH"));
      return;
    }
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: st.isDirectory() ? "EISDIR" : "EINVAL" });
      size = st.size;
    } catch (e) {
      ctx.print(failure(ctx.style, `cannot read ${path}: ${explain(e)}`));
      return;
    }
    const name = basename(path);
    const where = targetLabel(t);
    const situation: Situation = { request: "send-file", where, limits: ctx.limits, file: true };
    const max = ctx.limits?.max_file;
    if (max && size > max) {
      ctx.print(failure(ctx.style, `"${inert(name)}" not sent to ${where}: ${explain(new TooLargeError("too_large", "", "upload"), situation)}`));
      return;
    }
    if (ctx.client.state !== "ready") ctx.print(notice(ctx.style, "not connected: the file will be sent when the connection is back"));
    ctx.print(notice(ctx.style, `sending "${inert(name)}" (${sizeLabel(size)}) to ${where}...`));
    // In the background: the upload may take a while, and lines typed meanwhile go out at once.
    const key = `up${++transfers}`;
    ctx.client.sendFile(t, path, { name, type: mediaType(path), onProgress: progressOf(ctx, key, true, name) }).then(
      (m) => {
        ctx.progress?.(key, undefined);
        ctx.recent.add(m);
        ctx.print(formatMessage(m, ctx.me, ctx.style, undefined, ctx.view), t);
      },
      (e) => {
        ctx.progress?.(key, undefined);
        ctx.print(failure(ctx.style, `"${inert(name)}" not sent to ${where}: ${explain(e, situation)}`), t);
      },
    );
  },
  async get(ctx, args) {
    const m = /^\s*\^?(\d+)(?:\s+([\s\S]*))?$/.exec(args);
    const here = ctx.current;
    let mid = m ? Number(m[1]) : undefined;
    const dest = typedPath(m ? (m[2] ?? "") : args);
    if (mid === undefined) {
      mid = here ? ctx.recent.lastFile(here) : undefined;
      if (mid === undefined) {
        ctx.print(failure(ctx.style, "no file here yet: /get ID takes the number shown after a file"));
        return;
      }
    }
    // The file's name, size and SHA-256 (to check the bytes) are in its message: one seen, or found here.
    let file = ctx.recent.file(mid);
    if (!file && here) {
      const page = await ctx.client.history(here, { before: mid + 1, limit: 1 });
      const found = page.msgs.find((x) => x.mid === mid && x.kind === undefined);
      if (found?.file && found.deleted === undefined) {
        ctx.recent.add(found);
        file = found.file;
      }
    }
    if (!file) {
      ctx.print(failure(ctx.style, `no file ${mid} ${here ? `in ${targetLabel(here)}` : "seen"}: /get ID takes the number shown after a file, in its conversation`));
      return;
    }
    const f = file;
    ctx.print(notice(ctx.style, `downloading ${fileLabel(f)}...`));
    const key = `down${++transfers}`;
    const data = ctx.client.download({ mid, ts: 0, from: "", file: f }, { onProgress: progressOf(ctx, key, false, f.name) });
    const into = dest ? await stat(dest).then((st) => st.isDirectory(), () => false) : true;
    const dir = dest && into ? dest : (ctx.downloads ?? ".");
    (into ? saveDownload(dir, f.name, data) : saveAs(dest, data)).then(
      (path) => {
        ctx.progress?.(key, undefined);
        ctx.print(notice(ctx.style, `saved ${fileLabel(f)} (SHA-256 checked) -> ${inert(path)}`));
      },
      (e) => {
        ctx.progress?.(key, undefined);
        ctx.print(failure(ctx.style, `${fileLabel(f)} not saved: ${describe(ctx, e, { request: "get" })}`));
      },
    );
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
