// The throttles of login, passwd and register (PROTOCOL.md §3.2), in one place.
//
// - Password checks back off per (user, address) and per address, never per user
//   alone: a stranger's failures can slow the stranger, not lock the user out. An
//   attempt counts from when it starts, so guesses sent at once are counted too.
// - Password checks in progress at once are capped per (user, address) and per
//   address, never per user alone: checks for a user from elsewhere cannot keep the
//   user's own check "already in progress". They run in a bounded pool (cores - 1 at
//   a time, `--hash-queue` waiting), where one address holds at most a share of the
//   waiting places (`waitShare`); registrations have their own pool (1 at a time,
//   `--register-queue` waiting), so a registration flood delays a login by one
//   registration's hash at most. A full queue answers `rate_limited` at once.
// - Token logins are never refused for failures, and a bogus token touches no
//   password backoff (a cheap bogus token must not slow the password logins of
//   everyone behind its address). Tokens are 256-bit: what bounds the cost of
//   bogus ones is the request rate and the refusal count (src/core/chat.ts).
//   Successful logins per user per minute and logged-in connections per user are
//   capped (presence storms).
// Every window is measured with performance.now() (a monotonic clock).
import { availableParallelism } from "node:os";
import type { Config } from "../config.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Backoff, HashPool, InFlight, KeyedBuckets } from "./limits.ts";

/**
 * Password checks (login, passwd) hashing at once: one core is left to the event loop, so
 * that a guessing flood does not slow everyone else's requests (with 2 slots on 2 cores, a
 * bystander's ping p99 went to 130 ms under bench/attack.ts 5). Registrations hash one at a time.
 */
export const PASSWORD_SLOTS = Math.max(1, availableParallelism() - 1);
export const REGISTER_SLOTS = 1;

/** Waiting places of the password pool one address may hold: enough for a few users behind a NAT. */
export const waitShare = (hashQueue: number) => Math.max(2, Math.floor(hashQueue / 8));

const limited = (msg: string) => new ProtocolError("rate_limited", msg);
const secs = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export class LoginGuard {
  /** Failed password checks per (user, address) and per address. */
  readonly userAddrFails: Backoff;
  readonly addrFails: Backoff;
  /** Password checks in progress per (user, address), and per address. */
  private readonly checksPerPair: InFlight;
  private readonly checksPerAddr: InFlight;
  readonly passwords: HashPool;
  readonly registrations: HashPool;
  private readonly registered: KeyedBuckets;
  private readonly logins: KeyedBuckets;

  constructor(private readonly config: Config) {
    const maxMs = config.loginBackoffMax * 1000;
    // One failure is forgiven per longest backoff: a key that stops failing recovers its free attempts.
    this.userAddrFails = new Backoff(config.loginFree, maxMs, maxMs);
    this.addrFails = new Backoff(config.loginFailsAddr, maxMs, maxMs);
    // Per (user, address), not per user: the cap on one account's guesses in flight is the per-address
    // cap and the (user, address) backoff, which counts an attempt from its start.
    this.checksPerPair = new InFlight(config.loginConcurrentUser);
    this.checksPerAddr = new InFlight(config.loginConcurrentAddr);
    this.passwords = new HashPool(
      PASSWORD_SLOTS,
      config.hashQueue,
      "the server is busy checking passwords: retry in a moment",
      waitShare(config.hashQueue),
    );
    this.registrations = new HashPool(REGISTER_SLOTS, config.registerQueue, "the server is busy registering users: retry in a moment");
    this.registered = new KeyedBuckets(config.registerPerAddr, 3600_000);
    this.logins = new KeyedBuckets(config.loginsPerUser, 60_000);
  }

  /**
   * Runs `check` (a password check of `user` from `addr`, true if right) under the
   * password throttles, or throws `rate_limited` without running it. A right answer
   * clears the (user, address) count.
   */
  async password(user: string, addr: string, check: () => Promise<boolean>): Promise<boolean> {
    const now = performance.now();
    const pair = `${user}\u0000${addr}`;
    const wait = Math.max(this.userAddrFails.waitFor(pair, now), this.addrFails.waitFor(addr, now));
    if (wait > 0) throw limited(`too many failed password checks: retry in ${secs(wait)} s`);
    if (!this.checksPerPair.acquire(pair))
      throw limited(`password checks for "${user}" from this address already in progress: retry in a moment`);
    if (!this.checksPerAddr.acquire(addr)) {
      this.checksPerPair.release(pair);
      throw limited("password checks from this address already in progress: retry in a moment");
    }
    // Refused before it counts as an attempt when the address's share of the waiting places is taken.
    if (!this.passwords.admits(addr)) {
      this.checksPerPair.release(pair);
      this.checksPerAddr.release(addr);
      throw limited("the server is busy checking passwords: retry in a moment");
    }
    this.userAddrFails.begin(pair, now);
    this.addrFails.begin(addr, now);
    let ok: boolean;
    try {
      ok = await this.passwords.run(check, addr);
    } catch (e) {
      const end = performance.now();
      this.userAddrFails.cancel(pair, end);
      this.addrFails.cancel(addr, end);
      throw e;
    } finally {
      this.checksPerPair.release(pair);
      this.checksPerAddr.release(addr);
    }
    const end = performance.now();
    if (ok) {
      this.userAddrFails.succeeded(pair, end);
      this.addrFails.cancel(addr, end);
    } else {
      this.userAddrFails.failed(pair, end);
      this.addrFails.failed(addr, end);
    }
    return ok;
  }

  /**
   * Whether `user`, with `sessions` connections logged in, may log in once more; throws
   * `rate_limited` if not. `take`: count this login (it succeeded).
   */
  admit(user: string, sessions: number, take: boolean): void {
    const { maxSessionsPerUser, loginsPerUser } = this.config;
    if (sessions >= maxSessionsPerUser)
      throw limited(`"${user}" is logged in on ${sessions} connections, the most allowed: close one first`);
    const now = performance.now();
    const wait = this.logins.waitFor(user, now);
    if (wait > 0 || (take && !this.logins.take(user, now)))
      throw limited(`more than ${loginsPerUser} logins of "${user}" in a minute: retry in ${secs(wait || 1000)} s`);
  }

  /** Runs `hash` (a new user's password hash) under the registration throttles, or throws `rate_limited`. */
  async register<T>(addr: string, hash: () => Promise<T>): Promise<T> {
    const now = performance.now();
    if (!this.checksPerAddr.acquire(addr))
      throw limited("password checks from this address already in progress: retry in a moment");
    try {
      if (!this.registered.take(addr, now)) {
        const wait = this.registered.waitFor(addr, now);
        throw limited(`more than ${this.config.registerPerAddr} registrations from this address in an hour: retry in ${secs(wait)} s`);
      }
      try {
        return await this.registrations.run(hash);
      } catch (e) {
        this.registered.refund(addr); // refused (queue full) or failed: no account was made
        throw e;
      }
    } finally {
      this.checksPerAddr.release(addr);
    }
  }

  /** Forgets what has run out (from the core's sweep, once a second). */
  prune(now: number): void {
    this.userAddrFails.prune(now);
    this.addrFails.prune(now);
    this.registered.prune(now);
    this.logins.prune(now);
  }
}
