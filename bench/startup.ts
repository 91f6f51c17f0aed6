// Start-up time to the first accepted connection (a ping answered), for the
// compiled executable with and without bytecode and for `bun run src/server.ts`.
//   bun run bench/startup.ts [--runs 15]
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFrame } from "../src/protocol/codec.ts";

const ROOT = join(import.meta.dir, "..");
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 15;
const dir = mkdtempSync(join(tmpdir(), "tcpchat-startup-"));

function build(extra: string[], out: string): string {
  const r = Bun.spawnSync([process.execPath, "run", join(ROOT, "scripts/build.ts"), "--outdir", join(dir, out), ...extra], {
    stdout: "ignore",
    stderr: "inherit",
  });
  if (r.exitCode !== 0) throw new Error("build failed");
  return join(dir, out, "tcpchat-linux-x64");
}

let nextPort = 41000 + Math.floor(Math.random() * 10000);

/** ms from spawn until a TCP connection is accepted and a ping is answered. */
async function once(cmd: string[]): Promise<number> {
  const port = nextPort++;
  const db = join(dir, `s${port}.db`);
  const t0 = performance.now();
  const proc = Bun.spawn([...cmd, "--port", String(port), "--http-port", "off", "--db", db], { stdout: "ignore", stderr: "ignore", cwd: dir });
  const ping = encodeFrame({ t: "ping", id: 1 });
  for (;;) {
    try {
      const ms = await new Promise<number>((resolve, reject) => {
        Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            open: (s) => void s.write(ping),
            data: (s) => {
              s.end();
              resolve(performance.now() - t0);
            },
            connectError: (_s, e) => reject(e),
            error: (_s, e) => reject(e),
          },
        }).catch(reject);
      });
      proc.kill("SIGTERM");
      await proc.exited;
      return ms;
    } catch {
      if (performance.now() - t0 > 10000) throw new Error(`${cmd.join(" ")} did not start`);
      await Bun.sleep(1);
    }
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const variants: Array<[string, string[], string | undefined]> = [];
const withBc = build([], "bc");
const noBc = build(["--no-bytecode"], "nobc");
variants.push(["binary, minified + bytecode", [withBc, "serve"], withBc]);
variants.push(["binary, minified, no bytecode", [noBc, "serve"], noBc]);
variants.push(["bun run src/server.ts", [process.execPath, "run", join(ROOT, "src/server.ts")], undefined]);

console.log(`start-up to first answered ping, median of ${RUNS} runs (${navigator.hardwareConcurrency} cores, bun ${Bun.version})`);
for (const [name, cmd, file] of variants) {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await once(cmd));
  const size = file ? `, ${(statSync(file).size / 1e6).toFixed(1)} MB` : "";
  console.log(`  ${name.padEnd(32)} ${median(times).toFixed(1).padStart(7)} ms  (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)})${size}`);
}
rmSync(dir, { recursive: true, force: true });
