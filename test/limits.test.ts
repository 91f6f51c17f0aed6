// Abuse limits (issue #6): request rates, login throttling, connections per address,
// login and idle timeouts, group size; and TLS over a real socket. The hardening issue:
// login and registration throttles (#5, #6, #8, #15), logins, sessions and presence per user (#10).
import { selfSignedCert } from "./helpers/attack.ts";
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Config, DEFAULTS } from "../src/config.ts";
import type { ChatCore } from "../src/core/chat.ts";
import { LoginGuard, PASSWORD_SLOTS } from "../src/core/guard.ts";
import { Backoff, HashPool } from "../src/core/limits.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { TestClient } from "./helpers/client.ts";
import { FakeConn, makeCore, loggedIn as login, turn } from "./helpers/fake-conn.ts";
import { TEST_ARGS, startServer, tempDir } from "./helpers/server.ts";
import { frameOf } from "./helpers/wire.ts";

/** Connections here behave like sockets: ending one reports its close to the core. */
class Conn extends FakeConn {
  constructor(core: ChatCore, remoteAddress = "10.0.0.1") {
    super(core, { remoteAddress, reportClose: true });
  }
}

const core = (over: Partial<Config> = {}) => makeCore(over);

let ids = 1;
const loggedIn = (c: ChatCore, name: string, addr = "10.0.0.1") => login(c, name, { remoteAddress: addr, reportClose: true });

describe("request rate", () => {
  test("a burst beyond rate x burst gets rate_limited with the request's id; the rest is served", async () => {
    const c = await core({ rateMsgs: 10, rateBurst: 2 });
    const a = new Conn(c);
    for (let i = 1; i <= 30; i++) a.send({ t: "ping", id: i });
    await turn();
    const pongs = a.msgs.filter((m) => m.t === "pong").length;
    const limited = a.msgs.filter((m) => m.code === "rate_limited");
    expect(pongs).toBe(20); // 10/s x 2 s of burst
    expect(limited.length).toBe(10);
    expect(limited[0]!.id).toBe(21);
  });

  test("bytes per second are limited too", async () => {
    const c = await core({ rateBytes: 4096, rateBurst: 1, maxFrame: 4096, maxText: 4096 });
    const a = new Conn(c);
    for (let i = 1; i <= 4; i++) a.send({ t: "ping", id: i, pad: "x".repeat(1500) });
    await turn();
    expect(a.msgs.map((m) => m.t === "error" ? m.code : m.t)).toEqual(["pong", "pong", "rate_limited", "rate_limited"]);
  });
});

const wrong = (c: Conn, user: string) => c.req({ t: "login", id: ids++, user, pass: "wrong-pass" });
const right = (c: Conn, user: string) => c.req({ t: "login", id: ids++, user, pass: "password1" });

