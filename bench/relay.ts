// The floor: a minimal Bun.listen relay, run through the same load generator.
// No auth, no persistence, no MessagePack on the hot path: a connection's first
// frames (register, login, join or create) are answered `ok`; after `join` (or `create`), every frame it
// sends is forwarded as is, the same bytes to every other member of its group.
// It uses the same Writer as the server (queue, drain, coalescing), so the ratio
// server/floor measures what tcpchat's auth, persistence and msgpack cost.
//   bun run bench/relay.ts --port 0
import type { Socket } from "bun";
import { decode } from "@msgpack/msgpack";
import { encodeFrame } from "../src/protocol/codec.ts";
import { FrameDecoder, frame } from "../src/protocol/frame.ts";
import { Writer } from "../src/io/writer.ts";

interface Conn {
  writer: Writer;
  decoder: FrameDecoder;
  group: Set<Conn> | null;
}

const groups = new Map<string, Set<Conn>>();
function onFrame(c: Conn, body: Uint8Array): void {
  if (c.group === null) {
    const m = decode(body) as { t?: string; id?: number; group?: string };
    if ((m.t === "join" || m.t === "create") && typeof m.group === "string") {
      let g = groups.get(m.group);
      if (!g) groups.set(m.group, (g = new Set()));
      g.add(c);
      c.group = g;
    }
    c.writer.send(encodeFrame({ t: "ok", id: m.id, token: "relay" }));
    return;
  }
  const out = frame(body);
  for (const other of c.group) if (other !== c) other.writer.send(out);
}

/** Runs the relay: `--port N` (0 picks one); prints "relay listening on HOST:PORT". */
export function runRelay(argv: string[]): void {
  const portArg = argv.indexOf("--port");
  const port = portArg >= 0 ? Number(argv[portArg + 1]) : 0;
  const server = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port,
    socket: {
      binaryType: "uint8array",
      open(s: Socket<Conn>) {
        s.setNoDelay(true);
        const c: Conn = {
          writer: new Writer(
            { write: (b) => s.write(b), end: () => s.end(), terminate: () => s.terminate() },
            64 * 1024 * 1024,
            () => {},
          ),
          decoder: new FrameDecoder(4 * 1024 * 1024, (ev) => {
            if (ev.kind === "frame") onFrame(c, ev.body);
            else s.terminate();
          }),
          group: null,
        };
        s.data = c;
      },
      data(s, chunk) {
        s.data.decoder.push(chunk);
      },
      drain(s) {
        s.data.writer.drain();
      },
      close(s) {
        s.data.writer.close();
        s.data.group?.delete(s.data);
      },
    },
  });
  console.log(`relay listening on ${server.hostname}:${server.port}`);
  process.on("SIGTERM", () => {
    server.stop(true);
    process.exit(0);
  });
}

if (import.meta.main) runRelay(process.argv.slice(2));
