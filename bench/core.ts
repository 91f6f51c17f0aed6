// The server core's own CPU per message, in process: ChatCore over connections whose
// "kernel" takes every byte at once and keeps none, so no socket, no syscall and no load
// generator is in the figure, only what the server's code does with a `send`: decode,
// check, queue, commit, acknowledge, encode the push, fan it out through the writers.
//
//   npx bun run bench/core.ts                      # 8 groups of 1, memory store and SQLite
//   npx bun run bench/core.ts --members 100 --groups 1 --store sqlite-file
//   npx bun --cpu-prof --cpu-prof-dir=prof run bench/core.ts --store memory
//
// Each round hands every sender's connection one chunk of `--batch` send frames (as one
// socket read would) and waits for the turn to end (the batch is committed, acknowledged
// and delivered). CPU is the process's (user + system), so it includes the garbage
// collector's threads; wall is the elapsed time.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/config.ts";
import { ChatCore } from "../src/core/chat.ts";
import { encodeFrame } from "../src/protocol/codec.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { Store } from "../src/store/store.ts";
import { type FakeConn, loggedIn, nextId, quiet, turn } from "../test/helpers/fake-conn.ts";
import { concat } from "../test/helpers/wire.ts";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
};
const groups = Number(arg("--groups", "8"));
const members = Number(arg("--members", "1"));
const rounds = Number(arg("--rounds", "2000"));
const batch = Number(arg("--batch", "64"));
const size = Number(arg("--size", "100"));
const withCid = args.includes("--cid");
const stores = arg("--store", "memory,sqlite").split(",");

const CONFIG = parseConfig([
  ...["--rate-msgs", "0", "--rate-bytes", "0", "--rate-msgs-addr", "0", "--rate-bytes-addr", "0", "--max-conns-per-addr", "0", "--max-refused", "0"],
  ...["--hash-memory", "64", "--hash-time", "1", "--presence-delay", "0", "--login-free", "0", "--logins-per-user", "0", "--register-per-addr", "0"],
  ...["--max-group-size", String(Math.max(1000, members + 1)), "--http-port", "off"],
]);

async function measure(kind: string): Promise<void> {
  let dir: string | undefined;
  let store: Store;
  if (kind === "memory") store = new MemoryStore();
  else if (kind === "sqlite") store = new SqliteStore({ path: ":memory:", durability: "normal" });
  else if (kind === "sqlite-file") {
    dir = mkdtempSync(join(tmpdir(), "tcpchat-core-"));
    store = new SqliteStore({ path: join(dir, "chat.db"), durability: "normal" });
  } else throw new Error(`--store: memory, sqlite or sqlite-file, not ${kind}`);
  const core = await ChatCore.open(CONFIG, store, quiet);
  const senders: FakeConn[] = [];
  const everyone: FakeConn[] = [];
  for (let g = 0; g < groups; g++) {
    const s = await loggedIn(core, `s${g}`);
    await s.req({ t: "create", id: nextId(), group: `g${g}` });
    senders.push(s);
    everyone.push(s);
    for (let m = 0; m < members; m++) {
      const r = await loggedIn(core, `r${g}x${m}`);
      await r.req({ t: "join", id: nextId(), group: `g${g}` });
      everyone.push(r);
    }
  }
  // From here on the connections keep nothing: the "kernel" takes every write whole.
  let bytesOut = 0;
  for (const c of everyone) (c as unknown as { write: (d: Uint8Array) => number }).write = (d) => ((bytesOut += d.length), d.length);
  let seq = 0;
  const chunkFor = (g: number) => {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < batch; i++) {
      const text = "x".repeat(size);
      frames.push(encodeFrame(withCid ? { t: "send", id: i, group: `g${g}`, text, cid: `${g}.${String(seq++).padStart(10, "0")}` } : { t: "send", id: i, group: `g${g}`, text }));
    }
    return concat(frames);
  };
  const warm = Math.min(200, Math.floor(rounds / 10));
  // Without cids the same chunks serve every round; cids must be new each round.
  const same = withCid ? undefined : senders.map((_, g) => chunkFor(g));
  const run = async (n: number) => {
    for (let r = 0; r < n; r++) {
      const chunks = same ?? senders.map((_, g) => chunkFor(g));
      for (let g = 0; g < groups; g++) core.data(senders[g]!.session, chunks[g]!);
      await turn();
    }
    await turn();
  };
  await run(warm);
  const before = process.cpuUsage();
  const t0 = performance.now();
  await run(rounds);
  const cpu = process.cpuUsage(before);
  const wall = performance.now() - t0;
  const msgs = rounds * groups * batch;
  const cpuUs = cpu.user + cpu.system;
  console.log(
    `${kind.padEnd(11)} ${groups} group(s) of ${members}, ${batch} sends a turn${withCid ? ", with cid" : ""}: ${(cpuUs / msgs).toFixed(2)} us CPU per message, ${(cpuUs / (msgs * members)).toFixed(3)} per delivery; wall ${((wall * 1000) / msgs).toFixed(2)} us per message (${msgs} messages, ${(bytesOut / 1e6).toFixed(0)} MB written)`,
  );
  await core.shutdown();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

for (const kind of stores) await measure(kind);
process.exit(0);
