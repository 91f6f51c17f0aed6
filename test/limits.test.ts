// Abuse limits (issue #6): request rates, login throttling, connections per address,
// login and idle timeouts, group size; and TLS over a real socket.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Config, DEFAULTS } from "../src/config.ts";
import { ChatCore, type Logger } from "../src/core/chat.ts";
import type { Session } from "../src/core/session.ts";
import type { Transport } from "../src/core/writer.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { TestClient } from "./helpers/client.ts";
import { FAST_HASH, startServer, tempDir } from "./helpers/server.ts";
import { frameOf, type Msg, MsgReader } from "./helpers/wire.ts";

const quiet: Logger = { info() {}, error() {} };
const turn = () => new Promise((r) => setImmediate(r));

class Conn implements Transport {
  readonly reader = new MsgReader();
  ended = false;
  session: Session;
  constructor(
    readonly core: ChatCore,
    readonly remoteAddress = "10.0.0.1",
  ) {
    this.session = core.open(this);
  }
  write(d: Uint8Array): number {
    if (this.ended) return -1;
    this.reader.push(d);
    return d.length;
  }
  // Like a real socket: ending or terminating it is followed by its close event.
  end(): void {
    this.ended = true;
    this.core.closed(this.session);
  }
  terminate(): void {
    this.end();
  }
  get msgs(): Msg[] {
    return this.reader.msgs;
  }
  send(m: Msg): void {
    this.core.data(this.session, frameOf(m));
  }
  async req(m: Msg): Promise<Msg> {
    this.send(m);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const r = this.msgs.find((x) => x.id === m.id);
      if (r) return r;
      await turn();
    }
    throw new Error(`no reply to ${JSON.stringify(m)}`);
  }
}

const core = (over: Partial<Config> = {}) =>
  new ChatCore({ ...DEFAULTS, hashMemory: 64, hashTime: 1, ...over }, new MemoryStore(), quiet);

let ids = 1;
async function loggedIn(c: ChatCore, name: string, addr?: string): Promise<Conn> {
  const x = new Conn(c, addr);
  if (!c.userExists(name)) expect((await x.req({ t: "register", id: ids++, user: name, pass: "password1" })).t).toBe("ok");
  expect((await x.req({ t: "login", id: ids++, user: name, pass: "password1" })).t).toBe("ok");
  return x;
}

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
    const c = core({ loginFailsUser: 3, loginFailsAddr: 0 });
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
    const c = core({ loginFailsUser: 0, loginFailsAddr: 2 });
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
    const server = await startServer(["--db", join(tmp.dir, "tls.db"), "--tls-cert", cert, "--tls-key", key, ...FAST_HASH]);
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
