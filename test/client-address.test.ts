// Server addresses, without sockets: the text form (`a:7777,b:7777`, `[::1]:7777`)
// the terminal client's --host takes and parseServers() makes, the `servers`
// option's checks, and the errors for lists that cannot be used.
import { describe, expect, test } from "bun:test";
import { AddressError, checkServers, formatServer, formatServers, parseServer, parseServers } from "../src/client/address.ts";
import { parseArgs, UsageError } from "../src/client/cli/args.ts";
import { ChatClient } from "../src/client/index.ts";

function failure(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("did not throw");
}

describe("parseServer", () => {
  test("host:port, host alone (the default port), names and IPv4", () => {
    expect(parseServer("a:7777")).toEqual({ host: "a", port: 7777 });
    expect(parseServer("chat-1.example.com:1")).toEqual({ host: "chat-1.example.com", port: 1 });
    expect(parseServer("10.0.0.2:65535")).toEqual({ host: "10.0.0.2", port: 65535 });
    expect(parseServer("localhost")).toEqual({ host: "localhost", port: 7777 });
    expect(parseServer("localhost", 9000)).toEqual({ host: "localhost", port: 9000 });
    expect(parseServer("  b:2  ")).toEqual({ host: "b", port: 2 });
  });

  test("IPv6: in brackets with or without a port; bare, whole, with the default port", () => {
    expect(parseServer("[::1]:7777")).toEqual({ host: "::1", port: 7777 });
    expect(parseServer("[::1]", 9000)).toEqual({ host: "::1", port: 9000 });
    expect(parseServer("[2001:db8::1]:8080")).toEqual({ host: "2001:db8::1", port: 8080 });
    expect(parseServer("[fe80::1%eth0]:9")).toEqual({ host: "fe80::1%eth0", port: 9 });
    expect(parseServer("[::ffff:10.0.0.1]:5")).toEqual({ host: "::ffff:10.0.0.1", port: 5 });
    expect(parseServer("::1", 9000)).toEqual({ host: "::1", port: 9000 });
    // `::1:7777` is a valid IPv6 address itself: a port needs the brackets
    expect(parseServer("::1:7777", 9000)).toEqual({ host: "::1:7777", port: 9000 });
  });

  test("bad addresses: AddressError saying which and why", () => {
    const cases: [string, string][] = [
      ["", "a server address is empty"],
      ["a:0", 'server address "a:0": the port must be an integer from 1 to 65535, got "0"'],
      ["a:65536", "from 1 to 65535"],
      ["a:", 'got ""'],
      ["a:x", 'got "x"'],
      ["a:-1", 'got "-1"'],
      ["a:070000", 'got "070000"'],
      [":7777", "the host is empty"],
      ["[::1", '"[" without "]"'],
      ["[::1]x", 'expected ":port" after "]", got "x"'],
      ["[::1]:", 'got ""'],
      ["[1.2.3.4]:5", '"1.2.3.4" in brackets is not an IPv6 address'],
      ["[]:5", "is not an IPv6 address"],
      ["a:1:2", "an IPv6 address with a port is written [addr]:port"],
      ["tcp://a:1", "without a scheme or path"],
      ["a b:1", '"a b" is not a host name or IP address'],
      ["-a:1", "is not a host name"],
    ];
    for (const [text, msg] of cases) {
      const e = failure(() => parseServer(text));
      expect(e).toBeInstanceOf(AddressError);
      expect(e).toBeInstanceOf(TypeError);
      expect(e.message).toContain(msg);
    }
  });
});

describe("parseServers", () => {
  test("a comma-separated list, in order, mixed forms, spaces ignored", () => {
    expect(parseServers("a:7777,b:7777")).toEqual([
      { host: "a", port: 7777 },
      { host: "b", port: 7777 },
    ]);
    expect(parseServers(" a , [::1]:2,10.0.0.1:3 ", 9)).toEqual([
      { host: "a", port: 9 },
      { host: "::1", port: 2 },
      { host: "10.0.0.1", port: 3 },
    ]);
    expect(parseServers("127.0.0.1")).toEqual([{ host: "127.0.0.1", port: 7777 }]);
    // the same address twice is allowed (it is tried twice per round)
    expect(parseServers("a:1,a:1").length).toBe(2);
  });

  test("an empty list, an empty entry, a bad entry", () => {
    expect(failure(() => parseServers("")).message).toBe("the server address list is empty");
    expect(failure(() => parseServers("  ")).message).toBe("the server address list is empty");
    expect(failure(() => parseServers("a:1,,b:2")).message).toBe('the server address list "a:1,,b:2" has an empty entry (number 2)');
    expect(failure(() => parseServers("a:1,")).message).toContain("empty entry (number 2)");
    expect(failure(() => parseServers("a:1,b:0")).message).toContain('server address "b:0"');
    for (const bad of ["", "a:1,,b", "a:1,b:x"]) expect(failure(() => parseServers(bad))).toBeInstanceOf(AddressError);
  });

  test("formatServer writes what parseServer reads", () => {
    const list = parseServers("a:1,[::1]:2,10.0.0.1:3,[fe80::1%eth0]:4");
    expect(list.map(formatServer)).toEqual(["a:1", "[::1]:2", "10.0.0.1:3", "[fe80::1%eth0]:4"]);
    expect(parseServers(list.map(formatServer).join(","))).toEqual(list);
    expect(formatServers(list)).toBe("a:1, [::1]:2, 10.0.0.1:3, [fe80::1%eth0]:4");
  });
});