describe("login throttling (issue #5, #6, #15)", () => {

  test("failures back off per (user, address): that address waits, the user's right password from elsewhere is accepted", async () => {
    const c = await core({ loginFree: 3, loginFailsAddr: 0, loginBackoffMax: 1 });
    await loggedIn(c, "victim");
    const x = new Conn(c, "10.0.0.9");
    for (let i = 0; i < 3; i++) expect(await wrong(x, "victim")).toMatchObject({ code: "unauthorized" });
    const r = await right(x, "victim");
    expect(r).toMatchObject({ t: "error", code: "rate_limited" });
    expect(r.msg).toMatch(/retry in 1 s/);
    // no lockout of the user: the owner, from their own address, is not slowed at all
    await loggedIn(c, "victim", "10.0.0.1");
    await loggedIn(c, "bystander", "10.0.0.9");
    // after the backoff, the right password from that address is accepted too, and clears its count
    await Bun.sleep(1100);
    expect((await right(x, "victim")).t).toBe("ok");
    const y = new Conn(c, "10.0.0.9");
    for (let i = 0; i < 3; i++) expect(await wrong(y, "victim")).toMatchObject({ code: "unauthorized" });
  });

  test("bogus tokens never lock the user out: the valid token and, from elsewhere, the password still work", async () => {
    const c = await core({ loginFree: 5, loginFailsAddr: 5 });
    const owner = await loggedIn(c, "victim", "10.0.0.1");
    const token = owner.msgs.find((m) => m.t === "ok" && m.token)!.token as string;
    const x = new Conn(c, "10.6.6.6");
    for (let i = 0; i < 20; i++)
      expect(await x.req({ t: "login", id: ids++, user: "victim", token: `bogus${i}`.padEnd(43, "x") })).toMatchObject({ code: "unauthorized" });
    // the valid token is accepted, even from the attacker's address
    expect((await new Conn(c, "10.6.6.6").req({ t: "login", id: ids++, user: "victim", token })).t).toBe("ok");
    expect((await new Conn(c, "10.0.0.1").req({ t: "login", id: ids++, user: "victim", token })).t).toBe("ok");
    expect((await right(new Conn(c, "10.0.0.2"), "victim")).t).toBe("ok");
    // the bogus tokens cost that address's password checks nothing: neighbours behind it (a NAT) log in
    await loggedIn(c, "neighbour", "10.6.6.6");
    expect((await right(new Conn(c, "10.6.6.6"), "victim")).t).toBe("ok");
  });

  test("failures from one address across users back off that address; other addresses are fine", async () => {
    const c = await core({ loginFree: 0, loginFailsAddr: 2 });
    await loggedIn(c, "someone");
    const x = new Conn(c, "10.6.6.6");
    for (let i = 0; i < 2; i++)
      expect(await x.req({ t: "login", id: ids++, user: `guess${i}`, pass: "wrong-pass" })).toMatchObject({ code: "unauthorized" });
    expect(await right(x, "someone")).toMatchObject({ code: "rate_limited" });
    await loggedIn(c, "someone", "10.7.7.7");
  });

  test("simultaneous guesses count from when they start: 40 at once, the right one 38th, is not accepted", async () => {
    const c = await core({ loginFree: 5, loginFailsAddr: 0 });
    await loggedIn(c, "victim", "10.0.0.1");
    const conns = Array.from({ length: 40 }, () => new Conn(c, "10.6.6.6"));
    const replies = await Promise.all(
      conns.map((x, i) => x.req({ t: "login", id: ids++, user: "victim", pass: i === 37 ? "password1" : `wrong-pass${i}` })),
    );
    const codes = replies.map((r) => (r.t === "ok" ? "ok" : r.code));
    expect(codes[37]).not.toBe("ok");
    // evaluated: at most the per-(user, address) and per-address caps at once, and no more than the free ones in all
    expect(codes.filter((x) => x === "unauthorized").length).toBeLessThanOrEqual(
      Math.min(DEFAULTS.loginConcurrentUser, DEFAULTS.loginConcurrentAddr),
    );
    expect(codes.filter((x) => x === "rate_limited").length).toBeGreaterThanOrEqual(38);
  });

  test("password checks in progress are capped per (user, address), and per address across users", async () => {
    const c = await core({ loginFree: 0, loginFailsAddr: 0, loginConcurrentUser: 2, loginConcurrentAddr: 3 });
    for (const u of ["u1", "u2", "u3", "u4", "u5"]) await loggedIn(c, u, "10.0.0.1");
    // one user from 6 addresses at once: no cap across addresses
    const spread = await Promise.all(Array.from({ length: 6 }, (_, i) => right(new Conn(c, `10.1.0.${i}`), "u1")));
    expect(spread.filter((r) => r.t === "ok").length).toBe(6);
    const perUser = await Promise.all(Array.from({ length: 3 }, () => right(new Conn(c, "10.1.1.1"), "u1")));
    expect(perUser.filter((r) => r.t === "ok").length).toBe(2);
    expect(perUser.filter((r) => r.code === "rate_limited").length).toBe(1);
    const perAddr = await Promise.all(["u2", "u3", "u4", "u5"].map((u) => right(new Conn(c, "10.2.0.1"), u)));
    expect(perAddr.filter((r) => r.t === "ok").length).toBe(3);
    expect(perAddr.filter((r) => r.code === "rate_limited").length).toBe(1);
  });

  test("passwd checks are throttled like logins", async () => {
    const c = await core({ loginFree: 2, loginFailsAddr: 0 });
    const a = await loggedIn(c, "pw", "10.0.0.1");
    for (let i = 0; i < 2; i++)
      expect(await a.req({ t: "passwd", id: ids++, old: "wrong-pass", new: "password2" })).toMatchObject({ code: "unauthorized" });
    expect(await a.req({ t: "passwd", id: ids++, old: "password1", new: "password2" })).toMatchObject({ code: "rate_limited" });
    // from another address the owner may still change it
    const b = await loggedIn(c, "pw", "10.0.0.2");
    expect((await b.req({ t: "passwd", id: ids++, old: "password1", new: "password2" })).t).toBe("ok");
  });

  test("backoff windows use a monotonic clock: a wall clock stepped back does not prolong them", async () => {
    const c = await core({ loginFree: 1, loginFailsAddr: 0, loginBackoffMax: 1 });
    await loggedIn(c, "clock", "10.0.0.1");
    const x = new Conn(c, "10.0.0.9");
    expect(await wrong(x, "clock")).toMatchObject({ code: "unauthorized" });
    expect(await right(x, "clock")).toMatchObject({ code: "rate_limited" });
    const realNow = Date.now;
    Date.now = () => realNow() - 3600_000; // the wall clock is stepped back an hour
    try {
      await Bun.sleep(1100);
      c.sweep(performance.now());
      expect((await right(x, "clock")).t).toBe("ok");
    } finally {
      Date.now = realNow;
    }
  });
});

