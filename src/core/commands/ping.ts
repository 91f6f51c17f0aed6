import type { Command } from "../command.ts";

/** `ping {}` -> `{t:"pong", id}`. Allowed before login. PROTOCOL.md §3.1 */
export const ping: Command<{ t: "ping" }> = {
  auth: false,
  run: () => ({ t: "pong" }),
};
