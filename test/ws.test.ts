// Protocol v1 over WebSocket (PROTOCOL.md §1), against the real server process: one
// MessagePack map per binary message; a TCP user and a WebSocket user chat with each
// other; text messages, oversized messages and foreign Origins are refused; a WebSocket
// reader that stops reading falls behind and catches up (§5.4) exactly as on TCP; the page
// is served with its security headers; TLS gives https and wss.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { join } from "node:path";
import type { Socket } from "bun";
import { selfSignedCert } from "./helpers/attack.ts";
import { isGroupChange, TestClient } from "./helpers/client.ts";
import { type RunningServer, startServer, TEST_ARGS, tempDir } from "./helpers/server.ts";
import type { Msg } from "./helpers/wire.ts";

const tmp = tempDir("tcpchat-ws-");
let server: RunningServer;
let httpPort = 0;
const open: Array<{ close(): void }> = [];

function webPort(s: RunningServer): number {
  const m = s.output().match(/web app at https?:\/\/[^\s]+:(\d+)\//);
  if (!m) throw new Error(`no web app line in: ${s.output()}`);
  return Number(m[1]);
}

beforeAll(async () => {
  server = await startServer([
    "--db", join(tmp.dir, "ws.db"), "--max-frame", "65536", "--max-queue", "1048576", "--max-frame-login", "4096",
    "--max-group-size", "1000", "--max-groups-per-user", "600",
    "--http-origins", "https://friend.example", ...TEST_ARGS,
  ]);
  httpPort = webPort(server);
});

afterAll(async () => {
  for (const c of open) c.close();
  await server.stop();
  tmp.cleanup();
});

/** A WebSocket test client: requests matched by id, everything received kept in order. */
class WsClient {
  readonly received: Msg[] = [];
  closeCode: number | undefined;
  private nextId = 1;
  private waiters = new Set<() => void>();
  user?: string;
  private constructor(readonly ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      this.received.push(decode(new Uint8Array(e.data as ArrayBuffer)) as Msg);
      for (const w of this.waiters) w();
    };
    ws.onclose = (e) => {
      this.closeCode = e.code;
      for (const w of this.waiters) w();
    };
  }
  static connect(port = httpPort, headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers } as unknown as string[]);
      const c = new WsClient(ws);
      open.push(ws);
      ws.onopen = () => resolve(c);
      ws.onerror = () => reject(new Error("WebSocket refused"));
    });
  }
  send(m: Msg): void {
    this.ws.send(encode(m));
  }
  async waitFor(pred: (m: Msg) => boolean, ms = 5000, from = 0): Promise<Msg> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.received.slice(from).find(pred);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode}) while waiting`);
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.received.slice(-3))}`);
      await new Promise<void>((r) => {
        const w = () => {
          this.waiters.delete(w);
          r();
        };
        this.waiters.add(w);
        setTimeout(w, 50);
      });
    }
  }
  async request(m: Msg): Promise<Msg> {
    const id = this.nextId++;
    this.send({ ...m, id });
    return this.waitFor((x) => x.id === id && (x.t === "ok" || x.t === "error" || x.t === "pong"));
  }
  async ok(m: Msg): Promise<Msg> {
    const r = await this.request(m);
    if (r.t !== "ok") throw new Error(`expected ok, got ${JSON.stringify(r)}`);
    return r;
  }
  async account(name: string): Promise<void> {
    await this.ok({ t: "register", user: name, pass: "password1" });
    await this.ok({ t: "login", user: name, pass: "password1" });
    this.user = name;
  }
  async closed(ms = 5000): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.closeCode === undefined && Date.now() < deadline) await Bun.sleep(10);
    return this.closeCode ?? -1;
  }
}

