// The non-interactive modes: --send (one message, exit status says whether the
// server stored it) and --listen (incoming messages, one per line, until killed).
import type { ChatClient } from "../client.ts";
import type { ChatMessage, LoginResult } from "../types.ts";
import type { CliOptions } from "./args.ts";
import { explain } from "./explain.ts";
import { saveDownloadOnce } from "./files.ts";
import { formatMessageLine, messageJson, targetLabel } from "./format.ts";
import type { Tty } from "./tty.ts";

export async function sendOnce(client: ChatClient, opts: CliOptions, tty: Tty, limits?: LoginResult["limits"]): Promise<number> {
  const to = opts.to!;
  try {
    const m = await client.send({ ...to, text: opts.send! }, { timeoutMs: opts.timeoutMs });
    if (opts.json) tty.stdout.write(`${messageJson(m)}\n`);
    return 0;
  } catch (e) {
    tty.stderr.write(`tcpchat chat: not sent to ${targetLabel(to)}: ${explain(e, { request: "send", where: targetLabel(to), limits })}\n`);
    return 1;
  }
}

/**
 * Prints every message delivered from the login on (or after --since), files
 * downloaded into --downloads if given (each message's once: files.ts), until SIGINT/SIGTERM (exit 0) or until the client gives
 * up (its token refused: exit 1). `login` is called after the listeners are in
 * place, so a catch-up delivered during the login is printed too.
 */
export async function listen(client: ChatClient, opts: CliOptions, tty: Tty, login: () => Promise<unknown>): Promise<number> {
  const me = opts.user;
  let chain = Promise.resolve();
  const show = async (m: ChatMessage) => {
    let saved: string | undefined;
    if (m.file && opts.downloads !== undefined) {
      try {
        // Asked for with --downloads: each file is downloaded (PROTOCOL.md §3.9), checked, saved once.
        saved = await saveDownloadOnce(opts.downloads, m.mid, m.file.name, m.file.size, () => client.download(m));
      } catch (e) {
        tty.stderr.write(`tcpchat chat: could not save ${JSON.stringify(m.file.name)} in ${opts.downloads}: ${explain(e)}\n`);
      }
    }
    tty.stdout.write(`${opts.json ? messageJson(m, saved) : formatMessageLine(m, me, saved)}\n`);
  };
  client.on("msg", (m) => {
    chain = chain.then(() => show(m));
  });
  const done = Promise.withResolvers<number>();
  const onSignal = () => done.resolve(0);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  client.on("state", (s) => {
    if (s === "closed") done.resolve(1);
  });
  client.on("error", (e) => tty.stderr.write(`tcpchat chat: ${explain(e)}\n`));
  try {
    await login();
    return await done.promise;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await chain;
  }
}
