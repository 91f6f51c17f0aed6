// What a connection can make the server hold, over a fake transport (the real-socket versions
// are in test/attack/conn.test.ts): the process-wide budget and who is shed, requests held
// behind a login bounded in bytes, refused frames skipped and counted, the address key
// of per-address limits, and a connection's state after logout.
import { describe, expect, test } from "bun:test";
import type { ChatCore } from "../src/core/chat.ts";
import { addressKey } from "../src/core/address.ts";
import { FakeConn, loggedIn, makeCore, turn } from "./helpers/fake-conn.ts";
import { frameOf } from "./helpers/wire.ts";

let ids = 1;

/** Frames a 4-byte header for `n` bytes. */
function header(n: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, n);
  return h;
}

/** Logs in each of `names`: the first creates `group`, the others join it. */
async function groupOf(core: ChatCore, names: string[], group = "g"): Promise<FakeConn[]> {
  const conns: FakeConn[] = [];
  for (const n of names) {
    const c = await loggedIn(core, n, { reportClose: true });
    await c.req({ t: conns.length === 0 ? "create" : "join", id: ids++, group });
    conns.push(c);
  }
  return conns;
}

describe("process-wide budget (--max-buffered)", () => {
  test("every byte queued or held is counted, and the count returns to 0 when the connections go", async () => {
    const core = await makeCore({ maxFrame: 64 * 1024, maxQueue: 1024 * 1024 });
    const [a, b] = await groupOf(core, ["alice", "bob"]);
    b!.accept = 0;
    for (let i = 0; i < 20; i++) a!.send({ t: "send", id: ids++, group: "g", text: "x".repeat(1000) });
    await turn();
    const held = b!.session.writer.cost;
    expect(held).toBeGreaterThan(20 * 1000);
    expect(core.budget.used).toBe(held + a!.session.cost);
    // a partial frame counts too
    a!.data(header(60_000));
    a!.data(new Uint8Array(20_000));
    expect(core.budget.used).toBe(b!.session.writer.cost + a!.session.cost);
    expect(a!.session.cost).toBeGreaterThanOrEqual(20_000);
    core.closed(a!.session);
    core.closed(b!.session);
    expect(core.budget.used).toBe(0);
  });

  test("over the budget, stalled connections are closed, largest first; readers are never closed for it", async () => {
    // (a budget below --max-queue, which the config would refuse, keeps the test small)
    const core = await makeCore({ maxFrame: 64 * 1024, maxQueue: 4 * 1024 * 1024, maxBuffered: 2560 * 1024, rateMsgs: 0 });
    const [sender, reader, small, big] = await groupOf(core, ["sender", "reader", "small", "big"]);
    // "big" stops reading first and piles up the most (it falls behind at 2 MiB); "small" stops later.
    big!.accept = 0;
    for (let i = 0; i < 60; i++) sender!.send({ t: "send", id: ids++, group: "g", text: "y".repeat(60_000) });
    await turn();
    small!.accept = 0;
    // the reader keeps reading: it is never a candidate
    for (let i = 0; i < 15; i++) sender!.send({ t: "send", id: ids++, group: "g", text: "z".repeat(60_000) });
    await turn();
    expect(core.budget.used).toBeGreaterThan(core.budget.max);
    // Right away nothing counts as stalled (progress was recent): input pauses instead.
    expect(big!.terminated).toBe(false);
    expect(sender!.session.readPaused).toBe(true);
    // 3 s later nothing has been read from either stalled queue: the sweep sheds the biggest
    core.sweep(performance.now() + 3000);
    expect(big!.terminated).toBe(true);
    expect(reader!.terminated).toBe(false);
    expect(sender!.terminated).toBe(false);
    expect(core.budget.used).toBeLessThanOrEqual(core.budget.max);
    // everything the reader was sent arrived
    expect(reader!.chat.length).toBe(75);
    expect(small!.terminated).toBe(false); // shedding stopped once under the budget
    expect(sender!.session.readPaused).toBe(false); // and input resumed
  });

  test("when no stalled connection is left to close, input pauses everywhere until the total drops", async () => {
    const core = await makeCore({ maxFrame: 64 * 1024, maxQueue: 1024 * 1024, maxBuffered: 400 * 1024, rateMsgs: 0 });
    const [a, b] = await groupOf(core, ["pa", "pb"]);
    // b is reading, just slowly: 1000 bytes per write, a write every drain
    b!.accept = 1000;
    for (let i = 0; i < 30; i++) a!.send({ t: "send", id: ids++, group: "g", text: "w".repeat(50_000) });
    await turn();
    // a shares b's queue too (its own acks are tiny): push the total over with a held partial frame
    a!.data(header(60_000));
    a!.data(new Uint8Array(59_000));
    core.shed(performance.now()); // nothing stalled: progress was just made
    expect(b!.terminated).toBe(false);
    expect(a!.session.readPaused).toBe(true);
    expect(b!.session.readPaused).toBe(true);
    b!.accept = Infinity;
    core.drain(b!.session);
    core.sweep(performance.now());
    expect(a!.session.readPaused).toBe(false);
  });
});

