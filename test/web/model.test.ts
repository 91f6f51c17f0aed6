// The web app's state without a browser (src/web/model.ts, src/web/format.ts).
import { describe, expect, test } from "bun:test";
import type { ChatMessage } from "../../src/client/index.ts";
import { NAME_RE as SERVER_NAME_RE, NAME_RULE as SERVER_NAME_RULE, PASS_MIN as SERVER_PASS_MIN } from "../../src/protocol/requests.ts";
import { dayLabel, isPreviewable, NAME_RE, NAME_RULE, PASS_MIN, sizeLabel, timeOf } from "../../src/web/format.ts";
import { ChatModel, keyOf, parseSaved, targetOf, targetOfMessage } from "../../src/web/model.ts";

const msg = (mid: number, from: string, to: { group: string } | { user: string }, text = `m${mid}`): ChatMessage => ({
  mid,
  ts: 1_795_790_000_000 + mid * 1000,
  from,
  ...to,
  text,
});

describe("conversations", () => {
  test("a history page shows messages only: edits, reactions and tombstones are skipped, but the page's oldest entry is where the next starts", () => {
    const m = new ChatModel("ann");
    const c = m.conv({ group: "ops" });
    const entry = (mid: number, kind: "edit" | "react"): ChatMessage => ({ mid, ts: 1, from: "bob", group: "ops", kind, ref: 1 });
    const page = [entry(8, "react"), msg(9, "bob", { group: "ops" }), { mid: 10, ts: 1, from: "bob", group: "ops", deleted: 2 }, entry(11, "edit")];
    expect(m.page(c, page, true, false)).toBe(1);
    expect(c.msgs.map((x) => x.mid)).toEqual([9]);
    expect(c.oldest).toBe(8);
    expect(m.page(c, [entry(7, "edit")], true, true)).toBe(0);
    expect(c.oldest).toBe(7);
  });

  test("a message goes to its conversation: the group, or the other party of a DM", () => {
    expect(targetOfMessage({ from: "bob", group: "ops" }, "ann")).toEqual({ group: "ops" });
    expect(targetOfMessage({ from: "bob", user: "ann" }, "ann")).toEqual({ user: "bob" });
    expect(targetOfMessage({ from: "ann", user: "bob" }, "ann")).toEqual({ user: "bob" });
    expect(targetOfMessage({ from: "ann", user: "ann" }, "ann")).toEqual({ user: "ann" });
    expect(keyOf({ group: "ops" })).toBe("g:ops");
    expect(targetOf("u:bob")).toEqual({ user: "bob" });
  });

  test("messages are kept in mid order, once; unread counts what others sent while not read", () => {
    const m = new ChatModel("ann");
    m.add(msg(5, "bob", { group: "ops" }));
    m.add(msg(3, "bob", { group: "ops" }));
    expect(m.add(msg(5, "bob", { group: "ops" })).added).toBe(false);
    m.add(msg(6, "ann", { group: "ops" })); // one's own: never unread
    const ops = m.convs.get("g:ops")!;
    expect(ops.msgs.map((x) => x.mid)).toEqual([3, 5, 6]);
    expect(ops.unread).toBe(2);
    expect(m.totalUnread).toBe(2);
    m.open("g:ops");
    expect(ops.unread).toBe(0);
    m.add(msg(7, "bob", { group: "ops" }));
    expect(ops.unread).toBe(0); // being read
    m.setVisible(false);
    m.add(msg(8, "bob", { group: "ops" }));
    expect(ops.unread).toBe(1); // the tab is hidden
    m.setVisible(true);
    expect(ops.unread).toBe(0);
    m.add(msg(9, "bob", { user: "ann" }));
    expect(m.convs.get("u:bob")!.unread).toBe(1);
    expect(m.list("dm").map((c) => c.name)).toEqual(["bob"]);
  });

  test("history pages: never unread, older pages before the first, hasOlder from `more`", () => {
    const m = new ChatModel("ann");
    const c = m.conv({ group: "ops" });
    m.add(msg(20, "bob", { group: "ops" }));
    expect(m.page(c, [msg(18, "bob", { group: "ops" }), msg(19, "bob", { group: "ops" }), msg(20, "bob", { group: "ops" })], true, false)).toBe(2);
    expect(c.loaded).toBe(true);
    expect(c.hasOlder).toBe(true);
    expect(c.unread).toBe(1); // only the one that arrived
    m.page(c, [msg(17, "bob", { group: "ops" })], false, true);
    expect(c.hasOlder).toBe(false);
    expect(c.msgs.map((x) => x.mid)).toEqual([17, 18, 19, 20]);
  });

  test("the list: most recent first; save and restore keep conversations, read marks, unread counts and the cursor", () => {
    const m = new ChatModel("ann");
    m.conv({ group: "quiet" });
    m.add(msg(1, "bob", { group: "ops" }));
    m.add(msg(2, "bob", { group: "dev" }));
    expect(m.list("group").map((c) => c.name)).toEqual(["dev", "ops", "quiet"]);
    const saved = m.save(42);
    const again = new ChatModel("ann");
    expect(again.restore(parseSaved(JSON.stringify(saved))!)).toBe(42);
    expect(again.list("group").map((c) => [c.name, c.unread, c.lastMid])).toEqual([
      ["dev", 1, 2],
      ["ops", 1, 1],
      ["quiet", 0, 0],
    ]);
    expect(parseSaved("nonsense")).toBeUndefined();
    expect(parseSaved('{"cursor":"x"}')).toBeUndefined();
    expect(parseSaved(null)).toBeUndefined();
  });
});

describe("formatting", () => {
  test("the names rule is the server's", () => {
    expect(NAME_RE.source).toBe(SERVER_NAME_RE.source);
    expect(NAME_RULE).toBe(SERVER_NAME_RULE);
    expect(PASS_MIN).toBe(SERVER_PASS_MIN);
  });

  test("times in the given zone; previews only for plain image types", () => {
    const ts = Date.UTC(2026, 10, 30, 12, 5);
    expect(timeOf(ts, "en-GB", "UTC")).toBe("12:05");
    expect(timeOf(ts, "en-GB", "Asia/Kolkata")).toBe("17:35");
    expect(dayLabel(ts, ts, "en-GB", "UTC")).toBe("Today");
    expect(dayLabel(ts - 86_400_000, ts, "en-GB", "UTC")).toBe("Yesterday");
    expect(isPreviewable("image/png")).toBe(true);
    expect(isPreviewable("IMAGE/JPEG")).toBe(true);
    expect(isPreviewable("image/svg+xml")).toBe(false);
    expect(isPreviewable("text/html")).toBe(false);
    expect(sizeLabel(1536)).toBe("1.5 kB");
  });
});
