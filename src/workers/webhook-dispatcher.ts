// Delivers the webhook outbox: claims due deliveries (SKIP LOCKED, so replicas share the work),
// POSTs each signed payload with one deadline up to the answer's head, and retries non-2xx answers
// with exponential backoff (or the answer's Retry-After) for WEBHOOK_RETRY_WINDOW_MS (a day by
// default) before marking the delivery failed. A `410 Gone` disables the app's webhook; a `429`,
// `502`, `503` or `504`, or no answer at all (refused, unresolvable, timed out), pauses all of the
// app's deliveries, and after the pause one goes alone until an answer says the receiver is back
// (domain/webhook-delivery.ts, db/webhook-deliveries-repo.ts). Deliveries run
// concurrently: at most `maxInFlight` at once, and at most `perAppInFlight` of one app, so that a
// slow receiver holds a few slots while other apps' deliveries go on; a call unanswered for
// STALLED_AFTER_MS gives up its slot (below), so that many slow receivers do not hold them all. The
// claim loop is a worker loop (loop.ts) that never waits for a delivery, only for a free slot, a
// NOTIFY, or the next retry that is due.
import { coerceError } from '../domain/errors.js';
import type { Backoff } from '../domain/retry-policy.js';
import { changeJson } from '../domain/status-change.js';
import type { TargetPolicy } from '../domain/target-policy.js';
import { type AttemptResult, type DeliveryOutcome, deliveryOutcome, type DueDelivery } from '../domain/webhook-delivery.js';
import { signatureHeaders } from '../domain/webhook-signature.js';
import { finishedWithin } from '../finished-within.js';
import type { Logger } from '../log.js';
import type { WebhookDeliveries } from '../services/webhooks.js';
import { postJson } from '../webhooks/post.js';
import { createWorkerLoop } from './loop.js';
import type { Wakeup } from './wakeup.js';

/** After stop() has cut the deliveries in flight, how long it waits for their outcome to be recorded. */
const RECORD_GRACE_MS = 2_000;

export interface WebhookDispatcherOptions {
  deliveries: WebhookDeliveries;
  wakeup: Wakeup;
  policy: TargetPolicy;
  /** Deadline of one delivery's exchange up to the answer's head, in ms. */
  timeoutMs: number;
  /** Backoff between attempts (no attempt limit: the window decides). */
  retry: Backoff;
  /** How long after a change its delivery keeps being retried. */
  retryWindowMs: number;
  /** Deliveries in flight at once in this process. */
  maxInFlight: number;
  /** Deliveries of one app in flight at once in this process. */
  perAppInFlight: number;
  idleCheckMs: number;
  log: Logger;
  /** The clock of the times written for the database: a retry's, a pause's (services/database-clock.ts). */
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

/**
 * A call unanswered this long has a slow or silent receiver: it stops holding one of the
 * `maxInFlight` slots, and goes on to its deadline beside them, still counted in its app's
 * `perAppInFlight`. Without it, as many silent receivers as there are slots (their apps' deliveries
 * due first) held every slot for WEBHOOK_TIMEOUT_MS, the next as many for as long again, and every
 * other app waited for all of them.
 */
const STALLED_AFTER_MS = 1_000;

/** Calls open at once, stalled ones included, at most this many times `maxInFlight`: sockets stay bounded. */
const OPEN_CALLS_PER_SLOT = 10;

/** After a failed claim turn (the database is away), growing while turns keep failing. */
const DISPATCHER_BACKOFF: Backoff = { baseMs: 1_000, factor: 2, maxMs: 30_000, jitter: 0 };

export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { deliveries, wakeup, log } = options;
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  /** Deliveries in flight: what stop() cuts short and waits for. */
  const inFlight = new Map<string, { abort: AbortController; done: Promise<void> }>();
  const inFlightByApp = new Map<string, number>();
  /** Deliveries in flight for longer than STALLED_AFTER_MS: they hold no slot. */
  const stalled = new Set<string>();
  /** Set by stop() at its deadline: a delivery launched after it, by a claim made before, is cut at once. */
  let cutShort: Error | undefined;

