// Files in the SQLite store (PROTOCOL.md §3.9; tables files, file_chunks and uploads in
// schema.ts): the bytes of an upload as they arrive, a file stored once per content, read a
// chunk at a time, removed when nothing holds it. SqliteStore owns the connection and the
// transactions; the methods marked "in a transaction" run inside one of its.
import type { Database, Statement } from "bun:sqlite";
import { CHUNK_MAX } from "../protocol/requests.ts";
import { type FileUsage, type MessageFile, messageSize, type UploadRow } from "./store.ts";

interface UploadSql {
  id: string;
  user: string;
  size: number;
  sha256: string;
  received: number;
  done: number;
  file: number;
  touched: number;
}

function toUpload(r: UploadSql): UploadRow {
  return { ...r, done: r.done === 1 };
}

/** Messages with inline bytes converted per transaction at open (a database from before §3.9). */
const CONVERT_BATCH = 50;

export class SqliteFiles {
  private readonly insertFile: Statement<{ id: number }>;
  private readonly insertUpload: Statement;
  private readonly uploadById: Statement<UploadSql>;
  private readonly uploadOf: Statement<UploadSql>;
  private readonly usage: Statement<{ bytes: number; uploads: number }>;
  private readonly advance: Statement<{ received: number; file: number }>;
  private readonly insertChunk: Statement;
  private readonly doneFile: Statement<{ id: number }>;
  private readonly chunkAt: Statement<{ data: Uint8Array | null }>;
  private readonly fileOfMessage: Statement<{ conv: string; file_id: number; file_size: number; file_sha: string }>;
  private readonly takeStmt: Statement<{ file: number; size: number; sha256: string }>;
  private readonly usedStmt: Statement<{ used: number }>;
  private readonly dropChunks: Statement;
  private readonly dropFile: Statement;

  constructor(private readonly client: Database) {
    this.insertFile = client.prepare("INSERT INTO files (sha256, size, done, created) VALUES (?, ?, ?, ?) RETURNING id");
    this.insertUpload = client.prepare(
      "INSERT INTO uploads (id, user, size, sha256, received, done, file, touched) VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
    );
    this.uploadById = client.prepare("SELECT * FROM uploads WHERE id = ?");
    this.uploadOf = client.prepare("SELECT * FROM uploads WHERE user = ? AND sha256 = ? AND size = ? ORDER BY done DESC, received DESC LIMIT 1");
    this.usage = client.prepare(`SELECT
        coalesce((SELECT sum(size) FROM uploads WHERE user = ?1), 0)
        + coalesce((SELECT sum(file_size) FROM messages
            WHERE sender = ?1 AND file_id IS NOT NULL AND deleted IS NULL), 0) AS bytes,
        (SELECT count(*) FROM uploads WHERE user = ?1) AS uploads`);
    // The check and the move in one statement: a chunk is never written twice, nor leaves a hole.
    this.advance = client.prepare(
      "UPDATE uploads SET received = received + ?3, touched = ?4 WHERE id = ?1 AND done = 0 AND received = ?2 AND ?2 + ?3 <= size RETURNING received, file",
    );
    this.insertChunk = client.prepare("INSERT INTO file_chunks (file, off, data) VALUES (?, ?, ?)");
    this.doneFile = client.prepare("SELECT id FROM files WHERE sha256 = ? AND done = 1");
    // Only the part asked for is copied out of the row (substr of a blob is a blob).
    this.chunkAt = client.prepare(
      "SELECT substr(data, ?2 - off + 1, ?3) AS data FROM file_chunks WHERE file = ?1 AND off <= ?2 ORDER BY off DESC LIMIT 1",
    );
    this.fileOfMessage = client.prepare(
      "SELECT conv, file_id, file_size, file_sha FROM messages WHERE mid = ? AND kind IS NULL AND deleted IS NULL AND file_id IS NOT NULL",
    );
    this.takeStmt = client.prepare("DELETE FROM uploads WHERE id = ? AND user = ? AND done = 1 RETURNING file, size, sha256");
    this.usedStmt = client.prepare(`SELECT
        EXISTS (SELECT 1 FROM messages WHERE file_id = ?1 AND file_id IS NOT NULL)
        OR EXISTS (SELECT 1 FROM uploads WHERE file = ?1) AS used`);
    this.dropChunks = client.prepare("DELETE FROM file_chunks WHERE file = ?");
    this.dropFile = client.prepare("DELETE FROM files WHERE id = ?");
  }

  createUpload(id: string, user: string, size: number, sha256: string, now: number): UploadRow {
    return this.client.transaction(() => {
      const file = this.insertFile.get(sha256, size, 0, now)!.id;
      this.insertUpload.run(id, user, size, sha256, file, now);
      return { id, user, size, sha256, received: 0, done: false, file, touched: now };
    })();
  }

  getUpload(id: string): UploadRow | undefined {
    const r = this.uploadById.get(id);
    return r ? toUpload(r) : undefined;
  }

  findUpload(user: string, sha256: string, size: number): UploadRow | undefined {
    const r = this.uploadOf.get(user, sha256, size);
    return r ? toUpload(r) : undefined;
  }

