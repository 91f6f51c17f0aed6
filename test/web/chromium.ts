// The browser side of the web tests (browser.test.ts, conversations.test.ts): Debian's Chromium
// (/usr/bin/chromium) driven by playwright-core, which downloads no browser of its own, and the
// app's login form. A missing Chromium fails with the command that installs it; `npm test`
// installs it first as root (scripts/services.sh).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const INSTALL = "apt-get update && apt-get install -y chromium";
/** The flags known to work on these machines: no sandbox as root, and no calls home (the network is closed). */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Where the web tests put their screenshots. */
export const ARTIFACTS = join(import.meta.dir, "..", "..", "test-artifacts", "web");

/** The password of every user the web tests make. */
export const PASS = "password1";

/** Starts a headless Chromium (and makes ARTIFACTS), or fails saying how to install it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: the web tests drive it. Install it (as root): ${INSTALL} (npm test runs scripts/services.sh, which does)`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** Fills the login form and presses "Log in" or "Create account"; waits for the chat. */
export async function logIn(p: Page, user: string, opts: { register?: boolean; remember?: boolean } = {}): Promise<void> {
  await p.getByLabel("User name").fill(user);
  await p.getByLabel("Password").fill(PASS);
  if (opts.remember) await p.getByLabel("Remember me on this device").check();
  await p.getByRole("button", { name: opts.register ? "Create account" : "Log in" }).click();
  await p.locator("#me-name", { hasText: user }).waitFor();
}
