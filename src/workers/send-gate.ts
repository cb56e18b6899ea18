// One gate per process in front of every Mailjet call, shared by all consumers:
// - an outbound rate limit (recipients per second, a token bucket),
// - a pause after a 429, for Retry-After or an exponential backoff, which slows every consumer, not
//   only the one that saw it,
// - a stop after a 401 (bad or suspended keys): nothing is sent, /readyz fails, and one probe call
//   is let through after a growing delay, so fixed keys (or a Mailjet hiccup) resume sending.

export interface SendGateOptions {
  /** Recipients per second; 0 = unlimited. */
  ratePerSecond: number;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface GateState {
  /** Set while sending is stopped on a 401. */
  blocked: string | undefined;
  /** When the next probe call after a 401 may go (ms since epoch). */
  blockedUntil: number | undefined;
  /** When the 429 pause ends (ms since epoch). */
  pausedUntil: number | undefined;
}

export interface SendGate {
  /** Waits until a call with `recipients` may go. Resolves false when the gate was closed meanwhile. */
  acquire(recipients: number): Promise<boolean>;
  /** Mailjet answered 429: pause every consumer. Returns the pause in ms. */
  throttled(retryAfterMs: number | undefined): number;
  /** Mailjet answered 401: stop sending. Returns when the next probe may go (ms since epoch). */
  unauthorized(reason: string): number;
  /** A call got a real answer: 429 streak and 401 block end. */
  succeeded(): void;
  state(): GateState;
  close(): void;
}

const MAX_THROTTLE_MS = 60_000;
const FIRST_PROBE_MS = 30_000;
const MAX_PROBE_MS = 15 * 60_000;
const POLL_MS = 250;

export function createSendGate({ ratePerSecond, now = Date.now, random = Math.random, sleep }: SendGateOptions): SendGate {
  let closed = false;
  let pausedUntil = 0;
  let throttleStreak = 0;
  let blocked: string | undefined;
  let blockedUntil = 0;
  let blockStreak = 0;
  let probing = false;
  // Token bucket: at most one second's worth of sending at once, but always room for one full call.
  const capacity = Math.max(ratePerSecond, 50);
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
    tokens = Math.min(capacity, tokens + ((at - refilledAt) / 1000) * ratePerSecond);
    refilledAt = at;
  };

  return {
    async acquire(recipients) {
      for (;;) {
        if (closed) {
          return false;
        }
        const at = now();
        if (blocked !== undefined) {
          // While blocked only one probe call goes, once its time has come.
          if (at >= blockedUntil && !probing) {
            probing = true;
            return true;
          }
          await wait(Math.min(POLL_MS * 4, Math.max(POLL_MS, blockedUntil - at)));
          continue;
        }
        if (at < pausedUntil) {
          await wait(Math.min(pausedUntil - at, POLL_MS * 4));
          continue;
        }
        if (ratePerSecond <= 0) {
          return true;
        }
        refill();
        const needed = Math.min(recipients, capacity);
        if (tokens >= needed) {
          tokens -= needed;
          return true;
        }
        await wait(Math.ceil(((needed - tokens) / ratePerSecond) * 1000));
      }
    },
    throttled(retryAfterMs) {
      throttleStreak += 1;
      const backoff = Math.min(MAX_THROTTLE_MS, 1000 * 2 ** (throttleStreak - 1)) * (0.75 + random() / 2);
      const pause = Math.min(MAX_THROTTLE_MS * 5, Math.max(retryAfterMs ?? 0, Math.round(backoff)));
      pausedUntil = Math.max(pausedUntil, now() + pause);
      return pause;
    },
    unauthorized(reason) {
      probing = false;
      blocked = reason;
      blockStreak += 1;
      blockedUntil = now() + Math.min(MAX_PROBE_MS, FIRST_PROBE_MS * 2 ** (blockStreak - 1));
      return blockedUntil;
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
