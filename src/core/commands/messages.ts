// send, history, sync. PROTOCOL.md §3.4
import { ProtocolError } from "../../protocol/errors.ts";
import type { WireMessage } from "../../protocol/pushes.ts";
import type { RequestOf } from "../../protocol/requests.ts";
import { dmConv, groupConv, type StoredMessage } from "../../store/store.ts";
import { type Command, DEFER } from "../command.ts";
import type { ChatCore } from "../chat.ts";
import { requireMember } from "./groups.ts";

/** `limit` when a request gives none. */
export const DEFAULT_PAGE = 100;

function requireUser(core: ChatCore, user: string): void {
  if (!core.userExists(user)) throw new ProtocolError("not_found", `no user "${user}"`);
}

/** Whether `s` is longer than `max` UTF-8 bytes. Counting is skipped when length alone decides. */
function longerThan(s: string, max: number): boolean {
  // UTF-8 takes at least 1 and at most 3 bytes per UTF-16 unit.
  if (s.length > max) return true;
  if (s.length * 3 <= max) return false;
  return Buffer.byteLength(s) > max;
}

export const send: Command<RequestOf<"send">> = {
  auth: true,
  run({ core, session }, req) {
    const me = session.user!;
    if (req.group !== undefined) requireMember(core, req.group, me);
    else requireUser(core, req.user!);
    if (req.text !== undefined && longerThan(req.text, core.config.maxText))
      throw new ProtocolError("too_large", `text is longer than ${core.config.maxText} bytes`);
    core.batcher.enqueue({
      msg: {
        sender: me,
        grp: req.group,
        toUser: req.user,
        cid: req.cid,
        text: req.text,
        // The decoded bytes are a view of the socket's read buffer: keep a copy until the commit.
        file: req.file && { name: req.file.name, type: req.file.type, data: req.file.data.slice() },
      },
      tag: { session, id: req.id },
    });
    return DEFER;
  },
};

export function toWire(m: StoredMessage): WireMessage {
  const w: WireMessage = { mid: m.mid, ts: m.ts, from: m.sender };
  if (m.grp !== undefined) w.group = m.grp;
  if (m.toUser !== undefined) w.user = m.toUser;
  if (m.text !== undefined) w.text = m.text;
  if (m.file !== undefined) w.file = m.file;
  if (m.cid !== undefined) w.cid = m.cid;
  return w;
}

function approxSize(m: StoredMessage): number {
  return 96 + (m.text?.length ?? 0) * 3 + (m.file ? m.file.data.length + m.file.name.length + m.file.type.length : 0);
}

/**
 * Cuts a page to what fits in half a frame, keeping the messages nearest the
 * cursor (the oldest when paging forward, the newest when paging back), so a
 * reply always fits the client's frame limit; at least one message is kept.
 */
function fitPage(rows: StoredMessage[], budget: number, keepNewest: boolean): { msgs: StoredMessage[]; cut: boolean } {
  let size = 0;
  if (keepNewest) {
    for (let i = rows.length - 1; i >= 0; i--) {
      size += approxSize(rows[i]!);
      if (size > budget && i < rows.length - 1) return { msgs: rows.slice(i + 1), cut: true };
    }
  } else {
    for (let i = 0; i < rows.length; i++) {
      size += approxSize(rows[i]!);
      if (size > budget && i > 0) return { msgs: rows.slice(0, i), cut: true };
    }
  }
  return { msgs: rows, cut: false };
}

function pageLimit(core: ChatCore, limit: number | undefined): number {
  return Math.max(1, Math.min(limit ?? DEFAULT_PAGE, core.config.maxPage));
}

export const history: Command<RequestOf<"history">> = {
  auth: true,
  run({ core, session }, req) {
    const me = session.user!;
    let conv: string;
    if (req.group !== undefined) {
      requireMember(core, req.group, me);
      conv = groupConv(req.group);
    } else {
      requireUser(core, req.user!);
      conv = dmConv(me, req.user!);
    }
    const limit = pageLimit(core, req.limit);
    const forward = req.after !== undefined;
    core.batcher.flush(true); // read your own writes: sends this connection made before are in the page
    // One more than asked tells whether there is more beyond this page.
    let rows = core.store.history(conv, { before: req.before, after: req.after, limit: limit + 1 });
    let more = rows.length > limit;
    if (more) rows = forward ? rows.slice(0, limit) : rows.slice(1);
    const fit = fitPage(rows, core.config.maxFrame / 2, !forward);
    return { msgs: fit.msgs.map(toWire), more: more || fit.cut };
  },
};

export const sync: Command<RequestOf<"sync">> = {
  auth: true,
  run({ core, session }, req) {
    const limit = pageLimit(core, req.limit);
    core.batcher.flush(true);
    let rows = core.store.sync(session.user!, req.after, limit + 1);
    const more = rows.length > limit;
    if (more) rows = rows.slice(0, limit);
    const fit = fitPage(rows, core.config.maxFrame / 2, false);
    return { msgs: fit.msgs.map(toWire), more: more || fit.cut };
  },
};
