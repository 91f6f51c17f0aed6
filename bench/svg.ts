// An SVG chart of a bench report: against group size, (left) latency percentiles
// of the paced fan-out runs and (right) deliveries per server CPU-second of the
// unpaced runs, tcpchat beside the floor relay (and a cluster's runs, if any). No dependencies.
import type { CaseResult, Report } from "./report.ts";

const W = 980;
const H = 420;
const PAD = { l: 64, r: 16, t: 48, b: 56 };
const PANEL = (W - 40) / 2;
const COLORS = { tcpchat: "#1f6feb", floor: "#8b949e", cluster: "#d1242f" };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceMax(x: number): number {
  if (x <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

interface Series {
  name: string;
  color: string;
  dash?: string;
  points: Array<[number, number]>;
}

function panel(x0: number, title: string, yLabel: string, sizes: number[], series: Series[], fmt: (v: number) => string): string {
  const w = PANEL - PAD.l - PAD.r;
  const h = H - PAD.t - PAD.b;
  const ymax = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))));
  const xi = (n: number) => x0 + PAD.l + (sizes.length === 1 ? w / 2 : (sizes.indexOf(n) / (sizes.length - 1)) * w);
  const yv = (v: number) => PAD.t + h - (v / ymax) * h;
  const out: string[] = [];
  out.push(`<text x="${x0 + PAD.l}" y="${PAD.t - 24}" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4;
    out.push(`<line x1="${x0 + PAD.l}" x2="${x0 + PAD.l + w}" y1="${yv(v)}" y2="${yv(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 + PAD.l - 6}" y="${yv(v) + 4}" font-size="11" text-anchor="end">${fmt(v)}</text>`);
  }
  for (const n of sizes) out.push(`<text x="${xi(n)}" y="${PAD.t + h + 18}" font-size="11" text-anchor="middle">${n}</text>`);
  out.push(`<text x="${x0 + PAD.l + w / 2}" y="${H - 16}" font-size="12" text-anchor="middle">group size (receiving members)</text>`);
  out.push(
    `<text x="${x0 + 14}" y="${PAD.t + h / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 ${x0 + 14} ${PAD.t + h / 2})">${esc(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map(([n, v], k) => `${k ? "L" : "M"}${xi(n).toFixed(1)},${yv(v).toFixed(1)}`).join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    for (const [n, v] of s.points) out.push(`<circle cx="${xi(n)}" cy="${yv(v)}" r="3" fill="${s.color}"/>`);
    const ly = PAD.t + 4 + i * 15;
    out.push(`<line x1="${x0 + PAD.l + 8}" x2="${x0 + PAD.l + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    out.push(`<text x="${x0 + PAD.l + 32}" y="${ly + 4}" font-size="11">${esc(s.name)}</text>`);
  });
  return out.join("\n");
}

export function renderSvg(r: Report): string {
  const fan = r.results.filter((c) => c.scenario === "fanout" && c.groupSize !== undefined);
  const sizes = [...new Set(fan.map((c) => c.groupSize!))].sort((a, b) => a - b);
  const pick = (server: CaseResult["server"], paced: boolean) =>
    sizes.flatMap((n) => fan.filter((c) => c.groupSize === n && c.server === server && c.paced === paced));
  const servers = (["tcpchat", "floor", "cluster"] as const).filter((k) => fan.some((c) => c.server === k));
  const nodes = fan.find((c) => c.server === "cluster")?.nodes;
  const name = (k: (typeof servers)[number]) => (k === "cluster" ? `cluster x${nodes} (all)` : k);
  const lat: Series[] = [];
  for (const server of servers) {
    const rows = pick(server, true);
    lat.push({ name: `${name(server)} p50`, color: COLORS[server], dash: "4 3", points: rows.map((c) => [c.groupSize!, c.latencyMs.p50]) });
    lat.push({ name: `${name(server)} p99`, color: COLORS[server], points: rows.map((c) => [c.groupSize!, c.latencyMs.p99]) });
  }
  const eff: Series[] = servers.map((server) => ({
    name: server === "cluster" ? `cluster x${nodes} (nodes + NATS + Postgres CPU)` : server,
    color: COLORS[server],
    points: pick(server, false).map((c) => [c.groupSize!, c.deliveriesPerCpuSec]),
  }));
  const m = r.machine;
  const fmtMs = (v: number) => (v >= 10 ? v.toFixed(0) : v.toFixed(1));
  const fmtRate = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(0)}k` : v.toFixed(0));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="18" font-size="11" fill="#555">tcpchat bench ${esc(r.started)} - ${m.cpus} cores (${esc(m.cpuModel)}), bun ${esc(m.bun)}</text>
${panel(0, "Paced fan-out latency (100k deliveries/s, max 20k msg/s)", "ms, send to receive", sizes, lat, fmtMs)}
${panel(PANEL + 40, "Unpaced: deliveries per server CPU-second", "deliveries / CPU-s", sizes, eff, fmtRate)}
</svg>
`;
}
