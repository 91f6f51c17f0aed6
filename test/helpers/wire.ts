// Test-side protocol plumbing: frames to maps and back, using the real protocol layer.
import { encode } from "@msgpack/msgpack";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { makeBodyDecoder } from "../../src/protocol/codec.ts";

export type Msg = Record<string, any>;

/** The parts, one after the other, in one new Uint8Array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Length-prefixes raw bytes (for hand-made bad frames too). */
export function rawFrame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

export function frameOf(value: unknown): Uint8Array {
  return rawFrame(encode(value));
}

/** Collects decoded maps from a byte stream. */
export class MsgReader {
  readonly msgs: Msg[] = [];
  tooLarge = false;
  private readonly decodeBody = makeBodyDecoder(64 * 1024 * 1024);
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024, (ev) => {
    if (ev.kind === "too_large") this.tooLarge = true;
    else if (ev.kind === "frame") this.msgs.push(this.decodeBody(ev.body) as Msg);
  });
  push(chunk: Uint8Array): void {
    this.decoder.push(chunk);
  }
}
