// Results of `bun bench`: their shape, the table, the targets of issue #4, compare mode.

export interface CaseResult {
  key: string;
  scenario: string;
  label: string;
  server: "tcpchat" | "floor";
  paced: boolean;
  groupSize?: number;
  size: number;
  offeredMsgsPerSec?: number;
  msgsPerSec: number;
  deliveriesPerSec: number;
  /** Send to receive, at every recipient. */
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** Send until the last recipient of a message has it. */
  lastMemberMs: { p50: number; p99: number; max: number };
  samples: number;
  serverCpuSec: number;
  deliveriesPerCpuSec: number;
  serverRssMB: number;
  /** Share of one core each load-generator process used while measuring. */
  generatorCpu: number[];
  generatorLimited: boolean;
  lost: number;
  duplicated: number;
  errors: number;
  closedConnections: number;
  /** Deliveries to members that did not read during the run, received after they read again. */
  stuckReceived?: number;
  messagesSent: number;
  clock: { maxOffsetMs: number; uncertaintyMs: number };
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean;
}

export interface Report {
  started: string;
  finished?: string;
  machine: { cpus: number; cpuModel: string; memGiB: number; bun: string; os: string };
  options: Record<string, unknown>;
  results: CaseResult[];
  scale?: {
    passwordLoginsPerSec?: number;
    passwordLoginCpuMs?: number;
    idleConnections?: number;
    tokenLoginsPerSec?: number;
    bytesPerIdleConnection?: number;
    serverRssMB?: number;
  };
  targets?: Target[];
}

const f2 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function rate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

function floorOf(r: Report, c: CaseResult): CaseResult | undefined {
  return r.results.find((x) => x.key === c.key && x.server === "floor");
}

