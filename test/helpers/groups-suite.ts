// Groups and safety end to end (PROTOCOL.md §3.3, §3.8): explicit creation, public and private
// groups, roles, moderation, the group's log of changes, blocking and the direct-message policy.
// Real server processes and real loopback sockets; run against one server on a SQLite file
// (test/groups.test.ts) and against a cluster, each new connection on the next node
// (test/cluster-groups.test.ts). Every rule of §3.3 is tried for every role that may meet it.
import { describe, expect, test } from "bun:test";
import { TestClient } from "./client.ts";
import { type E2ETarget, suiteClients } from "./e2e-suite.ts";
import type { Msg } from "./wire.ts";

export function groupsSuite(open: () => Promise<E2ETarget>): void {
  const { uniq, user, device, settle } = suiteClients(open);

  /** The group-change entries (pushes with a kind other than the conversation ones) a client got, as "kind from>target". */
  function changes(c: TestClient, group: string): string[] {
    return c
      .pushes("msg")
      .filter((m) => m.group === group && typeof m.target === "string")
      .map((m) => `${m.kind} ${m.from}>${m.target}`);
  }

  /** A group owned by a fresh user, with `members` fresh users in it: [owner, ...members]. */
  async function community(members: number, opts: Msg = {}): Promise<{ group: string; owner: TestClient; others: TestClient[] }> {
    const owner = await user("own");
    const group = uniq("g");
    await owner.ok({ t: "create", group, ...opts });
    const others: TestClient[] = [];
    for (let i = 0; i < members; i++) {
      const u = await user("m");
      if (opts.public === false) await owner.ok({ t: "invite", group, user: u.user });
      await u.ok({ t: "join", group });
      others.push(u);
    }
    return { group, owner, others };
  }

  describe("creation", () => {
    test("joining a group that does not exist is not_found; create makes it, once", async () => {
      const a = await user();
      const g = uniq("g");
      expect(await a.request({ t: "join", group: g })).toMatchObject({ t: "error", code: "not_found" });
      // nothing was created by the failed join
      expect(await a.request({ t: "members", group: g })).toMatchObject({ t: "error", code: "not_found" });
      const r = await a.ok({ t: "create", group: g, topic: "deploys", description: "what ships" });
      expect(r.group).toBe(g);
      expect(typeof r.mid).toBe("number");
      const b = await user();
      expect(await b.request({ t: "create", group: g })).toMatchObject({ t: "error", code: "conflict" });
      const j = await b.ok({ t: "join", group: g });
      expect(j).toMatchObject({ group: g, owner: a.user, topic: "deploys" });
      expect(j.mid).toBeGreaterThan(r.mid);
      // joining again changes nothing: no entry
      const again = await b.ok({ t: "join", group: g });
      expect(again.mid).toBeUndefined();
      const groups = await b.ok({ t: "groups" });
      expect(groups.groups).toEqual([{ group: g, owner: a.user, role: "member", public: true, topic: "deploys", description: "what ships" }]);
      const members = await a.ok({ t: "members", group: g });
      expect(members.members.map((m: Msg) => [m.user, m.role])).toEqual(
        [
          [a.user, "owner"],
          [b.user, "member"],
        ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
      );
    });

    test("the group's log holds create and join, for history and for the members' pushes", async () => {
      const { group, owner, others } = await community(1, { topic: "t1" });
      const [m] = others;
      await owner.waitFor((x) => x.t === "msg" && x.kind === "join" && x.from === m!.user);
      const h = await m!.ok({ t: "history", group });
      expect(h.msgs.map((x: Msg) => `${x.kind} ${x.from}>${x.target}`)).toEqual([`create ${owner.user}>${owner.user}`, `join ${m!.user}>${m!.user}`]);
      expect(h.msgs[0].settings).toEqual({ topic: "t1" });
      // the joiner's own connection has the reply, not a push; another device of theirs gets the push
      expect(changes(m!, group)).toEqual([]);
    });

    test("list finds public groups by name, never private ones, and pages with after", async () => {
      const a = await user();
      const stem = uniq("dir");
      for (const s of ["a", "b", "c"]) await a.ok({ t: "create", group: `${stem}${s}`, topic: `topic ${s}` });
      await a.ok({ t: "create", group: `${stem}hidden`, public: false });
      const b = await user();
      const first = await b.ok({ t: "list", q: stem, limit: 2 });
      expect(first.groups).toEqual([
        { group: `${stem}a`, topic: "topic a", members: 1 },
        { group: `${stem}b`, topic: "topic b", members: 1 },
      ]);
      expect(first.more).toBe(true);
      const second = await b.ok({ t: "list", q: stem.toUpperCase(), after: `${stem}b` });
      expect(second.groups.map((g: Msg) => g.group)).toEqual([`${stem}c`]);
      expect(second.more).toBe(false);
      // made private: gone from the directory
      await a.ok({ t: "configure", group: `${stem}c`, public: false });
      expect((await b.ok({ t: "list", q: stem })).groups.map((g: Msg) => g.group)).toEqual([`${stem}a`, `${stem}b`]);
    });
  });

  describe("private groups", () => {
    test("cannot be joined, or even seen, without an invitation; the invitation is used up", async () => {
      const { group, owner } = await community(0, { public: false, topic: "secret plans" });
      const b = await user();
      expect(await b.request({ t: "join", group })).toMatchObject({ t: "error", code: "not_found" });
      expect(await b.request({ t: "members", group })).toMatchObject({ t: "error", code: "not_found" });
      expect(await b.request({ t: "history", group })).toMatchObject({ t: "error", code: "not_found" });
      expect(await b.request({ t: "send", group, text: "hi" })).toMatchObject({ t: "error", code: "not_found" });
      // a member who is not a moderator cannot invite
      const inv = await owner.ok({ t: "invite", group, user: b.user });
      expect(typeof inv.mid).toBe("number");
      // the invitee is told, live, and by `groups`
      const push = await b.waitFor((m) => m.t === "msg" && m.kind === "invite");
      expect(push).toMatchObject({ group, from: owner.user, target: b.user });
      expect((await b.ok({ t: "groups" })).invites).toEqual([{ group, by: owner.user, topic: "secret plans" }]);
      await b.ok({ t: "join", group });
      expect((await b.ok({ t: "groups" })).invites).toEqual([]);
      const c = await user();
      expect(await b.request({ t: "invite", group, user: c.user })).toMatchObject({ t: "error", code: "forbidden" });
      // after leaving, the invitation is gone: no way back in
      await b.ok({ t: "leave", group });
      expect(await b.request({ t: "join", group })).toMatchObject({ t: "error", code: "not_found" });
    });

    test("an invitee's offline device learns the invitation from sync", async () => {
      const { group, owner } = await community(0, { public: false });
      const b = await user();
      const mark = (await b.ok({ t: "sync", after: 0 })).msgs.at(-1)?.mid ?? 0;
      b.close();
      await owner.ok({ t: "invite", group, user: b.user });
      const b2 = await device(b);
      const s = await b2.ok({ t: "sync", after: mark });
      expect(s.msgs.map((m: Msg) => `${m.kind} ${m.target}`)).toEqual([`invite ${b.user}`]);
    });
  });

  describe("roles and moderation", () => {
    test("only moderators moderate, and only those of lower rank; every change reaches the members live", async () => {
      const { group, owner, others } = await community(3);
      const [adm, m1, m2] = others as [TestClient, TestClient, TestClient];
      // members cannot moderate
      for (const t of ["kick", "ban", "mute", "invite"]) expect(await m1.request({ t, group, user: m2.user })).toMatchObject({ code: "forbidden" });
      expect(await m1.request({ t: "configure", group, topic: "x" })).toMatchObject({ code: "forbidden" });
      expect(await m1.request({ t: "role", group, user: m2.user, role: "admin" })).toMatchObject({ code: "forbidden" });
      // the owner makes an admin
      await owner.ok({ t: "role", group, user: adm.user, role: "admin" });
      // an admin cannot promote, cannot touch the owner or another admin, cannot act on themselves
      expect(await adm.request({ t: "role", group, user: m1.user, role: "admin" })).toMatchObject({ code: "forbidden" });
      expect(await adm.request({ t: "kick", group, user: owner.user })).toMatchObject({ code: "forbidden" });
      expect(await adm.request({ t: "ban", group, user: owner.user })).toMatchObject({ code: "forbidden" });
      expect(await adm.request({ t: "kick", group, user: adm.user })).toMatchObject({ code: "forbidden" });
      // an admin kicks a member; a kick of a non-member is not_found; of nobody at all, not_found
      await adm.ok({ t: "kick", group, user: m2.user });
      expect(await adm.request({ t: "kick", group, user: m2.user })).toMatchObject({ code: "not_found" });
      expect(await adm.request({ t: "kick", group, user: "nosuchuser" })).toMatchObject({ code: "not_found" });
      // the kicked member was told (member or not by then), and may come back to a public group
      const k = await m2.waitFor((m) => m.t === "msg" && m.kind === "kick");
      expect(k).toMatchObject({ group, from: adm.user, target: m2.user });
      expect(await m2.request({ t: "send", group, text: "still here?" })).toMatchObject({ code: "forbidden" });
      await m2.ok({ t: "join", group });
      // a settings change by an admin
      await adm.ok({ t: "configure", group, topic: "new topic" });
      await m1.waitFor((m) => m.t === "msg" && m.kind === "settings" && m.settings?.topic === "new topic");
      expect((await m1.ok({ t: "join", group })).topic).toBe("new topic");
      // the owner demotes the admin, who then cannot moderate
      await owner.ok({ t: "role", group, user: adm.user, role: "member" });
      expect(await adm.request({ t: "kick", group, user: m1.user })).toMatchObject({ code: "forbidden" });
      await settle();
      expect(changes(m1, group)).toEqual([
        `join ${m2.user}>${m2.user}`,
        `role ${owner.user}>${adm.user}`,
        `kick ${adm.user}>${m2.user}`,
        `join ${m2.user}>${m2.user}`,
        `settings ${adm.user}>${adm.user}`,
        `role ${owner.user}>${adm.user}`,
      ]);
    });

    test("a banned member cannot return until unbanned, also through an invitation", async () => {
      const { group, owner, others } = await community(1);
      const [m] = others as [TestClient];
      await owner.ok({ t: "ban", group, user: m.user });
      // m is told; once m's node has the ban (in a cluster, over the bus), m's sends are refused
      await m.waitFor((x) => x.t === "msg" && x.kind === "ban");
      expect(await m.request({ t: "join", group })).toMatchObject({ t: "error", code: "forbidden" });
      expect(await m.request({ t: "send", group, text: "x" })).toMatchObject({ t: "error", code: "forbidden" });
      expect(await owner.request({ t: "invite", group, user: m.user })).toMatchObject({ t: "error", code: "forbidden" });
      // a ban of one who is not a member keeps them out too
      const stranger = await user();
      await owner.ok({ t: "ban", group, user: stranger.user });
      expect(await stranger.request({ t: "join", group })).toMatchObject({ code: "forbidden" });
      // banning again changes nothing
      expect((await owner.ok({ t: "ban", group, user: stranger.user })).mid).toBeUndefined();
      await owner.ok({ t: "unban", group, user: m.user });
      await m.ok({ t: "join", group });
      await m.ok({ t: "send", group, text: "back" });
    });

    test("a muted member cannot send, edit or react until unmuted or the mute ends; others can", async () => {
      const { group, owner, others } = await community(2);
      const [m, other] = others as [TestClient, TestClient];
      const sent = await m.ok({ t: "send", group, text: "before" });
      await owner.ok({ t: "mute", group, user: m.user });
      const push = await other.waitFor((x) => x.t === "msg" && x.kind === "mute");
      expect(push.until).toBeUndefined();
      // In a cluster the mute reaches m's node over the bus (PROTOCOL.md §8); an unmute needs no
      // wait: a node catches up with the store before it refuses.
      await settle();
      const refused = await m.request({ t: "send", group, text: "muted" });
      expect(refused).toMatchObject({ t: "error", code: "forbidden" });
      expect(refused.msg).toContain("muted");
      expect(await m.request({ t: "edit", group, mid: sent.mid, text: "changed" })).toMatchObject({ code: "forbidden" });
      expect(await m.request({ t: "react", group, mid: sent.mid, emoji: "👍" })).toMatchObject({ code: "forbidden" });
      // direct messages are not affected, nor is reading
      await m.ok({ t: "send", user: other.user, text: "psst" });
      await m.ok({ t: "history", group });
      const members = await owner.ok({ t: "members", group });
      expect(members.members.find((x: Msg) => x.user === m.user).muted).toBeGreaterThan(Date.now());
      await owner.ok({ t: "unmute", group, user: m.user });
      await m.ok({ t: "send", group, text: "free again" });
      // a mute with an end: it ends by itself
      await owner.ok({ t: "mute", group, user: m.user, secs: 2 });
      await settle();
      expect(await m.request({ t: "send", group, text: "x" })).toMatchObject({ code: "forbidden" });
      await Bun.sleep(2100);
      await m.ok({ t: "send", group, text: "the mute ended" });
    });

    test("the owner cannot leave while others remain; a transfer hands the group on", async () => {
      const { group, owner, others } = await community(1);
      const [m] = others as [TestClient];
      const r = await owner.request({ t: "leave", group });
      expect(r).toMatchObject({ t: "error", code: "forbidden" });
      expect(r.msg).toContain("transfer");
      // only the owner transfers, only to a member
      expect(await m.request({ t: "transfer", group, user: m.user })).toMatchObject({ code: "forbidden" });
      const stranger = await user();
      expect(await owner.request({ t: "transfer", group, user: stranger.user })).toMatchObject({ code: "not_found" });
      await owner.ok({ t: "transfer", group, user: m.user });
      const roles = (await m.ok({ t: "members", group })).members.map((x: Msg) => `${x.user}:${x.role}`).sort();
      expect(roles).toEqual([`${m.user}:owner`, `${owner.user}:admin`].sort());
      expect((await m.ok({ t: "groups" })).groups[0]).toMatchObject({ group, owner: m.user, role: "owner" });
      // the old owner, now an admin, cannot kick the new owner; leaving is allowed now
      expect(await owner.request({ t: "kick", group, user: m.user })).toMatchObject({ code: "forbidden" });
      await owner.ok({ t: "leave", group });
      // the last member, the owner, may leave: the group stays, owned, and they may come back
      await m.ok({ t: "leave", group });
      expect(await m.request({ t: "create", group })).toMatchObject({ code: "conflict" });
      await m.ok({ t: "join", group });
    });

    test("handing the group on to a muted member unmutes them, in the store and in every node's routing", async () => {
      const { group, owner, others } = await community(1);
      const [m] = others as [TestClient];
      await owner.ok({ t: "mute", group, user: m.user });
      await settle();
      expect(await m.request({ t: "send", group, text: "muted" })).toMatchObject({ code: "forbidden" });
      await owner.ok({ t: "transfer", group, user: m.user });
      expect((await m.ok({ t: "members", group })).members.find((x: Msg) => x.user === m.user).muted).toBeUndefined();
      await m.ok({ t: "send", group, text: "the owner speaks" });
    });

    test("the owner and admins delete others' messages; members do not", async () => {
      const { group, owner, others } = await community(2);
      const [adm, m] = others as [TestClient, TestClient];
      await owner.ok({ t: "role", group, user: adm.user, role: "admin" });
      const a = await m.ok({ t: "send", group, text: "one" });
      const b = await adm.ok({ t: "send", group, text: "two" });
      expect(await m.request({ t: "delete", group, mid: b.mid })).toMatchObject({ code: "forbidden" });
      await adm.ok({ t: "delete", group, mid: a.mid });
      await owner.ok({ t: "delete", group, mid: b.mid });
    });
  });

  describe("leaving, as the log tells it", () => {
    test("a leave reaches the leaver's other devices live, and their offline device by sync", async () => {
      const { group, owner, others } = await community(1);
      const [m] = others as [TestClient];
      const live = await device(m);
      const offline = await device(m);
      const mark = (await offline.ok({ t: "sync", after: 0 })).msgs.at(-1)?.mid ?? 0;
      offline.close();
      await owner.ok({ t: "send", group, text: "before the leave" });
      const left = await m.ok({ t: "leave", group });
      await owner.ok({ t: "send", group, text: "after the leave" });
      const push = await live.waitFor((x) => x.t === "msg" && x.kind === "leave");
      expect(push).toMatchObject({ mid: left.mid, group, from: m.user, target: m.user });
      await owner.waitFor((x) => x.t === "msg" && x.kind === "leave");
      await settle();
      expect(live.pushes("msg").some((x) => x.text === "after the leave")).toBe(false);
      const back = await device(m);
      const s = await back.ok({ t: "sync", after: mark });
      // sync covers the groups the user is in now (PROTOCOL.md §3.4), and the changes about them
      expect(s.msgs.map((x: Msg) => x.kind ?? x.text)).toEqual(["leave"]);
    });

    test("a kicked member's devices learn it by sync; a banned one's too", async () => {
      const { group, owner, others } = await community(2);
      const [k, b] = others as [TestClient, TestClient];
      const marks = await Promise.all([k, b].map(async (c) => (await c.ok({ t: "sync", after: 0 })).msgs.at(-1)?.mid ?? 0));
      k.close();
      b.close();
      await owner.ok({ t: "kick", group, user: k.user });
      await owner.ok({ t: "ban", group, user: b.user });
      const k2 = await device(k);
      const b2 = await device(b);
      expect((await k2.ok({ t: "sync", after: marks[0] })).msgs.map((x: Msg) => `${x.kind} ${x.target}`)).toContain(`kick ${k.user}`);
      const bs = (await b2.ok({ t: "sync", after: marks[1] })).msgs.map((x: Msg) => `${x.kind} ${x.target}`);
      expect(bs).toContain(`ban ${b.user}`);
      // the kick of another member is not theirs to see once they are out
      expect(bs).not.toContain(`kick ${k.user}`);
    });
  });

  describe("blocking and direct-message policy", () => {
    test("a blocked user's DMs are refused, with the same answer as a policy's; unblock lets them through", async () => {
      const a = await user();
      const b = await user();
      await a.ok({ t: "send", user: b.user, text: "hello" });
      expect(await b.ok({ t: "block", user: a.user })).toMatchObject({ user: a.user, changed: true });
      expect(await b.ok({ t: "block", user: a.user })).toMatchObject({ changed: false });
      expect((await b.ok({ t: "blocked" })).users).toEqual([a.user]);
      const refused = await a.request({ t: "send", user: b.user, text: "are you there?" });
      expect(refused).toMatchObject({ t: "error", code: "forbidden" });
      // the blocker still writes to them, and the conversation stays readable
      await b.ok({ t: "send", user: a.user, text: "I can still write" });
      expect((await a.ok({ t: "history", user: b.user })).msgs.map((m: Msg) => m.text)).toEqual(["hello", "I can still write"]);
      await settle();
      expect(b.pushes("msg").some((m) => m.text === "are you there?")).toBe(false);
      // a policy gives the same answer: the blocked user cannot tell which it is
      const c = await user();
      await c.ok({ t: "privacy", dms: "nobody" });
      const byPolicy = await a.request({ t: "send", user: c.user, text: "hi" });
      expect(byPolicy.msg.replace(c.user!, "X")).toBe(refused.msg.replace(b.user!, "X"));
      await b.ok({ t: "unblock", user: a.user });
      await a.ok({ t: "send", user: b.user, text: "again" });
      expect(await b.request({ t: "block", user: "nosuchuser" })).toMatchObject({ code: "not_found" });
    });

    test("the DM policy: anyone, only those who share a group, nobody; notes to self always", async () => {
      const a = await user();
      const b = await user();
      expect(await b.ok({ t: "privacy" })).toMatchObject({ dms: "anyone" });
      expect(await b.ok({ t: "privacy", dms: "groups" })).toMatchObject({ dms: "groups" });
      expect(await a.request({ t: "send", user: b.user, text: "hi" })).toMatchObject({ code: "forbidden" });
      const g = uniq("g");
      await b.ok({ t: "create", group: g });
      await a.ok({ t: "join", group: g });
      await a.ok({ t: "send", user: b.user, text: "now we share a group" });
      await b.ok({ t: "privacy", dms: "nobody" });
      expect(await a.request({ t: "send", user: b.user, text: "hi" })).toMatchObject({ code: "forbidden" });
      await b.ok({ t: "send", user: b.user, text: "a note to myself" });
      expect(await b.request({ t: "privacy", dms: "everyone" })).toMatchObject({ code: "bad_request" });
    });
  });
}
