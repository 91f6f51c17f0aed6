// The web app's state without a browser (src/web/model.ts, src/web/format.ts).
import { describe, expect, test } from "bun:test";
import type { ChatMessage, Conversation } from "../../src/client/index.ts";
import { NAME_RE as SERVER_NAME_RE, NAME_RULE as SERVER_NAME_RULE, PASS_MIN as SERVER_PASS_MIN } from "../../src/protocol/requests.ts";
import { mentionsOf } from "../../src/store/store.ts";
import { dayLabel, isPreviewable, mentions, NAME_RE, NAME_RULE, PASS_MIN, sizeLabel, timeOf } from "../../src/web/format.ts";
import { ChatModel, type Conv, keyOf, type Shown, targetOf, targetOfMessage, TypingThrottle, typingLabel } from "../../src/web/model.ts";

const msg = (mid: number, from: string, to: { group: string } | { user: string }, text = `m${mid}`): ChatMessage => ({
  mid,
  ts: 1_795_790_000_000 + mid * 1000,
  from,
  ...to,
  text,
});

const entry = (mid: number, from: string, to: { group: string } | { user: string }, kind: string, more: Partial<ChatMessage> = {}): ChatMessage =>
  ({ mid, ts: 1_795_790_000_000 + mid * 1000, from, ...to, kind, ...more }) as ChatMessage;
const ops = { group: "ops" };
const texts = (c: Conv) => c.items.map((s) => (s.kind ? `${s.kind}:${s.target ?? s.from}` : s.deleted !== undefined ? `(deleted ${s.mid})` : s.text));
const reactions = (s: Shown | undefined) => s?.reactions.map((r) => `${r.emoji}${r.users.join("+")}`).join(" ");

