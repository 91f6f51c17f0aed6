// register, login, logout. PROTOCOL.md §3.2
import { ProtocolError } from "../../protocol/errors.ts";
import type { RequestOf } from "../../protocol/requests.ts";
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
  const { hashMemory, hashTime } = ctx.core.config;
  return Bun.password.hash(pass, { algorithm: "argon2id", memoryCost: hashMemory, timeCost: hashTime });
}

export const register: Command<RequestOf<"register">> = {
  auth: false,
  async run(ctx, req): Promise<Reply> {
    const { store } = ctx.core;
    if (store.getUser(req.user)) throw new ProtocolError("conflict", `user "${req.user}" already exists`);
    const hash = await hashPassword(ctx, req.pass);
    ctx.core.assertRunning();
    // Checked again: another connection may have registered the name while we hashed.
    if (!store.createUser(req.user, hash, Date.now()))
      throw new ProtocolError("conflict", `user "${req.user}" already exists`);
    return { user: req.user };
  },
};

export const login: Command<RequestOf<"login">> = {
  auth: false,
  async run(ctx, req): Promise<Reply> {
    const { core, session } = ctx;
    if (session.user !== undefined) throw new ProtocolError("conflict", `already logged in as "${session.user}"`);
    const now = Date.now();
    // Guessing is throttled per user name and per address (PROTOCOL.md §3.2); the answer names no cause.
    const addr = session.transport.remoteAddress;
    const wait = Math.max(core.loginFailsUser.blockedFor(req.user, now), core.loginFailsAddr.blockedFor(addr, now));
    if (wait > 0) throw new ProtocolError("rate_limited", `too many failed logins: retry in ${Math.ceil(wait / 1000)} s`);
    const failed = (msg: string): never => {
      core.loginFailsUser.fail(req.user, now);
      core.loginFailsAddr.fail(addr, now);
      throw new ProtocolError("unauthorized", msg);
    };
    let token: string;
    let tokenHash: string;
    if (req.token !== undefined) {
      // Token lookup by its SHA-256: the comparison happens on a hash, so its timing says nothing of the token.
      token = req.token;
      tokenHash = hashToken(token);
      if (core.store.tokenUser(tokenHash, now) !== req.user) failed("invalid or expired token");
    } else {
      const user = core.store.getUser(req.user);
      dummyHash ??= hashPassword(ctx, "not a password of anyone");
      const ok = await Bun.password.verify(req.pass!, user?.passHash ?? (await dummyHash));
      core.assertRunning();
      if (!user || !ok) failed("wrong user name or password");
      token = newToken();
      tokenHash = hashToken(token);
      core.store.addToken(tokenHash, req.user, now, now + core.config.tokenTtl * 1000);
    }
    if (session.closed) return {};
    core.loginFailsUser.reset(req.user);
    session.user = req.user;
    session.tokenHash = tokenHash;
    core.attach(session);
    const c = core.config;
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
  async run(ctx, req): Promise<Reply> {
    const { core, session } = ctx;
    const user = session.user!;
    const now = Date.now();
    const addr = session.transport.remoteAddress;
    const wait = Math.max(core.loginFailsUser.blockedFor(user, now), core.loginFailsAddr.blockedFor(addr, now));
    if (wait > 0) throw new ProtocolError("rate_limited", `too many failed attempts: retry in ${Math.ceil(wait / 1000)} s`);
    const row = core.store.getUser(user);
    if (!row || !(await Bun.password.verify(req.old, row.passHash))) {
      core.loginFailsUser.fail(user, now);
      core.loginFailsAddr.fail(addr, now);
      throw new ProtocolError("unauthorized", "wrong password");
    }
    const hash = await hashPassword(ctx, req.new);
    core.assertRunning();
    if (session.closed || session.user !== user) return {};
    core.store.setPassword(user, hash);
    core.store.deleteUserTokens(user);
    const token = newToken();
    session.tokenHash = hashToken(token);
    core.store.addToken(session.tokenHash, user, now, now + core.config.tokenTtl * 1000);
    for (const other of core.hub.sessionsOf(user)) if (other !== session) core.bye(other, "password_changed");
    return { token };
  },
};

export const logout: Command<RequestOf<"logout">> = {
  auth: true,
  run({ core, session }) {
    if (session.tokenHash !== undefined) core.store.deleteToken(session.tokenHash);
    core.detach(session);
    return {};
  },
};