describe("Backoff", () => {
  test("free failures, then 1 s doubling up to the most; a success starts afresh; failures are forgiven with time", () => {
    const b = new Backoff(2, 8000, 60_000);
    const fail = (t: number) => b.fail("k", t);
    fail(0);
    expect(b.waitFor("k", 0)).toBe(0);
    fail(0);
    expect(b.waitFor("k", 0)).toBe(1000);
    expect(b.waitFor("k", 400)).toBe(600);
    fail(1000);
    expect(b.waitFor("k", 1000)).toBe(2000);
    fail(3000);
    fail(7000);
    expect(b.waitFor("k", 7000)).toBe(8000);
    fail(15_000);
    expect(b.waitFor("k", 15_000)).toBe(8000); // capped
    // 6 failures: after 4 minutes, 4 are forgiven, 2 left, the free ones: 1 s from the last failure has long passed
    expect(b.waitFor("k", 15_000 + 4 * 60_000)).toBe(0);
    b.prune(15_000 + 6 * 60_000);
    expect(b.size).toBe(0);
    fail(0);
    fail(0);
    b.begin("k", 0);
    b.succeeded("k", 10);
    expect(b.waitFor("k", 10)).toBe(0);
  });

  test("the count is capped where the wait is already the longest: a flood of failures is forgiven within minutes", () => {
    // cap: 5 free + ceil(log2(60)) + 1 = 12; beyond 5 + 6 failures the wait is the longest (60 s) already
    const b = new Backoff(5, 60_000, 60_000);
    for (let i = 0; i < 30_000; i++) b.fail("k", i / 30); // 30,000 failures within a second
    expect(b.waitFor("k", 1000)).toBeGreaterThan(59_000);
    // (cap - free) x 60 s later, the count is back to the free ones: a failure then costs 2 s, not 60 s
    const later = 1000 + 7 * 60_000;
    b.fail("k", later);
    expect(b.waitFor("k", later)).toBe(2000);
    // and the key is forgotten 12 minutes after that
    b.prune(later + 12 * 60_000);
    expect(b.size).toBe(0);
  });

  test("attempts in progress count; one refused before it ran does not", () => {
    const b = new Backoff(2, 8000, 60_000);
    b.begin("k", 0);
    b.begin("k", 0);
    expect(b.waitFor("k", 0)).toBe(1000); // two in progress: a third must wait
    b.cancel("k", 5);
    expect(b.waitFor("k", 5)).toBe(0);
    b.failed("k", 10);
    b.fail("k", 20);
    expect(b.waitFor("k", 20)).toBe(1000);
    expect(new Backoff(0, 8000, 60_000).waitFor("k", 0)).toBe(0);
  });
});

