// The crash suite (test/helpers/crash-suite.ts) against a cluster: two nodes on one
// PostgreSQL and one nats-server (test/helpers/cluster.ts), the four users' connections
// spread over them. Odd cycles kill -9 one node under full-rate load (its users reconnect;
// the other node's users keep their connections), even cycles kill -9 both at once; the
// killed nodes start again on the same database. The same invariants as on one server,
// read from the PostgreSQL table. What differs (PROTOCOL.md §8): a survivor replays what the
// dead node committed and never announced, up to about 2 s late, so the retries that follow
// a kill of one node wait for that (settleMs).
import { SQL } from "bun";
import { type Cluster, startCluster, stopNodes } from "./helpers/cluster.ts";
import { CRASH_ARGS, crashSuite, type Row } from "./helpers/crash-suite.ts";

const text = new TextDecoder("utf-8", { fatal: true });
const str = (b: Uint8Array | null): string | null => (b === null ? null : text.decode(b));

crashSuite(async () => {
  const cluster: Cluster = await startCluster({ nodes: 2, args: CRASH_ARGS });
  const sql = new SQL({ url: cluster.db, max: 1 });
  let earlier = "";
  return {
    name: "a cluster of 2 nodes on PostgreSQL and NATS",
    nodes: cluster.nodes.length,
    port: (i) => cluster.ports()[i]!,
    async kill(nodes) {
      await Promise.all(nodes.map((i) => cluster.kill(i)));
      return nodes.map((i) => cluster.nodes[i]!.proc.signalCode as string | null);
    },
    async restart(nodes) {
      for (const i of nodes) earlier += `--- node ${i}, before its restart ---\n${cluster.nodes[i]!.output()}\n`;
      await Promise.all(nodes.map((i) => cluster.restart(i)));
    },
    stop: () => stopNodes(cluster),
    async readRows(): Promise<Row[]> {
      // A node killed after it sent a COMMIT does not end that transaction: PostgreSQL still
      // finishes it, a moment after the process is gone (seen: a batch of 481 messages that landed
      // just after the table was read, and was then rightly served by the restarted nodes). What
      // the crash left is the table once it stops changing: two looks 200 ms apart that agree.
      const look = async () => JSON.stringify(await sql`SELECT count(*) AS n, max(mid) AS m FROM messages`);
      let before = await look();
      for (let i = 0; i < 50; i++) {
        await Bun.sleep(200);
        const now = await look();
        if (now === before) break;
        before = now;
      }
      const rows = await sql`SELECT mid, ts, sender, grp, to_user, conv, cid, text, file_name, file_type, file_size, file_sha, kind, target FROM messages ORDER BY mid`;
      return rows.map((r: Record<string, any>) => ({
        mid: Number(r.mid),
        ts: Number(r.ts),
        sender: r.sender,
        grp: r.grp,
        to_user: r.to_user,
        conv: r.conv,
        cid: str(r.cid),
        text: str(r.text),
        file_name: str(r.file_name),
        file_type: str(r.file_type),
        file_size: r.file_size === null ? null : Number(r.file_size),
        file_sha: r.file_sha === null ? null : typeof r.file_sha === "string" ? r.file_sha : str(r.file_sha),
        kind: r.kind,
        target: r.target,
      }));
    },
    output: () => earlier + cluster.output(),
    pids: () => cluster.nodes.map((n) => n.proc.pid),
    // A survivor gives up on a missing commit within about 2 s of the kill (PROTOCOL.md §8), then replays.
    settleMs: Number(process.env.TCPCHAT_CRASH_SETTLE ?? 3000),
    summary() {
      const out = earlier + cluster.output();
      const replays = out.match(/replaying from the store/g)?.length ?? 0;
      const dropped = out.match(/not heard from for/g)?.length ?? 0;
      return `cluster: ${replays} replays from the store after a missed commit, ${dropped} nodes dropped as silent, in all nodes' output`;
    },
    async close() {
      await sql.close();
      await cluster.stop();
    },
  };
}, 150_000);
