// The shared suite for the Broker contract (src/broker/broker.ts): `brokerSuite(name,
// makeBroker)` runs it against one implementation. test/broker.test.ts calls it for the
// local broker; a broker between nodes is tested by calling it once more. Deliveries
// are awaited (a broker over the network delivers later than publish returns).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Broker, Delivery } from "../../src/broker/broker.ts";

/** Waits until `cond` holds, by the clock (up to `ms`). */
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
}

function frameOf(mid: number): Uint8Array {
  return new Uint8Array([0, 0, 0, 2, mid & 0xff, (mid >> 8) & 0xff]);
}

export function brokerSuite(name: string, makeBroker: () => Broker | Promise<Broker>): void {
  describe(name, () => {
    let broker: Broker;
    let got: Delivery[];
    beforeEach(async () => {
      broker = await makeBroker();
      got = [];
      broker.subscribe((d) => void got.push(d));
    });
    afterEach(async () => {
      await broker.close();
    });

    test("a published group message is delivered once, with its frame bytes, mid and routing", async () => {
      broker.publish({ mid: 7, frame: frameOf(7), from: "alice", group: "ops", skip: 3 });
      await until(() => got.length > 0);
      expect(got).toHaveLength(1);
      const d = got[0]!;
      expect({ mid: d.mid, from: d.from, group: d.group, to: d.to }).toEqual({ mid: 7, from: "alice", group: "ops", to: undefined });
      expect(Array.from(d.frame)).toEqual(Array.from(frameOf(7)));
    });

    test("a direct message keeps both parties; the sending session's id comes back on the publishing node", async () => {
      broker.publish({ mid: 1, frame: frameOf(1), from: "alice", to: "bob", skip: 12 });
      broker.publish({ mid: 2, frame: frameOf(2), from: "carol", to: "carol" });
      await until(() => got.length >= 2);
      expect(got.map((d) => [d.mid, d.from, d.to, d.group, d.skip])).toEqual([
        [1, "alice", "bob", undefined, 12],
        [2, "carol", "carol", undefined, undefined],
      ]);
    });

    test("deliveries come in publish (mid) order, each exactly once", async () => {
      for (let mid = 1; mid <= 2000; mid++)
        broker.publish({ mid, frame: frameOf(mid), from: "u", group: mid % 2 ? "odd" : "even" });
      await until(() => got.length >= 2000);
      await new Promise((r) => setTimeout(r, 20)); // nothing more comes
      expect(got.map((d) => d.mid)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    });

    test("after close nothing more is delivered", async () => {
      broker.publish({ mid: 1, frame: frameOf(1), from: "u", group: "g" });
      await until(() => got.length > 0);
      await broker.close();
      broker.publish({ mid: 2, frame: frameOf(2), from: "u", group: "g" });
      await new Promise((r) => setTimeout(r, 20));
      expect(got.map((d) => d.mid)).toEqual([1]);
    });
  });
}
