// Webhook deliveries (the outbox of status changes POSTed to apps), and what an attempt's result
// means, pure: delivered, retried after a backoff, or failed once the retry window is over.
import { type Backoff, backoffMs } from './retry-policy.js';
import type { StatusChangeRow } from './status-change.js';

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** A delivery claimed for an attempt. */
export interface DueDelivery {
  id: string;
  appId: string;
  /** The app's webhook now (the URL or secret may have changed since the change). */
  url: string | null;
  /** The secrets that sign it: the current one first, then those of a rotation still in its overlap; none without a webhook. */
  secrets: string[];
  /** Attempts made, this one included. It is also the claim's token: every claim counts one more. */
  attempts: number;
  createdAt: Date;
  change: StatusChangeRow;
}

export type DeliveryOutcome =
  | { kind: 'delivered'; statusCode: number }
  | { kind: 'retry'; nextAttemptAt: Date; statusCode: number | null; error: string }
  | { kind: 'failed'; statusCode: number | null; error: string };

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

/** What to record after an attempt. */
export function deliveryOutcome(
  delivery: Pick<DueDelivery, 'attempts' | 'createdAt'>,
  result: { statusCode: number } | { error: string },
  options: { retry: Backoff; retryWindowMs: number; now: Date; random: () => number },
): DeliveryOutcome {
  const statusCode = 'statusCode' in result ? result.statusCode : null;
  if (statusCode !== null && statusCode >= 200 && statusCode < 300) {
    return { kind: 'delivered', statusCode };
  }
  const error = 'error' in result ? result.error : `the receiver answered ${statusCode}`;
  const nextAttemptAt = new Date(options.now.getTime() + backoffMs(options.retry, delivery.attempts, options.random));
  if (nextAttemptAt.getTime() - delivery.createdAt.getTime() > options.retryWindowMs) {
    return { kind: 'failed', statusCode, error: `gave up after ${delivery.attempts} attempts: ${error}` };
  }
  return { kind: 'retry', nextAttemptAt, statusCode, error };
}
