// The process-wide memory budget (`--max-buffered`, PROTOCOL.md §2.4): every
// connection's unsent output (its Writer's cost) and partly received input (frame
// buffers, requests held behind a login) are added here as they change. Going over
// it asks the core to shed (ChatCore.shed): the stalled connections holding the
// most are closed first; a connection that keeps reading is never closed for it,
// and while shedding stalled ones is not enough, the server stops reading input.
import type { CostMeter } from "../io/writer.ts";

export class Budget implements CostMeter {
  /** Bytes held now, by every connection together. */
  used = 0;
  private pending = false;

  constructor(
    readonly max: number,
    /** Called (once per microtask at most) after `used` passed `max`. */
    private readonly onOver: () => void,
  ) {}

  add(delta: number): void {
    this.used += delta;
    if (delta > 0 && this.used > this.max && !this.pending) {
      this.pending = true;
      queueMicrotask(() => {
        this.pending = false;
        if (this.used > this.max) this.onOver();
      });
    }
  }
}
