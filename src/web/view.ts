// DOM building for the web app. Every string from the network goes into the page
// as text (text nodes, textContent, attribute values), never as markup: there is no
// innerHTML here or anywhere in the app.
import type { ChatFile, ChatMessage } from "../client/browser.ts";
import { dayKey, dayLabel, fullTimeOf, isPreviewable, sizeLabel, timeOf } from "./format.ts";
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

export interface MessageViewOptions {
  me: string;
  /** The previous message shown, to fold consecutive messages of one sender together. */
  prev?: ChatMessage;
  blobs: BlobUrls;
  /** `sending`, or why it failed; for one's own sends not yet acknowledged. */
  status?: { text: string; failed: boolean; retry?: () => void; dismiss?: () => void };
}

/** One message as a list item. `key` is its mid, or `c:<cid>` while it is being sent. */
export function messageView(m: ChatMessage, key: string, o: MessageViewOptions): HTMLLIElement {
  const mine = m.from === o.me;
  const cont = o.prev !== undefined && o.prev.from === m.from && m.ts - o.prev.ts < 5 * 60_000 && dayKey(o.prev.ts) === dayKey(m.ts);
  const cls = ["msg", mine ? "mine" : "", cont ? "cont" : "", o.status ? (o.status.failed ? "failed" : "pending") : ""].filter(Boolean).join(" ");
  const time = h("time", { class: "msg-time", datetime: new Date(m.ts).toISOString(), title: fullTimeOf(m.ts) }, timeOf(m.ts));
  const bubble = h("div", { class: "bubble" });
  if (m.file) bubble.append(fileView(key, m.file, o.blobs));
  if (m.text !== undefined && m.text !== "") bubble.append(h("div", { class: "msg-text" }, m.text));
  bubble.append(time);
  const li = h(
    "li",
    { class: cls, "data-key": key, "data-mid": o.status ? undefined : String(m.mid) },
    h("div", { class: "msg-meta" }, h("span", { class: "msg-from" }, mine ? "You" : m.from)),
    bubble,
  );
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

export function dayDivider(ts: number): HTMLLIElement {
  return h("li", { class: "day", role: "separator" }, dayLabel(ts));
}

/** A conversation in the sidebar list. */
export function convItem(c: Conv, online: boolean | undefined, current: boolean, onOpen: () => void): HTMLLIElement {
  const av = avatar(c.name, c.kind === "group");
  let presence = "";
  if (c.kind === "dm" && online !== undefined) {
    av.append(h("span", { class: `dot${online ? " online" : ""}` }));
    presence = online ? ", online" : ", offline";
  }
  const unread = c.unread > 0 ? `, ${c.unread} unread` : "";
  const label = `${c.kind === "group" ? "Group " : ""}${c.name}${presence}${unread}`;
  const btn = h(
    "button",
    {
      type: "button",
      class: `conv-item${c.unread > 0 ? " has-unread" : ""}`,
      "aria-label": label,
      "aria-current": current ? "true" : undefined,
      "data-key": c.key,
    },
    av,
    h("span", { class: "conv-name" }, c.name),
    c.unread > 0 ? h("span", { class: "badge", "aria-hidden": "true" }, c.unread > 99 ? "99+" : String(c.unread)) : null,
  );
  btn.addEventListener("click", onOpen);
  return h("li", {}, btn);
}
