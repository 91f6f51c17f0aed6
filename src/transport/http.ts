// The only file that touches Bun.serve: the web app at `/` and protocol v1 over
// WebSocket at `/ws` (PROTOCOL.md §1), one MessagePack map per binary message. Each
// WebSocket is a `Transport` of the core, as a TCP socket is (src/transport/tcp.ts): the
// same sessions, limits, authorization and slow-consumer policy.
//
// - Output: the connection's Writer sees a message sink (src/io/writer.ts): one frame per
//   ws.send, its 4-byte length prefix cut off; -1 (kept under backpressure) and 0
//   (dropped) make the writer wait for `drain`, so its queue bound and falling behind
//   (§5.4) hold as on TCP.
// - Input: a binary message is handed to the core as the frame it would be on TCP, so
//   the same decoder checks its size (the login limit included) and charges its rates.
//   Larger than --max-frame: Bun closes the socket (code 1009) before reading it whole.
//   A text message is not protocol v1: closed with code 1003.
// - Upgrade: a browser's Origin must be the server's own or one of --http-origins
//   (a page elsewhere must not act with a user's cookies or tokens: there are none, but
//   a tab's token must not be reachable from another site's page either).
// - The page: Bun's HTML bundler builds the app (src/web/index.html) and `bun build
//   --compile` embeds it. Bun serves an HTML bundle only through `routes`, with its own
//   headers; the page needs ours (Content-Security-Policy and the rest), so the bundle is
//   fetched once, on the first request, from a private server on loopback, and served
//   from memory with them.
import type { Server, ServerWebSocket } from "bun";
import app from "../web/index.html";
import type { ChatCore } from "../core/chat.ts";
import type { Session } from "../core/session.ts";
import { QUEUED } from "../io/writer.ts";

export interface HttpOptions {
  host: string;
  port: number;
  /** PEM files: HTTPS and WSS. */
  tls?: { cert: string; key: string };
  /** Origins allowed to open /ws besides the server's own (`--http-origins`). */
  origins: string[];
  /** Largest frame (`--max-frame`): a bigger WebSocket message closes the connection. */
  maxFrame: number;
  /** `/metrics`, `/healthz` and `/readyz` (src/ops/metrics.ts); without it they are 404. */
  ops?: OpsEndpoints;
}

/** What the operations endpoints ask of the server. */
export interface OpsEndpoints {
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
  /** Undefined when ready to serve, else why not. */
  notReady(): Promise<string | undefined>;
}

export interface HttpListening {
  host: string;
  port: number;
  /** `http://host:port/` (https with TLS). */
  url: string;
  stop(): void;
}

interface WsData {
  session?: Session;
}

/** The page's policy: its own scripts and styles only, no inline code; WebSocket to itself. */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

const PAGE_HEADERS: Record<string, string> = {
  "Content-Security-Policy": CSP,
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
};

interface Asset {
  body: Uint8Array;
  type: string;
}

/** The app's files by path ("/" is the page), built once. */
let assets: Promise<Map<string, Asset>> | undefined;

async function buildAssets(): Promise<Map<string, Asset>> {
  const inner = Bun.serve({ hostname: "127.0.0.1", port: 0, development: false, routes: { "/": app } });
  try {
    const base = `http://127.0.0.1:${inner.port}`;
    const out = new Map<string, Asset>();
    const get = async (path: string): Promise<Asset> => {
      const r = await fetch(base + path);
      if (!r.ok) throw new Error(`web app: ${path}: HTTP ${r.status}`);
      return { body: new Uint8Array(await r.arrayBuffer()), type: r.headers.get("content-type") ?? "application/octet-stream" };
    };
    const page = await get("/");
    out.set("/", page);
    // The bundle's scripts, styles and other files, as the page names them (same origin, absolute or relative).
    const html = new TextDecoder().decode(page.body);
    for (const m of html.matchAll(/\b(?:src|href)="([^"]+)"/g)) {
      const ref = m[1]!;
      if (/^[a-z]+:|^\/\//i.test(ref) || ref.startsWith("#")) continue;
      const path = new URL(ref, `${base}/`).pathname;
      if (!out.has(path)) out.set(path, await get(path));
    }
    return out;
  } finally {
    inner.stop(true);
  }
}

function pageResponse(a: Asset): Response {
  const headers = new Headers({ "Content-Type": a.type, "Cache-Control": "no-cache" });
  for (const [k, v] of Object.entries(PAGE_HEADERS)) headers.set(k, v);
  return new Response(a.body, { headers });
}

