// The throttles of login, passwd and register (PROTOCOL.md §3.2), in one place.
//
// - Password checks back off per (user, address) and per address, never per user
//   alone: a stranger's failures can slow the stranger, not lock the user out. An
//   attempt counts from when it starts, so guesses sent at once are counted too.
// - Password checks in progress at once are capped per user and per address, and
//   run in a bounded pool (2 at a time, `--hash-queue` waiting); registrations
//   have their own (1 at a time, `--register-queue` waiting), so a registration
//   flood delays a login by one registration's hash at most. A full queue answers
//   `rate_limited` at once.
// - Token logins are never refused for failures: a bogus token counts against its
//   address only. Successful logins per user per minute and logged-in connections
//   per user are capped (presence storms).
// Every window is measured with performance.now() (a monotonic clock).
import type { Config } from "../config.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Backoff, HashPool, InFlight, KeyedBuckets } from "./limits.ts";

/** Password checks (login, passwd) hashing at once; registrations hash one at a time. */
export const PASSWORD_SLOTS = 2;
export const REGISTER_SLOTS = 1;

const limited = (msg: string) => new ProtocolError("rate_limited", msg);
const secs = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export class LoginGuard {
  /** Failed password checks per (user, address) and per address. */
  readonly userAddrFails: Backoff;
  readonly addrFails: Backoff;
  private readonly checksPerUser: InFlight;
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
    this.checksPerUser = new InFlight(config.loginConcurrentUser);
    this.checksPerAddr = new InFlight(config.loginConcurrentAddr);
    this.passwords = new HashPool(PASSWORD_SLOTS, config.hashQueue, "the server is busy checking passwords: retry in a moment");
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
    if (!this.checksPerUser.acquire(user)) throw limited(`password checks for "${user}" already in progress: retry in a moment`);
    if (!this.checksPerAddr.acquire(addr)) {
      this.checksPerUser.release(user);
      throw limited("password checks from this address already in progress: retry in a moment");
    }
    this.userAddrFails.begin(pair, now);
    this.addrFails.begin(addr, now);
    let ok: boolean;
    try {
      ok = await this.passwords.run(check);
    } catch (e) {
      const end = performance.now();
      this.userAddrFails.cancel(pair, end);
      this.addrFails.cancel(addr, end);
      throw e;
    } finally {
      this.checksPerUser.release(user);
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

  /** A login with a bogus token: it counts against the address (its password checks), never the user. */
  tokenFailed(addr: string): void {
    this.addrFails.fail(addr, performance.now());
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
