// The server's request decoder (src/protocol/decode.ts) against @msgpack/msgpack's, with the
// options the server used before (makeBodyDecoder): same values, same refusals, on the fuzz
// generators' bodies, valid and hostile, and on random values.
import { describe, expect, test } from "bun:test";
import { encode, ExtData } from "@msgpack/msgpack";
import { makeBodyDecoder } from "../src/protocol/codec.ts";
import { DecodeError, ExtValue, makeRequestDecoder } from "../src/protocol/decode.ts";
import { scanBody } from "../src/protocol/depth.ts";
import { fuzzSeed, randomBody, Rng, validRequest } from "./helpers/fuzz-gen.ts";
import { REQUEST_TYPES } from "./helpers/fuzz-oracle.ts";

const MAX_FRAME = 4 * 1024 * 1024;
const ours = makeRequestDecoder({ maxBytes: MAX_FRAME, maxItems: 256 });
const theirs = makeBodyDecoder(MAX_FRAME, 256);

type Outcome = { ok: true; v: unknown } | { ok: false };
function run(f: (b: Uint8Array) => unknown, b: Uint8Array): Outcome {
  try {
    return { ok: true, v: f(b) };
  } catch {
    return { ok: false };
  }
}

/** Ext values: theirs gives a Date (type -1) or an ExtData; ours an {type, data}. Compared by their bytes. */
function normal(v: unknown): unknown {
  if (v instanceof Date) return { date: v.getTime() };
  if (v instanceof Uint8Array) return { bin: [...v] };
  if (Array.isArray(v)) return v.map(normal);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (v instanceof ExtValue || v instanceof ExtData) return { ext: o.type, data: [...(o.data as Uint8Array)] };
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, normal(x)]));
  }
  return v;
}

describe("request decoder", () => {
  test("decodes every request type's valid body as @msgpack/msgpack does", () => {
    const r = new Rng(fuzzSeed());
    for (let i = 0; i < 2000; i++) {
      const body = encode(validRequest(r, r.pick(REQUEST_TYPES), r.int(0, 1e6)));
      const a = run(ours, body);
      expect(a.ok).toBe(true);
      if (a.ok) expect(normal(a.v)).toEqual(normal(theirs(body)));
    }
  });

  test("agrees with @msgpack/msgpack on 20,000 fuzz bodies: same values, same refusals", () => {
    const seed = fuzzSeed();
    const r = new Rng(seed);
    const corpus = [encode({ t: "send", id: 1, group: "g", text: "hi", cid: "c1" }), encode({ t: "ping", id: 2 })];
    let refused = 0;
    for (let i = 0; i < 20000; i++) {
      const { body } = randomBody(r, corpus, MAX_FRAME);
      // The server decodes only what its scan passes: depth first (the recursion is bounded by
      // it), strict UTF-8 (the two decoders replace a bad sequence differently; the server never decodes one).
      if (scanBody(body, 8) !== "ok") continue;
      const a = run(ours, body);
      const b = run(theirs, body);
      if (a.ok !== b.ok) throw new Error(`seed ${seed} body ${i}: ours ${a.ok ? "decoded" : "refused"}, theirs ${b.ok ? "decoded" : "refused"}: ${Buffer.from(body).toString("hex").slice(0, 400)}`);
      // A body that is not a map is refused whatever it holds (its strings are not checked): only ok-ness counts.
      const isMap = (body[0]! >= 0x80 && body[0]! <= 0x8f) || body[0] === 0xde || body[0] === 0xdf;
      if (a.ok && b.ok && isMap) expect(normal(a.v)).toEqual(normal(b.v));
      else refused++;
    }
    expect(refused).toBeGreaterThan(100); // the generators do make hostile bodies
  });

  test("numbers of every width, strings of every header, UTF-8 beyond ASCII", () => {
    const values = [
      0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1,
      0.5, -1.25e300, "", "a", "x".repeat(31), "x".repeat(32), "é".repeat(100), "日本語のテキスト", "😀 emoji", "y".repeat(70000 / 2), null, true, false,
    ];
    for (const v of values) {
      const body = encode({ v });
      expect(ours(body)).toEqual(theirs(body) as Record<string, unknown>);
    }
    const f32 = new Uint8Array([0x81, 0xa1, 0x76, 0xca, 0x3f, 0xc0, 0x00, 0x00]); // {v: float32 1.5}
    expect(ours(f32)).toEqual({ v: 1.5 });
  });

  test("refuses what the server must refuse, with a DecodeError", () => {
    const bad: Array<[string, Uint8Array]> = [
      ["empty", new Uint8Array(0)],
      ["truncated str", new Uint8Array([0x81, 0xa1, 0x74, 0xa4, 0x73, 0x65])],
      ["bytes after the value", new Uint8Array([0x80, 0x00])],
      ["0xc1", new Uint8Array([0x81, 0xa1, 0x74, 0xc1])],
      ["a map key that is a map", new Uint8Array([0x81, 0x80, 0x01])],
      ["a nil key", new Uint8Array([0x81, 0xc0, 0x01])],
      ["__proto__", encode({ ["__proto__"]: 1 } as object)],
      ["an array over the item limit", new Uint8Array([0xdc, 0x01, 0x01])],
      ["a map announcing 4 billion entries", new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff])],
      ["a str over the byte limit", new Uint8Array([0xdb, 0x01, 0x00, 0x00, 0x01])],
    ];
    // encode() writes "__proto__" as an own key only when the object has one:
    bad[6] = ["__proto__", new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01])];
    for (const [what, body] of bad) {
      expect({ what, thrown: run(ours, body).ok ? "nothing" : "thrown" }).toEqual({ what, thrown: "thrown" });
      expect(() => ours(body)).toThrow(DecodeError);
      expect({ what, theirs: run(theirs, body).ok }).toEqual({ what, theirs: false });
    }
    expect(Object.getPrototypeOf(run(ours, encode({ a: 1 })).ok ? ours(encode({ a: 1 })) : null)).toBe(Object.prototype);
  });

  test("short strings come from a cache of 512 slots: 5,000 different ones, twice, each decoded as itself", () => {
    const r = new Rng(fuzzSeed());
    const words = Array.from({ length: 5000 }, (_, i) => `${i.toString(36)}${"ké".repeat(r.int(0, 5))}`.slice(0, r.int(1, 16)));
    for (let round = 0; round < 2; round++)
      for (const w of words) {
        const body = encode({ [w]: w, t: w });
        expect(ours(body)).toEqual(theirs(body) as Record<string, unknown>);
      }
  });

  test("a bin is a view of the body, not a copy", () => {
    const body = encode({ data: new Uint8Array([1, 2, 3]) });
    const v = ours(body) as { data: Uint8Array };
    expect([...v.data]).toEqual([1, 2, 3]);
    expect(v.data.buffer).toBe(body.buffer);
  });
});