describe("shedding partly received frames", () => {
  test("a frame whose bytes trickle in is shed; one arriving fast is not", async () => {
    const core = await makeCore({ maxFrame: 1 << 20, maxFrameLogin: 1 << 20, maxBuffered: 900 * 1024, rateMsgs: 0, rateBytes: 0, rateBytesAddr: 0 });
    const slow = new FakeConn(core, { remoteAddress: "10.30.0.1", reportClose: true });
    const fast = new FakeConn(core, { remoteAddress: "10.30.0.2", reportClose: true });
    for (const c of [slow, fast]) {
      c.data(header(1 << 20));
      c.data(new Uint8Array(300_000));
    }
    core.sweep(performance.now()); // one second's sample: both received 300 KB
    slow.data(new Uint8Array(10));
    fast.data(new Uint8Array(300_000)); // its buffer grows to 1 MiB: over the budget
    expect(core.budget.used).toBeGreaterThan(core.budget.max);
    core.sweep(performance.now() + 1000);
    expect(slow.terminated).toBe(true);
    expect(fast.terminated).toBe(false);
  });

  test("the budget's pause lets a frame being received finish, then pauses its connection", async () => {
    const core = await makeCore({ maxFrame: 1 << 20, maxFrameLogin: 1 << 20, maxBuffered: 1024 * 1024, rateMsgs: 0, rateBytes: 0, rateBytesAddr: 0 });
    const [a, b] = await groupOf(core, ["ga", "gb"]);
    b!.accept = 1000; // reading, slowly: never stalled
    for (let i = 0; i < 20; i++) a!.send({ t: "send", id: ids++, group: "g", text: "v".repeat(50_000) });
    await turn();
    const up = new FakeConn(core, { remoteAddress: "10.31.0.1" });
    up.data(header(200_000));
    up.data(new Uint8Array(100_000)); // mid-frame when the budget pauses input
    core.shed(performance.now(), true);
    if (core.budget.used > core.budget.max) {
      expect(a!.session.readPaused).toBe(true);
      expect(up.session.readPaused).toBe(false); // still receiving its frame
      up.data(new Uint8Array(100_000)); // the frame completes: answered, then paused
      expect(up.session.readPaused).toBe(true);
    }
    expect(up.terminated).toBe(false);
  });
});

describe("held requests (PROTOCOL.md §2.3)", () => {
  test("requests behind a pending login are bounded in bytes: the connection is not read past --max-held-bytes", async () => {
    const core = await makeCore({ maxHeldBytes: 64 * 1024, rateMsgs: 0, rateBytes: 0 });
    const c = new FakeConn(core, { reportClose: true });
    await c.req({ t: "register", id: ids++, user: "holder", pass: "password1" });
    c.send({ t: "login", id: ids++, user: "holder", pass: "password1" }); // async: a hash
    const pad = "p".repeat(30_000);
    for (let i = 0; i < 20; i++) c.send({ t: "ping", id: 9000 + i, pad });
    // while the login runs: at most the bound plus one frame is held, the rest is not read
    expect(c.session.busy).toBe(true);
    expect(c.session.heldBytes).toBeLessThanOrEqual(64 * 1024 + 30_100);
    expect(c.session.readPaused).toBe(true);
    expect(c.unread.length).toBeGreaterThan(10);
    // after the login, everything is answered, in order
    const deadline = Date.now() + 5000;
    while (c.msgs.filter((m) => m.t === "pong").length < 20 && Date.now() < deadline) await turn();
    expect(c.msgs.filter((m) => m.t === "pong").map((m) => m.id)).toEqual(Array.from({ length: 20 }, (_, i) => 9000 + i));
    expect(c.session.heldBytes).toBe(0);
  });
});

