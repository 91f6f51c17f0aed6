// The tcpchat web app: the project's client library (src/client/browser.ts) over
// WebSocket to the server that served this page, and plain DOM. The library does
// reconnecting, token login, `sync` catch-up, exactly-once delivery and queued sends
// by `cid`; this file shows it. Text from the network is only ever set as text (see
// view.ts). The page runs under a strict Content-Security-Policy: no inline script or
// style, no event handler attributes.
import {
  ChatClient,
  ChatError,
  type ChatFile,
  type ChatMessage,
  type ConnectionState,
  type LoginResult,
  type Target,
  type TypingEvent,
} from "../client/browser.ts";
import { newCid } from "../client/cid.ts";
import { cut, dayKey, NAME_RE, NAME_RULE, PASS_MIN, sizeLabel } from "./format.ts";
import { ChatModel, type Conv, type ConvKey, keyOf, type Shown, targetOfMessage, TypingThrottle, typingLabel } from "./model.ts";
import { BlobUrls, byId, colourClass, continues, convItem, dayDivider, type MessageLike, messageView, type Quote, reactionPicker, searchHit, systemView } from "./view.ts";

const WS_URL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
/** Messages per history page. */
const PAGE = 50;
/** Groups whose members are asked for presence after each (re)connect. */
const PRESENCE_GROUPS = 100;
/** Search results per page. */
const SEARCH_PAGE = 30;
const SESSION_KEY = "tcpchat.session";
/** What earlier versions kept per user (read marks counted in the page): the server counts them now. */
const stateKey = (user: string) => `tcpchat.state.${user}`;

// ---- the page's elements -------------------------------------------------------------

const ui = {
  banner: byId("banner"),
  loginScreen: byId("login-screen"),
  loginForm: byId<HTMLFormElement>("login-form"),
  loginUser: byId<HTMLInputElement>("login-user"),
  loginPass: byId<HTMLInputElement>("login-pass"),
  loginRemember: byId<HTMLInputElement>("login-remember"),
  loginError: byId("login-error"),
  loginSubmit: byId<HTMLButtonElement>("login-submit"),
  registerSubmit: byId<HTMLButtonElement>("register-submit"),
  chat: byId("chat-screen"),
  meName: byId("me-name"),
  meAvatar: byId("me-avatar"),
  meStatus: byId("me-status"),
  logout: byId<HTMLButtonElement>("logout"),
  joinForm: byId<HTMLFormElement>("join-form"),
  joinGroup: byId<HTMLInputElement>("join-group"),
  dmForm: byId<HTMLFormElement>("dm-form"),
  dmUser: byId<HTMLInputElement>("dm-user"),
  sideError: byId("side-error"),
  groupList: byId("group-list"),
  dmList: byId("dm-list"),
  conversation: byId("conversation"),
  back: byId<HTMLButtonElement>("back"),
  convTitle: byId("conv-title"),
  convSub: byId("conv-sub"),
  leave: byId<HTMLButtonElement>("leave"),
  empty: byId("empty"),
  messages: byId("messages"),
  older: byId("older"),
  messageList: byId("message-list"),
  convError: byId("conv-error"),
  typing: byId("typing"),
  composeBar: byId("compose-bar"),
  composeWhat: byId("compose-what"),
  composeCancel: byId<HTMLButtonElement>("compose-cancel"),
  lists: byId("lists"),
  searchForm: byId<HTMLFormElement>("search-form"),
  searchQ: byId<HTMLInputElement>("search-q"),
  searchPanel: byId("search-panel"),
  searchStatus: byId("search-status"),
  searchResults: byId("search-results"),
  searchMore: byId<HTMLButtonElement>("search-more"),
  searchClose: byId<HTMLButtonElement>("search-close"),
  composer: byId<HTMLFormElement>("composer"),
  fileInput: byId<HTMLInputElement>("file-input"),
  text: byId<HTMLTextAreaElement>("text"),
  drop: byId("drop"),
};

const phone = matchMedia("(max-width: 720px)");

// ---- the session: a token kept for the tab, or on the device when asked -------------------

interface Session {
  user: string;
  token: string;
  remember: boolean;
}

function storageFor(remember: boolean): Storage {
  return remember ? localStorage : sessionStorage;
}

function loadSession(): Session | undefined {
  for (const remember of [false, true]) {
    try {
      const v = JSON.parse(storageFor(remember).getItem(SESSION_KEY) ?? "null") as Session | null;
      if (v && typeof v.user === "string" && typeof v.token === "string") return { user: v.user, token: v.token, remember };
    } catch {
      // unreadable: as if absent
    }
  }
  return undefined;
}

function saveSession(s: Session): void {
  storageFor(s.remember).setItem(SESSION_KEY, JSON.stringify({ user: s.user, token: s.token }));
  storageFor(!s.remember).removeItem(SESSION_KEY);
}

function forgetSession(user?: string): void {
  for (const st of [sessionStorage, localStorage]) {
    st.removeItem(SESSION_KEY);
    if (user) st.removeItem(stateKey(user));
  }
}

// ---- state -------------------------------------------------------------------------

interface PendingSend {
  cid: string;
  key: ConvKey;
  target: Target;
  text?: string;
  /** The upload to send, once it is finished. */
  file?: ChatFile;
  /** A file chosen here: uploaded first (PROTOCOL.md §3.9), then sent as `file`. */
  upload?: { blob: Blob; name: string; type: string; size: number; done: number; running: boolean };
  reply?: number;
  ts: number;
  error?: string;
}

let clientP: Promise<ChatClient>;
let client: ChatClient | undefined;
let model: ChatModel | undefined;
let session: Session | undefined;
let limits: LoginResult["limits"];
const blobs = new BlobUrls();
/** One's own sends not acknowledged yet, in the order they were made. */
const pending = new Map<string, PendingSend>();
/** Message elements by mid, reused between renders (images keep their decoded pixels) while what they show is the same. */
const nodes = new Map<number, { li: HTMLLIElement; sig: string }>();
/** What the composer does with its text: a new message, a reply to `mid`, or an edit of one's own `mid`. */
let compose: { mode: "reply" | "edit"; key: ConvKey; mid: number } | undefined;
/** When to tell the server that the user is typing. */
const typingOut = new TypingThrottle();
/** The conversations and groups have been listed once since login (later listings are of the counts only). */
let listed = false;
/** The connection was lost since the last `ready`. */
let down = false;
let loadingOlder = false;

