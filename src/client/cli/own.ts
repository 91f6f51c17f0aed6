// The changes to groups this client makes itself (/create, /kick, /topic...). Each
// one's log entry also comes back as a push (PROTOCOL.md §3.3), before or after
// the request's reply: the command says how it went, once, and the push of the
// same entry is not shown again. Entries made elsewhere (another device of the
// same user included) are shown as they come.
import type { GroupChange } from "./format.ts";

interface Pending {
  kind: string;
  group: string;
  target: string;
}

export class OwnChanges {
  private readonly pending: Pending[] = [];
  /** Entries whose command has answered: their push is not shown. */
  private readonly answered = new Set<number>();
  /** Entries whose push came while their command was still waiting: the command shows them. */
  private readonly early = new Set<number>();

  constructor(private readonly me: string) {}

  /** A request of this client that may store the entry `kind` about `target` in `group`. Call the result with its reply's mid (or none) when it is answered. */
  begin(kind: string, group: string, target: string): (mid?: number) => void {
    const p: Pending = { kind, group, target };
    this.pending.push(p);
    return (mid) => {
      const i = this.pending.indexOf(p);
      if (i >= 0) this.pending.splice(i, 1);
      if (mid === undefined) return;
      if (!this.early.delete(mid)) this.answered.add(mid);
    };
  }

  /** Whether the pushed entry `mid` should be shown as a notice (false: the command that made it says it). */
  show(mid: number, e: GroupChange): boolean {
    if (this.answered.delete(mid)) return false;
    if (e.from === this.me && this.pending.some((p) => p.kind === e.kind && p.group === e.group && p.target === e.target)) {
      this.early.add(mid);
      return false;
    }
    return true;
  }
}
