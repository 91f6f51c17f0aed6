// `bun bench --quick` completes, loses and duplicates nothing, and writes well-formed results.
// It checks that the suite works, not how fast anything is (these machines are shared).
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Report } from "../bench/report.ts";
import { tempDir } from "./helpers/server.ts";

const ROOT = join(import.meta.dir, "..");
const out = tempDir("tcpchat-bench-test-");
afterAll(() => out.cleanup());

test("bench --quick runs every quick scenario with zero lost or duplicated messages", async () => {
  const proc = Bun.spawn([process.execPath, "run", join(ROOT, "bench/run.ts"), "--quick", "--out", out.dir], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) console.error(stdout, stderr);
  expect(code).toBe(0);
  expect(stdout).toContain("deliv/CPU-s");
  expect(stdout).toContain("targets (issue #17");

  const files = readdirSync(out.dir);
  const json = files.find((f) => f.endsWith(".json"));
  const svg = files.find((f) => f.endsWith(".svg"));
  expect(json).toBeDefined();
  expect(svg).toBeDefined();
  expect(readFileSync(join(out.dir, svg!), "utf8")).toStartWith("<svg");

  const report = JSON.parse(readFileSync(join(out.dir, json!), "utf8")) as Report;
  expect(report.machine.cpus).toBeGreaterThan(0);
  const scenarios = new Set(report.results.map((r) => r.scenario));
  for (const s of ["fanout", "groups", "dm"]) expect(scenarios.has(s)).toBe(true);
  for (const r of report.results) {
    expect(r.lost).toBe(0);
    expect(r.duplicated).toBe(0);
    expect(r.errors).toBe(0);
    expect(r.samples).toBeGreaterThan(0);
    expect(r.deliveriesPerSec).toBeGreaterThan(0);
    expect(r.serverCpuSec).toBeGreaterThan(0);
    expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.p99);
    expect(r.latencyMs.p99).toBeLessThanOrEqual(r.latencyMs.max);
    // every tcpchat case has its floor, run in the same suite
    if (r.server === "tcpchat") expect(report.results.some((f) => f.key === r.key && f.server === "floor")).toBe(true);
  }
  expect(report.scale?.idleConnections).toBeGreaterThan(0);
  // Memory per idle connection is a measurement (RSS before and after), not a bound: in a quick
  // run with few connections a garbage collection in between can make it negative (seen once).
  expect(Number.isFinite(report.scale?.bytesPerIdleConnection)).toBe(true);
  expect(report.targets?.length).toBeGreaterThan(0);
}, 240_000);

// `bun bench --cluster 2` with tiny sizes (one paced case: 10-15 s): a fresh PostgreSQL and nats-server
// for the cluster run, two nodes, members on both; the same case on the floor and one SQLite node.
test("bench --cluster 2 runs the fan-out on two nodes beside one SQLite node, with cross-node latency", async () => {
  const dir = tempDir("tcpchat-bench-cluster-test-");
  try {
    const args = ["--cluster", "2", "--quick", "--scenarios", "fanout", "--group-sizes", "10", "--pacing", "paced", "--duration", "0.5", "--out", dir.dir];
    const proc = Bun.spawn([process.execPath, "run", join(ROOT, "bench/run.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) console.error(stdout, stderr);
    expect(code).toBe(0);
    expect(stdout).toContain("cross p50");

    const json = readdirSync(dir.dir).find((f) => f.endsWith(".json"));
    const report = JSON.parse(readFileSync(join(dir.dir, json!), "utf8")) as Report;
    const cluster = report.results.filter((r) => r.server === "cluster");
    expect(cluster.map((r) => r.key)).toEqual(["fanout:10:paced"]);
    for (const r of cluster) {
      expect(r.nodes).toBe(2);
      expect(r.lost).toBe(0);
      expect(r.duplicated).toBe(0);
      expect(r.errors).toBe(0);
      // half of each group's receivers are on the other node than the sender (paced: there are
      // messages in the window however slow the machine)
      expect(r.samples).toBeGreaterThan(0);
      expect(r.crossSamples).toBeGreaterThan(0);
      expect(r.crossSamples!).toBeLessThan(r.samples);
      expect(r.crossNodeMs!.p50).toBeLessThanOrEqual(r.crossNodeMs!.p99);
      expect(r.serverCpuParts!.nodes).toBeGreaterThan(0);
      expect(r.serverCpuSec).toBeCloseTo(r.serverCpuParts!.nodes + r.serverCpuParts!.nats + r.serverCpuParts!.postgres, 6);
      // the same case on one SQLite node and on the floor, in the same run
      for (const s of ["tcpchat", "floor"]) expect(report.results.some((x) => x.key === r.key && x.server === s)).toBe(true);
    }
  } finally {
    dir.cleanup();
  }
}, 120_000);
