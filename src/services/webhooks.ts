// An app's webhook: the URL jetpost POSTs its status changes to, the change types it receives and the
// secrets it signs them with (rotated with an overlap);
// its deliveries for the admin; and the outbox operations of the dispatcher.
import { randomBytes } from 'node:crypto';

import type { Bus } from '../bus.js';
import {
  disableWebhook,
  endWebhookPause,
  findWebhook,
  findWebhookPause,
  resumeWebhook,
  setWebhook,
  throttleWebhook,
  type WebhookSettings,
} from '../db/apps-repo.js';
import type { NotifyChannels } from '../db/notify.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import {
  type AppRoom,
  claimDueDeliveries,
  type ClaimOptions,
  failPendingDeliveries,
  findLastFailedAttempt,
  listDeliveries,
  nextDeliveryAt,
  redeliver,
  settleDelivery,
} from '../db/webhook-deliveries-repo.js';
import { cutPreviousSecretsShort, deletePreviousSecrets, insertPreviousSecret, listValidPreviousSecrets } from '../db/webhook-previous-secrets-repo.js';
import type { AppWebhook, WebhookPause } from '../domain/app.js';
import { NotFoundError } from '../domain/errors.js';
import { MAX_PREVIOUS_SECRETS } from '../domain/input-schemas.js';
import { type ChangeType, eventTypeSubscription } from '../domain/status-change.js';
import type { TargetPolicy } from '../domain/target-policy.js';
import { type DeliveryOutcome, type DeliveryPage, type DeliveryStatus, type DueDelivery, outcomeAtReplacedUrl } from '../domain/webhook-delivery.js';
import { formatSecret } from '../domain/webhook-signature.js';
import { checkWebhookUrl } from '../webhooks/url-guard.js';
import { findApp } from './apps.js';
import { notifyWebhooks } from './webhook-outbox.js';

export interface WebhookSettingsChange {
  url: string;
  /** Replaces the secret at once (a rotation with no overlap). */
  rotateSecret: boolean;
  /** The change types to deliver; undefined keeps the webhook's (every type for a new webhook). */
  eventTypes?: readonly ChangeType[] | undefined;
}

/**
 * Sets the app's webhook URL and the change types it receives. The signing secret is made on first
 * use and kept when only the URL or the types change, unless `rotateSecret` asks for a new one.
 * A webhook disabled by a `410 Gone` is enabled again. Returns the webhook: the receiving app
 * verifies with its secret.
 */
export async function setAppWebhook(pool: Pool, policy: TargetPolicy, appName: string, change: WebhookSettingsChange): Promise<AppWebhook> {
  // The app first (an unknown app is a 404 whatever the URL), then the URL, outside the transaction:
  // checking it resolves its host name.
  const app = await findApp(pool, appName);
  const checked = await checkWebhookUrl(policy, change.url);
  return withTransaction(pool, async (tx) => {
    const current = await findWebhook(tx, app.id);
    const eventTypes = change.eventTypes === undefined ? (current?.eventTypes ?? null) : eventTypeSubscription(change.eventTypes);
    const secret = current && !change.rotateSecret ? current.secret : await replaceSecret(tx, app.id, current, 0);
    const webhook = { url: checked.toString(), secret, eventTypes, disabled: null };
    await setWebhook(tx, app.id, webhook);
    return withSecretsAndPause(tx, app.id, webhook);
  });
}

/**
 * A new signing secret for the app's webhook. The one it replaces keeps signing deliveries next to
 * it for `overlapSeconds`, so that the receiving app can switch without refusing any; every older
 * one ends by then at the latest (an overlap of 0 ends them all now).
 */
export async function rotateAppWebhookSecret(pool: Pool, appName: string, overlapSeconds: number): Promise<AppWebhook> {
  return withTransaction(pool, async (tx) => {
    const app = await findApp(tx, appName);
    const current = await findWebhook(tx, app.id);
    if (!current) {
      throw new NotFoundError(`app ${appName} has no webhook`);
    }
    const secret = await replaceSecret(tx, app.id, current, overlapSeconds);
    await setWebhook(tx, app.id, { ...current, secret });
    return withSecretsAndPause(tx, app.id, { ...current, secret });
  });
}

/**
 * A new secret; the current one (if any) signs on for `overlapSeconds`, older ones no longer than
 * that, and only the MAX_PREVIOUS_SECRETS newest of them.
 */
async function replaceSecret(tx: Queryable, appId: string, current: WebhookSettings | undefined, overlapSeconds: number): Promise<string> {
  await cutPreviousSecretsShort(tx, appId, overlapSeconds);
  if (current && overlapSeconds > 0) {
    await insertPreviousSecret(tx, appId, current.secret, overlapSeconds, MAX_PREVIOUS_SECRETS);
  }
  return formatSecret(randomBytes(32));
}

export async function getAppWebhook(db: Queryable, appName: string): Promise<AppWebhook> {
  const app = await findApp(db, appName);
  const webhook = await findWebhook(db, app.id);
  if (!webhook) {
    throw new NotFoundError(`app ${appName} has no webhook`);
  }
  return withSecretsAndPause(db, app.id, webhook);
}

/** The app's webhook as the API and the CLI show it: its settings, the previous secrets still signing, and a pause running. */
async function withSecretsAndPause(db: Queryable, appId: string, settings: WebhookSettings): Promise<AppWebhook> {
  return { ...settings, previousSecrets: await listValidPreviousSecrets(db, appId), pause: await webhookPause(db, appId) };
}

