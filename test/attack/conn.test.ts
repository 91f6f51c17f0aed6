// Hardening findings 1, 2, 4, 7 and 13 reproduced against the real server process with the
// shipped limits (only a few timeouts shortened, said per test), each asserting the bound
// that the server now keeps: memory, time to close, a healthy bystander's round trip.
// The bounds are generous (these machines are shared and noisy): each attack cost the old
// server gigabytes, seconds, or forever, far outside them.
import { afterAll, describe, expect, test } from "bun:test";
import { Bystander, Conn, closedByServer, MiB, openMany, procStats, Sampler, startAttackServer } from "../helpers/attack.ts";
import { TEST_ARGS } from "../helpers/server.ts";
import { frameOf } from "../helpers/wire.ts";

const HASH = TEST_ARGS.slice(0, 4); // cheap argon2; every limit as shipped

/** A 4-byte length header announcing `n` bytes. */
function header(n: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, n);
  return h;
}

/** A msgpack map {t:"ping", x: [[[...]]]}: `depth` nested one-element arrays, `n` bytes in all. */
function deepArrays(n: number): Uint8Array {
  const b = new Uint8Array(n);
  const head = [0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa1, 0x78];
  b.set(head);
  b.fill(0x91, head.length); // fixarray of 1, again and again
  return b;
}

async function waitUntil(pred: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(50);
  }
  return true;
}

/** `user`, logged in, in group "big" holding 30 texts of 60 KB (a page of them is ~1.8 MB), no longer reading. */
async function pagesToAskFor(port: number, user: string): Promise<Conn> {
  const a = await Conn.open(port);
  await a.ok({ t: "register", user, pass: "password1" });
  await a.ok({ t: "login", user, pass: "password1" });
  await a.ok({ t: "create", group: "big" });
  for (let i = 0; i < 30; i++) await a.ok({ t: "send", group: "big", text: "x".repeat(60_000), cid: `c${i}` });
  a.pause();
  return a;
}

const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
}, 60_000);

describe("#1 clients that never read", () => {
  test("100 connections flooding pings without login or reading are closed; memory stays bounded; a bystander is served", async () => {
    const s = await startAttackServer(HASH);
    cleanup.push(() => s.stop());
    const boot = await Conn.open(s.port);
    await boot.ok({ t: "register", user: "watcher", pass: "password1" });
    boot.destroy();
    const by = await Bystander.start(s.port, "watcher", "password1", { localAddress: "127.0.9.9" });
    const sampler = new Sampler(s.pid);
    const { conns, failed } = await openMany(s.port, 100, (i) => `127.0.1.${1 + (i % 10)}`, { paused: true });
    expect(failed).toBe(0);
    const ping = frameOf({ t: "ping" });
    const burst = new Uint8Array(ping.length * 30_000); // 30k pings, 480 KB per connection
    for (let at = 0; at < burst.length; at += ping.length) burst.set(ping, at);
    for (const c of conns) c.write(burst);
    const allClosed = await waitUntil(() => closedByServer(conns) === conns.length, 20_000);
    const closed = closedByServer(conns);
    const stats = sampler.stop();
    const rtt = by.window();
    await by.stop();
    for (const c of conns) c.destroy();
    console.log(`#1 flood: ${closed}/100 closed, RSS ${stats.startRssMiB.toFixed(0)} -> peak ${stats.peakRssMiB.toFixed(0)} MiB, bystander p99 ${rtt.p99.toFixed(1)} ms`);
    // Before: 1.7 GB at 35 s (peak 2.66 GB) and all still open at 95 s.
    expect(allClosed).toBe(true);
    expect(stats.peakRssMiB - stats.startRssMiB).toBeLessThan(200);
    expect(rtt.timeouts).toBe(0);
    expect(rtt.p99).toBeLessThan(1000);
  }, 60_000);

  test("a client asking for large pages faster than it reads is closed: past --max-queue, or unread past --write-timeout", async () => {
    const s = await startAttackServer([...HASH, "--write-timeout", "5"]);
    cleanup.push(() => s.stop());
    const a = await pagesToAskFor(s.port, "hoarder");
    const sampler = new Sampler(s.pid);
    // Each page is ~1.8 MB; 2000 are asked for at once and none is read.
    const ask = frameOf({ t: "history", id: 1, group: "big", limit: 500 });
    for (let i = 0; i < 2000; i++) a.write(ask);
    const closed = await waitUntil(() => closedByServer([a]) === 1, 20_000);
    const stats = sampler.stop();
    a.destroy();
    const why = /\(hoarder\): closed( as slow consumer|, nothing read for 5 s)/;
    await waitUntil(() => why.test(s.srv.output()), 5000); // the log line may come after the close
    console.log(`#1 hoarder: closed ${closed}, server RSS +${(stats.peakRssMiB - stats.startRssMiB).toFixed(0)} MiB`);
    expect(closed).toBe(true);
    // Which comes first depends on how many pages the byte rate's burst pays at once (§2.4):
    // enough to pass the queue bound, or the server stops reading it and the deadline closes it.
    expect(s.srv.output()).toMatch(why);
    // One connection holds at most --max-queue (16 MiB) of output, plus a page being built.
    expect(stats.peakRssMiB - stats.startRssMiB).toBeLessThan(120);
  }, 60_000);

  test("a client pacing large requests but never reading is not read once its output piles up, and is closed after --write-timeout", async () => {
    const s = await startAttackServer([...HASH, "--write-timeout", "3"]);
    cleanup.push(() => s.stop());
    const a = await pagesToAskFor(s.port, "trickle");
    const ask = frameOf({ t: "history", id: 1, group: "big", limit: 500 });
    const t0 = performance.now();
    let sent = 0;
    while (!(closedByServer([a]) === 1) && performance.now() - t0 < 20_000) {
      a.write(ask); // one ~1.8 MB page asked for every 50 ms: under the request rate, over any reading
      sent++;
      await Bun.sleep(50);
    }
    const secs = (performance.now() - t0) / 1000;
    const closed = closedByServer([a]) === 1;
    a.destroy();
    console.log(`#1 trickle: closed after ${secs.toFixed(1)} s and ${sent} requests`);
    expect(closed).toBe(true);
    await waitUntil(() => s.srv.output().includes("nothing read for 3 s"), 5000); // the log line may come after the close
    expect(s.srv.output()).toContain("nothing read for 3 s");
    // Not read while its output piled up: it was closed by the deadline, not by the queue bound.
    expect(s.srv.output()).not.toContain("closed as slow consumer");
  }, 60_000);
});

