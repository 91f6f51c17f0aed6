// send, history, sync. PROTOCOL.md §3.4
import { ProtocolError } from "../../protocol/errors.ts";
import { isGroupKind, type WireFile, type WireMessage, type WireSettings } from "../../protocol/pushes.ts";
import type { RequestOf } from "../../protocol/requests.ts";
import { dmConv, type FileData, groupConv, type MidSize, type NewMessage, type StoredMessage } from "../../store/store.ts";
import { type Command, type Context, DEFER, type Reply } from "../command.ts";
import type { Session } from "../session.ts";
import { requireConversation, requireDm, requireSender } from "./checks.ts";
import { fileToSend } from "./files.ts";
import { REPLY_ITEMS_PER_REQUEST } from "./groups.ts";

/** `limit` when a request gives none. */
export const DEFAULT_PAGE = 100;

/** Whether `s` is longer than `max` UTF-8 bytes. Counting is skipped when length alone decides. */
export function longerThan(s: string, max: number): boolean {
  // UTF-8 takes at least 1 and at most 3 bytes per UTF-16 unit.
  if (s.length > max) return true;
  if (s.length * 3 <= max) return false;
  return Buffer.byteLength(s) > max;
}

/**
 * Checks the text's size and queues the message of `me` for the next commit (the ack follows it).
 * `me` is the user as the request began: a wait for the store may have outlived the connection.
 */
function queueSend(ctx: Context, session: Session, me: string, req: RequestOf<"send">, file: FileData | undefined): typeof DEFER {
  if (req.text !== undefined && longerThan(req.text, ctx.config.maxText))
    throw new ProtocolError("too_large", `text is longer than ${ctx.config.maxText} bytes`);
  const m: NewMessage = { sender: me, grp: req.group, toUser: req.user, cid: req.cid, text: req.text, file };
  if (req.reply !== undefined) m.ref = req.reply;
  ctx.enqueue(session, req.id, m);
  return DEFER;
}

/** A reply must answer a message of the same conversation that is not deleted (PROTOCOL.md §3.6). */
async function replyable(ctx: Context, me: string, req: RequestOf<"send">, reply: number): Promise<void> {
  const conv = req.group !== undefined ? groupConv(req.group) : dmConv(me, req.user!);
  const info = await ctx.store.entryAt(conv, reply);
  if (!info || info.kind !== undefined) throw new ProtocolError("not_found", `no message ${reply} to reply to in this conversation`);
  if (info.deleted) throw new ProtocolError("not_found", `message ${reply} was deleted`);
}

export const send: Command<RequestOf<"send">> = {
  auth: true,
  run(ctx, session, req) {
    const me = session.user!;
    // A member of the group, or a user known to exist, is queued at once (the hot path);
    // otherwise after the store has answered, the connection's later requests held meanwhile.
    const check = req.group !== undefined ? requireSender(ctx, req.group, me) : requireDm(ctx, me, req.user!);
    if (req.reply !== undefined || req.file !== undefined) {
      const { reply, file } = req;
      return (async (): Promise<typeof DEFER> => {
        if (check !== undefined) await check;
        if (reply !== undefined) await replyable(ctx, me, req, reply);
        // A file: the caller's finished upload (PROTOCOL.md §3.9), which the commit uses up.
        return queueSend(ctx, session, me, req, file && (await fileToSend(ctx, me, file, req.cid)));
      })();
    }
    if (check === undefined) return queueSend(ctx, session, me, req, undefined);
    return check.then(() => queueSend(ctx, session, me, req, undefined));
  },
};

/**
 * A new message as it goes on the wire (PROTOCOL.md §3.5): with `t: "msg"` as a push,
 * without `t` in history and sync pages. Built in one literal (this runs once per
 * message on the fan-out path); fields left undefined are omitted by the encoder.
 */
export function wireMessage(m: NewMessage, mid: number, ts: number, t?: "msg"): WireMessage & { t?: "msg" } {
  if (m.kind !== undefined) return wireEntry(m, mid, ts, t);
  return { t, mid, ts, from: m.sender, group: m.grp, user: m.toUser, text: m.text, file: m.file && wireFile(m.file), cid: m.cid, reply: m.ref };
}

/** A message's file on the wire (PROTOCOL.md §3.5): what it is, never its bytes nor its upload. */
function wireFile(f: FileData): WireFile {
  return { name: f.name, type: f.type, size: f.size, sha256: f.sha256 };
}

/** An entry other than a message (edit, delete, react, unreact, read, a group change), PROTOCOL.md §3.5. */
function wireEntry(m: NewMessage, mid: number, ts: number, t?: "msg"): WireMessage & { t?: "msg" } {
  if (isGroupKind(m.kind)) return wireGroupChange(m, mid, ts, t);
  const react = m.kind === "react" || m.kind === "unreact";
  return {
    t,
    mid,
    ts,
    from: m.sender,
    group: m.grp,
    user: m.toUser,
    kind: m.kind,
    ref: m.ref,
    text: react ? undefined : m.text,
    emoji: react ? m.text : undefined,
    cid: m.cid,
  };
}