// ---- the banner --------------------------------------------------------------------------

let bannerTimer: ReturnType<typeof setTimeout> | undefined;

function banner(text: string | undefined, ok = false, forMs = 0): void {
  clearTimeout(bannerTimer);
  if (text === undefined) {
    ui.banner.hidden = true;
    ui.banner.textContent = "";
    return;
  }
  ui.banner.textContent = text;
  ui.banner.classList.toggle("ok", ok);
  ui.banner.hidden = false;
  if (forMs > 0) bannerTimer = setTimeout(() => banner(undefined), forMs);
}

function describe(e: unknown): string {
  if (e instanceof ChatError) {
    switch (e.code) {
      case "unauthorized":
        return "Wrong user name or password.";
      case "conflict":
        return "That name is taken.";
      case "rate_limited":
        return "Too many attempts just now: wait a moment and try again.";
      case "not_found":
        return "Not found.";
      case "forbidden":
        return "Not allowed: " + e.serverMessage;
      case "too_large":
        return limits?.max_file && e.request === "upload" ? `Too large: the server takes files up to ${sizeLabel(limits.max_file)}.` : "Too large for the server.";
      case "quota":
        // PROTOCOL.md §3.9: the user's file quota, or too many uploads not sent yet; the server says which.
        return `No room for this file: ${e.serverMessage || "over your file quota"}. Delete some of your files first.`;
      case "unavailable":
        return "The server cannot store anything right now; try again soon.";
      default:
        return e.serverMessage || e.message;
    }
  }
  if (e instanceof Error && (e.name === "DisconnectedError" || e.name === "TimeoutError")) return "No connection to the server right now.";
  if (e instanceof Error && e.name === "IntegrityError") return "The file arrived damaged (its checksum is not the one sent), so it was not kept.";
  return e instanceof Error ? e.message : String(e);
}

// ---- connecting ------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects, retrying until the server answers. */
async function connect(): Promise<ChatClient> {
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      const c = await ChatClient.connect({
        url: WS_URL,
        // The app checks sizes against the server's own limits (from the login reply).
        maxRequestFrame: 1024 * 1024 * 1024,
        reconnect: { initialDelayMs: 250, maxDelayMs: 4000 },
        pingIntervalMs: 10_000,
      });
      watch(c);
      client = c;
      if (!ui.banner.classList.contains("ok")) banner(undefined);
      return c;
    } catch {
      banner("Cannot reach the server. Trying again…");
      await sleep(delay);
    }
  }
}

function watch(c: ChatClient): void {
  c.on("state", (s) => onState(c, s));
  // Every entry of the log, messages included, once and in mid order (kinds it does not know too: the model ignores them).
  c.on("entry", (m) => {
    if (c === client) onEntry(m);
  });
  c.on("typing", (t) => {
    if (c === client) onTyping(t);
  });
  c.on("presence", (p) => {
    if (c !== client || !model) return;
    model.online.set(p.user, p.online);
    renderList();
    renderHeader();
  });
  c.on("error", (e) => console.warn("tcpchat:", e));
}

function onState(c: ChatClient, s: ConnectionState): void {
  if (c !== client) return;
  if (s === "connecting") {
    down = true;
    banner("Reconnecting…");
  } else if (s === "syncing" && down) {
    banner("Catching up…");
  } else if (s === "ready") {
    if (down && model) {
      banner("Back online", true, 2500);
      void refreshPresence();
    } else banner(undefined);
    down = false;
    // After a reconnect: the counts as they are now, and the reads that could not be sent
    // (the first login's listing is enter()'s: session is set once it has logged in).
    if (model && session) {
      void refreshConvs();
      flushReads();
    }
  } else if (s === "open" && down && !model) {
    banner(undefined);
    down = false;
  } else if (s === "closed" && model) {
    // The token was refused after a reconnect (revoked, expired, password changed).
    sessionEnded("Your session has ended. Please log in again.");
  }
  ui.meStatus.textContent = s === "ready" ? "online" : s === "closed" ? "offline" : "reconnecting…";
  renderPending();
}

// ---- logging in and out -------------------------------------------------------------------

function showLogin(message = ""): void {
  ui.chat.hidden = true;
  ui.loginScreen.hidden = false;
  ui.loginError.textContent = message;
  document.title = "tcpchat";
  setBusy(false);
  ui.loginUser.focus();
}

function setBusy(busy: boolean, label?: string): void {
  ui.loginSubmit.disabled = busy;
  ui.registerSubmit.disabled = busy;
  ui.loginSubmit.textContent = busy && label ? label : "Log in";
}

/** Logs in (password or token) and shows the chat. Throws what login throws. */
async function enter(user: string, cred: { pass: string } | { token: string }, remember: boolean): Promise<void> {
  const c = await clientP;
  const m = new ChatModel(user);
  model = m;
  listed = false;
  let r: LoginResult;
  try {
    // The counts, previews and messages come from the server (convs, history): nothing to catch up here.
    r = await c.login(user, cred);
  } catch (e) {
    model = undefined;
    throw e;
  }
  session = { user: r.user, token: r.token, remember };
  saveSession(session);
  for (const st of [sessionStorage, localStorage]) st.removeItem(stateKey(r.user));
  limits = r.limits;
  // Files are downloaded when shown (images) or clicked (the rest), in chunks, checked by SHA-256.
  blobs.loader = (mid, file, onProgress) => {
    if (client !== c) return Promise.reject(new Error("logged out"));
    return c.downloadBlob({ mid, ts: 0, from: "", file }, { onProgress: (p) => onProgress(p.bytes, p.total) });
  };
  showChat();
  await refreshConvs();
  void refreshPresence();
  if (!phone.matches) {
    const first = m.list("group")[0] ?? m.list("dm")[0];
    if (first && model === m && m.current === undefined) void openConv(first.key);
  }
}

let convsBusy = false;
let convsAgain = false;
let convsTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * The conversation list with the server's unread and mention counts and previews (`convs`,
 * PROTOCOL.md §3.6): at login (with the groups, for their owners, until that has worked once),
 * after every reconnect, and when a count could not be kept exactly from the live entries (a
 * conversation is stale).
 */
