// A fresh `cid` (PROTOCOL.md §3.4): a random UUID. crypto.randomUUID exists in Bun and in
// browsers, but a browser gives it only to secure contexts (https, localhost): a page
// opened as http://192.168.1.5:7780/ has crypto.getRandomValues alone, so the same UUID v4
// is made from that.
export function newCid(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40; // version 4
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
