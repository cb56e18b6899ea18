// POST /queue (one message or {"messages": [...]}) and DELETE /queue/{job_id}.
import { type RequestHandler, Router } from 'express';

import { AppError } from '../../domain/errors.js';
import type { JobService } from '../../services/jobs.js';
import { callingApp } from '../auth.js';
import { jsonBody } from '../json-body.js';
import { parseJobId, type QueueRequestParser } from '../schemas.js';
import { jobViewJson, queuedJobJson } from '../views.js';

export interface QueueRouteDeps {
  jobs: JobService;
  parseQueueRequest: QueueRequestParser;
  requireApp: RequestHandler;
  /**
   * requireApp for POST /queue, which may trust the key cache: the transaction that stores the
   * messages checks again that the key is unrevoked (services/jobs.ts).
   */
  requireSender: RequestHandler;
  /** The per-app rate limit (after authentication: it counts by app). */
  limit: RequestHandler;
  bodyLimit: string;
}

const JSON_TYPES = ['application/json', 'application/*+json'];

/** Only a JSON body is read, and only once the caller is known: nobody else makes us parse 20 MB. */
const requireJson: RequestHandler = (req, _res, next) => {
  next(req.is(JSON_TYPES) ? undefined : new AppError('unsupported-media-type', 415, 'send the message as JSON: Content-Type: application/json'));
};

export function queueRouter({ jobs, parseQueueRequest, requireApp, requireSender, limit, bodyLimit }: QueueRouteDeps): Router {
  const router = Router();
  const readJson = jsonBody({ limit: bodyLimit, strict: false, type: JSON_TYPES });

  router.post('/queue', requireSender, limit, requireJson, readJson, async (req, res) => {
    const app = callingApp(res);
    const request = parseQueueRequest(req.body, req.get('idempotency-key'));
    const result = await jobs.enqueue(app.id, request.jobs, request.idempotencyKey, app.keyId);
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