describe("conversations", () => {
  test("an entry goes to its conversation: the group, or the other party of a DM", () => {
    expect(targetOfMessage({ from: "bob", group: "ops" }, "ann")).toEqual({ group: "ops" });
    expect(targetOfMessage({ from: "bob", user: "ann" }, "ann")).toEqual({ user: "bob" });
    expect(targetOfMessage({ from: "ann", user: "bob" }, "ann")).toEqual({ user: "bob" });
    expect(targetOfMessage({ from: "ann", user: "ann" }, "ann")).toEqual({ user: "ann" });
    expect(keyOf({ group: "ops" })).toBe("g:ops");
    expect(targetOf("u:bob")).toEqual({ user: "bob" });
  });

  test("live entries: messages in mid order once; edits, deletions and reactions change them; read markers and unknown kinds shown as nothing", () => {
    const m = new ChatModel("ann");
    m.apply(msg(5, "bob", ops));
    m.apply(msg(3, "bob", ops));
    expect(m.apply(msg(5, "bob", ops)).shown).toBe(false);
    m.apply(msg(6, "ann", ops));
    const c = m.convs.get("g:ops")!;
    expect(c.items.map((x) => x.mid)).toEqual([3, 5, 6]);
    expect(m.apply(entry(7, "bob", ops, "edit", { ref: 5, text: "five, edited" })).shown).toBe(true);
    expect(c.find(5)).toMatchObject({ text: "five, edited", edited: 1_795_790_007_000 });
    m.apply(entry(8, "carl", ops, "react", { ref: 5, emoji: "👍" }));
    m.apply(entry(9, "ann", ops, "react", { ref: 5, emoji: "👍" }));
    m.apply(entry(10, "bob", ops, "react", { ref: 5, emoji: "🎉" }));
    expect(m.apply(entry(10, "bob", ops, "react", { ref: 5, emoji: "🎉" })).shown).toBe(false); // the same again
    m.apply(entry(11, "carl", ops, "unreact", { ref: 5, emoji: "👍" }));
    expect(reactions(c.find(5))).toBe("👍ann 🎉bob");
    m.apply(entry(12, "bob", ops, "delete", { ref: 3 }));
    expect(texts(c)).toEqual(["(deleted 3)", "five, edited", "m6"]);
    expect(m.apply(entry(13, "bob", ops, "poll", { ref: 5, text: "new kinds will come" })).shown).toBe(false);
    expect(m.apply(entry(14, "bob", ops, "kick", { target: "carl" } as Partial<ChatMessage>)).shown).toBe(true); // a change to the group: a line of its own
    m.apply(entry(15, "ann", ops, "read", { ref: 12 }));
    expect(texts(c)).toEqual(["(deleted 3)", "five, edited", "m6", "kick:carl"]);
    expect(c.read).toBe(12);
    expect(c.lastMid).toBe(15);
  });

  test("changes to the group (join, leave, ban...) are system lines (live and in history); unknown kinds are skipped", () => {
    const m = new ChatModel("ann");
    const c = m.conv(ops);
    m.apply(entry(4, "carl", ops, "join", { target: "carl" } as Partial<ChatMessage>));
    c.page(
      [
        entry(1, "bob", ops, "join", { target: "bob" } as Partial<ChatMessage>),
        msg(2, "bob", ops),
        entry(3, "bob", ops, "ban", { target: "eve" } as Partial<ChatMessage>),
        entry(4, "carl", ops, "join", { target: "carl" } as Partial<ChatMessage>),
        entry(5, "carl", ops, "leave", { target: "carl" } as Partial<ChatMessage>),
        entry(6, "carl", ops, "poll", { text: "a kind from the future" }),
      ],
      false,
      false,
    );
    expect(texts(c)).toEqual(["join:bob", "m2", "ban:eve", "join:carl", "leave:carl"]);
    expect(c.unread).toBe(0);
  });

  test("a history page: its state is the message as it is; entries that came before it was loaded are applied to it; older entries change nothing", () => {
    const m = new ChatModel("ann");
    const c = m.conv(ops);
    // Live, before the message is loaded: an edit and a reaction taken back.
    m.apply(entry(20, "bob", ops, "edit", { ref: 9, text: "nine, v2" }));
    m.apply(entry(21, "carl", ops, "unreact", { ref: 9, emoji: "👍" }));
    // The page was read before those two were committed: the old text, carl's reaction on.
    const page = [
      entry(8, "carl", ops, "react", { ref: 7, emoji: "❤️" }),
      { ...msg(9, "bob", ops, "nine"), reactions: [{ emoji: "👍", users: ["carl", "dan"] }] },
      { mid: 10, ts: 1, from: "bob", group: "ops", deleted: 2 },
      entry(11, "bob", ops, "edit", { ref: 9, text: "nine" }),
      entry(12, "dan", ops, "react", { ref: 9, emoji: "👍" }),
    ];
    expect(c.page(page, true, false)).toBe(2);
    expect(texts(c)).toEqual(["nine, v2", "(deleted 10)"]);
    expect(reactions(c.find(9))).toBe("👍dan");
    expect(c.oldest).toBe(8);
    expect(c.loaded).toBe(true);
    expect(c.hasOlder).toBe(true);
    // The same page again (a reload of it) changes nothing; so do the entries again.
    c.page(page, true, false);
    m.apply(entry(20, "bob", ops, "edit", { ref: 9, text: "nine, v2" }));
    expect(texts(c)).toEqual(["nine, v2", "(deleted 10)"]);
    expect(reactions(c.find(9))).toBe("👍dan");
    // A newer page of the same message takes over; an entry older than it does not undo it.
    c.page([{ ...msg(9, "bob", ops, "nine, v3"), edited: 5, reactions: [] }, entry(30, "bob", ops, "edit", { ref: 9, text: "nine, v3" })], true, false);
    m.apply(entry(25, "eve", ops, "react", { ref: 9, emoji: "👀" }));
    expect(texts(c)).toEqual(["nine, v3", "(deleted 10)"]);
    expect(reactions(c.find(9))).toBe("");
    // Older pages: before the oldest; hasOlder from `more`.
    expect(c.page([entry(7, "bob", ops, "edit", { ref: 2, text: "x" })], true, true)).toBe(0);
    expect(c.oldest).toBe(7);
    c.page([msg(2, "bob", ops)], false, true);
    expect(c.hasOlder).toBe(false);
    expect(texts(c)).toEqual(["m2", "nine, v3", "(deleted 10)"]);
  });

  test("a message from a catch-up comes with its state and the entries after it: applied again, the same result", () => {
    const m = new ChatModel("ann");
    m.apply({ ...msg(5, "bob", ops, "v3"), edited: 9, reactions: [{ emoji: "👍", users: ["carl"] }] });
    m.apply(entry(6, "bob", ops, "edit", { ref: 5, text: "v2" }));
    m.apply(entry(7, "carl", ops, "react", { ref: 5, emoji: "👍" }));
    m.apply(entry(8, "carl", ops, "unreact", { ref: 5, emoji: "👍" }));
    m.apply(entry(9, "bob", ops, "edit", { ref: 5, text: "v3" }));
    m.apply(entry(10, "carl", ops, "react", { ref: 5, emoji: "👍" }));
    const c = m.convs.get("g:ops")!;
    expect(texts(c)).toEqual(["v3"]);
    expect(reactions(c.find(5))).toBe("👍carl");
    // A tombstone stays one, whatever comes after it.
    m.apply({ mid: 11, ts: 1, from: "bob", group: "ops", deleted: 3 });
    m.apply(entry(12, "bob", ops, "edit", { ref: 11 }));
    expect(texts(c)).toEqual(["v3", "(deleted 11)"]);
  });

  test("one's own change, reported by its reply, may come before an older entry of someone else: both apply", () => {
    const m = new ChatModel("ann");
    m.apply(msg(5, "ann", ops, "mine"));
    m.apply(entry(9, "ann", ops, "react", { ref: 5, emoji: "👍" })); // the reply to ann's react
    m.apply(entry(8, "bob", ops, "react", { ref: 5, emoji: "👍" })); // bob's, committed just before
    m.apply(entry(10, "ann", ops, "edit", { ref: 5, text: "mine, better" }));
    m.apply(entry(7, "ann", ops, "edit", { ref: 5, text: "mine, first try" })); // from another device, earlier
    const c = m.convs.get("g:ops")!;
    expect(reactions(c.find(5))).toBe("👍ann+bob");
    expect(texts(c)).toEqual(["mine, better"]);
  });
});

