// Messages between the bench coordinator (run.ts) and its load-generator workers (worker.ts).

export interface ConnSpec {
  /** Global index: the sender id carried in every message's stamp (its cid, or the end of its text). */
  idx: number;
  user: string;
  group?: string;
  /** Direct-message addressee (tcpchat only); otherwise sends go to `group`. */
  toUser?: string;
  sender: boolean;
  register: boolean;
  /** Indices of the senders whose messages this connection must receive. */
  hears: number[];
  /** Stops reading during the run (the stuck-member scenario); its latencies are not in the histogram. */
  stuck?: boolean;
  /** Cluster runs: the node it connects to (an index into the setup's `ports`); 0 when absent. */
  node?: number;
  /** Cluster runs: it hears a sender connected to another node; its latencies also go into the cross-node histogram. */
  cross?: boolean;
}

export interface RunSpec {
  paced: boolean;
  /** Paced: messages per second from this worker. */
  rate: number;
  /** Unpaced: messages in flight per sender (sent, not yet received by every recipient). */
  window: number;
  /** Text bytes per message. */
  size: number;
  /**
   * Whether sends carry a `cid` (`--cid`). With one, the stamp "<sender>.<seq>.<stampUs>" is the
   * cid; without, it is the end of the text (whose total size stays `size`).
   */
  cid: boolean;
  /** Pick the sending connection at random (many-groups scenario). */
  random: boolean;
  /** Messages stamped in [from, to) (coordinator clock, µs) are measured. */
  measureFromUs: number;
  measureToUs: number;
}

export type ToWorker =
  | { cmd: "clock"; id: number }
  | { cmd: "offset"; ms: number }
  | { cmd: "setup"; port: number; host: string; conns: ConnSpec[]; pass: string; relay: boolean; ports?: number[] }
  | { cmd: "tokens"; port: number; host: string; users: string[]; pass: string }
  | { cmd: "idle"; port: number; host: string; users: Array<{ user: string; token: string }>; count: number }
  | { cmd: "logins"; port: number; host: string; users: string[]; pass: string; ms: number; concurrency: number }
  | { cmd: "start"; run: RunSpec }
  | { cmd: "credit"; c: Array<[number, number]> }
  | { cmd: "stop" }
  | { cmd: "unstick" }
  | { cmd: "final"; sent: Array<[number, number]>; drainMs: number }
  | { cmd: "exit" };

export interface WorkerResult {
  cmd: "result";
  hist: { counts: number[]; total: number; max: number };
  /** The same, for connections marked `cross` only. */
  crossHist: { counts: number[]; total: number; max: number };
  lastMember: Array<[number, number]>;
  received: number;
  receivedInWindow: number;
  sentInWindow: number;
  dups: number;
  lost: number;
  errors: number;
  cpuUs: number;
  closed: number;
  /** Deliveries to stuck connections (after they read again). */
  stuckReceived: number;
}

export type FromWorker =
  | { cmd: "hello" }
  | { cmd: "ready" }
  | { cmd: "clock"; id: number; t: number }
  | { cmd: "progress"; p: Array<[number, number]> }
  | { cmd: "sent"; sent: Array<[number, number]> }
  | { cmd: "tokens"; tokens: Array<{ user: string; token: string }> }
  | { cmd: "idle"; ms: number; open: number }
  | { cmd: "logins"; n: number }
  | WorkerResult
  | { cmd: "fail"; error: string };
