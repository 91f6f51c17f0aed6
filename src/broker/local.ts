// One node's broker: a published message is delivered at once, in the same call,
// to this node's sessions (the core's fan-out through its Hub). src/broker/broker.ts
import type { Broker, Delivery } from "./broker.ts";

export class LocalBroker implements Broker {
  private deliver: ((d: Delivery) => void) | undefined;
  private closed = false;

  publish(d: Delivery): void {
    if (!this.closed) this.deliver?.(d);
  }

  subscribe(deliver: (d: Delivery) => void): void {
    this.deliver = deliver;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.deliver = undefined;
  }
}