describe("the servers option", () => {
  test("checkServers: a non-empty array of {host, port}, copied", () => {
    const given = [{ host: "a", port: 1, extra: true }, { host: "::1", port: 2 }];
    expect(checkServers(given)).toEqual([
      { host: "a", port: 1 },
      { host: "::1", port: 2 },
    ]);
    const cases: [unknown, string][] = [
      [undefined, "servers must be an array of {host, port}"],
      ["a:1,b:2", "servers must be an array of {host, port}"],
      [[], "servers is empty: give at least one {host, port}"],
      [[null], "servers[0] must be {host, port}, got null"],
      [[{ host: "a", port: 1 }, { host: "b" }], "servers[1].port must be an integer from 1 to 65535, got undefined"],
      [[{ host: "a", port: 1.5 }], "got 1.5"],
      [[{ host: "a", port: 0 }], "got 0"],
      [[{ host: "a", port: "7777" }], 'got "7777"'],
      [[{ port: 1 }], "servers[0].host must be a string"],
      [[{ host: "", port: 1 }], "servers[0]: the host is empty"],
      [[{ host: "[::1]", port: 1 }], 'write the IPv6 host without brackets in "host"'],
      [[{ host: "a:1", port: 1 }], '"a:1" is not a host name or IP address'],
    ];
    for (const [v, msg] of cases) {
      const e = failure(() => checkServers(v));
      expect(e).toBeInstanceOf(AddressError);
      expect(e.message).toContain(msg);
    }
  });

  test("ChatClient.connect rejects a bad list, and servers together with host or port, before dialing", async () => {
    const empty = await ChatClient.connect({ servers: [] }).catch((e) => e);
    expect(empty).toBeInstanceOf(AddressError);
    expect(empty.message).toContain("servers is empty");
    const badPort = await ChatClient.connect({ servers: [{ host: "127.0.0.1", port: 70000 }] }).catch((e) => e);
    expect(badPort).toBeInstanceOf(AddressError);
    for (const both of [
      { servers: [{ host: "127.0.0.1", port: 1 }], port: 7777 },
      { servers: [{ host: "127.0.0.1", port: 1 }], host: "127.0.0.1" },
    ]) {
      const e = await ChatClient.connect(both).catch((e) => e);
      expect(e).toBeInstanceOf(AddressError);
      expect(e.message).toBe("give either servers or host and port, not both");
    }
  });
});

describe("the terminal client's --host", () => {
  test("one address or a list; --port fills in addresses without one", () => {
    expect(parseArgs(["--user", "ann"]).servers).toEqual([{ host: "127.0.0.1", port: 7777 }]);
    expect(parseArgs(["--user", "ann", "--host", "10.0.0.1", "--port", "9000"]).servers).toEqual([{ host: "10.0.0.1", port: 9000 }]);
    expect(parseArgs(["--user", "ann", "--host", "a:7777,b:7778"]).servers).toEqual([
      { host: "a", port: 7777 },
      { host: "b", port: 7778 },
    ]);
    expect(parseArgs(["--user", "ann", "--host=a,[::1]:2,b", "--port", "9"]).servers).toEqual([
      { host: "a", port: 9 },
      { host: "::1", port: 2 },
      { host: "b", port: 9 },
    ]);
    expect(parseArgs(["--user", "ann", "--host", "::1"]).servers).toEqual([{ host: "::1", port: 7777 }]);
  });

  test("a bad --host is a usage error naming the flag", () => {
    for (const [host, msg] of [
      ["a:1,,b:2", '--host: the server address list "a:1,,b:2" has an empty entry (number 2)'],
      ["a:0", '--host: server address "a:0": the port must be an integer from 1 to 65535'],
      ["[::1:7777", '--host: server address "[::1:7777": "[" without "]"'],
      ["", "--host: the server address list is empty"],
    ] as const) {
      const e = failure(() => parseArgs(["--user", "ann", "--host", host]));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toContain(msg);
    }
    // --help needs no valid address
    expect(parseArgs(["--host", "a:0", "--help"]).help).toBe(true);
  });
});
