// POST /events: Mailjet's event callback. The credentials are checked first and the body is read
// only then, as text, whatever its Content-Type (it is parsed losslessly: MessageIDs exceed 2^53).
// The answer is 200 once every element is stored, applied or kept aside; see receiveEvents.
import { type RequestHandler, Router } from 'express';

import type { EventsReceipt } from '../../services/events.js';
import type { BodyBudget } from '../body-budget.js';
import type { BodyPace } from '../body-pace.js';
import { textBody } from '../text-body.js';

export interface EventsRouteDeps {
  receive: (body: string) => Promise<EventsReceipt>;
  /** The callback's credentials (wrong ones never reach the limit below). */
  requireCallbackAuth: RequestHandler;
  /** Requests per minute of the authenticated caller. */
  limit: RequestHandler;
  /** The budget of callbacks in progress (http/body-budget.ts): the body's reader runs within it, and a slow body gives its room to those waiting. */
  budget: BodyBudget;
  bodyLimit: string;
  /** HTTP_BODY_IDLE_TIMEOUT_MS, HTTP_BODY_MIN_RATE (http/body-pace.ts): a callback whose body stops coming, or comes too slowly, gives its share of the budget back then. */
  bodyPace: BodyPace;
}

export function eventsRouter({ receive, limit, budget, requireCallbackAuth, bodyLimit, bodyPace }: EventsRouteDeps): Router {
  const router = Router();
  // Any content type: Mailjet's is not documented, and the body is parsed here, not by express.
  const rawText = textBody({ limit: bodyLimit, pace: { ...bodyPace, room: budget.room } });

  router.post('/events', requireCallbackAuth, limit, budget.around(rawText), async (req, res) => {
    const text = typeof req.body === 'string' ? req.body : '';
    const receipt = await receive(text);
    // Written as it is, without express's res.json: an answer to a POST needs no ETag, which express
    // would compute by hashing the body.
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(receipt));
  });

  return router;
}
