// register, login, logout. PROTOCOL.md §3.2
import { ProtocolError } from "../../protocol/errors.ts";
import { maxChunk, type RequestOf } from "../../protocol/requests.ts";
import type { Command, Context, Reply } from "../command.ts";

/** A real argon2id hash to verify against when the user does not exist, so a miss costs what a hit costs. */
let dummyHash: Promise<string> | undefined;

export function hashToken(token: string): string {
  return new Bun.CryptoHasher("sha256").update(token).digest("hex");
}

function newToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}

function hashPassword(ctx: Context, pass: string): Promise<string> {
  const { hashMemory, hashTime } = ctx.config;
  return Bun.password.hash(pass, { algorithm: "argon2id", memoryCost: hashMemory, timeCost: hashTime });
}

export const register: Command<RequestOf<"register">> = {
  auth: false,
  long: true,
  async run(ctx, session, req): Promise<Reply> {
    const { store } = ctx;
    if (await store.getUser(req.user)) throw new ProtocolError("conflict", `user "${req.user}" already exists`);
    // Per address per hour, and in their own bounded hashing queue (PROTOCOL.md §3.2).
    const hash = await ctx.guard.register(session.addr, () => hashPassword(ctx, req.pass));
    ctx.assertRunning();
    // Checked again: another connection may have registered the name while we hashed.
    if (!(await store.createUser(req.user, hash, Date.now())))
      throw new ProtocolError("conflict", `user "${req.user}" already exists`);
    return { user: req.user };
  },
};

export const login: Command<RequestOf<"login">> = {
  auth: false,
  long: true,
  async run(ctx, session, req): Promise<Reply> {
    if (session.user !== undefined) throw new ProtocolError("conflict", `already logged in as "${session.user}"`);
    const { guard, hub, store } = ctx;
    const now = Date.now(); // token times are wall-clock: tokens outlive the process
    let token: string;
    let tokenHash: string;
    if (req.token !== undefined) {
      // Token lookup by its SHA-256: the comparison happens on a hash, so its timing says nothing of the token.
      // A valid token is never refused for failed logins. A bogus one touches no password backoff (it
      // would slow everyone's password logins behind its address); a 256-bit token cannot be guessed,
      // and what bounds the lookups is the request rate and the refusal count (PROTOCOL.md §3.2).
      token = req.token;
      tokenHash = hashToken(token);
      if ((await store.tokenUser(tokenHash, now)) !== req.user)
        throw new ProtocolError("unauthorized", "invalid or expired token");
    } else {
      // Refused before the hash, so that the refusal cannot tell a right password from a wrong one.
      guard.admit(req.user, hub.sessionCount(req.user), false);
      const user = await store.getUser(req.user);
      dummyHash ??= hashPassword(ctx, "not a password of anyone");
      const stored = user?.passHash ?? (await dummyHash);
      // Throttled per (user, address) and per address (PROTOCOL.md §3.2); the answer names no cause.
      const ok = await guard.password(req.user, session.addr, () => Bun.password.verify(req.pass!, stored));
      ctx.assertRunning();
      if (!user || !ok) throw new ProtocolError("unauthorized", "wrong user name or password");
      token = newToken();
      tokenHash = hashToken(token);
    }
    if (session.closed) return {};
    // Asked only of the right credentials, so the answer tells nothing to anyone else (`tcpchat admin ban`).
    if (await store.banned(req.user)) throw new ProtocolError("unauthorized", "this account is banned");
    const c = ctx.config;
    if (req.token === undefined) {
      // Checked before the token is stored, and taken below with no wait between it and attach.
      guard.admit(req.user, hub.sessionCount(req.user), false);
      await store.addToken(tokenHash, req.user, now, now + c.tokenTtl * 1000, c.maxTokensPerUser);
      ctx.assertRunning();
      if (session.closed) return {};
    }
    try {
      guard.admit(req.user, hub.sessionCount(req.user), true);
    } catch (e) {
      // Another login of the user took the last place while the token was stored: it is nobody's.
      if (req.token === undefined) store.deleteToken(tokenHash).catch(() => {});
      throw e;
    }
    session.user = req.user;
    session.tokenHash = tokenHash;
    // In a cluster: answered once the other nodes will hear of this session before anything later.
    const told = ctx.attach(session);
    if (told !== undefined) await told;
    return {
      user: req.user,
      token,
      // where live pushes begin: `sync {after: mid}` from here on misses nothing
      mid: session.lastPushedMid,
      limits: {
        rate_msgs: c.rateMsgs,
        rate_bytes: c.rateBytes,
        rate_burst: c.rateBurst,
        max_frame: c.maxFrame,
        max_text: c.maxText,
        max_page: c.maxPage,
        max_file: c.maxFile,
        file_quota: c.fileQuota,
        max_chunk: maxChunk(c.maxFrame),
      },
    };
  },
};

/**
 * `passwd {old, new}`: checks the old password (throttled like login), stores the new
 * hash, revokes every token of the user, closes the user's other connections with
 * `bye {reason: "password_changed"}`, and gives this connection a new token.
 */
export const passwd: Command<RequestOf<"passwd">> = {
  auth: true,
  long: true,
  async run(ctx, session, req): Promise<Reply> {
    const { store } = ctx;
    const user = session.user!;
    const row = await store.getUser(user);
    let hash = "";
    // One slot of the password pool for both the check and the new hash.
    const ok = await ctx.guard.password(user, session.addr, async () => {
      if (!row || !(await Bun.password.verify(req.old, row.passHash))) return false;
      hash = await hashPassword(ctx, req.new);
      return true;
    });
    if (!ok) throw new ProtocolError("unauthorized", "wrong password");
    ctx.assertRunning();
    if (session.closed || session.user !== user) return {};
    const now = Date.now();
    await store.setPassword(user, hash);
    await store.deleteUserTokens(user);
    const token = newToken();
    const tokenHash = hashToken(token);
    await store.addToken(tokenHash, user, now, now + ctx.config.tokenTtl * 1000, ctx.config.maxTokensPerUser);
    ctx.assertRunning();
    if (session.closed || session.user !== user) return {};
    session.tokenHash = tokenHash;
    for (const other of ctx.hub.sessionsOf(user)) if (other !== session) ctx.bye(other, "password_changed");
    ctx.revokeElsewhere(user);
    return { token };
  },
};

export const logout: Command<RequestOf<"logout">> = {
  auth: true,
  async run(ctx, session): Promise<Reply> {
    if (session.tokenHash !== undefined) await ctx.store.deleteToken(session.tokenHash);
    ctx.detach(session);
    return {};
  },
};
