// The NATS broker (src/broker/nats.ts) on a real nats-server on loopback: the shared
// Broker suite for one node, then what only a cluster has: commits of several nodes
// applied in seq order everywhere, a missing seq given up on after gapWait (and replayed
// from the store), pushes too large for one payload read back from the store, presence
// and revocation across nodes, a node that dies, and NATS restarting.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Broker } from "../src/broker/broker.ts";
import { NatsBroker } from "../src/broker/nats.ts";
import type { Position, StoredMessage } from "../src/store/store.ts";
import { brokerSuite, frameOf, Recorder, until } from "./helpers/broker-suite.ts";
import { type NatsServer, startNats } from "./helpers/services.ts";

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.stop();
});

/** The store every node of a test shares: only what the broker reads of it. */
class FakeStore {
  pos: Position = { seq: 0, mid: 0 };
  messages = new Map<number, StoredMessage>();
  down = false;
  async position(): Promise<Position> {
    if (this.down) throw new Error("store down");
    return { ...this.pos };
  }
  async messagesByMid(mids: readonly number[]): Promise<StoredMessage[]> {
    if (this.down) throw new Error("store down");
    return mids.flatMap((m) => (this.messages.has(m) ? [this.messages.get(m)!] : [])).sort((a, b) => a.mid - b.mid);
  }
}

const quiet = { info: () => {}, error: () => {} };

function node(store: FakeStore, prefix: string, extra: Partial<ConstructorParameters<typeof NatsBroker>[0]> = {}): NatsBroker {
  return new NatsBroker({
    servers: nats.url,
    store,
    encode: (m) => new TextEncoder().encode(`stored:${m.mid}:${m.text}`),
    log: quiet,
    prefix,
    gapWait: 300,
    beat: 100,
    nodeTimeout: 600,
    ...extra,
  });
}

let prefixes = 0;
const nextPrefix = () => `t${++prefixes}`;

brokerSuite("NatsBroker (one node)", () => node(new FakeStore(), nextPrefix()));

