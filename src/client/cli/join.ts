// Joining a group, for /join and --join: the one place that asks the server for it.
// Today `join` creates a group that does not exist (PROTOCOL.md §3.3); when
// creating becomes a request of its own, only this function changes.
import type { ChatClient } from "../client.ts";

export interface Joined {
  group: string;
  /** The group did not exist: it was created, and the caller owns it. */
  created: boolean;
  owner: string;
}

/** Joins `group`, creating it if there is none. */
export async function joinOrCreate(client: ChatClient, group: string): Promise<Joined> {
  const r = await client.join(group);
  return { group: r.group, created: r.created, owner: r.owner };
}