async function refreshConvs(): Promise<void> {
  const m = model;
  const c = client;
  if (!m || !c) return;
  if (convsBusy) {
    convsAgain = true;
    return;
  }
  convsBusy = true;
  try {
    const [list, groups] = await Promise.all([c.conversations(), listed ? undefined : c.groups()]);
    if (m !== model) return;
    if (groups) {
      // Left on another device since: gone from here too.
      const mine = new Set(groups.map((g) => `g:${g.group}`));
      for (const conv of [...m.convs.values()]) if (conv.kind === "group" && !mine.has(conv.key)) m.remove(conv.key);
      for (const g of groups) m.conv({ group: g.group }).owner = g.owner;
    }
    m.fromServer(list);
    listed = true;
  } catch (e) {
    console.warn("tcpchat: could not list conversations:", e);
  } finally {
    convsBusy = false;
  }
  if (m !== model) return;
  renderList();
  const cur = currentConv();
  if (cur) {
    readIfViewing(cur);
    renderMessages("auto");
  }
  if (convsAgain) {
    convsAgain = false;
    void refreshConvs();
  }
}

/** Asks `convs` again soon if a conversation's count is not known exactly (at most one a second). */
function checkStale(): void {
  if (!model || convsTimer || ![...model.convs.values()].some((c) => c.stale)) return;
  convsTimer = setTimeout(() => {
    void refreshConvs().finally(() => setTimeout(() => (convsTimer = undefined), 1000));
  }, 250);
}

function showChat(): void {
  const me = model!.me;
  ui.loginScreen.hidden = true;
  ui.chat.hidden = false;
  ui.meName.textContent = me;
  ui.meAvatar.textContent = me.slice(0, 1);
  ui.meAvatar.className = `avatar ${colourClass(me)}`;
  ui.loginPass.value = "";
  showConv(undefined);
}

/** Back to the login screen with a fresh connection (a new client: nothing of the old session is kept). */
function resetToLogin(message: string): void {
  const old = client;
  model = undefined;
  session = undefined;
  limits = undefined;
  pending.clear();
  pendingNodes.clear();
  nodes.clear();
  reads.clear();
  compose = undefined;
  listed = false;
  closeSearch();
  blobs.revokeAll();
  ui.groupList.replaceChildren();
  ui.dmList.replaceChildren();
  ui.messageList.replaceChildren();
  client = undefined;
  void old?.close();
  down = false;
  clientP = connect();
  showLogin(message);
}

function sessionEnded(message: string): void {
  forgetSession(session?.user);
  resetToLogin(message);
}

async function logout(): Promise<void> {
  const c = client;
  const user = session?.user;
  ui.logout.disabled = true;
  let message = "";
  try {
    await c?.logout(); // revokes the token on the server
  } catch {
    message = "Logged out on this device; the server could not be told (the token expires by itself).";
  } finally {
    ui.logout.disabled = false;
  }
  forgetSession(user);
  resetToLogin(message);
}

ui.loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void submitLogin(false);
});
ui.registerSubmit.addEventListener("click", () => void submitLogin(true));

async function submitLogin(register: boolean): Promise<void> {
  const user = ui.loginUser.value.trim().toLowerCase();
  const pass = ui.loginPass.value;
  ui.loginError.textContent = "";
  if (!NAME_RE.test(user)) {
    ui.loginError.textContent = `A user name is ${NAME_RULE}.`;
    ui.loginUser.focus();
    return;
  }
  if (pass.length < PASS_MIN) {
    ui.loginError.textContent = `A password has at least ${PASS_MIN} characters.`;
    ui.loginPass.focus();
    return;
  }
  setBusy(true, register ? "Creating…" : "Logging in…");
  try {
    const c = await clientP;
    if (register) await c.register(user, pass);
    await enter(user, { pass }, ui.loginRemember.checked);
  } catch (e) {
    ui.loginError.textContent = register && e instanceof ChatError && e.code === "conflict" ? "That user name is taken." : describe(e);
    setBusy(false);
  }
}

ui.logout.addEventListener("click", () => void logout());

// ---- messages ------------------------------------------------------------------------

function onEntry(e: ChatMessage): void {
  const m = model;
  if (!m) return;
  const r = m.apply(e);
  const c = r.conv;
  if (!c) return; // a kind this app does not know
  const from = r.message?.from;
  // Someone whose presence is not known (joining a group announces nothing): ask.
  if (from !== undefined && from !== m.me && (!m.online.has(from) || (c.kind === "group" && members?.group === c.name && !members.list.some((x) => x.user === from)))) {
    learnPresence();
  }
  if (r.message && r.message.reply !== undefined) needQuote(c, r.message.reply);
  if (c.key === m.current) {
    if (r.shown) renderSoon();
    if (r.message) renderTyping();
    readIfViewing(c);
  }
  listSoon();
  checkStale();
}

function onTyping(t: TypingEvent): void {
  const m = model;
  if (!m || t.from === m.me) return;
  const key = t.group !== undefined ? keyOf({ group: t.group }) : keyOf({ user: t.from });
  m.typing.seen(key, t.from, Date.now());
  renderTyping();
  listSoon();
}

let typingTimer: ReturnType<typeof setTimeout> | undefined;

/** "bob is typing…" under the open conversation; redrawn when the next indicator runs out. */
function renderTyping(): void {
  const m = model;
  if (!m) return;
  const text = m.current === undefined ? "" : typingLabel(m.typing.who(m.current, Date.now()));
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
  clearTimeout(typingTimer);
  const next = m.typing.nextExpiry();
  if (next !== undefined) {
    typingTimer = setTimeout(() => {
      renderTyping();
      renderList();
    }, Math.max(50, next - Date.now() + 20));
  }
}

// ---- read markers ------------------------------------------------------------------------

/** Reads to tell the server, per conversation: the largest mid (sent shortly, one per conversation; kept if it fails). */
const reads = new Map<ConvKey, { target: Target; mid: number }>();
let readTimer: ReturnType<typeof setTimeout> | undefined;

/** The open conversation of a visible page is read: its marker moves to the newest entry known, on every device. */
function readIfViewing(c: Conv): void {
  const m = model;
  if (!m || !m.reading(c)) return;
  const mid = m.markRead(c);
  if (mid === undefined) return;
  reads.set(c.key, { target: c.target, mid: Math.max(mid, reads.get(c.key)?.mid ?? 0) });
  readTimer ??= setTimeout(flushReads, 150);
  listSoon();
}

