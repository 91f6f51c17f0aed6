// Starts the real server as its own process (`bun run src/server.ts`) on a free port.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

const ROOT = join(import.meta.dir, "..", "..");

export interface RunningServer {
  port: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop(): Promise<number>;
}

export function tempDir(prefix = "tcpchat-test-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Arguments every test server gets: fast argon2 parameters (hashing cost is not what these
 * tests are about), no registration throttle (they register many users from one address) and
 * presence announced at once (they check a user's quick come and go). Tests of those limits
 * (test/attack/, test/limits.test.ts) start their server with their own arguments.
 */
export const TEST_ARGS = ["--hash-memory", "1024", "--hash-time", "1", "--register-per-addr", "0", "--presence-delay", "0"];

export const SOURCE_CMD = [process.execPath, "run", join(ROOT, "src/server.ts")];

/** Starts `cmd` (by default the server from source) with `--port 0` and `args`, in `cwd`. */
export async function startServer(args: string[], cmd: string[] = SOURCE_CMD, cwd = ROOT): Promise<RunningServer> {
  // A free HTTP port too (the web app and /ws), unless `args` say otherwise: tests run side by side.
  const proc = Bun.spawn([...cmd, "--port", "0", "--http-port", "0", ...args], {
    cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) out += dec.decode(chunk);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const deadline = Date.now() + 15000;
  let port = 0;
  while (!port) {
    const m = out.match(/listening on [^\s:]+:(\d+)/);
    if (m) port = Number(m[1]);
    else if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill();
      throw new Error(`server did not start: ${out}`);
    } else await Bun.sleep(20);
  }
  return {
    port,
    proc,
    output: () => out,
    async stop() {
      proc.kill("SIGTERM");
      return await proc.exited;
    },
  };
}

/** The HTTP base URL (no trailing slash) from a server's `web app at` line. */
export function httpBase(output: string): string {
  const m = output.match(/web app at (http:\/\/[^\s"]+)/);
  if (!m) throw new Error(`no web app line in: ${output}`);
  return m[1]!.replace(/\/$/, "");
}
