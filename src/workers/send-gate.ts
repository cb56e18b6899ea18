// One gate per process in front of every Mailjet call, shared by all consumers:
// - an outbound rate limit (Mailjet calls per second, a token bucket: Mailjet counts calls per API key),
// - a pause after a 429, for Retry-After or an exponential backoff, which slows every consumer, not
//   only the one that saw it,
// - a stop after a 401 (bad or suspended keys): nothing is sent, /readyz fails, and one probe call
//   is let through after a growing delay, so fixed keys (or a Mailjet hiccup) resume sending.
// A consumer passes the gate immediately before each call, after its other waits (see consumer.ts).
// Its clock is monotonic: on the wall clock, a step back by an hour held every call for that hour
// (the token bucket refilled by a negative time, a pause ended an hour later).
import { backoffMs } from '../domain/retry-policy.js';

export interface SendGateOptions {
  /** Mailjet calls per second; 0 = unlimited. */
  callsPerSecond: number;
  /** In ms, monotonic (performance.now()). */
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface GateState {
  /** Set while sending is stopped on a 401. */
  blocked: string | undefined;
  /** When the next probe call after a 401 may go (on the gate's clock). */
  blockedUntil: number | undefined;
  /** When the 429 pause ends (on the gate's clock). */
  pausedUntil: number | undefined;
}

export interface SendGate {
  /** Waits until a call may go. Resolves false when the gate was closed meanwhile. */
  acquire(): Promise<boolean>;
  /**
   * The same for a consumer holding leased jobs, which must not sit on them: waits at most
   * `maxWaitMs` ('later' when the call may not go by then; nothing is taken from the budget), and
   * answers 'stopped' at once while sending is stopped on a 401 and this call is not the probe.
   */
  acquireWithin(maxWaitMs: number): Promise<'acquired' | 'later' | 'stopped' | 'closed'>;
  /** How long, in ms, no call may go (a 429 pause, a 401 stop until its probe is due or back); 0 when calls may go. */
  heldBackForMs(): number;
  /** Mailjet answered 429: pause every consumer. Returns the pause in ms. */
  throttled(retryAfterMs: number | undefined): number;
  /** Mailjet answered 401: stop sending. Returns how long until the next probe may go, in ms. */
  unauthorized(reason: string): number;
  /** A call got a real answer: 429 streak and 401 block end. */
  succeeded(): void;
  /**
   * A call got no answer about the keys (a 429, a 5xx, a timeout, a network error): if it was the probe
   * of a 401 stop, the stop stays and the next probe goes after the same wait. Otherwise nothing changes.
   */
  inconclusive(): void;
  state(): GateState;
  close(): void;
}

/** The pause after a 429 when Mailjet gives no Retry-After, growing while 429s repeat. */
const THROTTLE_BACKOFF = { baseMs: 1_000, factor: 2, maxMs: 60_000, jitter: 0.25 };
/** No pause after a 429 is longer, whatever its Retry-After says. */
const MAX_PAUSE_MS = 5 * 60_000;
/** When the probe call goes after a 401, growing while the key stays refused. */
const PROBE_BACKOFF = { baseMs: 30_000, factor: 2, maxMs: 15 * 60_000, jitter: 0 };
const POLL_MS = 250;

export function createSendGate({ callsPerSecond, now = () => performance.now(), random = Math.random, sleep }: SendGateOptions): SendGate {
  let closed = false;
  let pausedUntil = 0;
  let throttleStreak = 0;
  let blocked: string | undefined;
  let blockedUntil = 0;
  let blockStreak = 0;
  let probing = false;
  // Token bucket: at most one second's worth of calls at once (Mailjet's own limit is stated per
  // 10 seconds, so a one-second burst stays within it), and always room for one call.
  const capacity = Math.max(callsPerSecond, 1);
  let tokens = capacity;
  let refilledAt = now();
  // Pending sleeps, so that close() can end them at once.
  const sleepers = new Map<NodeJS.Timeout, () => void>();
  const wait =
    sleep ??
    ((ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          sleepers.delete(timer);
          resolve();
        }, ms);
        sleepers.set(timer, resolve);
      }));

  const refill = () => {
    const at = now();
    tokens = Math.min(capacity, tokens + ((at - refilledAt) / 1000) * callsPerSecond);
    refilledAt = at;
  };

  async function pass(maxWaitMs: number, waitWhileStopped: boolean): Promise<'acquired' | 'later' | 'stopped' | 'closed'> {
    const deadline = now() + maxWaitMs;
    // Waits `ms`, at most until the deadline; false once the deadline has passed (the answer is then 'later').
    const waitUntilDeadline = async (ms: number): Promise<boolean> => {
      const left = deadline - now();
      if (left <= 0) {
        return false;
      }
      await wait(Math.min(ms, left));
      return true;
    };
    for (;;) {
      if (closed) {
        return 'closed';
      }
      const at = now();
      if (blocked !== undefined) {
        // While blocked only one probe call goes, once its time has come.
        if (at >= blockedUntil && !probing) {
          probing = true;
          return 'acquired';
        }
        if (!waitWhileStopped) {
          return 'stopped';
        }
        if (!(await waitUntilDeadline(Math.min(POLL_MS * 4, Math.max(POLL_MS, blockedUntil - at))))) {
          return 'later';
        }
        continue;
      }
      if (at < pausedUntil) {
        if (!(await waitUntilDeadline(Math.min(pausedUntil - at, POLL_MS * 4)))) {
          return 'later';
        }
        continue;
      }
      if (callsPerSecond <= 0) {
        return 'acquired';
      }
      refill();
      if (tokens >= 1) {
        tokens -= 1;
        return 'acquired';
      }
      if (!(await waitUntilDeadline(Math.ceil(((1 - tokens) / callsPerSecond) * 1000)))) {
        return 'later';
      }
    }
  }

  return {
    async acquire() {
      return (await pass(Infinity, true)) === 'acquired';
    },
    acquireWithin: (maxWaitMs) => pass(maxWaitMs, false),
    heldBackForMs() {
      const at = now();
      if (blocked !== undefined) {
        // Once the probe is due, one call goes; while it is out the others hear back within a poll.
        return at < blockedUntil ? blockedUntil - at : probing ? POLL_MS * 4 : 0;
      }
      return Math.max(0, pausedUntil - at);
    },
    throttled(retryAfterMs) {
      const at = now();
      // No call passes during a pause: a 429 that lands in one answers a call made before it (the calls
      // in flight get theirs together), so it does not lengthen the backoff, only honours its Retry-After.
      if (at >= pausedUntil) {
        throttleStreak += 1;
      }
      const pause = Math.min(MAX_PAUSE_MS, Math.max(retryAfterMs ?? 0, backoffMs(THROTTLE_BACKOFF, throttleStreak, random)));
      pausedUntil = Math.max(pausedUntil, at + pause);
      return pause;
    },
    unauthorized(reason) {
      if (blocked !== undefined && !probing) {
        // A call that passed before the stop (calls in flight get their 401s together): it says no
        // more than the first did, so the first probe still goes after the shortest wait.
        return Math.max(0, blockedUntil - now());
      }
      probing = false;
      blocked = reason;
      blockStreak += 1;
      const waitMs = backoffMs(PROBE_BACKOFF, blockStreak, random);
      blockedUntil = now() + waitMs;
      return waitMs;
    },
    inconclusive() {
      if (blocked !== undefined && probing) {
        probing = false;
        blockedUntil = now() + backoffMs(PROBE_BACKOFF, blockStreak, random);
      }
    },
    succeeded() {
      throttleStreak = 0;
      probing = false;
      blocked = undefined;
      blockStreak = 0;
    },
    state() {
      const at = now();
      return {
        blocked,
        blockedUntil: blocked === undefined ? undefined : blockedUntil,
        pausedUntil: pausedUntil > at ? pausedUntil : undefined,
      };
    },
    close() {
      closed = true;
      for (const [timer, resolve] of sleepers) {
        clearTimeout(timer);
        resolve();
      }
      sleepers.clear();
    },
  };
}
