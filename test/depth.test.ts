import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { withinDepth } from "../src/protocol/depth.ts";

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
    const good = encode({ t: "send", group: "g", text: "hello", file: { name: "a", type: "b", data: new Uint8Array(10) } });
    for (let i = 0; i < good.length; i++) expect(typeof withinDepth(good.subarray(0, i), 16)).toBe("boolean");
    let x = 12345;
    for (let k = 0; k < 2000; k++) {
      const g = new Uint8Array(64).map(() => ((x = (x * 1103515245 + 12345) >>> 0) >>> 24));
      expect(typeof withinDepth(g, 16)).toBe("boolean");
    }
  });
});
