// The server's MessagePack decoder for request bodies (PROTOCOL.md §1, §2.2). It builds the
// same values as @msgpack/msgpack's Decoder with the options of makeBodyDecoder (codec.ts),
// and refuses what that one refuses, but decodes strings natively: the package decodes
// every str under 200 bytes (a chat text, a cid, a group name) with a JavaScript loop, which
// was the largest single cost of a `send` in the server's profile (docs/BUN.md, "Costs").
//
// The server checks every str of a request body for strict UTF-8 before it decodes it
// (scanBody in depth.ts), so strings are sliced here without a second check; a body that
// is not a map, whose strings that scan does not check, is refused whatever it decodes to.
// The nesting depth is bounded by the same scan before this recursive decoder runs.
import { Buffer } from "node:buffer";

export class DecodeError extends Error {}

/** A MessagePack ext value other than a timestamp (a request never needs one: the request's checks refuse it as a wrong type). */
export class ExtValue {
  constructor(
    readonly type: number,
    readonly data: Uint8Array,
  ) {}
}

export interface DecodeLimits {
  /** Longest str, bin or ext, bytes. */
  maxBytes: number;
  /** Most entries of an array or a map. */
  maxItems: number;
}

type Utf8Slice = (this: Uint8Array, start: number, end: number) => string;
/** Bun's native UTF-8 slice works on any Uint8Array; TextDecoder where there is none. */
const nativeSlice = (Buffer.prototype as unknown as { utf8Slice?: Utf8Slice }).utf8Slice;
const textDecoder = new TextDecoder();

/**
 * Short strings seen before (the keys, `t`'s value, names): one slot per hash of their
 * bytes, keeping the last string of that hash. A hit hands back the same string object,
 * which the engine has made a property key already, so storing it in a map, or looking it
 * up in the command table, costs no hashing of a new string (the map's keys were the
 * decoder's largest cost in an in-process profile of `send`).
 */
const CACHE_SLOTS = 512;
const CACHE_MAX = 16;
const cachedBytes: Array<Uint8Array | undefined> = new Array(CACHE_SLOTS);
const cachedStrings: Array<string | undefined> = new Array(CACHE_SLOTS);

function cached(b: Uint8Array, start: number, end: number): string {
  let h = end - start;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x9e3779b1);
  const slot = (h >>> 23) & (CACHE_SLOTS - 1);
  const known = cachedBytes[slot];
  if (known !== undefined && known.length === end - start) {
    let same = true;
    for (let i = 0; i < known.length; i++)
      if (known[i] !== b[start + i]) {
        same = false;
        break;
      }
    if (same) return cachedStrings[slot]!;
  }
  const s = utf8(b, start, end);
  cachedBytes[slot] = b.slice(start, end);
  cachedStrings[slot] = s;
  return s;
}

