// The web app in a real browser: Debian's Chromium (/usr/bin/chromium) driven by
// playwright-core (no browser download: it drives the system's). One server process on
// a SQLite file and a fixed HTTP port (so it can be restarted under an open page); two
// browser contexts (ann and bob) and a TCP client (carl, test/helpers/client.ts) chat
// through it. Screenshots of the main screens go to test-artifacts/web/.
//
// A missing Chromium fails these tests with the command that installs it; `npm test`
// installs it first as root (scripts/services.sh).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, type BrowserContextOptions, type Page } from "playwright-core";
import { sha256Hex, TestClient } from "../helpers/client.ts";
import { TEST_ARGS, tempDir } from "../helpers/server.ts";
import { gradientPng } from "./png.ts";
import { ARTIFACTS, launchChromium, logIn, PASS } from "./chromium.ts";
import { freePort, startWebServer, until, type WebServer } from "./server.ts";

const DESKTOP = { width: 1280, height: 800 };

const tmp = tempDir("tcpchat-web-");
const db = join(tmp.dir, "chat.db");
const httpPort = freePort();
const ARGS = [...TEST_ARGS, "--db", db, "--http-port", String(httpPort)];

let w: WebServer;
let browser: Browser;
const contexts: BrowserContext[] = [];
const tcp: TestClient[] = [];
/** Console errors and uncaught exceptions of every page (the CSP reports its refusals there). */
const problems: string[] = [];
let dialogs = 0;

let ann: Page; // Asia/Kolkata, not remembered
let bob: Page; // America/New_York, remembered
let carl: TestClient; // the terminal side

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

async function context(opts: BrowserContextOptions = {}): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: DESKTOP, locale: "en-US", ...opts });
  contexts.push(ctx);
  return ctx;
}

