// The routing hub: fan-out reaches exactly the open sessions of current members,
// through every change of membership and of sessions (its flat fan-out cache).
import { expect, test } from "bun:test";
import { Hub, type Routable } from "../src/core/hub.ts";

let nextId = 1;

class S implements Routable {
  readonly id = nextId++;
  got: number[] = [];
  constructor(public user: string | undefined) {}
  send(): void {}
  push(_f: Uint8Array, mid: number): void {
    this.got.push(mid);
  }
}

test("pushToGroup follows joins, leaves, logins and logouts; skip is skipped", () => {
  const hub = new Hub<S>();
  const frame = new Uint8Array(1);
  const a1 = new S("a");
  const a2 = new S("a");
  const b = new S("b");
  const c = new S("c");
  hub.load([{ grp: "g", user: "a" }, { grp: "g", user: "b" }]);
  hub.attach(a1);
  hub.attach(b);
  hub.pushToGroup("g", frame, 1); // a1, b
  hub.attach(a2); // a second device joins the fan-out
  hub.pushToGroup("g", frame, 2, a1.id); // a2, b (a1 skipped as the sender)
  hub.attach(c);
  hub.addMember("g", "c"); // a new member
  hub.pushToGroup("g", frame, 3); // a1, a2, b, c
  hub.removeMember("g", "b"); // b leaves
  hub.detach(a1, "a"); // a1 closes
  hub.pushToGroup("g", frame, 4); // a2, c
  hub.pushToGroup("other", frame, 5); // nobody
  expect(a1.got).toEqual([1, 3]);
  expect(a2.got).toEqual([2, 3, 4]);
  expect(b.got).toEqual([1, 2, 3]);
  expect(c.got).toEqual([3, 4]);
});

test("logins and closes update the fan-out arrays in place: no group is rebuilt (issue #10)", () => {
  const hub = new Hub<S>();
  const frame = new Uint8Array(1);
  const groups = Array.from({ length: 1000 }, (_, i) => `g${i}`);
  hub.load(groups.flatMap((grp) => [{ grp, user: "many" }, { grp, user: "peer" }]));
  const peer = new S("peer");
  hub.attach(peer);
  for (const g of groups) hub.pushToGroup(g, frame, 1);
  expect(hub.fanoutBuilds).toBe(1000);
  const devices: S[] = [];
  for (let i = 0; i < 20; i++) {
    const d = new S("many");
    hub.attach(d);
    devices.push(d);
    if (i % 2 === 1) hub.detach(devices[i - 1]!, "many");
  }
  for (const g of groups) hub.pushToGroup(g, frame, 2, peer.id);
  expect(hub.fanoutBuilds).toBe(1000);
  expect(peer.got.length).toBe(1000);
  devices.forEach((d, i) => expect(d.got.length).toBe(i % 2 === 1 ? 1000 : 0));
  hub.detach(peer, "peer");
  hub.pushToGroup("g7", frame, 3);
  expect(peer.got.length).toBe(1000);
  expect(devices[19]!.got.at(-1)).toBe(3);
  expect(hub.sessionCount("many")).toBe(10);
});
