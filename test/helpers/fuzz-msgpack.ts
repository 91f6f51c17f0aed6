// Test-side MessagePack, independent of the server's codec: a hand encoder that
// can write anything the spec allows (non-string keys, ext types, every int and
// float width, raw bytes, nesting no encoder would produce) and a strict,
// iterative decoder used as the fuzz oracle and to check every byte the server
// writes (valid MessagePack, valid UTF-8 in every str).
import { concat } from "./wire.ts";

// ---- encoding -------------------------------------------------------------

export type IntFmt = "fix" | "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64";
export type LenFmt = "fix" | "8" | "16" | "32";

/** A value to encode. Plain objects are string-keyed maps; the `$` wrappers give full control. */
export type W =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | W[]
  | { $map: Array<[W, W]>; fmt?: LenFmt }
  | { $arr: W[]; fmt?: LenFmt }
  | { $ext: number; data: Uint8Array; fmt?: "fix" | "8" | "16" | "32" }
  | { $f32: number }
  | { $f64: number }
  | { $int: bigint | number; fmt: IntFmt }
  | { $str: Uint8Array; fmt?: LenFmt }
  | { $bin: Uint8Array; fmt?: "8" | "16" | "32" }
  | { $raw: Uint8Array }
  | { [k: string]: W };

const te = new TextEncoder();

export class Enc {
  private buf = new Uint8Array(256);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  u8(x: number): this {
    this.room(1);
    this.buf[this.len++] = x & 0xff;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  private be(x: bigint, n: number): this {
    this.room(n);
    for (let i = n - 1; i >= 0; i--) {
      this.buf[this.len + i] = Number(x & 0xffn);
      x >>= 8n;
    }
    this.len += n;
    return this;
  }

  int(v: bigint | number, fmt?: IntFmt): this {
    const x = BigInt(v);
    if (!fmt) {
      if (x >= 0n) fmt = x < 128n ? "fix" : x < 256n ? "u8" : x < 65536n ? "u16" : x < 4294967296n ? "u32" : "u64";
      else fmt = x >= -32n ? "fix" : x >= -128n ? "i8" : x >= -32768n ? "i16" : x >= -2147483648n ? "i32" : "i64";
    }
    const u = (n: number) => BigInt.asUintN(n, x);
    switch (fmt) {
      case "fix":
        return this.u8(Number(BigInt.asUintN(8, x)));
      case "u8":
        return this.u8(0xcc).be(u(8), 1);
      case "u16":
        return this.u8(0xcd).be(u(16), 2);
      case "u32":
        return this.u8(0xce).be(u(32), 4);
      case "u64":
        return this.u8(0xcf).be(u(64), 8);
      case "i8":
        return this.u8(0xd0).be(u(8), 1);
      case "i16":
        return this.u8(0xd1).be(u(16), 2);
      case "i32":
        return this.u8(0xd2).be(u(32), 4);
      case "i64":
        return this.u8(0xd3).be(u(64), 8);
    }
  }

  f32(x: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x);
    return this.u8(0xca).bytes(b);
  }