/** The pause of the app's deliveries running now, with the last failed attempt that tells why. */
async function webhookPause(db: Queryable, appId: string): Promise<WebhookPause | null> {
  const pause = await findWebhookPause(db, appId);
  return pause ? { ...pause, lastAttempt: (await findLastFailedAttempt(db, appId)) ?? null } : null;
}

/** Stops the app's webhook; deliveries still pending then fail ("no webhook any more"). Its secrets go with it. */
export async function removeAppWebhook(pool: Pool, appName: string): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const app = await findApp(tx, appName);
    if (!(await findWebhook(tx, app.id))) {
      throw new NotFoundError(`app ${appName} has no webhook`);
    }
    await setWebhook(tx, app.id, null);
    await deletePreviousSecrets(tx, app.id);
  });
}

/** The app's deliveries, newest first. */
export async function listAppDeliveries(
  db: Queryable,
  appName: string,
  options: { status?: DeliveryStatus | undefined; before?: string | undefined; limit: number },
): Promise<DeliveryPage> {
  const app = await findApp(db, appName);
  return listDeliveries(db, app.id, options);
}

/**
 * Makes one of the app's deliveries due again, with a fresh retry window, and wakes the dispatchers.
 * A pause of the app's deliveries (its receiver answered 429/5xx, or nothing) ends: the operator asks
 * for an attempt now, not in up to an hour.
 */
export async function redeliverAppDelivery(pool: Pool, channels: NotifyChannels, appName: string, deliveryId: string): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const app = await findApp(tx, appName);
    // The app's row before the delivery's, as a 410 that fails the app's pending deliveries locks them: no deadlock.
    await endWebhookPause(tx, app.id);
    if (!(await redeliver(tx, app.id, deliveryId))) {
      throw new NotFoundError(`app ${app.name} has no delivery ${deliveryId}`);
    }
    await notifyWebhooks(tx, channels);
  });
}

/** What an attempt's outcome says about the app's webhook, beside the delivery's own fate. */
type EndpointChange = { kind: 'disable'; reason: string } | { kind: 'pause'; until: Date } | { kind: 'resume' };

function endpointChange(delivery: DueDelivery, outcome: DeliveryOutcome): EndpointChange | undefined {
  if (outcome.kind === 'failed' && outcome.disablesWebhook) {
    return { kind: 'disable', reason: outcome.error };
  }
  if (outcome.kind !== 'delivered' && outcome.throttledUntil !== undefined) {
    return { kind: 'pause', until: outcome.throttledUntil };
  }
  // A probe that the receiver answered, and not to say it is overloaded: the pause is over.
  return delivery.probe && outcome.statusCode !== null ? { kind: 'resume' } : undefined;
}

async function recordEndpointChange(tx: Queryable, appId: string, url: string, change: EndpointChange): Promise<void> {
  if (change.kind === 'pause') {
    await throttleWebhook(tx, appId, url, change.until);
  } else if (change.kind === 'resume') {
    await resumeWebhook(tx, appId, url);
  } else if (await disableWebhook(tx, appId, url, change.reason)) {
    await failPendingDeliveries(tx, appId, change.reason);
  }
}

/** What the dispatcher does with the outbox (see webhook-deliveries-repo.ts). */
export interface WebhookDeliveries {
  claimDue(options: ClaimOptions): Promise<DueDelivery[]>;
  /** Records an attempt's outcome; false when the claim was lost meanwhile (nothing is written). */
  settle(delivery: DueDelivery, outcome: DeliveryOutcome): Promise<boolean>;
  /** When the next delivery of an app with room falls due (null: none). */
  nextDueAt(room: AppRoom): Promise<Date | null>;
}

/** `now`: the clock of the times written for the database (services/database-clock.ts). */
export function createWebhookDeliveries(pool: Pool, bus: Bus, channels: NotifyChannels, now: () => Date = () => new Date()): WebhookDeliveries {
  const settled = (recorded: boolean, outcome: DeliveryOutcome): boolean => {
    if (recorded) {
      bus.emit('webhooks:attempted', { outcome: outcome.kind });
    }
    return recorded;
  };
  return {
    claimDue: (options) => claimDueDeliveries(pool, options),
    async settle(delivery, attempted) {
      const url = delivery.url;
      if (url === null || (attempted.kind === 'delivered' && endpointChange(delivery, attempted) === undefined)) {
        return settled(await settleDelivery(pool, delivery, attempted), attempted);
      }
      return withTransaction(pool, async (tx) => {
        // The app's row first (locked), as a redelivery takes it: the webhook may have been set to
        // another URL during the attempt, and a PUT now waits for this transaction.
        const replaced = attempted.kind !== 'delivered' && (await findWebhook(tx, delivery.appId))?.url !== url;
        const outcome = replaced ? outcomeAtReplacedUrl(attempted, now()) : attempted;
        if (!(await settleDelivery(tx, delivery, outcome))) {
          return false;
        }
        const change = replaced ? undefined : endpointChange(delivery, outcome);
        if (change !== undefined) {
          await recordEndpointChange(tx, delivery.appId, url, change);
        }
        // Due again at once (cut short by a stop, or its URL replaced meanwhile): the dispatchers of
        // the other replicas slept until their idle check, since it was claimed when they last looked.
        if (outcome.kind === 'retry' && outcome.nextAttemptAt.getTime() <= now().getTime()) {
          await notifyWebhooks(tx, channels);
        }
        return settled(true, outcome);
      });
    },
    nextDueAt: (room) => nextDeliveryAt(pool, room),
  };
}
