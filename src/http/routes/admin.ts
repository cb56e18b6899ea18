// The admin API (ADMIN_API_KEY): apps and their keys, suppression lists, webhooks, and the
// dead-letter list of failed jobs with re-queueing. The CLI (src/bin/admin.ts) offers the same
// actions through the same service and input schemas.
import { type Request, type RequestHandler, Router } from 'express';
import { z } from 'zod';

import { NotFoundError } from '../../domain/errors.js';
import {
  appNameSchema as appName,
  DEFAULT_SECRET_OVERLAP_SECONDS,
  deliveryIdSchema,
  deliveryStatusSchema,
  emailSchema,
  jobIdSchema,
  jobStatusSchema,
  keyPrefixSchema,
  pageLimitSchema,
  parseOrThrow,
  parseQueryOrThrow,
  secretOverlapSecondsSchema,
  suppressionNoteSchema,
  webhookEventTypesSchema,
  webhookUrlSchema,
} from '../../domain/input-schemas.js';
import type { AdminService } from '../../services/admin.js';
import type { BodyPace } from '../body-pace.js';
import { jsonBody } from '../json-body.js';
import { takesNoQuery } from '../query-string.js';
import { adminJobJson, appJson, deliveryJson, suppressionJson, webhookJson } from '../views.js';

export interface AdminRouteDeps {
  admin: AdminService;
  requireAdmin: RequestHandler;
  /** HTTP_BODY_IDLE_TIMEOUT_MS, HTTP_BODY_MIN_RATE (http/body-pace.ts). */
  bodyPace: BodyPace;
}

