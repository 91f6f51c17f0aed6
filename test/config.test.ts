import { describe, expect, test } from "bun:test";
import { ConfigError, DEFAULTS, envOf, flagOf, helpText, markdownTable, OPTIONS, parseConfig } from "../src/config.ts";

describe("config", () => {
  test("defaults when nothing is given", () => {
    expect(parseConfig([], {})).toEqual(DEFAULTS);
  });

  test("environment overrides defaults, flags override environment, both --flag v and --flag=v", () => {
    const c = parseConfig(["--port", "9001", "--db=:memory:"], { TCPCHAT_PORT: "8000", TCPCHAT_HOST: "0.0.0.0" });
    expect(c.port).toBe(9001);
    expect(c.host).toBe("0.0.0.0");
    expect(c.db).toBe(":memory:");
    const small = { TCPCHAT_MAX_FRAME: "2048", TCPCHAT_MAX_TEXT: "100", TCPCHAT_MAX_GROUP_SIZE: "30", TCPCHAT_MAX_GROUPS_PER_USER: "20" };
    expect(parseConfig([], small).maxFrame).toBe(2048);
  });

  test("bad values are clear errors", () => {
    const bad: Array<[string[], Record<string, string>, RegExp]> = [
      [["--port", "x"], {}, /--port.*integer/],
      [["--port", "70000"], {}, /65535/],
      [["--nope"], {}, /unknown option/],
      [["--db"], {}, /needs a value/],
      [[], { TCPCHAT_PORT: "-1" }, /TCPCHAT_PORT/],
      [["--durability", "maybe"], {}, /normal.*full/],
      [["--max-frame", "100"], {}, /max-frame/],
      [["--max-queue", "1000"], {}, /max-queue/],
      [["--max-page", "0"], {}, /max-page/],
      [["--max-frame", "65536"], {}, /max-group-size x 64 bytes/],
      [["--max-frame", "65536", "--max-group-size", "1000"], {}, /max-groups-per-user x 96 bytes/],
    ];
    for (const [argv, env, re] of bad) {
      expect(() => parseConfig(argv, env)).toThrow(ConfigError);
      expect(() => parseConfig(argv, env)).toThrow(re);
    }
  });

  test("--help lists every option with its environment variable and default", () => {
    const h = helpText();
    for (const flag of ["--host", "--port", "--db", "--max-frame", "--max-queue", "--durability"]) expect(h).toContain(flag);
    expect(h).toContain("TCPCHAT_PORT");
    expect(h).toContain("default 7777");
  });
});

describe("config: one source", () => {
  test("README's configuration table is the one derived from OPTIONS (bun run scripts/config-table.ts)", async () => {
    const readme = await Bun.file(new URL("../README.md", import.meta.url)).text();
    expect(readme).toContain(markdownTable());
  });

  test("every option has a flag and an environment variable that set it", () => {
    for (const key of Object.keys(OPTIONS) as Array<keyof typeof OPTIONS>) {
      const def = DEFAULTS[key];
      if (typeof def !== "number") continue;
      // A value that passes validation for every int option: the default itself, via flag and via env.
      expect(parseConfig([flagOf(key), String(def)])[key]).toBe(def);
      expect(parseConfig([], { [envOf(key)]: String(def) })[key]).toBe(def);
    }
    expect(flagOf("maxConnsPerAddr")).toBe("--max-conns-per-addr");
    expect(envOf("maxConnsPerAddr")).toBe("TCPCHAT_MAX_CONNS_PER_ADDR");
  });
});
