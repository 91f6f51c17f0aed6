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
    const { core, session } = ctx;
    const { store } = core;
    if (store.getUser(req.user)) throw new ProtocolError("conflict", `user "${req.user}" already exists`);
    // Per address per hour, and in their own bounded hashing queue (PROTOCOL.md §3.2).
    const hash = await core.guard.register(session.addr, () => hashPassword(ctx, req.pass));
    core.assertRunning();
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
    const { guard, hub } = core;
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
      if (core.store.tokenUser(tokenHash, now) !== req.user)
        throw new ProtocolError("unauthorized", "invalid or expired token");
    } else {
      // Refused before the hash, so that the refusal cannot tell a right password from a wrong one.
      guard.admit(req.user, hub.sessionCount(req.user), false);
      const user = core.store.getUser(req.user);
      dummyHash ??= hashPassword(ctx, "not a password of anyone");
      const stored = user?.passHash ?? (await dummyHash);
      // Throttled per (user, address) and per address (PROTOCOL.md §3.2); the answer names no cause.
      const ok = await guard.password(req.user, session.addr, () => Bun.password.verify(req.pass!, stored));
      core.assertRunning();
      if (!user || !ok) throw new ProtocolError("unauthorized", "wrong user name or password");
      token = newToken();
      tokenHash = hashToken(token);
    }
    if (session.closed) return {};
    guard.admit(req.user, hub.sessionCount(req.user), true);
    if (req.token === undefined)
      core.store.addToken(tokenHash, req.user, now, now + core.config.tokenTtl * 1000, core.config.maxTokensPerUser);
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
    const row = core.store.getUser(user);
    let hash = "";
    // One slot of the password pool for both the check and the new hash.
    const ok = await core.guard.password(user, session.addr, async () => {
      if (!row || !(await Bun.password.verify(req.old, row.passHash))) return false;
      hash = await hashPassword(ctx, req.new);
      return true;
    });
    if (!ok) throw new ProtocolError("unauthorized", "wrong password");
    core.assertRunning();
    if (session.closed || session.user !== user) return {};
    const now = Date.now();
    core.store.setPassword(user, hash);
    core.store.deleteUserTokens(user);
    const token = newToken();
    session.tokenHash = hashToken(token);
    core.store.addToken(session.tokenHash, user, now, now + core.config.tokenTtl * 1000, core.config.maxTokensPerUser);
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