describe("refused frames (PROTOCOL.md §2.4)", () => {
  test("a frame over the rate is skipped unread; one of at most 256 bytes still gets its id", async () => {
    const core = await makeCore({ rateMsgs: 1, rateBurst: 1, maxRefused: 0 });
    const c = new FakeConn(core);
    c.send({ t: "ping", id: 1 });
    c.send({ t: "ping", id: 2 }); // small: read for its id
    c.send({ t: "ping", id: 3, pad: "q".repeat(1000) }); // large: not read
    await turn();
    expect(c.msgs.map((m) => [m.t, m.code, m.id])).toEqual([
      ["pong", undefined, 1],
      ["error", "rate_limited", 2],
      ["error", "rate_limited", undefined],
    ]);
  });

  test("a connection that keeps being refused is closed with bye limits_exceeded", async () => {
    const core = await makeCore({ rateMsgs: 10, rateBurst: 1, maxRefused: 20 });
    const c = new FakeConn(core);
    for (let i = 0; i < 100; i++) c.send({ t: "ping", id: i });
    await turn();
    expect(c.msgs.filter((m) => m.t === "pong").length).toBe(10);
    expect(c.msgs.filter((m) => m.code === "rate_limited").length).toBe(20);
    expect(c.msgs.at(-1)).toEqual({ t: "bye", reason: "limits_exceeded" });
    expect(c.ended).toBe(true);
  });

  test("before login, a frame over --max-frame-login gets too_large; after login the full limit applies", async () => {
    const core = await makeCore({ maxFrameLogin: 4096 });
    const out = new FakeConn(core);
    out.send({ t: "ping", id: 1, pad: "a".repeat(5000) });
    await turn();
    expect(out.msgs.map((m) => m.code ?? m.reason)).toEqual(["too_large", "too_large"]);
    const c = await loggedIn(core, "bigger");
    c.send({ t: "ping", id: 2, pad: "a".repeat(5000) });
    await turn();
    expect(c.msgs.at(-1)).toMatchObject({ t: "pong", id: 2 });
  });
});

describe("per-address rates and costly requests (PROTOCOL.md §2.4)", () => {
  test("the connections of one address share its request rate; another address has its own", async () => {
    const core = await makeCore({ rateMsgs: 100, rateMsgsAddr: 50, rateBurst: 1, maxRefused: 0 });
    const conns = [1, 2, 3, 4].map(() => new FakeConn(core, { remoteAddress: "10.20.0.1" }));
    for (const c of conns) for (let i = 0; i < 20; i++) c.send({ t: "ping", id: i });
    const other = new FakeConn(core, { remoteAddress: "10.20.0.2" });
    for (let i = 0; i < 20; i++) other.send({ t: "ping", id: i });
    await turn();
    const pongs = conns.reduce((n, c) => n + c.msgs.filter((m) => m.t === "pong").length, 0);
    expect(pongs).toBe(50);
    expect(other.msgs.filter((m) => m.t === "pong").length).toBe(20);
  });

  test("members of a large group costs one request per 100 names: it is refused when the rate has not that much left", async () => {
    const core = await makeCore({ rateMsgs: 30, rateMsgsAddr: 0, rateBurst: 1, maxRefused: 0, maxGroupSize: 5000 });
    const owner = await loggedIn(core, "own");
    await owner.req({ t: "create", id: ids++, group: "crowd" });
    for (let i = 0; i < 2500; i++) {
      await core.store.createUser(`m${i}`, "x", 0);
      await core.store.addMember("crowd", `m${i}`, 0);
      core.hub.addMember("crowd", `m${i}`);
    }
    await Bun.sleep(1100); // a full bucket: 30
    const first = await owner.req({ t: "members", id: ids++, group: "crowd" }); // costs 1 + 25
    expect(first.t).toBe("ok");
    expect(first.members.length).toBe(2501);
    const second = await owner.req({ t: "members", id: ids++, group: "crowd" }); // 4 left: refused
    expect(second).toMatchObject({ t: "error", code: "rate_limited" });
  });

  test("refusals for credentials count too: a connection that keeps failing logins is closed", async () => {
    const core = await makeCore({ maxRefused: 5, loginFree: 0, loginFailsAddr: 0, rateMsgs: 0 });
    const c = new FakeConn(core);
    for (let i = 0; i < 8; i++) c.send({ t: "login", id: ids++, user: "nobody", token: "x".repeat(43) });
    for (let k = 0; k < 20 && !c.ended; k++) await turn();
    expect(c.msgs.filter((m) => m.code === "unauthorized").length).toBe(5);
    expect(c.msgs.at(-1)).toEqual({ t: "bye", reason: "limits_exceeded" });
  });
});