describe("unread counts: the server's, and live entries between two convs", () => {
  const convs = (row: Partial<Conversation> & ({ group: string } | { user: string })): Conversation =>
    ({ last: 0, read: 0, unread: 0, mentions: 0, ...row }) as Conversation;

  test("messages from others above the marker count, one's own never; mentions only in groups; a read from another device clears", () => {
    const m = new ChatModel("ann");
    m.fromServer([convs({ group: "ops", last: 10, read: 4, unread: 3, mentions: 1 }), convs({ user: "bob", last: 12, read: 12 })]);
    const c = m.convs.get("g:ops")!;
    expect([c.unread, c.mentions]).toEqual([3, 1]);
    m.apply(msg(13, "bob", ops, "hi @ann."));
    m.apply(msg(14, "ann", ops, "mine"));
    m.apply(msg(15, "bob", { user: "ann" }, "@ann in a DM"));
    expect([c.unread, c.mentions]).toEqual([4, 2]);
    expect(m.convs.get("u:bob")!.unread).toBe(1);
    expect(m.convs.get("u:bob")!.mentions).toBe(0);
    expect(m.totalUnread).toBe(5);
    m.apply(entry(16, "ann", ops, "read", { ref: 14 }));
    expect([c.unread, c.mentions, c.stale]).toEqual([0, 0, false]);
    // A marker never moves back.
    m.apply(entry(17, "ann", ops, "read", { ref: 2 }));
    expect(c.read).toBe(14);
  });

  test("a convs reply counts what it says up to its `last`; what came after it still counts once", () => {
    const m = new ChatModel("ann");
    m.apply(msg(20, "bob", ops));
    m.apply(msg(21, "bob", ops));
    // The server counted 20 but not 21 (committed after it read the counts).
    m.fromServer([convs({ group: "ops", last: 20, read: 0, unread: 5 })]);
    expect(m.convs.get("g:ops")!.unread).toBe(6);
    m.fromServer([convs({ group: "ops", last: 21, read: 0, unread: 6 })]);
    expect(m.convs.get("g:ops")!.unread).toBe(6);
  });

  test("deletions and edits: exact when the message is known, stale (ask convs again) when it is not", () => {
    const m = new ChatModel("ann");
    const c = m.conv(ops);
    c.page([msg(5, "bob", ops, "@ann look"), msg(6, "bob", ops), msg(7, "ann", ops)], false, false);
    m.fromServer([convs({ group: "ops", last: 7, read: 4, unread: 2, mentions: 1 })]);
    m.apply(msg(8, "carl", ops, "hey @ann"));
    expect([c.unread, c.mentions]).toEqual([3, 2]);
    m.apply(entry(9, "bob", ops, "edit", { ref: 5, text: "no mention now" }));
    expect([c.unread, c.mentions, c.stale]).toEqual([3, 1, false]);
    m.apply(entry(10, "carl", ops, "edit", { ref: 8, text: "no mention either" }));
    expect([c.unread, c.mentions]).toEqual([3, 0]);
    m.apply(entry(11, "bob", ops, "delete", { ref: 6 }));
    m.apply(entry(12, "ann", ops, "delete", { ref: 7 })); // one's own: never counted
    m.apply(entry(13, "carl", ops, "delete", { ref: 8 }));
    expect([c.unread, c.stale]).toEqual([1, false]);
    // A message the server counted but this page never loaded.
    m.fromServer([convs({ group: "ops", last: 30, read: 4, unread: 4 })]);
    m.apply(entry(31, "bob", ops, "delete", { ref: 25 }));
    expect(c.stale).toBe(true);
    m.fromServer([convs({ group: "ops", last: 31, read: 4, unread: 3 })]);
    expect([c.unread, c.stale]).toEqual([3, false]);
    // A marker moved into the middle of the counted range: only the server knows what is left.
    m.apply(entry(32, "ann", ops, "read", { ref: 20 }));
    expect(c.stale).toBe(true);
  });

  test("viewing: markRead moves the marker to the newest known entry, once; previews follow the newest message", () => {
    const m = new ChatModel("ann");
    m.fromServer([convs({ group: "ops", last: 9, read: 3, unread: 2, preview: { mid: 8, ts: 1, from: "bob", text: "eight" } })]);
    const c = m.convs.get("g:ops")!;
    expect(c.preview?.text).toBe("eight");
    expect(m.markRead(c)).toBe(9);
    expect(m.markRead(c)).toBeUndefined();
    expect(c.unread).toBe(0);
    m.apply({ ...msg(10, "bob", ops, "x".repeat(150)) });
    expect(c.preview?.text).toBe(`${"x".repeat(100)}…`);
    m.apply(entry(11, "bob", ops, "edit", { ref: 10, text: "ten" }));
    expect(c.preview?.text).toBe("ten");
    m.apply(entry(12, "bob", ops, "delete", { ref: 10 }));
    expect(c.preview).toBeUndefined();
    expect(c.stale).toBe(true);
  });

  test("the list: newest message first, then by name", () => {
    const m = new ChatModel("ann");
    m.conv({ group: "quiet" });
    m.apply(msg(1, "bob", { group: "dev" }));
    m.apply(msg(2, "bob", ops));
    m.apply(entry(3, "bob", { group: "dev" }, "react", { ref: 1, emoji: "👍" }));
    expect(m.list("group").map((c) => c.name)).toEqual(["ops", "dev", "quiet"]);
  });
});

