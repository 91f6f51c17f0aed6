// Typed events, and the same events as async iterators (subscriptions
// are async iterators, as in nats.js). Listeners run synchronously, in order of
// arrival, so a listener sees messages in the order the client delivers them.

type Listener<V> = (value: V) => void;

export class Emitter<E extends object> {
  private readonly listeners = new Map<keyof E, Set<Listener<never>>>();

  /** `onListenerError` receives whatever a listener throws (a throwing listener does not stop the others). */
  constructor(private readonly onListenerError: (err: unknown, name: keyof E) => void) {}

  listenerCount(name: keyof E): number {
    return this.listeners.get(name)?.size ?? 0;
  }

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof E>(name: K, fn: Listener<E[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => this.off(name, fn);
  }

  off<K extends keyof E>(name: K, fn: Listener<E[K]>): void {
    this.listeners.get(name)?.delete(fn as Listener<never>);
  }

  emit<K extends keyof E>(name: K, value: E[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<E[K]>)(value);
      } catch (err) {
        this.onListenerError(err, name);
      }
    }
  }
}

/**
 * An unbounded queue read as an async iterator. Values pushed before `end()`
 * are all yielded, then the iteration finishes. `return()` (a `break` out of
 * `for await`) ends it early and runs `onEnd` (the unsubscribe).
 */
export class EventStream<V> implements AsyncIterableIterator<V> {
  private readonly items: V[] = [];
  private readonly waiters: ((r: IteratorResult<V>) => void)[] = [];
  private ended = false;

  constructor(private readonly onEnd: () => void = () => {}) {}

  /** Values waiting to be read. */
  get size(): number {
    return this.items.length;
  }

  push(value: V): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) w({ value, done: false });
    else this.items.push(value);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<V>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  return(): Promise<IteratorResult<V>> {
    this.items.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<V> {
    return this;
  }
}
