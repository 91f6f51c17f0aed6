// The files case of `bun bench` (scenario "files", PROTOCOL.md §3.9): one file (10 MB by
// default) uploaded in chunks and sent to a group (1000 members by default), then fetched by
// every member at once, each keeping a window of `download` requests in flight. Measured: the
// upload's speed, the downloads' total throughput, the server's CPU seconds and its RSS (peak
// over the start), and that every member got the file's exact bytes (SHA-256).
//
// The coordinator (runFiles, called by bench/run.ts) sets up the group and the file; the
// downloads run in `workers` processes of this file (`bun run bench/files.ts` with a JSON spec
// in TCPCHAT_BENCH_FILES), each printing one JSON line of what it got.
import type { Socket } from "bun";
import { decode } from "@msgpack/msgpack";
import { readFileSync } from "node:fs";
import { Writer } from "../src/io/writer.ts";
import { encodeFrame } from "../src/protocol/codec.ts";
import { FrameDecoder } from "../src/protocol/frame.ts";

type Msg = Record<string, unknown>;

/** A connection that matches replies to requests by id, through the shared Writer. */
class FileConn {
  private sock!: Socket<undefined>;
  private writer!: Writer;
  private nextId = 1;
  private readonly waiting = new Map<number, (m: Msg) => void>();
  /** Pushes (no id) that someone waits for. */
  onPush: (m: Msg) => void = () => {};

  static async open(port: number): Promise<FileConn> {
    const c = new FileConn();
    const decoder = new FrameDecoder(64 * 1024 * 1024, (ev) => {
      if (ev.kind !== "frame") return;
      const m = decode(ev.body) as Msg;
      const r = typeof m.id === "number" ? c.waiting.get(m.id) : undefined;
      if (r) {
        c.waiting.delete(m.id as number);
        r(m);
      } else c.onPush(m);
    });
    c.sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        binaryType: "uint8array",
        data: (_s, chunk) => decoder.push(chunk),
        drain: () => c.writer.drain(),
      },
    });
    c.writer = new Writer(
      { write: (b) => c.sock.write(b), end: () => c.sock.end(), terminate: () => c.sock.terminate() },
      1 << 30,
      () => {},
    );
    return c;
  }

  request(m: Msg): Promise<Msg> {
    const id = this.nextId++;
    const { promise, resolve } = Promise.withResolvers<Msg>();
    this.waiting.set(id, resolve);
    this.writer.send(encodeFrame({ ...m, id }));
    return promise;
  }

  async ok(m: Msg): Promise<Msg> {
    const r = await this.request(m);
    if (r.t === "error") throw new Error(`${m.t}: ${r.code}: ${r.msg}`);
    return r;
  }

  close(): void {
    this.sock.end();
  }
}

/** What a downloader process is told. */
interface WorkerSpec {
  port: number;
  users: string[];
  pass: string;
  mid: number;
  size: number;
  sha256: string;
  window: number;
  chunk: number;
}

/** What a downloader process reports. */
interface WorkerResult {
  ok: number;
  bad: number;
  bytes: number;
  startMs: number;
  endMs: number;
}

/** A downloader process: logs its users in, waits for "go" on stdin, fetches the file with each, checks the hash. */
export async function filesWorkerMain(): Promise<void> {
  const spec = JSON.parse(process.env.TCPCHAT_BENCH_FILES!) as WorkerSpec;
  const conns: FileConn[] = [];
  for (const u of spec.users) {
    const c = await FileConn.open(spec.port);
    await c.ok({ t: "login", user: u, pass: spec.pass });
    conns.push(c);
  }
  console.log(JSON.stringify({ ready: true }));
  for await (const _line of console) break; // "go"
  const startMs = performance.timeOrigin + performance.now();
  let bytes = 0;
  const results = await Promise.all(
    conns.map(async (c) => {
      const h = new Bun.CryptoHasher("sha256");
      for (let off = 0; off < spec.size; off += spec.window * spec.chunk) {
        const offs: number[] = [];
        for (let k = 0; k < spec.window && off + k * spec.chunk < spec.size; k++) offs.push(off + k * spec.chunk);
        const rs = await Promise.all(offs.map((o) => c.ok({ t: "download", mid: spec.mid, offset: o, len: spec.chunk })));
        for (const r of rs) {
          const d = r.data as Uint8Array;
          h.update(d);
          bytes += d.length;
        }
      }
      return h.digest("hex") === spec.sha256;
    }),
  );
  const endMs = performance.timeOrigin + performance.now();
  for (const c of conns) c.close();
  const out: WorkerResult = { ok: results.filter(Boolean).length, bad: results.filter((x) => !x).length, bytes, startMs, endMs };
  console.log(JSON.stringify(out));
  process.exit(0);
}

