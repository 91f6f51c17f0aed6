// The shared suite for the Broker contract (src/broker/broker.ts): `brokerSuite(name,
// makeBroker)` runs it against one node's broker of an implementation. test/broker.test.ts
// calls it for the local broker and for the NATS broker (on a real nats-server).
// Deliveries are awaited: a broker over the network may apply later than `commit` returns.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Broker, BrokerHandler, Change, Delivery, Typing } from "../../src/broker/broker.ts";

/** Waits until `cond` holds, by the clock (up to `ms`). */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
}

export function frameOf(mid: number): Uint8Array {
  return new Uint8Array([0, 0, 0, 2, mid & 0xff, (mid >> 8) & 0xff]);
}

/** A handler that records what the broker applies, in order. */
export class Recorder implements BrokerHandler {
  readonly log: Array<Delivery | Change> = [];
  readonly missedAt: Array<{ seq: number; mid: number }> = [];
  readonly presences: string[] = [];
  readonly revoked: string[] = [];
  readonly typings: Typing[] = [];
  deliver(d: Delivery): void {
    this.log.push(d);
  }
  change(c: Change): void {
    this.log.push(c);
  }
  async missed(pos: { seq: number; mid: number }): Promise<void> {
    this.missedAt.push(pos);
  }
  presence(user: string): void {
    this.presences.push(user);
  }
  revoke(user: string): void {
    this.revoked.push(user);
  }
  typing(t: Typing): void {
    this.typings.push(t);
  }
  get mids(): number[] {
    return this.log.flatMap((e) => ("mid" in e ? [e.mid] : []));
  }
}

export function brokerSuite(name: string, makeBroker: () => Broker | Promise<Broker>): void {
  describe(name, () => {
    let broker: Broker;
    let got: Recorder;
    beforeEach(async () => {
      broker = await makeBroker();
      got = new Recorder();
      await broker.start(got, 0);
    });
    afterEach(async () => {
      await broker.close();
    });

    test("a committed group message is delivered once, with its frame bytes, mid and routing", async () => {
      broker.commit(1, [{ mid: 7, frame: frameOf(7), from: "alice", group: "ops", skip: 3 }]);
      await until(() => got.log.length > 0);
      expect(got.log).toHaveLength(1);
      const d = got.log[0] as Delivery;
      expect({ mid: d.mid, from: d.from, group: d.group, to: d.to }).toEqual({ mid: 7, from: "alice", group: "ops", to: undefined });
      expect(Array.from(d.frame)).toEqual(Array.from(frameOf(7)));
    });

    test("a direct message keeps both parties; the sending session's id comes back on its own node", async () => {
      broker.commit(1, [
        { mid: 1, frame: frameOf(1), from: "alice", to: "bob", skip: 12 },
        { mid: 2, frame: frameOf(2), from: "carol", to: "carol" },
      ]);
      await until(() => got.log.length >= 2);
      expect((got.log as Delivery[]).map((d) => [d.mid, d.from, d.to, d.group, d.skip])).toEqual([
        [1, "alice", "bob", undefined, 12],
        [2, "carol", "carol", undefined, undefined],
      ]);
    });

    test("commits and membership changes are applied in seq order, each exactly once", async () => {
      let mid = 0;
      const expected: Array<number | string> = [];
      for (let seq = 1; seq <= 1000; seq++) {
        if (seq % 10 === 0) {
          const user = `u${seq}`;
          expected.push(user);
          await broker.change(seq, { kind: seq % 20 ? "join" : "leave", group: "g", user });
        } else if (seq % 7 === 0) {
          broker.commit(seq, []); // a batch of duplicates only
        } else {
          const a = ++mid;
          const b = ++mid;
          expected.push(a, b);
          broker.commit(seq, [
            { mid: a, frame: frameOf(a), from: "u", group: "g" },
            { mid: b, frame: frameOf(b), from: "u", to: "v" },
          ]);
        }
      }
      await until(() => got.log.length >= expected.length);
      await new Promise((r) => setTimeout(r, 20)); // nothing more comes
      expect(got.log.map((e) => ("mid" in e ? e.mid : e.user))).toEqual(expected);
      expect(got.missedAt).toEqual([]);
    });

    test("change() resolves once the change is applied on this node", async () => {
      await broker.change(1, { kind: "join", group: "g", user: "alice" });
      expect(got.log).toEqual([{ kind: "join", group: "g", user: "alice" }]);
    });

    test("after close nothing more is delivered", async () => {
      broker.commit(1, [{ mid: 1, frame: frameOf(1), from: "u", group: "g" }]);
      await until(() => got.log.length > 0);
      await broker.close();
      broker.commit(2, [{ mid: 2, frame: frameOf(2), from: "u", group: "g" }]);
      await new Promise((r) => setTimeout(r, 20));
      expect(got.mids).toEqual([1]);
    });
  });
}
