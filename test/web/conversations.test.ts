// The web app's conversations in a real browser (issue #12; PROTOCOL.md §3.5-§3.7, §5.5):
// unread and mention badges that are the server's `convs` on two devices of one user, edits,
// deletions and reactions made elsewhere shown as they happen, replies, typing and search.
// One server process, Debian's Chromium through playwright-core (as browser.test.ts), and
// TCP clients (test/helpers/client.ts): carl, who writes from a terminal, and a probe logged
// in as ann that asks the server for her counts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Browser, type BrowserContext, type Page } from "playwright-core";
import { TestClient } from "../helpers/client.ts";
import { TEST_ARGS, tempDir } from "../helpers/server.ts";
import { ARTIFACTS, launchChromium, logIn, PASS } from "./chromium.ts";
import { freePort, startWebServer, type WebServer } from "./server.ts";


const tmp = tempDir("tcpchat-web-conv-");
// A fixed HTTP port, so the server can be restarted under the open pages.
const ARGS = [...TEST_ARGS, "--db", join(tmp.dir, "chat.db"), "--http-port", String(freePort())];
let w: WebServer;
let browser: Browser;
const tcp: TestClient[] = [];
const problems: string[] = [];

let a1: Page; // ann's first device
let a2: Page; // ann's second device (another browser context: its own storage, its own connection)
let bob: Page;
let carl: TestClient;
let probe: TestClient; // ann over TCP: asks `convs`

beforeAll(async () => {
  w = await startWebServer(ARGS);
  browser = await launchChromium();
});

afterAll(async () => {
  for (const c of tcp) if (!c.closed) c.close();
  await browser?.close();
  if (w && w.server.proc.exitCode === null) await w.server.stop();
  tmp.cleanup();
});

