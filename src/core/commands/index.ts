// The command table: request type -> handler. PROTOCOL.md §3
import type { CommandTable } from "../command.ts";
import { login, logout, passwd, register } from "./auth.ts";
import { convs, del, edit, react, read, search, typing } from "./entries.ts";
import { groups, join, leave, members } from "./groups.ts";
import { history, send, sync } from "./messages.ts";
import { ping } from "./ping.ts";

export const COMMANDS: CommandTable = {
  ping,
  register,
  login,
  logout,
  passwd,
  join,
  leave,
  groups,
  members,
  send,
  history,
  sync,
  edit,
  delete: del,
  react,
  read,
  convs,
  typing,
  search,
};
