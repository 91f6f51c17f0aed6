// edit, delete, react, read, convs, typing (PROTOCOL.md §3.6), search (§3.7).
//
// Every change to a conversation is an entry of the same mid-ordered log as its messages
// (src/store/store.ts, EntryKind): it is queued for the batcher like a send, so it gets a mid,
// its reply follows the commit, and it reaches every node, every device and every `sync` in
// mid order, with no path of its own. Only `read` entries are the reader's own: stored in their
// log and delivered to their devices alone.
import { ProtocolError } from "../../protocol/errors.ts";
import type { RequestOf, Target } from "../../protocol/requests.ts";
import { type ConvState, dmConv, type EntryInfo, type EntryKind, groupConv, type NewMessage } from "../../store/store.ts";
import { type Command, type Context, DEFER, type Reply } from "../command.ts";
import type { Session } from "../session.ts";
import { requireConversation, requireUnmuted } from "./checks.ts";
import { REPLY_ITEMS_PER_REQUEST } from "./groups.ts";
import { afterOwnSends, longerThan, page, pageLimit } from "./messages.ts";

/** The conversation key of a request's group or user, for the caller. */
export function convKey(session: Session, req: Target): string {
  return req.group !== undefined ? groupConv(req.group) : dmConv(session.user!, req.user!);
}

/**
 * Message `mid` of the conversation a request names, once the caller may see the conversation:
 * `not_found` if it is not a message of that conversation (another conversation's, an entry
 * that is not a message, no such mid) or if it was deleted.
 */
export async function requireMessage(ctx: Context, session: Session, req: Target, mid: number): Promise<EntryInfo> {
  const conv = convKey(session, req);
  const check = requireConversation(ctx, session.user!, req);
  if (check !== undefined) await check;
  const info = await ctx.store.entryAt(conv, mid);
  const where = req.group !== undefined ? `#${req.group}` : `your conversation with ${req.user}`;
  if (!info || info.kind !== undefined) throw new ProtocolError("not_found", `no message ${mid} in ${where}`);
  if (info.deleted) throw new ProtocolError("not_found", `message ${mid} was deleted`);
  return info;
}

/**
 * Queues an entry of `me` about `ref` in the request's conversation; the reply follows its commit.
 * `me` is the user as the request began: after a wait for the store the connection may be gone
 * (and `session.user` undefined), and the entry is stored all the same, as a send would be.
 */
function queueEntry(
  ctx: Context,
  session: Session,
  me: string,
  req: Target & { id?: number },
  kind: EntryKind,
  ref: number,
  text?: string,
): typeof DEFER {
  const m: NewMessage = { sender: me, grp: req.group, toUser: req.user, kind, ref };
  if (text !== undefined) m.text = text;
  ctx.enqueue(session, req.id, m);
  return DEFER;
}

export const edit: Command<RequestOf<"edit">> = {
  auth: true,
  async run(ctx, session, req): Promise<typeof DEFER> {
    if (longerThan(req.text, ctx.config.maxText))
      throw new ProtocolError("too_large", `text is longer than ${ctx.config.maxText} bytes`);
    const me = session.user!;
    const info = await requireMessage(ctx, session, req, req.mid);
    if (info.sender !== me) throw new ProtocolError("forbidden", `only ${info.sender}, who sent message ${req.mid}, can edit it`);
    if (req.group !== undefined) await requireUnmuted(ctx, req.group, me);
    return queueEntry(ctx, session, me, req, "edit", req.mid, req.text);
  },
};

export const del: Command<RequestOf<"delete">> = {
  auth: true,
  async run(ctx, session, req): Promise<typeof DEFER> {
    const me = session.user!;
    const info = await requireMessage(ctx, session, req, req.mid);
    if (info.sender !== me) {
      // A group's owner and admins may delete any of its messages; a direct message only its sender.
      const role = req.group !== undefined ? (await ctx.store.member(req.group, me))?.role : undefined;
      if (role !== "owner" && role !== "admin")
        throw new ProtocolError("forbidden", `only ${info.sender}, who sent message ${req.mid}${req.group !== undefined ? ", or the group's owner and admins" : ""}, can delete it`);
    }
    return queueEntry(ctx, session, me, req, "delete", req.mid);
  },
};