async function newPage(): Promise<Page> {
  const ctx: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const p = await ctx.newPage();
  p.on("console", (m) => {
    // A WebSocket that cannot connect while the server is down is expected.
    if (m.type() === "error" && !/WebSocket connection to .* failed/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  p.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  await p.goto(w.web);
  return p;
}

async function tcpUser(name: string, register: boolean): Promise<TestClient> {
  const c = await TestClient.connect(w.server.port);
  tcp.push(c);
  if (register) await c.register(name, PASS);
  await c.login(name, PASS);
  return c;
}

const conv = (p: Page, key: string) => p.locator(`.conv-item[data-key="${key}"]`);
const msgLi = (p: Page, text: string) => p.locator("#message-list li.msg", { has: p.locator(".msg-text", { hasText: text }) });
const composer = (p: Page) => p.getByRole("textbox", { name: "Message", exact: true });

async function openDm(p: Page, user: string): Promise<void> {
  await p.getByLabel("User to message").fill(user);
  await p.getByLabel("User to message").press("Enter");
  await p.locator("#conv-title", { hasText: user }).waitFor();
}

/** What a conversation's list item says: its unread badge ("" without one) and its mention mark. */
async function badgeOf(p: Page, key: string): Promise<{ unread: number; mention: boolean }> {
  // Read at one moment (the list is redrawn as entries come: a badge seen by one call may be gone by the next).
  return p.evaluate((k) => {
    const doc = (globalThis as unknown as { document: { querySelector(s: string): { querySelector(s: string): { textContent: string | null } | null } | null } }).document;
    const item = doc.querySelector(`.conv-item[data-key="${k}"]`);
    const badge = item?.querySelector(".badge");
    return { unread: badge ? Number(badge.textContent) : 0, mention: !!item?.querySelector(".mention") };
  }, key);
}

/** The server's counts for ann in one conversation, asked over TCP (PROTOCOL.md §3.6). */
async function serverCounts(target: { group: string } | { user: string }): Promise<{ unread: number; mention: boolean }> {
  const r = await probe.ok({ t: "convs" });
  const row = (r.convs as { group?: string; user?: string; unread: number; mentions: number }[]).find((c) =>
    "group" in target ? c.group === target.group : c.user === target.user,
  );
  return { unread: row?.unread ?? 0, mention: (row?.mentions ?? 0) > 0 };
}

/**
 * Waits until the server counts `want` for ann (a read the page sends takes a moment), then
 * until each page shows the server's counts, and checks that they do.
 */
async function badgesAre(pages: Page[], target: { group: string } | { user: string }, want: { unread: number; mention: boolean }): Promise<void> {
  const key = "group" in target ? `g:${target.group}` : `u:${target.user}`;
  let server = await serverCounts(target);
  for (const deadline = Date.now() + 10_000; JSON.stringify(server) !== JSON.stringify(want) && Date.now() < deadline; ) {
    await Bun.sleep(50);
    server = await serverCounts(target);
  }
  expect(server).toEqual(want);
  for (const p of pages) {
    const deadline = Date.now() + 10_000;
    let got = await badgeOf(p, key);
    while (JSON.stringify(got) !== JSON.stringify(server) && Date.now() < deadline) {
      await p.waitForTimeout(50);
      got = await badgeOf(p, key);
    }
    expect(got).toEqual(server);
  }
}

/** The mid of the message carl's client got pushed with this text. */
async function midOf(c: TestClient, text: string): Promise<number> {
  const m = await c.waitFor((x) => x.t === "msg" && x.text === text && x.kind === undefined);
  return m.mid as number;
}

describe("conversations in the web app", () => {
  test("unread and mention badges are the server's on two devices of one user; a deletion and an edit elsewhere change them; reading on one device clears the other", async () => {
    a1 = await newPage();
    await logIn(a1, "ann", { register: true });
    bob = await newPage();
    await logIn(bob, "bob", { register: true });
    carl = await tcpUser("carl", true);
    await carl.ok({ t: "create", group: "ops" }); // carl owns #ops
    await a1.getByLabel("Group to join or create").fill("ops");
    await a1.getByLabel("Group to join or create").press("Enter");
    await a1.locator("#conv-title", { hasText: "# ops" }).waitFor();
    a2 = await newPage();
    await logIn(a2, "ann");
    probe = await tcpUser("ann", false);
    // Neither device looks at #ops now.
    await openDm(a1, "bob");
    await openDm(a2, "bob");

    const one = await carl.ok({ t: "send", group: "ops", text: "one" });
    const two = await carl.ok({ t: "send", group: "ops", text: "two, @ann: a look?" });
    const three = await carl.ok({ t: "send", group: "ops", text: "three" });
    await carl.ok({ t: "send", user: "ann", text: "psst" });
    await badgesAre([a1, a2], { group: "ops" }, { unread: 3, mention: true });
    await badgesAre([a1, a2], { user: "carl" }, { unread: 1, mention: false });
    expect(await conv(a2, "g:ops").getAttribute("aria-label")).toBe("Group ops, 3 unread, 1 mention");
    expect(await conv(a2, "g:ops").locator(".conv-preview").textContent()).toBe("carl: three");
    expect(await a1.title()).toBe("(4) tcpchat");

    // Deleted: no longer unread, on both devices (a1 has #ops loaded, a2 never opened it).
    await carl.ok({ t: "delete", group: "ops", mid: three.mid });
    await badgesAre([a1, a2], { group: "ops" }, { unread: 2, mention: true });
    expect(await conv(a2, "g:ops").locator(".conv-preview").textContent()).toBe("carl: two, @ann: a look?");
    // Edited: the mention is gone.
    await carl.ok({ t: "edit", group: "ops", mid: two.mid, text: "two, nobody in particular" });
    await badgesAre([a1, a2], { group: "ops" }, { unread: 2, mention: false });
    expect(one.mid).toBeLessThan(two.mid);

    // Read on the first device: the second's badge goes, and the server agrees.
    await conv(a1, "g:ops").click();
    await msgLi(a1, "two, nobody in particular").waitFor();
    await badgesAre([a1, a2], { group: "ops" }, { unread: 0, mention: false });
    await badgesAre([a1, a2], { user: "carl" }, { unread: 1, mention: false });
    // And the other way round.
    await conv(a2, "u:carl").click();
    await msgLi(a2, "psst").waitFor();
    await badgesAre([a1, a2], { user: "carl" }, { unread: 0, mention: false });
    expect(await a1.title()).toBe("tcpchat");
    // A new message in the conversation one device has open is read there, so on the other too.
    await carl.ok({ t: "send", group: "ops", text: "four" });
    await msgLi(a1, "four").waitFor();
    await badgesAre([a1, a2], { group: "ops" }, { unread: 0, mention: false });
  }, 60_000);

  test("an edit, a deletion and reactions made by others show as they happen; clicking a reaction adds or takes back one's own", async () => {
    await bob.getByLabel("Group to join or create").fill("ops");
    await bob.getByLabel("Group to join or create").press("Enter");
    await bob.locator("#conv-title", { hasText: "# ops" }).waitFor();
    await conv(a1, "g:ops").click();
    const typo = await carl.ok({ t: "send", group: "ops", text: "the deploy is at noen" });
    const doomed = await carl.ok({ t: "send", group: "ops", text: "this one goes away" });
    await msgLi(a1, "this one goes away").waitFor();

    await carl.ok({ t: "edit", group: "ops", mid: typo.mid, text: "the deploy is at noon" });
    const edited = msgLi(a1, "the deploy is at noon");
    await edited.locator(".edited").waitFor();
    expect(await msgLi(a1, "noen").count()).toBe(0);

    await carl.ok({ t: "delete", group: "ops", mid: doomed.mid });
    await a1.locator(`#message-list li[data-mid="${doomed.mid}"] .msg-text.gone`, { hasText: "This message was deleted" }).waitFor();
    expect(await msgLi(a1, "this one goes away").count()).toBe(0);

    // carl reacts from the terminal while bob has the picker open in his browser (the message is
    // redrawn with carl's reaction; the picker stays), then bob picks one.
    const chip = (p: Page, emoji: string) => msgLi(p, "the deploy is at noon").locator(`.chip[data-emoji="${emoji}"]`);
    const bobMsg = msgLi(bob, "the deploy is at noon");
    await bobMsg.getByRole("button", { name: "Add a reaction" }).click();
    await bobMsg.locator(".picker").waitFor();
    await carl.ok({ t: "react", group: "ops", mid: typo.mid, emoji: "👍" });
    await chip(bob, "👍").waitFor();
    expect(await bobMsg.locator(".picker").count()).toBe(1);
    await bobMsg.getByRole("button", { name: "React with 🎉" }).click();
    expect(await bobMsg.locator(".picker").count()).toBe(0);
    await chip(a1, "👍").locator(".count", { hasText: "1" }).waitFor();
    await chip(a1, "🎉").locator(".count", { hasText: "1" }).waitFor();
    await carl.waitFor((m) => m.t === "msg" && m.kind === "react" && m.from === "bob" && m.emoji === "🎉" && m.ref === typo.mid);

    // ann adds hers by clicking carl's 👍, and takes it back.
    const mark = carl.pushes("msg").length;
    await chip(a1, "👍").click();
    await chip(a1, "👍").locator(".count", { hasText: "2" }).waitFor();
    expect(await chip(a1, "👍").getAttribute("aria-pressed")).toBe("true");
    await carl.waitFor((m) => m.t === "msg" && m.kind === "react" && m.from === "ann" && m.emoji === "👍", 5000, mark);
    await chip(bob, "👍").locator(".count", { hasText: "2" }).waitFor();
    await chip(a1, "👍").click();
    await chip(a1, "👍").locator(".count", { hasText: "1" }).waitFor();
    expect(await chip(a1, "👍").getAttribute("aria-pressed")).toBe("false");
    await carl.waitFor((m) => m.t === "msg" && m.kind === "unreact" && m.from === "ann" && m.emoji === "👍", 5000, mark);

    // The other device opens #ops now: the history gives the same (edited, deleted, reactions).
    await conv(a2, "g:ops").click();
    await msgLi(a2, "the deploy is at noon").locator(".edited").waitFor();
    await chip(a2, "👍").locator(".count", { hasText: "1" }).waitFor();
    await chip(a2, "🎉").locator(".count", { hasText: "1" }).waitFor();
    await a2.locator(`#message-list li[data-mid="${doomed.mid}"] .msg-text.gone`).waitFor();
    expect(await msgLi(a2, "noen").count()).toBe(0);
  }, 60_000);

  test("replies quote what they answer; one's own message can be edited and deleted", async () => {
    const target = msgLi(a1, "the deploy is at noon");
    const mid = Number(await target.getAttribute("data-mid"));
    await target.getByRole("button", { name: "Reply" }).click();
    await a1.locator("#compose-what", { hasText: "Replying to carl: the deploy is at noon" }).waitFor();
    await composer(a1).fill("noon works for me");
    await composer(a1).press("Enter");
    const pushed = await carl.waitFor((m) => m.t === "msg" && m.text === "noon works for me");
    expect(pushed.reply).toBe(mid);
    const quote = msgLi(bob, "noon works for me").locator(".quote");
    await quote.waitFor();
    expect(await quote.textContent()).toBe("carlthe deploy is at noon");
    expect(await a1.locator("#compose-bar").isHidden()).toBe(true);

    // A reply to a message far back (not loaded): its quote is fetched.
    const old = await carl.ok({ t: "send", group: "ops", text: "an old one" });
    for (let i = 0; i < 60; i++) await carl.ok({ t: "send", group: "ops", text: `filler ${i}` });
    await carl.ok({ t: "send", group: "ops", text: "about that old one", reply: old.mid });
    await a2.reload();
    await conv(a2, "g:ops").click();
    await msgLi(a2, "about that old one").locator(".quote", { hasText: "an old one" }).waitFor();

    // Edit and delete one's own.
    const mine = msgLi(a1, "noon works for me");
    await mine.getByRole("button", { name: "Edit" }).click();
    await a1.locator("#compose-what", { hasText: "Editing your message" }).waitFor();
    expect(await composer(a1).inputValue()).toBe("noon works for me");
    await composer(a1).fill("noon works for me, see you there");
    await composer(a1).press("Enter");
    const edit = await carl.waitFor((m) => m.t === "msg" && m.kind === "edit" && m.from === "ann");
    expect(edit.text).toBe("noon works for me, see you there");
    await msgLi(a1, "noon works for me, see you there").locator(".edited").waitFor();
    await msgLi(bob, "noon works for me, see you there").locator(".edited").waitFor();
    await bob.screenshot({ path: join(ARTIFACTS, "conversations.png") });
    const mineId = await msgLi(a1, "noon works for me, see you there").getAttribute("data-mid");
    const del = msgLi(a1, "noon works for me, see you there").locator("button[data-action=delete]");
    await del.click();
    expect(await del.textContent()).toBe("Delete?"); // the first click only asks
    await del.click();
    const deletion = await carl.waitFor((m) => m.t === "msg" && m.kind === "delete" && m.from === "ann");
    expect(String(deletion.ref)).toBe(mineId!);
    await bob.locator(`#message-list li[data-mid="${mineId}"] .msg-text.gone`).waitFor();
    expect(await msgLi(bob, "noon works for me").count()).toBe(0);
  }, 60_000);

  test("typing: 'bob is typing…' while bob types, gone when his message arrives; a terminal's typing too", async () => {
    await conv(bob, "g:ops").click();
    await composer(bob).click();
    await bob.keyboard.type("on my w");
    await a1.locator("#typing", { hasText: "bob is typing…" }).waitFor();
    // In the list too, for the device that is elsewhere.
    await conv(a2, "u:carl").click();
    await conv(a2, "g:ops").locator(".conv-preview.typing", { hasText: "bob is typing…" }).waitFor();
    await bob.keyboard.type("ay");
    await bob.keyboard.press("Enter");
    await msgLi(a1, "on my way").waitFor();
    expect(await a1.locator("#typing").textContent()).toBe("");

    await carl.ok({ t: "typing", group: "ops" });
    await a1.locator("#typing", { hasText: "carl is typing…" }).waitFor();
    // It fades by itself (about 5 s after the last push, PROTOCOL.md §5.5).
    await a1.locator("#typing", { hasText: "carl is typing…" }).waitFor({ state: "detached", timeout: 10_000 });
  }, 60_000);

  test("search: results newest first; a click opens the conversation at the message, older pages loaded to reach it", async () => {
    await carl.ok({ t: "create", group: "archive" });
    await a1.getByLabel("Group to join or create").fill("archive");
    await a1.getByLabel("Group to join or create").press("Enter");
    await a1.locator("#conv-title", { hasText: "# archive" }).waitFor();
    const first = await carl.ok({ t: "send", group: "archive", text: "the Needle in a haystack" });
    for (let i = 0; i < 120; i++) await carl.ok({ t: "send", group: "archive", text: `hay ${i}` });
    await carl.ok({ t: "send", user: "ann", text: "another needle, by DM" });
    await conv(a2, "u:carl").click(); // a2: not in #archive

    await a2.getByLabel("Search messages").fill("needle");
    await a2.getByLabel("Search messages").press("Enter");
    const hits = a2.locator("#search-results .search-hit");
    await a2.locator("#search-status", { hasText: "2 messages" }).waitFor();
    expect(await hits.locator(".hit-text").allTextContents()).toEqual(["another needle, by DM", "the Needle in a haystack"]);
    expect(await hits.nth(1).locator(".hit-head strong").textContent()).toBe("#archive");
    await hits.nth(1).click();
    await a2.locator("#conv-title", { hasText: "# archive" }).waitFor();
    const li = a2.locator(`#message-list li[data-mid="${first.mid}"]`);
    await li.waitFor();
    expect(await li.locator(".msg-text").textContent()).toBe("the Needle in a haystack");
    // Scrolled to it: it is inside the visible part of the list.
    const inView = await li.evaluate((el: { getBoundingClientRect(): { top: number; bottom: number }; closest(s: string): { getBoundingClientRect(): { top: number; bottom: number } } | null }) => {
      const r = el.getBoundingClientRect();
      const box = el.closest("#messages")!.getBoundingClientRect();
      return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    });
    expect(inView).toBe(true);
    await a2.screenshot({ path: join(ARTIFACTS, "search.png") });
    await a2.getByRole("button", { name: "Close" }).click();
    expect(await a2.locator("#search-panel").isHidden()).toBe(true);
  }, 60_000);

  test("after a reconnect the badges are the server's again: what came while the pages were away counts", async () => {
    await conv(a1, "u:carl").click();
    await conv(a2, "u:carl").click();
    await badgesAre([a1, a2], { group: "ops" }, { unread: 0, mention: false });
    expect(await w.server.stop()).toBe(0);
    await a1.locator("#banner", { hasText: "Reconnecting" }).waitFor();
    // a1 stays away until told: what is sent meanwhile reaches it only by its catch-up.
    await a1.context().setOffline(true);
    w = await startWebServer(ARGS);
    carl = await tcpUser("carl", false);
    probe = await tcpUser("ann", false);
    await carl.ok({ t: "send", group: "ops", text: "while you were away, @ann" });
    const gone = await carl.ok({ t: "send", group: "ops", text: "deleted while you were away" });
    await carl.ok({ t: "delete", group: "ops", mid: gone.mid });
    await carl.ok({ t: "send", group: "ops", text: "and this" });
    await a1.context().setOffline(false);
    for (const p of [a1, a2]) await p.locator("#me-status", { hasText: "online" }).waitFor({ timeout: 15_000 });
    await badgesAre([a1, a2], { group: "ops" }, { unread: 2, mention: true });
  }, 60_000);

  test("no page logged an error", () => {
    expect(problems).toEqual([]);
  });
});
