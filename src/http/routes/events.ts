// POST /events: Mailjet's event callback. The body is read as text and parsed losslessly (MessageIDs
// exceed 2^53); the answer is 200 only once the batch is stored, since Mailjet retries anything else.
import express, { type RequestHandler, Router } from 'express';

import { ValidationError } from '../../errors.js';
import type { IngestResult } from '../../events/ingest.js';
import { type MailjetEvent, parseEventBody } from '../../events/parse.js';
import type { Logger } from '../../log.js';

export interface EventsRouteDeps {
  ingest: (events: readonly MailjetEvent[]) => Promise<IngestResult>;
  limit: RequestHandler;
  requireCallbackAuth: RequestHandler;
  bodyLimit: string;
  log: Logger;
}

export function eventsRouter({ ingest, limit, requireCallbackAuth, bodyLimit, log }: EventsRouteDeps): Router {
  const router = Router();
  // Any content type: Mailjet's is not documented, and the body is parsed here, not by express.
  const rawText = express.text({ type: () => true, limit: bodyLimit });

  router.post('/events', limit, requireCallbackAuth, rawText, async (req, res) => {
    const text = typeof req.body === 'string' ? req.body : '';
    const parsed = parseEventBody(text);
    if (!parsed.ok) {
      throw new ValidationError(parsed.reason, [{ path: '', message: parsed.reason }]);
    }
    if (parsed.events.length === 0 && parsed.rejected.length > 0) {
      throw new ValidationError(
        'no event in the body is a valid Mailjet event',
        parsed.rejected.flatMap((r) => r.issues.map((issue) => ({ path: [r.index, issue.path].filter((p) => p !== '').join('.'), message: issue.message }))),
      );
    }
    if (parsed.rejected.length > 0) {
      // Storing the valid ones and answering 200 keeps Mailjet from retrying the whole batch for a day.
      log.warn('skipped invalid events in a callback batch', { component: 'events', rejected: parsed.rejected });
    }
    const result = await ingest(parsed.events);
    res.status(200).json({
      received: parsed.events.length + parsed.rejected.length,
      stored: result.stored,
      duplicates: result.duplicates,
      unmatched: result.unmatched,
      rejected: parsed.rejected.length,
    });
  });

  return router;
}
