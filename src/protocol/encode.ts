// MessagePack encoding of the frames the server and the client send (PROTOCOL.md §1),
// byte for byte what @msgpack/msgpack's Encoder with `ignoreUndefined` writes (the test
// encode.test.ts holds the two to the same bytes), at a third of its cost on the hot path:
// short ASCII strings (every key) are written by a loop and others by the platform's native
// UTF-8 writer where there is one (native-utf8.ts; TextEncoder in browsers), and the frame
// is written behind its 4-byte length in one scratch buffer and copied out once. Every
// acknowledgement and every push of a message is encoded here (docs/BUN.md, "Costs").
import { HEADER_BYTES } from "./frame.ts";

const textEncoder = new TextEncoder();

/** A native UTF-8 byte count and writer (native-utf8.ts installs the runtime's); none in browsers. */
export interface NativeUtf8 {
  byteLength(s: string): number;
  /** Writes `s` into `into` at `offset`, at most `length` bytes; returns the bytes written. */
  write(into: Uint8Array, s: string, offset: number, length: number): number;
}

let native: NativeUtf8 | undefined;

/** Lets the encoder use a platform's native UTF-8 functions (they must agree with TextEncoder). */
export function useNativeUtf8(n: NativeUtf8): void {
  native = n;
}

function utf8Length(s: string): number {
  if (native) return native.byteLength(s);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

let buf = new Uint8Array(64 * 1024);
let view = new DataView(buf.buffer);
let pos = 0;

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const grown = new Uint8Array(size);
  grown.set(buf.subarray(0, pos));
  buf = grown;
  view = new DataView(buf.buffer);
}

/**
 * The header of a str, bin, array or map of `n` bytes or items, in its smallest form: `fix | n`
 * below `fixLimit` (0: the type has no fix form), then `code8` with one byte (0: none), then
 * `code16` with two, or `code16 + 1` with four. The caller has ensured 5 bytes.
 */
function header(n: number, fix: number, fixLimit: number, code8: number, code16: number): void {
  if (n < fixLimit) buf[pos++] = fix | n;
  else if (code8 !== 0 && n < 0x100) {
    buf[pos++] = code8;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = code16;
    view.setUint16(pos, n);
    pos += 2;
  } else {
    buf[pos++] = code16 + 1;
    view.setUint32(pos, n);
    pos += 4;
  }
}

const strHeader = (len: number) => header(len, 0xa0, 32, 0xd9, 0xda);

function str(s: string): void {
  const n = s.length;
  if (n <= 32) {
    // ASCII (the common case) is written as it is checked; otherwise start over, counted.
    ensure(n + 5);
    const start = pos;
    strHeader(n);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos++] = c;
    }
    if (i === n) return;
    pos = start;
  }
  const len = utf8Length(s);
  ensure(len + 5);
  strHeader(len);
  if (native) native.write(buf, s, pos, len);
  else textEncoder.encodeInto(s, buf.subarray(pos, pos + len));
  pos += len;
}

function number(x: number): void {
  ensure(9);
  if (Number.isSafeInteger(x)) {
    if (x >= 0) {
      if (x < 0x80) buf[pos++] = x;
      else if (x < 0x100) {
        buf[pos++] = 0xcc;
        buf[pos++] = x;
      } else if (x < 0x10000) {
        buf[pos++] = 0xcd;
        view.setUint16(pos, x);
        pos += 2;
      } else if (x < 0x1_0000_0000) {
        buf[pos++] = 0xce;
        view.setUint32(pos, x);
        pos += 4;
      } else {
        buf[pos++] = 0xcf;
        view.setUint32(pos, Math.floor(x / 0x1_0000_0000));
        view.setUint32(pos + 4, x >>> 0);
        pos += 8;
      }
    } else if (x >= -0x20) buf[pos++] = x & 0xff;
    else if (x >= -0x80) {
      buf[pos++] = 0xd0;
      view.setInt8(pos++, x);
    } else if (x >= -0x8000) {
      buf[pos++] = 0xd1;
      view.setInt16(pos, x);
      pos += 2;
    } else if (x >= -0x8000_0000) {
      buf[pos++] = 0xd2;
      view.setInt32(pos, x);
      pos += 4;
    } else {
      buf[pos++] = 0xd3;
      view.setInt32(pos, Math.floor(x / 0x1_0000_0000));
      view.setUint32(pos + 4, x >>> 0);
      pos += 8;
    }
    return;
  }
  buf[pos++] = 0xcb;
  view.setFloat64(pos, x);
  pos += 8;
}

