// POST /queue (one message or {"messages": [...]}) and DELETE /queue/{job_id}.
import { type RequestHandler, Router } from 'express';

import { AppError } from '../../domain/errors.js';
import type { JobService } from '../../services/jobs.js';
import { callingApp } from '../auth.js';
import type { BodyBudget } from '../body-budget.js';
import type { BodyPace } from '../body-pace.js';
import { jsonBody } from '../json-body.js';
import { takesNoQuery } from '../query-string.js';
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
  /** The budget of POST /queue bodies in progress (QUEUE_BODY_BUDGET, http/body-budget.ts): the body's reader runs within it. */
  budget: BodyBudget;
  bodyLimit: string;
  /** HTTP_BODY_IDLE_TIMEOUT_MS, HTTP_BODY_MIN_RATE (http/body-pace.ts). */
  bodyPace: BodyPace;
}

const JSON_TYPES = ['application/json', 'application/*+json'];

function emptyBody(): AppError {
  return new AppError('malformed-json', 400, 'the request body is empty: send one message, or {"messages": [...]}, as JSON');
}

export function queueRouter({ jobs, parseQueueRequest, requireApp, requireSender, limit, budget, bodyLimit, bodyPace }: QueueRouteDeps): Router {
  const router = Router();
  const readJson = jsonBody({ limit: bodyLimit, pace: bodyPace, strict: false, type: JSON_TYPES, emptyBody });

  router.post('/queue', requireSender, limit, takesNoQuery, budget.around(readJson), async (req, res) => {
    const app = callingApp(res);
    const request = parseQueueRequest(req.body, req.get('idempotency-key'));
    const result =
      request.refusal === undefined
        ? await jobs.enqueue(app.id, request.jobs, request.idempotencyKey, app.keyId)
        : await jobs.replay(app.id, request.jobs, request.idempotencyKey!, app.keyId);
    if (result === undefined) {
      throw request.refusal!;
    }
    if (result.replayed) {
      res.setHeader('Idempotent-Replayed', 'true');
    }
    const first = queuedJobJson(result.jobs[0]!);
    if (!request.bulk) {
      res.setHeader('Location', first.status_url);
    }
    // Written as it is, without express's res.json: an answer to a POST needs no ETag, which
    // express would compute by hashing the body.
    res.statusCode = 202;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(request.bulk ? { jobs: result.jobs.map(queuedJobJson) } : first));
  });

  router.delete('/queue/:jobId', requireApp, takesNoQuery, async (req, res) => {
    const app = callingApp(res);
    const jobId = parseJobId(req.params['jobId']);
    await jobs.cancel(app.id, jobId);
    const [view] = await jobs.view(app.id, [jobId]);
    res.status(200).json(jobViewJson(view!));
  });

  return router;
}
