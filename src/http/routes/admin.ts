// The admin API (ADMIN_API_KEY): apps and their keys, suppression lists, and the dead-letter list
// of failed jobs with re-queueing. The CLI (src/bin/admin.ts) offers the same actions.
import { type RequestHandler, Router } from 'express';
import { z } from 'zod';

import { listAppsWithKeys } from '../../db/apps-repo.js';
import { listJobsByStatus } from '../../db/jobs-repo.js';
import type { Pool } from '../../db/pool.js';
import { addSuppression, listSuppressions, removeSuppression } from '../../db/suppressions-repo.js';
import { listDeliveries, redeliver } from '../../db/webhook-deliveries-repo.js';
import { NotFoundError } from '../../domain/errors.js';
import { JOB_STATUSES } from '../../domain/status.js';
import type { TargetPolicy } from '../../domain/target-policy.js';
import { apiKeyPrefix } from '../../services/api-keys.js';
import { addApiKey, APP_NAME_PATTERN, APP_NAME_RULE, createAppWithKey, findApp, revokeApiKey } from '../../services/apps.js';
import { requeueFailed } from '../../services/requeue.js';
import { getAppWebhook, removeAppWebhook, setAppWebhook } from '../../services/webhooks.js';
import { jsonBody } from '../json-body.js';
import { emailSchema, idSchema, jobIdSchema, pageLimitSchema, parseOrThrow } from '../schemas.js';
import { adminJobJson, appJson, deliveryJson, suppressionJson } from '../views.js';

export interface AdminRouteDeps {
  pool: Pool;
  notifyChannel: string;
  targetPolicy: TargetPolicy;
  requireAdmin: RequestHandler;
}

const appName = z.string().regex(APP_NAME_PATTERN, APP_NAME_RULE);

const listQuery = z.strictObject({
  status: z.enum(JOB_STATUSES).default('failed'),
  app: appName.optional(),
  before: jobIdSchema.optional(),
  limit: pageLimitSchema.default(100),
});

const requeueBody = z
  .strictObject({
    job_ids: z.array(jobIdSchema).min(1).max(10_000).optional(),
    all_failed: z.literal(true).optional(),
    app: appName.optional(),
  })
  .refine((body) => (body.job_ids === undefined) !== (body.all_failed === undefined), {
    message: 'give either job_ids or "all_failed": true',
    path: ['job_ids'],
  });

