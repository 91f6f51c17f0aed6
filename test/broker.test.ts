// The shared Broker suite (test/helpers/broker-suite.ts) against this node's own broker,
// and the local broker's one promise beyond it: delivery happens within commit.
import { expect, test } from "bun:test";
import { LocalBroker } from "../src/broker/local.ts";
import { brokerSuite, Recorder } from "./helpers/broker-suite.ts";

brokerSuite("LocalBroker", () => new LocalBroker());

test("LocalBroker delivers within commit, the same frame object (encoded once, never copied)", async () => {
  const b = new LocalBroker();
  const got = new Recorder();
  await b.start(got);
  const frame = new Uint8Array([1, 2, 3]);
  b.commit(1, [{ mid: 1, frame, from: "a", group: "g" }]);
  expect(got.log).toHaveLength(1);
  expect((got.log[0] as { frame: Uint8Array }).frame).toBe(frame);
  expect(b.onlineElsewhere()).toBe(false);
});
