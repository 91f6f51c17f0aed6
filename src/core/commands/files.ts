// upload, chunk, download: a file's bytes, out of band of the messages. PROTOCOL.md §3.9
import { ProtocolError } from "../../protocol/errors.ts";
import { maxChunk, type RequestOf } from "../../protocol/requests.ts";
import { type FileData, fileBytes, type UploadRow } from "../../store/store.ts";
import type { Command, Context, Reply } from "../command.ts";

/** A download costs one request more of the rates per this many bytes of its `len` (PROTOCOL.md §3.9). */
export const DOWNLOAD_BYTES_PER_REQUEST = 256 * 1024;
/** While checking a file's hash, the event loop runs between reads of this many bytes. */
const HASH_YIELD_BYTES = 8 * 1024 * 1024;

/** The SHA-256 of no bytes. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** A new upload id: 16 random bytes, base64url (22 characters). */
function newUploadId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
}

function uploadReply(u: UploadRow): Reply {
  const r: Reply = { upload: u.id, offset: u.received, size: u.size };
  if (u.done) r.done = true;
  return r;
}

/** The SHA-256 (hex) of file `file`'s first `size` bytes, read from the store a chunk at a time. */
async function hashOf(ctx: Context, file: number, size: number): Promise<string | undefined> {
  const h = new Bun.CryptoHasher("sha256");
  let got = 0;
  let sinceYield = 0;
  for await (const b of fileBytes(ctx.store, file, size)) {
    h.update(b);
    got += b.length;
    sinceYield += b.length;
    if (sinceYield >= HASH_YIELD_BYTES) {
      sinceYield = 0;
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  return got === size ? h.digest("hex") : undefined; // short of a hole: cannot be the declared bytes
}

/** Checks the bytes of a complete upload as stored, then finishes it, or drops them (a wrong hash). */
async function finish(ctx: Context, u: UploadRow): Promise<UploadRow> {
  const got = await hashOf(ctx, u.file, u.size);
  if (got !== u.sha256) {
    await ctx.store.resetUpload(u.id, Date.now());
    throw new ProtocolError(
      "bad_request",
      `the bytes' SHA-256 is ${got ?? "unknown"}, not ${u.sha256} as the upload said: they were dropped; send them again from offset 0`,
    );
  }
  return ctx.store.finishUpload(u.id, Date.now());
}

export const upload: Command<RequestOf<"upload">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const me = session.user!;
    const c = ctx.config;
    const sha256 = req.sha256.toLowerCase();
    if (req.size > c.maxFile)
      throw new ProtocolError("too_large", `a file of ${req.size} bytes is larger than this server takes: ${c.maxFile} bytes (--max-file)`);
    // No chunk can come for an empty file: it is checked now, and no upload is made if it is wrong.
    if (req.size === 0 && sha256 !== EMPTY_SHA256)
      throw new ProtocolError("bad_request", `an empty file's SHA-256 is ${EMPTY_SHA256}, not ${sha256}`);
    const found = await ctx.store.findUpload(me, sha256, req.size);
    if (found) return uploadReply(found);
    const use = await ctx.store.fileUsage(me);
    if (use.uploads >= c.maxUploads)
      throw new ProtocolError(
        "quota",
        `you have ${use.uploads} uploads not yet sent, the most this server keeps (--max-uploads ${c.maxUploads}): send them, or let them expire`,
      );
    if (c.fileQuota > 0 && use.bytes + req.size > c.fileQuota)
      throw new ProtocolError(
        "quota",
        `your files take ${use.bytes} bytes: ${req.size} more would pass your quota of ${c.fileQuota} bytes (--file-quota); deleting your messages with files frees it`,
      );
    ctx.assertRunning();
    let u = await ctx.store.createUpload(newUploadId(), me, req.size, sha256, Date.now());
    if (req.size === 0) u = await finish(ctx, u); // complete now
    return uploadReply(u);
  },
};

export const chunk: Command<RequestOf<"chunk">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const me = session.user!;
    const max = maxChunk(ctx.config.maxFrame);
    if (req.data.length > max) throw new ProtocolError("bad_request", `'data' is over ${max} bytes (max_chunk)`);
    const u = await ctx.store.getUpload(req.upload);
    if (!u || u.user !== me || u.done) throw new ProtocolError("not_found", `no unfinished upload ${req.upload} of yours`);
    if (req.offset !== u.received)
      throw new ProtocolError("conflict", `upload ${u.id} has ${u.received} bytes: send from offset ${u.received}`);
    if (req.offset + req.data.length > u.size)
      throw new ProtocolError("bad_request", `'data' goes past the upload's size, ${u.size} bytes`);
    ctx.assertRunning();
    // The decoded bytes are a view of the socket's read buffer: the store gets its own copy.
    const got = await ctx.store.appendUpload(u.id, req.offset, req.data.slice(), Date.now());
    if (got === undefined) {
      // Another connection of the user's moved it meanwhile.
      const now = await ctx.store.getUpload(u.id);
      throw new ProtocolError("conflict", `upload ${u.id} has ${now?.received ?? "other"} bytes now: ask upload for its offset`);
    }
    if (got < u.size) return { offset: got };
    await finish(ctx, { ...u, received: got });
    return { offset: got, done: true };
  },
};

/** Whether `me` may see a message of conversation `conv`: a member of its group now, a party of its direct conversation. */
async function canSee(ctx: Context, me: string, conv: string): Promise<boolean> {
  if (conv.startsWith("g:")) {
    const grp = conv.slice(2);
    if (ctx.hub.isMember(grp, me)) return true;
    return (await ctx.store.member(grp, me)) !== undefined;
  }
  const [, a, b] = conv.split(":");
  return me === a || me === b;
}

export const download: Command<RequestOf<"download">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const me = session.user!;
    const max = maxChunk(ctx.config.maxFrame);
    const len = Math.min(req.len ?? max, max);
    ctx.chargeExtra(session, Math.floor(len / DOWNLOAD_BYTES_PER_REQUEST));
    const f = await ctx.store.messageFile(req.mid);
    if (!f || !(await canSee(ctx, me, f.conv))) throw new ProtocolError("not_found", `no file of message ${req.mid} that you can see`);
    const offset = req.offset ?? 0;
    if (offset > f.size) throw new ProtocolError("bad_request", `'offset' is past the file's size, ${f.size} bytes`);
    const data = offset === f.size || len === 0 ? new Uint8Array(0) : await ctx.store.readFile(f.file, offset, len);
    return { mid: req.mid, offset, size: f.size, sha256: f.sha256, data };
  },
};

/**
 * A `send`'s file: the caller's finished upload named by it (PROTOCOL.md §3.4), as the message
 * will hold it. A send with a `cid` whose upload is gone may be the repeat of a send that used it
 * up: the commit decides (the original's reply if it is one, else `not_found`).
 */
export async function fileToSend(ctx: Context, me: string, f: RequestOf<"send">["file"] & object, cid: string | undefined): Promise<FileData> {
  const u = await ctx.store.getUpload(f.upload);
  const mine = u !== undefined && u.user === me && u.done;
  if (!mine && cid === undefined)
    throw new ProtocolError("not_found", `no finished upload ${f.upload} of yours: upload the file first (upload, chunk), then send it once`);
  return { name: f.name, type: f.type, size: mine ? u.size : 0, sha256: mine ? u.sha256 : "", upload: f.upload };
}
