// The frame encoder (src/protocol/encode.ts) writes the bytes @msgpack/msgpack's Encoder writes
// (with ignoreUndefined, as the server used it), on random values and on every frame shape.
import { describe, expect, test } from "bun:test";
import { Encoder } from "@msgpack/msgpack";
import { encodeFrame, useNativeUtf8 } from "../src/protocol/encode.ts";
import { fuzzSeed, Rng } from "./helpers/fuzz-gen.ts";

const reference = new Encoder({ ignoreUndefined: true });
function theirs(v: object): Uint8Array {
  const body = reference.encode(v);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const STRINGS = ["", "t", "msg", "x".repeat(31), "x".repeat(32), "y".repeat(64), "y".repeat(65), "z".repeat(255), "z".repeat(256), "w".repeat(70000), "é", "ça va", "日本語", "😀", "a😀b".repeat(30), "\u0000", "mixed ascii then é".repeat(5)];
const NUMBERS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 1733000000000, 2 ** 53 - 1, 2 ** 53, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1, 0.5, -0, 1e300, Number.NaN, Infinity, -Infinity];

function randomValue(r: Rng, depth: number): unknown {
  const k = r.int(0, depth > 3 ? 5 : 8);
  if (k === 0) return r.pick(STRINGS);
  if (k === 1) return r.pick(NUMBERS);
  if (k === 2) return r.int(-1e6, 1e6) * (r.chance(0.3) ? 1e6 : 1);
  if (k === 3) return r.pick([true, false, null, undefined]);
  if (k === 4) return String.fromCharCode(...Array.from({ length: r.int(0, 80) }, () => (r.chance(0.9) ? r.int(32, 126) : r.int(128, 0xd7ff))));
  if (k === 5) return new Uint8Array(r.pick([0, 1, 255, 256, 70000])).fill(7);
  if (k === 6) return Array.from({ length: r.pick([0, 1, 15, 16, 20]) }, () => randomValue(r, depth + 1));
  if (k === 7) return new Date(r.pick([0, 1000, 1733000000123, -5000, 2 ** 34 * 1000 + 5, 1733000000000]));
  const o: Record<string, unknown> = {};
  for (let i = 0, n = r.pick([0, 1, 5, 15, 16, 17]); i < n; i++) o[r.chance(0.5) ? r.pick(["t", "id", "mid", "text", "from", "group", "cid"]) : `k${r.int(0, 40)}é`] = randomValue(r, depth + 1);
  return o;
}

const NATIVE = { byteLength: (s: string) => Buffer.byteLength(s), write: (into: Uint8Array, s: string, at: number, n: number) => Buffer.from(into.buffer, into.byteOffset, into.byteLength).write(s, at, n, "utf8") };

describe("frame encoder", () => {
  test("the same bytes as @msgpack/msgpack for 5,000 random values, with TextEncoder and with a native writer", () => {
    const seed = fuzzSeed();
    const r0 = new Rng(seed ^ 0x5a5a);
    for (let i = 0; i < 1000; i++) {
      const v = { v: randomValue(r0, 0) };
      expect(hex(encodeFrame(v))).toBe(hex(theirs(v)));
    }
    useNativeUtf8(NATIVE);
    const r = new Rng(seed);
    for (let i = 0; i < 5000; i++) {
      const v = { v: randomValue(r, 0) };
      const a = hex(encodeFrame(v));
      const b = hex(theirs(v));
      if (a !== b) throw new Error(`seed ${seed} value ${i}: ${JSON.stringify(v).slice(0, 300)}\nours   ${a.slice(0, 300)}\ntheirs ${b.slice(0, 300)}`);
    }
  });

  test("the frames the server sends: an ack, a push, an error, a page", () => {
    const frames: object[] = [
      { t: "ok", id: 7, mid: 123456, ts: 1733000000123 },
      { t: "msg", mid: 5, ts: 1733000000123, from: "alice", group: "ops", user: undefined, text: "hello @bob, ça va?", file: undefined, cid: "c-1", reply: undefined },
      { t: "msg", mid: 6, ts: 1, from: "a", user: "b", file: { name: "x.png", type: "image/png", size: 123456789, sha256: "ab".repeat(32) } },
      { t: "error", id: undefined, code: "bad_request", msg: "'t' must be a string naming the request" },
      { t: "ok", id: 1, msgs: Array.from({ length: 40 }, (_, i) => ({ mid: i, ts: i * 1000, from: "u", text: "x".repeat(i * 10) })), more: true },
      { t: "ok", id: 2, mid: 9, offset: 0, size: 3, sha256: "00", data: new Uint8Array(1024 * 1024 + 3).fill(1) },
    ];
    for (const f of frames) expect(hex(encodeFrame(f))).toBe(hex(theirs(f)));
  });

  test("a lone surrogate becomes U+FFFD, valid UTF-8 (the package's loop for short strings writes it raw, which no decoder accepts)", () => {
    const f = encodeFrame({ s: "\ud800 lone" });
    expect(new TextDecoder("utf-8", { fatal: true }).decode(f.subarray(4 + 3 + 1))).toBe("\ufffd lone");
  });

  test("a value it cannot encode throws, and the next frame is whole", () => {
    expect(() => encodeFrame({ f: () => 1 })).toThrow();
    expect(hex(encodeFrame({ t: "ok", id: 1 }))).toBe(hex(theirs({ t: "ok", id: 1 })));
  });

  test("the frame returned is its own: the next encode does not change it", () => {
    const a = encodeFrame({ t: "ok", id: 1, text: "first" });
    const copy = hex(a);
    encodeFrame({ t: "ok", id: 2, text: "second, longer than the first" });
    expect(hex(a)).toBe(copy);
  });
});