function flushReads(): void {
  clearTimeout(readTimer);
  readTimer = undefined;
  const c = client;
  const m = model;
  if (!c || !m || c.state !== "ready") return;
  for (const [key, r] of reads) {
    reads.delete(key);
    c.markRead(r.target, r.mid).then(
      (res) => {
        if (m !== model) return;
        m.convs.get(key)?.moveRead(res.read);
        checkStale();
      },
      () => {
        // Not sent (no connection): tried again when the client is ready.
        if (m === model && (reads.get(key)?.mid ?? 0) < r.mid) reads.set(key, r);
      },
    );
  }
}

// A burst of messages (a catch-up, a busy group) is drawn once, not once per message.
let renderTimer: ReturnType<typeof setTimeout> | undefined;
let listTimer: ReturnType<typeof setTimeout> | undefined;

function renderSoon(): void {
  renderTimer ??= setTimeout(() => {
    renderTimer = undefined;
    renderMessages("auto");
  }, 16);
}

function listSoon(): void {
  listTimer ??= setTimeout(() => {
    listTimer = undefined;
    renderList();
  }, 16);
}

let presenceTimer: ReturnType<typeof setTimeout> | undefined;

/** Asks for presence again soon, at most once a second. */
function learnPresence(): void {
  presenceTimer ??= setTimeout(() => {
    void refreshPresence().finally(() => setTimeout(() => (presenceTimer = undefined), 1000));
  }, 100);
}

function currentConv(): Conv | undefined {
  return model?.current === undefined ? undefined : model.convs.get(model.current);
}

function pendingOf(c: Conv): PendingSend[] {
  const stored = new Set(c.items.filter((m) => m.from === model?.me && m.cid).map((m) => m.cid));
  return [...pending.values()].filter((p) => p.key === c.key && !stored.has(p.cid));
}

/** Replied-to messages being fetched, by conversation and mid (each asked once). */
const quoting = new Set<string>();

/** The quote of a reply: the message as it is now, fetched (one `history` of one entry) when it is not loaded. */
function quoteOf(c: Conv, mid: number): Shown | "loading" | undefined {
  const q = c.find(mid);
  if (q) return q;
  needQuote(c, mid);
  return quoting.has(`${c.key} ${mid}`) ? "loading" : undefined;
}

function needQuote(c: Conv, mid: number): void {
  const k = `${c.key} ${mid}`;
  if (c.find(mid) || quoting.has(k) || !client) return;
  quoting.add(k);
  const m = model;
  client.history(c.target, { before: mid + 1, limit: 1 }).then(
    (p) => {
      const q = p.msgs[0];
      if (!m || m !== model || !q || q.mid !== mid || q.kind !== undefined) return;
      c.putQuoted(q, q.mid);
      if (c.key === m.current) renderSoon();
    },
    () => quoting.delete(k), // asked again at the next redraw
  );
}

/** Whether the user may delete `s`: their own, or any in a group they own (PROTOCOL.md §3.6). */
function canDelete(c: Conv, s: MessageLike): boolean {
  return s.from === model?.me || (c.kind === "group" && c.owner === model?.me);
}

function nodeFor(c: Conv, s: Shown, prev: MessageLike | undefined): HTMLLIElement {
  const me = model!.me;
  if (s.kind !== undefined) {
    const had = nodes.get(s.mid);
    if (had) return had.li;
    const li = systemView(s, me);
    nodes.set(s.mid, { li, sig: "" });
    return li;
  }
  const cont = continues(prev, s);
  const quote = s.reply === undefined ? undefined : quoteOf(c, s.reply);
  const quoteSig = quote === undefined ? "" : quote === "loading" ? "…" : `${quote.mid}:${quote.rev}`;
  const del = canDelete(c, s);
  const sig = `${s.rev}|${cont}|${quoteSig}|${del}`;
  const had = nodes.get(s.mid);
  if (had && had.sig === sig) return had.li;
  const li = messageView(s, String(s.mid), { me, prev, blobs, quote, canDelete: del });
  nodes.set(s.mid, { li, sig });
  return li;
}

/** Day dividers by day, reused like message elements. */
const dividers = new Map<string, HTMLLIElement>();
/** Elements of one's own unacknowledged sends, by cid and what their status says. */
const pendingNodes = new Map<string, { li: HTMLLIElement; state: string }>();

function dividerFor(ts: number): HTMLLIElement {
  const k = dayKey(ts);
  let li = dividers.get(k);
  if (!li) dividers.set(k, (li = dayDivider(ts)));
  return li;
}

/**
 * Makes `parent`'s children be `items`, in order, moving and adding only what differs:
 * elements already in place stay, so a live region announces only what is new.
 */
function reconcile(parent: HTMLElement, items: Node[]): void {
  let cur = parent.firstChild;
  for (const n of items) {
    if (n === cur) {
      cur = cur.nextSibling;
      continue;
    }
    parent.insertBefore(n, cur);
  }
  while (cur) {
    const next: ChildNode | null = cur.nextSibling;
    cur.remove();
    cur = next;
  }
}

/** Redraws the open conversation's messages. "auto" keeps the view at the bottom if it was there. */
function renderMessages(scroll: "auto" | "bottom" | "keep"): void {
  const c = currentConv();
  if (!c || !model) return;
  const box = ui.messages;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  const items: Node[] = [];
  let prev: MessageLike | undefined;
  let prevTs: number | undefined;
  for (const s of c.items) {
    if (prevTs === undefined || dayKey(prevTs) !== dayKey(s.ts)) items.push(dividerFor(s.ts));
    items.push(nodeFor(c, s, prev));
    prev = s.kind === undefined ? s : undefined; // a system line ends a run of one sender's messages
    prevTs = s.ts;
  }
  const shown = new Set<string>();
  for (const p of pendingOf(c)) {
    const u = p.upload;
    const file = u ? { name: u.name, type: u.type, size: u.size } : undefined;
    const m: MessageLike = { mid: 0, ts: p.ts, from: model.me, text: p.text, file, uploading: u && !p.file ? u.done : undefined, reply: p.reply, reactions: [] };
    if (prevTs === undefined || dayKey(prevTs) !== dayKey(m.ts)) items.push(dividerFor(m.ts));
    const waiting = client?.state !== "ready" ? "Waiting for the connection…" : u && !p.file ? "Uploading…" : "Sending…";
    const state = p.error ? `failed:${p.error}` : waiting;
    let had = pendingNodes.get(p.cid);
    if (!had || had.state !== state) {
      const status = p.error
        ? {
            text: `Not sent: ${p.error}`,
            failed: true,
            retry: () => transmit(p),
            dismiss: () => {
              pending.delete(p.cid);
              renderMessages("keep");
            },
          }
        : { text: waiting, failed: false };
      const quote = p.reply === undefined ? undefined : quoteOf(c, p.reply);
      had = { li: messageView(m, `c:${p.cid}`, { me: model.me, prev, blobs, status, quote }), state };
      pendingNodes.set(p.cid, had);
    }
    shown.add(p.cid);
    items.push(had.li);
    prev = m;
    prevTs = m.ts;
  }
  for (const cid of pendingNodes.keys()) if (!shown.has(cid) && !pending.has(cid)) pendingNodes.delete(cid);
  reconcile(ui.messageList, items);
  if (pickerFor !== undefined) showPicker();
  if (scroll === "bottom" || (scroll === "auto" && atBottom)) box.scrollTop = box.scrollHeight;
}

