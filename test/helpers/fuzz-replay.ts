// Replays one test/fuzz/ file into a ChatCore over a fake transport, in a
// process of its own so that its peak memory (VmHWM) is this input's alone.
// Run by test/fuzz.test.ts as `bun test/helpers/fuzz-replay.ts <file>`; prints one JSON line.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { DEFAULTS } from "../../src/config.ts";
import { ChatCore } from "../../src/core/chat.ts";
import type { Transport } from "../../src/io/writer.ts";
import { FrameDecoder } from "../../src/protocol/frame.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { memOf } from "./fuzz-conn.ts";
import { parseFuzzFile, splitFrames } from "./fuzz-gen.ts";
import { decodeStrict, enc, framed, toJS } from "./fuzz-msgpack.ts";

export interface ReplayResult {
  file: string;
  expectedReplies: number;
  oversized: boolean;
  replies: Array<{ t: string; code?: string; id?: number }>;
  bye?: string;
  ended: boolean;
  exceptions: string[];
  logged: string[];
  invalid: string[];
  hwmBefore: number;
  hwmAfter: number;
  ms: number;
}

async function replay(path: string): Promise<ReplayResult> {
  const file = parseFuzzFile(basename(path), readFileSync(path, "utf8"));
  const logged: string[] = [];
  const exceptions: string[] = [];
  const invalid: string[] = [];
  const config = { ...DEFAULTS, hashMemory: 64, hashTime: 1 }; // the shipped limits; fast hashing
  const core = await ChatCore.open(config, new MemoryStore(), { info() {}, error: (m, e) => void logged.push(`${m} ${String(e ?? "")}`) });
  const replies: ReplayResult["replies"] = [];
  let bye: string | undefined;
  let ended = false;
  const out = new FrameDecoder(1 << 30, (ev) => {
    if (ev.kind !== "frame") return;
    const d = decodeStrict(ev.body);
    if (!d.ok || d.info.badUtf8) invalid.push(d.ok ? "invalid UTF-8" : d.error);
    if (!d.ok) return;
    const m = toJS(d.value);
    if (m.t === "bye") bye = m.reason;
    else if (m.t === "ok" || m.t === "pong" || m.t === "error") replies.push({ t: m.t, code: m.code, id: m.id });
  });
  const transport: Transport = {
    remoteAddress: "127.0.0.1",
    write: (b) => (ended ? -1 : (out.push(b), b.length)),
    end: () => void (ended = true),
    terminate: () => void (ended = true),
    pause: () => {},
    resume: () => {},
  };
  const s = core.open(transport);
  const turn = () => new Promise((r) => setImmediate(r));
  const waitReplies = async (n: number) => {
    const deadline = Date.now() + 15000;
    while (replies.length < n && !ended && Date.now() < deadline) await turn();
  };
  if (file.context === "post-login") {
    core.data(s, framed(enc({ t: "register", id: 1, user: "replay", pass: "password1" })));
    await waitReplies(1);
    core.data(s, framed(enc({ t: "login", id: 2, user: "replay", pass: "password1" })));
    await waitReplies(2);
    replies.length = 0;
  }
  // Before login the frame limit is --max-frame-login (PROTOCOL.md §1).
  const limit = file.context === "post-login" ? config.maxFrame : Math.min(config.maxFrameLogin, config.maxFrame);
  const framing = splitFrames(file.stream, limit);
  const expectedReplies = framing.bodies.length + (framing.oversized ? 1 : 0);
  Bun.gc(true);
  const hwmBefore = memOf("self").hwm;
  const t0 = performance.now();
  try {
    core.data(s, file.stream); // one chunk: the whole input arrives in one read
  } catch (e) {
    exceptions.push(String((e as Error)?.stack ?? e));
  }
  await waitReplies(expectedReplies);
  for (let i = 0; i < 5; i++) await turn(); // room for a reply too many
  const ms = performance.now() - t0;
  const hwmAfter = memOf("self").hwm;
  if (ended) core.closed(s);
  await core.shutdown();
  return { file: file.name, expectedReplies, oversized: framing.oversized, replies, bye, ended, exceptions, logged, invalid, hwmBefore, hwmAfter, ms };
}

if (import.meta.main) {
  const r = await replay(process.argv[2]!);
  console.log(JSON.stringify(r));
  process.exit(0);
}