describe("protocol v1 over WebSocket", () => {
  test("ping, register, login: one MessagePack map per binary message", async () => {
    const w = await WsClient.connect();
    expect(await w.request({ t: "ping" })).toEqual({ t: "pong", id: 1 });
    await w.account("wsann");
    const groups = await w.ok({ t: "groups" });
    expect(groups.groups).toEqual([]);
  });

  test("a TCP user and a WebSocket user chat in a group and by DM, both ways", async () => {
    const w = await WsClient.connect();
    await w.account("wsbob");
    const t = await TestClient.connect(server.port);
    open.push(t);
    await t.register("tcpcarol");
    await t.login("tcpcarol");
    await w.ok({ t: "create", group: "mixed" });
    await t.ok({ t: "join", group: "mixed" });
    const fromTcp = await t.ok({ t: "send", group: "mixed", text: "hello from TCP" });
    expect(await w.waitFor((m) => m.t === "msg" && m.mid === fromTcp.mid)).toMatchObject({ from: "tcpcarol", text: "hello from TCP" });
    const fromWs = await w.ok({ t: "send", user: "tcpcarol", text: "hello from the browser side" });
    expect(await t.waitFor((m) => m.t === "msg" && m.mid === fromWs.mid)).toMatchObject({ from: "wsbob", user: "tcpcarol" });
  });

  test("a text message is not protocol v1: the connection is closed with code 1003", async () => {
    const w = await WsClient.connect();
    w.ws.send('{"t":"ping"}');
    expect(await w.closed()).toBe(1003);
  });

  test("a message over --max-frame-login before login: too_large and bye; over --max-frame: closed with 1009", async () => {
    const a = await WsClient.connect();
    a.send({ t: "register", user: "x".repeat(10), pass: "p".repeat(5000) });
    await a.waitFor((m) => m.t === "error" && m.code === "too_large");
    await a.waitFor((m) => m.t === "bye" && m.reason === "too_large");
    const b = await WsClient.connect();
    b.ws.send(new Uint8Array(70000));
    expect(await b.closed()).toBe(1009);
    // The server is fine: a new connection works.
    const c = await WsClient.connect();
    expect(await c.request({ t: "ping" })).toMatchObject({ t: "pong" });
  });

  test("Origin: the server's own and --http-origins may open /ws; another site's page may not", async () => {
    await expect(WsClient.connect(httpPort, { Origin: "https://evil.example" })).rejects.toThrow();
    const own = await WsClient.connect(httpPort, { Origin: `http://127.0.0.1:${httpPort}` });
    expect(await own.request({ t: "ping" })).toMatchObject({ t: "pong" });
    const friend = await WsClient.connect(httpPort, { Origin: "https://friend.example" });
    expect(await friend.request({ t: "ping" })).toMatchObject({ t: "pong" });
    const r = await fetch(`http://127.0.0.1:${httpPort}/ws`, {
      headers: { Origin: "https://evil.example", Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13" },
    });
    expect(r.status).toBe(403);
  });

  test("GET / serves the app with a strict Content-Security-Policy; unknown paths are 404", async () => {
    const r = await fetch(`http://127.0.0.1:${httpPort}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/html");
    const csp = r.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await r.text()).toContain("<html");
    expect((await fetch(`http://127.0.0.1:${httpPort}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${httpPort}/`, { method: "POST" })).status).toBe(405);
  });
});

/**
 * A WebSocket client on a raw socket, so that it can stop reading (a browser's cannot):
 * the handshake, masked binary frames out, and a parser for the server's frames in.
 */
class RawWs {
  private buf = new Uint8Array(0);
  readonly msgs: Msg[] = [];
  private sock!: Socket<undefined>;
  private nextId = 1;
  private handshaken = false;
  static async connect(port: number): Promise<RawWs> {
    const c = new RawWs();
    const { promise, resolve } = Promise.withResolvers<void>();
    c.sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        data: (_s, chunk) => {
          c.onData(chunk);
          if (c.handshaken) resolve();
        },
      },
    });
    c.sock.write(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    await promise;
    return c;
  }
  private onData(chunk: Uint8Array): void {
    const b = new Uint8Array(this.buf.length + chunk.length);
    b.set(this.buf);
    b.set(chunk, this.buf.length);
    this.buf = b;
    if (!this.handshaken) {
      const end = Buffer.from(this.buf).indexOf("\r\n\r\n");
      if (end < 0) return;
      this.handshaken = true;
      this.buf = this.buf.subarray(end + 4);
    }
    for (;;) {
      if (this.buf.length < 2) return;
      let len = this.buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = (this.buf[2]! << 8) | this.buf[3]!;
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(new DataView(this.buf.buffer, this.buf.byteOffset).getBigUint64(2));
        at = 10;
      }
      if (this.buf.length < at + len) return;
      if ((this.buf[0]! & 0x0f) === 2) this.msgs.push(decode(this.buf.subarray(at, at + len)) as Msg);
      this.buf = this.buf.subarray(at + len);
    }
  }
  send(m: Msg): number {
    const id = this.nextId++;
    const body = encode({ ...m, id });
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const head = body.length < 126 ? [0x82, 0x80 | body.length] : [0x82, 0x80 | 126, body.length >> 8, body.length & 0xff];
    const f = new Uint8Array(head.length + 4 + body.length);
    f.set(head);
    f.set(mask, head.length);
    for (let i = 0; i < body.length; i++) f[head.length + 4 + i] = body[i]! ^ mask[i & 3]!;
    this.sock.write(f);
    return id;
  }
  async reply(id: number): Promise<Msg> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = this.msgs.find((m) => m.id === id);
      if (r) return r;
      if (Date.now() > deadline) throw new Error("no reply");
      await Bun.sleep(5);
    }
  }
  pause(): void {
    this.sock.pause();
  }
  resume(): void {
    this.sock.resume();
  }
  close(): void {
    this.sock.end();
  }
}

