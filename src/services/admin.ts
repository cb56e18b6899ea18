// The operator's actions, one service for both doors: the admin API (http/routes/admin.ts) and the
// CLI (bin/admin.ts). Inputs arrive checked (domain/input-schemas.ts); refusals are AppErrors.
import { listAppsWithKeys } from '../db/apps-repo.js';
import { type AdminJobPage, listJobsByStatus } from '../db/jobs-repo.js';
import type { NotifyChannels } from '../db/notify.js';
import type { Pool } from '../db/pool.js';
import { addSuppression, listSuppressions, removeSuppression } from '../db/suppressions-repo.js';
import type { App, AppWebhook, AppWithKeys } from '../domain/app.js';
import type { JobStatus } from '../domain/status.js';
import type { Suppression } from '../domain/suppression.js';
import type { TargetPolicy } from '../domain/target-policy.js';
import type { DeliveryPage, DeliveryStatus } from '../domain/webhook-delivery.js';
import { apiKeyPrefix } from './api-keys.js';
import { addApiKey, createAppWithKey, findApp, revokeApiKey } from './apps.js';
import { requeueFailed } from './requeue.js';
import {
  getAppWebhook,
  listAppDeliveries,
  redeliverAppDelivery,
  removeAppWebhook,
  rotateAppWebhookSecret,
  setAppWebhook,
  type WebhookSettingsChange,
} from './webhooks.js';

export interface AdminService {
  /** Jobs of one status, newest first, across apps; `before` pages by job id (a page of a status other than a queue status may be short: see listJobsByStatus). */
  listJobs(filter: { status: JobStatus; appName?: string | undefined; before?: string | undefined; limit: number }): Promise<AdminJobPage>;
  /** Re-queues failed jobs: the given ids, or (ids null) every failed one, of one app when named. Returns the ids re-queued. */
  requeueJobs(target: { ids: readonly string[] | null; appName: string | null }): Promise<string[]>;
  listApps(): Promise<AppWithKeys[]>;
  /** A new app and its first API key, shown once. */
  createApp(name: string): Promise<{ app: App; key: string; prefix: string }>;
  /** A new key for the app, shown once; the others keep working unless `revokeOthers`. */
  rotateKey(appName: string, revokeOthers: boolean): Promise<{ app: App; key: string; prefix: string; revoked: string[] }>;
  revokeKey(appName: string, prefix: string): Promise<void>;
  listSuppressions(appName: string, page: { after?: string | undefined; limit: number }): Promise<Suppression[]>;
  addSuppression(appName: string, email: string, note: string | null): Promise<Suppression>;
  /** False when the address was not suppressed. */
  removeSuppression(appName: string, email: string): Promise<boolean>;
  /** Sets the webhook's URL and, when given, the change types it receives; rotateSecret replaces the secret at once. */
  setWebhook(appName: string, change: WebhookSettingsChange): Promise<AppWebhook>;
  /** A new secret; the old one keeps signing for `overlapSeconds`. */
  rotateWebhookSecret(appName: string, overlapSeconds: number): Promise<AppWebhook>;
  getWebhook(appName: string): Promise<AppWebhook>;
  removeWebhook(appName: string): Promise<void>;
  /** The app's deliveries, newest first; `before` pages by delivery id. */
  listDeliveries(appName: string, filter: { status?: DeliveryStatus | undefined; before?: string | undefined; limit: number }): Promise<DeliveryPage>;
  redeliver(appName: string, deliveryId: string): Promise<void>;
}

export interface AdminServiceDeps {
  pool: Pool;
  channels: NotifyChannels;
  /** Which internal addresses webhooks may reach (WEBHOOK_ALLOWED_TARGETS). */
  targetPolicy: TargetPolicy;
}

export function createAdminService({ pool, channels, targetPolicy }: AdminServiceDeps): AdminService {
  return {
    async listJobs({ status, appName, before, limit }) {
      // A mistyped app is a 404, not an empty list that reads as "nothing failed"; the list is of the
      // app found, by its name as stored (the one asked for may differ in case).
      const app = appName === undefined ? undefined : await findApp(pool, appName);
      return listJobsByStatus(pool, status, { appName: app?.name, before, limit });
    },
    requeueJobs: (target) => requeueFailed(pool, channels, target),
    listApps: () => listAppsWithKeys(pool),
    async createApp(name) {
      const { app, key } = await createAppWithKey(pool, name);
      return { app, key, prefix: apiKeyPrefix(key)! };
    },
    rotateKey: (appName, revokeOthers) => addApiKey(pool, appName, revokeOthers),
    revokeKey: (appName, prefix) => revokeApiKey(pool, appName, prefix),
    async listSuppressions(appName, page) {
      const app = await findApp(pool, appName);
      return listSuppressions(pool, app.id, page);
    },
    async addSuppression(appName, email, note) {
      const app = await findApp(pool, appName);
      return addSuppression(pool, app.id, email, note);
    },
    async removeSuppression(appName, email) {
      const app = await findApp(pool, appName);
      return removeSuppression(pool, app.id, email);
    },
    setWebhook: (appName, change) => setAppWebhook(pool, targetPolicy, appName, change),
    rotateWebhookSecret: (appName, overlapSeconds) => rotateAppWebhookSecret(pool, appName, overlapSeconds),
    getWebhook: (appName) => getAppWebhook(pool, appName),
    removeWebhook: (appName) => removeAppWebhook(pool, appName),
    listDeliveries: (appName, filter) => listAppDeliveries(pool, appName, filter),
    redeliver: (appName, deliveryId) => redeliverAppDelivery(pool, channels, appName, deliveryId),
  };
}
