// The client library over WebSocket (PROTOCOL.md §1.1), under Bun, against real
// server processes: the same ChatClient a browser page uses (src/client/browser.ts),
// chatting with a TCP client; a restart under it (reconnect, token login, sync,
// exactly once, queued sends stored once); addresses; backpressure on a fake
// WebSocket; and the browser bundle, which must not pull in Bun or Node modules.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ChatClient as BrowserChatClient } from "../../src/client/browser.ts";
import { AddressError, ChatClient, type ChatMessage, type ConnectionState } from "../../src/client/index.ts";
import type { LinkHandlers } from "../../src/client/link.ts";
import { dialWebSocket, HIGH_WATER, LOW_WATER } from "../../src/client/websocket.ts";
import { QUEUED } from "../../src/io/writer.ts";
import { TEST_ARGS, type RunningServer, tempDir } from "../helpers/server.ts";
import { freePort, startWebServer, until, type WebServer } from "./server.ts";

const ROOT = join(import.meta.dir, "..", "..");
const PASS = "password1";
const tmp = tempDir("tcpchat-client-ws-");
const running: RunningServer[] = [];
const clients: ChatClient[] = [];

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const s of running) if (s.proc.exitCode === null) await s.stop();
  tmp.cleanup();
});

async function start(args: string[]): Promise<WebServer> {
  const w = await startWebServer(args);
  running.push(w.server);
  return w;
}

async function client(opts: Parameters<typeof ChatClient.connect>[0]): Promise<ChatClient> {
  const c = await ChatClient.connect(opts);
  clients.push(c);
  return c;
}

