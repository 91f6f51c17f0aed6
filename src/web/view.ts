// DOM building for the web app. Every string from the network goes into the page
// as text (text nodes, textContent, attribute values), never as markup: there is no
// innerHTML here or anywhere in the app.
import type { ChatMessage, MessageFile } from "../client/browser.ts";
import { cut, dayKey, dayLabel, fullTimeOf, isPreviewable, sizeLabel, timeOf } from "./format.ts";
import type { Conv } from "./model.ts";

type Child = Node | string | null | undefined | false;

/** An element with attributes (strings; `true` for a bare attribute) and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

/** One of eight colours, the same for a name everywhere. */
export function colourClass(name: string): string {
  let x = 0;
  for (let i = 0; i < name.length; i++) x = (x * 31 + name.charCodeAt(i)) >>> 0;
  return `c${x % 8}`;
}

export function avatar(name: string, group = false): HTMLSpanElement {
  return h("span", { class: `avatar ${colourClass(name)}${group ? " group" : ""}`, "aria-hidden": "true" }, group ? "#" : name.slice(0, 1));
}

/** Downloads a message's file into a Blob (ChatClient.downloadBlob: in chunks, checked by SHA-256). */
export type FileLoader = (mid: number, file: MessageFile, onProgress: (bytes: number, total: number) => void) => Promise<Blob>;

/** Images larger than this are not downloaded to be previewed: they get a download link only. */
export const PREVIEW_MAX = 16 * 1024 * 1024;

/**
 * Files downloaded on demand (PROTOCOL.md §3.9: a message carries only its file's name, type,
 * size and SHA-256) and their Blob URLs: each file is downloaded once per message and kept
 * while the page lives (or until `revokeAll`, at logout). Images get their declared type
 * (shown by <img>, which runs no script even for a crafted file); downloads are
 * application/octet-stream, so a link never renders a file as a page of this origin.
 */
export class BlobUrls {
  /** How files are fetched: set by the app once logged in. */
  loader: FileLoader | undefined;
  private readonly blobs = new Map<number, Promise<Blob>>();
  private readonly urls = new Map<string, string>();
  private readonly watchers = new Map<number, Set<(bytes: number, total: number) => void>>();
  /** Bumped by revokeAll: a download that ends after it makes no URL. */
  private gen = 0;

  /** The URL of message `mid`'s file if it is here already. */
  ready(mid: number, preview: boolean): string | undefined {
    return this.urls.get(`${preview ? "i" : "d"}:${mid}`);
  }

  /** The bytes of message `mid`'s file are known already (one's own upload): no download needed. */
  seed(mid: number, blob: Blob): void {
    if (!this.blobs.has(mid)) this.blobs.set(mid, Promise.resolve(blob));
  }

  /** The URL of message `mid`'s file, downloaded first if need be; `onProgress` follows that download. */
  async url(mid: number, file: MessageFile, preview: boolean, onProgress?: (bytes: number, total: number) => void): Promise<string> {
    const k = `${preview ? "i" : "d"}:${mid}`;
    const had = this.urls.get(k);
    if (had) return had;
    const gen = this.gen;
    const blob = await this.blob(mid, file, onProgress);
    if (gen !== this.gen) throw new Error("logged out");
    let u = this.urls.get(k);
    if (!u) {
      u = URL.createObjectURL(new Blob([blob], { type: preview ? file.type : "application/octet-stream" }));
      this.urls.set(k, u);
    }
    return u;
  }

  private blob(mid: number, file: MessageFile, onProgress?: (bytes: number, total: number) => void): Promise<Blob> {
    let watchers = this.watchers.get(mid);
    if (onProgress) {
      if (!watchers) this.watchers.set(mid, (watchers = new Set()));
      watchers.add(onProgress);
    }
    let p = this.blobs.get(mid);
    if (!p) {
      const loader = this.loader;
      if (!loader) return Promise.reject(new Error("not connected"));
      p = loader(mid, file, (b, t) => {
        for (const w of this.watchers.get(mid) ?? []) w(b, t);
      }).finally(() => this.watchers.delete(mid));
      // A failed download is tried again next time.
      p.catch(() => {
        if (this.blobs.get(mid) === p) this.blobs.delete(mid);
      });
      this.blobs.set(mid, p);
    }
    return p;
  }

