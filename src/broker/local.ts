// One node's broker: nothing else commits to its store, so a commit is applied at once,
// in the same call, to this node's sessions (the core's fan-out through its Hub).
// src/broker/broker.ts
import type { Broker, BrokerHandler, Change, Delivery } from "./broker.ts";

export class LocalBroker implements Broker {
  private handler: BrokerHandler | undefined;
  readonly shared = false;

  async start(handler: BrokerHandler): Promise<void> {
    this.handler = handler;
  }

  commit(_seq: number, deliveries: Delivery[]): void {
    const h = this.handler;
    if (h) for (const d of deliveries) h.deliver(d);
  }

  async change(_seq: number, c: Change, entry?: Delivery): Promise<void> {
    this.handler?.change(c);
    if (entry) this.handler?.deliver(entry);
  }

  presence(): undefined {
    return undefined;
  }

  onlineElsewhere(): boolean {
    return false;
  }

  revoke(): void {}

  /** No other node: the core has told every recipient already. */
  typing(): void {}

  async whenApplied(): Promise<void> {}

  async close(): Promise<void> {
    this.handler = undefined;
  }
}
