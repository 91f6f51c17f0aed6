// Blocking and who may send one direct messages: block, unblock, blocked, privacy. PROTOCOL.md §3.8
import type { RequestOf } from "../../protocol/requests.ts";
import type { Command, Reply } from "../command.ts";
import { requireUser } from "./checks.ts";

export const block: Command<RequestOf<"block">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const check = requireUser(ctx, req.user);
    if (check !== undefined) await check;
    const changed = await ctx.store.setBlock(session.user!, req.user, true, Date.now());
    return { user: req.user, changed };
  },
};

export const unblock: Command<RequestOf<"unblock">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    const changed = await ctx.store.setBlock(session.user!, req.user, false, Date.now());
    return { user: req.user, changed };
  },
};

export const blocked: Command<RequestOf<"blocked">> = {
  auth: true,
  async run(ctx, session): Promise<Reply> {
    return { users: await ctx.store.blocked(session.user!) };
  },
};

export const privacy: Command<RequestOf<"privacy">> = {
  auth: true,
  async run(ctx, session, req): Promise<Reply> {
    if (req.dms !== undefined) await ctx.store.setDmPolicy(session.user!, req.dms);
    return { dms: await ctx.store.dmPolicy(session.user!) };
  },
};