describe("LoginGuard (login throttles review)", () => {
  /** Password checks held open until `open()`: what the pool and the caps see while hashes run. */
  function gated(over: Partial<Config>) {
    const guard = new LoginGuard({ ...DEFAULTS, loginFree: 0, loginFailsAddr: 0, ...over });
    const gates: (() => void)[] = [];
    const check = (user: string, addr: string) =>
      guard
        .password(user, addr, () => new Promise<boolean>((r) => gates.push(() => r(true))))
        .then(
          (ok) => (ok ? "ok" : "wrong"),
          (e) => (e instanceof ProtocolError ? e.code : String(e)),
        );
    const open = async () => {
      for (let n = 0; n < 1000 && (gates.length > 0 || guard.passwords.busy > 0); n++) {
        while (gates.length) gates.shift()!();
        await turn();
      }
    };
    return { guard, check, open };
  }

  test("the waiting queue is shared fairly: 3 addresses without a per-address cap cannot fill it", async () => {
    const { guard, check, open } = gated({ loginConcurrentAddr: 0, hashQueue: 8 });
    const flood = ["10.6.0.1", "10.6.0.2", "10.6.0.3"].flatMap((a) => Array.from({ length: 10 }, (_, i) => check(`u${i}`, a)));
    const own = check("victim", "10.0.0.1");
    // PASSWORD_SLOTS hashing; each address holds at most max(2, hashQueue / 8) = 2 waiting: 6, and the victim's 7th
    expect(guard.passwords.busy).toBe(PASSWORD_SLOTS);
    expect(guard.passwords.queued).toBe(7);
    await open();
    expect(await own).toBe("ok");
    const codes = await Promise.all(flood);
    expect(codes.filter((x) => x === "ok").length).toBe(PASSWORD_SLOTS + 6);
    expect(codes.filter((x) => x === "rate_limited").length).toBe(30 - PASSWORD_SLOTS - 6);
  });

  test("checks for a user from other addresses do not make the user's own check 'already in progress'", async () => {
    const { check, open } = gated({ loginConcurrentUser: 2, loginConcurrentAddr: 2 });
    const attack = Array.from({ length: 6 }, (_, i) => [check("victim", `10.6.1.${i}`), check("victim", `10.6.1.${i}`)]).flat();
    const third = check("victim", "10.6.1.0"); // over the (user, address) cap
    const own = check("victim", "10.0.0.1");
    expect(await third).toBe("rate_limited");
    await open();
    expect(await own).toBe("ok");
    expect(await Promise.all(attack)).toEqual(Array(12).fill("ok"));
  });
});

describe("hashing queues (issue #8)", () => {
  test("a pool runs `slots` at once, `queue` waiting in order, and refuses more at once", async () => {
    const pool = new HashPool(2, 1, "busy");
    const gates: (() => void)[] = [];
    const order: number[] = [];
    const job = (i: number) => () => new Promise<number>((r) => gates.push(() => { order.push(i); r(i); }));
    const a = pool.run(job(1));
    const b = pool.run(job(2));
    const cc = pool.run(job(3));
    await expect(pool.run(job(4))).rejects.toMatchObject({ code: "rate_limited" });
    await turn();
    expect(gates.length).toBe(2); // the third waits
    gates.shift()!();
    await a;
    await turn();
    expect(gates.length).toBe(2);
    while (gates.length) gates.shift()!();
    expect(await Promise.all([b, cc])).toEqual([2, 3]);
    expect(order).toEqual([1, 2, 3]);
    expect(pool.busy).toBe(0);
  });

  test("registrations per address per hour", async () => {
    const c = await core({ registerPerAddr: 3 });
    const x = new Conn(c, "10.3.0.1");
    for (let i = 0; i < 3; i++) expect((await x.req({ t: "register", id: ids++, user: `reg${i}`, pass: "password1" })).t).toBe("ok");
    const r = await x.req({ t: "register", id: ids++, user: "reg3", pass: "password1" });
    expect(r).toMatchObject({ code: "rate_limited" });
    expect(r.msg).toMatch(/retry in \d+ s/);
    expect((await new Conn(c, "10.3.0.2").req({ t: "register", id: ids++, user: "reg3", pass: "password1" })).t).toBe("ok");
  });

  test("registrations wait in their own bounded queue: a flood is refused at once and does not hold up a login", async () => {
    const c = await core({ registerQueue: 2, registerPerAddr: 0, hashMemory: 8192, hashTime: 2 });
    await loggedIn(c, "early", "10.0.0.1");
    const flood = Array.from({ length: 8 }, (_, i) => new Conn(c, `10.4.0.${i}`));
    const pending = flood.map((x, i) => x.req({ t: "register", id: ids++, user: `flood${i}`, pass: "password1" }));
    const t0 = performance.now();
    expect((await right(new Conn(c, "10.5.0.1"), "early")).t).toBe("ok");
    const loginMs = performance.now() - t0;
    const regs = await Promise.all(pending);
    const regMs = performance.now() - t0;
    expect(regs.filter((r) => r.t === "ok").length).toBe(3); // 1 hashing + 2 waiting
    expect(regs.filter((r) => r.code === "rate_limited").length).toBe(5);
    // the login hashed beside the one registration running, not behind the queue
    expect(loginMs).toBeLessThan(regMs);
  });
});