function renderPending(): void {
  const c = currentConv();
  if (c && pendingOf(c).length > 0) renderMessages("keep");
}

function renderList(): void {
  if (!model) return;
  const m = model;
  const now = Date.now();
  const item = (c: Conv) =>
    convItem(c, c.kind === "dm" ? m.online.get(c.name) : undefined, c.key === m.current, typingLabel(m.typing.who(c.key, now)), m.me, () => void openConv(c.key));
  // Keep the keyboard focus on the same conversation across the redraw.
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.key;
  ui.groupList.replaceChildren(...m.list("group").map(item));
  ui.dmList.replaceChildren(...m.list("dm").map(item));
  if (focused) ui.lists.querySelector<HTMLElement>(`.conv-item[data-key="${CSS.escape(focused)}"]`)?.focus();
  const n = m.totalUnread;
  document.title = n > 0 ? `(${n}) tcpchat` : "tcpchat";
}

/** Members of the open group (asked when it opens), for its header. */
let members: { group: string; list: { user: string; online: boolean }[] } | undefined;

function renderHeader(): void {
  const c = currentConv();
  if (!c || !model) return;
  if (c.kind === "group") {
    ui.convTitle.textContent = `# ${c.name}`;
    if (members?.group === c.name) {
      const online = members.list.filter((x) => model!.online.get(x.user) ?? x.online).length;
      ui.convSub.textContent = `${members.list.length} member${members.list.length === 1 ? "" : "s"}, ${online} online`;
    } else ui.convSub.textContent = "";
  } else {
    ui.convTitle.textContent = c.name;
    const on = model.online.get(c.name);
    ui.convSub.textContent = c.name === model.me ? "notes to yourself" : on === undefined ? "direct message" : on ? "online" : "offline";
  }
}

function showConv(c: Conv | undefined): void {
  const has = c !== undefined;
  ui.empty.hidden = has;
  ui.messages.hidden = !has;
  ui.composer.hidden = !has;
  ui.leave.hidden = !has || c.kind !== "group";
  ui.convError.textContent = "";
  setCompose(undefined);
  pickerFor = undefined;
  renderTyping();
  if (!has) {
    ui.convTitle.textContent = "tcpchat";
    ui.convSub.textContent = "";
    ui.chat.classList.remove("show-conv");
    return;
  }
  ui.chat.classList.add("show-conv");
  ui.text.placeholder = c.kind === "group" ? `Message #${c.name}` : `Message ${c.name}`;
  renderHeader();
}

async function openConv(key: ConvKey): Promise<void> {
  const m = model;
  const c = m?.convs.get(key);
  if (!m || !c) return;
  const switching = m.current !== key;
  m.current = key;
  if (switching) showConv(c);
  readIfViewing(c);
  renderList();
  renderMessages("bottom");
  if (!phone.matches || switching) ui.text.focus({ preventScroll: true });
  if (c.kind === "group" && switching) void loadMembers(c);
  if (!c.loaded) {
    try {
      const p = await client!.history(c.target, { limit: PAGE });
      c.page(p.msgs, p.more, false);
    } catch (e) {
      if (m.current === key) ui.convError.textContent = `Could not load the history: ${describe(e)}`;
      return;
    }
    if (m.current !== key) return;
    readIfViewing(c);
    renderMessages("bottom");
    renderList();
    await fillView(c);
  }
}

async function loadMembers(c: Conv): Promise<void> {
  try {
    const list = await client!.members(c.name);
    for (const x of list) model?.online.set(x.user, x.online);
    members = { group: c.name, list };
    renderHeader();
    renderList();
  } catch {
    // not a member any more, or no connection: the header stays short
  }
}

/** Asks who is online in the user's groups (after login and after each reconnect). */
async function refreshPresence(): Promise<void> {
  const m = model;
  const c = client;
  if (!m || !c) return;
  const groups = m.list("group").slice(0, PRESENCE_GROUPS);
  await Promise.all(
    groups.map(async (g) => {
      try {
        const list = await c.members(g.name);
        for (const x of list) m.online.set(x.user, x.online);
        if (members?.group === g.name) members = { group: g.name, list };
      } catch {
        // left meanwhile, or disconnected again: the next refresh asks again
      }
    }),
  );
  if (m === model) {
    renderList();
    renderHeader();
  }
}

/** Loads older pages while the view is not full (so scrolling up can start). */
async function fillView(c: Conv): Promise<void> {
  while (c.hasOlder && model?.current === c.key && ui.messages.scrollHeight <= ui.messages.clientHeight + 40) {
    if (!(await loadOlder(c))) return;
  }
}

/** One page of older messages before the oldest shown; false if none came. */
async function loadOlder(c: Conv): Promise<boolean> {
  if (loadingOlder || !c.hasOlder || !c.loaded || !client) return false;
  loadingOlder = true;
  ui.older.hidden = false;
  try {
    const first = c.items[0]?.mid;
    const before = first === undefined ? c.oldest : c.oldest === undefined ? first : Math.min(first, c.oldest);
    const p = await client.history(c.target, before === undefined ? { limit: PAGE } : { before, limit: PAGE });
    const box = ui.messages;
    const fromBottom = box.scrollHeight - box.scrollTop;
    const n = c.page(p.msgs, p.more, true);
    if (model?.current === c.key) {
      ui.older.hidden = true;
      renderMessages("keep");
      box.scrollTop = box.scrollHeight - fromBottom; // the same messages stay in view
    }
    return n > 0 || p.msgs.length > 0; // a page of edits or reactions only is progress too
  } catch {
    return false;
  } finally {
    loadingOlder = false;
    ui.older.hidden = true;
  }
}