const listQuery = z.strictObject({
  status: jobStatusSchema.default('failed'),
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

/** The path parameter {app}. */
const appParameter = (req: Request) => parseOrThrow(appName, req.params['app'], 'app name', 'app');

export function adminRouter({ admin, requireAdmin, bodyPace }: AdminRouteDeps): Router {
  const router = Router();
  const smallBody = jsonBody({ limit: '16kb', pace: bodyPace });
  // Answers hold API keys (shown once) and webhook signing secrets: no cache may keep one, not even
  // a private one (a browser's fetch, a caching HTTP client), which a request's Authorization does
  // not keep from storing it. Refusals too, set before the key is checked.
  router.use('/admin', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  router.get('/admin/jobs', requireAdmin, async (req, res) => {
    const query = parseQueryOrThrow(listQuery, req.query);
    const page = await admin.listJobs({ status: query.status, appName: query.app, before: query.before, limit: query.limit });
    res.json({ jobs: page.jobs.map(adminJobJson), next_before: page.nextBefore });
  });

  router.post('/admin/jobs/requeue', requireAdmin, takesNoQuery, jsonBody({ limit: '1mb', pace: bodyPace }), async (req, res) => {
    const body = parseOrThrow(requeueBody, req.body, 'request');
    const requeued = await admin.requeueJobs({ ids: body.job_ids ?? null, appName: body.app ?? null });
    res.json({ requeued });
  });

  router.get('/admin/apps', requireAdmin, takesNoQuery, async (_req, res) => {
    res.json({ apps: (await admin.listApps()).map(appJson) });
  });

  router.post('/admin/apps', requireAdmin, takesNoQuery, smallBody, async (req, res) => {
    const body = parseOrThrow(z.strictObject({ name: appName }), req.body, 'request');
    const { app, key, prefix } = await admin.createApp(body.name);
    res.status(201).json({ app: appJson({ ...app, keys: [{ prefix, createdAt: app.createdAt, revokedAt: null }] }), api_key: key, key_prefix: prefix });
  });

  router.post('/admin/apps/:app/keys', requireAdmin, takesNoQuery, smallBody, async (req, res) => {
    const name = appParameter(req);
    const body = parseOrThrow(z.strictObject({ revoke_others: z.boolean().default(false) }), req.body ?? {}, 'request');
    const rotated = await admin.rotateKey(name, body.revoke_others);
    res.status(201).json({ api_key: rotated.key, key_prefix: rotated.prefix, revoked: rotated.revoked });
  });

  router.delete('/admin/apps/:app/keys/:prefix', requireAdmin, takesNoQuery, async (req, res) => {
    const name = appParameter(req);
    const prefix = parseOrThrow(keyPrefixSchema, req.params['prefix'], 'key prefix', 'prefix');
    await admin.revokeKey(name, prefix);
    res.status(204).end();
  });

  router.get('/admin/apps/:app/suppressions', requireAdmin, async (req, res) => {
    const name = appParameter(req);
    const query = parseQueryOrThrow(z.strictObject({ after: z.string().max(254).optional(), limit: pageLimitSchema.default(100) }), req.query);
    const rows = await admin.listSuppressions(name, { after: query.after, limit: query.limit });
    res.json({ suppressions: rows.map(suppressionJson), next_after: rows.length === query.limit ? (rows.at(-1)?.email ?? null) : null });
  });

  router.post('/admin/apps/:app/suppressions', requireAdmin, takesNoQuery, smallBody, async (req, res) => {
    const name = appParameter(req);
    const body = parseOrThrow(z.strictObject({ email: emailSchema, note: suppressionNoteSchema.optional() }), req.body, 'request');
    res.status(201).json(suppressionJson(await admin.addSuppression(name, body.email, body.note ?? null)));
  });

  router.delete('/admin/apps/:app/suppressions/:email', requireAdmin, takesNoQuery, async (req, res) => {
    const name = appParameter(req);
    const email = parseOrThrow(emailSchema, req.params['email'], 'address', 'email');
    if (!(await admin.removeSuppression(name, email))) {
      throw new NotFoundError(`${email} is not suppressed for app ${name}`);
    }
    res.status(204).end();
  });

  router.put('/admin/apps/:app/webhook', requireAdmin, takesNoQuery, smallBody, async (req, res) => {
    const name = appParameter(req);
    const body = parseOrThrow(
      z.strictObject({ url: webhookUrlSchema, rotate_secret: z.boolean().default(false), event_types: webhookEventTypesSchema.optional() }),
      req.body,
      'request',
    );
    res.json(webhookJson(await admin.setWebhook(name, { url: body.url, rotateSecret: body.rotate_secret, eventTypes: body.event_types })));
  });

  router.get('/admin/apps/:app/webhook', requireAdmin, takesNoQuery, async (req, res) => {
    res.json(webhookJson(await admin.getWebhook(appParameter(req))));
  });

  router.post('/admin/apps/:app/webhook/secrets', requireAdmin, takesNoQuery, smallBody, async (req, res) => {
    const name = appParameter(req);
    const body = parseOrThrow(
      z.strictObject({ overlap_seconds: secretOverlapSecondsSchema.default(DEFAULT_SECRET_OVERLAP_SECONDS) }),
      req.body ?? {},
      'request',
    );
    res.status(201).json(webhookJson(await admin.rotateWebhookSecret(name, body.overlap_seconds)));
  });

  router.delete('/admin/apps/:app/webhook', requireAdmin, takesNoQuery, async (req, res) => {
    await admin.removeWebhook(appParameter(req));
    res.status(204).end();
  });

  router.get('/admin/apps/:app/webhook/deliveries', requireAdmin, async (req, res) => {
    const name = appParameter(req);
    const query = parseQueryOrThrow(
      z.strictObject({ status: deliveryStatusSchema.optional(), before: deliveryIdSchema.optional(), limit: pageLimitSchema.default(100) }),
      req.query,
    );
    const page = await admin.listDeliveries(name, query);
    res.json({ deliveries: page.deliveries.map(deliveryJson), next_before: page.nextBefore });
  });

  router.post('/admin/apps/:app/webhook/deliveries/:delivery/redeliver', requireAdmin, takesNoQuery, async (req, res) => {
    const name = appParameter(req);
    const id = parseOrThrow(deliveryIdSchema, req.params['delivery'], 'delivery id', 'delivery');
    await admin.redeliver(name, id);
    res.status(202).json({ delivery_id: id, status: 'pending' });
  });

  return router;
}
