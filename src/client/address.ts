// Server addresses: the client's `servers` option and the terminal client's
// `--host a:7777,b:7777`. Parsing and checking only, no I/O.
//
// One address is `host:port`, `host` (the default port), `[v6]:port` or `[v6]`.
// An IPv6 literal without brackets (`::1`) is taken whole as the host, with the
// default port: `::1:7777` is itself a valid IPv6 address, so a port after an
// IPv6 literal needs the brackets.
//
// TCP only (it uses node:net): the browser bundle does not import it. WebSocket
// URLs are checked in websocket.ts.
import { isIPv6 } from "node:net";
import { AddressError } from "./errors.ts";
import type { Server, ServerAddress, ServerInfo } from "./link.ts";

export { AddressError } from "./errors.ts";
export type { ServerAddress } from "./link.ts";

/** Host names and IPv4 addresses: letters, digits, `.`, `-`, `_`. */
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

function checkHost(host: string, where: string): void {
  if (host === "") throw new AddressError(`${where}: the host is empty`);
  if (isIPv6(host)) return;
  if (host.startsWith("[")) throw new AddressError(`${where}: write the IPv6 host without brackets in "host" ("::1", not "[::1]")`);
  if (host.includes("/")) throw new AddressError(`${where}: "${host}" is not a host (give host:port, no scheme or path)`);
  if (host.includes(":")) throw new AddressError(`${where}: "${host}" is not a host name or IP address`);
  if (!NAME_RE.test(host) || host.length > 253) throw new AddressError(`${where}: "${host}" is not a host name or IP address`);
}

function parsePort(s: string, where: string): number {
  const n = Number(s);
  if (!/^\d{1,5}$/.test(s) || n < 1 || n > 65535) throw new AddressError(`${where}: the port must be an integer from 1 to 65535, got "${s}"`);
  return n;
}

/** Parses one address (`host:port`, `host`, `[v6]:port`, `[v6]`, or a bare IPv6 literal); `defaultPort` fills a missing port. */
export function parseServer(text: string, defaultPort = 7777): ServerAddress {
  const s = text.trim();
  const where = `server address "${s}"`;
  if (s === "") throw new AddressError("a server address is empty");
  if (s.includes("/")) throw new AddressError(`${where}: give host:port, without a scheme or path`);
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) throw new AddressError(`${where}: "[" without "]"`);
    const host = s.slice(1, close);
    if (!isIPv6(host)) throw new AddressError(`${where}: "${host}" in brackets is not an IPv6 address`);
    const rest = s.slice(close + 1);
    if (rest === "") return { host, port: defaultPort };
    if (!rest.startsWith(":")) throw new AddressError(`${where}: expected ":port" after "]", got "${rest}"`);
    return { host, port: parsePort(rest.slice(1), where) };
  }
  const colons = s.split(":").length - 1;
  if (colons > 1) {
    // No brackets: a whole IPv6 literal, with the default port.
    if (isIPv6(s)) return { host: s, port: defaultPort };
    throw new AddressError(`${where}: not host:port; an IPv6 address with a port is written [addr]:port`);
  }
  if (colons === 0) {
    checkHost(s, where);
    return { host: s, port: defaultPort };
  }
  const at = s.indexOf(":");
  const host = s.slice(0, at);
  checkHost(host, where);
  return { host, port: parsePort(s.slice(at + 1), where) };
}

/**
 * Parses a comma-separated list of addresses (`"a:7777,b:7777,[::1]:7778"`), in order;
 * spaces around each are ignored. Throws AddressError on an empty list, an empty
 * entry or a bad address.
 */
export function parseServers(list: string, defaultPort = 7777): ServerAddress[] {
  if (list.trim() === "") throw new AddressError("the server address list is empty");
  return list.split(",").map((part, i) => {
    if (part.trim() === "") throw new AddressError(`the server address list "${list}" has an empty entry (number ${i + 1})`);
    return parseServer(part, defaultPort);
  });
}

/** Checks the `servers` option: a non-empty array of `{host, port}` with a usable host and a port from 1 to 65535. Returns a copy. */
export function checkServers(servers: unknown): ServerAddress[] {
  if (!Array.isArray(servers)) throw new AddressError("servers must be an array of {host, port}");
  if (servers.length === 0) throw new AddressError("servers is empty: give at least one {host, port}");
  return servers.map((a: unknown, i) => checkServer(a, `servers[${i}]`));
}

/** Checks one `{host, port}` entry (`where` names it in the message); returns a copy. */
export function checkServer(a: unknown, where: string): ServerAddress {
  if (typeof a !== "object" || a === null) throw new AddressError(`${where} must be {host, port}, got ${JSON.stringify(a)}`);
  const { host, port } = a as Record<string, unknown>;
  if (typeof host !== "string") throw new AddressError(`${where}.host must be a string`);
  checkHost(host, where);
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new AddressError(`${where}.port must be an integer from 1 to 65535, got ${JSON.stringify(port)}`);
  }
  return { host, port };
}

/** `host:port`, or `[v6]:port`; a WebSocket server is its URL. */
export function formatServer(a: Server | ServerInfo): string {
  if ("url" in a && typeof a.url === "string") return a.url;
  if (!("host" in a)) return "(no address)";
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** `a:1, b:2`. */
export function formatServers(list: readonly (Server | ServerInfo)[]): string {
  return list.map(formatServer).join(", ");
}
