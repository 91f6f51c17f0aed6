// A fresh `cid` (PROTOCOL.md §3.4): unique per sender, and increasing within one client.
//
// The server keeps every sender's cids in a unique index, to answer a repeat as the
// original (§3.4). A random cid (a UUID) lands at a random place of that index, so each
// new message changes a page of its own, read and written back whole: on SQLite that cost
// a message 11 us more than one without a cid, at 200k messages stored, and more as the
// index grows. A cid that increases goes at the end of its sender's part of the index,
// where one page takes many (docs/BUN.md, "SQLite: costs of a message's commit").
//
// So a cid is the time in ms (base 36, 9 digits), a counter of this client (base 36, 6
// digits), and 8 random base-36 digits that tell apart two clients of one user started in
// the same ms: "lq3x9k2a1-00001z-8f3k2j1m". It increases with every call of one client
// (while the clock does not go back), and is unique whatever the clock does: the counter
// never repeats within a client (2 billion cids before it wraps), nor the random part across
// clients but by chance (1 in 2.8 trillion). crypto.getRandomValues exists in Bun and in
// every browser, also in a page that is not a secure context.

const random = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => (b % 36).toString(36)).join("");
let counter = 0;

export function newCid(): string {
  counter = (counter + 1) % 36 ** 6;
  return `${Date.now().toString(36).padStart(9, "0")}-${counter.toString(36).padStart(6, "0")}-${random}`;
}
