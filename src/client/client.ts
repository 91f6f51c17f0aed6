// ChatClient for Bun: the client of core.ts, which speaks WebSocket, plus TCP
// servers (`host` and `port`, or `servers: [{host, port}]`) and files on disk
// (uploads from a path, downloads into a path). index.ts exports it.
import { open, stat, unlink } from "node:fs/promises";
import { basename } from "node:path";
import { checkServer } from "./address.ts";
import { HOST_AND_PORT, ChatClient as WebSocketChatClient } from "./core.ts";
import type { DownloadOptions, SendFileOptions, UploadOptions, UploadResult, UploadSource } from "./files.ts";
import type { Endpoint, ServerAddress } from "./link.ts";
import type { ChatMessage, ClientOptions, Target } from "./types.ts";
import { tcpEndpoint } from "./transport.ts";

/** A file path as an upload source: Bun.file(), read a slice at a time. ENOENT, EISDIR... as fs errors. */
async function pathSource(path: string): Promise<Blob> {
  const st = await stat(path);
  if (!st.isFile()) throw Object.assign(new Error(`${path} is not a file`), { code: st.isDirectory() ? "EISDIR" : "EINVAL" });
  return Bun.file(path);
}

/** A file's media type from its name, as Bun knows it; "" when unknown (not "application/octet-stream"). */
export function mediaTypeOf(path: string): string {
  const t = Bun.file(path).type.split(";")[0]!;
  return t === "application/octet-stream" ? "" : t;
}

export class ChatClient extends WebSocketChatClient {
  /** As core.ts's connect() (it makes an instance of `this` class), typed as this class. */
  static override async connect(options: ClientOptions = {}): Promise<ChatClient> {
    return (await super.connect(options)) as ChatClient;
  }

  /** `{host, port}`: TCP; `{url}`: WebSocket. */
  protected override endpoint(entry: unknown, where: string): Endpoint {
    if (typeof entry === "object" && entry !== null && "url" in entry) return super.endpoint(entry, where);
    // The `host` and `port` options are taken as given, as they always were: a bad one fails to connect.
    if (where === HOST_AND_PORT) return tcpEndpoint(entry as ServerAddress);
    return tcpEndpoint(checkServer(entry, where));
  }

  /** As core.ts's, and also from a file path (read incrementally with Bun.file().slice()). */
  override async uploadFile(source: UploadSource | string, opts: UploadOptions = {}): Promise<UploadResult> {
    return super.uploadFile(typeof source === "string" ? await pathSource(source) : source, opts);
  }

  /** As core.ts's, and also from a file path: named by its last part, typed by its extension, unless given. */
  override async sendFile(target: Target, source: UploadSource | string, opts: SendFileOptions = {}): Promise<ChatMessage> {
    if (typeof source !== "string") return super.sendFile(target, source, opts);
    const blob = await pathSource(source);
    return super.sendFile(target, blob, { ...opts, name: opts.name ?? basename(source), type: opts.type ?? mediaTypeOf(source) });
  }

  /**
   * Downloads a message's file into `path` (download(): in chunks, checked against the message's
   * SHA-256). `flag` as fs.open's: "wx" (the default) never overwrites a file. On any failure
   * the file is removed. Resolves with the number of bytes written.
   */
  async downloadToFile(m: ChatMessage | number, path: string, opts: DownloadOptions & { flag?: string } = {}): Promise<number> {
    const fh = await open(path, opts.flag ?? "wx", 0o644);
    let written = 0;
    try {
      for await (const chunk of this.download(m, opts)) {
        await fh.write(chunk);
        written += chunk.length;
      }
    } catch (e) {
      await fh.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw e;
    }
    await fh.close();
    return written;
  }
}