  revokeAll(): void {
    for (const u of this.urls.values()) URL.revokeObjectURL(u);
    this.urls.clear();
    this.blobs.clear();
    this.watchers.clear();
    this.gen++;
  }
}

const SVG = "http://www.w3.org/2000/svg";

/** A download arrow (an SVG, not a glyph: no font needed). */
function downloadIcon(): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M12 4v11m-5-5 5 5 5-5M5 20h14");
  svg.append(path);
  return svg;
}

/** "45%" of a transfer. */
function percent(bytes: number, total: number): string {
  return `${total > 0 ? Math.floor((bytes / total) * 100) : 0}%`;
}

/**
 * A message's file: an image (png, jpeg, gif, webp) is previewed, downloaded as the message is
 * shown; any file has a link that downloads it when clicked (then saves it: <a download>).
 * One's own file being uploaded (`mid` 0) shows its progress bar instead.
 */
function fileView(mid: number, file: ViewFile, blobs: BlobUrls, uploading?: number): HTMLElement {
  const name = file.name || "file";
  const size = h("span", { class: "size" }, sizeLabel(file.size));
  if (mid === 0 || file.sha256 === undefined) {
    const bar = h("progress", { class: "upload-progress", max: "1", "aria-label": `Uploading ${name}` });
    bar.value = uploading ?? 0;
    if (uploading !== undefined) size.textContent = `${sizeLabel(file.size)} · ${percent(uploading, 1)}`;
    return h("div", { class: "file uploading" }, h("span", { class: "download" }, h("span", { class: "name" }, name), size), uploading !== undefined ? bar : null);
  }
  const stored: MessageFile = { name: file.name, type: file.type, size: file.size, sha256: file.sha256 };
  const link = h("a", { href: blobs.ready(mid, false) ?? "#", download: name, title: `Download ${name}` }, downloadIcon(), h("span", { class: "name" }, name));
  link.addEventListener("click", (ev) => {
    if (link.getAttribute("href") !== "#") return; // downloaded already: the browser saves it
    ev.preventDefault();
    if (link.dataset.loading) return;
    link.dataset.loading = "1";
    blobs
      .url(mid, stored, false, (b, t) => (size.textContent = `${sizeLabel(file.size)} · ${percent(b, t)}`))
      .then(
        (u) => {
          size.textContent = sizeLabel(file.size);
          link.href = u;
          link.click(); // now with its href: saved as `name`
        },
        (e: unknown) => {
          size.textContent = `${sizeLabel(file.size)} · could not download: ${e instanceof Error ? e.message : String(e)}`;
        },
      )
      .finally(() => delete link.dataset.loading);
  });
  const download = h("span", { class: "download" }, link, size);
  if (!isPreviewable(file.type) || file.size > PREVIEW_MAX) return h("div", { class: "file" }, download);
  const img = h("img", { alt: name, decoding: "async" });
  const shown = blobs.ready(mid, true);
  if (shown) img.src = shown;
  else {
    size.textContent = `${sizeLabel(file.size)} · loading`;
    blobs.url(mid, stored, true, (b, t) => (size.textContent = `${sizeLabel(file.size)} · loading ${percent(b, t)}`)).then(
      (u) => {
        img.src = u;
        size.textContent = sizeLabel(file.size);
      },
      (e: unknown) => (size.textContent = `${sizeLabel(file.size)} · could not load the picture: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
  return h("figure", { class: "file" }, img, h("figcaption", {}, download));
}

/** A file as a message view shows it: a stored message's (with its SHA-256), or one's own being uploaded (without). */
export interface ViewFile {
  name: string;
  type: string;
  size: number;
  sha256?: string;
}

/** What a message view shows: a Shown (model.ts), or one's own send not stored yet. */
export interface MessageLike {
  mid: number;
  ts: number;
  from: string;
  text?: string;
  file?: ViewFile;
  /** One's own file being uploaded: how far, 0 to 1. */
  uploading?: number;
  reply?: number;
  edited?: number;
  deleted?: number;
  reactions: { emoji: string; users: string[] }[];
}

/** The message a reply quotes: found (as it is now), or still being fetched. */
export type Quote = { from: string; text?: string; file?: { name: string }; deleted?: number } | "loading";

export interface MessageViewOptions {
  me: string;
  /** The previous message shown, to fold consecutive messages of one sender together. */
  prev?: MessageLike;
  blobs: BlobUrls;
  /** `sending`, or why it failed; for one's own sends not acknowledged yet. */
  status?: { text: string; failed: boolean; retry?: () => void; dismiss?: () => void };
  quote?: Quote;
  /** The user may delete it (their own, or any in a group they own). */
  canDelete?: boolean;
}

/** Consecutive messages of one sender within 5 minutes on one day are folded together. */
export function continues(prev: MessageLike | undefined, m: MessageLike): boolean {
  return prev !== undefined && prev.from === m.from && m.ts - prev.ts < 5 * 60_000 && dayKey(prev.ts) === dayKey(m.ts);
}

/** "bob: the text", cut short, for a quote or a search hit. */
function quoteText(q: Exclude<Quote, "loading">): string {
  if (q.deleted !== undefined) return "deleted message";
  if (q.text !== undefined && q.text !== "") return cut(q.text.replace(/\s+/g, " "), 120);
  return q.file ? `📎 ${q.file.name}` : "";
}

function quoteView(reply: number, q: Quote | undefined, me: string): HTMLElement {
  const who = q === undefined || q === "loading" ? "" : q.from === me ? "You" : q.from;
  const what = q === undefined ? "an earlier message" : q === "loading" ? "…" : quoteText(q);
  return h(
    "button",
    { type: "button", class: "quote", "data-action": "jump", "data-ref": String(reply), "aria-label": `Reply to ${who || "a message"}: ${what}. Show it` },
    who ? h("strong", {}, who) : null,
    h("span", {}, what),
  );
}

/** The emoji offered by the reaction picker. */
export const QUICK_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/**
 * One message as a list item. `key` is its mid, or `c:<cid>` while it is being sent. Buttons
 * carry `data-action` (reply, react, edit, delete, toggle, pick, jump): the app listens once,
 * on the list.
 */
export function messageView(m: MessageLike, key: string, o: MessageViewOptions): HTMLLIElement {
  const mine = m.from === o.me;
  const cont = continues(o.prev, m);
  const gone = m.deleted !== undefined;
  const cls = ["msg", mine ? "mine" : "", cont ? "cont" : "", gone ? "deleted" : "", o.status ? (o.status.failed ? "failed" : "pending") : ""]
    .filter(Boolean)
    .join(" ");
  const time = h("time", { class: "msg-time", datetime: new Date(m.ts).toISOString(), title: fullTimeOf(m.ts) }, timeOf(m.ts));
  const bubble = h("div", { class: "bubble" });
  if (m.reply !== undefined) bubble.append(quoteView(m.reply, o.quote, o.me));
  if (gone) bubble.append(h("div", { class: "msg-text gone" }, "This message was deleted"));
  else {
    if (m.file) bubble.append(fileView(o.status ? 0 : m.mid, m.file, o.blobs, m.uploading));
    if (m.text !== undefined && m.text !== "") bubble.append(h("div", { class: "msg-text" }, m.text));
  }
  if (m.edited !== undefined && !gone) bubble.append(h("span", { class: "edited", title: `Edited ${fullTimeOf(m.edited)}` }, "edited"));
  bubble.append(time);
  const li = h(
    "li",
    { class: cls, "data-key": key, "data-mid": o.status ? undefined : String(m.mid) },
    h("div", { class: "msg-meta" }, h("span", { class: "msg-from" }, mine ? "You" : m.from)),
    bubble,
  );
  if (!o.status && !gone) {
    const reactions = m.reactions.filter((r) => r.users.length > 0);
    if (reactions.length > 0) {
      const row = h("div", { class: "reactions" });
      for (const r of reactions) {
        const on = r.users.includes(o.me);
        const names = r.users.map((u) => (u === o.me ? "you" : u)).join(", ");
        row.append(
          h(
            "button",
            {
              type: "button",
              class: `chip${on ? " on" : ""}`,
              "data-action": "toggle",
              "data-emoji": r.emoji,
              "aria-pressed": on ? "true" : "false",
              "aria-label": `${r.emoji} ${r.users.length}: ${names}`,
              title: names,
            },
            h("span", { class: "emoji" }, r.emoji),
            h("span", { class: "count" }, String(r.users.length)),
          ),
        );
      }
      li.append(row);
    }
    const actions = h(
      "div",
      { class: "msg-actions" },
      h("button", { type: "button", class: "ghost", "data-action": "reply" }, "Reply"),
      h("button", { type: "button", class: "ghost", "data-action": "react", "aria-label": "Add a reaction", "aria-expanded": "false" }, "React"),
      mine && m.text !== undefined ? h("button", { type: "button", class: "ghost", "data-action": "edit" }, "Edit") : null,
      o.canDelete ? h("button", { type: "button", class: "ghost danger", "data-action": "delete" }, "Delete") : null,
    );
    li.append(actions);
  }
  if (o.status) {
    const st = h("div", { class: "msg-status", role: o.status.failed ? "alert" : undefined }, o.status.text);
    if (o.status.retry) {
      const b = h("button", { type: "button", class: "secondary" }, "Retry");
      b.addEventListener("click", o.status.retry);
      st.append(b);
    }
    if (o.status.dismiss) {
      const b = h("button", { type: "button", class: "ghost" }, "Dismiss");
      b.addEventListener("click", o.status.dismiss);
      st.append(b);
    }
    li.append(st);
  }
  return li;
}

/** The row of emoji to react with, under a message. */
export function reactionPicker(): HTMLDivElement {
  return h(
    "div",
    { class: "picker", role: "group", "aria-label": "Reactions" },
    ...QUICK_EMOJI.map((e) => h("button", { type: "button", class: "ghost", "data-action": "pick", "data-emoji": e, "aria-label": `React with ${e}` }, e)),
  );
}

/** A line about the conversation itself: "alice joined", "bob left", "alice kicked bob" (PROTOCOL.md §3.3). */
export function systemView(
  s: { mid: number; ts: number; from: string; kind?: string; target?: string; role?: string; until?: number; settings?: { public?: boolean; topic?: string } },
  me: string,
): HTMLLIElement {
  return h("li", { class: "system", "data-mid": String(s.mid) }, systemText(s, me), " · ", h("time", { datetime: new Date(s.ts).toISOString(), title: fullTimeOf(s.ts) }, timeOf(s.ts)));
}

/** What a change to a group says, in words. */
export function systemText(
  s: { from: string; kind?: string; target?: string; role?: string; until?: number; settings?: { public?: boolean; topic?: string } },
  me: string,
): string {
  const name = (u: string) => (u === me ? "You" : u);
  const obj = (u: string) => (u === me ? "you" : u);
  const by = name(s.from);
  const t = s.target ?? s.from;
  switch (s.kind) {
    case "create":
      return `${by} created the group`;
    case "join":
      return t === s.from ? `${name(t)} joined` : `${by} added ${obj(t)}`;
    case "leave":
      return `${name(t)} left`;
    case "invite":
      return `${by} invited ${obj(t)}`;
    case "kick":
      return `${by} removed ${obj(t)}`;
    case "ban":
      return `${by} banned ${obj(t)}`;
    case "unban":
      return `${by} lifted the ban on ${obj(t)}`;
    case "mute":
      return `${by} muted ${obj(t)}${s.until !== undefined ? ` until ${fullTimeOf(s.until)}` : ""}`;
    case "unmute":
      return `${by} unmuted ${obj(t)}`;
    case "role":
      return s.role === "admin" ? `${by} made ${obj(t)} an admin` : `${by} made ${obj(t)} a member again`;
    case "owner":
      return `${by} handed the group on to ${obj(t)}`;
    case "settings": {
      const st = s.settings ?? {};
      const parts: string[] = [];
      if (st.topic !== undefined) parts.push(st.topic === "" ? "cleared the topic" : `set the topic: ${st.topic}`);
      if (st.public !== undefined) parts.push(st.public ? "made the group public" : "made the group private");
      return `${by} ${parts.length > 0 ? parts.join(", ") : "changed the description"}`;
    }
    default:
      return `${by} changed the group`;
  }
}

/** One search result: where, who, when and the text; the app opens the conversation at it. */
export function searchHit(m: { mid: number; ts: number; from: string; text?: string }, where: string, key: string, me: string): HTMLLIElement {
  return h(
    "li",
    {},
    h(
      "button",
      { type: "button", class: "search-hit", "data-key": key, "data-mid": String(m.mid) },
      h("span", { class: "hit-head" }, h("strong", {}, where), h("span", {}, ` · ${m.from === me ? "you" : m.from} · `), h("time", { datetime: new Date(m.ts).toISOString() }, `${dayLabel(m.ts)} ${timeOf(m.ts)}`)),
      h("span", { class: "hit-text" }, cut(m.text ?? "", 200)),
    ),
  );
}

export function dayDivider(ts: number): HTMLLIElement {
  return h("li", { class: "day", role: "separator" }, dayLabel(ts));
}

/** A conversation in the sidebar list: name, preview (or who is typing), unread and mention counts. */
export function convItem(c: Conv, online: boolean | undefined, current: boolean, typing: string, me: string, onOpen: () => void): HTMLLIElement {
  const av = avatar(c.name, c.kind === "group");
  let presence = "";
  if (c.kind === "dm" && online !== undefined) {
    av.append(h("span", { class: `dot${online ? " online" : ""}` }));
    presence = online ? ", online" : ", offline";
  }
  const unread = c.unread;
  const mentions = c.mentions;
  const counts = unread > 0 ? `, ${unread} unread${mentions > 0 ? `, ${mentions} mention${mentions === 1 ? "" : "s"}` : ""}` : "";
  const label = `${c.kind === "group" ? "Group " : ""}${c.name}${presence}${counts}`;
  const p = c.preview;
  const previewText = typing || (p ? `${p.from === me ? "You" : p.from}: ${p.text !== undefined && p.text !== "" ? p.text.replace(/\s+/g, " ") : p.file ? `📎 ${p.file.name}` : ""}` : "");
  const btn = h(
    "button",
    {
      type: "button",
      class: `conv-item${unread > 0 ? " has-unread" : ""}`,
      "aria-label": label,
      "aria-current": current ? "true" : undefined,
      "data-key": c.key,
    },
    av,
    h("span", { class: "conv-text" }, h("span", { class: "conv-name" }, c.name), previewText ? h("span", { class: `conv-preview${typing ? " typing" : ""}` }, previewText) : null),
    mentions > 0 ? h("span", { class: "mention", "aria-hidden": "true", title: `${mentions} mention${mentions === 1 ? "" : "s"}` }, "@") : null,
    unread > 0 ? h("span", { class: "badge", "aria-hidden": "true" }, unread > 99 ? "99+" : String(unread)) : null,
  );
  btn.addEventListener("click", onOpen);
  return h("li", {}, btn);
}
