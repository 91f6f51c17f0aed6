import { describe, expect, test } from "bun:test";
import { ConfigError, DEFAULTS, helpText, parseConfig } from "../src/config.ts";

describe("config", () => {
  test("defaults when nothing is given", () => {
    expect(parseConfig([], {})).toEqual(DEFAULTS);
  });

  test("environment overrides defaults, flags override environment, both --flag v and --flag=v", () => {
    const c = parseConfig(["--port", "9001", "--db=:memory:"], { TCPCHAT_PORT: "8000", TCPCHAT_HOST: "0.0.0.0" });
    expect(c.port).toBe(9001);
    expect(c.host).toBe("0.0.0.0");
    expect(c.db).toBe(":memory:");
    expect(parseConfig([], { TCPCHAT_MAX_FRAME: "2048", TCPCHAT_MAX_TEXT: "100" }).maxFrame).toBe(2048);
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
