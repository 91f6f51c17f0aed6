// `--retain-days N`: messages committed more than N days ago are deleted (README, "Operating
// tcpchat"; PROTOCOL.md §3.4 says what history and sync return then). Every minute, and once
// shortly after start, the oldest messages are deleted in batches of BATCH (Store.purge),
// with a pause between batches: bun:sqlite runs each batch on the event loop, so a large
// backlog is cut into short steps that let requests and commits run between them.
import type { Logger } from "../core/chat.ts";
import type { Store } from "../store/store.ts";

/** Messages per purge step. */
export const BATCH = 500;
/** Pause between steps, ms. */
const STEP_PAUSE_MS = 20;
/** How often a purge runs, ms (and the first, after start). */
const EVERY_MS = 60_000;
const FIRST_MS = 1_000;
const DAY_MS = 86_400_000;

export class Retention {
  /** Messages purged, and purge runs, since start (/metrics). */
  purged = 0;
  runs = 0;
  private timer: Timer | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    readonly days: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    if (this.days <= 0) return;
    const first = setTimeout(() => {
      void this.run();
      this.timer = setInterval(() => void this.run(), EVERY_MS);
      this.timer.unref();
    }, FIRST_MS);
    first.unref();
    this.timer = first;
  }

  /** Purges now (or joins the purge running): how many messages this run deleted. */
  run(): Promise<number> {
    this.running ??= this.purgeAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async purgeAll(): Promise<number> {
    if (this.days <= 0) return 0;
    const cutoff = this.now() - this.days * DAY_MS;
    let total = 0;
    try {
      while (!this.stopped) {
        const n = await this.store.purge(cutoff, BATCH);
        total += n;
        this.purged += n;
        if (n < BATCH) break;
        await Bun.sleep(STEP_PAUSE_MS);
      }
    } catch (e) {
      this.log.error("retention: purge failed; will try again", e);
    }
    this.runs++;
    if (total > 0)
      this.log.event?.("info", "retention.purged", {
        messages: total,
        before: new Date(cutoff).toISOString(),
        msg: `retention: purged ${total} messages committed before ${new Date(cutoff).toISOString()}`,
      });
    return total;
  }

  /** Stops the schedule and waits for a purge in progress (before the store closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.timer);
    await this.running;
  }
}
