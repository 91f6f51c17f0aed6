// Bun's native UTF-8 functions for the frame encoder (encode.ts), for the server and the
// load generators (browsers have none; the encoder then uses TextEncoder). Buffer's
// utf8Write writes into any Uint8Array in Bun: 55 ns for 85 bytes against 157 ns for
// TextEncoder.encodeInto into a subarray (docs/BUN.md, "Costs").
import { Buffer } from "node:buffer";
import { useNativeUtf8 } from "./encode.ts";

type Utf8Write = (this: Uint8Array, s: string, offset: number, length: number) => number;
const utf8Write = (Buffer.prototype as unknown as { utf8Write?: Utf8Write }).utf8Write;

if (utf8Write !== undefined) {
  useNativeUtf8({
    byteLength: (s) => Buffer.byteLength(s, "utf8"),
    write: (into, s, offset, length) => utf8Write.call(into, s, offset, length),
  });
}
