// Webhook deliveries (the outbox of status changes POSTed to apps), and what an attempt's result
// means, pure: delivered, retried after a backoff (or the Retry-After the receiver asked for, up to
// the backoff's longest wait), or failed once the retry window is over. As Standard Webhooks asks,
// some answers speak for the whole endpoint: `410 Gone` disables the app's webhook, and `429`, `502`,
// `503` and `504` pause all of the app's deliveries for a while. So does an attempt that got no
// answer at all (connection refused, a host name that does not resolve, no answer within the
// timeout): what keeps a receiver from answering keeps it from answering the app's next delivery too.
import { type Backoff, parseRetryAfter, retryDelayMs } from './retry-policy.js';
import type { StatusChangeRow } from './status-change.js';

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** A delivery claimed for an attempt. */
export interface DueDelivery {
  id: string;
  appId: string;
  /** The app's webhook now (the URL or secret may have changed since the change). */
  url: string | null;
  /** Why the app's webhook is disabled (its receiver answered `410 Gone`); null while it is enabled. */
  disabledReason: string | null;
  /** The secrets that sign it: the current one first, then those of a rotation still in its overlap; none without a webhook. */
  secrets: string[];
  /** Attempts made, this one included. It is also the claim's token: every claim counts one more. */
  attempts: number;
  /**
   * Claimed after a pause of the app's deliveries ended, before any answer said the receiver is
   * back: it goes alone, and its answer either ends the pause or starts the next one.
   */
  probe: boolean;
  /** The app's pauses in a row when it was claimed: the next one lasts twice the last (pausingApp). */
  pauses: number;
  createdAt: Date;
  change: StatusChangeRow;
}

export type DeliveryOutcome =
  | { kind: 'delivered'; statusCode: number }
  | {
      kind: 'retry';
      nextAttemptAt: Date;
      statusCode: number | null;
      error: string;
      /** The receiver is overloaded or unreachable: none of the app's deliveries is attempted before then. */
      throttledUntil?: Date;
    }
  | {
      kind: 'failed';
      statusCode: number | null;
      error: string;
      /** As for a retry: a pause speaks for the receiver, whatever becomes of this delivery. */
      throttledUntil?: Date;
      /** The receiver answered `410 Gone`: the app's webhook is disabled until it is set again. */
      disablesWebhook?: true;
    };

type Undelivered = Exclude<DeliveryOutcome, { kind: 'delivered' }>;

/**
 * The outcome of an attempt at a URL the app's webhook was moved from during it: what the old
 * receiver answered (410 Gone, a pause, the end of the retry window) speaks for that receiver, not
 * for the new one, which has not had the delivery yet: it is due again at once, at the new URL.
 */
export function outcomeAtReplacedUrl(outcome: Undelivered, now: Date): DeliveryOutcome {
  return {
    kind: 'retry',
    nextAttemptAt: now,
    statusCode: outcome.statusCode,
    error: `${outcome.error} (at the webhook's previous URL, replaced during the attempt: due again at the new one)`,
  };
}

/** Answers that say the receiver is overloaded rather than that this delivery failed (Standard Webhooks). */
const THROTTLING_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** What an attempt brought back: the answer's status and Retry-After header, or why there was none. */
export type AttemptResult = { statusCode: number; retryAfter?: string | undefined } | { error: string };

/** A delivery as the admin lists it. */
export interface DeliveryRow {
  id: string;
  changeId: string;
  jobId: string;
  type: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

/** A page of an app's deliveries, newest first. */
export interface DeliveryPage {
  deliveries: DeliveryRow[];
  /** Where the next page starts (its `before`), or null when this page is the last. */
  nextBefore: string | null;
}

/** How an attempt's result is judged: the backoff, the retry window, and the clock and jitter to use. */
interface OutcomeOptions {
  retry: Backoff;
  retryWindowMs: number;
  now: Date;
  random: () => number;
}

/** What to record after an attempt. */
export function deliveryOutcome(
  delivery: Pick<DueDelivery, 'attempts' | 'createdAt' | 'pauses'>,
  result: AttemptResult,
  options: OutcomeOptions,
): DeliveryOutcome {
  if ('error' in result) {
    return pausingApp(retryOrGiveUp(delivery, null, result.error, undefined, options), delivery.pauses, undefined, options);
  }
  const { statusCode } = result;
  if (statusCode >= 200 && statusCode < 300) {
    return { kind: 'delivered', statusCode };
  }
  if (statusCode === 410) {
    return { kind: 'failed', statusCode, error: 'the receiver answered 410 Gone: the webhook is disabled until it is set again', disablesWebhook: true };
  }
  const retryAfterMs = parseRetryAfter(result.retryAfter, options.now);
  const outcome = retryOrGiveUp(delivery, statusCode, `the receiver answered ${statusCode}`, retryAfterMs, options);
  return THROTTLING_STATUSES.has(statusCode) ? pausingApp(outcome, delivery.pauses, retryAfterMs, options) : outcome;
}

/**
 * The outcome, pausing the app's deliveries: for what the receiver asked, or else the backoff of the
 * app's pauses in a row (`pausesBefore` of them already): the pause of a first retry (10 s), then
 * twice the last after each lone attempt that fails, up to the backoff's longest wait. Not the
 * delivery's own backoff, which after a few failed attempts is an hour: a receiver down for a minute
 * gets the app's other deliveries a minute later, not an hour, and one down for a day is tried once
 * an hour, not every 10 s. The pause holds whatever becomes of this delivery (retried, or failed at
 * the end of its window).
 */
function pausingApp(outcome: Undelivered, pausesBefore: number, retryAfterMs: number | undefined, options: OutcomeOptions): DeliveryOutcome {
  const pauseMs = retryDelayMs(options.retry, pausesBefore + 1, options.random, retryAfterMs);
  return { ...outcome, throttledUntil: new Date(options.now.getTime() + pauseMs) };
}

function retryOrGiveUp(
  delivery: Pick<DueDelivery, 'attempts' | 'createdAt'>,
  statusCode: number | null,
  error: string,
  retryAfterMs: number | undefined,
  options: OutcomeOptions,
): Undelivered {
  // Never sooner than the receiver asked, but never later than the backoff's longest wait: a
  // Retry-After of years (a misconfigured proxy) is retried within the window, not failed at once.
  const nextAttemptMs = options.now.getTime() + retryDelayMs(options.retry, delivery.attempts, options.random, retryAfterMs);
  if (nextAttemptMs - delivery.createdAt.getTime() > options.retryWindowMs) {
    return { kind: 'failed', statusCode, error: `gave up after ${delivery.attempts} attempts: ${error}` };
  }
  return { kind: 'retry', nextAttemptAt: new Date(nextAttemptMs), statusCode, error };
}
