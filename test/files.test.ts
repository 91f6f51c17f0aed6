// Files out of band (PROTOCOL.md §3.9) on the real server, what the e2e suite cannot set up:
// the limits (--max-file, --file-quota, --max-uploads) and a hundred clients downloading one
// large file at once while the server's memory is watched.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { sha256Hex, TestClient } from "./helpers/client.ts";
import { type RunningServer, startServer, TEST_ARGS, tempDir } from "./helpers/server.ts";

const MiB = 1024 * 1024;
const tmp = tempDir();
const servers: RunningServer[] = [];
const clients: TestClient[] = [];
let dbs = 0;

afterAll(async () => {
  for (const c of clients) if (!c.closed) c.close();
  for (const s of servers) if (s.proc.exitCode === null) await s.stop();
  tmp.cleanup();
});

async function server(args: string[]): Promise<RunningServer> {
  const srv = await startServer(["--db", join(tmp.dir, `f${++dbs}.db`), ...TEST_ARGS, ...args]);
  servers.push(srv);
  return srv;
}

async function user(srv: RunningServer, name: string): Promise<TestClient> {
  const c = await TestClient.connect(srv.port);
  clients.push(c);
  await c.register(name);
  await c.login(name);
  return c;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) / 1024;
}

const bytesOf = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 13 + seed + (i >> 10)) & 0xff);

describe("limits", () => {
  test("--max-file refuses too_large; --file-quota and --max-uploads refuse quota, saying which; deleting frees the quota", async () => {
    const srv = await server(["--max-file", "100000", "--file-quota", "250000", "--max-uploads", "3"]);
    const a = await user(srv, "ann");
    const big = await a.request({ t: "upload", size: 100_001, sha256: sha256Hex(new Uint8Array(1)) });
    expect(big).toMatchObject({ code: "too_large" });
    expect(big.msg).toContain("--max-file");
    const one = await a.sendFile({ user: "ann" }, "one", "", bytesOf(100_000, 1));
    await a.upload(bytesOf(100_000, 2)); // not sent: counts too
    const over = await a.request({ t: "upload", size: 50_001, sha256: sha256Hex(bytesOf(50_001, 3)) });
    expect(over).toMatchObject({ code: "quota" });
    expect(over.msg).toContain("--file-quota");
    expect(over.msg).toContain("200000");
    await a.upload(bytesOf(50_000, 3)); // exactly the quota
    // deleting a message with a file frees what it took
    await a.ok({ t: "delete", user: "ann", mid: one.mid });
    await a.ok({ t: "upload", size: 10, sha256: sha256Hex(bytesOf(10, 4)) }); // the third upload not sent
    const many = await a.request({ t: "upload", size: 10, sha256: sha256Hex(bytesOf(10, 5)) });
    expect(many).toMatchObject({ code: "quota" });
    expect(many.msg).toContain("--max-uploads");
    // asking again for one of the user's own uploads is no new upload
    expect((await a.ok({ t: "upload", size: 10, sha256: sha256Hex(bytesOf(10, 4)) })).offset).toBe(0);
    // another user has their own quota
    const b = await user(srv, "bob");
    expect((await b.ok({ t: "upload", size: 100_000, sha256: sha256Hex(bytesOf(100_000, 6)) })).offset).toBe(0);
    // the limits are told at login
    const c = await TestClient.connect(srv.port);
    clients.push(c);
    const r = await c.ok({ t: "login", user: "bob", pass: "password1" });
    expect(r.limits).toMatchObject({ max_file: 100_000, file_quota: 250_000, max_chunk: 1024 * 1024 });
  });

  test("a chunk over max_chunk is a bad_request; a download's len is cut to it", async () => {
    const srv = await server(["--max-frame", String(64 * 1024), "--max-queue", String(1024 * 1024), "--max-group-size", "1000", "--max-groups-per-user", "600"]);
    const a = await user(srv, "ann");
    const data = bytesOf(200_000, 7);
    const up = await a.ok({ t: "upload", size: data.length, sha256: sha256Hex(data) });
    const max = 64 * 1024 - 1024;
    expect(await a.request({ t: "chunk", upload: up.upload, offset: 0, data: data.subarray(0, max + 1) })).toMatchObject({ code: "bad_request" });
    for (let off = 0; off < data.length; off += max) await a.ok({ t: "chunk", upload: up.upload, offset: off, data: data.subarray(off, off + max) });
    const r = await a.ok({ t: "send", user: "ann", file: { upload: up.upload, name: "x", type: "" } });
    const d = await a.ok({ t: "download", mid: r.mid, len: 10 * MiB });
    expect((d.data as Uint8Array).length).toBe(max);
  });
});

describe("memory", () => {
  test("100 clients download one 16 MiB file at once, each a window of two 1 MiB chunks: the server's memory stays far below what it sends", async () => {
    const srv = await server(["--rate-bytes", "0", "--rate-msgs", "0", "--rate-bytes-addr", "0", "--rate-msgs-addr", "0", "--max-group-size", "200"]);
    const owner = await user(srv, "owner");
    await owner.ok({ t: "create", group: "big" });
    const SIZE = 16 * MiB;
    const data = bytesOf(SIZE, 9);
    const sha = sha256Hex(data);
    const upload = await owner.upload(data, MiB);
    const members: TestClient[] = [];
    for (let i = 0; i < 100; i++) {
      const c = await user(srv, `m${i}`);
      await c.ok({ t: "join", group: "big" });
      members.push(c);
    }
    const sent = await owner.ok({ t: "send", group: "big", text: "the file", file: { upload, name: "big.bin", type: "" } });
    for (const c of members) {
      const m = await c.waitFor((x) => x.t === "msg" && x.mid === sent.mid);
      expect(m.file).toEqual({ name: "big.bin", type: "", size: SIZE, sha256: sha });
      c.received.length = 0;
    }
    const base = rssMiB(srv.proc.pid);
    let peak = base;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, rssMiB(srv.proc.pid));
        await Bun.sleep(20);
      }
    })();
    const t0 = performance.now();
    const hashes = await Promise.all(
      members.map(async (c) => {
        const h = new Bun.CryptoHasher("sha256");
        for (let off = 0; off < SIZE; off += 2 * MiB) {
          const [x, y] = await Promise.all([
            c.ok({ t: "download", mid: sent.mid, offset: off }),
            c.ok({ t: "download", mid: sent.mid, offset: off + MiB }),
          ]);
          h.update(x.data as Uint8Array);
          h.update(y.data as Uint8Array);
          c.received.length = 0; // the test keeps no file either
        }
        return h.digest("hex");
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    sampling = false;
    await sampler;
    expect(hashes.every((h) => h === sha)).toBe(true);
    const total = (SIZE * members.length) / MiB;
    console.log(`100 downloads of 16 MiB: ${total} MiB in ${secs.toFixed(1)} s (${(total / secs).toFixed(0)} MiB/s); server RSS ${base.toFixed(0)} -> peak ${peak.toFixed(0)} MiB`);
    // 1600 MiB went out; holding a whole file per client would be 1600 MiB more. Each request holds
    // one chunk until it is written (and a connection's queue is bounded, PROTOCOL.md §2.4).
    expect(peak - base).toBeLessThan(400);
  }, 120_000);
});