  f64(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x);
    return this.u8(0xcb).bytes(b);
  }

  /** A str header for `n` bytes (the bytes themselves are not written). */
  strHeader(n: number, fmt?: LenFmt): this {
    fmt ??= n < 32 ? "fix" : n < 256 ? "8" : n < 65536 ? "16" : "32";
    if (fmt === "fix") return this.u8(0xa0 | (n & 0x1f));
    if (fmt === "8") return this.u8(0xd9).be(BigInt(n), 1);
    if (fmt === "16") return this.u8(0xda).be(BigInt(n), 2);
    return this.u8(0xdb).be(BigInt(n), 4);
  }

  str(s: string | Uint8Array, fmt?: LenFmt): this {
    const b = typeof s === "string" ? te.encode(s) : s;
    return this.strHeader(b.length, fmt).bytes(b);
  }

  binHeader(n: number, fmt?: "8" | "16" | "32"): this {
    fmt ??= n < 256 ? "8" : n < 65536 ? "16" : "32";
    if (fmt === "8") return this.u8(0xc4).be(BigInt(n), 1);
    if (fmt === "16") return this.u8(0xc5).be(BigInt(n), 2);
    return this.u8(0xc6).be(BigInt(n), 4);
  }

  bin(b: Uint8Array, fmt?: "8" | "16" | "32"): this {
    return this.binHeader(b.length, fmt).bytes(b);
  }

  arrHeader(n: number, fmt?: LenFmt): this {
    fmt ??= n < 16 ? "fix" : n < 65536 ? "16" : "32";
    if (fmt === "fix") return this.u8(0x90 | (n & 0x0f));
    if (fmt === "8" || fmt === "16") return this.u8(0xdc).be(BigInt(n), 2);
    return this.u8(0xdd).be(BigInt(n), 4);
  }

  mapHeader(n: number, fmt?: LenFmt): this {
    fmt ??= n < 16 ? "fix" : n < 65536 ? "16" : "32";
    if (fmt === "fix") return this.u8(0x80 | (n & 0x0f));
    if (fmt === "8" || fmt === "16") return this.u8(0xde).be(BigInt(n), 2);
    return this.u8(0xdf).be(BigInt(n), 4);
  }

  /** An ext header for `n` data bytes of `type` (fixext when the size allows and fmt is not forced). */
  extHeader(type: number, n: number, fmt?: "fix" | "8" | "16" | "32"): this {
    const fixCode: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
    fmt ??= fixCode[n] !== undefined ? "fix" : n < 256 ? "8" : n < 65536 ? "16" : "32";
    if (fmt === "fix" && fixCode[n] !== undefined) this.u8(fixCode[n]!);
    else if (fmt === "8" || fmt === "fix") this.u8(0xc7).be(BigInt(n), 1);
    else if (fmt === "16") this.u8(0xc8).be(BigInt(n), 2);
    else this.u8(0xc9).be(BigInt(n), 4);
    return this.u8(type);
  }

  value(v: W): this {
    if (v === null || v === undefined) return this.u8(0xc0);
    if (v === true) return this.u8(0xc3);
    if (v === false) return this.u8(0xc2);
    if (typeof v === "bigint") return this.int(v);
    if (typeof v === "number") return Number.isInteger(v) && !Object.is(v, -0) && Math.abs(v) < 2 ** 63 ? this.int(v) : this.f64(v);
    if (typeof v === "string") return this.str(v);
    if (v instanceof Uint8Array) return this.bin(v);
    if (Array.isArray(v)) {
      this.arrHeader(v.length);
      for (const x of v) this.value(x);
      return this;
    }
    const o = v as Record<string, unknown>;
    if ("$map" in o) {
      const entries = o.$map as Array<[W, W]>;
      this.mapHeader(entries.length, o.fmt as LenFmt | undefined);
      for (const [k, x] of entries) this.value(k).value(x);
      return this;
    }
    if ("$arr" in o) {
      const items = o.$arr as W[];
      this.arrHeader(items.length, o.fmt as LenFmt | undefined);
      for (const x of items) this.value(x);
      return this;
    }
    if ("$ext" in o) {
      const data = o.data as Uint8Array;
      return this.extHeader(o.$ext as number, data.length, o.fmt as "fix" | undefined).bytes(data);
    }
    if ("$f32" in o) return this.f32(o.$f32 as number);
    if ("$f64" in o) return this.f64(o.$f64 as number);
    if ("$int" in o) return this.int(o.$int as bigint, o.fmt as IntFmt);
    if ("$str" in o) return this.str(o.$str as Uint8Array, o.fmt as LenFmt | undefined);
    if ("$bin" in o) return this.bin(o.$bin as Uint8Array, o.fmt as "8" | undefined);
    if ("$raw" in o) return this.bytes(o.$raw as Uint8Array);
    const keys = Object.keys(o);
    this.mapHeader(keys.length);
    for (const k of keys) this.str(k).value(o[k] as W);
    return this;
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export function enc(v: W): Uint8Array {
  return new Enc().value(v).done();
}

/** 4-byte big-endian length + body. */
export function framed(body: Uint8Array, claimed = body.length): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, claimed >>> 0);
  out.set(body, 4);
  return out;
}

export { concat };

export function hex(b: Uint8Array, max = Infinity): string {
  const s = Buffer.from(b.subarray(0, Math.min(b.length, max))).toString("hex");
  return b.length > max ? `${s}...(${b.length} bytes)` : s;
}

// ---- strict decoding ------------------------------------------------------

/** A decoded value. Containers deeper than the build depth are checked but not built (`v: null`). */
export type D =
  | { k: "nil" }
  | { k: "bool"; v: boolean }
  | { k: "int"; v: bigint }
  | { k: "float"; v: number }
  | { k: "str"; v: string; bytes: number; valid: boolean }
  | { k: "bin"; v: Uint8Array }
  | { k: "arr"; v: D[] | null; n: number }
  | { k: "map"; v: Array<[D, D]> | null; n: number }
  | { k: "ext"; type: number; data: Uint8Array };

export interface DecodeInfo {
  /** Deepest nesting of containers, empty ones included (the top container is 1). */
  depth: number;
  /** Deepest nesting counting only non-empty containers. */
  depthNonEmpty: number;
  /** Largest entry count of any array or map (as announced by its header). */
  maxEntries: number;
  /** Some str is not valid UTF-8: at any depth, and within the top map's keys and values or the `file` map (depth <= 3). */
  badUtf8: boolean;
  badUtf8Shallow: boolean;
  /** A map key that is not a str or a number (spec-valid, the server's decoder refuses it). */
  oddKey: boolean;
  /** A "__proto__" str key (the server's decoder refuses it). */
  protoKey: boolean;
  /** An ext of type -1 (timestamp) whose size is not 4, 8 or 12. */
  badTimestamp: boolean;
}

