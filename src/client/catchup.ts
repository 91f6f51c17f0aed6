// Catching up after a login, PROTOCOL.md §3.4 `sync` and §6: page through
// everything after a mid until `more` is false; and, for a login that starts
// "now", find the newest mid the user can see without fetching history.
import type { ChatMessage, Page } from "./types.ts";

export type SyncFn = (after: number, limit: number) => Promise<Page>;

/**
 * Yields `sync` pages after `after`, oldest first, until the server says there is no more.
 * A page the server cut short to fit its frame (fewer than asked, `more` set) means
 * large messages: the next page asks for twice what came, growing back to `limit`
 * as messages get smaller. (The server reads `limit + 1` whole rows before cutting,
 * so asking for 500 large messages to get one costs it 500 rows per page.)
 */
export async function* syncPages(sync: SyncFn, after: number, limit: number): AsyncGenerator<ChatMessage[]> {
  let ask = limit;
  for (;;) {
    const page = await sync(after, ask);
    const n = page.msgs.length;
    if (n > 0) yield page.msgs;
    if (!page.more || n === 0) return;
    after = page.msgs[n - 1]!.mid;
    ask = n < ask ? Math.min(limit, n * 2) : Math.min(limit, ask * 2);
  }
}

/**
 * The largest mid of the messages this user can see now (0 if none), found
 * with `sync {after: x, limit: 1}` probes: a gallop up from the first mid, then
 * a binary search. The protocol has no "latest mid" request; this costs about
 * 2*log2(mid) small round trips, each returning at most one message.
 * `lo` is always a mid that exists (or 0), so no later message can have a mid
 * at or below the result (mids increase in commit order, PROTOCOL.md §3.4).
 */
export async function findTail(sync: SyncFn): Promise<number> {
  const first = async (after: number) => (await sync(after, 1)).msgs[0]?.mid;
  let lo = (await first(0)) ?? 0;
  if (lo === 0) return 0;
  let step = 1;
  let hi: number;
  for (;;) {
    const m = await first(lo + step - 1);
    if (m === undefined) {
      hi = lo + step - 1;
      break;
    }
    lo = m;
    step *= 2;
  }
  // Invariant: some message has mid `lo`; none has a mid above `hi`.
  while (lo < hi) {
    const probe = Math.floor((lo + hi) / 2);
    const m = await first(probe);
    if (m === undefined) hi = probe;
    else lo = m;
  }
  return lo;
}
