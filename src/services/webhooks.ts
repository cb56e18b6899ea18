// An app's webhook: the URL jetpost POSTs its status changes to and the secret it signs them with;
// its deliveries for the admin; and the outbox operations of the dispatcher.
import { randomBytes } from 'node:crypto';

import { findWebhook, setWebhook } from '../db/apps-repo.js';
import type { NotifyChannels } from '../db/notify.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { claimDueDeliveries, type ClaimOptions, listDeliveries, nextDeliveryAt, redeliver, settleDelivery } from '../db/webhook-deliveries-repo.js';
import type { AppWebhook } from '../domain/app.js';
import { NotFoundError } from '../domain/errors.js';
import type { TargetPolicy } from '../domain/target-policy.js';
import type { DeliveryOutcome, DeliveryRow, DeliveryStatus, DueDelivery } from '../domain/webhook-delivery.js';
import { checkWebhookUrl } from '../webhooks/url-guard.js';
import { findApp } from './apps.js';
import { notifyWebhooks } from './webhook-outbox.js';

/**
 * Sets the app's webhook URL. The signing secret is made on first use and kept when only the URL
 * changes, unless `rotateSecret` asks for a new one. Returns both: the receiving app verifies with it.
 */
export async function setAppWebhook(db: Queryable, policy: TargetPolicy, appName: string, url: string, rotateSecret: boolean): Promise<AppWebhook> {
  const app = await findApp(db, appName);
  const checked = await checkWebhookUrl(policy, url);
  const current = await findWebhook(db, app.id);
  const webhook = { url: checked.toString(), secret: current && !rotateSecret ? current.secret : `whsec_${randomBytes(32).toString('base64url')}` };
  await setWebhook(db, app.id, webhook);
  return webhook;
}

export async function getAppWebhook(db: Queryable, appName: string): Promise<AppWebhook> {
  const app = await findApp(db, appName);
  const webhook = await findWebhook(db, app.id);
  if (!webhook) {
    throw new NotFoundError(`app ${appName} has no webhook`);
  }
  return webhook;
}

/** Stops the app's webhook; deliveries still pending then fail ("no webhook any more"). */
export async function removeAppWebhook(db: Queryable, appName: string): Promise<void> {
  const app = await findApp(db, appName);
  if (!(await findWebhook(db, app.id))) {
    throw new NotFoundError(`app ${appName} has no webhook`);
  }
  await setWebhook(db, app.id, null);
}

/** The app's deliveries, newest first. */
export async function listAppDeliveries(db: Queryable, appName: string, options: { status?: DeliveryStatus | undefined; before?: string | undefined; limit: number }): Promise<DeliveryRow[]> {
  const app = await findApp(db, appName);
  return listDeliveries(db, app.id, options);
}

/** Makes one of the app's deliveries due again, with a fresh retry window, and wakes the dispatchers. */
export async function redeliverAppDelivery(pool: Pool, channels: NotifyChannels, appName: string, deliveryId: string): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const app = await findApp(tx, appName);
    if (!(await redeliver(tx, app.id, deliveryId))) {
      throw new NotFoundError(`app ${app.name} has no delivery ${deliveryId}`);
    }
    await notifyWebhooks(tx, channels);
  });
}

/** What the dispatcher does with the outbox (see webhook-deliveries-repo.ts). */
export interface WebhookDeliveries {
  claimDue(options: ClaimOptions): Promise<DueDelivery[]>;
  /** Records an attempt's outcome; false when the claim was lost meanwhile (nothing is written). */
  settle(delivery: DueDelivery, outcome: DeliveryOutcome): Promise<boolean>;
  /** When the next delivery of an app not in `exceptApps` falls due (null: none). */
  nextDueAt(exceptApps: readonly string[]): Promise<Date | null>;
}

export function createWebhookDeliveries(pool: Pool): WebhookDeliveries {
  return {
    claimDue: (options) => claimDueDeliveries(pool, options),
    settle: (delivery, outcome) => settleDelivery(pool, delivery, outcome),
    nextDueAt: (exceptApps) => nextDeliveryAt(pool, exceptApps),
  };
}
