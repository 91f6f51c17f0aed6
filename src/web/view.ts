// DOM building for the web app. Every string from the network goes into the page
// as text (text nodes, textContent, attribute values), never as markup: there is no
// innerHTML here or anywhere in the app.
import type { ChatFile, ChatMessage } from "../client/browser.ts";
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

/**
 * Blob URLs for files: made once per message and kept while the page lives (or until
 * `revokeAll`, at logout). Images get their declared type (shown by <img>, which runs
 * no script even for a crafted file); downloads are application/octet-stream, so a
 * link never renders a file as a page of this origin.
 */
export class BlobUrls {
  private readonly urls = new Map<string, string>();

  get(key: string, file: ChatFile, preview: boolean): string {
    const k = `${preview ? "i" : "d"}:${key}`;
    let u = this.urls.get(k);
    if (!u) {
      // A copy of the bytes (the message keeps its own view of the decoded frame).
      const bytes = new Uint8Array(file.data);
      u = URL.createObjectURL(new Blob([bytes], { type: preview ? file.type : "application/octet-stream" }));
      this.urls.set(k, u);
    }
    return u;
  }

  revokeAll(): void {
    for (const u of this.urls.values()) URL.revokeObjectURL(u);
    this.urls.clear();
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

function fileView(key: string, file: ChatFile, blobs: BlobUrls): HTMLElement {
  const name = file.name || "file";
  const download = h(
    "span",
    { class: "download" },
    h("a", { href: blobs.get(key, file, false), download: name }, downloadIcon(), h("span", { class: "name" }, name)),
    h("span", { class: "size" }, sizeLabel(file.data.length)),
  );
  if (!isPreviewable(file.type)) return h("div", { class: "file" }, download);
  const img = h("img", { src: blobs.get(key, file, true), alt: name, decoding: "async" });
  return h("figure", { class: "file" }, img, h("figcaption", {}, download));
}

/** What a message view shows: a Shown (model.ts), or one's own send not stored yet. */
export interface MessageLike {
  mid: number;
  ts: number;
  from: string;
  text?: string;
  file?: ChatFile;
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
    if (m.file) bubble.append(fileView(key, m.file, o.blobs));
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