describe("NatsBroker cluster", () => {
  const open: Broker[] = [];
  async function cluster(n: number, store = new FakeStore(), extra = {}): Promise<{ nodes: NatsBroker[]; got: Recorder[]; store: FakeStore }> {
    const prefix = nextPrefix();
    const nodes: NatsBroker[] = [];
    const got: Recorder[] = [];
    for (let i = 0; i < n; i++) {
      const b = node(store, prefix, extra);
      const r = new Recorder();
      await b.start(r, store.pos.seq);
      nodes.push(b);
      got.push(r);
      open.push(b);
    }
    return { nodes, got, store };
  }
  afterAll(async () => {
    for (const b of open) await b.close();
  });

  test("commits from two nodes are applied on both in seq order, even when they arrive out of order", async () => {
    const { nodes, got, store } = await cluster(2);
    const [a, b] = nodes as [NatsBroker, NatsBroker];
    // b's seq 2 is published before a's seq 1: both nodes must still apply 1 then 2.
    store.pos = { seq: 2, mid: 2 };
    b.commit(2, [{ mid: 2, frame: frameOf(2), from: "bob", group: "g", skip: 5 }]);
    await Bun.sleep(50);
    expect(got[0]!.log).toHaveLength(0); // a waits for seq 1
    expect(got[1]!.log).toHaveLength(0); // so does b, for its own seq 2
    a.commit(1, [{ mid: 1, frame: frameOf(1), from: "alice", to: "bob", skip: 3 }]);
    await until(() => got[0]!.log.length === 2 && got[1]!.log.length === 2);
    expect(got[0]!.mids).toEqual([1, 2]);
    expect(got[1]!.mids).toEqual([1, 2]);
    // The sending session's id stays on its own node.
    expect((got[0]!.log as Array<{ skip?: number }>).map((d) => d.skip)).toEqual([3, undefined]);
    expect((got[1]!.log as Array<{ skip?: number }>).map((d) => d.skip)).toEqual([undefined, 5]);
    expect(Array.from((got[1]!.log[0] as { frame: Uint8Array }).frame)).toEqual(Array.from(frameOf(1)));
  });

  test("3 nodes x 300 interleaved commits and changes: every node applies the same sequence", async () => {
    const { nodes, got, store } = await cluster(3);
    let mid = 0;
    const expected: Array<number | string> = [];
    const changes: Array<Promise<void>> = [];
    for (let seq = 1; seq <= 900; seq++) {
      const n = nodes[(seq * 7) % 3]!;
      if (seq % 9 === 0) {
        expected.push(`u${seq}`);
        changes.push(n.change(seq, { kind: "join", group: "g", user: `u${seq}` }));
      } else {
        const m = ++mid;
        expected.push(m);
        n.commit(seq, [{ mid: m, frame: frameOf(m), from: "x", group: "g" }]);
      }
      if (seq % 50 === 0) await Bun.sleep(1);
    }
    store.pos = { seq: 900, mid };
    await Promise.all(changes);
    await until(() => got.every((r) => r.log.length >= expected.length), 10000);
    for (const r of got) {
      expect(r.log.map((e) => ("mid" in e ? e.mid : e.user))).toEqual(expected);
      expect(r.missedAt).toEqual([]);
    }
  });

  test("a seq that never comes is given up on after gapWait: missed(store position), then later commits go on", async () => {
    const { nodes, got, store } = await cluster(2);
    const [a, b] = nodes as [NatsBroker, NatsBroker];
    // seq 1 was committed (by a node that died before publishing): only the store has it.
    store.pos = { seq: 2, mid: 2 };
    b.commit(2, [{ mid: 2, frame: frameOf(2), from: "bob", group: "g" }]);
    await until(() => got[0]!.missedAt.length > 0 && got[1]!.missedAt.length > 0);
    expect(got[0]!.missedAt).toEqual([{ seq: 2, mid: 2 }]);
    expect(got[1]!.missedAt).toEqual([{ seq: 2, mid: 2 }]);
    // mid 2 was covered by the replay: not delivered live as well.
    expect(got[0]!.mids).toEqual([]);
    store.pos = { seq: 3, mid: 3 };
    a.commit(3, [{ mid: 3, frame: frameOf(3), from: "alice", group: "g" }]);
    await until(() => got[0]!.mids.length > 0 && got[1]!.mids.length > 0);
    expect(got[0]!.mids).toEqual([3]);
    expect(got[1]!.mids).toEqual([3]);
  });

  test("a commit the bus never carried, with nothing after it, is found in the store by the poll", async () => {
    const { got, store } = await cluster(1);
    store.pos = { seq: 1, mid: 1 }; // committed by another node, never published
    await until(() => got[0]!.missedAt.length > 0);
    expect(got[0]!.missedAt).toEqual([{ seq: 1, mid: 1 }]);
  });

  test("a push larger than a quarter of max_payload travels by mid and is read back from the store", async () => {
    const { nodes, got, store } = await cluster(2, new FakeStore(), {});
    const big = new Uint8Array(3 * 1024 * 1024).fill(7); // the test server's max_payload is 8 MB
    store.messages.set(1, { mid: 1, ts: 5, sender: "alice", grp: "g", text: "big one" });
    store.pos = { seq: 1, mid: 2 };
    nodes[0]!.commit(1, [
      { mid: 1, frame: big, from: "alice", group: "g" },
      { mid: 2, frame: frameOf(2), from: "alice", group: "g" },
    ]);
    await until(() => got[1]!.log.length === 2);
    const [d1, d2] = got[1]!.log as Array<{ mid: number; frame: Uint8Array }>;
    expect(d1!.mid).toBe(1);
    expect(new TextDecoder().decode(d1!.frame)).toBe("stored:1:big one");
    expect(Array.from(d2!.frame)).toEqual(Array.from(frameOf(2)));
    expect(got[0]!.log[0]).toMatchObject({ mid: 1, frame: big }); // its own node keeps the bytes
  });

  test("presence: a user online on one node is online elsewhere on the others; offline when the last session leaves", async () => {
    const { nodes, got } = await cluster(3);
    const [a, b, c] = nodes as [NatsBroker, NatsBroker, NatsBroker];
    a.presence("alice", true);
    await until(() => b.onlineElsewhere("alice") && c.onlineElsewhere("alice"));
    expect(b.onlineElsewhere("alice")).toBe(true);
    expect(a.onlineElsewhere("alice")).toBe(false); // its own node has it locally
    expect(got[1]!.presences).toContain("alice");
    b.presence("alice", true); // a second device, on b
    await until(() => a.onlineElsewhere("alice"));
    a.presence("alice", false);
    await Bun.sleep(100);
    expect(c.onlineElsewhere("alice")).toBe(true); // still on b
    b.presence("alice", false);
    await until(() => !c.onlineElsewhere("alice") && !a.onlineElsewhere("alice"));
    expect(c.onlineElsewhere("alice")).toBe(false);
  });

  test("typing crosses to every other node (not back to its own), as an event of its own: no presence is asked again", async () => {
    const { nodes, got } = await cluster(3);
    const [a] = nodes as [NatsBroker, NatsBroker, NatsBroker];
    a.typing({ from: "alice", group: "ops" });
    a.typing({ from: "alice", to: "bob" });
    await until(() => got[1]!.typings.length >= 2 && got[2]!.typings.length >= 2);
    await Bun.sleep(50);
    for (const r of [got[1]!, got[2]!]) expect(r.typings).toEqual([{ from: "alice", group: "ops" }, { from: "alice", to: "bob" }]);
    expect(got[0]!.typings).toEqual([]);
  });

  test("a node that starts later learns who is online (hello, snapshot); revocations reach every other node", async () => {
    const { nodes, store } = await cluster(1);
    const a = nodes[0]!;
    for (let i = 0; i < 4500; i++) a.presence(`user${i}`, true); // more than one snapshot part
    const late = node(store, (a as unknown as { prefix: string }).prefix);
    const r = new Recorder();
    await late.start(r, store.pos.seq);
    open.push(late);
    await until(() => late.onlineElsewhere("user4499") && late.onlineElsewhere("user0"));
    expect(late.onlineElsewhere("user0")).toBe(true);
    expect(late.onlineElsewhere("user4499")).toBe(true);
    a.revoke("user7");
    await until(() => r.revoked.length > 0);
    expect(r.revoked).toEqual(["user7"]);
  });

  test("a node that stops beating is dropped after nodeTimeout: its users go offline", async () => {
    const { nodes, store } = await cluster(1);
    const a = nodes[0]!;
    const prefix = (a as unknown as { prefix: string }).prefix;
    const doomed = node(store, prefix);
    await doomed.start(new Recorder(), store.pos.seq);
    doomed.presence("dora", true);
    await until(() => a.onlineElsewhere("dora"));
    expect(a.onlineElsewhere("dora")).toBe(true);
    // As kill -9 would: it stops without saying goodbye (its connection just goes).
    const nc = (doomed as unknown as { nc: { close(): Promise<void> } }).nc;
    clearInterval((doomed as unknown as { timer: Timer }).timer);
    (doomed as unknown as { closed: boolean }).closed = true;
    await nc.close();
    await until(() => !a.onlineElsewhere("dora"), 3000);
    expect(a.onlineElsewhere("dora")).toBe(false);
  });

  test("NATS restarts: commits published while it was down are replayed from the store; delivery resumes by itself", async () => {
    const { nodes, got, store } = await cluster(2);
    const [a, b] = nodes as [NatsBroker, NatsBroker];
    a.commit(1, [{ mid: 1, frame: frameOf(1), from: "alice", group: "g" }]);
    store.pos = { seq: 1, mid: 1 };
    await until(() => got[1]!.mids.length === 1);
    await nats.kill();
    // Committed while the bus is down: a applies its own; b cannot hear it.
    store.pos = { seq: 2, mid: 2 };
    a.commit(2, [{ mid: 2, frame: frameOf(2), from: "alice", group: "g" }]);
    await until(() => got[0]!.mids.length === 2);
    await nats.start();
    // b gets seq 2 from the store (missed), not from the bus.
    await until(() => got[1]!.missedAt.length > 0, 10000);
    expect(got[1]!.missedAt.at(-1)).toEqual({ seq: 2, mid: 2 });
    // Both reconnect by themselves and deliver again.
    await until(() => (a as unknown as { connected: boolean }).connected && (b as unknown as { connected: boolean }).connected, 10000);
    store.pos = { seq: 3, mid: 3 };
    b.commit(3, [{ mid: 3, frame: frameOf(3), from: "bob", group: "g" }]);
    await until(() => got[0]!.mids.includes(3), 10000);
    expect(got[0]!.mids).toEqual([1, 2, 3]);
    expect(got[1]!.mids).toEqual([1, 3]);
  });
});
