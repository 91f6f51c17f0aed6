// send, history, sync. PROTOCOL.md §3.4
import { ProtocolError } from "../../protocol/errors.ts";
import type { WireMessage } from "../../protocol/pushes.ts";
import type { RequestOf } from "../../protocol/requests.ts";
import { dmConv, groupConv, type NewMessage, type StoredMessage } from "../../store/store.ts";
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

/**
 * A message as it goes on the wire (PROTOCOL.md §3.5): with `t: "msg"` as a push,
 * without `t` in history and sync pages. Built in one literal (this runs once per
 * message on the fan-out path); fields left undefined are omitted by the encoder.
 */
export function wireMessage(m: NewMessage, mid: number, ts: number, t?: "msg"): WireMessage & { t?: "msg" } {
  return { t, mid, ts, from: m.sender, group: m.grp, user: m.toUser, text: m.text, file: m.file, cid: m.cid };
}

export function toWire(m: StoredMessage): WireMessage {
  return wireMessage(m, m.mid, m.ts);
}

function approxSize(m: StoredMessage): number {
  return 96 + (m.text?.length ?? 0) * 3 + (m.file ? m.file.data.length + m.file.name.length + m.file.type.length : 0);
}

/** Rows read from the store at a time while a page is filled. */
const CHUNK = 32;

/**
 * Fills a page in the paging direction: at most `limit` messages, cut short
 * (with `more`) once it holds half a frame's worth, so a reply always fits the
 * client's frame limit (at least one message is kept). Rows are read in chunks,
 * so a page of large messages does not read hundreds of rows it cannot send.
 * `read(cursor, n)` gives the next `n` rows past `cursor`, nearest first.
 */
function collect(
  read: (cursor: number | undefined, n: number) => StoredMessage[],
  limit: number,
  budget: number,
): { msgs: StoredMessage[]; more: boolean } {
  const out: StoredMessage[] = [];
  let size = 0;
  let cursor: number | undefined;
  for (;;) {
    const n = Math.min(CHUNK, limit + 1 - out.length); // one past the limit tells whether there is more
    const rows = read(cursor, n);
    for (const m of rows) {
      const sz = approxSize(m);
      if (out.length === limit || (out.length > 0 && size + sz > budget)) return { msgs: out, more: true };
      out.push(m);
      size += sz;
    }
    if (rows.length < n) return { msgs: out, more: false };
    cursor = rows[rows.length - 1]!.mid;
  }
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
    core.batcher.flush(true); // read your own writes: sends this connection made before are in the page
    const budget = core.config.maxFrame / 2;
    if (req.after !== undefined) {
      const { before, after } = req;
      const page = collect((c, n) => core.store.history(conv, { after: c ?? after, before, limit: n }), limit, budget);
      return { msgs: page.msgs.map(toWire), more: page.more };
    }
    // Backwards from `before` (or the newest): read nearest first, answer oldest first.
    const page = collect(
      (c, n) => core.store.history(conv, { before: c ?? req.before, limit: n }).reverse(),
      limit,
      budget,
    );
    return { msgs: page.msgs.reverse().map(toWire), more: page.more };
  },
};

export const sync: Command<RequestOf<"sync">> = {
  auth: true,
  run({ core, session }, req) {
    const limit = pageLimit(core, req.limit);
    core.batcher.flush(true);
    const user = session.user!;
    const page = collect((c, n) => core.store.sync(user, c ?? req.after, n), limit, core.config.maxFrame / 2);
    return { msgs: page.msgs.map(toWire), more: page.more };
  },
};
