// A small Prometheus registry: counters, gauges and histograms, and the text exposition
// format (version 0.0.4) that /metrics serves. Hand-written instead of prom-client
// (README, "Operating tcpchat"): the hot path only ever does `counter.value += n` on a
// plain object or a histogram's bucket search over a dozen numbers; everything else
// (gauges, per-transport counts, sizes) is computed when a scrape asks, from state the
// server keeps anyway. prom-client's labelled `inc()` hashes its label object on every
// call, and its default collectors rely on perf_hooks that Bun implements only in part.

export type Labels = Record<string, string>;

/** A sample: its labels (maybe none) and its value. */
export type Sample = [Labels, number];

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  render(out: string[]): void | Promise<void>;
}

/** Escapes a label value (backslash, double quote, newline). */
function esc(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(l: Labels, extra?: [string, string]): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  if (extra) parts.push(`${extra[0]}="${esc(extra[1])}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A counter the hot path increments: `c.value += n` (or `c.inc()`). */
export class Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

/**
 * A histogram over fixed bucket bounds (upper bounds, ascending; +Inf is implied).
 * `observe` is a linear search over the bounds and three additions.
 */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** Bucket bounds growing by `factor` from `start`: `count` of them. */
export function exponential(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0, v = start; i < count; i++, v *= factor) out.push(Number(v.toPrecision(6)));
  return out;
}

export class Registry {
  private readonly families: Family[] = [];

  /** A counter without labels. */
  counter(name: string, help: string): Counter {
    const c = new Counter();
    this.counterFrom(name, help, () => [[{}, c.value]]);
    return c;
  }

  /** A counter whose samples are read when scraped (labelled counts kept elsewhere). */
  counterFrom(name: string, help: string, collect: () => Sample[]): void {
    this.add(name, help, "counter", collect);
  }

  /** A gauge whose samples are read when scraped (may be async: a database size). */
  gauge(name: string, help: string, collect: () => Sample[] | Promise<Sample[]>): void {
    this.add(name, help, "gauge", collect);
  }

  histogram(name: string, help: string, bounds: readonly number[]): Histogram {
    const h = new Histogram(bounds);
    this.families.push({
      name,
      help,
      type: "histogram",
      render(out) {
        let cum = 0;
        for (let i = 0; i < h.bounds.length; i++) {
          cum += h.counts[i]!;
          out.push(`${name}_bucket${labelText({}, ["le", num(h.bounds[i]!)])} ${cum}`);
        }
        cum += h.counts[h.bounds.length]!;
        out.push(`${name}_bucket{le="+Inf"} ${cum}`);
        out.push(`${name}_sum ${num(h.sum)}`);
        out.push(`${name}_count ${h.count}`);
      },
    });
    return h;
  }

  private add(name: string, help: string, type: "counter" | "gauge", collect: () => Sample[] | Promise<Sample[]>): void {
    this.families.push({
      name,
      help,
      type,
      async render(out) {
        let samples: Sample[];
        try {
          samples = await collect();
        } catch {
          return; // a gauge that cannot be read now (the database is down) is left out of this scrape
        }
        for (const [l, v] of samples) out.push(`${name}${labelText(l)} ${num(v)}`);
      },
    });
  }

  /** The exposition text of every metric. */
  async render(): Promise<string> {
    const out: string[] = [];
    for (const f of this.families) {
      const body: string[] = [];
      await f.render(body);
      out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${f.name} ${f.type}`, ...body);
    }
    return out.join("\n") + "\n";
  }
}

/** Parses exposition text back into `name{labels}` -> value (tests, `tcpchat admin`). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    const v = line.slice(sp + 1);
    out.set(line.slice(0, sp), v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v));
  }
  return out;
}