export type Decoded = { ok: true; value: D; info: DecodeInfo } | { ok: false; error: string; info: DecodeInfo };

const utf8Fatal = new TextDecoder("utf-8", { fatal: true });
const utf8Lossy = new TextDecoder("utf-8");
const NIL: D = { k: "nil" };
const SKIPPED: D = { k: "nil" };

const KIND_ARR = 1;
const KIND_MAP = 2;

/**
 * Decodes exactly one MessagePack value filling `b`, without recursion and
 * without allocating per announced entry, so hostile input costs O(bytes).
 * Values are built down to `buildDepth` levels of containers.
 */
export function decodeStrict(b: Uint8Array, buildDepth = 8): Decoded {
  const info: DecodeInfo = {
    depth: 0,
    depthNonEmpty: 0,
    maxEntries: 0,
    badUtf8: false,
    badUtf8Shallow: false,
    oddKey: false,
    protoKey: false,
    badTimestamp: false,
  };
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = b.length;
  let pos = 0;
  // The open containers: kind, items left (a map counts keys and values), and the value under construction.
  let cap = 16;
  let kinds = new Uint8Array(cap);
  let left = new Float64Array(cap);
  const built: Array<{ arr?: D[]; map?: Array<[D, D]>; key?: D; total: number } | null> = [];
  let sp = 0;
  const fail = (error: string): Decoded => ({ ok: false, error, info });

  for (;;) {
    // Read one value at depth sp (0: the top value).
    if (pos >= n) return fail(`insufficient data at ${pos}`);
    const isKey = sp > 0 && kinds[sp - 1] === KIND_MAP && left[sp - 1]! % 2 === 0;
    const h = b[pos++]!;
    let value: D | undefined;
    let open = -1; // entries of a container being opened
    let openKind = 0;
    const need = (k: number): boolean => n - pos >= k;
    const shallow = sp <= 2;
    const build = sp < buildDepth + 1;
    if (h <= 0x7f) value = { k: "int", v: BigInt(h) };
    else if (h >= 0xe0) value = { k: "int", v: BigInt(h - 256) };
    else if (h <= 0x8f) ((open = h & 0x0f), (openKind = KIND_MAP));
    else if (h <= 0x9f) ((open = h & 0x0f), (openKind = KIND_ARR));
    else if (h <= 0xbf || h === 0xd9 || h === 0xda || h === 0xdb) {
      let len: number;
      if (h <= 0xbf) len = h & 0x1f;
      else if (h === 0xd9) {
        if (!need(1)) return fail("truncated str8 header");
        len = b[pos++]!;
      } else if (h === 0xda) {
        if (!need(2)) return fail("truncated str16 header");
        len = view.getUint16(pos);
        pos += 2;
      } else {
        if (!need(4)) return fail("truncated str32 header");
        len = view.getUint32(pos);
        pos += 4;
      }
      if (!need(len)) return fail(`str of ${len} bytes, ${n - pos} left`);
      const raw = b.subarray(pos, pos + len);
      pos += len;
      let s: string;
      let valid = true;
      try {
        s = utf8Fatal.decode(raw);
      } catch {
        valid = false;
        s = utf8Lossy.decode(raw);
        info.badUtf8 = true;
        if (shallow) info.badUtf8Shallow = true;
      }
      value = build || isKey ? { k: "str", v: s, bytes: len, valid } : SKIPPED;
    } else
      switch (h) {
        case 0xc0:
          value = NIL;
          break;
        case 0xc2:
          value = { k: "bool", v: false };
          break;
        case 0xc3:
          value = { k: "bool", v: true };
          break;
        case 0xc4:
        case 0xc5:
        case 0xc6: {
          const w = h === 0xc4 ? 1 : h === 0xc5 ? 2 : 4;
          if (!need(w)) return fail("truncated bin header");
          const len = w === 1 ? b[pos]! : w === 2 ? view.getUint16(pos) : view.getUint32(pos);
          pos += w;
          if (!need(len)) return fail(`bin of ${len} bytes, ${n - pos} left`);
          value = { k: "bin", v: b.subarray(pos, pos + len) };
          pos += len;
          break;
        }
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: {
          let len: number;
          if (h >= 0xd4) len = [1, 2, 4, 8, 16][h - 0xd4]!;
          else {
            const w = h === 0xc7 ? 1 : h === 0xc8 ? 2 : 4;
            if (!need(w)) return fail("truncated ext header");
            len = w === 1 ? b[pos]! : w === 2 ? view.getUint16(pos) : view.getUint32(pos);
            pos += w;
          }
          if (!need(1 + len)) return fail(`ext of ${len} bytes, ${n - pos} left`);
          const type = view.getInt8(pos);
          pos += 1;
          if (type === -1 && len !== 4 && len !== 8 && len !== 12) info.badTimestamp = true;
          value = { k: "ext", type, data: b.subarray(pos, pos + len) };
          pos += len;
          break;
        }
        case 0xca:
          if (!need(4)) return fail("truncated float32");
          value = { k: "float", v: view.getFloat32(pos) };
          pos += 4;
          break;
        case 0xcb:
          if (!need(8)) return fail("truncated float64");
          value = { k: "float", v: view.getFloat64(pos) };
          pos += 8;
          break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
          const w = [1, 2, 4, 8][(h - 0xcc) % 4]!;
          if (!need(w)) return fail("truncated int");
          let x = 0n;
          for (let i = 0; i < w; i++) x = (x << 8n) | BigInt(b[pos + i]!);
          if (h >= 0xd0) x = BigInt.asIntN(w * 8, x);
          pos += w;
          value = { k: "int", v: x };
          break;
        }
        case 0xdc:
        case 0xde:
          if (!need(2)) return fail("truncated container16 header");
          open = view.getUint16(pos);
          pos += 2;
          openKind = h === 0xdc ? KIND_ARR : KIND_MAP;
          break;
        case 0xdd:
        case 0xdf:
          if (!need(4)) return fail("truncated container32 header");
          open = view.getUint32(pos);
          pos += 4;
          openKind = h === 0xdd ? KIND_ARR : KIND_MAP;
          break;
        default:
          return fail(`byte 0x${h.toString(16)} is not a MessagePack type`);
      }

    if (open >= 0) {
      const depth = sp + 1;
      if (depth > info.depth) info.depth = depth;
      if (open > info.maxEntries) info.maxEntries = open;
      if (open === 0) {
        value = openKind === KIND_ARR ? { k: "arr", v: [], n: 0 } : { k: "map", v: [], n: 0 };
      } else {
        if (depth > info.depthNonEmpty) info.depthNonEmpty = depth;
        const items = openKind === KIND_MAP ? open * 2 : open;
        // Every item takes at least one byte: a claim larger than what is left fails now.
        if (items > n - pos) return fail(`container of ${open} entries, ${n - pos} bytes left`);
        if (sp === cap) {
          cap *= 2;
          const k2 = new Uint8Array(cap);
          k2.set(kinds);
          kinds = k2;
          const l2 = new Float64Array(cap);
          l2.set(left);
          left = l2;
        }
        kinds[sp] = openKind;
        left[sp] = items;
        built[sp] = depth <= buildDepth ? (openKind === KIND_ARR ? { arr: [], total: open } : { map: [], total: open }) : null;
        sp++;
        continue;
      }
    }

    // A value is complete: hand it to its container, closing containers that are full.
    let v = value!;
    for (;;) {
      if (sp === 0) {
        if (pos !== n) return fail(`${n - pos} bytes after the value`);
        return { ok: true, value: v, info };
      }
      const top = sp - 1;
      const slot = built[top];
      if (kinds[top] === KIND_MAP) {
        if (left[top]! % 2 === 0) {
          // a key
          if (v.k === "str") {
            if (v.v === "__proto__") info.protoKey = true;
          } else if (v.k !== "int" && v.k !== "float") info.oddKey = true;
          if (slot) slot.key = v;
        } else if (slot) slot.map!.push([slot.key!, v]);
      } else if (slot) slot.arr!.push(v);
      left[top]!--;
      if (left[top]! > 0) break;
      sp--;
      built[sp] = null;
      v = slot
        ? slot.arr
          ? { k: "arr", v: slot.arr, n: slot.total }
          : { k: "map", v: slot.map!, n: slot.total }
        : { k: kinds[top] === KIND_ARR ? "arr" : "map", v: null, n: 0 };
    }
  }
}

/** Plain JS from a decoded value (numbers for ints, objects for maps with their keys as strings). */
export function toJS(d: D): any {
  switch (d.k) {
    case "nil":
      return null;
    case "bool":
    case "float":
    case "str":
      return d.v;
    case "int":
      return Number(d.v);
    case "bin":
      return d.v;
    case "ext":
      return { ext: d.type, data: d.data };
    case "arr":
      return d.v ? d.v.map(toJS) : [];
    case "map": {
      const o: Record<string, unknown> = {};
      for (const [k, v] of d.v ?? []) o[k.k === "str" ? k.v : String(toJS(k))] = toJS(v);
      return o;
    }
  }
}