function bin(b: Uint8Array): void {
  const len = b.length;
  ensure(len + 5);
  header(len, 0, 0, 0xc4, 0xc5);
  buf.set(b, pos);
  pos += len;
}

/** A Date as the timestamp ext (type -1), in the smallest of its three forms. */
function timestamp(ms: number): void {
  const sec = Math.floor(ms / 1000);
  const nsec = (ms - sec * 1000) * 1e6;
  ensure(15);
  if (nsec === 0 && sec >= 0 && sec < 0x1_0000_0000) {
    buf[pos++] = 0xd6;
    buf[pos++] = 0xff;
    view.setUint32(pos, sec);
    pos += 4;
  } else if (sec >= 0 && sec < 0x4_0000_0000) {
    buf[pos++] = 0xd7;
    buf[pos++] = 0xff;
    view.setUint32(pos, nsec * 4 + Math.floor(sec / 0x1_0000_0000));
    view.setUint32(pos + 4, sec >>> 0);
    pos += 8;
  } else {
    buf[pos++] = 0xc7;
    buf[pos++] = 12;
    buf[pos++] = 0xff;
    view.setUint32(pos, nsec);
    view.setInt32(pos + 4, Math.floor(sec / 0x1_0000_0000));
    view.setUint32(pos + 8, sec >>> 0);
    pos += 12;
  }
}

function map(o: Record<string, unknown>): void {
  // One pass: a fixmap header is reserved and the entries written; the rare map of 16
  // entries or more then moves them to make room for its longer header.
  ensure(1);
  const head = pos++;
  let n = 0;
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (v === undefined) continue;
    str(k);
    value(v);
    n++;
  }
  if (n < 16) {
    buf[head] = 0x80 | n;
    return;
  }
  const extra = n < 0x10000 ? 2 : 4;
  ensure(extra);
  buf.copyWithin(head + 1 + extra, head + 1, pos);
  const end = pos + extra;
  pos = head;
  header(n, 0x80, 16, 0, 0xde);
  pos = end;
}

function value(v: unknown): void {
  switch (typeof v) {
    case "string":
      return str(v);
    case "number":
      return number(v);
    case "boolean":
      ensure(1);
      buf[pos++] = v ? 0xc3 : 0xc2;
      return;
    case "undefined":
      ensure(1);
      buf[pos++] = 0xc0;
      return;
    case "object":
      if (v === null) {
        ensure(1);
        buf[pos++] = 0xc0;
        return;
      }
      if (Array.isArray(v)) {
        ensure(5);
        header(v.length, 0x90, 16, 0, 0xdc);
        for (const x of v) value(x);
        return;
      }
      if (v instanceof Uint8Array) return bin(v);
      if (v instanceof Date) return timestamp(v.getTime());
      if (ArrayBuffer.isView(v)) return bin(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      return map(v as Record<string, unknown>);
    default:
      throw new Error(`cannot encode a ${typeof v} in MessagePack`);
  }
}

/** Encodes `msg` as one MessagePack map and returns length prefix + body in one new buffer. */
export function encodeFrame(msg: object): Uint8Array {
  pos = HEADER_BYTES;
  try {
    value(msg);
  } catch (e) {
    pos = 0;
    throw e;
  }
  const len = pos - HEADER_BYTES;
  view.setUint32(0, len);
  const out = buf.slice(0, pos);
  if (buf.length > 4 * 1024 * 1024) {
    // A big frame (a download's chunk) grew the scratch buffer: do not keep the memory.
    buf = new Uint8Array(64 * 1024);
    view = new DataView(buf.buffer);
  }
  pos = 0;
  return out;
}