describe("over WebSocket", () => {
  test("a WebSocket client and a TCP client chat in a group and by DM, files included", async () => {
    const w = await start(["--db", ":memory:", ...TEST_ARGS]);
    const ws = await client({ url: w.ws });
    const tcp = await client({ port: w.server.port });
    expect(ws.server).toEqual({ host: "127.0.0.1", port: w.httpPort, url: w.ws });
    await ws.register("wanda", PASS);
    await tcp.register("tom", PASS);
    await ws.login("wanda", { pass: PASS });
    await tcp.login("tom", { pass: PASS });
    expect(ws.state).toBe("ready");
    await ws.createGroup("lobby");
    expect(await ws.join("lobby").then((r) => r.mid)).toBeUndefined(); // the creator is in it already
    await tcp.join("lobby");
    const got = { ws: [] as ChatMessage[], tcp: [] as ChatMessage[] };
    ws.on("msg", (m) => got.ws.push(m));
    tcp.on("msg", (m) => got.tcp.push(m));

    const a = await ws.send({ group: "lobby", text: "hi from the browser side" });
    const b = await tcp.send({ group: "lobby", text: "hi from the terminal side" });
    const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
    const c = await ws.sendFile({ user: "tom" }, new Blob([bytes]), { text: "a file", name: "blob.bin", type: "application/octet-stream" });
    const d = await tcp.send({ user: "wanda", text: "dm back" });
    await until(() => got.ws.length === 2 && got.tcp.length === 2, "both sides' messages");
    expect(got.tcp.map((m) => m.mid)).toEqual([a.mid, c.mid]);
    expect(got.ws.map((m) => m.mid)).toEqual([b.mid, d.mid]);
    expect(got.tcp[0]!.text).toBe("hi from the browser side");
    expect(got.tcp[1]!.file!.name).toBe("blob.bin");
    // The push has what the file is; its bytes are downloaded (PROTOCOL.md §3.9), here by the TCP side.
    expect(got.tcp[1]!.file!.size).toBe(bytes.length);
    const back = new Uint8Array(await (await tcp.downloadBlob(got.tcp[1]!)).arrayBuffer());
    expect(Array.from(back)).toEqual(Array.from(bytes));
    expect(got.ws[1]).toMatchObject({ from: "tom", user: "wanda", text: "dm back" });

    // History, members and presence are the same requests.
    const page = await ws.history({ group: "lobby" }, { limit: 10 });
    expect(page.msgs.map((m) => m.kind ?? m.text)).toEqual(["create", "join", "hi from the browser side", "hi from the terminal side"]);
    expect((await ws.members("lobby")).map((m) => [m.user, m.online])).toEqual([
      ["tom", true],
      ["wanda", true],
    ]);
    const seen: string[] = [];
    ws.on("presence", (p) => seen.push(`${p.user}:${p.online}`));
    await tcp.close();
    await until(() => seen.includes("tom:false"), "tom's offline presence");

    // Logout revokes the token: a new login with it is refused.
    const token = ws.token!;
    await ws.logout();
    const again = await client({ url: w.ws });
    expect(await again.login("wanda", { token }).catch((e) => e.code)).toBe("unauthorized");
  });

  test("the server restarts under it: reconnect, token login, sync from the cursor, each message once; sends made while down are stored once", async () => {
    const db = join(tmp.dir, "restart.db");
    const httpPort = freePort();
    const tcpPort = freePort();
    const args = ["--db", db, "--port", String(tcpPort), "--http-port", String(httpPort), ...TEST_ARGS];
    let w = await start(args);
    expect(w.httpPort).toBe(httpPort);
    const ws = await client({ url: w.ws, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
    const tcp = await client({ port: tcpPort, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
    await ws.register("rita", PASS);
    await tcp.register("ted", PASS);
    await ws.login("rita", { pass: PASS });
    await tcp.login("ted", { pass: PASS });
    await ws.createGroup("ops");
    await tcp.join("ops");
    const got: ChatMessage[] = [];
    const states: ConnectionState[] = [];
    ws.on("msg", (m) => got.push(m));
    ws.on("state", (s) => states.push(s));
    const before = await tcp.send({ group: "ops", text: "before" });
    await until(() => got.length === 1, "the first message");

    expect(await w.server.stop()).toBe(0);
    await until(() => ws.state === "connecting", "the WebSocket client to notice");
    // Sent while the server is down: queued by cid, stored once after the restart.
    const queued = [ws.send({ group: "ops", text: "queued 1" }), ws.send({ group: "ops", text: "queued 2" })];
    expect(ws.pendingSends).toBe(2);
    w = await start(args);
    // ted speaks first, possibly before rita is back: rita gets it from sync or live, once.
    const missed = [];
    for (let i = 0; i < 5; i++) missed.push(await tcp.send({ group: "ops", text: `missed ${i}` }));
    const acks = await Promise.all(queued);
    await until(() => got.length === 6, "the messages rita missed");
    await Bun.sleep(300); // nothing more comes
    expect(got.map((m) => m.mid)).toEqual([before.mid, ...missed.map((m) => m.mid)]);
    expect(states).toContain("connecting");
    expect(states.at(-1)).toBe("ready");
    const history = await ws.history({ group: "ops" }, { limit: 50 });
    expect(history.msgs.map((m) => m.text ?? "").filter((t) => t.startsWith("queued"))).toEqual(["queued 1", "queued 2"]);
    expect(acks.map((a) => a.text)).toEqual(["queued 1", "queued 2"]);
  });

  // (Bun's client WebSocket reports bufferedAmount 0, so here the link never says QUEUED; the fake
  // socket below tests that, and the browser test sends a file large enough in Chromium.)
  test("a burst of large files over WebSocket, uploaded side by side: each stored once, bytes intact", async () => {
    const w = await start(["--db", ":memory:", ...TEST_ARGS]);
    const ws = await client({ url: w.ws });
    const tcp = await client({ port: w.server.port });
    await ws.register("fay", PASS);
    await tcp.register("fred", PASS);
    await ws.login("fay", { pass: PASS });
    await tcp.login("fred", { pass: PASS });
    const got: ChatMessage[] = [];
    tcp.on("msg", (m) => got.push(m));
    const files = Array.from({ length: 4 }, (_, i) => new Uint8Array(1_500_000).fill(i + 1));
    const acks = await Promise.all(files.map((data, i) => ws.sendFile({ user: "fred" }, data, { name: `f${i}.bin` })));
    expect(new Set(acks.map((a) => a.mid)).size).toBe(4); // each sent when its upload is done: in any order
    await until(() => got.length === 4, "the four files");
    expect(got.map((m) => m.file!.name).sort()).toEqual(["f0.bin", "f1.bin", "f2.bin", "f3.bin"]);
    for (const m of got) {
      const i = Number(m.file!.name[1]);
      const data = new Uint8Array(await (await tcp.downloadBlob(m)).arrayBuffer());
      expect(data.length).toBe(1_500_000);
      expect(data.every((b) => b === i + 1)).toBe(true);
      // And over WebSocket, by the sender.
      const parts: Uint8Array[] = [];
      for await (const chunk of ws.download(m.mid, { sha256: m.file!.sha256 })) parts.push(chunk);
      expect(parts.reduce((n, p) => n + p.length, 0)).toBe(1_500_000);
    }
  });

  test("several WebSocket servers: a dead one is skipped, client.server says where it is", async () => {
    const w = await start(["--db", ":memory:", ...TEST_ARGS]);
    const dead = `ws://127.0.0.1:${freePort()}/ws`;
    const c = await client({ servers: [{ url: dead }, { url: w.ws }] });
    expect(c.server?.url).toBe(w.ws);
    const d = await client({ servers: [{ host: "127.0.0.1", port: w.server.port }, { url: w.ws }] });
    expect(d.server).toEqual({ host: "127.0.0.1", port: w.server.port });
    // The browser's client is the same, for WebSocket.
    const b = await BrowserChatClient.connect({ url: w.ws });
    expect(await b.ping()).toBeGreaterThanOrEqual(0);
    await b.close();
  });
});

describe("addresses", () => {
  test("a bad url, or url with host or servers, is an AddressError before dialing", async () => {
    for (const [opts, msg] of [
      [{ url: "http://127.0.0.1:7780/ws" }, "must start with ws:// or wss://"],
      [{ url: "localhost:7780" }, "is not a WebSocket URL"],
      [{ url: "not a url" }, "is not a URL"],
      [{ url: "ws://h/ws#x" }, "no #fragment"],
      [{ url: "ws://h/ws", port: 7777 }, "give one of url, servers, or host and port"],
      [{ url: "ws://h/ws", servers: [{ url: "ws://h/ws" }] }, "give one of url, servers, or host and port"],
      [{ servers: [{ url: 42 }] }, "servers[0].url must be a ws:// or wss:// URL string"],
      [{ servers: [{ url: "ws://a/ws" }, { url: "https://b/ws" }] }, "servers[1].url"],
    ] as const) {
      const e = await ChatClient.connect(opts as never).catch((e) => e);
      expect(e).toBeInstanceOf(AddressError);
      expect(e.message).toContain(msg);
    }
  });

  test("the browser's client speaks WebSocket only: host and port are an AddressError saying so", async () => {
    for (const opts of [{}, { port: 7777 }, { servers: [{ host: "a", port: 1 }] }]) {
      const e = await BrowserChatClient.connect(opts).catch((e) => e);
      expect(e).toBeInstanceOf(AddressError);
      expect(e.message).toContain("WebSocket only: give url");
    }
  });
});

describe("backpressure: the browser's WebSocket buffers without bound", () => {
  // A stand-in for the global WebSocket: opens at once, counts what is sent as buffered.
  class FakeSocket {
    static OPEN = 1;
    static last: FakeSocket | undefined;
    readyState = 0;
    bufferedAmount = 0;
    binaryType = "blob";
    sent: number[] = [];
    onopen: (() => void) | null = null;
    onclose: ((ev: { code: number; reason: string }) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onerror: (() => void) | null = null;
    constructor(readonly url: string) {
      FakeSocket.last = this;
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.();
      });
    }
    send(d: Uint8Array): void {
      this.sent.push(d.length);
      this.bufferedAmount += d.length;
    }
    close(): void {
      this.readyState = 3;
      this.onclose?.({ code: 1000, reason: "" });
    }
  }

  test("write takes frames until HIGH_WATER is buffered, then says QUEUED; drain comes once it is down to LOW_WATER", async () => {
    const real = globalThis.WebSocket;
    (globalThis as { WebSocket: unknown }).WebSocket = FakeSocket;
    try {
      let drains = 0;
      const h: LinkHandlers = { data() {}, drain: () => drains++, closed() {} };
      const link = await dialWebSocket("ws://fake/ws", 1000, h);
      const sock = FakeSocket.last!;
      expect(sock.binaryType).toBe("arraybuffer");
      expect(link.messages).toBe(true);
      const frame = new Uint8Array(HIGH_WATER / 4);
      expect([link.write(frame), link.write(frame), link.write(frame), link.write(frame)]).toEqual(Array(4).fill(frame.length));
      expect(link.write(frame)).toBe(QUEUED); // taken (sent), but write nothing more until drain
      expect(sock.sent.length).toBe(5);
      await Bun.sleep(60);
      expect(drains).toBe(0);
      sock.bufferedAmount = LOW_WATER;
      await until(() => drains === 1, "drain");
      sock.close();
      expect(link.write(frame)).toBe(-1);
    } finally {
      (globalThis as { WebSocket: unknown }).WebSocket = real;
    }
  });
});

describe("the browser bundle", () => {
  test("src/client/browser.ts builds for the browser with no Bun or Node module in it", async () => {
    const out = await Bun.build({ entrypoints: [join(ROOT, "src/client/browser.ts")], target: "browser", minify: false });
    expect(out.success).toBe(true);
    const js = await out.outputs[0]!.text();
    expect(js).not.toMatch(/\bBun\.|from ?"(node:|bun)|require\("(node:|bun)/);
    expect(js).toContain("binaryType");
    // And the app built from it.
    const app = await Bun.build({ entrypoints: [join(ROOT, "src/web/index.html")], target: "browser" });
    expect(app.success).toBe(true);
    for (const o of app.outputs) {
      if (!o.path.endsWith(".js")) continue;
      const code = await o.text();
      expect(code).not.toMatch(/\bBun\.|"node:|\bBuffer\b|\bprocess\./); // src/web/protocol-types.d.ts declares Buffer for the type-check only
      expect(code).not.toContain("innerHTML"); // text from the network is set as text
    }
  });
});
