// GET /status/{job_id} and the batch look-up GET /status?ids=… or ?custom_id=…, scoped to the calling app.
import { type RequestHandler, Router } from 'express';

import { NotFoundError } from '../../errors.js';
import type { JobService } from '../../jobs/service.js';
import { callingApp } from '../auth.js';
import { LIMITS, parseJobId, parseStatusLookup } from '../schemas.js';
import { jobViewJson } from '../views.js';

export function statusRouter(jobs: JobService, requireApp: RequestHandler): Router {
  const router = Router();

  router.get('/status/:jobId', requireApp, async (req, res) => {
    const app = callingApp(res);
    const jobId = parseJobId(req.params['jobId']);
    const [view] = await jobs.view(app.id, [jobId]);
    // Another app's job is indistinguishable from a missing one.
    if (!view) {
      throw new NotFoundError(`job ${jobId} not found`);
    }
    res.json(jobViewJson(view));
  });

  router.get('/status', requireApp, async (req, res) => {
    const app = callingApp(res);
    const lookup = parseStatusLookup(req.query);
    const views = lookup.ids
      ? await jobs.view(app.id, lookup.ids)
      : await jobs.viewByCustomId(app.id, lookup.customIds ?? [], LIMITS.statusLookupIds);
    res.json({ jobs: views.map(jobViewJson) });
  });

  return router;
}