ui.messages.addEventListener("scroll", () => {
  const c = currentConv();
  if (c && ui.messages.scrollTop < 150) void loadOlder(c);
});

/** Opens a conversation at message `mid` (loading older pages until it is there) and points it out. */
async function jumpTo(key: ConvKey, mid: number): Promise<void> {
  const m = model;
  const c = m?.convs.get(key);
  if (!m || !c) return;
  await openConv(key);
  for (let i = 0; i < 100 && m.current === key && !c.items.some((s) => s.mid === mid) && c.hasOlder; i++) {
    if (!(await loadOlder(c))) await sleep(100);
  }
  if (m.current !== key) return;
  const li = ui.messageList.querySelector<HTMLElement>(`li[data-mid="${mid}"]`);
  if (!li) {
    ui.convError.textContent = "That message is not there any more.";
    return;
  }
  li.scrollIntoView({ block: "center" });
  li.classList.add("flash");
  setTimeout(() => li.classList.remove("flash"), 2000);
}

// ---- what one does with a message: reply, react, edit, delete -----------------------------

/** Applies one's own change from its reply (the client reports it so, not as an event). */
function applyOwn(c: Conv, e: Omit<ChatMessage, "from" | "group" | "user">): void {
  const m = model;
  if (!m) return;
  m.apply({ ...e, from: m.me, ...c.target } as ChatMessage);
  if (m.current === c.key) renderMessages("auto");
  listSoon();
  checkStale();
}

function actionFailed(e: unknown): void {
  ui.convError.textContent = e instanceof ChatError && e.code === "not_found" ? "That message is not there any more." : describe(e);
}

ui.messageList.addEventListener("click", (ev) => {
  const btn = (ev.target as Element | null)?.closest<HTMLElement>("[data-action]");
  const li = btn?.closest<HTMLElement>("li[data-mid]");
  const c = currentConv();
  const c0 = client;
  const me = model?.me;
  if (!btn || !li || !c || !c0 || me === undefined) return;
  const mid = Number(li.dataset.mid);
  const s = c.find(mid);
  ui.convError.textContent = "";
  switch (btn.dataset.action) {
    case "reply":
      setCompose({ mode: "reply", key: c.key, mid });
      ui.text.focus();
      return;
    case "edit":
      if (!s || s.text === undefined) return;
      setCompose({ mode: "edit", key: c.key, mid });
      ui.text.value = s.text;
      grow();
      ui.text.focus();
      return;
    case "delete":
      // Twice: the first click asks.
      if (btn.dataset.armed !== "1") {
        btn.dataset.armed = "1";
        btn.textContent = "Delete?";
        btn.setAttribute("aria-label", "Click again to delete this message");
        setTimeout(() => {
          delete btn.dataset.armed;
          btn.textContent = "Delete";
          btn.removeAttribute("aria-label");
        }, 4000);
        return;
      }
      c0.delete(c.target, mid).then((r) => applyOwn(c, { mid: r.mid, ts: r.ts, kind: "delete", ref: mid }), actionFailed);
      return;
    case "react":
      pickerFor = pickerFor === mid ? undefined : mid;
      showPicker();
      li.querySelector<HTMLElement>(".picker button")?.focus();
      return;
    case "pick":
    case "toggle": {
      const emoji = btn.dataset.emoji;
      if (!emoji || !s) return;
      pickerFor = undefined;
      showPicker();
      const had = s.reactions.some((r) => r.emoji === emoji && r.users.includes(me));
      c0.react(c.target, mid, emoji, { remove: had }).then((r) => applyOwn(c, { mid: r.mid, ts: r.ts, kind: had ? "unreact" : "react", ref: mid, emoji }), actionFailed);
      return;
    }
  }
});

// Quotes are outside li[data-mid] handling above only for pending sends; a quote jumps to what it answers.
ui.messageList.addEventListener("click", (ev) => {
  const q = (ev.target as Element | null)?.closest<HTMLElement>("[data-action=jump]");
  const c = currentConv();
  if (!q || !c) return;
  void jumpTo(c.key, Number(q.dataset.ref));
});

/** The message whose reaction picker is open: it stays open when the message is redrawn (a reaction came). */
let pickerFor: number | undefined;

/** Puts the picker under message `pickerFor` (and nowhere else). */
function showPicker(): void {
  for (const p of ui.messageList.querySelectorAll<HTMLElement>(".picker")) {
    if (p.closest<HTMLElement>("li[data-mid]")?.dataset.mid !== String(pickerFor)) p.remove();
  }
  for (const b of ui.messageList.querySelectorAll<HTMLElement>('[data-action="react"]')) {
    b.setAttribute("aria-expanded", String(b.closest<HTMLElement>("li[data-mid]")?.dataset.mid === String(pickerFor)));
  }
  if (pickerFor === undefined) return;
  const li = ui.messageList.querySelector<HTMLElement>(`li[data-mid="${pickerFor}"]`);
  const actions = li?.querySelector(".msg-actions");
  if (!li || !actions) pickerFor = undefined;
  else if (!li.querySelector(".picker")) actions.after(reactionPicker());
}

/** The bar over the composer: what it is doing besides a new message. */
function setCompose(next: typeof compose): void {
  const was = compose;
  compose = next;
  const c = currentConv();
  const s = next && c ? c.find(next.mid) : undefined;
  if (!next || !s) {
    compose = undefined;
    ui.composeBar.hidden = true;
    ui.composeWhat.textContent = "";
    if (was?.mode === "edit") {
      ui.text.value = "";
      grow();
    }
    return;
  }
  const who = s.from === model?.me ? "yourself" : s.from;
  ui.composeWhat.textContent =
    next.mode === "edit" ? "Editing your message" : `Replying to ${who}: ${s.text !== undefined ? cut(s.text.replace(/\s+/g, " "), 80) : s.file ? s.file.name : ""}`;
  ui.composeBar.hidden = false;
}

ui.composeCancel.addEventListener("click", () => {
  setCompose(undefined);
  ui.text.focus();
});

// ---- sending ------------------------------------------------------------------------


function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