describe("typing", () => {
  test("shown for 5 s after the last push, or until a message from them; told at once, then every 3.1 s", () => {
    const m = new ChatModel("ann");
    m.typing.seen("g:ops", "bob", 1000);
    m.typing.seen("g:ops", "carl", 2000);
    expect(m.typing.who("g:ops", 5999)).toEqual(["bob", "carl"]);
    expect(typingLabel(m.typing.who("g:ops", 6000))).toBe("carl is typing…");
    m.typing.seen("g:ops", "bob", 6500);
    m.apply(msg(4, "carl", ops));
    expect(m.typing.who("g:ops", 6600)).toEqual(["bob"]);
    expect(m.typing.nextExpiry()).toBe(11_500);
    expect(typingLabel(["a", "b"])).toBe("a and b are typing…");
    expect(typingLabel(["a", "b", "c", "d"])).toBe("a, b and 2 others are typing…");
    const t = new TypingThrottle();
    expect([t.due("g:ops", 0), t.due("g:ops", 3000), t.due("g:ops", 3100), t.due("u:bob", 3200)]).toEqual([true, false, true, true]);
    t.reset("g:ops");
    expect(t.due("g:ops", 3200)).toBe(true);
  });
});

describe("formatting", () => {
  test("the names rule is the server's", () => {
    expect(NAME_RE.source).toBe(SERVER_NAME_RE.source);
    expect(NAME_RULE).toBe(SERVER_NAME_RULE);
    expect(PASS_MIN).toBe(SERVER_PASS_MIN);
  });

  test("mentions are the server's", () => {
    const many = Array.from({ length: 40 }, (_, i) => `@u${i}`).join(" ");
    const cases = ["@ann hi", "hi @ann.", "@ann, look", "(@ann)", "bob@ann", "@annie", "@@ann", "x.@ann", "@ann-", "@Ann", "no", "@bob", `${many} @ann`, "@u3 @ann"];
    for (const text of cases) {
      for (const sender of ["bob", "ann", "u3"]) expect([text, sender, mentions(text, "ann", sender)]).toEqual([text, sender, mentionsOf(text, sender).includes("ann")]);
    }
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
