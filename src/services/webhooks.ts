// An app's webhook: the URL jetpost POSTs its status changes to, and the secret it signs them with.
import { randomBytes } from 'node:crypto';

import { type AppWebhook, findWebhook, setWebhook } from '../db/apps-repo.js';
import type { Queryable } from '../db/pool.js';
import { NotFoundError } from '../domain/errors.js';
import type { TargetPolicy } from '../domain/target-policy.js';
import { checkWebhookUrl } from '../webhooks/url-guard.js';
import { findApp } from './apps.js';

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