/** Whether a browser page from `origin` may open /ws on a server reached as `host` over `scheme`. */
export function originAllowed(origin: string | null, host: string | null, scheme: "http" | "https", allowed: string[]): boolean {
  if (origin === null) return true; // not a browser: nothing to protect
  if (host !== null && origin === `${scheme}://${host}`) return true;
  return allowed.includes(origin);
}

export function serveHttp(core: ChatCore, opts: HttpOptions): HttpListening {
  const scheme = opts.tls ? "https" : "http";
  const server: Server<WsData> = Bun.serve<WsData>({
    hostname: opts.host,
    port: opts.port,
    development: false,
    // Nothing here takes a request body: a client cannot make the server hold one.
    maxRequestBodySize: 16 * 1024,
    ...(opts.tls ? { tls: { cert: Bun.file(opts.tls.cert), key: Bun.file(opts.tls.key) } } : {}),
    async fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname === "/ws") {
        if (!originAllowed(req.headers.get("origin"), req.headers.get("host"), scheme, opts.origins))
          return new Response("origin not allowed\n", { status: 403 });
        if (srv.upgrade(req, { data: {} })) return undefined;
        return new Response("a WebSocket upgrade is expected here\n", { status: 426 });
      }
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405 });
      if (opts.ops) {
        const plain = { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" };
        if (url.pathname === "/metrics")
          return new Response(await opts.ops.metrics(), {
            headers: { ...plain, "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
          });
        // Alive: the process answers HTTP (its event loop turns).
        if (url.pathname === "/healthz") return new Response("ok\n", { headers: plain });
        if (url.pathname === "/readyz") {
          const why = await opts.ops.notReady();
          return new Response(why === undefined ? "ready\n" : `not ready: ${why}\n`, { status: why === undefined ? 200 : 503, headers: plain });
        }
      }
      try {
        assets ??= buildAssets();
        const a = (await assets).get(url.pathname === "/index.html" ? "/" : url.pathname);
        if (a) return pageResponse(a);
      } catch (e) {
        assets = undefined; // tried again on the next request
        core.log.error("web app: cannot build the page", e);
        return new Response("the web app is unavailable\n", { status: 500 });
      }
      return new Response("not found\n", { status: 404, headers: { "Content-Type": "text/plain" } });
    },
    websocket: {
      // A frame larger than any request the server takes: Bun closes the socket (1009) unread.
      maxPayloadLength: opts.maxFrame,
      // Bun's own buffer for one connection; past it a send is dropped (0) and the writer waits.
      backpressureLimit: Math.max(1024 * 1024, opts.maxFrame * 2),
      closeOnBackpressureLimit: false,
      // The core has its own idle and login timeouts (PROTOCOL.md §2.4).
      idleTimeout: 0,
      sendPings: false,
      perMessageDeflate: false,
      open(ws: ServerWebSocket<WsData>) {
        ws.binaryType = "uint8array";
        ws.data.session = core.open({
          messages: true,
          write(frame) {
            if (ws.readyState !== 1) return -1;
            // The core's frames carry TCP's 4-byte length prefix; a WebSocket message is framed already.
            const r = ws.sendBinary(frame.subarray(4));
            return r > 0 ? frame.length : r === -1 ? QUEUED : 0;
          },
          end: () => ws.close(1000),
          terminate: () => ws.terminate(),
          pause: () => ws.pause(),
          resume: () => ws.resume(),
          remoteAddress: ws.remoteAddress,
        });
      },
      message(ws, message) {
        const s = ws.data.session;
        if (!s) return;
        if (typeof message === "string") {
          ws.close(1003, "binary messages only (one MessagePack map each)");
          core.closed(s);
          return;
        }
        // As it would arrive over TCP: the decoder checks its size and charges the rates.
        const framed = new Uint8Array(message.length + 4);
        new DataView(framed.buffer).setUint32(0, message.length);
        framed.set(message, 4);
        core.data(s, framed);
      },
      drain(ws) {
        if (ws.data.session) core.drain(ws.data.session);
      },
      close(ws) {
        if (ws.data.session) core.closed(ws.data.session);
      },
    },
  });
  const host = server.hostname ?? opts.host;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    host,
    port: server.port ?? opts.port,
    url: `${scheme}://${shown}:${server.port}/`,
    stop: () => server.stop(false),
  };
}