  async function attempt(delivery: DueDelivery, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (delivery.url === null || delivery.secrets.length === 0) {
      return { kind: 'failed', statusCode: null, error: 'the app has no webhook any more' };
    }
    if (delivery.disabledReason !== null) {
      return { kind: 'failed', statusCode: null, error: `the app's webhook is disabled: ${delivery.disabledReason}` };
    }
    let result: AttemptResult;
    try {
      const body = JSON.stringify(changeJson(delivery.change));
      // The receiver compares it with its own clock (within minutes): this host's, not the database's.
      // eslint-disable-next-line no-restricted-properties
      const timestamp = Math.floor(Date.now() / 1000);
      // The delivery's id is the webhook-id: the same on every attempt, so receivers deduplicate on it.
      const headers = {
        ...signatureHeaders(delivery.secrets, delivery.id, timestamp, body),
        'Jetpost-Delivery-Attempt': String(delivery.attempts),
        'user-agent': 'jetpost-webhooks/1',
      };
      result = await postJson(new URL(delivery.url), body, headers, {
        timeoutMs: options.timeoutMs,
        policy: options.policy,
        signal,
        // Not an attempt of its own (nothing in the deliveries list): only this line tells of it.
        onNewConnection: (reason) =>
          log.info('the receiver closed a kept-alive webhook connection as it was reused, before answering: the call goes again at once on a new one', {
            component: 'webhooks',
            delivery: delivery.id,
            app: delivery.appId,
            attempts: delivery.attempts,
            error: reason.message,
          }),
      });
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
      if (!(await deliveries.settle(delivery, outcome))) {
        log.warn('a webhook delivery outlived its claim: another dispatcher (or a redelivery) has it now, so its outcome is not recorded', {
          component: 'webhooks',
          delivery: delivery.id,
          app: delivery.appId,
          attempts: delivery.attempts,
          outcome: outcome.kind,
        });
        return;
      }
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
      log.log(
        outcome.kind === 'failed' ? 'warn' : 'info',
        outcome.kind === 'failed' ? 'webhook delivery failed for good' : 'webhook delivery will be retried',
        {
          component: 'webhooks',
          delivery: delivery.id,
          app: delivery.appId,
          attempts: delivery.attempts,
          error: outcome.error,
        },
      );
    }
  }

  function launch(delivery: DueDelivery): void {
    const abort = new AbortController();
    if (cutShort) {
      abort.abort(cutShort);
    }
    inFlightByApp.set(delivery.appId, (inFlightByApp.get(delivery.appId) ?? 0) + 1);
    const stall = setTimeout(() => {
      stalled.add(delivery.id);
      // Its slot is free: the loop may claim again.
      wakeup.wake();
    }, STALLED_AFTER_MS);
    const done = deliver(delivery, abort.signal).finally(() => {
      clearTimeout(stall);
      stalled.delete(delivery.id);
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

  const loop = createWorkerLoop({
    wakeup,
    backoff: DISPATCHER_BACKOFF,
    random,
    async turn() {
      const room = Math.min(options.maxInFlight - (inFlight.size - stalled.size), options.maxInFlight * OPEN_CALLS_PER_SLOT - inFlight.size);
      if (room > 0) {
        const due = await deliveries.claimDue({
          limit: room,
          perApp: options.perAppInFlight,
          inFlight: inFlightByApp,
          // Outlives the attempt's deadline and the recording of its outcome.
          lockMs: options.timeoutMs * 2 + 5_000,
        });
        due.forEach(launch);
        if (due.length > 0) {
          return 0;
        }
      }
      // Nothing to claim now: sleep until a slot frees up, a NOTIFY, or the next retry of an app
      // that has room is due (an app at its bound is woken by its own deliveries ending).
      const next = room > 0 ? await deliveries.nextDueAt({ perApp: options.perAppInFlight, inFlight: inFlightByApp }) : null;
      return next ? Math.min(options.idleCheckMs, Math.max(0, next.getTime() - now().getTime()) + 5) : options.idleCheckMs;
    },
    onError(error) {
      log.warn('webhook dispatcher pass failed; backing off', { component: 'webhooks', error: error.message });
    },
  });

  return {
    start() {
      void loop.start();
    },
    async stop(deadlineMs) {
      const cut = setTimeout(() => {
        cutShort = new Error(`cut short: jetpost stopped while the delivery was in flight (after waiting ${deadlineMs} ms)`);
        for (const { abort } of inFlight.values()) {
          abort.abort(cutShort);
        }
      }, deadlineMs);
      // The loop ends at its next turn; a claim it is making still launches (and gets cut short, at
      // once when it comes back after the deadline: left to WEBHOOK_TIMEOUT_MS, the delivery would
      // wait for its claim to lapse, not be due again at once).
      const drained = (async () => {
        await loop.stop(deadlineMs);
        while (inFlight.size > 0) {
          await Promise.all([...inFlight.values()].map(({ done }) => done));
        }
      })();
      const recorded = await finishedWithin(drained, deadlineMs + RECORD_GRACE_MS);
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