describe("#2 and #7 memory and CPU before anything is checked", () => {
  test("300 unauthenticated connections announcing 4 MiB get too_large at the header; nothing is allocated for them", async () => {
    const s = await startAttackServer(HASH);
    cleanup.push(() => s.stop());
    const sampler = new Sampler(s.pid);
    const { conns, failed } = await openMany(s.port, 300, (i) => `127.0.2.${1 + (i % 10)}`);
    expect(failed).toBe(0);
    const body = new Uint8Array(4 * MiB);
    // 250 send the whole 4 MiB (they may see a reset before the bye: the server refuses to read
    // it, PROTOCOL.md §4); 50 send only the header and read their answer.
    for (const [i, c] of conns.entries()) {
      c.write(header(4 * MiB));
      if (i >= 50) c.write(body);
    }
    const allClosed = await waitUntil(() => closedByServer(conns) === conns.length, 20_000);
    const stats = sampler.stop();
    // (the kernel may know of the close before this process has read what came before it)
    await waitUntil(() => conns.slice(0, 50).every((c) => c.closed), 5000);
    const byes = conns.slice(0, 50).filter((c) => c.bye === "too_large").length;
    for (const c of conns) c.destroy();
    console.log(`#2: all closed ${allClosed}; ${byes}/50 header-only got bye too_large; RSS ${stats.startRssMiB.toFixed(0)} -> peak ${stats.peakRssMiB.toFixed(0)} MiB`);
    // Before: RSS 48 MB -> 1.26 GB in 4.7 s.
    expect(allClosed).toBe(true);
    expect(byes).toBe(50);
    expect(stats.peakRssMiB - stats.startRssMiB).toBeLessThan(100);
  }, 60_000);

  test("300 connections each sending most of a 60 KiB frame before login hold only what arrived", async () => {
    const s = await startAttackServer(HASH);
    cleanup.push(() => s.stop());
    const before = procStats(s.pid).rssMiB;
    const { conns, failed } = await openMany(s.port, 300, (i) => `127.0.3.${1 + (i % 10)}`);
    expect(failed).toBe(0);
    for (const c of conns) {
      c.write(header(60 * 1024));
      c.write(new Uint8Array(100)); // and then nothing more
    }
    await Bun.sleep(1500);
    const after = procStats(s.pid).rssMiB;
    const open = conns.length - closedByServer(conns);
    for (const c of conns) c.destroy();
    console.log(`#2 partial frames: RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB with ${open} connections holding one`);
    expect(open).toBe(300); // legitimate so far: within the limit, still arriving
    expect(after - before).toBeLessThan(60);
  }, 60_000);

  test("4 MiB frames of nested arrays over the byte rate are skipped unread: little CPU, the bystander is served, the sender is closed", async () => {
    const s = await startAttackServer(HASH);
    cleanup.push(() => s.stop());
    const a = await Conn.open(s.port, { localAddress: "127.0.4.1" });
    await a.ok({ t: "register", user: "nester", pass: "password1" });
    await a.ok({ t: "register", user: "watcher", pass: "password1" });
    await a.ok({ t: "login", user: "nester", pass: "password1" });
    const by = await Bystander.start(s.port, "watcher", "password1", { localAddress: "127.0.9.9" });
    const frame = deepArrays(4 * MiB - 16);
    const sampler = new Sampler(s.pid);
    // 150 frames of 4 MiB (600 MB) in a few seconds: ~19x the byte rate's burst.
    for (let i = 0; i < 150; i++) {
      a.write(header(frame.length));
      a.write(frame);
    }
    const closed = await waitUntil(() => closedByServer([a]) === 1, 30_000);
    const stats = sampler.stop();
    const rtt = by.window();
    await by.stop();
    const refused = a.codes.get("rate_limited") ?? 0;
    const answered = a.replies;
    a.destroy();
    console.log(`#7: ${answered} replies (${refused} rate_limited), bye ${a.bye}, server CPU ${stats.cpuSec.toFixed(2)} s, bystander p99 ${rtt.p99.toFixed(1)} ms`);
    // Before: 57 ms of CPU per frame, fully decoded, and another client's ping took 90 ms.
    // The frames within the rate are decoded (bad_frame: nested too deep, found by the pre-scan),
    // the rest are skipped as they arrive; a sender that keeps going is closed (its bye may be
    // lost to a reset, as it is still writing when the server closes).
    expect(closed).toBe(true);
    await waitUntil(() => s.srv.output().includes("(nester): closed, kept exceeding its limits"), 5000);
    expect(s.srv.output()).toContain("(nester): closed, kept exceeding its limits");
    expect(refused).toBeGreaterThan(0);
    expect(stats.cpuSec).toBeLessThan(5);
    expect(rtt.p99).toBeLessThan(1000);
  }, 60_000);
});

