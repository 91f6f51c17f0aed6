// The admin channel: a Unix socket (`--admin-socket`, by default `<db>.admin.sock` beside a
// SQLite file), created 0600, so only the server's own user (and root) can connect: the
// kernel checks the file's permissions at connect(), there is no secret to keep, and it is
// not reachable over the network the way the HTTP port is (README, "Operating tcpchat").
//
// One request per connection: a line of JSON `{cmd, args}`; the answer is a line of JSON,
// `{ok: true, result}` or `{ok: false, error}`, then the server closes. `tcpchat admin`
// (src/admin.ts) is the client. Every command is logged (event "admin", with its target).
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { isAbsolute } from "node:path";
import { type ChatCore, transportOf } from "../core/chat.ts";
import { fileBytes, type Store, type StoredMessage } from "../store/store.ts";
import type { Retention } from "./retention.ts";

export interface AdminContext {
  core: ChatCore;
  store: Store;
  retention?: Retention;
}

export class AdminError extends Error {}

/** Largest request line, bytes: commands are short. */
const MAX_LINE = 64 * 1024;
/** Messages read per page while exporting. */
const EXPORT_PAGE = 500;

function need(args: string[], n: number, usage: string): void {
  if (args.length < n) throw new AdminError(`usage: ${usage}`);
}

function fileJson(m: StoredMessage): Record<string, unknown> {
  const o: Record<string, unknown> = { mid: m.mid, ts: m.ts, time: new Date(m.ts).toISOString(), from: m.sender };
  if (m.grp !== undefined) o.group = m.grp;
  if (m.toUser !== undefined) o.to = m.toUser;
  if (m.cid !== undefined) o.cid = m.cid;
  if (m.text !== undefined) o.text = m.text;
  // A file as the message holds it (PROTOCOL.md §3.5), its bytes added by `withBytes`.
  if (m.file) o.file = { name: m.file.name, type: m.file.type, size: m.file.size, sha256: m.file.sha256 };
  // An entry that is not a message says what it is (PROTOCOL.md §3.5): an edit, a reaction, a change to a group.
  if (m.kind !== undefined) o.kind = m.kind;
  if (m.ref !== undefined) o[m.kind === undefined ? "reply" : "ref"] = m.ref;
  if (m.target !== undefined) o.target = m.target;
  if (m.until !== undefined) o.until = m.until;
  if (m.edited !== undefined) o.edited = m.edited;
  if (m.deleted !== undefined) o.deleted = m.deleted;
  return o;
}

/** An exported message's file with its bytes (base64), read from the store a chunk at a time (PROTOCOL.md §3.9). */
async function withBytes(store: Store, mid: number, o: Record<string, unknown>): Promise<Record<string, unknown>> {
  const f = await store.messageFile(mid);
  if (!f) return o;
  const parts: Uint8Array[] = [];
  for await (const b of fileBytes(store, f.file, f.size)) parts.push(b);
  (o.file as Record<string, unknown>).base64 = Buffer.concat(parts).toString("base64");
  return o;
}