describe("addresses and connections", () => {
  test("the limit key: IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64", () => {
    expect(addressKey("10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:0DB8:0001:0002:0:0:0:9")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
  });

  test("connections from one IPv6 /64 count together against --max-conns-per-addr", async () => {
    const core = await makeCore({ maxConnsPerAddr: 3 });
    const conns = [1, 2, 3, 4].map((i) => new FakeConn(core, { remoteAddress: `2001:db8:7:7::${i}` }));
    expect(conns.map((c) => c.session.closed)).toEqual([false, false, false, true]);
    expect(new FakeConn(core, { remoteAddress: "2001:db8:7:8::1" }).session.closed).toBe(false);
  });

  test("--max-conns refuses connections from any address beyond it", async () => {
    const core = await makeCore({ maxConns: 2, maxConnsPerAddr: 0 });
    const conns = [1, 2, 3].map((i) => new FakeConn(core, { remoteAddress: `10.9.0.${i}`, reportClose: true }));
    expect(conns.map((c) => c.session.closed)).toEqual([false, false, true]);
    await turn();
    expect(conns[2]!.msgs).toEqual([{ t: "bye", reason: "too_many_connections" }]);
    core.closed(conns[0]!.session);
    expect(new FakeConn(core, { remoteAddress: "10.9.0.4" }).session.closed).toBe(false);
  });

  test("--stuck-timeout counts from the last replay progress, not from falling behind", async () => {
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, stuckTimeout: 10 });
    const [a, slow] = await groupOf(core, ["sa", "sb"]);
    slow!.accept = 0;
    for (let i = 0; i < 200; i++) a!.send({ t: "send", id: ids++, group: "g", text: "y".repeat(100) });
    await turn();
    const fellBehind = slow!.session.behindSince;
    expect(fellBehind).toBeGreaterThan(0);
    await Bun.sleep(20);
    slow!.accept = 1500; // it reads, a little at a time
    core.drain(slow!.session);
    await turn(); // the replay's store reads are async
    core.drain(slow!.session);
    await turn();
    expect(slow!.session.behindSince).toBeGreaterThan(fellBehind); // still behind, but moving
  });

  test("a connection behind when it logs out is no longer behind (it is not closed as stuck later)", async () => {
    const core = await makeCore({ maxFrame: 4096, maxQueue: 8192, stuckTimeout: 10 });
    const [a, stuck] = await groupOf(core, ["la", "lb"]);
    stuck!.accept = 0;
    for (let i = 0; i < 100; i++) a!.send({ t: "send", id: ids++, group: "g", text: "y".repeat(100) });
    await turn();
    expect(stuck!.session.behindSince).toBeGreaterThan(0);
    stuck!.accept = Infinity;
    stuck!.send({ t: "logout", id: ids++ });
    core.drain(stuck!.session);
    await turn();
    expect(stuck!.session.behindSince).toBe(0);
    core.sweep(performance.now() + 11_000);
    expect(stuck!.terminated).toBe(false);
  });
});
