// Files out of band, PROTOCOL.md §3.9: uploads in chunks (resumed after a lost
// connection from the offset the server has), downloads in chunks by a message's
// mid, both with a few requests in flight and progress reports, checked by
// SHA-256. Nothing here holds a whole file: an upload reads its source a chunk at
// a time (a Uint8Array, or a Blob: a browser's File, or Bun.file(path)), a
// download yields chunks as they come. No Bun or Node module: the browser bundle
// takes it (core.ts); Bun's ChatClient (client.ts) adds file paths.
import { CHUNK_MAX, maxChunk } from "../protocol/requests.ts";
import {
  ChatError,
  ConflictError,
  DisconnectedError,
  IntegrityError,
  NotFoundError,
  TimeoutError,
  TooLargeError,
} from "./errors.ts";
import { sha256 } from "./sha256.ts";
import type { ChatMessage, LoginResult, Replies } from "./types.ts";

/** What an upload reads its bytes from: bytes in memory, or a Blob (a browser's File; Bun.file(path)), read a slice at a time. */
export type UploadSource = Uint8Array | Blob;

/** How far a transfer is: `bytes` of `total` (`total` 0 while a download's size is not known yet). */
export interface FileProgress {
  /** `hashing`: the SHA-256 of the source is being computed, before the upload starts. */
  phase: "hashing" | "uploading" | "downloading";
  bytes: number;
  total: number;
}

export interface UploadOptions {
  /** Called as the transfer moves on (after each chunk); the bytes only grow, except that a resume may restart lower. */
  onProgress?: (p: FileProgress) => void;
  /** Chunks in flight at once. Default 4. */
  window?: number;
  /** Stops the upload (it rejects with the signal's reason); what the server has stays there to resume, until --upload-ttl. */
  signal?: AbortSignal;
}

/** A finished upload: `upload` names it in a send's `file` (once: PROTOCOL.md §3.4). */
export interface UploadResult {
  upload: string;
  size: number;
  /** 64 lowercase hexadecimal digits. */
  sha256: string;
  /** The offsets the server said it had when asked again, after a lost connection or a refused chunk (and a first answer above 0: an upload resumed from earlier). */
  resumedFrom: number[];
}

export interface DownloadOptions {
  onProgress?: (p: FileProgress) => void;
  /** Start at this byte (a download resumed). The SHA-256 is then not checked (the bytes before are not seen). */
  offset?: number;
  /** Requests in flight at once. Default 4. */
  window?: number;
  /** The expected SHA-256, when downloading by a mid rather than by the message (which has it). */
  sha256?: string;
  signal?: AbortSignal;
}

/** What `sendFile()` takes besides the target and the source. */
export interface SendFileOptions extends UploadOptions {
  /** The name shown (default: the source's, a File's or a path's last part). */
  name?: string;
  /** Its media type, e.g. image/png (default: the source's, or none). */
  type?: string;
  /** Text sent with the file. */
  text?: string;
  reply?: number;
  cid?: string;
  /** As SendOptions.timeoutMs, for the send once uploaded. */
  timeoutMs?: number;
}

/** What the file transfers need of the client. */
export interface FileHost {
  request<T extends "upload" | "chunk" | "download">(req: { t: T } & Record<string, unknown>, timeoutMs?: number): Promise<Replies[T]>;
  /** Resolves when requests can go (logged in, connected), rejects with ClosedError once the client is closed. */
  ready(): Promise<void>;
  /** The login's limits, if logged in. */
  limits(): LoginResult["limits"] | undefined;
  /** The largest request frame the client writes (ClientOptions.maxRequestFrame). */
  maxRequestFrame: number;
}

/** Read in pieces of this size while hashing a source. */
const HASH_PIECE = 1024 * 1024;
/** Failed rounds in a row without progress before a transfer gives up (a lost connection waits for the next one and counts once). */
const MAX_STALLS = 12;