export function printTable(r: Report): void {
  const m = r.machine;
  console.log(`\nmachine: ${m.cpus} cores (${m.cpuModel}), ${m.memGiB} GiB, ${m.os}, bun ${m.bun}; started ${r.started}`);
  const head = [
    "case",
    "server",
    "msg/s",
    "deliv/s",
    "p50",
    "p90",
    "p99",
    "p99.9",
    "max",
    "last p99",
    "srv CPU s",
    "deliv/CPU-s",
    "x floor",
    "p99 x floor",
    "lost/dup",
    "limit",
  ];
  const rows: string[][] = [head];
  for (const c of r.results) {
    const fl = c.server === "tcpchat" ? floorOf(r, c) : undefined;
    rows.push([
      c.label,
      c.server,
      rate(c.msgsPerSec),
      rate(c.deliveriesPerSec),
      f2(c.latencyMs.p50),
      f2(c.latencyMs.p90),
      f2(c.latencyMs.p99),
      f2(c.latencyMs.p999),
      f2(c.latencyMs.max),
      f2(c.lastMemberMs.p99),
      c.serverCpuSec.toFixed(2),
      rate(c.deliveriesPerCpuSec),
      fl && fl.deliveriesPerCpuSec ? (c.deliveriesPerCpuSec / fl.deliveriesPerCpuSec).toFixed(2) : "",
      fl && fl.latencyMs.p99 ? (c.latencyMs.p99 / fl.latencyMs.p99).toFixed(2) : "",
      `${c.lost}/${c.duplicated}`,
      c.generatorLimited ? "generator" : "server",
    ]);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const [i, row] of rows.entries()) {
    console.log(row.map((cell, k) => (k === 0 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join("  "));
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
  console.log("latencies in ms, send to receive at every recipient; 'last' is until the last member had it");
  if (r.scale) {
    const s = r.scale;
    console.log(
      `\nconnection scale: ${s.idleConnections} idle logged-in connections, ${f2((s.bytesPerIdleConnection ?? 0) / 1024)} KiB each (server RSS ${f2(s.serverRssMB ?? 0)} MB); token logins ${rate(s.tokenLoginsPerSec ?? 0)}/s; password logins ${f2(s.passwordLoginsPerSec ?? 0)}/s (${f2(s.passwordLoginCpuMs ?? 0)} ms server CPU each, argon2id 64 MiB t=2)`,
    );
  }
  if (r.targets?.length) {
    console.log("\ntargets (issue #4):");
    for (const t of r.targets) console.log(`  ${t.met ? "MET   " : "MISSED"} ${t.name}: ${t.value} (goal ${t.goal})`);
  }
}

export function targetsOf(r: Report): Target[] {
  const out: Target[] = [];
  const tc = (key: string) => r.results.find((x) => x.key === key && x.server === "tcpchat");
  for (const n of [100, 1000]) {
    const c = tc(`fanout:${n}:max`);
    const fl = c && floorOf(r, c);
    if (c && fl) {
      const ratio = c.deliveriesPerCpuSec / fl.deliveriesPerCpuSec;
      out.push({
        name: `N=${n} unpaced deliveries per server CPU-second vs floor`,
        goal: ">= 0.80",
        value: `${ratio.toFixed(2)} (${rate(c.deliveriesPerCpuSec)} vs ${rate(fl.deliveriesPerCpuSec)})`,
        met: ratio >= 0.8,
      });
    }
  }
  {
    const c = tc("fanout:1000:paced");
    const fl = c && floorOf(r, c);
    if (c && fl) {
      const ratio = c.latencyMs.p99 / fl.latencyMs.p99;
      out.push({
        name: "N=1000 paced 100k deliveries/s, p99 vs floor",
        goal: "<= 1.25",
        value: `${ratio.toFixed(2)} (${f2(c.latencyMs.p99)} ms vs ${f2(fl.latencyMs.p99)} ms)`,
        met: ratio <= 1.25,
      });
    }
  }
  {
    const c = tc("fanout:1:max");
    if (c)
      out.push({
        name: "N=1 unpaced messages/s, each committed before its ack",
        goal: ">= 100k",
        value: rate(c.msgsPerSec),
        met: c.msgsPerSec >= 100000,
      });
  }
  for (const n of [100, 1000]) {
    const base = tc(`stuck:${n}:baseline`);
    const stuck = tc(`stuck:${n}:stuck`);
    if (base && stuck) {
      const ratio = stuck.latencyMs.p99 / base.latencyMs.p99;
      out.push({
        name: `1 of ${n} members not reading: the others' p99 vs everyone reading`,
        goal: "<= 1.10",
        value: `${ratio.toFixed(2)} (${f2(stuck.latencyMs.p99)} ms vs ${f2(base.latencyMs.p99)} ms; it then received all ${stuck.stuckReceived} in order; server RSS ${f2(stuck.serverRssMB)} vs ${f2(base.serverRssMB)} MB)`,
        met: ratio <= 1.1 && stuck.lost === 0 && stuck.duplicated === 0,
      });
    }
  }
  if (r.scale?.bytesPerIdleConnection !== undefined) {
    const b = r.scale.bytesPerIdleConnection;
    out.push({ name: "server memory per idle logged-in connection", goal: "< 8 KiB", value: `${f2(b / 1024)} KiB`, met: b < 8192 });
  }
  return out;
}

/** The change of each result against a saved report, matched by case key and server. */
export function compareReport(now: Report, before: Report): string {
  const lines = [`\ncompared with ${before.started} (${before.machine.cpus} cores, bun ${before.machine.bun}):`];
  const pct = (a: number, b: number) => (b ? `${a >= b ? "+" : ""}${(((a - b) / b) * 100).toFixed(1)}%` : "n/a");
  for (const c of now.results) {
    const o = before.results.find((x) => x.key === c.key && x.server === c.server);
    if (!o) {
      lines.push(`  ${c.server.padEnd(7)} ${c.label}: new`);
      continue;
    }
    lines.push(
      `  ${c.server.padEnd(7)} ${c.label.padEnd(52)} deliv/s ${pct(c.deliveriesPerSec, o.deliveriesPerSec).padStart(7)}  deliv/CPU-s ${pct(c.deliveriesPerCpuSec, o.deliveriesPerCpuSec).padStart(7)}  p50 ${pct(c.latencyMs.p50, o.latencyMs.p50).padStart(7)}  p99 ${pct(c.latencyMs.p99, o.latencyMs.p99).padStart(7)}`,
    );
  }
  return lines.join("\n");
}