function send(input: { text?: string; upload?: PendingSend["upload"]; reply?: number }): void {
  const c = currentConv();
  if (!c || !model) return;
  const p: PendingSend = { cid: newCid(), key: c.key, target: c.target, ts: Date.now(), ...input };
  pending.set(p.cid, p);
  typingOut.reset(c.key);
  readIfViewing(c);
  renderMessages("bottom");
  renderList();
  transmit(p);
}

/** Uploads a pending send's file (resumed where the server is, after a failure), then sends it. */
function upload(p: PendingSend): void {
  const c = client;
  const u = p.upload;
  if (!c || !u || u.running) return;
  u.running = true;
  p.error = undefined;
  renderPending();
  c.uploadFile(u.blob, {
    onProgress: (x) => {
      u.done = x.phase === "uploading" && x.total > 0 ? x.bytes / x.total : 0;
      showUpload(p);
    },
  }).then(
    (r) => {
      u.running = false;
      if (c !== client || !pending.has(p.cid)) return;
      p.file = { upload: r.upload, name: u.name, type: u.type, size: r.size, sha256: r.sha256 };
      transmit(p);
    },
    (e) => {
      u.running = false;
      if (c !== client || !pending.has(p.cid)) return;
      p.error = describe(e);
      renderMessages("keep");
    },
  );
}

/** Moves a pending upload's progress bar (without drawing the conversation again). */
function showUpload(p: PendingSend): void {
  const li = pendingNodes.get(p.cid)?.li;
  const u = p.upload;
  if (!li || !u) return;
  const bar = li.querySelector<HTMLProgressElement>("progress.upload-progress");
  if (bar) bar.value = u.done;
  const size = li.querySelector<HTMLElement>(".file .size");
  if (size) size.textContent = `${sizeLabel(u.size)} · ${Math.floor(u.done * 100)}%`;
}

function transmit(p: PendingSend): void {
  const c = client;
  if (!c) return;
  if (p.upload && !p.file) {
    upload(p);
    return;
  }
  p.error = undefined;
  renderPending();
  c.send({ ...p.target, text: p.text, file: p.file, reply: p.reply, cid: p.cid } as Parameters<ChatClient["send"]>[0]).then(
    (m) => {
      if (c !== client || !model) return;
      pending.delete(p.cid);
      // One's own file: its bytes are here, no need to download them for the preview.
      if (p.upload) blobs.seed(m.mid, p.upload.blob);
      const { conv } = model.apply(m);
      if (conv?.key === model.current) renderMessages("auto");
      renderList();
    },
    (e) => {
      if (c !== client || !pending.has(p.cid)) return;
      p.error = describe(e);
      renderMessages("keep");
    },
  );
}

ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  submitText();
});

function submitText(): void {
  const text = ui.text.value;
  if (text.trim() === "") return;
  const max = limits?.max_text || 65536;
  if (utf8Length(text) > max) {
    ui.convError.textContent = `The message is too long: the server takes up to ${sizeLabel(max)} of text.`;
    return;
  }
  ui.convError.textContent = "";
  const c = currentConv();
  const mode = compose && c && compose.key === c.key ? compose : undefined;
  if (mode?.mode === "edit") {
    const s = c!.find(mode.mid);
    setCompose(undefined);
    if (s && s.text !== text) {
      client?.edit(c!.target, mode.mid, text).then((r) => applyOwn(c!, { mid: r.mid, ts: r.ts, kind: "edit", ref: mode.mid, text }), actionFailed);
    }
  } else {
    send({ text, reply: mode?.mid });
    setCompose(undefined);
  }
  ui.text.value = "";
  grow();
}

ui.text.addEventListener("keydown", (e) => {
  // Enter sends; Shift+Enter (and Enter while composing with an input method) is a new line.
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submitText();
  } else if (e.key === "Escape" && compose) {
    setCompose(undefined);
  } else if (e.key === "Escape" && phone.matches) {
    goBack();
  }
});

/** The text box grows with its text, up to a limit set in the style sheet. */
function grow(): void {
  ui.text.style.height = "auto";
  ui.text.style.height = `${ui.text.scrollHeight + 2}px`;
}
ui.text.addEventListener("input", () => {
  grow();
  // Typing (not editing) tells the others, at once and then every few seconds (PROTOCOL.md §3.6).
  const c = currentConv();
  if (!c || !client || client.state !== "ready" || compose?.mode === "edit" || ui.text.value.trim() === "") return;
  if (c.kind === "dm" && c.name === model?.me) return; // notes to self: nobody to tell
  if (typingOut.due(c.key, Date.now())) client.typing(c.target).catch(() => {});
});

function fileName(name: string): string {
  const n = name || "file";
  if (utf8Length(n) <= 255) return n;
  const dot = n.lastIndexOf(".");
  const ext = dot > 0 && n.length - dot <= 16 ? n.slice(dot) : "";
  let base = n.slice(0, n.length - ext.length);
  while (utf8Length(base + ext) > 255) base = base.slice(0, -1);
  return base + ext;
}

/** Each file is uploaded in chunks, its progress shown in the conversation, then sent (PROTOCOL.md §3.9). */
async function sendFiles(files: Iterable<File>): Promise<void> {
  const max = limits?.max_file;
  ui.convError.textContent = "";
  for (const f of files) {
    if (max && f.size > max) {
      ui.convError.textContent = `"${f.name}" is ${sizeLabel(f.size)}: the server takes files up to ${sizeLabel(max)}.`;
      continue;
    }
    const type = utf8Length(f.type) <= 127 ? f.type : "";
    send({ upload: { blob: f, name: fileName(f.name), type, size: f.size, done: 0, running: false } });
  }
}

ui.fileInput.addEventListener("change", () => {
  const files = [...(ui.fileInput.files ?? [])];
  ui.fileInput.value = "";
  void sendFiles(files);
});

ui.text.addEventListener("paste", (e) => {
  const files = [...(e.clipboardData?.files ?? [])];
  if (files.length > 0) {
    e.preventDefault();
    void sendFiles(files);
  }
});

// Drag and drop onto the conversation; anywhere else a dropped file is ignored (not opened).
let dragDepth = 0;
const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes("Files");
ui.conversation.addEventListener("dragenter", (e) => {
  if (!hasFiles(e) || !currentConv()) return;
  e.preventDefault();
  dragDepth++;
  ui.drop.hidden = false;
});
ui.conversation.addEventListener("dragover", (e) => {
  if (!hasFiles(e) || !currentConv()) return;
  e.preventDefault();
  if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
});
ui.conversation.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) ui.drop.hidden = true;
});
ui.conversation.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  ui.drop.hidden = true;
  if (currentConv()) void sendFiles([...(e.dataTransfer?.files ?? [])]);
});
addEventListener("dragover", (e) => e.preventDefault());
addEventListener("drop", (e) => e.preventDefault());

