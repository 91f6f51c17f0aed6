// Unit tests of the client's file transfers (src/client/files.ts, sha256.ts) against an
// in-memory stand-in for the server's side of PROTOCOL.md §3.9: uploads by size and
// SHA-256 resumed at the offset the server has, chunks refused with `conflict` at a
// wrong offset, downloads in chunks, a lost connection in the middle of each.
import { describe, expect, test } from "bun:test";
import { ConflictError, DisconnectedError, IntegrityError, NotFoundError, QuotaError, TooLargeError, chatErrorFrom } from "../src/client/errors.ts";
import { chunkSize, downloadChunks, type FileHost, type FileProgress, uploadFile } from "../src/client/files.ts";
import { PortableSha256, sha256 } from "../src/client/sha256.ts";
import type { LoginResult } from "../src/client/types.ts";

function hex(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

describe("sha256", () => {
  test("the portable SHA-256 agrees with Bun's for every length around the block edges, fed in any pieces", () => {
    for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65537]) {
      const b = random(n);
      const one = new PortableSha256();
      one.update(b);
      expect(one.hex()).toBe(hex(b));
      const pieces = new PortableSha256();
      for (let i = 0; i < n; ) {
        const k = 1 + ((i * 7919) % 97);
        pieces.update(b.subarray(i, i + k));
        i += k;
      }
      expect(pieces.hex()).toBe(hex(b));
    }
    expect(new PortableSha256().hex()).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const h = sha256();
    h.update(new TextEncoder().encode("abc"));
    expect(h.hex()).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

/** The server's side of §3.9, in memory, with a switch that drops "the connection". */
class FakeServer {
  uploads = new Map<string, { size: number; sha256: string; bytes: Uint8Array; offset: number; done: boolean }>();
  files = new Map<number, Uint8Array>();
  requests: string[] = [];
  /** Requests to answer before the connection drops (then each request fails with DisconnectedError until `reconnect`). */
  dropAfter = Infinity;
  down = false;
  private reconnected = Promise.withResolvers<void>();
  /** Downloads answer at most this many bytes (a server may give fewer than asked). */
  shortReplies = Infinity;
  quota = Infinity;
  limits: LoginResult["limits"] = { rate_msgs: 0, rate_bytes: 0, rate_burst: 0, max_frame: 4096 + 1024, max_text: 0, max_page: 0, max_file: 1 << 20, file_quota: 0, max_chunk: 4096 };

  reconnect(): void {
    this.down = false;
    this.dropAfter = Infinity;
    this.reconnected.resolve();
    this.reconnected = Promise.withResolvers();
  }

  host(): FileHost {
    return {
      maxRequestFrame: 1 << 20,
      limits: () => this.limits,
      ready: () => (this.down ? this.reconnected.promise : Promise.resolve()),
      request: async (req) => {
        await Bun.sleep(0);
        if (this.down || this.dropAfter-- <= 0) {
          this.down = true;
          throw new DisconnectedError(req.t);
        }
        this.requests.push(`${req.t}@${String(req.offset ?? "")}`);
        return this.answer(req) as never;
      },
    };
  }

  private answer(req: Record<string, unknown>): unknown {
    switch (req.t) {
      case "upload": {
        const key = `${req.size}:${req.sha256}`;
        if ((req.size as number) > this.quota) throw new QuotaError("quota", "over your file quota of 100 bytes", "upload");
        let u = this.uploads.get(key);
        if (!u) this.uploads.set(key, (u = { size: req.size as number, sha256: req.sha256 as string, bytes: new Uint8Array(req.size as number), offset: 0, done: false }));
        return { upload: key, offset: u.offset, size: u.size, ...(u.done ? { done: true } : {}) };
      }
      case "chunk": {
        const u = this.uploads.get(req.upload as string);
        if (!u || u.done) throw new NotFoundError("not_found", "no such upload", "chunk");
        if (req.offset !== u.offset) throw new ConflictError("conflict", `the upload is at ${u.offset}`, "chunk");
        const data = req.data as Uint8Array;
        expect(data.length).toBeLessThanOrEqual(this.limits!.max_chunk!);
        u.bytes.set(data, u.offset);
        u.offset += data.length;
        if (u.offset === u.size) {
          if (hex(u.bytes) !== u.sha256) throw chatErrorFrom("bad_request", "sha256 mismatch", "chunk");
          u.done = true;
          return { offset: u.offset, done: true };
        }
        return { offset: u.offset };
      }
      case "download": {
        const f = this.files.get(req.mid as number);
        if (!f) throw new NotFoundError("not_found", "no such message", "download");
        const off = req.offset as number;
        const n = Math.min(req.len as number, this.shortReplies);
        return { mid: req.mid, offset: off, size: f.length, data: f.subarray(off, off + n) };
      }
    }
    throw new Error(`unexpected ${String(req.t)}`);
  }
}

describe("uploadFile", () => {
  test("hashes, then sends chunks of max_chunk from 0 with progress, a window in flight; a finished upload is done at once", async () => {
    const s = new FakeServer();
    const data = random(10_000);
    const progress: FileProgress[] = [];
    const r = await uploadFile(s.host(), data, { onProgress: (p) => progress.push(p) });
    expect(r.sha256).toBe(hex(data));
    expect(r.size).toBe(10_000);
    expect(r.resumedFrom).toEqual([]);
    expect(s.uploads.get(r.upload)!.done).toBe(true);
    expect(s.requests).toEqual(["upload@", "chunk@0", "chunk@4096", "chunk@8192"]);
    expect(progress[0]).toEqual({ phase: "hashing", bytes: 0, total: 10_000 });
    const up = progress.filter((p) => p.phase === "uploading").map((p) => p.bytes);
    expect(up).toEqual([0, 4096, 8192, 10_000]);
    // The same bytes again: the server has them all.
    s.requests = [];
    const again = await uploadFile(s.host(), new Blob([data]));
    expect(again.upload).toBe(r.upload);
    expect(s.requests).toEqual(["upload@"]);
  });

  test("a lost connection mid-upload waits for the next one and resumes at the server's offset", async () => {
    const s = new FakeServer();
    const data = random(50_000);
    s.dropAfter = 5; // upload + 4 chunks, then the link is gone
    const progress: number[] = [];
    const p = uploadFile(s.host(), data, { window: 2, onProgress: (x) => x.phase === "uploading" && progress.push(x.bytes) });
    while (!s.down) await Bun.sleep(1);
    await Bun.sleep(20);
    s.reconnect();
    const r = await p;
    expect(r.resumedFrom).toEqual([4 * 4096]);
    expect(s.uploads.get(r.upload)!.done).toBe(true);
    expect(hex(s.uploads.get(r.upload)!.bytes)).toBe(hex(data));
    // Nothing was sent twice: after the resume the chunks go on from 16384.
    const chunks = s.requests.filter((x) => x.startsWith("chunk")).map((x) => Number(x.split("@")[1]));
    expect(chunks).toEqual(Array.from({ length: 13 }, (_, i) => i * 4096));
    expect(progress.at(-1)).toBe(50_000);
  });

  test("a conflict on a chunk (another device moved the upload on) asks upload again and goes on from there", async () => {
    const s = new FakeServer();
    const data = random(20_000);
    const host = s.host();
    // Another connection of the user already sent the first two chunks of the same file.
    const key = `${data.length}:${hex(data)}`;
    const first = await host.request({ t: "upload", size: data.length, sha256: hex(data) });
    expect(first.upload).toBe(key);
    const u = s.uploads.get(key)!;
    let moved = false;
    const real = host.request;
    host.request = async (req, t) => {
      if (req.t === "chunk" && !moved) {
        moved = true;
        u.bytes.set(data.subarray(0, 8192));
        u.offset = 8192;
      }
      return real(req, t);
    };
    const r = await uploadFile(host, data, { window: 1 });
    expect(r.resumedFrom).toEqual([8192]);
    expect(u.done).toBe(true);
  });

  test("too large for max_file fails before hashing; quota is a QuotaError", async () => {
    const s = new FakeServer();
    const big = await uploadFile(s.host(), new Uint8Array((1 << 20) + 1)).catch((e) => e);
    expect(big).toBeInstanceOf(TooLargeError);
    expect(s.requests).toEqual([]);
    s.quota = 100;
    const q = await uploadFile(s.host(), random(101)).catch((e) => e);
    expect(q).toBeInstanceOf(QuotaError);
    expect(q.code).toBe("quota");
  });

  test("chunks fit the client's own request frame and the server's max_chunk", () => {
    const s = new FakeServer();
    expect(chunkSize(s.host())).toBe(4096);
    s.limits = { ...s.limits!, max_chunk: undefined, max_frame: 64 * 1024 };
    expect(chunkSize(s.host())).toBe(63 * 1024);
    expect(chunkSize({ ...s.host(), maxRequestFrame: 10_000 })).toBe(10_000 - 1024);
  });
});

describe("downloadChunks", () => {
  async function all(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const c of it) parts.push(c);
    return new Uint8Array(await new Blob(parts as Uint8Array<ArrayBuffer>[]).arrayBuffer());
  }

  test("in chunks, in order, with progress; checked against the SHA-256", async () => {
    const s = new FakeServer();
    const data = random(30_000);
    s.files.set(7, data);
    const progress: number[] = [];
    const got = await all(downloadChunks(s.host(), 7, { sha256: hex(data) }, { onProgress: (p) => progress.push(p.bytes) }));
    expect(hex(got)).toBe(hex(data));
    expect(progress.at(-1)).toBe(30_000);
    expect(progress.length).toBe(1 + Math.ceil(30_000 / 4096));
  });

  test("short replies and a lost connection: it goes on from the last byte received", async () => {
    const s = new FakeServer();
    const data = random(40_000);
    s.files.set(9, data);
    s.shortReplies = 3000;
    s.dropAfter = 4;
    const it = downloadChunks(s.host(), 9, { size: data.length, sha256: hex(data) });
    const p = all(it);
    while (!s.down) await Bun.sleep(1);
    s.reconnect();
    expect(hex(await p)).toBe(hex(data));
  });

  test("other bytes than the message's SHA-256 are an IntegrityError; a missing file NotFoundError", async () => {
    const s = new FakeServer();
    s.files.set(3, random(5000));
    const bad = await all(downloadChunks(s.host(), 3, { sha256: "0".repeat(64) })).catch((e) => e);
    expect(bad).toBeInstanceOf(IntegrityError);
    expect(bad.code).toBe("integrity");
    const nf = await all(downloadChunks(s.host(), 4, {})).catch((e) => e);
    expect(nf).toBeInstanceOf(NotFoundError);
  });

  test("from an offset: the rest of the file (not checked: the start was not seen)", async () => {
    const s = new FakeServer();
    const data = random(9000);
    s.files.set(5, data);
    const got = await all(downloadChunks(s.host(), 5, { sha256: "0".repeat(64) }, { offset: 5000 }));
    expect(hex(got)).toBe(hex(data.subarray(5000)));
  });
});
