import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { scanBody, withinDepth } from "../src/protocol/depth.ts";
import { decodeStrict, enc, hex, type LenFmt, type W } from "./helpers/fuzz-msgpack.ts";
import { randomBody, readFuzzDir, Rng } from "./helpers/fuzz-gen.ts";

function nested(depth: number, leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? { k: v } : [v];
  return v;
}

describe("withinDepth", () => {
  test("counts nesting of arrays and maps exactly", () => {
    for (const d of [0, 1, 2, 5, 16, 17, 40]) {
      const b = encode(nested(d));
      expect(withinDepth(b, 16)).toBe(d <= 16);
    }
  });

  test("siblings do not add depth; strings, binaries, ints, floats, ext and wide containers are skipped right", () => {
    const wide = Array.from({ length: 300 }, (_, i) => ({ i, s: "x".repeat(i), b: new Uint8Array(i), f: i / 3, n: -i * 1e10 }));
    const v = { t: "send", list: wide, big: "y".repeat(70000), bin: new Uint8Array(70000), deep: nested(10), when: new Date(0) };
    const b = encode(v);
    expect(withinDepth(b, 13)).toBe(true); // map > deep (10 more) + 1 for the top map + leaf levels
    expect(withinDepth(b, 10)).toBe(false);
  });

  test("hand-made hostile input: 4 MiB of one-element arrays is refused quickly", () => {
    const b = new Uint8Array(4 * 1024 * 1024).fill(0x91);
    expect(withinDepth(b, 16)).toBe(false);
  });

  test("truncated or garbage input does not throw", () => {
    // a valid send with a file (PROTOCOL.md §3.4: it names an upload), and a valid chunk with its binary (§3.9)
    for (const good of [
      encode({ t: "send", group: "g", text: "hello", file: { upload: "AAAAAAAAAAAAAAAAAAAAAA", name: "a", type: "b" } }),
      encode({ t: "chunk", upload: "AAAAAAAAAAAAAAAAAAAAAA", offset: 0, data: new Uint8Array(10) }),
    ])
      for (let i = 0; i < good.length; i++) expect(typeof withinDepth(good.subarray(0, i), 16)).toBe("boolean");
    let x = 12345;
    for (let k = 0; k < 2000; k++) {
      const g = new Uint8Array(64).map(() => ((x = (x * 1103515245 + 12345) >>> 0) >>> 24));
      expect(typeof withinDepth(g, 16)).toBe("boolean");
    }
  });
});