// ---- groups and direct conversations ----------------------------------------------------------

function sideError(text: string): void {
  ui.sideError.textContent = text;
}

ui.joinForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void (async () => {
    const name = ui.joinGroup.value.trim().replace(/^#/, "").toLowerCase();
    sideError("");
    if (!NAME_RE.test(name)) return sideError(`A group name is ${NAME_RULE}.`);
    // Joining never creates (PROTOCOL.md §3.3): Create is its own button.
    const create = (e as SubmitEvent).submitter?.getAttribute("value") === "create";
    try {
      let owner: string;
      if (create) {
        await client!.createGroup(name);
        owner = client!.user ?? "";
      } else owner = (await client!.join(name)).owner;
      if (!model) return;
      model.conv({ group: name }).owner = owner;
      ui.joinGroup.value = "";
      await openConv(`g:${name}`);
    } catch (err) {
      if (!create && err instanceof ChatError && err.code === "not_found") sideError(`There is no group #${name} you can join. Create it?`);
      else sideError(describe(err));
    }
  })();
});

ui.dmForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void (async () => {
    const name = ui.dmUser.value.trim().replace(/^@/, "").toLowerCase();
    sideError("");
    if (!NAME_RE.test(name)) return sideError(`A user name is ${NAME_RULE}.`);
    try {
      // The newest page at once: it also tells whether the user exists.
      const p = await client!.history({ user: name }, { limit: PAGE });
      if (!model) return;
      const c = model.conv({ user: name });
      c.page(p.msgs, p.more, false);
      ui.dmUser.value = "";
      await openConv(c.key);
    } catch (err) {
      sideError(err instanceof ChatError && err.code === "not_found" ? `There is no user "${name}".` : describe(err));
    }
  })();
});

ui.leave.addEventListener("click", () => {
  const c = currentConv();
  if (!c || c.kind !== "group" || !model) return;
  void (async () => {
    try {
      await client!.leave(c.name);
    } catch (err) {
      if (!(err instanceof ChatError && err.code === "not_found")) {
        ui.convError.textContent = describe(err);
        return;
      }
    }
    model?.remove(c.key);
    showConv(undefined);
    renderList();
  })();
});

function goBack(): void {
  if (model) model.current = undefined;
  showConv(undefined);
  renderList();
  ui.groupList.querySelector<HTMLElement>(".conv-item")?.focus();
}
ui.back.addEventListener("click", goBack);

document.addEventListener("visibilitychange", () => {
  if (!model) return;
  model.visible = !document.hidden;
  const c = currentConv();
  if (c) readIfViewing(c);
  renderList();
});

// ---- search ---------------------------------------------------------------------------------

/** The search on screen: its query, and where the next page starts (the last mid shown). */
let searching: { q: string; before?: number; seq: number } | undefined;
let searchSeq = 0;

ui.searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const q = ui.searchQ.value.trim();
  if (q === "") return closeSearch();
  if (utf8Length(q) > 256) return sideError("A search is at most 256 bytes of text.");
  searching = { q, seq: ++searchSeq };
  ui.searchResults.replaceChildren();
  ui.searchPanel.hidden = false;
  ui.lists.hidden = true;
  void searchPage();
});

/** The next page of results (newest first, PROTOCOL.md §3.7), added below those shown. */
async function searchPage(): Promise<void> {
  const s = searching;
  const c = client;
  const m = model;
  if (!s || !c || !m) return;
  ui.searchMore.hidden = true;
  ui.searchStatus.textContent = "Searching…";
  try {
    const p = await c.search(s.q, s.before === undefined ? { limit: SEARCH_PAGE } : { before: s.before, limit: SEARCH_PAGE });
    if (searching?.seq !== s.seq || m !== model) return;
    for (const hit of p.msgs) {
      const t = targetOfMessage(hit, m.me);
      const where = t.group !== undefined ? `#${t.group}` : t.user === m.me ? "Notes to yourself" : t.user;
      ui.searchResults.append(searchHit(hit, where, keyOf(t), m.me));
    }
    const last = p.msgs.at(-1);
    if (last) s.before = last.mid;
    const n = ui.searchResults.childElementCount;
    ui.searchStatus.textContent = n === 0 ? `Nothing found for “${s.q}”.` : `${n}${p.more ? "+" : ""} message${n === 1 ? "" : "s"} with “${s.q}”, newest first.`;
    ui.searchMore.hidden = !p.more;
  } catch (e) {
    if (searching?.seq === s.seq) ui.searchStatus.textContent = `Could not search: ${describe(e)}`;
  }
}

ui.searchMore.addEventListener("click", () => void searchPage());

ui.searchResults.addEventListener("click", (e) => {
  const b = (e.target as Element | null)?.closest<HTMLElement>(".search-hit");
  const m = model;
  const key = b?.dataset.key;
  if (!b || !m || !key) return;
  const t = key.startsWith("g:") ? { group: key.slice(2) } : { user: key.slice(2) };
  m.conv(t); // a direct conversation not in the list yet
  renderList();
  void jumpTo(key, Number(b.dataset.mid));
});

function closeSearch(): void {
  searching = undefined;
  ui.searchPanel.hidden = true;
  ui.lists.hidden = false;
  ui.searchResults.replaceChildren();
  ui.searchStatus.textContent = "";
}

ui.searchClose.addEventListener("click", () => {
  closeSearch();
  ui.searchQ.value = "";
});

// ---- start -----------------------------------------------------------------------------------

async function start(): Promise<void> {
  banner("Connecting…");
  clientP = connect();
  const saved = loadSession();
  if (!saved) {
    showLogin();
    return;
  }
  ui.loginUser.value = saved.user;
  ui.loginRemember.checked = saved.remember;
  try {
    await enter(saved.user, { token: saved.token }, saved.remember);
  } catch (e) {
    if (e instanceof ChatError && e.code === "unauthorized") {
      forgetSession(saved.user);
      showLogin("Your session has ended. Please log in again.");
    } else showLogin(describe(e));
  }
}

void start();