  fileUsage(user: string): FileUsage {
    return this.usage.get(user)!;
  }

  appendUpload(id: string, offset: number, data: Uint8Array, now: number): number | undefined {
    return this.client.transaction(() => {
      const r = this.advance.get(id, offset, data.length, now);
      if (!r) return undefined;
      this.insertChunk.run(r.file, offset, data);
      return r.received;
    })();
  }

  finishUpload(id: string, now: number): UploadRow {
    return this.client.transaction(() => {
      const u = this.uploadById.get(id);
      if (!u) throw new Error(`no upload ${id}`);
      const other = this.doneFile.get(u.sha256);
      let file = u.file;
      if (other && other.id !== u.file) {
        // The same content is stored already: this upload uses it, its own copy goes.
        this.dropChunks.run(u.file);
        this.dropFile.run(u.file);
        file = other.id;
      } else if (!other) this.client.prepare("UPDATE files SET done = 1 WHERE id = ?").run(u.file);
      this.client.prepare("UPDATE uploads SET done = 1, file = ?, touched = ? WHERE id = ?").run(file, now, id);
      return { ...toUpload(u), done: true, file, touched: now };
    })();
  }

  resetUpload(id: string, now: number): void {
    this.client.transaction(() => {
      const u = this.uploadById.get(id);
      if (!u || u.done === 1) return;
      this.dropChunks.run(u.file);
      this.client.prepare("UPDATE uploads SET received = 0, touched = ? WHERE id = ?").run(now, id);
    })();
  }

  readFile(file: number, offset: number, len: number): Uint8Array {
    if (len <= 0) return new Uint8Array(0);
    const r = this.chunkAt.get(file, offset, len);
    return r?.data ?? new Uint8Array(0);
  }

  messageFile(mid: number): MessageFile | undefined {
    const r = this.fileOfMessage.get(mid);
    return r ? { conv: r.conv, file: r.file_id, size: r.file_size, sha256: r.file_sha } : undefined;
  }

  /**
   * In a transaction: uses up `sender`'s finished upload `id` for a message, which now holds its
   * file. Undefined if there is none (gone, not finished, someone else's).
   */
  take(id: string, sender: string): { file: number; size: number; sha256: string } | undefined {
    return this.takeStmt.get(id, sender) ?? undefined;
  }

  /** In a transaction: removes those of `ids` that no message and no upload holds any more, bytes and all. */
  dropUnused(ids: Iterable<number>): void {
    for (const id of new Set(ids)) {
      if (this.usedStmt.get(id)!.used) continue;
      this.dropChunks.run(id);
      this.dropFile.run(id);
    }
  }

  /** The files the messages picked by `where` (SQL over messages, with `params`) hold: read before they go. */
  filesOf(where: string, ...params: Array<string | number>): number[] {
    const rows = this.client
      .prepare(`SELECT DISTINCT file_id AS f FROM messages WHERE (${where}) AND file_id IS NOT NULL`)
      .all(...params) as Array<{ f: number }>;
    return rows.map((r) => r.f);
  }

  expireUploads(before: number): number {
    return this.client.transaction(() => {
      const gone = this.client.prepare("DELETE FROM uploads WHERE touched < ? RETURNING file").all(before) as Array<{ file: number }>;
      this.dropUnused(gone.map((g) => g.file));
      return gone.length;
    })();
  }

  /**
   * A database from before files were stored apart: each message's inline bytes become a stored
   * file (one per content) and the message holds it, in transactions of CONVERT_BATCH messages.
   */
  convertInline(now: number): number {
    const pick = this.client.prepare(
      `SELECT mid, sender, text, cid, file_name, file_type, file_data FROM messages WHERE file_data IS NOT NULL LIMIT ${CONVERT_BATCH}`,
    );
    let n = 0;
    for (;;) {
      const rows = pick.all() as Array<{
        mid: number;
        sender: string;
        text: string | null;
        cid: string | null;
        file_name: string | null;
        file_type: string | null;
        file_data: Uint8Array;
      }>;
      if (rows.length === 0) return n;
      this.client.transaction(() => {
        for (const r of rows) {
          const data = r.file_data;
          const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
          let file = this.doneFile.get(sha256)?.id;
          if (file === undefined) {
            file = this.insertFile.get(sha256, data.length, 1, now)!.id;
            for (let off = 0; off < data.length; off += CHUNK_MAX) this.insertChunk.run(file, off, data.subarray(off, off + CHUNK_MAX));
          }
          const name = r.file_name ?? "file";
          const type = r.file_type ?? "";
          const size = messageSize({
            sender: r.sender,
            text: r.text ?? undefined,
            cid: r.cid ?? undefined,
            file: { name, type, size: data.length, sha256 },
          });
          this.client
            .prepare("UPDATE messages SET file_data = NULL, file_id = ?, file_size = ?, file_sha = ?, file_name = ?, file_type = ?, size = ? WHERE mid = ?")
            .run(file, data.length, sha256, name, type, size, r.mid);
          n++;
        }
      })();
    }
  }
}
