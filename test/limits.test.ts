// Abuse limits (issue #6): request rates, login throttling, connections per address,
// login and idle timeouts, group size; and TLS over a real socket.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Config } from "../src/config.ts";
import type { ChatCore } from "../src/core/chat.ts";
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
    const c = core({ rateMsgs: 10, rateBurst: 2 });
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
    const c = core({ rateBytes: 4096, rateBurst: 1, maxFrame: 4096, maxText: 4096 });
    const a = new Conn(c);
    for (let i = 1; i <= 4; i++) a.send({ t: "ping", id: i, pad: "x".repeat(1500) });
    await turn();
    expect(a.msgs.map((m) => m.t === "error" ? m.code : m.t)).toEqual(["pong", "pong", "rate_limited", "rate_limited"]);
  });
});

describe("login throttling", () => {
  test("after N failures for a user, its logins get rate_limited, even with the right password; other users are fine", async () => {
    const c = core({ loginFree: 3, loginFailsAddr: 0 });
    await loggedIn(c, "victim");
    const x = new Conn(c, "10.0.0.9");
    for (let i = 0; i < 3; i++)
      expect(await x.req({ t: "login", id: ids++, user: "victim", pass: "wrong-pass" })).toMatchObject({ code: "unauthorized" });
    const r = await x.req({ t: "login", id: ids++, user: "victim", pass: "password1" });
    expect(r).toMatchObject({ t: "error", code: "rate_limited" });
    expect(r.msg).toMatch(/retry in \d+ s/);
    await loggedIn(c, "bystander", "10.0.0.9");
  });

  test("after N failures from an address, logins from it get rate_limited; other addresses are fine", async () => {
    const c = core({ loginFree: 0, loginFailsAddr: 2 });
    await loggedIn(c, "someone");
    const x = new Conn(c, "10.6.6.6");
    for (let i = 0; i < 2; i++)
      expect(await x.req({ t: "login", id: ids++, user: `guess${i}`, pass: "wrong-pass" })).toMatchObject({ code: "unauthorized" });
    expect(await x.req({ t: "login", id: ids++, user: "someone", pass: "password1" })).toMatchObject({ code: "rate_limited" });
    await loggedIn(c, "someone", "10.7.7.7");
  });
});

describe("connections and timeouts", () => {
  test("connections per address beyond the limit get bye too_many_connections", async () => {
    const c = core({ maxConnsPerAddr: 2 });
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
    const c = core({ loginTimeout: 5 });
    const lazy = new Conn(c);
    const quick = await loggedIn(c, "quick");
    c.sweep(performance.now() + 6000);
    await turn();
    expect(lazy.msgs.at(-1)).toEqual({ t: "bye", reason: "login_timeout" });
    expect(lazy.ended).toBe(true);
    expect(quick.ended).toBe(false);
  });

  test("a connection silent past the idle timeout gets bye idle; a ping keeps it open", async () => {
    const c = core({ idleTimeout: 60, loginTimeout: 0 });
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
  const c = core({ maxGroupSize: 2 });
  const a = await loggedIn(c, "ga");
  const b = await loggedIn(c, "gb");
  const d = await loggedIn(c, "gd");
  expect((await a.req({ t: "join", id: ids++, group: "small" })).t).toBe("ok");
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
    const cert = join(tmp.dir, "cert.pem");
    const key = join(tmp.dir, "key.pem");
    const gen = Bun.spawnSync([
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    ], { stderr: "pipe" });
    expect(gen.exitCode).toBe(0);
    const server = await startServer(["--db", join(tmp.dir, "tls.db"), "--tls-cert", cert, "--tls-key", key, ...TEST_ARGS]);
    try {
      expect(server.output()).toContain("TLS");
      const ca = await Bun.file(cert).text();
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
