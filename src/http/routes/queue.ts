// POST /queue (one message or {"messages": [...]}) and DELETE /queue/{job_id}.
import { type RequestHandler, Router } from 'express';

import type { JobService } from '../../jobs/service.js';
import { callingApp } from '../auth.js';
import { parseJobId, parseQueueRequest } from '../schemas.js';
import { jobViewJson, queuedJobJson } from '../views.js';

export function queueRouter(jobs: JobService, requireApp: RequestHandler): Router {
  const router = Router();

  router.post('/queue', requireApp, async (req, res) => {
    const app = callingApp(res);
    const request = parseQueueRequest(req.body, req.get('idempotency-key'));
    const result = await jobs.enqueue(app.id, request.jobs, request.idempotencyKey);
    if (result.replayed) {
      res.setHeader('Idempotent-Replayed', 'true');
    }
    const first = result.jobs[0]!;
    if (!request.bulk) {
      res.setHeader('Location', queuedJobJson(first).status_url);
    }
    res.status(202).json(request.bulk ? { jobs: result.jobs.map(queuedJobJson) } : queuedJobJson(first));
  });

  router.delete('/queue/:jobId', requireApp, async (req, res) => {
    const app = callingApp(res);
    const jobId = parseJobId(req.params['jobId']);
    await jobs.cancel(app.id, jobId);
    const [view] = await jobs.view(app.id, [jobId]);
    res.status(200).json(jobViewJson(view!));
  });

  return router;
}