describe("logins per user and sessions per user (issue #10)", () => {
  test("successful logins per user per minute are limited; the refusal says so", async () => {
    const c = await core({ loginsPerUser: 3 });
    const first = await loggedIn(c, "busy", "10.0.0.1");
    const token = first.msgs.find((m) => m.t === "ok" && m.token)!.token as string;
    for (let i = 0; i < 2; i++) expect((await new Conn(c).req({ t: "login", id: ids++, user: "busy", token })).t).toBe("ok");
    const r = await new Conn(c).req({ t: "login", id: ids++, user: "busy", token });
    expect(r).toMatchObject({ code: "rate_limited" });
    expect(r.msg).toMatch(/logins of "busy" in a minute: retry in \d+ s/);
    // only that user
    await loggedIn(c, "calm", "10.0.0.1");
  });

  test("logged-in connections per user are capped; closing one frees its place", async () => {
    const c = await core({ maxSessionsPerUser: 2 });
    const a = await loggedIn(c, "many", "10.0.0.1");
    await loggedIn(c, "many", "10.0.0.2");
    const r = await new Conn(c, "10.0.0.3").req({ t: "login", id: ids++, user: "many", pass: "password1" });
    expect(r).toMatchObject({ code: "rate_limited" });
    expect(r.msg).toContain("close one first");
    a.end();
    await loggedIn(c, "many", "10.0.0.3");
  });
});

describe("presence debounce (issue #10)", () => {
  test("online/offline flapping within the delay sends nothing; the settled state is announced once", async () => {
    const c = await core({ presenceDelay: 150 });
    const watcher = await loggedIn(c, "watcher");
    const flapper = await loggedIn(c, "flapper");
    expect((await watcher.req({ t: "create", id: ids++, group: "pg" })).t).toBe("ok");
    expect((await flapper.req({ t: "join", id: ids++, group: "pg" })).t).toBe("ok");
    await Bun.sleep(200); // flapper's first login settles while nobody shared a group: nothing to send
    watcher.msgs.length = 0;
    flapper.end();
    for (let i = 0; i < 10; i++) (await loggedIn(c, "flapper")).end();
    await Bun.sleep(300);
    expect(watcher.msgs.filter((m) => m.t === "presence")).toEqual([{ t: "presence", user: "flapper", online: false }]);
    for (let i = 0; i < 5; i++) (await loggedIn(c, "flapper")).end();
    await loggedIn(c, "flapper");
    await Bun.sleep(300);
    expect(watcher.msgs.filter((m) => m.t === "presence")).toEqual([
      { t: "presence", user: "flapper", online: false },
      { t: "presence", user: "flapper", online: true },
    ]);
  });

  test("with no delay, presence is sent at once", async () => {
    const c = await core({ presenceDelay: 0 });
    const watcher = await loggedIn(c, "w0");
    const other = await loggedIn(c, "o0");
    await watcher.req({ t: "create", id: ids++, group: "pg0" });
    await other.req({ t: "join", id: ids++, group: "pg0" });
    other.end();
    await turn();
    expect(watcher.msgs.filter((m) => m.t === "presence")).toEqual([{ t: "presence", user: "o0", online: false }]);
  });
});

