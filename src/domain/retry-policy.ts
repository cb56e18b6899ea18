// When something that failed is tried again, pure: exponential backoff with jitter, capped, and for
// sends a bounded number of attempts. backoffMs is jetpost's one backoff formula: job retries,
// webhook retries, the 429 and 401 pauses of the send gate, the LISTEN reconnect and the worker
// loops' back-off after a failed turn all use it. `random` is injected so tests can pin the jitter.
// parseRetryAfter reads the Retry-After of Mailjet's and of webhook receivers' answers.

export interface Backoff {
  readonly baseMs: number;
  readonly factor: number;
  readonly maxMs: number;
  /** Relative spread: 0.25 draws the delay from ±25% around the exponential value. */
  readonly jitter: number;
}

export interface RetryPolicy extends Backoff {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /**
   * How long a job whose last send's outcome is unknown is looked up again while Mailjet does not
   * answer its look-ups (LOOKUP_RETRY_WINDOW_MS, counted from the first unanswered one): such a
   * look-up spends no attempt (waitForLookUp).
   */
  readonly lookUpWindowMs: number;
}

export type RetryDecision = { readonly kind: 'retry'; readonly delayMs: number; readonly runAt: Date } | { readonly kind: 'give-up' };

/** Delay before the attempt that follows `attemptsMade` failed attempts (1 = the first failed). */
export function backoffMs(policy: Backoff, attemptsMade: number, random: () => number): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, attemptsMade - 1));
  const spread = policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(policy.maxMs * (1 + policy.jitter), exponential * (1 + spread))));
}

export interface RetryInput {
  /** Attempts made so far, the one that just failed included. */
  attemptsMade: number;
  now: Date;
  random: () => number;
  /** A server's Retry-After: never retry sooner than it asks (up to the policy's maxMs). */
  retryAfterMs?: number | undefined;
}

/**
 * The backoff, or the server's Retry-After when that is longer, but never longer than the policy's
 * longest wait: a Retry-After of days (or of 10^20 seconds, past any date) would park the job.
 */
export function retryDelayMs(policy: Backoff, attemptsMade: number, random: () => number, retryAfterMs: number | undefined): number {
  return Math.max(backoffMs(policy, attemptsMade, random), Math.min(retryAfterMs ?? 0, policy.maxMs));
}

export function nextRetry(policy: RetryPolicy, { attemptsMade, now, random, retryAfterMs }: RetryInput): RetryDecision {
  if (attemptsMade >= policy.maxAttempts) {
    return { kind: 'give-up' };
  }
  const delayMs = retryDelayMs(policy, attemptsMade, random, retryAfterMs);
  return { kind: 'retry', delayMs, runAt: new Date(now.getTime() + delayMs) };
}

/** Retry-After as delta-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (value === undefined || value.trim() === '') {
    return undefined;
  }
  if (/^\d+$/.test(value.trim())) {
    return Number(value.trim()) * 1000;
  }
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}