/** The chunk size for this server: its `max_chunk` (PROTOCOL.md §3.2), within what a request frame of the client may hold. */
export function chunkSize(host: FileHost): number {
  const l = host.limits();
  const server = l?.max_chunk || (l?.max_frame ? maxChunk(l.max_frame) : CHUNK_MAX);
  return Math.max(1, Math.min(server, maxChunk(host.maxRequestFrame)));
}

/** A source as its size and a reader of slices. */
interface Source {
  size: number;
  read(offset: number, len: number): Promise<Uint8Array>;
}

function sourceOf(s: UploadSource): Source {
  if (s instanceof Uint8Array) return { size: s.length, read: async (o, n) => s.subarray(o, o + n) };
  return { size: s.size, read: async (o, n) => new Uint8Array(await s.slice(o, o + n).arrayBuffer()) };
}

/** The name and media type a source carries, if any (a File has both, a Blob a type). */
export function describeSource(s: UploadSource): { name?: string; type?: string } {
  if (s instanceof Uint8Array) return {};
  const name = (s as { name?: unknown }).name;
  return { name: typeof name === "string" && name !== "" ? name : undefined, type: s.type.split(";")[0] };
}

/** A failure that another try may get past: the connection, a timeout, the server busy or failing. */
function transient(e: unknown): boolean {
  return e instanceof DisconnectedError || e instanceof TimeoutError || (e instanceof ChatError && e.retryable);
}

function pause(stalls: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** stalls)));
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error("aborted");
}

/** The SHA-256 of a source, read a piece at a time. */
async function hashOf(src: Source, opts: UploadOptions): Promise<string> {
  const h = sha256();
  opts.onProgress?.({ phase: "hashing", bytes: 0, total: src.size });
  for (let at = 0; at < src.size; ) {
    checkAbort(opts.signal);
    const piece = await src.read(at, Math.min(HASH_PIECE, src.size - at));
    if (piece.length === 0) throw new Error(`the file ended at ${at} bytes, before its size ${src.size}: did it change?`);
    h.update(piece);
    at += piece.length;
    opts.onProgress?.({ phase: "hashing", bytes: at, total: src.size });
  }
  return h.hex();
}

/**
 * Uploads `source` (PROTOCOL.md §3.9): its SHA-256 first, then `upload` and `chunk`s
 * from the offset the server gives, `window` of them in flight. A lost connection
 * waits for the client's next one and asks `upload` again (the server answers with
 * the offset it has: the upload resumes there); so does a `conflict` on a chunk.
 */
export async function uploadFile(host: FileHost, source: UploadSource, opts: UploadOptions = {}): Promise<UploadResult> {
  const src = sourceOf(source);
  const size = src.size;
  const max = host.limits()?.max_file;
  if (max && size > max) throw new TooLargeError("too_large", `the file is ${size} bytes, over the server's max_file (${max})`, "upload");
  const digest = await hashOf(src, opts);
  const resumedFrom: number[] = [];
  const report = (bytes: number) => opts.onProgress?.({ phase: "uploading", bytes, total: size });
  let stalls = 0;
  let best = -1;
  let first = true;
  for (;;) {
    checkAbort(opts.signal);
    await host.ready();
    try {
      const r = await host.request({ t: "upload", size, sha256: digest });
      if (!first || r.offset > 0) resumedFrom.push(r.offset);
      first = false;
      if (r.offset > best) {
        best = r.offset;
        stalls = 0;
      }
      report(r.offset);
      if (r.done || r.offset >= size) return { upload: r.upload, size, sha256: digest, resumedFrom };
      if (await pump(host, src, r.upload, r.offset, opts, report)) return { upload: r.upload, size, sha256: digest, resumedFrom };
    } catch (e) {
      // `conflict`: a chunk's offset was not the server's (ask again); `not_found`: the upload
      // expired meanwhile (asking again starts a new one); the rest may pass on another try.
      if (!(transient(e) || e instanceof ConflictError || e instanceof NotFoundError)) throw e;
      if (++stalls > MAX_STALLS) throw e;
      if (!(e instanceof DisconnectedError)) await pause(stalls);
    }
  }
}