describe("#4 and #13 connections", () => {
  test("TLS connections that never start the handshake are counted per address and closed after the handshake timeout", async () => {
    const s = await startAttackServer([...HASH, "--tls-handshake-timeout", "2", "--max-conns-per-addr", "100"], { tls: true });
    cleanup.push(() => s.stop());
    // 100 plain TCP connections from one address to the TLS port, saying nothing...
    const { conns, failed } = await openMany(s.port, 100, () => "127.0.5.1");
    expect(failed).toBe(0);
    // ...and 50 more: beyond 100 from one address, refused at once (counted at accept, before
    // any handshake; a refused one may be reset before its connect completes).
    const more = await openMany(s.port, 50, () => "127.0.5.1", {}, 10);
    const early = await waitUntil(() => closedByServer(more.conns) === more.conns.length, 1500);
    const closedEarly = more.failed + closedByServer(more.conns);
    const stillOpen = conns.length - closedByServer(conns);
    // The first 100: closed by the handshake deadline.
    const all = await waitUntil(() => closedByServer(conns) === 100, 10_000);
    for (const c of [...conns, ...more.conns]) c.destroy();
    // A real TLS client is served meanwhile and after.
    const ok = await Conn.open(s.port, { tls: s.cert!, localAddress: "127.0.5.2" });
    const pong = await ok.request({ t: "ping" });
    ok.destroy();
    console.log(`#4: ${closedEarly} of the 50 extra refused at once; the first 100 closed by the deadline: ${all}`);
    // Before: not counted per address, never timed out (3,000 still open after 180 s).
    expect(early).toBe(true);
    expect(closedEarly).toBe(50);
    expect(stillOpen).toBe(100);
    expect(all).toBe(true);
    expect(pong.t).toBe("pong");
  }, 60_000);

  test("--max-conns caps connections from all addresses together", async () => {
    const s = await startAttackServer([...HASH, "--max-conns", "40"]);
    cleanup.push(() => s.stop());
    const { conns, failed } = await openMany(s.port, 60, (i) => `127.0.6.${1 + i}`, {}, 1);
    expect(failed).toBe(0);
    await waitUntil(() => closedByServer(conns) >= 20, 5000);
    // (the kernel may know of a close before this process has read the bye that came before it)
    await waitUntil(() => conns.filter((c) => c.bye === "too_many_connections").length >= 20, 5000);
    const refused = conns.filter((c) => c.bye === "too_many_connections").length;
    const closed = closedByServer(conns);
    // Those kept are served.
    const kept = conns.find((c) => !c.closed && c.bye === undefined)!;
    const pong = await kept.request({ t: "ping" });
    for (const c of conns) c.destroy();
    console.log(`#13: 60 connections from 60 addresses, --max-conns 40: ${refused} refused with bye`);
    expect(refused).toBe(20);
    expect(closed).toBe(20);
    expect(pong.t).toBe("pong");
  }, 60_000);
});
