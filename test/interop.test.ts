// Interoperability: a client written only from docs/PROTOCOL.md, in Python with its
// own MessagePack codec (test/interop/client.py), against the real server process.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const tmp = tempDir("tcpchat-interop-");
let server: RunningServer | undefined;

afterAll(async () => {
  if (server && server.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

test(
  "a Python client written from PROTOCOL.md talks to the server",
  async () => {
    server = await startServer(["--db", join(tmp.dir, "chat.db"), ...TEST_ARGS]);
    const py = Bun.spawn(["python3", join(import.meta.dir, "interop", "client.py"), String(server.port)], {
      cwd: join(import.meta.dir, ".."),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(py.stdout).text(),
      new Response(py.stderr).text(),
      py.exited,
    ]);
    const report = `client exit ${code}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}\n--- server ---\n${server.output()}`;
    if (code !== 0 || !/^interop: \d+ checks passed$/m.test(stdout)) console.error(report);
    expect({ code, ok: /^interop: \d+ checks passed$/m.test(stdout) }).toEqual({ code: 0, ok: true });

    const exit = await server.stop();
    if (exit !== 0) console.error(`server exit ${exit}\n${server.output()}`);
    expect(exit).toBe(0);
  },
  60000,
);
