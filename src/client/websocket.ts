// The only file that touches WebSocket: protocol v1 over WebSocket as a `Link`
// (PROTOCOL.md §1.1): one frame body, a MessagePack map without the 4-byte
// length, per binary WebSocket message. It uses the global WebSocket, a
// browser's or Bun's (the same API), so the browser's transport is also tested
// under Bun.
//
// Backpressure: a browser's ws.send() never refuses and never takes part of a
// message: it buffers without bound and `bufferedAmount` tells how much is
// waiting. So the link tells the Writer (src/io/writer.ts, a message sink) to
// stop (QUEUED) once more than HIGH_WATER bytes wait in the socket, and calls
// `drain` when the backlog is down to LOW_WATER again (there is no drain event:
// it is polled). What the app sends beyond that waits in the Writer's queue,
// bounded, as over TCP, by the outbox and the pacer.
import { QUEUED } from "../io/writer.ts";
import { AddressError, DisconnectedError } from "./errors.ts";
import type { Endpoint, Link, LinkHandlers } from "./link.ts";

/** Bytes waiting in the WebSocket beyond which writes are QUEUED. */
export const HIGH_WATER = 1024 * 1024;
/** Backlog at which a QUEUED link drains. */
export const LOW_WATER = 256 * 1024;
/** How often a QUEUED link looks at `bufferedAmount`, ms. */
const DRAIN_POLL_MS = 20;

/** Checks a WebSocket URL: `ws://` or `wss://`, no fragment. Returns it. */
export function checkWebSocketUrl(url: unknown, where = "url"): string {
  if (typeof url !== "string") throw new AddressError(`${where} must be a ws:// or wss:// URL string, got ${JSON.stringify(url)}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AddressError(`${where}: "${url}" is not a URL (for example ws://127.0.0.1:7780/ws)`);
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new AddressError(`${where}: "${url}" is not a WebSocket URL: it must start with ws:// or wss://`);
  }
  if (u.hash !== "" || url.includes("#")) throw new AddressError(`${where}: "${url}": a WebSocket URL has no #fragment`);
  return url;
}

/** A server reached over WebSocket, as an Endpoint. */
export function webSocketEndpoint(url: string): Endpoint {
  const u = new URL(url);
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port !== "" ? Number(u.port) : u.protocol === "wss:" ? 443 : 80;
  return { server: { host, port, url }, label: url, dial: (timeoutMs, h) => dialWebSocket(url, timeoutMs, h) };
}

function closeReason(ev: { code: number; reason: string }): string {
  return `WebSocket closed with code ${ev.code}${ev.reason ? ` (${ev.reason})` : ""}`;
}

/** Opens a WebSocket; rejects with DisconnectedError if it is not open within `timeoutMs`. */
export function dialWebSocket(url: string, timeoutMs: number, h: LinkHandlers): Promise<Link> {
  return new Promise<Link>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      reject(new DisconnectedError("connect", { cause: e }));
      return;
    }
    ws.binaryType = "arraybuffer";
    let opened = false;
    let done = false;
    let drainTimer: ReturnType<typeof setInterval> | undefined;
    const closed = (err?: Error) => {
      clearInterval(drainTimer);
      if (done) return;
      done = true;
      h.closed(err);
    };
    const timer = setTimeout(() => {
      if (opened) return;
      done = true;
      ws.close();
      reject(new DisconnectedError("connect", { cause: new Error(`no connection within ${timeoutMs} ms`) }));
    }, timeoutMs);

    const link: Link = {
      messages: true,
      write(data: Uint8Array): number {
        if (ws.readyState !== WebSocket.OPEN) return -1;
        ws.send(data as Uint8Array<ArrayBuffer>); // frames are made by encodeFrame: never shared memory
        if (ws.bufferedAmount <= HIGH_WATER) return data.length;
        if (drainTimer === undefined) {
          drainTimer = setInterval(() => {
            if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > LOW_WATER) return;
            clearInterval(drainTimer);
            drainTimer = undefined;
            h.drain();
          }, DRAIN_POLL_MS);
        }
        return QUEUED;
      },
      // A WebSocket's close() sends what is buffered first, then the closing handshake.
      end: () => ws.close(1000),
      terminate: () => {
        const t = (ws as { terminate?: () => void }).terminate; // Bun's client can drop at once
        if (typeof t === "function") t.call(ws);
        else ws.close();
      },
    };

    ws.onopen = () => {
      clearTimeout(timer);
      if (done) return;
      opened = true;
      resolve(link);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (done) return;
      const d: unknown = ev.data;
      if (d instanceof ArrayBuffer) h.data(new Uint8Array(d));
      else if (ArrayBuffer.isView(d)) h.data(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      else {
        // A text message is not protocol v1 (§1.1).
        link.terminate();
        closed(new Error("the server sent a text WebSocket message"));
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      clearTimeout(timer);
      if (!opened) {
        done = true;
        reject(new DisconnectedError("connect", { cause: new Error(closeReason(ev)) }));
        return;
      }
      closed(ev.code === 1000 ? undefined : new Error(closeReason(ev)));
    };
    // An error is always followed by close, which reports it.
    ws.onerror = () => {};
  });
}