/** Runs one admin command; its result is sent back as JSON. */
export async function runCommand(ctx: AdminContext, cmd: string, args: string[]): Promise<unknown> {
  const { core, store } = ctx;
  const log = (target: Record<string, unknown>) => core.event("info", "admin", { cmd, ...target });
  const userMustExist = async (user: string) => {
    if (!(await store.getUser(user))) throw new AdminError(`no user "${user}"`);
  };
  switch (cmd) {
    case "sessions": {
      const now = performance.now();
      const out = [];
      for (const s of core.allSessions) {
        if (s.closed) continue;
        out.push({
          sid: s.id,
          user: s.user ?? null,
          addr: s.transport.remoteAddress,
          transport: transportOf(s),
          seconds: Math.round((now - s.openedAt) / 1000),
          behind: s.behindSince !== 0,
          queued: s.writer.queued,
          received: s.received,
          sent: s.writer.written,
        });
      }
      return out;
    }
    case "kick": {
      need(args, 1, "kick USER");
      const closed = core.disconnectUser(args[0]!, "kicked");
      log({ user: args[0], closed });
      return { user: args[0], closed };
    }
    case "ban": {
      need(args, 1, "ban USER [REASON]");
      const user = args[0]!;
      await userMustExist(user);
      await store.ban(user, args.slice(1).join(" "), Date.now());
      await store.deleteUserTokens(user);
      const closed = core.disconnectUser(user, "banned");
      log({ user, closed });
      return { user, banned: true, closed };
    }
    case "unban": {
      need(args, 1, "unban USER");
      const unbanned = await store.unban(args[0]!);
      log({ user: args[0], unbanned });
      return { user: args[0], unbanned };
    }
    case "bans":
      return await store.bans();
    case "reset-password": {
      need(args, 1, "reset-password USER");
      const user = args[0]!;
      await userMustExist(user);
      const password = Buffer.from(crypto.getRandomValues(new Uint8Array(15))).toString("base64url");
      const { hashMemory, hashTime } = core.config;
      const hash = await Bun.password.hash(password, { algorithm: "argon2id", memoryCost: hashMemory, timeCost: hashTime });
      await store.setPassword(user, hash);
      await store.deleteUserTokens(user);
      const closed = core.disconnectUser(user, "password_changed");
      log({ user, closed });
      // The one place the new password appears: the admin's answer (never the log).
      return { user, password, closed };
    }
    case "delete-group": {
      need(args, 1, "delete-group GROUP");
      const group = args[0]!;
      if (!(await store.getGroup(group))) throw new AdminError(`no group "${group}"`);
      const members = (await store.allMemberships()).filter((m) => m.grp === group);
      // Each leave is a commit of its own, applied by every node in order with the messages.
      for (const m of members) {
        const seq = await store.removeMember(group, m.user);
        if (seq > 0) await core.membership(seq, { kind: "leave", group, user: m.user });
      }
      const messages = await store.deleteGroup(group);
      log({ group, members: members.length, messages });
      return { group, members: members.length, messages };
    }
    case "delete-user": {
      need(args, 1, "delete-user USER");
      const user = args[0]!;
      await userMustExist(user);
      // Banned first (reason "deleted"): no login gets in while the rest is done.
      await store.ban(user, "deleted", Date.now());
      const closed = core.disconnectUser(user, "banned");
      const groups = await store.userGroups(user);
      for (const g of groups) {
        const seq = await store.removeMember(g.name, user);
        if (seq > 0) await core.membership(seq, { kind: "leave", group: g.name, user });
      }
      const messages = await store.eraseUser(user);
      core.forgetUser(user);
      log({ user, closed, groups: groups.length, messages });
      return { user, deleted: true, closed, groups: groups.length, messages };
    }
    case "export": {
      need(args, 1, "export USER");
      const user = args[0]!;
      await userMustExist(user);
      const messages: Record<string, unknown>[] = [];
      for (let after = 0; ; ) {
        const page = await store.userMessages(user, after, EXPORT_PAGE);
        for (const m of page) messages.push(m.file ? await withBytes(store, m.mid, fileJson(m)) : fileJson(m));
        if (page.length < EXPORT_PAGE) break;
        after = page[page.length - 1]!.mid;
      }
      const groups = await store.userGroups(user);
      log({ user, messages: messages.length });
      return {
        user,
        exported: new Date().toISOString(),
        banned: await store.banned(user),
        groups: groups.map((g) => ({ group: g.name, owner: g.owner })),
        messages,
      };
    }
    case "backup": {
      need(args, 1, "backup FILE");
      const file = args[0]!;
      if (!isAbsolute(file)) throw new AdminError("backup: give an absolute path (tcpchat admin resolves a relative one)");
      if (existsSync(file)) throw new AdminError(`backup: ${file} exists already`);
      const t0 = performance.now();
      try {
        await store.backup(file);
      } catch (e) {
        throw new AdminError(`backup: ${(e as Error).message}`);
      }
      const ms = Math.round(performance.now() - t0);
      const bytes = Bun.file(file).size;
      log({ file, bytes, ms });
      return { file, bytes, ms };
    }
    case "purge": {
      const r = ctx.retention;
      if (!r || r.days <= 0) throw new AdminError("purge: retention is off (--retain-days 0)");
      const purged = await r.run();
      log({ purged });
      return { purged, days: r.days };
    }
    default:
      throw new AdminError(`unknown command "${cmd}" (tcpchat admin --help lists them)`);
  }
}

export interface AdminListening {
  path: string;
  close(): Promise<void>;
}

/** Whether a server answers on the Unix socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** Listens on `path` (0600); a stale socket file of a server that is gone is replaced. */
export async function serveAdmin(path: string, ctx: AdminContext): Promise<AdminListening> {
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
    if (await answers(path)) throw new Error(`another server answers on ${path}`);
    unlinkSync(path);
  }
  const open = new Set<Socket>();
  const server: Server = createServer((sock) => {
    open.add(sock);
    sock.on("close", () => open.delete(sock));
    sock.on("error", () => {});
    let buf = "";
    let done = false;
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      if (done) return;
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) {
        if (buf.length > MAX_LINE) {
          done = true;
          sock.end(`${JSON.stringify({ ok: false, error: "request too long" })}\n`);
        }
        return;
      }
      done = true;
      void answer(buf.slice(0, nl)).then((reply) => sock.end(`${reply}\n`));
    });
  });
  const answer = async (line: string): Promise<string> => {
    try {
      const req = JSON.parse(line) as { cmd?: unknown; args?: unknown };
      if (typeof req.cmd !== "string" || !Array.isArray(req.args) || !req.args.every((a) => typeof a === "string"))
        throw new AdminError("a request is {cmd: string, args: string[]}");
      return JSON.stringify({ ok: true, result: await runCommand(ctx, req.cmd, req.args as string[]) });
    } catch (e) {
      if (!(e instanceof AdminError) && !(e instanceof SyntaxError)) ctx.core.log.error("admin: command failed", e);
      return JSON.stringify({ ok: false, error: (e as Error).message });
    }
  };
  // Created without group or other permission bits from the start (then chmod, whatever the umask did).
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return {
    path,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      });
      try {
        unlinkSync(path);
      } catch {
        // gone already
      }
    },
  };
}
