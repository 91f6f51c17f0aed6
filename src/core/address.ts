// The key per-address limits count by (PROTOCOL.md §2.4): an IPv4 address as it
// is, and an IPv6 address by its /64 prefix, since one host is routinely given a
// whole /64 and could otherwise take a new address per connection.
import { readFileSync } from "node:fs";

/** The limit key of a client address. IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as the IPv4 address. */
export function addressKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  const lower = ip.toLowerCase().replace(/%.*$/, ""); // drop a zone id
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1]!;
  const [head = "", tail] = lower.split("::", 2);
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined ? left : [...left, ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  const prefix = groups.slice(0, 4).map((g) => (Number.parseInt(g, 16) || 0).toString(16));
  while (prefix.length < 4) prefix.push("0");
  return `${prefix.join(":")}::/64`;
}

/** The soft limit on open file descriptors of this process, from /proc (Linux); undefined elsewhere. */
export function descriptorLimit(): number | undefined {
  try {
    const text = readFileSync("/proc/self/limits", "utf8");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (!m || m[1] === "unlimited") return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}
