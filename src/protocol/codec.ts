// MessagePack body codec, PROTOCOL.md §1. One reused Encoder (about 3x faster
// than the encode() function, docs/BUN.md) writes straight into a framed buffer.
import { Decoder, Encoder } from "@msgpack/msgpack";
import { HEADER_BYTES } from "./frame.ts";

const encoder = new Encoder({ ignoreUndefined: true });

/** Encodes `msg` as one MessagePack map and returns length prefix + body in one buffer. */
export function encodeFrame(msg: object): Uint8Array {
  const body = encoder.encodeSharedRef(msg); // valid until the next encode: copied below
  const out = new Uint8Array(HEADER_BYTES + body.length);
  out[0] = body.length >>> 24;
  out[1] = (body.length >>> 16) & 0xff;
  out[2] = (body.length >>> 8) & 0xff;
  out[3] = body.length & 0xff;
  out.set(body, HEADER_BYTES);
  return out;
}

/**
 * A body decoder with limits, so a hostile header like "array of 4 billion
 * items" fails fast instead of allocating: strings and binaries up to the frame
 * limit, arrays and maps up to `maxItems` entries (the decoder allocates an
 * array of the announced size before it reads the items).
 */
export function makeBodyDecoder(maxFrame: number, maxItems = maxFrame): (body: Uint8Array) => unknown {
  const decoder = new Decoder({
    maxStrLength: maxFrame,
    maxBinLength: maxFrame,
    maxArrayLength: maxItems,
    maxMapLength: maxItems,
    maxExtLength: maxFrame,
  });
  return (body) => decoder.decode(body);
}