describe("backpressure over WebSocket", () => {
  test("a WebSocket reader that stops reading falls behind, then gets every message once, in order, when it reads again", async () => {
    const reader = await RawWs.connect(httpPort);
    open.push(reader);
    expect((await reader.reply(reader.send({ t: "register", user: "wsslow", pass: "password1" }))).t).toBe("ok");
    expect((await reader.reply(reader.send({ t: "login", user: "wsslow", pass: "password1" }))).t).toBe("ok");
    expect((await reader.reply(reader.send({ t: "create", group: "flood" }))).t).toBe("ok");
    const sender = await TestClient.connect(server.port);
    open.push(sender);
    await sender.register("wsflooder");
    await sender.login("wsflooder");
    await sender.ok({ t: "join", group: "flood" });
    reader.pause();
    // 6 MB to a reader whose queue bound is 1 MiB: far more than the kernel and Bun's buffer hold.
    const text = "z".repeat(30000);
    const mids: number[] = [];
    for (let i = 0; i < 200; i++) mids.push((await sender.ok({ t: "send", group: "flood", text, cid: `f${i}` })).mid);
    await Bun.sleep(300);
    const before = reader.msgs.filter((m) => m.t === "msg" && !isGroupChange(m)).length;
    expect(before).toBeLessThan(200); // it was not read: not everything can have arrived
    reader.resume();
    const deadline = Date.now() + 20000;
    while (reader.msgs.filter((m) => m.t === "msg" && !isGroupChange(m)).length < 200 && Date.now() < deadline) await Bun.sleep(20);
    const got = reader.msgs.filter((m) => m.t === "msg" && !isGroupChange(m)).map((m) => m.mid as number);
    expect(got).toEqual(mids); // once each, in mid order: live pushes, then the replay from the store
    expect(server.proc.exitCode).toBeNull();
  }, 40000);
});

describe("TLS", () => {
  test("with --tls-cert the page is https and the WebSocket wss", async () => {
    const { certFile, keyFile, cert: ca } = selfSignedCert(tmp.dir);
    const s = await startServer(["--db", join(tmp.dir, "wss.db"), "--tls-cert", certFile, "--tls-key", keyFile, ...TEST_ARGS]);
    try {
      expect(s.output()).toMatch(/web app at https:\/\//);
      const port = webPort(s);
      const r = await fetch(`https://127.0.0.1:${port}/`, { tls: { ca } } as RequestInit);
      expect(r.status).toBe(200);
      const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, { tls: { ca } } as unknown as string[]);
      ws.binaryType = "arraybuffer";
      const got = await new Promise<Msg>((resolve, reject) => {
        ws.onopen = () => ws.send(encode({ t: "ping", id: 7 }));
        ws.onmessage = (e) => resolve(decode(new Uint8Array(e.data as ArrayBuffer)) as Msg);
        ws.onerror = () => reject(new Error("wss failed"));
      });
      expect(got).toEqual({ t: "pong", id: 7 });
      ws.close();
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
