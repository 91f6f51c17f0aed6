// A pre-check of MessagePack nesting depth, without decoding. The decoder keeps
// a state object per open container, so a 4 MiB frame of nested one-element
// arrays costs it seconds and hundreds of MB; this scan costs one pass over the
// bytes, jumping over strings and binaries, and allocates nothing.

const FIXED: Record<number, number> = {
  0xc0: 0, 0xc2: 0, 0xc3: 0, // nil, false, true
  0xca: 4, 0xcb: 8, // float32, float64
  0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, // uint8..64
  0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8, // int8..64
  0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17, // fixext 1..16 (type byte + data)
};

function readLen(b: Uint8Array, pos: number, bytes: number): number {
  if (bytes === 1) return b[pos] ?? 0;
  if (bytes === 2) return ((b[pos] ?? 0) << 8) | (b[pos + 1] ?? 0);
  return (((b[pos] ?? 0) << 24) >>> 0) + ((b[pos + 1] ?? 0) << 16) + ((b[pos + 2] ?? 0) << 8) + (b[pos + 3] ?? 0);
}

/**
 * True unless the value in `b` opens more than `maxDepth` nested containers.
 * Malformed or truncated input is not judged here (the decoder rejects it).
 */
export function withinDepth(b: Uint8Array, maxDepth: number): boolean {
  const left = new Array<number>(maxDepth + 1);
  left[0] = 1;
  let depth = 0;
  let pos = 0;
  const n = b.length;
  while (pos < n) {
    while (left[depth] === 0) {
      if (depth === 0) return true;
      depth--;
    }
    left[depth]!--;
    const t = b[pos++]!;
    let items = 0;
    if (t <= 0x7f || t >= 0xe0) continue; // fixint
    if (t <= 0x8f) items = (t & 0x0f) * 2; // fixmap
    else if (t <= 0x9f) items = t & 0x0f; // fixarray
    else if (t <= 0xbf) {
      pos += t & 0x1f; // fixstr
      continue;
    } else if (t === 0xc4 || t === 0xd9) pos += 1 + readLen(b, pos, 1); // bin8, str8
    else if (t === 0xc5 || t === 0xda) pos += 2 + readLen(b, pos, 2); // bin16, str16
    else if (t === 0xc6 || t === 0xdb) pos += 4 + readLen(b, pos, 4); // bin32, str32
    else if (t === 0xc7) pos += 2 + readLen(b, pos, 1); // ext8
    else if (t === 0xc8) pos += 3 + readLen(b, pos, 2); // ext16
    else if (t === 0xc9) pos += 5 + readLen(b, pos, 4); // ext32
    else if (t === 0xdc) ((items = readLen(b, pos, 2)), (pos += 2)); // array16
    else if (t === 0xdd) ((items = readLen(b, pos, 4)), (pos += 4)); // array32
    else if (t === 0xde) ((items = readLen(b, pos, 2) * 2), (pos += 2)); // map16
    else if (t === 0xdf) ((items = readLen(b, pos, 4) * 2), (pos += 4)); // map32
    else pos += FIXED[t] ?? 0; // scalars; 0xc1 (never used) is left to the decoder
    if (items > 0) {
      if (++depth > maxDepth) return false;
      left[depth] = items;
    }
  }
  return true;
}