function utf8(b: Uint8Array, start: number, end: number): string {
  if (end - start <= 8) {
    // A key or a short word: a loop beats a native call while it is ASCII.
    let s = "";
    for (let i = start; i < end; i++) {
      const c = b[i]!;
      if (c >= 0x80) return sliceUtf8(b, start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return sliceUtf8(b, start, end);
}

function sliceUtf8(b: Uint8Array, start: number, end: number): string {
  return nativeSlice ? nativeSlice.call(b, start, end) : textDecoder.decode(b.subarray(start, end));
}

/** Decodes the one MessagePack value that fills `b` exactly; throws DecodeError otherwise. */
export function makeRequestDecoder(limits: DecodeLimits): (b: Uint8Array) => unknown {
  const { maxBytes, maxItems } = limits;
  let b: Uint8Array;
  /** Made when a value needs it (a float, a 64-bit or signed integer, an ext's type): most bodies have none. */
  let dv: DataView | undefined;
  const viewOf = (): DataView => (dv ??= new DataView(b.buffer, b.byteOffset, b.byteLength));
  let pos = 0;
  let n = 0;

  const need = (k: number): void => {
    if (pos + k > n) throw new DecodeError(`insufficient data: ${k} bytes needed at ${pos}`);
  };
  /** Takes the next `k` bytes (a fixed-size value): where they start. */
  const take = (k: number): number => (need(k), (pos += k), pos - k);
  const bytesOf = (len: number, what: string): number => {
    if (len > maxBytes) throw new DecodeError(`${what} of ${len} bytes exceeds the limit of ${maxBytes}`);
    need(len);
    const at = pos;
    pos += len;
    return at;
  };
  const str = (len: number): string => {
    const at = bytesOf(len, "str");
    return len <= CACHE_MAX ? cached(b, at, at + len) : utf8(b, at, at + len);
  };
  const bin = (len: number): Uint8Array => {
    const at = bytesOf(len, "bin");
    return b.subarray(at, at + len);
  };
  const ext = (len: number): ExtValue | Date => {
    const type = viewOf().getInt8(take(1));
    const at = bytesOf(len, "ext");
    return type === -1 ? timestamp(at, len) : new ExtValue(type, b.subarray(at, at + len));
  };
  /** The timestamp ext (type -1), as a Date like @msgpack/msgpack's: 4, 8 or 12 bytes, or refused. */
  const timestamp = (at: number, len: number): Date => {
    if (len === 4) return new Date(viewOf().getUint32(at) * 1000);
    if (len === 8) {
      const hi = viewOf().getUint32(at);
      const sec = (hi & 0x3) * 0x1_0000_0000 + viewOf().getUint32(at + 4);
      return new Date(sec * 1000 + (hi >>> 2) / 1e6);
    }
    if (len === 12) return new Date((viewOf().getInt32(at + 4) * 0x1_0000_0000 + viewOf().getUint32(at + 8)) * 1000 + viewOf().getUint32(at) / 1e6);
    throw new DecodeError(`a timestamp of ${len} bytes (4, 8 or 12)`);
  };
  const array = (len: number): unknown[] => {
    if (len > maxItems) throw new DecodeError(`array of ${len} items exceeds the limit of ${maxItems}`);
    const out = new Array<unknown>(len);
    for (let i = 0; i < len; i++) out[i] = value();
    return out;
  };
  const map = (len: number): Record<string, unknown> => {
    if (len > maxItems) throw new DecodeError(`map of ${len} entries exceeds the limit of ${maxItems}`);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < len; i++) {
      const k = value();
      if (typeof k !== "string" && typeof k !== "number") throw new DecodeError(`a map key must be a string or a number, not ${k === null ? "nil" : typeof k}`);
      if (k === "__proto__") throw new DecodeError("the map key __proto__ is not allowed");
      out[k] = value();
    }
    return out;
  };
  const u8 = (): number => b[take(1)]!;
  const u16 = (): number => {
    const at = take(2);
    return (b[at]! << 8) | b[at + 1]!;
  };
  const u32 = (): number => {
    const at = take(4);
    return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
  };
  /** The 64-bit integers, as numbers (beyond 2^53 they lose precision, as @msgpack/msgpack's do). */
  const u64 = (): number => {
    const at = take(8);
    return viewOf().getUint32(at) * 0x1_0000_0000 + viewOf().getUint32(at + 4);
  };
  const i64 = (): number => {
    const at = take(8);
    return viewOf().getInt32(at) * 0x1_0000_0000 + viewOf().getUint32(at + 4);
  };

  function value(): unknown {
    need(1);
    const t = b[pos++]!;
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t <= 0x8f) return map(t & 0x0f);
    if (t <= 0x9f) return array(t & 0x0f);
    if (t <= 0xbf) return str(t & 0x1f);
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(u8());
      case 0xc5:
        return bin(u16());
      case 0xc6:
        return bin(u32());
      case 0xc7:
        return ext(u8());
      case 0xc8:
        return ext(u16());
      case 0xc9:
        return ext(u32());
      case 0xca:
        return viewOf().getFloat32(take(4));
      case 0xcb:
        return viewOf().getFloat64(take(8));
      case 0xcc:
        return u8();
      case 0xcd:
        return u16();
      case 0xce:
        return u32();
      case 0xcf:
        return u64();
      case 0xd0:
        return viewOf().getInt8(take(1));
      case 0xd1:
        return viewOf().getInt16(take(2));
      case 0xd2:
        return viewOf().getInt32(take(4));
      case 0xd3:
        return i64();
      case 0xd4:
        return ext(1);
      case 0xd5:
        return ext(2);
      case 0xd6:
        return ext(4);
      case 0xd7:
        return ext(8);
      case 0xd8:
        return ext(16);
      case 0xd9:
        return str(u8());
      case 0xda:
        return str(u16());
      case 0xdb:
        return str(u32());
      case 0xdc:
        return array(u16());
      case 0xdd:
        return array(u32());
      case 0xde:
        return map(u16());
      case 0xdf:
        return map(u32());
      default:
        throw new DecodeError(`invalid type byte 0x${t.toString(16)} at ${pos - 1}`);
    }
  }

  return (body: Uint8Array): unknown => {
    b = body;
    dv = undefined;
    pos = 0;
    n = body.length;
    try {
      const v = value();
      if (pos !== n) throw new DecodeError(`${n - pos} bytes after the value`);
      return v;
    } finally {
      b = EMPTY; // do not keep the connection's buffer alive
      dv = undefined;
    }
  };
}

const EMPTY = new Uint8Array(0);
