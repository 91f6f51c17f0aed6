// The server's start and stop lines and signals (src/server.ts). A SIGTERM is a graceful stop
// from the moment the server says it is listening: Bun installs a signal handler some time
// after process.on() returns, and when the server installed its handlers after printing
// "listening", a SIGTERM sent at once killed it unhandled about half of the time (exit 143, no
// shutdown; a test's stop() met it in a CI run). And "listening" is the last of the start
// lines, so whoever waits for it finds the web app's address already printed (a test that
// read it right after "listening" failed now and then).
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { SOURCE_CMD, TEST_ARGS, tempDir } from "./helpers/server.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

test("SIGTERM the moment 'listening' is read: exit 0 and 'stopped', every time (10 starts, SQLite file and in memory); the web line came first", async () => {
  for (let i = 0; i < 10; i++) {
    const db = i % 2 === 0 ? join(tmp.dir, `s${i}.db`) : ":memory:";
    const proc = Bun.spawn([...SOURCE_CMD, "--port", "0", "--http-port", "0", "--db", db, ...TEST_ARGS], { stdout: "pipe", stderr: "pipe" });
    const dec = new TextDecoder();
    let out = "";
    const reader = proc.stdout.getReader();
    while (!out.includes("listening on")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the server ended before listening: ${out}`);
      out += dec.decode(value);
    }
    proc.kill("SIGTERM"); // no wait at all
    expect(out).toContain("web app at http://");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value);
    }
    const code = await proc.exited;
    expect({ i, db, code }).toEqual({ i, db, code: 0 });
    expect(out).toContain("tcpchat: stopped");
  }
}, 60000);