/** Sends the chunks from `offset`, `window` in flight; true once the server says the upload is done. */
async function pump(host: FileHost, src: Source, upload: string, offset: number, opts: UploadOptions, report: (n: number) => void): Promise<boolean> {
  const len = chunkSize(host);
  const window = Math.max(1, opts.window ?? 4);
  const inflight: Promise<Replies["chunk"]>[] = [];
  let next = offset;
  for (;;) {
    while (inflight.length < window && next < src.size) {
      checkAbort(opts.signal);
      const data = await src.read(next, Math.min(len, src.size - next));
      if (data.length === 0) throw new Error(`the file ended at ${next} bytes, before its size ${src.size}: did it change?`);
      // No timeout: a chunk waits behind the pacer and the ones before it; the keepalive ping notices a dead connection.
      const p = host.request({ t: "chunk", upload, offset: next, data }, 0);
      p.catch(() => {}); // awaited in order below; those after a failure are dropped
      inflight.push(p);
      next += data.length;
    }
    const p = inflight.shift();
    if (!p) return false;
    const r = await p;
    report(r.offset);
    if (r.done) return true;
  }
}

/**
 * The bytes of message `mid`'s file, chunk by chunk (PROTOCOL.md §3.9), `window`
 * `download` requests in flight; checked against the file's SHA-256 (given, or told by the
 * server's replies) at the end (IntegrityError if different) when the download starts at 0. A lost connection waits for
 * the client's next one and goes on from the last byte received.
 */
export async function* downloadChunks(host: FileHost, mid: number, known: { size?: number; sha256?: string }, opts: DownloadOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  let pos = opts.offset ?? 0;
  // Known from the message, or told by the first reply (PROTOCOL.md §3.9).
  let expected = opts.sha256 ?? known.sha256;
  const hash = pos === 0 ? sha256() : undefined;
  let size = known.size;
  const len = chunkSize(host);
  const window = Math.max(1, opts.window ?? 4);
  const report = () => opts.onProgress?.({ phase: "downloading", bytes: pos, total: size ?? 0 });
  let stalls = 0;
  report();
  round: for (;;) {
    checkAbort(opts.signal);
    await host.ready();
    const inflight: Promise<Replies["download"]>[] = [];
    let next = pos;
    try {
      for (;;) {
        // Until the size is known, one request at a time (the first reply says it).
        while (inflight.length < (size === undefined ? 1 : window) && (size === undefined || next < size)) {
          const p = host.request({ t: "download", mid, offset: next, len });
          p.catch(() => {});
          inflight.push(p);
          next += len;
        }
        const p = inflight.shift();
        if (!p) break round; // everything up to the size is here
        const r = await p;
        size = r.size;
        if (expected === undefined && typeof r.sha256 === "string") expected = r.sha256;
        const data = r.data instanceof Uint8Array ? r.data : new Uint8Array(0);
        if (r.offset !== pos) continue round; // after a short reply: ask again from where it ended
        if (data.length === 0) {
          if (pos >= size) break round;
          throw new Error(`download of ${mid}: no bytes at ${pos} of ${size}`);
        }
        pos += data.length;
        stalls = 0;
        hash?.update(data);
        report();
        yield data;
        if (pos >= size) break round;
        if (data.length < len) continue round; // fewer than asked: the requests ahead are off
      }
    } catch (e) {
      if (!transient(e) || ++stalls > MAX_STALLS) throw e;
      if (!(e instanceof DisconnectedError)) await pause(stalls);
    }
  }
  if (hash && expected) {
    const got = hash.hex();
    if (got !== expected.toLowerCase()) throw new IntegrityError(mid, expected.toLowerCase(), got);
  }
}

/** What a download needs to know of a message: its mid, and its file's size and SHA-256 if at hand. */
export function fileOf(m: ChatMessage | number): { mid: number; size?: number; sha256?: string; type?: string } {
  if (typeof m === "number") return { mid: m };
  return { mid: m.mid, size: m.file?.size, sha256: m.file?.sha256, type: m.file?.type };
}
