// The admin API (ADMIN_API_KEY): the dead-letter list of failed jobs and re-queueing them.
import express from 'express';
import { type RequestHandler, Router } from 'express';
import { z } from 'zod';

import type { Pool } from '../../db/pool.js';
import { listJobs, requeueFailed } from '../../jobs/admin.js';
import { JOB_STATUSES } from '../../jobs/status.js';
import { jobIdSchema, parseOrThrow } from '../schemas.js';
import { adminJobJson } from '../views.js';

export interface AdminRouteDeps {
  pool: Pool;
  notifyChannel: string;
  requireAdmin: RequestHandler;
}

const appName = z.string().min(1).max(100);

const listQuery = z.strictObject({
  status: z.enum(JOB_STATUSES).default('failed'),
  app: appName.optional(),
  before: jobIdSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
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

export function adminRouter({ pool, notifyChannel, requireAdmin }: AdminRouteDeps): Router {
  const router = Router();

  router.get('/admin/jobs', requireAdmin, async (req, res) => {
    const query = parseOrThrow(listQuery, req.query, 'query');
    const jobs = await listJobs(pool, query.status, { appName: query.app, before: query.before, limit: query.limit });
    res.json({ jobs: jobs.map(adminJobJson), next_before: jobs.length === query.limit ? (jobs.at(-1)?.id ?? null) : null });
  });

  router.post('/admin/jobs/requeue', requireAdmin, express.json({ limit: '1mb' }), async (req, res) => {
    const body = parseOrThrow(requeueBody, req.body, 'request');
    const requeued = await requeueFailed(pool, notifyChannel, { ids: body.job_ids ?? null, appName: body.app ?? null });
    res.json({ requeued });
  });

  return router;
}