/** A change to a group (PROTOCOL.md §3.3): who, about whom, and what it set. */
function wireGroupChange(m: NewMessage, mid: number, ts: number, t?: "msg"): WireMessage & { t?: "msg" } {
  const w: WireMessage & { t?: "msg" } = { t, mid, ts, from: m.sender, group: m.grp, kind: m.kind, target: m.target };
  if (m.kind === "role") w.role = m.text;
  else if (m.text !== undefined) w.settings = JSON.parse(m.text) as WireSettings;
  if (m.until !== undefined) w.until = m.until;
  return w;
}

/** A stored message as it is now (history, sync, a replay): with its edit time, its tombstone, its reactions. */
export function toWire(m: StoredMessage, t?: "msg"): WireMessage & { t?: "msg" } {
  if (m.kind !== undefined) return wireEntry(m, m.mid, m.ts, t);
  return {
    t,
    mid: m.mid,
    ts: m.ts,
    from: m.sender,
    group: m.grp,
    user: m.toUser,
    text: m.text,
    file: m.file && wireFile(m.file),
    cid: m.cid,
    reply: m.ref,
    edited: m.edited,
    deleted: m.deleted,
    reactions: m.reactions,
  };
}

/**
 * Picks a page from (mid, size) pairs read nearest first (PROTOCOL.md §3.4): at most `limit`
 * messages, cut short (with `more`) before the estimated bytes pass `budget`, but at least one
 * message. `more` also when pairs are left over: read `limit + 1` to tell whether there are more.
 */
export function fillPage(
  sizes: readonly MidSize[],
  limit: number,
  budget: number,
): { mids: number[]; more: boolean; bytes: number } {
  const mids: number[] = [];
  let bytes = 0;
  for (const r of sizes) {
    if (mids.length === limit || (mids.length > 0 && bytes + r.size > budget)) return { mids, more: true, bytes };
    mids.push(r.mid);
    bytes += r.size;
  }
  return { mids, more: false, bytes };
}

/**
 * A history or sync page: the ids and sizes first, from the store's indexes, then only the
 * messages that fit are read whole. A page of large files reads no file it does not send
 * (PROTOCOL.md §3.4: at most half of --max-frame). Its bytes are paid from the connection's
 * and address's byte rates before it is read (§2.4): looping over files costs the server
 * no more than sending them did.
 */
export async function page(ctx: Context, session: Session, sizes: readonly MidSize[], limit: number): Promise<Reply> {
  const { mids, more, bytes } = fillPage(sizes, limit, ctx.config.maxFrame / 2);
  const paid = ctx.paceOutput(session, bytes);
  if (paid !== undefined) await paid;
  return { msgs: (await ctx.store.messagesByMid(mids)).map((m) => toWire(m)), more };
}

/** The page size asked for, within --max-page; a page costs one more request of the rate per 100 messages (§2.4). */
export function pageLimit(ctx: Context, session: Session, limit: number | undefined): number {
  const n = Math.max(1, Math.min(limit ?? DEFAULT_PAGE, ctx.config.maxPage));
  ctx.chargeExtra(session, Math.floor(n / REPLY_ITEMS_PER_REQUEST));
  return n;
}

/**
 * Runs `read` once this connection's earlier sends are committed, so the page includes them
 * (PROTOCOL.md §3.4, last paragraph): at once when none is pending; else after the batcher's
 * regular commit (the dispatcher holds this connection's later requests until the reply, so
 * its replies keep their order). Nothing is committed out of turn.
 */
export async function afterOwnSends(ctx: Context, session: Session, read: () => Promise<Reply>): Promise<Reply> {
  const pending = ctx.ownSendsSettled(session);
  if (pending !== undefined) await pending;
  return read();
}

export const history: Command<RequestOf<"history">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const me = session.user!;
    let conv: string;
    // Known at once on the common path: no wait before ownSendsSettled looks at this turn's sends.
    const check = requireConversation(ctx, me, req);
    if (check !== undefined) await check;
    if (req.group !== undefined) conv = groupConv(req.group);
    else conv = dmConv(me, req.user!);
    const limit = pageLimit(ctx, session, req.limit);
    const { after, before } = req;
    const { store } = ctx;
    return afterOwnSends(ctx, session, async () =>
      after !== undefined
        ? page(ctx, session, await store.historySizes(conv, { after, before, limit: limit + 1 }), limit)
        : // Backwards from `before` (or the newest): picked nearest first, answered oldest first.
          page(ctx, session, (await store.historySizes(conv, { before, limit: limit + 1 })).reverse(), limit),
    );
  },
};

export const sync: Command<RequestOf<"sync">> = {
  auth: true,
  run(ctx, session, req) {
    const limit = pageLimit(ctx, session, req.limit);
    const user = session.user!;
    return afterOwnSends(ctx, session, async () => page(ctx, session, await ctx.store.syncSizes(user, req.after, limit + 1), limit));
  },
};
