// A pre-check of a request body, without decoding: nesting depth (PROTOCOL.md §2)
// and strict UTF-8 in every str, keys and values at any depth (PROTOCOL.md §2:
// a *string* is valid UTF-8; anything else gets `bad_request`).
//
// Depth: the decoder keeps a state object per open container, so a 4 MiB frame of
// nested one-element arrays costs it seconds and hundreds of MB; this scan costs
// one pass over the bytes, jumping over binaries, and allocates nothing.
//
// UTF-8: the MessagePack decoder's JS path is lenient, so invalid bytes were
// silently altered instead of refused (`61 ff fe 62` was stored as "aÿþb", the
// overlong `c0 af` as "/"). Each str payload is checked here with node:buffer's
// native `isUtf8`, which is strict (no overlong forms, no surrogates, nothing
// above U+10FFFF, no truncated sequences); short ASCII strings, the usual keys
// and names, are accepted by a byte loop without a call.
import { isUtf8 } from "node:buffer";

/**
 * What `scanBody` found:
 * - `too_deep`: a container nested deeper than allowed (refuse with `bad_frame`, never decode);
 * - `bad_utf8`: the body is one well-formed MessagePack map, but a str in it
 *   (a key or a value, at any depth) is not valid UTF-8 (refuse with `bad_request`;
 *   the reply has no `id`, as nothing of the body was decoded);
 * - `ok`: decode it. The decoder may still refuse it: a body that is not one
 *   well-formed value (truncated, trailing bytes, the unused type 0xc1, a container
 *   announcing more entries than bytes left or than `maxItems`) is left to the
 *   decoder, so it gets `bad_frame` whatever its strings hold (PROTOCOL.md §2.2, step 1).
 */
export type BodyVerdict = "ok" | "too_deep" | "bad_utf8";

/** PROTOCOL.md §2: entries per map or array in a request. */
export const MAX_ITEMS = 256;

/** Bytes after the type byte that a scalar (or fixext, with its type byte) occupies. */
const FIXED: Record<number, number> = {
  0xc0: 0, 0xc2: 0, 0xc3: 0, // nil, false, true
  0xca: 4, 0xcb: 8, // float32, float64
  0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, // uint8..64
  0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8, // int8..64
  0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17, // fixext 1..16 (type byte + data)
};

/** Strings up to this length are first tried as plain ASCII in JS (cheaper than a native call and a subarray). */
const ASCII_LOOP_MAX = 64;

function readLen(b: Uint8Array, pos: number, bytes: number): number {
  if (bytes === 1) return b[pos] ?? 0;
  if (bytes === 2) return ((b[pos] ?? 0) << 8) | (b[pos + 1] ?? 0);
  return (((b[pos] ?? 0) << 24) >>> 0) + ((b[pos + 1] ?? 0) << 16) + ((b[pos + 2] ?? 0) << 8) + (b[pos + 3] ?? 0);
}

/** Whether `b[start, end)` is valid UTF-8 (the range is within `b`). */
function validUtf8(b: Uint8Array, start: number, end: number): boolean {
  if (end - start <= ASCII_LOOP_MAX) {
    let i = start;
    while (i < end && b[i]! < 0x80) i++;
    if (i === end) return true;
  }
  return isUtf8(b.subarray(start, end));
}

/**
 * One pass over a request body: nesting depth and, if it is a map, the UTF-8 of every str.
 * `maxDepth` counts non-empty maps and arrays (the top map is 1); `maxItems` is
 * the decoder's entry limit, so that a body the decoder refuses is reported `ok`
 * (left to the decoder) rather than `bad_utf8`. Never throws, whatever the bytes.
 */
export function scanBody(b: Uint8Array, maxDepth: number, maxItems = MAX_ITEMS): BodyVerdict {
  // A body that is not a map gets bad_frame (PROTOCOL.md §2.2, step 2) whatever its strings hold.
  const top = b[0] ?? 0;
  const isMap = (top >= 0x80 && top <= 0x8f) || top === 0xde || top === 0xdf;
  return scan(b, maxDepth, maxItems, isMap);
}

/**
 * True unless the value in `b` opens more than `maxDepth` nested containers.
 * Malformed or truncated input is not judged here (the decoder rejects it).
 */
export function withinDepth(b: Uint8Array, maxDepth: number): boolean {
  return scan(b, maxDepth, Infinity, false) !== "too_deep";
}

function scan(b: Uint8Array, maxDepth: number, maxItems: number, checkUtf8: boolean): BodyVerdict {
  // Items left to read in each open container (a map counts keys and values); left[0] is the top value.
  const left = new Array<number>(maxDepth + 1);
  left[0] = 1;
  let depth = 0;
  let pos = 0;
  let badUtf8 = false;
  const n = b.length;
  // Every return before the value is complete is "ok" (malformed: the decoder refuses it at or
  // before this point, having read only bytes this scan has checked for depth) or "too_deep".
  while (pos < n) {
    while (left[depth] === 0) {
      if (depth === 0) return "ok"; // bytes after the value: the decoder refuses them
      depth--;
    }
    left[depth]!--;
    const t = b[pos++]!;
    let items = -1;
    let strLen = -1;
    if (t <= 0x7f || t >= 0xe0) continue; // fixint
    if (t <= 0x8f) items = (t & 0x0f) * 2; // fixmap
    else if (t <= 0x9f) items = t & 0x0f; // fixarray
    else if (t <= 0xbf) strLen = t & 0x1f; // fixstr
    else if (t === 0xd9) ((strLen = readLen(b, pos, 1)), (pos += 1)); // str8
    else if (t === 0xda) ((strLen = readLen(b, pos, 2)), (pos += 2)); // str16
    else if (t === 0xdb) ((strLen = readLen(b, pos, 4)), (pos += 4)); // str32
    else if (t === 0xc4) pos += 1 + readLen(b, pos, 1); // bin8
    else if (t === 0xc5) pos += 2 + readLen(b, pos, 2); // bin16
    else if (t === 0xc6) pos += 4 + readLen(b, pos, 4); // bin32
    else if (t === 0xc7) pos += 2 + readLen(b, pos, 1); // ext8
    else if (t === 0xc8) pos += 3 + readLen(b, pos, 2); // ext16
    else if (t === 0xc9) pos += 5 + readLen(b, pos, 4); // ext32
    else if (t === 0xdc) ((items = readLen(b, pos, 2)), (pos += 2)); // array16
    else if (t === 0xdd) ((items = readLen(b, pos, 4)), (pos += 4)); // array32
    else if (t === 0xde) ((items = readLen(b, pos, 2) * 2), (pos += 2)); // map16
    else if (t === 0xdf) ((items = readLen(b, pos, 4) * 2), (pos += 4)); // map32
    else if (t === 0xc1) return "ok"; // never used in MessagePack
    else pos += FIXED[t]!;
    if (strLen >= 0) {
      const end = pos + strLen;
      if (end > n) return "ok"; // truncated
      if (checkUtf8 && !badUtf8 && !validUtf8(b, pos, end)) badUtf8 = true;
      pos = end;
    } else if (items > 0) {
      if (++depth > maxDepth) return "too_deep";
      if ((t <= 0x8f || t >= 0xde ? items / 2 : items) > maxItems) return "ok"; // the decoder refuses it at this header
      left[depth] = items;
    }
  }
  if (pos > n) return "ok"; // a header or a binary ran past the end
  for (let d = depth; d >= 0; d--) if (left[d] !== 0) return "ok"; // truncated: containers still open
  return badUtf8 ? "bad_utf8" : "ok";
}
