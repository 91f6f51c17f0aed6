// Presence debounce (PROTOCOL.md §5.2): a user's online state is announced only
// once it has held for `delayMs`. A change undone within that time is never sent,
// so a user flapping online/offline costs co-members nothing; the state it settles
// in is always announced. One timer per user with a change pending.

export class PresenceDebounce {
  /** Users last announced online (everyone else was last announced offline, or never). */
  private readonly announced = new Set<string>();
  private readonly pending = new Map<string, Timer>();

  constructor(
    private readonly delayMs: number,
    private readonly isOnline: (user: string) => boolean,
    private readonly announce: (user: string, online: boolean) => void,
  ) {}

  /** `user`'s online state may have changed. */
  changed(user: string): void {
    const t = this.pending.get(user);
    if (this.isOnline(user) === this.announced.has(user)) {
      // back to what co-members were last told: the change is dropped
      if (t !== undefined) {
        clearTimeout(t);
        this.pending.delete(user);
      }
      return;
    }
    if (t !== undefined) return; // already waiting to announce this state
    if (this.delayMs <= 0) {
      this.settle(user);
      return;
    }
    const timer = setTimeout(() => this.settle(user), this.delayMs);
    timer.unref();
    this.pending.set(user, timer);
  }

  private settle(user: string): void {
    this.pending.delete(user);
    const online = this.isOnline(user);
    if (online === this.announced.has(user)) return;
    if (online) this.announced.add(user);
    else this.announced.delete(user);
    this.announce(user, online);
  }

  /** Drops pending announcements (shutdown). */
  stop(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}
