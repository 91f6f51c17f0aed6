// MessagePack body codec, PROTOCOL.md §1. Frames are encoded by encode.ts (the same bytes
// as @msgpack/msgpack's Encoder, at less cost); the server decodes requests with decode.ts,
// and the client decodes the server's frames with @msgpack/msgpack's Decoder, below.
import { Decoder } from "@msgpack/msgpack";

export { encodeFrame } from "./encode.ts";

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
