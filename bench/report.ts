// Results of `bun bench`: their shape, the table, the targets of issue #4, compare mode.

export interface CaseResult {
  key: string;
  scenario: string;
  label: string;
  /** tcpchat: one node on SQLite; floor: the relay; cluster: `nodes` nodes on one PostgreSQL and one nats-server. */
  server: "tcpchat" | "floor" | "cluster";
  /** Cluster runs: how many nodes. */
  nodes?: number;
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
  /** Cluster runs: send to receive at the recipients connected to another node than the sender's. */
  crossNodeMs?: { p50: number; p90: number; p99: number; p999: number; max: number };
  crossSamples?: number;
  /** Every server-side process: the nodes, and for a cluster nats-server and every PostgreSQL process. */
  serverCpuSec: number;
  /** Cluster runs: serverCpuSec by part. */
  serverCpuParts?: { nodes: number; nats: number; postgres: number };
  deliveriesPerCpuSec: number;
  /** RSS of the server process (of a cluster: its nodes', summed). */
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
  /** The files scenario (bench/files.ts): one file to a group, fetched by every member at once. */
  files?: FilesReport;
  targets?: Target[];
}

import type { FilesReport } from "./files.ts";

const f2 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function rate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

function floorOf(r: Report, c: CaseResult): CaseResult | undefined {
  return r.results.find((x) => x.key === c.key && x.server === "floor");
}

/** The single SQLite node's result of the same case (the reference of a cluster row). */
function sqliteOf(r: Report, c: CaseResult): CaseResult | undefined {
  return r.results.find((x) => x.key === c.key && x.server === "tcpchat");
}

/** "floor", "tcpchat" (one node, SQLite) or "cluster xN". */
export function serverName(c: Pick<CaseResult, "server" | "nodes">): string {
  return c.server === "cluster" ? `cluster x${c.nodes}` : c.server;
}

