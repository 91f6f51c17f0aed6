// Files in the memory store (PROTOCOL.md §3.9): the same model as sqlite-files.ts (an upload's
// bytes in a file of its own, a file per content once checked, removed when nothing holds it),
// in maps. MemoryStore says which messages hold which file (`held`).
import type { FileUsage, UploadRow } from "./store.ts";

interface StoredFile {
  sha256: string;
  size: number;
  done: boolean;
  /** Chunks by offset, in offset order. */
  chunks: Array<{ off: number; data: Uint8Array }>;
}

export class MemoryFiles {
  private files = new Map<number, StoredFile>();
  private uploads = new Map<string, UploadRow>();
  private nextId = 1;

  constructor(
    /** Whether a message holds file `id`, and the bytes of the files of `user`'s messages. */
    private readonly messages: { holds(id: number): boolean; fileBytesOf(user: string): number },
  ) {}

  createUpload(id: string, user: string, size: number, sha256: string, now: number): UploadRow {
    const file = this.nextId++;
    this.files.set(file, { sha256, size, done: false, chunks: [] });
    const u: UploadRow = { id, user, size, sha256, received: 0, done: false, file, touched: now };
    this.uploads.set(id, u);
    return { ...u };
  }

  getUpload(id: string): UploadRow | undefined {
    const u = this.uploads.get(id);
    return u && { ...u };
  }

  findUpload(user: string, sha256: string, size: number): UploadRow | undefined {
    let best: UploadRow | undefined;
    for (const u of this.uploads.values()) {
      if (u.user !== user || u.sha256 !== sha256 || u.size !== size) continue;
      if (!best || Number(u.done) > Number(best.done) || (u.done === best.done && u.received > best.received)) best = u;
    }
    return best && { ...best };
  }

  fileUsage(user: string): FileUsage {
    let bytes = this.messages.fileBytesOf(user);
    let uploads = 0;
    for (const u of this.uploads.values())
      if (u.user === user) {
        bytes += u.size;
        uploads++;
      }
    return { bytes, uploads };
  }

  appendUpload(id: string, offset: number, data: Uint8Array, now: number): number | undefined {
    const u = this.uploads.get(id);
    if (!u || u.done || u.received !== offset || offset + data.length > u.size) return undefined;
    this.files.get(u.file)!.chunks.push({ off: offset, data: data.slice() });
    u.received += data.length;
    u.touched = now;
    return u.received;
  }

  finishUpload(id: string, now: number): UploadRow {
    const u = this.uploads.get(id);
    if (!u) throw new Error(`no upload ${id}`);
    const other = [...this.files].find(([, f]) => f.done && f.sha256 === u.sha256)?.[0];
    if (other !== undefined && other !== u.file) {
      this.files.delete(u.file);
      u.file = other;
    } else if (other === undefined) this.files.get(u.file)!.done = true;
    u.done = true;
    u.touched = now;
    return { ...u };
  }

  resetUpload(id: string, now: number): void {
    const u = this.uploads.get(id);
    if (!u || u.done) return;
    this.files.get(u.file)!.chunks = [];
    u.received = 0;
    u.touched = now;
  }

  readFile(file: number, offset: number, len: number): Uint8Array {
    const f = this.files.get(file);
    if (!f || len <= 0) return new Uint8Array(0);
    let at: { off: number; data: Uint8Array } | undefined;
    for (const c of f.chunks) if (c.off <= offset) at = c;
    if (!at) return new Uint8Array(0);
    return at.data.slice(offset - at.off, offset - at.off + len);
  }

  /** `sender`'s finished upload `id`, used up by a message that now holds its file. */
  take(id: string, sender: string): { file: number; size: number; sha256: string } | undefined {
    const u = this.uploads.get(id);
    if (!u || u.user !== sender || !u.done) return undefined;
    this.uploads.delete(id);
    return { file: u.file, size: u.size, sha256: u.sha256 };
  }

  /** Removes those of `ids` that no message and no upload holds any more. */
  dropUnused(ids: Iterable<number>): void {
    for (const id of new Set(ids)) {
      if (this.messages.holds(id)) continue;
      if ([...this.uploads.values()].some((u) => u.file === id)) continue;
      this.files.delete(id);
    }
  }

  expireUploads(before: number): number {
    const gone: number[] = [];
    for (const [id, u] of this.uploads)
      if (u.touched < before) {
        this.uploads.delete(id);
        gone.push(u.file);
      }
    this.dropUnused(gone);
    return gone.length;
  }

  /** How many files are stored (tests: that the bytes are gone). */
  get count(): number {
    return this.files.size;
  }
}
