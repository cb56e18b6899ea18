// GET /status/{job_id} and the batch look-up GET /status?ids=… or ?custom_id=…, scoped to the calling app.
import { type RequestHandler, Router } from 'express';

import { NotFoundError } from '../../domain/errors.js';
import { changeJson } from '../../domain/status-change.js';
import type { JobService } from '../../services/jobs.js';
import { callingApp } from '../auth.js';
import { takesNoQuery } from '../query-string.js';
import { encodeCursor, LIMITS, parseJobId, parseStatusLookup } from '../schemas.js';
import { jobViewJson } from '../views.js';

export function statusRouter(jobs: JobService, requireApp: RequestHandler): Router {
  const router = Router();

  router.get('/status/:jobId', requireApp, takesNoQuery, async (req, res) => {
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
    switch (lookup.kind) {
      case 'feed': {
        const { changes, more } = await jobs.changes(app.id, lookup.after, lookup.limit);
        const last = changes.at(-1);
        res.json({ changes: changes.map(changeJson), next_cursor: encodeCursor(last ? { txid: last.txid, id: last.id } : lookup.after), has_more: more });
        return;
      }
      case 'ids':
        // At most as many jobs as ids: never more than the answer holds.
        res.json({ jobs: (await jobs.view(app.id, lookup.ids)).map(jobViewJson), truncated: false, next_after_job_id: null });
        return;
      case 'custom-ids': {
        const { views, truncated } = await jobs.viewByCustomId(app.id, lookup.customIds, LIMITS.statusLookupIds, lookup.afterJobId);
        // The page's last job: the next page reads the jobs after it (a job id is never reused).
        res.json({ jobs: views.map(jobViewJson), truncated, next_after_job_id: truncated ? views.at(-1)!.job.id : null });
        return;
      }
    }
  });

  return router;
}
