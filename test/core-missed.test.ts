// The core's side of a cluster, over a fake transport and a scripted broker: commits
// and membership changes made by "another node" (straight into the shared store) that
// never arrive over the bus are recovered when the broker calls `missed` (src/core/chat.ts):
// routing reloads from the store, every session replays what it is owed, once, in order,
// and a late live push of something already replayed is dropped.
import { expect, test } from "bun:test";
import type { Broker, BrokerHandler, Change, Delivery } from "../src/broker/broker.ts";
import { DEFAULTS } from "../src/config.ts";
import { ChatCore } from "../src/core/chat.ts";
import { MemoryStore } from "../src/store/memory.ts";
import type { Store } from "../src/store/store.ts";
import { isGroupChange } from "./helpers/client.ts";
import { loggedIn, quiet, turn } from "./helpers/fake-conn.ts";
import type { Msg } from "./helpers/wire.ts";

/** Applies this node's own commits at once (as LocalBroker); the test calls the handler for the rest. */
class ScriptedBroker implements Broker {
  handler!: BrokerHandler;
  elsewhere = new Set<string>();
  readonly shared = true;
  /** The seq applied so far, as the test says (applyUpTo). */
  private upTo = 0;
  private waiting: Array<{ seq: number; resolve: () => void }> = [];
  whenApplied(seq: number): Promise<void> {
    if (seq <= this.upTo) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.waiting.push({ seq, resolve });
    return promise;
  }
  applyUpTo(seq: number): void {
    this.upTo = seq;
    for (const w of this.waiting) if (w.seq <= seq) w.resolve();
    this.waiting = this.waiting.filter((w) => w.seq > seq);
  }
  async start(h: BrokerHandler): Promise<void> {
    this.handler = h;
  }
  commit(_seq: number, ds: Delivery[]): void {
    for (const d of ds) this.handler.deliver(d);
  }
  async change(_seq: number, c: Change, entry?: Delivery): Promise<void> {
    this.handler.change(c);
    if (entry) this.handler.deliver(entry);
  }
  presence(): undefined {
    return undefined;
  }
  onlineElsewhere(user: string): boolean {
    return this.elsewhere.has(user);
  }
  revoke(): void {}
  typing(): void {}
  async close(): Promise<void> {}
}

/** The `msg` pushes of a connection, without the changes to groups (its joins). */
const msgs = (c: { reader: { msgs: Msg[] } }) => c.reader.msgs.filter((m) => m.t === "msg" && !isGroupChange(m));

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await turn();
}

test("missed: commits and a join made elsewhere are replayed from the store, once, in order; a late push is dropped", async () => {
  const store: Store = new MemoryStore();
  const broker = new ScriptedBroker();
  const core = await ChatCore.open({ ...DEFAULTS, hashMemory: 64, hashTime: 1, presenceDelay: 0 }, store, quiet, broker);
  const alice = await loggedIn(core, "alice");
  const bob = await loggedIn(core, "bob");
  broker.applyUpTo(1_000_000); // nothing of this test waits on the broker's progress
  await alice.req({ t: "create", id: 1, group: "g" });
  await bob.req({ t: "join", id: 2, group: "g" });
  const local = await alice.req({ t: "send", id: 3, group: "g", text: "here" });
  await until(() => msgs(bob).length === 1);

  // Another node: carol joins g and writes twice, and a DM to bob; none of it comes over the bus.
  await store.createUser("carol", "x", 1);
  await store.addMember("g", "carol", 1);
  const far = await store.commit(
    [
      { sender: "carol", grp: "g", text: "from afar 1" },
      { sender: "carol", toUser: "bob", text: "a DM from afar" },
      { sender: "carol", grp: "g", text: "from afar 2" },
    ],
    2,
  );
  expect(core.hub.isMember("g", "carol")).toBe(false);

  await broker.handler.missed(await store.position());
  expect(core.hub.isMember("g", "carol")).toBe(true); // routing reloaded from the store
  await until(() => msgs(bob).length === 4 && msgs(alice).length === 3);
  expect(msgs(bob).map((m) => m.mid)).toEqual([local.mid, ...far.results.map((r) => r.mid)]);
  // A replay comes from the store: it may hold the connection's own message (PROTOCOL.md §5.4).
  expect(msgs(alice).map((m) => m.text)).toEqual(["here", "from afar 1", "from afar 2"]);

  // The bus delivers one of them after all: bob has it already, so it is not pushed again.
  const late = far.results[2]!.mid;
  broker.handler.deliver({ mid: late, frame: new Uint8Array([0, 0, 0, 1, 0xc0]), from: "carol", group: "g" });
  // And the next one goes out live, as usual.
  const next = await alice.req({ t: "send", id: 4, group: "g", text: "after" });
  await until(() => msgs(bob).length === 5);
  await turn();
  expect(msgs(bob).map((m) => m.mid)).toEqual([local.mid, ...far.results.map((r) => r.mid), next.mid]);
  await core.shutdown();
});