export interface FilesReport {
  members: number;
  sizeBytes: number;
  chunkBytes: number;
  window: number;
  uploadMs: number;
  uploadMiBps: number;
  /** From "go" until the last member had the whole file. */
  downloadMs: number;
  downloadMiBps: number;
  /** Members whose bytes had the file's SHA-256 (all of them, or the run fails). */
  verified: number;
  serverCpuSec: number;
  /** Bytes sent per server CPU-second, MiB. */
  mibPerCpuSec: number;
  rssStartMiB: number;
  rssPeakMiB: number;
}

export interface FilesOptions {
  port: number;
  pid: number;
  members: number;
  size: number;
  workers: number;
  window: number;
  chunk: number;
  /** The command that runs this file as a downloader. */
  workerCmd: string[];
  cwd: string;
  log: (s: string) => void;
  cpuSeconds: (pid: number) => number;
  /** Processes to end on a signal (run.ts's tracking). */
  track: (p: ReturnType<typeof Bun.spawn>) => void;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

const PASS = "bench-files-pass";

/** The files case against a running server (started with the abuse limits off and a cheap hash). */
export async function runFiles(o: FilesOptions): Promise<FilesReport> {
  const owner = await FileConn.open(o.port);
  await owner.ok({ t: "register", user: "fowner", pass: PASS });
  await owner.ok({ t: "login", user: "fowner", pass: PASS });
  await owner.ok({ t: "create", group: "files" });
  const users = Array.from({ length: o.members }, (_, i) => `fm${i}`);
  // Register and join, 50 at a time.
  for (let i = 0; i < users.length; i += 50)
    await Promise.all(
      users.slice(i, i + 50).map(async (u) => {
        const c = await FileConn.open(o.port);
        await c.ok({ t: "register", user: u, pass: PASS });
        await c.ok({ t: "login", user: u, pass: PASS });
        await c.ok({ t: "join", group: "files" });
        c.close();
      }),
    );
  const data = new Uint8Array(o.size);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const sha256 = new Bun.CryptoHasher("sha256").update(data).digest("hex");
  const t0 = performance.now();
  const up = await owner.ok({ t: "upload", size: data.length, sha256 });
  for (let off = up.offset as number; off < data.length; off += o.chunk)
    await owner.ok({ t: "chunk", upload: up.upload, offset: off, data: data.subarray(off, off + o.chunk) });
  const uploadMs = performance.now() - t0;
  const sent = await owner.ok({ t: "send", group: "files", text: "the file", file: { upload: up.upload, name: "bench.bin", type: "application/octet-stream" } });

  // The downloaders: each its share of the members, logged in before the clock starts.
  const per = Math.ceil(users.length / o.workers);
  const procs = Array.from({ length: o.workers }, (_, w) => {
    const spec: WorkerSpec = { port: o.port, users: users.slice(w * per, (w + 1) * per), pass: PASS, mid: sent.mid as number, size: o.size, sha256, window: o.window, chunk: o.chunk };
    const p = Bun.spawn(o.workerCmd, {
      cwd: o.cwd,
      env: { ...process.env, TCPCHAT_BENCH_FILES: JSON.stringify(spec) },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    o.track(p);
    return p;
  });
  const lines = procs.map((p) => {
    const reader = p.stdout.getReader();
    let buf = "";
    return async (): Promise<Msg> => {
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return JSON.parse(line) as Msg;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("a files downloader exited early");
        buf += new TextDecoder().decode(value);
      }
    };
  });
  for (const next of lines) await next(); // ready
  Bun.gc(true);
  const rssStart = rssMiB(o.pid);
  let rssPeak = rssStart;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      rssPeak = Math.max(rssPeak, rssMiB(o.pid));
      await Bun.sleep(20);
    }
  })();
  const cpu0 = o.cpuSeconds(o.pid);
  const go = performance.timeOrigin + performance.now();
  for (const p of procs) {
    p.stdin.write("go\n");
    p.stdin.flush();
  }
  const results = (await Promise.all(lines.map((next) => next()))) as unknown as WorkerResult[];
  const cpu = o.cpuSeconds(o.pid) - cpu0;
  sampling = false;
  await sampler;
  await Promise.all(procs.map((p) => p.exited));
  owner.close();
  const end = Math.max(...results.map((r) => r.endMs));
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  const downloadMs = end - go;
  const MiB = 1024 * 1024;
  return {
    members: o.members,
    sizeBytes: o.size,
    chunkBytes: o.chunk,
    window: o.window,
    uploadMs,
    uploadMiBps: o.size / MiB / (uploadMs / 1000),
    downloadMs,
    downloadMiBps: bytes / MiB / (downloadMs / 1000),
    verified: results.reduce((a, r) => a + r.ok, 0),
    serverCpuSec: cpu,
    mibPerCpuSec: bytes / MiB / cpu,
    rssStartMiB: rssStart,
    rssPeakMiB: rssPeak,
  };
}

if (import.meta.main) await filesWorkerMain();