// PROTOCOL.md §2: every str is valid UTF-8, keys and values at any depth, or the frame gets bad_request.
describe("scanBody: depth and strict UTF-8 in one pass", () => {
  const bytes = (...xs: number[]) => new Uint8Array(xs);
  /** A str of raw bytes between ASCII text, in the given length format. */
  const rawStr = (mid: Uint8Array, fmt?: LenFmt): W => ({ $str: new Uint8Array([...Buffer.from("ab"), ...mid, ...Buffer.from("cd")]), fmt });
  const send = (text: W) => enc({ t: "send", id: 7, group: "g", text });

  const INVALID: Array<[string, Uint8Array]> = [
    ["stray bytes a\\xff\\xfe", bytes(0xff, 0xfe)],
    ["a lone continuation byte", bytes(0x80)],
    ["overlong '/' in 2 bytes (c0 af)", bytes(0xc0, 0xaf)],
    ["overlong NUL (c0 80)", bytes(0xc0, 0x80)],
    ["overlong in 3 bytes (e0 80 af)", bytes(0xe0, 0x80, 0xaf)],
    ["overlong in 4 bytes (f0 80 80 af)", bytes(0xf0, 0x80, 0x80, 0xaf)],
    ["a high surrogate U+D800 (ed a0 80)", bytes(0xed, 0xa0, 0x80)],
    ["a low surrogate U+DFFF (ed bf bf)", bytes(0xed, 0xbf, 0xbf)],
    ["a surrogate pair encoded as two 3-byte forms (CESU-8)", bytes(0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80)],
    ["a truncated 3-byte sequence (e2 82) before ASCII", bytes(0xe2, 0x82)],
    ["a truncated 4-byte sequence (f0 9f 8e)", bytes(0xf0, 0x9f, 0x8e)],
    ["U+110000 (f4 90 80 80), above U+10FFFF", bytes(0xf4, 0x90, 0x80, 0x80)],
    ["lead byte f5", bytes(0xf5, 0x80, 0x80, 0x80)],
    ["a 5-byte form (f8 88 80 80 80)", bytes(0xf8, 0x88, 0x80, 0x80, 0x80)],
  ];

  test("invalid UTF-8 in a value is bad_utf8, in every str length format", () => {
    for (const [name, mid] of INVALID)
      for (const fmt of ["fix", "8", "16", "32"] as const) expect({ name, fmt, v: scanBody(send(rawStr(mid, fmt)), 8) }).toEqual({ name, fmt, v: "bad_utf8" });
  });

  test("a truncated sequence at the very end of a str is bad_utf8", () => {
    expect(scanBody(send({ $str: bytes(0x61, 0xe2, 0x82) }), 8)).toBe("bad_utf8");
    expect(scanBody(send({ $str: bytes(0xf0) }), 8)).toBe("bad_utf8");
  });

  test("the same characters, valid, pass: multilingual text, emoji, the largest code point, long strings", () => {
    const texts = [
      "żółć gęślą jaźń",
      "日本語のテキスト",
      "العربية",
      "Ελληνικά",
      "emoji 🎉👩‍👩‍👧 and U+10FFFF \u{10FFFF}",
      "U+FFFD \uFFFD and U+E000 \uE000",
      "",
      "x".repeat(40) + "é",
      "ü".repeat(70000),
    ];
    for (const text of texts) expect(scanBody(send(text), 8)).toBe("ok");
    expect(scanBody(enc({ t: "send", group: "g", file: { upload: "AAAAAAAAAAAAAAAAAAAAAA", name: "résumé 履歴書.pdf", type: "application/pdf" }, cid: "ключ-1" }), 8)).toBe("ok");
  });

  test("invalid bytes in a key: of the request map, of a nested map, of a map in an array", () => {
    const badKey: W = { $str: bytes(0x6b, 0xc0, 0xaf) };
    expect(scanBody(enc({ $map: [["t", "ping"], [badKey, 1]] }), 8)).toBe("bad_utf8");
    expect(scanBody(enc({ t: "send", group: "g", file: { $map: [["name", "a"], [badKey, "x"], ["data", new Uint8Array(1)]] } }), 8)).toBe("bad_utf8");
    expect(scanBody(enc({ t: "ping", extra: [1, [2, { $map: [[badKey, null]] }]] }), 8)).toBe("bad_utf8");
  });

  test("invalid bytes in a nested map's value (file.name, file.type) and deep in an unknown field", () => {
    const bad = rawStr(bytes(0xc0, 0xaf));
    expect(scanBody(enc({ t: "send", group: "g", file: { name: bad, type: "text/plain", data: new Uint8Array(3) } }), 8)).toBe("bad_utf8");
    expect(scanBody(enc({ t: "send", group: "g", file: { name: "a", type: bad, data: new Uint8Array(3) } }), 8)).toBe("bad_utf8");
    expect(scanBody(enc({ t: "ping", x: { a: { b: { c: [[[bad]]] } } } }), 8)).toBe("bad_utf8");
    // the same bytes inside a bin or an ext are not strings
    expect(scanBody(enc({ t: "ping", b: bytes(0xc0, 0xaf, 0xff), e: { $ext: 5, data: bytes(0xff, 0xfe) } }), 8)).toBe("ok");
  });

  test("too_deep wins over bad_utf8, wherever the bad string is", () => {
    const bad = rawStr(bytes(0xff));
    expect(scanBody(enc({ t: bad, x: nested(9) as W }), 8)).toBe("too_deep");
    expect(scanBody(enc({ x: nested(9) as W, t: bad }), 8)).toBe("too_deep");
    expect(scanBody(enc({ t: "ping", x: nested(9) as W }), 8)).toBe("too_deep");
    expect(scanBody(new Uint8Array(4 * 1024 * 1024).fill(0x91), 8)).toBe("too_deep");
  });

  test("a body that is not one well-formed value is left to the decoder (ok), whatever its strings hold", () => {
    const bad = send(rawStr(bytes(0xff)));
    expect(scanBody(bad, 8)).toBe("bad_utf8");
    // truncated anywhere, trailing bytes, the unused type byte 0xc1, more entries than the decoder allows
    for (let i = 0; i < bad.length; i++) expect(scanBody(bad.subarray(0, i), 8)).not.toBe("bad_utf8");
    expect(scanBody(new Uint8Array([...bad, 0x01]), 8)).toBe("ok");
    expect(scanBody(enc({ t: rawStr(bytes(0xff)), x: { $raw: bytes(0xc1) } }), 8)).toBe("ok");
    const wide = { $arr: Array.from({ length: 257 }, () => 0) };
    expect(scanBody(enc({ t: rawStr(bytes(0xff)), x: wide }), 8)).toBe("ok");
    expect(scanBody(enc({ t: rawStr(bytes(0xff)), x: wide }), 8, 300)).toBe("bad_utf8");
    expect(scanBody(enc({ t: rawStr(bytes(0xff)), x: { $map: Array.from({ length: 200 }, (_, i) => [i, i] as [W, W]) } }), 8)).toBe("bad_utf8");
    expect(scanBody(new Uint8Array(0), 8)).toBe("ok");
    // not a map: bad_frame (PROTOCOL.md §2.2, step 2) before any string is judged
    expect(scanBody(enc([rawStr(bytes(0xff))]), 8)).toBe("ok");
    expect(scanBody(enc(rawStr(bytes(0xff))), 8)).toBe("ok");
    expect(scanBody(enc({ $map: [["t", rawStr(bytes(0xff))]], fmt: "16" }), 8)).toBe("bad_utf8");
  });

  test("agrees with a strict TextDecoder on random byte strings", () => {
    const fatal = new TextDecoder("utf-8", { fatal: true });
    const rng = new Rng(0x7a11);
    let bad = 0;
    for (let k = 0; k < 5000; k++) {
      // mostly ASCII and well-formed sequences, with some random bytes mixed in
      const parts: number[] = [];
      const len = rng.int(0, 80);
      while (parts.length < len) {
        const x = rng.float();
        if (x < 0.5) parts.push(rng.int(0x20, 0x7e));
        else if (x < 0.8) parts.push(...Buffer.from(String.fromCodePoint(rng.pick([0xe9, 0x65e5, 0x1f389, 0xffff, 0x10ffff, 0xd7ff, 0xe000]))));
        else parts.push(rng.int(0x80, 0xff));
      }
      const raw = new Uint8Array(parts);
      let valid = true;
      try {
        fatal.decode(raw);
      } catch {
        valid = false;
      }
      if (!valid) bad++;
      expect({ raw: Buffer.from(raw).toString("hex"), v: scanBody(send({ $str: raw }), 8) }).toEqual({ raw: Buffer.from(raw).toString("hex"), v: valid ? "ok" : "bad_utf8" });
    }
    expect(bad).toBeGreaterThan(500);
  });

  test("agrees with the fuzz oracle's independent strict decoder on the fuzz generators' bodies", () => {
    // bad_utf8 exactly when the body is one well-formed map within the §2 limits with an invalid str
    const corpus = readFuzzDir("corpus").flatMap((f) => f.bodies);
    const rng = new Rng(0xb0d1);
    const seen = new Map<string, number>();
    for (let k = 0; k < 20000; k++) {
      const g = randomBody(rng, corpus, 4 * 1024 * 1024);
      const d = decodeStrict(g.body, 0);
      const v = scanBody(g.body, 8);
      seen.set(v, (seen.get(v) ?? 0) + 1);
      const tooDeep = d.info.maxEntries <= 256 && d.info.depthNonEmpty > 8;
      if (tooDeep) expect(v).toBe("too_deep");
      const want = d.ok && d.value.k === "map" && d.info.badUtf8 && d.info.maxEntries <= 256 && d.info.depthNonEmpty <= 8;
      if ((v === "bad_utf8") !== want) throw new Error(`${g.cat} ${hex(g.body, 200)}: scanBody ${v}, strict decoder ${JSON.stringify(d.ok ? d.info : d.error)}`);
    }
    expect(seen.get("bad_utf8")).toBeGreaterThan(100);
  });

  test("garbage does not throw", () => {
    const rng = new Rng(99);
    for (let k = 0; k < 3000; k++) expect(["ok", "too_deep", "bad_utf8"]).toContain(scanBody(rng.bytes(rng.int(0, 200)), 8));
  });

  test("speed sanity: a 4 MiB frame of many strings and one large binary (a chunk's data) is scanned in one pass (time printed, not asserted)", () => {
    const list = Array.from({ length: 250 }, (_, i) => ({ k: `ключ ${i}`, v: "ü".repeat(60), w: "plain ascii value" }));
    const big = enc({ t: "chunk", upload: "AAAAAAAAAAAAAAAAAAAAAA", offset: 0, text: "日本語".repeat(20000), list, data: new Uint8Array(3_500_000) });
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) expect(scanBody(big, 8)).toBe("ok");
    const ms = (performance.now() - t0) / 20;
    const t1 = performance.now();
    decode(big);
    console.log(`scanBody: ${(big.length / 1e6).toFixed(1)} MB body with ${list.length * 6 + 10} strings in ${ms.toFixed(3)} ms (decode: ${(performance.now() - t1).toFixed(3)} ms)`);
  });
});