test("members shows a user online on another node (Broker.onlineElsewhere), and presence follows the broker's word", async () => {
  const store: Store = new MemoryStore();
  const broker = new ScriptedBroker();
  const core = await ChatCore.open({ ...DEFAULTS, hashMemory: 64, hashTime: 1, presenceDelay: 0 }, store, quiet, broker);
  const alice = await loggedIn(core, "alice");
  await alice.req({ t: "create", id: 1, group: "g" });
  await store.createUser("dora", "x", 1);
  const seq = await store.addMember("g", "dora", 1);
  broker.handler.change({ kind: "join", group: "g", user: "dora" });
  broker.applyUpTo(seq);
  expect(seq).toBeGreaterThan(0);
  const before = await alice.req({ t: "members", id: 2, group: "g" });
  expect(before.members).toContainEqual({ user: "dora", online: false, role: "member" });
  broker.elsewhere.add("dora");
  broker.handler.presence("dora");
  await until(() => alice.reader.msgs.some((m) => m.t === "presence"));
  expect(alice.reader.msgs.find((m) => m.t === "presence")).toEqual({ t: "presence", user: "dora", online: true });
  const after = await alice.req({ t: "members", id: 3, group: "g" });
  expect(after.members).toContainEqual({ user: "dora", online: true, role: "member" });
  await core.shutdown();
});

test("a join made on another node a moment ago: send and members wait for this node to apply it instead of refusing", async () => {
  const store: Store = new MemoryStore();
  const broker = new ScriptedBroker();
  const core = await ChatCore.open({ ...DEFAULTS, hashMemory: 64, hashTime: 1, presenceDelay: 0 }, store, quiet, broker);
  const alice = await loggedIn(core, "alice");
  const erin = await loggedIn(core, "erin");
  broker.applyUpTo((await store.position()).seq);
  await alice.req({ t: "create", id: 1, group: "g" });
  broker.applyUpTo((await store.position()).seq);
  // erin joins g on another node: committed, not yet applied here.
  const seq = await store.addMember("g", "erin", 1);
  const sent = erin.req({ t: "send", id: 2, group: "g", text: "hi, I just joined" });
  const listed = erin.req({ t: "members", id: 3, group: "g" });
  await turn();
  await turn();
  expect(erin.reader.msgs.filter((m) => m.id === 2 || m.id === 3)).toEqual([]); // waiting, not refused
  broker.handler.change({ kind: "join", group: "g", user: "erin" });
  broker.applyUpTo(seq);
  expect(await sent).toMatchObject({ t: "ok" });
  expect((await listed).members.map((m: Msg) => m.user)).toEqual(["alice", "erin"]);
  // Someone who really is not a member is still refused once caught up.
  const frank = await loggedIn(core, "frank");
  expect(await frank.req({ t: "send", id: 4, group: "g", text: "let me in" })).toMatchObject({ t: "error", code: "forbidden" });
  await core.shutdown();
});