async function page(ctx: BrowserContext): Promise<Page> {
  const p = await ctx.newPage();
  p.on("console", (m) => {
    // A WebSocket that cannot connect while the server is down or the context is offline is expected.
    if (m.type() === "error" && !/WebSocket connection to .* failed/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  p.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  p.on("dialog", (d) => {
    dialogs++;
    void d.dismiss();
  });
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

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

const conv = (p: Page, key: string) => p.locator(`.conv-item[data-key="${key}"]`);
const messageText = (p: Page, text: string) => p.locator("#message-list .msg-text").getByText(text, { exact: true });
const composer = (p: Page) => p.getByRole("textbox", { name: "Message", exact: true });

async function say(p: Page, text: string): Promise<void> {
  await composer(p).fill(text);
  await composer(p).press("Enter");
}

/** Creates a group from the sidebar's Create button (PROTOCOL.md §3.3: joining never creates). */
async function createGroup(p: Page, group: string): Promise<void> {
  await p.getByLabel("Group to join or create").fill(group);
  await p.locator("#create-button").click();
  await p.locator("#conv-title", { hasText: `# ${group}` }).waitFor();
}

async function joinGroup(p: Page, group: string): Promise<void> {
  await p.getByLabel("Group to join or create").fill(group);
  await p.getByLabel("Group to join or create").press("Enter");
  await p.locator("#conv-title", { hasText: `# ${group}` }).waitFor();
}

async function sessionItem(p: Page, storage: "sessionStorage" | "localStorage"): Promise<{ user: string; token: string } | null> {
  const v = await p.evaluate((s) => (globalThis as unknown as Record<string, { getItem(k: string): string | null }>)[s]!.getItem("tcpchat.session"), storage);
  return v ? JSON.parse(v) : null;
}

describe("the web app in Chromium", () => {
  test("the page is served with its Content-Security-Policy; register and log in, token kept for the tab or remembered", async () => {
    const res = await fetch(w.web);
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await res.text()).not.toMatch(/<script>|<style>| on[a-z]+="/);

    const a = await context({ timezoneId: "Asia/Kolkata" });
    ann = await page(a);
    await ann.getByLabel("User name").waitFor();
    await shot(ann, "login");
    // Checked before anything is sent.
    await ann.getByLabel("User name").fill("ann");
    await ann.getByLabel("Password").fill("short");
    await ann.getByRole("button", { name: "Log in" }).click();
    await expect(ann.getByRole("alert").first().textContent()).resolves.toContain("at least 8 characters");
    await logIn(ann, "ann", { register: true });
    expect(await sessionItem(ann, "sessionStorage")).toMatchObject({ user: "ann" });
    expect(await sessionItem(ann, "localStorage")).toBeNull();

    const b = await context({ timezoneId: "America/New_York" });
    bob = await page(b);
    await bob.getByLabel("User name").fill("bob");
    await bob.getByLabel("Password").fill(PASS);
    await bob.getByRole("button", { name: "Log in" }).click();
    await bob.locator("#login-error", { hasText: "Wrong user name or password" }).waitFor();
    await logIn(bob, "bob", { register: true, remember: true });
    expect(await sessionItem(bob, "localStorage")).toMatchObject({ user: "bob" });
    expect(await sessionItem(bob, "sessionStorage")).toBeNull();

    // A reload keeps the tab's session: back in without the form.
    await ann.reload();
    await ann.locator("#me-name", { hasText: "ann" }).waitFor();
    expect(await ann.locator("#login-screen").isHidden()).toBe(true);
  });

  test("two browsers and a TCP client chat in a group and by DM; presence dots, unread counts, times in each viewer's zone", async () => {
    // joining a group that does not exist says so, and creates nothing
    await ann.getByLabel("Group to join or create").fill("team");
    await ann.getByLabel("Group to join or create").press("Enter");
    await ann.locator("#side-error", { hasText: "There is no group #team" }).waitFor();
    await createGroup(ann, "team");
    await joinGroup(bob, "team");
    carl = await tcpUser("carl", true);
    await carl.ok({ t: "join", group: "team" });

    await say(ann, "hello team");
    await messageText(bob, "hello team").waitFor();
    const pushed = await carl.waitFor((m) => m.t === "msg" && m.text === "hello team");
    expect(pushed.from).toBe("ann");
    await carl.ok({ t: "send", group: "team", text: "hi from the terminal" });
    await messageText(ann, "hi from the terminal").waitFor();
    await messageText(bob, "hi from the terminal").waitFor();

    // Enter sends, Shift+Enter is a new line.
    await composer(bob).click();
    await bob.keyboard.type("two");
    await bob.keyboard.press("Shift+Enter");
    await bob.keyboard.type("lines");
    await bob.keyboard.press("Enter");
    await carl.waitFor((m) => m.t === "msg" && m.text === "two\nlines");
    await messageText(ann, "two\nlines").waitFor();

    // A DM from bob: ann has #team open, so it is unread until she opens it.
    await bob.getByLabel("User to message").fill("ann");
    await bob.getByLabel("User to message").press("Enter");
    await bob.locator("#conv-title", { hasText: "ann" }).waitFor();
    await say(bob, "psst, ann");
    await conv(ann, "u:bob").locator(".badge", { hasText: "1" }).waitFor();
    await expect(ann.title()).resolves.toBe("(1) tcpchat");
    // bob shares #team with ann: his dot says online.
    await conv(ann, "u:bob").locator(".dot.online").waitFor();
    await conv(ann, "u:bob").click();
    await messageText(ann, "psst, ann").waitFor();
    expect(await conv(ann, "u:bob").locator(".badge").count()).toBe(0);
    await expect(ann.title()).resolves.toBe("tcpchat");
    await say(ann, "hi bob");
    await messageText(bob, "hi bob").waitFor();

    // A DM from the terminal: a new conversation in ann's list, unread.
    await carl.ok({ t: "send", user: "ann", text: "dm from carl" });
    await conv(ann, "u:carl").locator(".badge", { hasText: "1" }).waitFor();
    await expect(conv(ann, "u:carl").getAttribute("aria-label")).resolves.toBe("carl, online, 1 unread");

    // The same message, each in the viewer's time zone.
    for (const [p, zone] of [
      [ann, "Asia/Kolkata"],
      [bob, "America/New_York"],
    ] as const) {
      const time = p.locator("#message-list li", { hasText: "psst, ann" }).locator("time");
      const iso = (await time.getAttribute("datetime"))!;
      const want = new Intl.DateTimeFormat("en-US", { hour: "numeric", minute: "2-digit", timeZone: zone }).format(new Date(iso));
      expect(await time.textContent()).toBe(want);
    }

    // Presence: carl leaves, ann sees his dot go grey.
    carl.close();
    await conv(ann, "u:carl").locator(".dot:not(.online)").waitFor();
    carl = await tcpUser("carl", false);
    await conv(ann, "u:carl").locator(".dot.online").waitFor();
  });

  test("files: uploaded with a progress bar, then sent; an image is previewed by downloading it, another file is downloaded when clicked; by the file button and by drag and drop", async () => {
    await conv(ann, "g:team").click();
    await conv(bob, "g:team").click();
    // Whether ann's page ever shows an upload's progress bar (a small file's is gone quickly).
    await ann.evaluate(
      "(() => { window.sawProgress = false; new MutationObserver(() => { if (document.querySelector('#message-list progress.upload-progress')) window.sawProgress = true; }).observe(document.body, { subtree: true, childList: true }); })()",
    );
    const png = gradientPng(320, 180);
    await ann.locator("#file-input").setInputFiles({ name: "sunset.png", mimeType: "image/png", buffer: Buffer.from(png) });
    // The message carries what the file is; bob's page downloads the bytes to show the picture.
    const img = bob.locator("#message-list figure.file img[src^='blob:']");
    await img.waitFor();
    const width = () => img.evaluate((el: { naturalWidth: number; complete: boolean }) => (el.complete ? el.naturalWidth : -1));
    for (let i = 0; i < 50 && (await width()) === -1; i++) await bob.waitForTimeout(100);
    expect(await width()).toBe(320); // decoded: the bytes are the picture
    expect(await ann.evaluate("window.sawProgress")).toBe(true);
    const filePush = await carl.waitFor((m) => m.t === "msg" && m.file?.name === "sunset.png");
    expect(filePush.file).toEqual({ name: "sunset.png", type: "image/png", size: png.length, sha256: sha256Hex(png) });
    expect(Array.from(await carl.download(filePush.mid as number))).toEqual(Array.from(png));
    await ann.locator("#message-list figure.file img[src^='blob:']").waitFor(); // the sender's own preview too

    // Drag and drop onto bob's conversation: the overlay shows, the drop sends.
    const dt = await bob.evaluateHandle(
      "(() => { const d = new DataTransfer(); d.items.add(new File(['meeting at 3\\n'], 'notes.txt', { type: 'text/plain' })); return d; })()",
    );
    await bob.dispatchEvent("#conversation", "dragenter", { dataTransfer: dt });
    await bob.locator("#drop").waitFor();
    await bob.dispatchEvent("#conversation", "drop", { dataTransfer: dt });
    expect(await bob.locator("#drop").isHidden()).toBe(true);
    const link = ann.locator("#message-list .file a", { hasText: "notes.txt" });
    await link.waitFor();
    expect(await ann.locator("#message-list .file img").count()).toBe(1); // a text file is not previewed
    const [download] = await Promise.all([ann.waitForEvent("download"), link.click()]);
    expect(download.suggestedFilename()).toBe("notes.txt");
    expect(readFileSync((await download.path())!, "utf8")).toBe("meeting at 3\n");
    const notes = await carl.waitFor((m) => m.t === "msg" && m.file?.name === "notes.txt");
    expect(new TextDecoder().decode(await carl.download(notes.mid as number))).toBe("meeting at 3\n");
    // A file of 3 MB: chunks of 1 MiB, more than the client lets wait in the browser's WebSocket
    // buffer at once (HIGH_WATER, 1 MiB); a text written meanwhile goes at once.
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    await ann.locator("#file-input").setInputFiles({ name: "big.bin", mimeType: "application/octet-stream", buffer: Buffer.from(big) });
    await say(ann, "that was the big one");
    await messageText(bob, "that was the big one").waitFor();
    const bigPush = await carl.waitFor((m) => m.t === "msg" && m.file?.name === "big.bin", 15_000);
    expect(bigPush.file.size).toBe(big.length);
    expect(Buffer.from(await carl.download(bigPush.mid as number)).equals(Buffer.from(big))).toBe(true);
    const bigLink = bob.locator("#message-list .file a", { hasText: "big.bin" });
    const [bigDownload] = await Promise.all([bob.waitForEvent("download"), bigLink.click()]);
    expect(Buffer.from(readFileSync((await bigDownload.path())!)).equals(Buffer.from(big))).toBe(true);
    await say(ann, "The view from the office tonight");
    await messageText(bob, "The view from the office tonight").waitFor();
    // A reaction from the terminal shows on ann's message (and in the screenshot).
    const view = await carl.waitFor((m) => m.t === "msg" && m.text === "The view from the office tonight");
    await carl.ok({ t: "react", group: "team", mid: view.mid, emoji: "😍" });
    await ann.locator(`#message-list li[data-mid="${view.mid}"] .chip[data-emoji="😍"]`, { hasText: "1" }).waitFor();
    await shot(ann, "conversation");
  });

  test("history: a conversation opened on a new device shows the newest page and loads older ones as you scroll up, each once, in order", async () => {
    await carl.ok({ t: "create", group: "archive" });
    await joinGroup(ann, "archive");
    const texts = Array.from({ length: 130 }, (_, i) => `old ${i}`);
    for (const text of texts) await carl.ok({ t: "send", group: "archive", text });
    await messageText(ann, "old 129").waitFor(); // live, in her open tab
    // A second device: a password login, nothing saved there.
    const a2 = await context({ timezoneId: "Asia/Kolkata" });
    const p = await page(a2);
    await logIn(p, "ann");
    await conv(p, "g:archive").click();
    await messageText(p, "old 129").waitFor();
    const shown = () => p.locator("#message-list .msg-text").allTextContents();
    expect((await shown()).length).toBeLessThan(130);
    expect(await p.locator("#messages").evaluate((el: { scrollTop: number; scrollHeight: number; clientHeight: number }) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(5);
    for (let i = 0; i < 20 && (await messageText(p, "old 0").count()) === 0; i++) {
      await p.locator("#messages").evaluate((el: { scrollTop: number }) => {
        el.scrollTop = 0;
      });
      await p.waitForTimeout(150);
    }
    expect(await shown()).toEqual(texts);
    await shot(p, "history");
    await a2.close();
  });

  test("message text is text: markup from others and from oneself shows as those characters and runs nothing", async () => {
    await conv(ann, "g:team").click();
    await conv(bob, "g:team").click();
    const evil = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>", "<b>bold?</b> &amp; <a href=javascript:alert(3)>x</a>"];
    for (const text of evil) await carl.ok({ t: "send", group: "team", text });
    await carl.sendFile({ group: "team" }, "<img src=y onerror=alert(4)>.txt", "text/html", new TextEncoder().encode("<script>alert(5)</script>"));
    await say(bob, "<svg onload=alert(6)>");
    for (const text of evil) await messageText(ann, text).waitFor();
    await messageText(ann, "<svg onload=alert(6)>").waitFor();
    await ann.locator("#message-list .file a", { hasText: "<img src=y onerror=alert(4)>.txt" }).waitFor();
    // No element came out of the text: message texts and file names hold text only.
    expect(await ann.locator("#message-list .msg-text *, #message-list .file .name *").count()).toBe(0);
    expect(await ann.locator('#message-list img[src="x"], #message-list img[src="y"], #message-list script').count()).toBe(0);
    await ann.waitForTimeout(300);
    expect(dialogs).toBe(0);
  });

  test("the server restarts under open pages: 'Reconnecting…', then what was missed shows once, and a message written meanwhile is sent once", async () => {
    const before = await ann.locator("#message-list .msg-text").allTextContents();
    const annCtx = ann.context();
    expect(await w.server.stop()).toBe(0);
    await ann.locator("#banner", { hasText: "Reconnecting" }).waitFor();
    // ann's tab cannot reconnect until we say so, so messages are committed while she is away.
    await annCtx.setOffline(true);
    await say(ann, "written while offline");
    await ann.locator("#message-list .msg.pending", { hasText: "written while offline" }).waitFor();
    await shot(ann, "reconnecting");
    w = await startWebServer(ARGS);
    expect(w.httpPort).toBe(httpPort);
    await bob.locator("#me-status", { hasText: "online" }).waitFor({ timeout: 15_000 });
    carl = await tcpUser("carl", false);
    await carl.ok({ t: "send", group: "team", text: "while ann was away (1)" });
    await carl.ok({ t: "send", group: "team", text: "while ann was away (2)" });
    await say(bob, "bob missed you");
    await carl.waitFor((m) => m.t === "msg" && m.text === "bob missed you");
    await annCtx.setOffline(false);
    for (const t of ["while ann was away (1)", "while ann was away (2)", "bob missed you"]) await messageText(ann, t).waitFor({ timeout: 15_000 });
    await messageText(bob, "written while offline").waitFor({ timeout: 15_000 });
    await ann.locator("#message-list .msg.pending").waitFor({ state: "detached" });
    await ann.locator("#banner", { hasText: "Reconnecting" }).waitFor({ state: "detached" }).catch(() => {});
    await ann.waitForTimeout(500); // nothing more comes
    const after = await ann.locator("#message-list .msg-text").allTextContents();
    // Each once, in the order they were stored: the queued send went out after the catch-up.
    expect(after).toEqual([...before, "while ann was away (1)", "while ann was away (2)", "bob missed you", "written while offline"]);
    const bobs = await bob.locator("#message-list .msg-text").allTextContents();
    expect(bobs.filter((x) => x === "written while offline").length).toBe(1);
    const carlGot = carl.pushes("msg").filter((m) => m.text === "written while offline");
    expect(carlGot.length).toBe(1);
  });

  test("a tab that comes back catches up from where it was: what came meanwhile is unread, each message once", async () => {
    await ann.goto("about:blank");
    await carl.ok({ t: "send", group: "team", text: "while the tab was away" });
    await carl.ok({ t: "send", user: "ann", text: "another dm from carl" });
    await ann.goto(w.web);
    await ann.locator("#me-name", { hasText: "ann" }).waitFor();
    // carl's first DM was never opened: 1 unread kept from before, 1 new.
    await conv(ann, "u:carl").locator(".badge", { hasText: "2" }).waitFor();
    await conv(ann, "g:team").click();
    await messageText(ann, "while the tab was away").waitFor();
    await conv(ann, "u:carl").click();
    await messageText(ann, "another dm from carl").waitFor();
    expect(await ann.locator("#message-list .msg-text").allTextContents()).toEqual(["dm from carl", "another dm from carl"]);
    await conv(ann, "g:team").click();
    const team = await ann.locator("#message-list .msg-text").allTextContents();
    expect(team.filter((t) => t === "while the tab was away").length).toBe(1);
    expect(team.at(-1)).toBe("while the tab was away");
    expect(new Set(team).size).toBe(team.length); // every text in #team is different: none twice
  });

  test("Origin: a WebSocket from a page of another origin is refused; the app's own origin and non-browsers are let in", async () => {
    const open = (headers?: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const s = new WebSocket(w.ws, headers ? { headers } : undefined);
        s.onopen = () => {
          s.close();
          resolve("open");
        };
        s.onclose = () => resolve("refused");
        s.onerror = () => resolve("refused");
      });
    expect(await open({ Origin: "http://evil.example" })).toBe("refused");
    expect(await open({ Origin: new URL(w.web).origin })).toBe("open");
    expect(await open()).toBe("open");

    // A real page elsewhere (another port is another origin) tries it from Chromium.
    const other = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        new Response(
          `<!doctype html><title>trying</title><script>
            const s = new WebSocket(${JSON.stringify(w.ws)});
            s.onopen = () => { document.title = "open"; };
            s.onclose = () => { if (document.title !== "open") document.title = "refused"; };
          </script>`,
          { headers: { "Content-Type": "text/html" } },
        ),
    });
    try {
      const p = await (await context()).newPage();
      await p.goto(`http://127.0.0.1:${other.port}/`);
      await p.waitForFunction(() => (globalThis as unknown as { document: { title: string } }).document.title !== "trying");
      expect(await p.title()).toBe("refused");
    } finally {
      other.stop(true);
    }
  });

  test("remember me keeps the session for new tabs; without it a new tab asks again; logout revokes the token", async () => {
    const b2 = await bob.context().newPage();
    await b2.goto(w.web);
    await b2.locator("#me-name", { hasText: "bob" }).waitFor();
    await b2.close();
    const a2 = await ann.context().newPage();
    await a2.goto(w.web);
    await a2.getByLabel("User name").waitFor();
    expect(await a2.locator("#chat-screen").isHidden()).toBe(true);
    await a2.close();

    const token = (await sessionItem(bob, "localStorage"))!.token;
    await bob.getByRole("button", { name: "Log out" }).click();
    await bob.getByLabel("User name").waitFor();
    expect(await sessionItem(bob, "localStorage")).toBeNull();
    const probe = await TestClient.connect(w.server.port);
    tcp.push(probe);
    const r = await probe.request({ t: "login", user: "bob", token });
    expect(r).toMatchObject({ t: "error", code: "unauthorized" });
  });

  test("phone width and dark mode: one pane at a time, a back button; dark colours from the system setting", async () => {
    const phone = await context({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, timezoneId: "Europe/Berlin" });
    const p = await page(phone);
    await logIn(p, "bob");
    expect(await p.locator(".sidebar").isVisible()).toBe(true);
    expect(await p.locator("#conversation").isVisible()).toBe(false);
    await shot(p, "phone-list");
    await conv(p, "g:team").click();
    await messageText(p, "The view from the office tonight").waitFor();
    expect(await p.locator(".sidebar").isVisible()).toBe(false);
    await shot(p, "phone-conversation");
    await p.getByRole("button", { name: "Back to conversations" }).click();
    expect(await p.locator(".sidebar").isVisible()).toBe(true);

    const dark = await context({ colorScheme: "dark", timezoneId: "Europe/Berlin" });
    const d = await page(dark);
    await logIn(d, "carl");
    await conv(d, "g:team").click();
    await messageText(d, "The view from the office tonight").waitFor();
    const bg = await d.evaluate(() => {
      const g = globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string }; document: { body: unknown } };
      return g.getComputedStyle(g.document.body).backgroundColor;
    });
    expect(bg).toBe("rgb(15, 17, 23)");
    await shot(d, "dark");
  });

  test("no page logged a Content-Security-Policy refusal or any other error", () => {
    expect(problems).toEqual([]);
  });
});
