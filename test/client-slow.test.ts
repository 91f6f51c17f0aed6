// A reader too slow for the server: a client in its own process is stopped
// (SIGSTOP) while messages pour in, so its connection falls behind (PROTOCOL.md
// §5.4: pushes stop, and are replayed from the store once it reads again). If it
// resumes (SIGCONT) in time it gets the replay on the same connection; if it
// stays stopped past --stuck-timeout the server closes it (§5.3, no bye) and it
// must reconnect and catch up with sync. Either way: every message exactly once,
// in order.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { ChatClient } from "../src/client/index.ts";
import { TEST_ARGS, type RunningServer, startServer, tempDir } from "./helpers/server.ts";

const tmp = tempDir("tcpchat-client-slow-");
const servers: RunningServer[] = [];
const children: ReturnType<typeof Bun.spawn>[] = [];

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode !== null) continue;
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await child.exited;
  }
  for (const server of servers) if (server.proc.exitCode === null) await server.stop();
  tmp.cleanup();
});

/** The reader: logs in with a token and prints each message as a JSON line, then its state changes. */
const READER = `
import { ChatClient } from ${JSON.stringify(join(import.meta.dir, "..", "src", "client", "index.ts"))};
const [port, user, token, count] = process.argv.slice(2);
const c = await ChatClient.connect({ port: Number(port), reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
c.on("state", (s) => console.log(JSON.stringify({ state: s })));
await c.login(user, { token });
console.log(JSON.stringify({ ready: true }));
let n = 0;
for await (const m of c.messages()) {
  console.log(JSON.stringify({ mid: m.mid, text: m.text.slice(0, 12) }));
  if (++n === Number(count)) break;
}
await c.close();
`;

const CASES = [
  { name: "resumed in time: the replay on the same connection", stuck: 60, dropped: false },
  { name: "stopped too long: closed, then a reconnect and sync", stuck: 1, dropped: true },
];

test.each(CASES)(
  "a stopped reader, $name: every message once, in order",
  async ({ stuck, dropped }) => {
    const server = await startServer([
      "--db",
      join(tmp.dir, `chat-${stuck}.db`),
      "--max-frame",
      "65536",
      "--max-queue",
      "262144",
      ...["--max-group-size", "1000", "--max-groups-per-user", "600"], // the replies must fit 64 KiB frames
      "--stuck-timeout",
      String(stuck),
      ...TEST_ARGS,
    ]);
    servers.push(server);
    const a = await ChatClient.connect({ port: server.port });
    const b = await ChatClient.connect({ port: server.port });
    await a.register("alice", "password1");
    await b.register("bob", "password1");
    await a.login("alice", { pass: "password1" });
    const { token } = await b.login("bob", { pass: "password1" });
    await b.close(); // bob's token stays valid: the reader process uses it

    const COUNT = 600;
    const script = join(tmp.dir, "reader.ts");
    await Bun.write(script, READER);
    const child = Bun.spawn([process.execPath, "run", script, String(server.port), "bob", token, String(COUNT)], {
      stdout: "pipe",
      stderr: "inherit",
    });
    children.push(child);
    const lines: Record<string, any>[] = [];
    const pump = (async () => {
      let buf = "";
      const dec = new TextDecoder();
      for await (const chunk of child.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
        }
      }
    })();
    const until = async (cond: () => boolean, what: string) => {
      const deadline = Date.now() + 40_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last lines ${JSON.stringify(lines.slice(-3))}`);
        await Bun.sleep(10);
      }
    };
    await until(() => lines.some((l) => l.ready), "the reader to log in");

    child.kill("SIGSTOP");
    // 600 messages of 20 kB (12 MB) to a reader that does not read: far past the
    // kernel's buffers and half the server's 256 KiB queue bound.
    const filler = "x".repeat(20_000);
    const acks = await Promise.all(
      Array.from({ length: COUNT }, (_, i) => a.send({ user: "bob", text: `m${String(i).padStart(4, "0")} ${filler}` })),
    );
    if (dropped) await until(() => server.output().includes("behind for"), "the server to close the stuck reader");
    child.kill("SIGCONT");

    expect(await child.exited).toBe(0);
    await pump;
    const msgs = lines.filter((l) => l.mid !== undefined);
    expect(msgs.map((l) => l.mid)).toEqual(acks.map((m) => m.mid));
    expect(msgs.map((l) => l.text)).toEqual(acks.map((m) => m.text!.slice(0, 12)));
    // dropped and back, or never dropped
    const states = lines.filter((l) => l.state).map((l) => l.state);
    expect(states.includes("connecting")).toBe(dropped);
    expect(states.at(-1)).toBe("closed");
    expect(server.output().includes("behind for")).toBe(dropped);
    await a.close();
  },
  60_000,
);
