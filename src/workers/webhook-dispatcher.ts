// Delivers the webhook outbox: claims due deliveries (SKIP LOCKED, so replicas share the work),
// POSTs each signed payload with one deadline for the whole exchange, and retries non-2xx answers
// with exponential backoff for WEBHOOK_RETRY_WINDOW_MS (a day by default) before marking the
// delivery failed. Deliveries run concurrently: at most `maxInFlight` at once, and at most
// `perAppInFlight` of one app, so that a slow receiver holds a few slots for at most the deadline
// while other apps' deliveries go on; the claim loop never waits for a delivery, only for a free
// slot, a NOTIFY, or the next retry that is due.
import type { Pool } from '../db/pool.js';
import { claimDueDeliveries, type DeliveryOutcome, type DueDelivery, nextDeliveryAt, settleDelivery } from '../db/webhook-deliveries-repo.js';
import { coerceError } from '../domain/errors.js';
import { backoffMs, type RetryPolicy } from '../domain/retry-policy.js';
import { changeJson } from '../domain/status-change.js';
import type { TargetPolicy } from '../domain/target-policy.js';
import { SIGNATURE_HEADER, signPayload } from '../domain/webhook-signature.js';
import type { Logger } from '../log.js';
import { postJson } from '../webhooks/post.js';
import type { Wakeup } from './wakeup.js';

/** After stop() has cut the deliveries in flight, how long it waits for their outcome to be recorded. */
const RECORD_GRACE_MS = 2_000;

export interface WebhookDispatcherOptions {
  pool: Pool;
  wakeup: Wakeup;
  policy: TargetPolicy;
  /** Deadline of one delivery's whole exchange, in ms. */
  timeoutMs: number;
  /** Backoff between attempts (maxAttempts is not used: the window decides). */
  retry: Omit<RetryPolicy, 'maxAttempts'>;
  /** How long after a change its delivery keeps being retried. */
  retryWindowMs: number;
  /** Deliveries in flight at once in this process. */
  maxInFlight: number;
  /** Deliveries of one app in flight at once in this process. */
  perAppInFlight: number;
  idleCheckMs: number;
  log: Logger;
  now?: () => Date;
  random?: () => number;
}

export interface WebhookDispatcher {
  start(): void;
  /**
   * Stops claiming and waits up to `deadlineMs` for the deliveries in flight; then cuts them short.
   * A delivery cut short is due again at once (for the next start or another replica), never
   * marked delivered.
   */
  stop(deadlineMs: number): Promise<void>;
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
  /** Deliveries in flight: what stop() cuts short and waits for. */
  const inFlight = new Map<string, { abort: AbortController; done: Promise<void> }>();
  const inFlightByApp = new Map<string, number>();

  async function attempt(delivery: DueDelivery, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (delivery.url === null || delivery.secret === null) {
      return { kind: 'failed', statusCode: null, error: 'the app has no webhook any more' };
    }
    let result: { statusCode: number } | { error: string };
    try {
      const body = JSON.stringify(changeJson(delivery.change));
      const timestamp = Math.floor(now().getTime() / 1000);
      const headers = {
        [SIGNATURE_HEADER]: signPayload(delivery.secret, body, timestamp),
        'Jetpost-Event-Id': delivery.change.id,
        'Jetpost-Delivery-Attempt': String(delivery.attempts),
        'user-agent': 'jetpost-webhooks/1',
      };
      result = await postJson(new URL(delivery.url), body, headers, { timeoutMs: options.timeoutMs, policy: options.policy, signal });
    } catch (error) {
      result = { error: coerceError(error).message };
    }
    if (signal.aborted && 'error' in result) {
      // Cut short by stop(): not the receiver's fault, so due again at once, whatever the backoff says.
      return { kind: 'retry', nextAttemptAt: now(), statusCode: null, error: result.error };
    }
    return deliveryOutcome(delivery, result, { retry: options.retry, retryWindowMs: options.retryWindowMs, now: now(), random });
  }

  async function deliver(delivery: DueDelivery, signal: AbortSignal): Promise<void> {
    const outcome = await attempt(delivery, signal);
    try {
      await settleDelivery(pool, delivery.id, outcome);
    } catch (error) {
      // The claim's lock lapses and the delivery is attempted again: late, not lost.
      log.warn('could not record a webhook delivery; it is attempted again when its claim lapses', {
        component: 'webhooks',
        delivery: delivery.id,
        app: delivery.appId,
        error: coerceError(error).message,
      });
      return;
    }
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

  function launch(delivery: DueDelivery): void {
    const abort = new AbortController();
    inFlightByApp.set(delivery.appId, (inFlightByApp.get(delivery.appId) ?? 0) + 1);
    const done = deliver(delivery, abort.signal).finally(() => {
      inFlight.delete(delivery.id);
      const left = (inFlightByApp.get(delivery.appId) ?? 1) - 1;
      if (left > 0) {
        inFlightByApp.set(delivery.appId, left);
      } else {
        inFlightByApp.delete(delivery.appId);
      }
      // A slot is free: the loop may claim again.
      wakeup.wake();
    });
    inFlight.set(delivery.id, { abort, done });
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      const seen = wakeup.generation;
      try {
        const room = options.maxInFlight - inFlight.size;
        if (room > 0) {
          const due = await claimDueDeliveries(pool, {
            limit: room,
            perApp: options.perAppInFlight,
            inFlight: inFlightByApp,
            // Outlives the attempt's deadline and the recording of its outcome.
            lockMs: options.timeoutMs * 2 + 5_000,
          });
          failures = 0;
          due.forEach(launch);
          if (due.length > 0) {
            continue;
          }
        }
        // Nothing to claim now: sleep until a slot frees up, a NOTIFY, or the next retry of an app
        // that has room is due (an app at its bound is woken by its own deliveries ending).
        const full = [...inFlightByApp].filter(([, count]) => count >= options.perAppInFlight).map(([app]) => app);
        const next = room > 0 ? await nextDeliveryAt(pool, full) : null;
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
    async stop(deadlineMs) {
      stopping = true;
      wakeup.close();
      const cut = setTimeout(() => {
        for (const { abort } of inFlight.values()) {
          abort.abort(new Error(`cut short: jetpost stopped while the delivery was in flight (after waiting ${deadlineMs} ms)`));
        }
      }, deadlineMs);
      // The loop ends at its next turn; a claim it is making still launches (and gets cut short).
      const drained = (async () => {
        await running;
        while (inFlight.size > 0) {
          await Promise.all([...inFlight.values()].map(({ done }) => done));
        }
      })();
      const recorded = await settledWithin(drained, deadlineMs + RECORD_GRACE_MS);
      clearTimeout(cut);
      if (!recorded) {
        log.warn('webhook deliveries still unrecorded at shutdown; they are attempted again when their claims lapse', {
          component: 'webhooks',
          deliveries: inFlight.size,
        });
      }
    },
  };
}

/** Whether `promise` settled within `ms`. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
