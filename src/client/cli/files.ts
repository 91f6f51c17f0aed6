// Saving received files. The name comes from another user: it must not pick
// the directory (no path parts, no "..", no hidden dot-files), must not carry
// control characters, and must never overwrite an existing file.
import { appendFile, mkdir, open, readFile, stat } from "node:fs/promises";
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

/**
 * Writes `data` into `dir` (created if needed) under the safe form of `name`;
 * if that exists, "name (1).ext", "name (2).ext"... Creation is exclusive
 * (`wx`), so even a file appearing meanwhile is never overwritten. Returns the path.
 */
export async function saveDownload(dir: string, name: string, data: Uint8Array): Promise<string> {
  await mkdir(dir, { recursive: true });
  const safe = safeFileName(name);
  const ext = extname(safe);
  const stem = basename(safe, ext) || safe;
  for (let i = 0; ; i++) {
    const candidate = join(dir, i === 0 ? safe : `${stem} (${i})${ext}`);
    let fh;
    try {
      fh = await open(candidate, "wx");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST" && i < 10_000) continue;
      throw e;
    }
    try {
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
    return candidate;
  }
}

/** The list, in a downloads folder, of the messages whose files were saved there (one `mid<TAB>name` a line). */
export const SAVED_LIST = ".tcpchat-saved";

/**
 * Saves a message's file once: a message seen again (a replay with --since, a
 * second --listen on the same folder) gives the path it was saved to before, if
 * that file is still there with the same size, instead of a copy. Messages are
 * told apart by their mid, unique on the server (PROTOCOL.md §3.4).
 */
export async function saveDownloadOnce(dir: string, mid: number, name: string, data: Uint8Array): Promise<string> {
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
    if (st?.isFile() && st.size === data.length) return path;
  }
  const path = await saveDownload(dir, name, data);
  await appendFile(list, `${mid}\t${basename(path)}\n`, { mode: 0o600 });
  return path;
}

/** A media type from a file name's extension (empty if unknown). */
export function mediaType(path: string): string {
  const t = Bun.file(path).type;
  return t === "application/octet-stream" ? "" : t.split(";")[0]!;
}
