// What the metrics cost the hot path (README, "Operating tcpchat"): ns per call of each kind of
// accounting the server does per message or per delivery. `bun run bench/metrics-micro.ts`.
// prom-client is not a dependency; to compare, install it outside the project and time its
// Counter.inc(), labelled inc({code}) and Histogram.observe with the same loop.
import { CoreStats } from "../src/core/stats.ts";
import { Counter, exponential, Histogram } from "../src/ops/registry.ts";

const N = 20_000_000;
let sink = 0;

function time(name: string, f: () => void): void {
  f(); // warm up (JIT)
  const t0 = Bun.nanoseconds();
  f();
  console.log(`${name.padEnd(52)} ${((Bun.nanoseconds() - t0) / N).toFixed(2)} ns/op`);
}

const st = new CoreStats();
const c = new Counter();
const h = new Histogram(exponential(0.0001, 2, 16));
const codes = ["bad_request", "rate_limited", "not_found", "forbidden"];
time("empty loop", () => {
  for (let i = 0; i < N; i++) sink += i;
});
time("stats.deliveries += 1 (a plain field)", () => {
  for (let i = 0; i < N; i++) st.deliveries += 1;
});
time("Counter.inc()", () => {
  for (let i = 0; i < N; i++) c.inc();
});
time("stats.errors[code] += 1 (by code)", () => {
  for (let i = 0; i < N; i++) {
    const k = codes[i & 3]!;
    st.errors[k] = (st.errors[k] ?? 0) + 1;
  }
});
time("Histogram.observe (16 bounds)", () => {
  for (let i = 0; i < N; i++) h.observe((i & 1023) / 1e6);
});
time("performance.now() (commit timing: 2 per batch)", () => {
  for (let i = 0; i < N; i++) sink += performance.now();
});
if (sink === 0) console.log("");
