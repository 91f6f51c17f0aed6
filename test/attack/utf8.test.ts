// Invalid UTF-8 (the hardening issue, finding 14), against the real server process: every
// MessagePack str must be valid UTF-8 (docs/PROTOCOL.md §2), or the request gets bad_request.
// Before the fix the decoder's lenient path altered such strings instead: `61 ff fe 62` was
// stored as "aÿþb" and the overlong `c0 af` as "/". Frames are built by hand (the encoders of
// the client and of @msgpack/msgpack cannot write invalid strings) and written on a raw socket;
// afterwards history, groups and the other member's pushes show that nothing was stored, and
// the upload the refused sends named (PROTOCOL.md §3.9) was not used up by them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { sha256Hex, TestClient } from "../helpers/client.ts";
import { BAD_UTF8, utf8Attempts } from "../helpers/attack.ts";
import { enc, type W } from "../helpers/fuzz-msgpack.ts";
import { type RunningServer, startServer, TEST_ARGS, tempDir } from "../helpers/server.ts";
import { type Msg, rawFrame } from "../helpers/wire.ts";

describe("invalid UTF-8 is refused with bad_request and nothing is stored (finding 14)", () => {
  const tmp = tempDir("tcpchat-attack-utf8-");
  let server: RunningServer;
  let alice: TestClient;
  let bob: TestClient;
  /** A finished upload of alice's, the file the sends with an invalid name or type name. */
  let upload = "";
  const uploaded = new Uint8Array(Buffer.from("hi there"));

  beforeAll(async () => {
    server = await startServer(["--db", join(tmp.dir, "utf8.db"), ...TEST_ARGS]);
    alice = await TestClient.connect(server.port);
    bob = await TestClient.connect(server.port);
    await alice.register("alice");
    await bob.register("bob");
    await alice.login("alice");
    await bob.login("bob");
    await alice.ok({ t: "create", group: "g" });
    await bob.ok({ t: "join", group: "g" });
    upload = await alice.upload(uploaded);
  });

  afterAll(async () => {
    alice?.close();
    bob?.close();
    if (server && server.proc.exitCode === null) await server.stop();
    tmp.cleanup();
  });

  /** Writes a hand-built body and returns the next reply on the connection (ok, pong or error). */
  async function reply(c: TestClient, body: Uint8Array): Promise<Msg> {
    const from = c.received.length;
    c.writeRaw(rawFrame(body));
    return await c.waitFor((m) => m.t === "ok" || m.t === "error" || m.t === "pong", 5000, from);
  }

  for (const [label, bytes] of BAD_UTF8)
    for (const [i, [where]] of utf8Attempts({ $str: bytes }, "g", "bob").entries())
      test(`${label} in ${where}: bad_request`, async () => {
        // with alice's upload, known once beforeAll has run
        const req = utf8Attempts({ $str: bytes }, "g", "bob", upload)[i]![1];
        const r = await reply(alice, enc({ ...req, id: 900 } as W));
        expect({ t: r.t, code: r.code }).toEqual({ t: "error", code: "bad_request" });
        expect(r.msg).toMatch(/UTF-8/i);
      });

  test("the same strings in a bin are data, not strings: a chunk of them is accepted, sent and downloaded as they are", async () => {
    const data = BAD_UTF8[0]![1];
    const u = await alice.ok({ t: "upload", size: data.length, sha256: sha256Hex(data) });
    const r = await reply(alice, enc({ t: "chunk", upload: u.upload, offset: 0, data: { $bin: data }, id: 901 }));
    expect(r).toMatchObject({ t: "ok", id: 901, offset: data.length, done: true });
    const sent = await alice.ok({ t: "send", group: "g", file: { upload: u.upload, name: "raw.bin", type: "" }, cid: "bin-ok" });
    expect(Buffer.from(await bob.download(sent.mid))).toEqual(Buffer.from(data));
    const h = await alice.ok({ t: "history", group: "g" });
    expect(h.msgs.map((m: Msg) => m.kind ?? m.cid)).toEqual(["create", "join", "bin-ok"]);
    expect(h.msgs[2].file).toEqual({ name: "raw.bin", type: "", size: data.length, sha256: sha256Hex(data) });
  });

  test("nothing was stored or delivered, and the connection still works", async () => {
    const g = await alice.ok({ t: "history", group: "g" });
    expect(g.msgs.map((m: Msg) => m.kind ?? m.cid)).toEqual(["create", "join", "bin-ok"]); // the group's own entries and the valid message above
    expect((await alice.ok({ t: "history", user: "bob" })).msgs).toEqual([]);
    // no group created, no setting changed
    expect((await alice.ok({ t: "groups" })).groups).toEqual([{ group: "g", owner: "alice", role: "owner", public: true, topic: "", description: "" }]);
    const sync = await bob.ok({ t: "sync", after: 0 });
    expect(sync.msgs.map((m: Msg) => m.kind ?? m.cid)).toEqual(["create", "join", "bin-ok"]);
    const ok = await alice.ok({ t: "send", group: "g", text: "żółć ✓ 🎉", cid: "after" });
    const push = await bob.waitFor((m) => m.t === "msg" && m.mid === ok.mid);
    expect(push.text).toBe("żółć ✓ 🎉");
    // every push bob got carries valid text only: the refused sends reached nobody
    expect(bob.msgs().map((m) => m.cid)).toEqual(["bin-ok", "after"]);
    // the refused sends of a file did not use its upload up (§3.4): it is sent now, once
    const file = await alice.ok({ t: "send", group: "g", file: { upload, name: "hi.txt", type: "text/plain" }, cid: "file-after" });
    expect(Buffer.from(await bob.download(file.mid))).toEqual(Buffer.from(uploaded));
    expect(await alice.request({ t: "send", group: "g", file: { upload, name: "hi.txt", type: "text/plain" } })).toMatchObject({ t: "error", code: "not_found" });
  });

  test("a registration or login with an invalid password string is refused and creates nothing", async () => {
    const c = await TestClient.connect(server.port);
    try {
      const pass: W = { $str: new Uint8Array([...Buffer.from("password"), 0xc0, 0xaf]) };
      expect(await reply(c, enc({ t: "register", user: "carol", pass }))).toMatchObject({ t: "error", code: "bad_request" });
      expect(await reply(c, enc({ t: "login", user: "alice", pass }))).toMatchObject({ t: "error", code: "bad_request" });
      // carol does not exist: registering her now works
      expect(await c.request({ t: "register", user: "carol", pass: "password1" })).toMatchObject({ t: "ok" });
    } finally {
      c.close();
    }
  });
});
