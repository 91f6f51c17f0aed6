// The command table: request type -> handler. PROTOCOL.md §3
import type { CommandTable } from "../command.ts";
import { login, logout, passwd, register } from "./auth.ts";
import { convs, del, edit, react, read, search, typing } from "./entries.ts";
import { chunk, download, upload } from "./files.ts";
import { ban, configure, create, groups, invite, join, kick, leave, list, members, mute, role, transfer, unban, unmute } from "./groups.ts";
import { history, send, sync } from "./messages.ts";
import { ping } from "./ping.ts";
import { block, blocked, privacy, unblock } from "./safety.ts";

export const COMMANDS: CommandTable = {
  ping,
  register,
  login,
  logout,
  passwd,
  create,
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
  invite,
  kick,
  ban,
  unban,
  mute,
  unmute,
  role,
  transfer,
  configure,
  list,
  block,
  unblock,
  blocked,
  privacy,
  upload,
  chunk,
  download,
};