describe("connections and timeouts", () => {
  test("connections per address beyond the limit get bye too_many_connections", async () => {
    const c = await core({ maxConnsPerAddr: 2 });
    const a = new Conn(c, "10.1.1.1");
    const b = new Conn(c, "10.1.1.1");
    const third = new Conn(c, "10.1.1.1");
    const other = new Conn(c, "10.1.1.2");
    expect(a.session.closed || b.session.closed || other.session.closed).toBe(false);
    expect(third.session.closed).toBe(true);
    await turn();
    expect(third.msgs).toEqual([{ t: "bye", reason: "too_many_connections" }]);
    expect(third.ended).toBe(true);
    // a closed connection frees its place
    c.closed(a.session);
    expect(new Conn(c, "10.1.1.1").session.closed).toBe(false);
  });

  test("a connection that does not log in in time gets bye login_timeout", async () => {
    const c = await core({ loginTimeout: 5 });
    const lazy = new Conn(c);
    const quick = await loggedIn(c, "quick");
    c.sweep(performance.now() + 6000);
    await turn();
    expect(lazy.msgs.at(-1)).toEqual({ t: "bye", reason: "login_timeout" });
    expect(lazy.ended).toBe(true);
    expect(quick.ended).toBe(false);
  });

  test("a connection silent past the idle timeout gets bye idle; a ping keeps it open", async () => {
    const c = await core({ idleTimeout: 60, loginTimeout: 0 });
    const silent = await loggedIn(c, "silent");
    const chatty = await loggedIn(c, "chatty");
    const t0 = performance.now();
    c.sweep(t0 + 30_000);
    expect(silent.ended).toBe(false);
    chatty.session.lastFrameAt = t0 + 50_000; // as if it pinged at +50 s
    c.sweep(t0 + 61_000);
    await turn();
    expect(silent.msgs.at(-1)).toEqual({ t: "bye", reason: "idle" });
    expect(silent.ended).toBe(true);
    expect(chatty.ended).toBe(false);
  });
});

test("a full group refuses new members with forbidden; members may re-join", async () => {
  const c = await core({ maxGroupSize: 2 });
  const a = await loggedIn(c, "ga");
  const b = await loggedIn(c, "gb");
  const d = await loggedIn(c, "gd");
  expect((await a.req({ t: "create", id: ids++, group: "small" })).t).toBe("ok");
  expect((await b.req({ t: "join", id: ids++, group: "small" })).t).toBe("ok");
  const r = await d.req({ t: "join", id: ids++, group: "small" });
  expect(r).toMatchObject({ t: "error", code: "forbidden" });
  expect(r.msg).toContain("full");
  expect((await b.req({ t: "join", id: ids++, group: "small" })).t).toBe("ok");
});

describe("TLS", () => {
  const tmp = tempDir("tcpchat-tls-");
  afterAll(() => tmp.cleanup());

  test("with --tls-cert/--tls-key the same protocol runs over TLS, verified against the certificate", async () => {
    const { certFile, keyFile, cert: ca } = selfSignedCert(tmp.dir);
    const server = await startServer(["--db", join(tmp.dir, "tls.db"), "--tls-cert", certFile, "--tls-key", keyFile, ...TEST_ARGS]);
    try {
      expect(server.output()).toContain("TLS");
      const a = await TestClient.connect(server.port, "127.0.0.1", { ca });
      const b = await TestClient.connect(server.port, "127.0.0.1", { ca });
      await a.register("tlsa");
      await a.login("tlsa");
      await b.register("tlsb");
      await b.login("tlsb");
      const sent = await a.ok({ t: "send", user: "tlsb", text: "over TLS" });
      expect(await b.nextPush("msg")).toMatchObject({ mid: sent.mid, from: "tlsa", text: "over TLS" });
      // a plaintext client gets no protocol answer from the TLS port
      const plain = await TestClient.connect(server.port);
      plain.writeRaw(frameOf({ t: "ping", id: 1 }));
      await Bun.sleep(300);
      expect(plain.received.some((m) => m.t === "pong")).toBe(false);
      a.close();
      b.close();
      plain.close();
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