export const react: Command<RequestOf<"react">> = {
  auth: true,
  async run(ctx, session, req): Promise<typeof DEFER> {
    const me = session.user!;
    await requireMessage(ctx, session, req, req.mid);
    if (req.group !== undefined) await requireUnmuted(ctx, req.group, me);
    return queueEntry(ctx, session, me, req, req.remove === true ? "unreact" : "react", req.mid, req.emoji);
  },
};

export const read: Command<RequestOf<"read">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply | typeof DEFER> {
    const me = session.user!;
    const conv = convKey(session, req);
    const check = requireConversation(ctx, session.user!, req);
    if (check !== undefined) await check;
    // A marker that would not move is answered without an entry (this device's earlier reads first).
    const pending = ctx.ownSendsSettled(session);
    if (pending !== undefined) await pending;
    const marker = await ctx.store.readMarker(me, conv);
    if (req.mid <= marker) return { read: marker };
    return queueEntry(ctx, session, me, req, "read", req.mid);
  },
};

/** One conversation of `convs` on the wire (PROTOCOL.md §3.6). */
function wireConv(c: ConvState): Reply {
  const out: Reply = c.grp !== undefined ? { group: c.grp } : { user: c.peer };
  out.last = c.last;
  out.read = c.read;
  out.unread = c.unread;
  out.mentions = c.mentions;
  const p = c.preview;
  if (p) out.preview = { mid: p.mid, ts: p.ts, from: p.sender, text: p.text, file: p.file };
  return out;
}

export const convs: Command<RequestOf<"convs">> = {
  auth: true,
  run(ctx, session) {
    const me = session.user!;
    return afterOwnSends(ctx, session, async () => {
      const list = await ctx.store.convs(me);
      // One more request of the rate per 100 conversations listed (PROTOCOL.md §2.4).
      ctx.chargeExtra(session, Math.floor(list.length / REPLY_ITEMS_PER_REQUEST));
      // Most recent first; then by name, so that the order is the same on every server.
      list.sort((a, b) => b.last - a.last || (a.conv < b.conv ? -1 : a.conv > b.conv ? 1 : 0));
      return { convs: list.map(wireConv) };
    });
  },
};

/** `typing {group | user}`: ephemeral, never stored (PROTOCOL.md §3.6, §5.5). */
export const typing: Command<RequestOf<"typing">> = {
  auth: true,
  run(ctx, session, req) {
    const check = requireConversation(ctx, session.user!, req);
    const tell = (): Reply => {
      // Not passed on from a muted member, nor to one who takes no direct messages from the caller.
      if (session.user !== undefined && (req.group === undefined || ctx.hub.mutedUntil(req.group, session.user, Date.now()) === undefined))
        ctx.typing(session, req);
      return {};
    };
    if (req.user !== undefined && req.user !== session.user) {
      const me = session.user!;
      return (async () => {
        if (check !== undefined) await check;
        return (await ctx.store.dmAllowed(me, req.user!)) ? tell() : {};
      })();
    }
    return check === undefined ? tell() : check.then(tell);
  },
};

/** Largest mid bound (mids are below 2^53). */
const NO_BOUND = Number.MAX_SAFE_INTEGER;

/**
 * `search {q, before?, limit?}`: messages of the caller's conversations containing `q`, newest
 * first, a page like history's (cut by bytes too), PROTOCOL.md §3.7.
 */
export const search: Command<RequestOf<"search">> = {
  auth: true,
  run(ctx, session, req) {
    const limit = pageLimit(ctx, session, req.limit);
    const user = session.user!;
    return afterOwnSends(ctx, session, async () => {
      const found = await ctx.store.search(user, req.q, req.before ?? NO_BOUND, limit + 1);
      const r = await page(ctx, session, found, limit);
      (r.msgs as unknown[]).reverse(); // messagesByMid gives them oldest first
      return r;
    });
  },
};
