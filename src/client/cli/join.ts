// Joining a group for --join (scripts and bots): join it, and create it if there is none
// (PROTOCOL.md §3.3: `join` never creates; `create` is its own request). Interactive /join
// does not create: it says how to (src/client/cli/commands.ts).
import type { ChatClient } from "../client.ts";
import { ChatError } from "../errors.ts";

export interface Joined {
  group: string;
  /** The group did not exist: it was created, and the caller owns it. */
  created: boolean;
  owner: string;
}

/** Joins `group`, creating it if there is none. */
export async function joinOrCreate(client: ChatClient, group: string): Promise<Joined> {
  try {
    const r = await client.join(group);
    return { group: r.group, created: false, owner: r.owner };
  } catch (e) {
    if (!(e instanceof ChatError) || e.code !== "not_found") throw e;
  }
  try {
    await client.createGroup(group);
    return { group, created: true, owner: client.user ?? "" };
  } catch (e) {
    // Created by someone else meanwhile: join it after all.
    if (!(e instanceof ChatError) || e.code !== "conflict") throw e;
    const r = await client.join(group);
    return { group: r.group, created: false, owner: r.owner };
  }
}
