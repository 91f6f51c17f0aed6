// The shared Broker suite (test/helpers/broker-suite.ts) against this node's own broker,
// and the local broker's one promise beyond it: delivery happens within publish.
import { expect, test } from "bun:test";
import type { Delivery } from "../src/broker/broker.ts";
import { LocalBroker } from "../src/broker/local.ts";
import { brokerSuite } from "./helpers/broker-suite.ts";

brokerSuite("LocalBroker", () => new LocalBroker());

test("LocalBroker delivers within publish, the same frame object (encoded once, never copied)", () => {
  const b = new LocalBroker();
  const got: Delivery[] = [];
  b.subscribe((d) => void got.push(d));
  const frame = new Uint8Array([1, 2, 3]);
  b.publish({ mid: 1, frame, from: "a", group: "g" });
  expect(got).toHaveLength(1);
  expect(got[0]!.frame).toBe(frame);
});