export function adminRouter({ pool, notifyChannel, targetPolicy, requireAdmin }: AdminRouteDeps): Router {
  const router = Router();

  router.get('/admin/jobs', requireAdmin, async (req, res) => {
    const query = parseOrThrow(listQuery, req.query, 'query');
    const jobs = await listJobsByStatus(pool, query.status, { appName: query.app, before: query.before, limit: query.limit });
    res.json({ jobs: jobs.map(adminJobJson), next_before: jobs.length === query.limit ? (jobs.at(-1)?.id ?? null) : null });
  });

  router.post('/admin/jobs/requeue', requireAdmin, jsonBody({ limit: '1mb' }), async (req, res) => {
    const body = parseOrThrow(requeueBody, req.body, 'request');
    const requeued = await requeueFailed(pool, notifyChannel, { ids: body.job_ids ?? null, appName: body.app ?? null });
    res.json({ requeued });
  });

  router.get('/admin/apps', requireAdmin, async (req, res) => {
    parseOrThrow(z.strictObject({}), req.query, 'query');
    res.json({ apps: (await listAppsWithKeys(pool)).map(appJson) });
  });

  router.post('/admin/apps', requireAdmin, jsonBody({ limit: '16kb' }), async (req, res) => {
    const body = parseOrThrow(z.strictObject({ name: appName }), req.body, 'request');
    const { app, key } = await createAppWithKey(pool, body.name);
    const prefix = apiKeyPrefix(key)!;
    res.status(201).json({ app: appJson({ ...app, keys: [{ prefix, createdAt: app.createdAt, revokedAt: null }] }), api_key: key, key_prefix: prefix });
  });

  router.post('/admin/apps/:app/keys', requireAdmin, jsonBody({ limit: '16kb' }), async (req, res) => {
    const name = parseOrThrow(appName, req.params['app'], 'app name');
    const body = parseOrThrow(z.strictObject({ revoke_others: z.boolean().default(false) }), req.body ?? {}, 'request');
    const rotated = await addApiKey(pool, name, body.revoke_others);
    res.status(201).json({ api_key: rotated.key, key_prefix: rotated.prefix, revoked: rotated.revoked });
  });

  router.delete('/admin/apps/:app/keys/:prefix', requireAdmin, async (req, res) => {
    const name = parseOrThrow(appName, req.params['app'], 'app name');
    const prefix = parseOrThrow(z.string().regex(/^[a-z0-9]{12}$/, 'a key prefix (12 letters or digits)'), req.params['prefix'], 'key prefix');
    await revokeApiKey(pool, name, prefix);
    res.status(204).end();
  });

  router.get('/admin/apps/:app/suppressions', requireAdmin, async (req, res) => {
    const app = await findApp(pool, parseOrThrow(appName, req.params['app'], 'app name'));
    const query = parseOrThrow(
      z.strictObject({ after: z.string().max(254).optional(), limit: pageLimitSchema.default(100) }),
      req.query,
      'query',
    );
    const rows = await listSuppressions(pool, app.id, { after: query.after, limit: query.limit });
    res.json({ suppressions: rows.map(suppressionJson), next_after: rows.length === query.limit ? (rows.at(-1)?.email ?? null) : null });
  });

  router.post('/admin/apps/:app/suppressions', requireAdmin, jsonBody({ limit: '16kb' }), async (req, res) => {
    const app = await findApp(pool, parseOrThrow(appName, req.params['app'], 'app name'));
    const body = parseOrThrow(z.strictObject({ email: emailSchema, note: z.string().max(500).regex(/^[^\p{Cc}]*$/u, 'no control characters').optional() }), req.body, 'request');
    res.status(201).json(suppressionJson(await addSuppression(pool, app.id, body.email, body.note ?? null)));
  });

  router.delete('/admin/apps/:app/suppressions/:email', requireAdmin, async (req, res) => {
    const app = await findApp(pool, parseOrThrow(appName, req.params['app'], 'app name'));
    const email = parseOrThrow(emailSchema, req.params['email'], 'address');
    if (!(await removeSuppression(pool, app.id, email))) {
      throw new NotFoundError(`${email} is not suppressed for app ${app.name}`);
    }
    res.status(204).end();
  });

  router.put('/admin/apps/:app/webhook', requireAdmin, jsonBody({ limit: '16kb' }), async (req, res) => {
    const name = parseOrThrow(appName, req.params['app'], 'app name');
    const body = parseOrThrow(z.strictObject({ url: z.string().min(1).max(2000), rotate_secret: z.boolean().default(false) }), req.body, 'request');
    res.json(await setAppWebhook(pool, targetPolicy, name, body.url, body.rotate_secret));
  });

  router.get('/admin/apps/:app/webhook', requireAdmin, async (req, res) => {
    parseOrThrow(z.strictObject({}), req.query, 'query');
    res.json(await getAppWebhook(pool, parseOrThrow(appName, req.params['app'], 'app name')));
  });

  router.delete('/admin/apps/:app/webhook', requireAdmin, async (req, res) => {
    parseOrThrow(z.strictObject({}), req.query, 'query');
    await removeAppWebhook(pool, parseOrThrow(appName, req.params['app'], 'app name'));
    res.status(204).end();
  });

  router.get('/admin/apps/:app/webhook/deliveries', requireAdmin, async (req, res) => {
    const app = await findApp(pool, parseOrThrow(appName, req.params['app'], 'app name'));
    const query = parseOrThrow(
      z.strictObject({ status: z.enum(['pending', 'delivered', 'failed']).optional(), limit: pageLimitSchema.default(100) }),
      req.query,
      'query',
    );
    const rows = await listDeliveries(pool, app.id, query);
    res.json({ deliveries: rows.map(deliveryJson) });
  });

  router.post('/admin/apps/:app/webhook/deliveries/:delivery/redeliver', requireAdmin, async (req, res) => {
    const app = await findApp(pool, parseOrThrow(appName, req.params['app'], 'app name'));
    const id = parseOrThrow(idSchema('a delivery id (digits)'), req.params['delivery'], 'delivery id');
    if (!(await redeliver(pool, app.id, id))) {
      throw new NotFoundError(`app ${app.name} has no delivery ${id}`);
    }
    res.status(202).json({ delivery_id: id, status: 'pending' });
  });

  return router;
}
