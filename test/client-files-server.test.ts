// Files out of band (PROTOCOL.md §3.9) through the client library against the real
// server process: upload with progress, send, download in chunks checked by SHA-256,
// an upload and a download that live through a dropped connection, quota and size
// limits as typed errors, who may download.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ChatClient,
  type ChatMessage,
  type ClientOptions,
  type FileProgress,
  IntegrityError,
  NotFoundError,
  QuotaError,
  TooLargeError,
} from "../src/client/index.ts";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const tmp = tempDir("tcpchat-client-files-");
let server: RunningServer;
const clients: ChatClient[] = [];
let n = 0;
const uniq = (p: string) => `${p}${++n}`;
const PASS = "password1";
/** --max-frame 131072: chunks of 130048 bytes (PROTOCOL.md §3.9 max_chunk), so a file of a few MiB is dozens of them. */
const MAX_CHUNK = 131072 - 1024;
const MiB = 1024 * 1024;

beforeAll(async () => {
  server = await startServer([
    "--db",
    join(tmp.dir, "chat.db"),
    "--max-frame",
    "131072",
    "--max-group-size",
    "100",
    "--max-file",
    String(8 * MiB),
    "--file-quota",
    String(12 * MiB),
    ...TEST_ARGS,
  ]);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  if (server && server.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

async function user(prefix = "f", opts: ClientOptions = {}): Promise<ChatClient> {
  const c = await ChatClient.connect({ port: server.port, ...opts });
  clients.push(c);
  const name = uniq(prefix);
  await c.register(name, PASS);
  await c.login(name, { pass: PASS });
  return c;
}

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

function random(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(size, i + 65536)));
  return b;
}

function sha(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

async function all(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

/** Drops a client's connection as a network failure would (it reconnects by itself). */
function dropLink(c: ChatClient): void {
  (c as unknown as { conn?: { terminate(): void } }).conn?.terminate();
}

describe("files out of band", () => {
  test("upload with progress, send to a group, the message carries name, type, size and SHA-256; the other downloads it in chunks, checked", async () => {
    const a = await user();
    const b = await user();
    const g = uniq("files");
    await a.createGroup(g);
    await b.join(g);
    expect(a.limits?.max_chunk).toBe(MAX_CHUNK);
    expect(a.limits?.max_file).toBe(8 * MiB);
    expect(a.limits?.file_quota).toBe(12 * MiB);
    const got: ChatMessage[] = [];
    b.on("msg", (m) => got.push(m));

    const data = random(MiB + 12345); // 9 chunks
    const progress: FileProgress[] = [];
    const sent = await a.sendFile({ group: g }, data, { name: "report.pdf", type: "application/pdf", text: "the report", onProgress: (p) => progress.push(p) });
    expect(sent.file).toEqual({ name: "report.pdf", type: "application/pdf", size: data.length, sha256: sha(data) });
    expect(sent.text).toBe("the report");
    const uploading = progress.filter((p) => p.phase === "uploading").map((p) => p.bytes);
    expect(uploading[0]).toBe(0);
    expect(uploading.at(-1)).toBe(data.length);
    expect(uploading.length).toBe(1 + Math.ceil(data.length / MAX_CHUNK));
    expect(progress.some((p) => p.phase === "hashing" && p.bytes === data.length)).toBe(true);

    await until(() => got.length === 1, "the file's message");
    const m = got[0]!;
    expect(m.mid).toBe(sent.mid);
    expect(m.file).toEqual({ name: "report.pdf", type: "application/pdf", size: data.length, sha256: sha(data) });
    expect(m.file as unknown as { data?: unknown }).not.toHaveProperty("data"); // the bytes never travel in a push

    const down: number[] = [];
    const bytes = await all(b.download(m, { onProgress: (p) => down.push(p.bytes) }));
    expect(sha(bytes)).toBe(sha(data));
    expect(down[0]).toBe(0);
    expect(down.at(-1)).toBe(data.length);
    expect(down.length).toBe(1 + Math.ceil(data.length / MAX_CHUNK));

    // As a stream, as a Blob, into a file; the sender may download it too; history has no bytes either.
    const stream = b.downloadStream(m);
    expect(sha(new Uint8Array(await new Response(stream).arrayBuffer()))).toBe(sha(data));
    const blob = await a.downloadBlob(sent);
    expect(blob.type).toBe("application/pdf");
    expect(sha(new Uint8Array(await blob.arrayBuffer()))).toBe(sha(data));
    const path = join(tmp.dir, "report.pdf");
    expect(await b.downloadToFile(m, path)).toBe(data.length);
    expect(sha(new Uint8Array(readFileSync(path)))).toBe(sha(data));
    expect(await b.downloadToFile(m, path).catch((e) => e.code)).toBe("EEXIST"); // never overwritten
    const page = await b.history({ group: g }, { limit: 5 });
    expect(page.msgs.find((x) => x.mid === m.mid)?.file).toEqual(m.file!);
  });

  test("a file path (Bun): read in slices, named and typed by the path; a direct message", async () => {
    const a = await user();
    const b = await user();
    const data = random(300_000);
    const path = join(tmp.dir, "photo.png");
    writeFileSync(path, data);
    const got: ChatMessage[] = [];
    b.on("msg", (m) => got.push(m));
    const sent = await a.sendFile({ user: b.user! }, path);
    expect(sent.file).toMatchObject({ name: "photo.png", type: "image/png", size: 300_000 });
    await until(() => got.length === 1, "the direct message");
    expect(sha(await all(b.download(got[0]!)))).toBe(sha(data));
    expect(await a.sendFile({ user: b.user! }, join(tmp.dir, "missing.bin")).catch((e) => e.code)).toBe("ENOENT");
  });

  test("an upload whose connection drops midway resumes after the reconnect from the offset the server has", async () => {
    const a = await user();
    const b = await user();
    const data = random(3 * MiB); // 25 chunks
    let dropped = false;
    const uploading: number[] = [];
    const r = await a.uploadFile(data, {
      onProgress: (p) => {
        if (p.phase !== "uploading") return;
        uploading.push(p.bytes);
        if (!dropped && p.bytes >= MiB) {
          dropped = true;
          dropLink(a);
        }
      },
    });
    expect(dropped).toBe(true);
    expect(r.resumedFrom.length).toBe(1);
    const at = r.resumedFrom[0]!;
    expect(at).toBeGreaterThanOrEqual(MiB);
    expect(at).toBeLessThan(data.length);
    expect(at % MAX_CHUNK).toBe(0);
    expect(uploading.at(-1)).toBe(data.length);
    // Sent after the resume: the message's bytes are the file's.
    const m = await a.send({ user: b.user!, file: { upload: r.upload, name: "resumed.bin", type: "" } });
    expect(m.file).toEqual({ name: "resumed.bin", type: "", size: data.length, sha256: sha(data) });
    expect(sha(await all(b.download(m.mid, { sha256: sha(data) })))).toBe(sha(data));
  });

  test("an upload goes on across a server restart: after the reconnect, from the offset the server kept", async () => {
    const port = freePort();
    const args = ["--db", join(tmp.dir, "restart.db"), "--port", String(port), "--max-frame", "131072", "--max-group-size", "100", ...TEST_ARGS];
    let s = await startServer(args);
    try {
      // Slowed to about 1 MiB/s, so that the restart comes in the middle of it.
      const a = await ChatClient.connect({ port, pace: { bytesPerSec: MiB, burstSec: 0.1 }, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
      clients.push(a);
      await a.register("restarter", PASS);
      await a.login("restarter", { pass: PASS });
      const data = random(3 * MiB);
      const reached = Promise.withResolvers<void>();
      const up = a.uploadFile(data, { onProgress: (p) => p.phase === "uploading" && p.bytes >= MiB && reached.resolve() });
      await reached.promise;
      expect(await s.stop()).toBe(0);
      s = await startServer(args);
      const r = await up;
      expect(r.resumedFrom[0]).toBeGreaterThanOrEqual(MiB);
      const m = await a.send({ user: "restarter", file: { upload: r.upload, name: "kept.bin", type: "" } });
      expect(sha(await all(a.download(m)))).toBe(sha(data));
    } finally {
      await s.stop();
    }
  }, 30_000);

  test("the same upload from another device goes on where the first one stopped", async () => {
    const a = await user();
    const data = random(MiB);
    const stop = new AbortController();
    const first = a.uploadFile(data, {
      signal: stop.signal,
      window: 1,
      onProgress: (p) => p.phase === "uploading" && p.bytes >= 5 * MAX_CHUNK && stop.abort(new Error("stopped")),
    });
    expect(await first.catch((e) => e.message)).toBe("stopped");
    const other = await ChatClient.connect({ port: server.port });
    clients.push(other);
    await other.login(a.user!, { token: a.token! });
    const r = await other.uploadFile(data);
    expect(r.resumedFrom[0]).toBeGreaterThanOrEqual(5 * MAX_CHUNK);
    expect(r.sha256).toBe(sha(data));
  });

  test("a download whose connection drops midway goes on after the reconnect; other bytes than the message's are an IntegrityError", async () => {
    const a = await user();
    const b = await user();
    const data = random(2 * MiB);
    const m = await a.sendFile({ user: b.user! }, data, { name: "big.bin" });
    let dropped = false;
    const bytes = await all(
      b.download(m, {
        window: 2,
        onProgress: (p) => {
          if (!dropped && p.bytes >= MiB / 2) {
            dropped = true;
            dropLink(b);
          }
        },
      }),
    );
    expect(dropped).toBe(true);
    expect(sha(bytes)).toBe(sha(data));
    const wrong = await all(b.download(m.mid, { sha256: "0".repeat(64) })).catch((e) => e);
    expect(wrong).toBeInstanceOf(IntegrityError);
  });

  test("over --max-file: TooLargeError (before anything is sent, and from the server); over --file-quota: QuotaError", async () => {
    const a = await user();
    const big = await a.uploadFile(new Uint8Array(8 * MiB + 1)).catch((e) => e);
    expect(big).toBeInstanceOf(TooLargeError);
    const raw = await a.request({ t: "upload", size: 8 * MiB + 1, sha256: "0".repeat(64) }).catch((e) => e);
    expect(raw).toBeInstanceOf(TooLargeError);
    // 12 MiB of quota: two files of 5 MiB fit, a third does not.
    await a.sendFile({ user: a.user! }, random(5 * MiB), { name: "one.bin" });
    await a.sendFile({ user: a.user! }, random(5 * MiB), { name: "two.bin" });
    const q = await a.sendFile({ user: a.user! }, random(5 * MiB), { name: "three.bin" }).catch((e) => e);
    expect(q).toBeInstanceOf(QuotaError);
    expect(q.code).toBe("quota");
    expect(a.pendingSends).toBe(0);
    expect(a.state).toBe("ready");
  }, 30_000);

  test("only those who can see the message download its file: NotFoundError for the others", async () => {
    const a = await user();
    const b = await user();
    const c = await user();
    const m = await a.sendFile({ user: b.user! }, random(1000), { name: "secret.txt", type: "text/plain" });
    expect(sha(await all(b.download(m)))).toBe(m.file!.sha256);
    expect(await all(c.download(m)).catch((e) => e)).toBeInstanceOf(NotFoundError);
    expect(await all(c.download(m.mid)).catch((e) => e)).toBeInstanceOf(NotFoundError);
  });

  test("an empty file: uploaded with no chunk, sent, downloaded as nothing", async () => {
    const a = await user();
    const b = await user();
    const m = await a.sendFile({ user: b.user! }, new Uint8Array(0), { name: "empty.txt", type: "text/plain" });
    expect(m.file).toEqual({ name: "empty.txt", type: "text/plain", size: 0, sha256: sha(new Uint8Array(0)) });
    expect((await all(b.download(m))).length).toBe(0);
    expect((await all(b.download(m.mid))).length).toBe(0);
  });
});