const sameServer = (a: CaseResult, b: CaseResult) => a.key === b.key && a.server === b.server && (a.nodes ?? 0) === (b.nodes ?? 0);

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
    const fl = c.server !== "floor" ? floorOf(r, c) : undefined;
    rows.push([
      c.label,
      serverName(c),
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
  printRows(rows);
  console.log("latencies in ms, send to receive at every recipient; 'last' is until the last member had it");
  if (r.results.some((c) => c.server === "cluster")) printCluster(r);
  if (r.scale) {
    const s = r.scale;
    console.log(
      `\nconnection scale: ${s.idleConnections} idle logged-in connections, ${f2((s.bytesPerIdleConnection ?? 0) / 1024)} KiB each (server RSS ${f2(s.serverRssMB ?? 0)} MB); token logins ${rate(s.tokenLoginsPerSec ?? 0)}/s; password logins ${f2(s.passwordLoginsPerSec ?? 0)}/s (${f2(s.passwordLoginCpuMs ?? 0)} ms server CPU each, argon2id 64 MiB t=2)`,
    );
  }
  if (r.files) {
    const x = r.files;
    console.log(
      `\nfiles: ${f2(x.sizeBytes / 1e6)} MB to a group of ${x.members}: upload ${f2(x.uploadMiBps)} MiB/s; all ${x.members} fetched it in ${f2(x.downloadMs / 1000)} s (${f2(x.downloadMiBps)} MiB/s, windows of ${x.window} x ${f2(x.chunkBytes / 1048576)} MiB), ${x.verified}/${x.members} with the right SHA-256; ${f2(x.mibPerCpuSec)} MiB per server CPU-second; server RSS ${f2(x.rssStartMiB)} -> peak ${f2(x.rssPeakMiB)} MiB`,
    );
  }
  if (r.targets?.length) {
    console.log("\ntargets (issue #4):");
    for (const t of r.targets) console.log(`  ${t.met ? "MET   " : "MISSED"} ${t.name}: ${t.value} (goal ${t.goal})`);
  }
}

function printRows(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const [i, row] of rows.entries()) {
    console.log(row.map((cell, k) => (k === 0 ? cell.padEnd(widths[k]!) : cell.padStart(widths[k]!))).join("  "));
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
}

/** Cluster rows beside the single SQLite node's of the same case: cross-node latency, CPU of every server-side process. */
function printCluster(r: Report): void {
  console.log(
    "\ncluster: nodes on one PostgreSQL and one nats-server; each group's members round robin over the nodes, fan-out senders on node 0\n" +
      "(commit: each group's sender on a node of its own, round robin); tcpchat = one node on SQLite, same run",
  );
  const head = [
    "case",
    "server",
    "msg/s",
    "deliv/s",
    "cross p50",
    "cross p99",
    "cross p99.9",
    "all p50",
    "all p99",
    "all p99.9",
    "CPU s nodes+nats+pg",
    "deliv/CPU-s",
    "x sqlite",
    "msg/s x sqlite",
    "p99 x sqlite",
    "lost/dup",
    "limit",
  ];
  const rows: string[][] = [head];
  const keys = [...new Set(r.results.filter((c) => c.server === "cluster").map((c) => c.key))];
  for (const key of keys) {
    for (const c of r.results.filter((x) => x.key === key && x.server !== "floor")) {
      const sq = c.server === "cluster" ? sqliteOf(r, c) : undefined;
      const x = c.crossNodeMs;
      const parts = c.serverCpuParts;
      const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) : "");
      rows.push([
        c.label,
        serverName(c),
        rate(c.msgsPerSec),
        rate(c.deliveriesPerSec),
        x ? f2(x.p50) : "",
        x ? f2(x.p99) : "",
        x ? f2(x.p999) : "",
        f2(c.latencyMs.p50),
        f2(c.latencyMs.p99),
        f2(c.latencyMs.p999),
        parts ? `${parts.nodes.toFixed(2)}+${parts.nats.toFixed(2)}+${parts.postgres.toFixed(2)}` : c.serverCpuSec.toFixed(2),
        rate(c.deliveriesPerCpuSec),
        sq ? ratio(c.deliveriesPerCpuSec, sq.deliveriesPerCpuSec) : "",
        sq ? ratio(c.msgsPerSec, sq.msgsPerSec) : "",
        sq ? ratio(c.latencyMs.p99, sq.latencyMs.p99) : "",
        `${c.lost}/${c.duplicated}`,
        c.generatorLimited ? "generator" : "server",
      ]);
    }
  }
  printRows(rows);
  console.log("latencies in ms; 'cross' at the recipients on another node than the sender's, 'all' at every recipient; deliv/CPU-s counts every server-side process");
  const commits = keys.filter((k) => k.startsWith("commit:"));
  if (commits.length) {
    console.log("\ncommitted messages/s (unpaced, every message committed before its ack):");
    for (const key of commits) {
      const rs = r.results.filter((c) => c.key === key);
      const one = rs.find((c) => c.server === "cluster" && c.nodes === 1);
      const most = rs.filter((c) => c.server === "cluster").sort((a, b) => (b.nodes ?? 0) - (a.nodes ?? 0))[0];
      console.log(
        `  ${rs[0]!.label}: ${rs.map((c) => `${serverName(c)} ${rate(c.msgsPerSec)}`).join(", ")}${one && most && most !== one ? `; x${most.nodes} / x1 = ${(most.msgsPerSec / one.msgsPerSec).toFixed(2)}` : ""}`,
      );
    }
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
    const o = before.results.find((x) => sameServer(x, c));
    if (!o) {
      lines.push(`  ${serverName(c).padEnd(10)} ${c.label}: new`);
      continue;
    }
    lines.push(
      `  ${serverName(c).padEnd(10)} ${c.label.padEnd(52)} deliv/s ${pct(c.deliveriesPerSec, o.deliveriesPerSec).padStart(7)}  deliv/CPU-s ${pct(c.deliveriesPerCpuSec, o.deliveriesPerCpuSec).padStart(7)}  p50 ${pct(c.latencyMs.p50, o.latencyMs.p50).padStart(7)}  p99 ${pct(c.latencyMs.p99, o.latencyMs.p99).padStart(7)}`,
    );
  }
  return lines.join("\n");
}
