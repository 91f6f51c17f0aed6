// Saving received files (downloaded on demand: /get, or --listen with --downloads). The name comes from another user: it must not pick
// the directory (no path parts, no "..", no hidden dot-files), must not carry
// control characters, and must never overwrite an existing file.
import { appendFile, type FileHandle, mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { basename, extname, join } from "node:path";

const MAX_NAME_BYTES = 200;

/** A file name that is safe to create inside a folder: `safeFileName("../../etc/passwd")` is "passwd". */
export function safeFileName(name: string): string {
  // The last path part, whichever separator the sender's system used.
  let s = name.split(/[/\\]/).pop() ?? "";
  // eslint-disable-next-line no-control-regex
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "");
  // Characters Windows refuses, and a trailing dot or space it would strip.
  s = s.replace(/[<>:"|?*]/g, "_").replace(/[. ]+$/, "");
  // No ".", "..", or hidden files: drop leading dots and spaces.
  s = s.replace(/^[. ]+/, "");
  if (/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i.test(s)) s = `_${s}`;
  if (s === "") s = "file";
  // Cut to a length every file system takes, keeping the extension.
  while (Buffer.byteLength(s) > MAX_NAME_BYTES) {
    const ext = extname(s);
    const stem = s.slice(0, s.length - ext.length);
    s = stem.length > 1 ? stem.slice(0, -1) + ext : s.slice(0, -1);
  }
  return s;
}

/** Bytes to save: all at once, or chunks as they come (a download, PROTOCOL.md §3.9). */
export type Bytes = Uint8Array | AsyncIterable<Uint8Array>;

/**
 * Writes `data` into `dir` (created if needed) under the safe form of `name`;
 * if that exists, "name (1).ext", "name (2).ext"... Creation is exclusive
 * (`wx`), so even a file appearing meanwhile is never overwritten. Chunks are
 * written as they come; if they fail (a download refused, its hash wrong) the
 * file is removed and the error thrown. Returns the path.
 */
export async function saveDownload(dir: string, name: string, data: Bytes): Promise<string> {
  await mkdir(dir, { recursive: true });
  const safe = safeFileName(name);
  const ext = extname(safe);
  const stem = basename(safe, ext) || safe;
  for (let i = 0; ; i++) {
    const candidate = join(dir, i === 0 ? safe : `${stem} (${i})${ext}`);
    let fh;
    try {
      fh = await open(candidate, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST" && i < 10_000) continue;
      throw e;
    }
    await writeAll(fh, candidate, data);
    return candidate;
  }
}

/** Writes `data` into `path`, which must not exist (never overwritten); removed again if the bytes fail. */
export async function saveAs(path: string, data: Bytes): Promise<string> {
  await writeAll(await open(path, "wx", 0o644), path, data);
  return path;
}

async function writeAll(fh: FileHandle, path: string, data: Bytes): Promise<void> {
  try {
    if (data instanceof Uint8Array) await fh.writeFile(data);
    else for await (const chunk of data) await fh.write(chunk);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw e;
  }
  await fh.close();
}

/** The list, in a downloads folder, of the messages whose files were saved there (one `mid<TAB>name` a line). */
export const SAVED_LIST = ".tcpchat-saved";

/**
 * Saves a message's file once: a message seen again (a replay with --since, a
 * second --listen on the same folder) gives the path it was saved to before, if
 * that file is still there with the file's size, instead of a copy (and without
 * downloading it again: `data` is called only when the file is to be written).
 * Messages are told apart by their mid, unique on the server (PROTOCOL.md §3.4).
 */
export async function saveDownloadOnce(dir: string, mid: number, name: string, size: number, data: () => Bytes): Promise<string> {
  const list = join(dir, SAVED_LIST);
  let known: string | undefined;
  try {
    for (const line of (await readFile(list, "utf8")).split("\n")) {
      const tab = line.indexOf("\t");
      if (tab > 0 && Number(line.slice(0, tab)) === mid) known = line.slice(tab + 1);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (known !== undefined && safeFileName(known) === known) {
    const path = join(dir, known);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile() && st.size === size) return path;
  }
  const path = await saveDownload(dir, name, data());
  await appendFile(list, `${mid}\t${basename(path)}\n`, { mode: 0o600 });
  return path;
}

/** A media type from a file name's extension (empty if unknown). */
export function mediaType(path: string): string {
  const t = Bun.file(path).type;
  return t === "application/octet-stream" ? "" : t.split(";")[0]!;
}
