// Delivers the webhook outbox: claims due deliveries (SKIP LOCKED, so replicas share the work),
// POSTs each signed payload with a timeout, and retries non-2xx answers with exponential backoff
// for WEBHOOK_RETRY_WINDOW_MS (a day by default) before marking the delivery failed. Idle, it sleeps
// until the next retry is due or a NOTIFY says new changes were written.
import type { Pool } from '../db/pool.js';
import { claimDueDeliveries, type DeliveryOutcome, type DueDelivery, nextDeliveryAt, settleDelivery } from '../db/webhook-deliveries-repo.js';
import { coerceError } from '../errors.js';
import { backoffMs, type RetryPolicy } from '../jobs/retry-policy.js';
import type { Logger } from '../log.js';
import type { Wakeup } from '../queue/wakeup.js';
import { changeJson } from './payload.js';
import { postJson } from './post.js';
import { SIGNATURE_HEADER, signPayload } from './signature.js';
import type { TargetPolicy } from './url-guard.js';

export interface WebhookDispatcherOptions {
  pool: Pool;
  wakeup: Wakeup;
  policy: TargetPolicy;
  timeoutMs: number;
  /** Backoff between attempts (maxAttempts is not used: the window decides). */
  retry: Omit<RetryPolicy, 'maxAttempts'>;
  /** How long after a change its delivery keeps being retried. */
  retryWindowMs: number;
  batchSize: number;
  idleCheckMs: number;
  log: Logger;
  now?: () => Date;
  random?: () => number;
}

export interface WebhookDispatcher {
  start(): void;
  /** Stops claiming; deliveries in flight finish (or their lock lapses and another replica retries). */
  stop(): Promise<void>;
}

/** What to record after an attempt, pure. */
export function deliveryOutcome(
  delivery: Pick<DueDelivery, 'attempts' | 'createdAt'>,
  result: { statusCode: number } | { error: string },
  options: { retry: Omit<RetryPolicy, 'maxAttempts'>; retryWindowMs: number; now: Date; random: () => number },
): DeliveryOutcome {
  const statusCode = 'statusCode' in result ? result.statusCode : null;
  if (statusCode !== null && statusCode >= 200 && statusCode < 300) {
    return { kind: 'delivered', statusCode };
  }
  const error = 'error' in result ? result.error : `the receiver answered ${statusCode}`;
  const nextAttemptAt = new Date(options.now.getTime() + backoffMs({ ...options.retry, maxAttempts: Infinity }, delivery.attempts, options.random));
  if (nextAttemptAt.getTime() - delivery.createdAt.getTime() > options.retryWindowMs) {
    return { kind: 'failed', statusCode, error: `gave up after ${delivery.attempts} attempts: ${error}` };
  }
  return { kind: 'retry', nextAttemptAt, statusCode, error };
}

export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { pool, wakeup, log } = options;
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  let stopping = false;
  let running: Promise<void> | undefined;

  async function deliver(delivery: DueDelivery): Promise<void> {
    let outcome: DeliveryOutcome;
    if (delivery.url === null || delivery.secret === null) {
      outcome = { kind: 'failed', statusCode: null, error: 'the app has no webhook any more' };
    } else {
      const body = JSON.stringify(changeJson(delivery.change));
      const timestamp = Math.floor(now().getTime() / 1000);
      const headers = {
        [SIGNATURE_HEADER]: signPayload(delivery.secret, body, timestamp),
        'Jetpost-Event-Id': delivery.change.id,
        'Jetpost-Delivery-Attempt': String(delivery.attempts),
        'user-agent': 'jetpost-webhooks/1',
      };
      const result = await postJson(new URL(delivery.url), body, headers, { timeoutMs: options.timeoutMs, policy: options.policy }).catch(
        (error: unknown) => ({ error: coerceError(error).message }),
      );
      outcome = deliveryOutcome(delivery, result, { retry: options.retry, retryWindowMs: options.retryWindowMs, now: now(), random });
    }
    await settleDelivery(pool, delivery.id, outcome);
    if (outcome.kind !== 'delivered') {
      log.log(outcome.kind === 'failed' ? 'warn' : 'info', outcome.kind === 'failed' ? 'webhook delivery failed for good' : 'webhook delivery will be retried', {
        component: 'webhooks',
        delivery: delivery.id,
        app: delivery.appId,
        attempts: delivery.attempts,
        error: outcome.error,
      });
    }
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      const seen = wakeup.generation;
      try {
        const due = await claimDueDeliveries(pool, options.batchSize, options.timeoutMs * 2 + 5_000);
        failures = 0;
        if (due.length > 0) {
          await Promise.all(due.map(deliver));
          continue;
        }
        const next = await nextDeliveryAt(pool);
        const delay = next ? Math.min(options.idleCheckMs, Math.max(0, next.getTime() - now().getTime()) + 5) : options.idleCheckMs;
        await wakeup.wait(seen, delay);
      } catch (error) {
        failures += 1;
        log.warn('webhook dispatcher pass failed; backing off', { component: 'webhooks', error: coerceError(error).message });
        await wakeup.wait(seen, Math.min(30_000, 500 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  return {
    start() {
      running ??= loop();
    },
    async stop() {
      stopping = true;
      wakeup.close();
      await running;
    },
  };
}
