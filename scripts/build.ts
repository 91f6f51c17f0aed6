// `bun run build` (linux-x64) and `bun run build:all`: one self-contained executable per target in dist/.
//   bun run scripts/build.ts [--all] [--target bun-linux-arm64 ...] [--no-bytecode] [--outdir DIR]
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const DEFAULT = `bun-${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
const ALL = ["bun-linux-x64", "bun-linux-arm64", "bun-linux-x64-musl", "bun-darwin-arm64", "bun-windows-x64"];

const args = process.argv.slice(2);
const targets: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--all") targets.push(...ALL);
  else if (args[i] === "--target") targets.push(args[++i]!);
}
// No --target: build for this machine from the running bun itself. Naming the target would
// make bun fetch that target's runtime whenever it is not exactly the running one (a
// baseline build on a CPU without AVX2), which needs the internet.
const host = targets.length === 0;
if (host) targets.push(DEFAULT);
const bytecode = !args.includes("--no-bytecode");
const outIdx = args.indexOf("--outdir");
const outdir = outIdx >= 0 ? args[outIdx + 1]! : join(ROOT, "dist");

mkdirSync(outdir, { recursive: true });
let failed = 0;
for (const target of targets) {
  const name = `tcpchat-${target.replace(/^bun-/, "")}${target.includes("windows") ? ".exe" : ""}`;
  const outfile = join(outdir, name);
  const cmd = [
    process.execPath,
    "build",
    "--compile",
    "--minify",
    "--sourcemap=none",
    "--format=esm", // top-level await in the entry; required with --bytecode
    ...(bytecode ? ["--bytecode"] : []),
    ...(host ? [] : [`--target=${target}`]),
    join(ROOT, "src/main.ts"),
    "--outfile",
    outfile,
  ];
  const t0 = performance.now();
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) {
    console.error(`build for ${target} failed (exit ${r.exitCode})`);
    failed++;
    continue;
  }
  const mb = (statSync(outfile).size / 1e6).toFixed(1);
  console.log(`${target}: ${outfile}, ${mb} MB, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
process.exit(failed ? 1 : 0);
