// A Mailjet callback body through the events ingest, as POST /events takes it, for the database tests.
import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { parseEventBody } from '../../src/domain/event-parse.js';
import { createEventIngest, type EventIngest } from '../../src/services/events.js';
import { TEST_SCHEMA } from './database.js';

/** Parses the body (a test's own: throws if it is no callback) and ingests its events. */
export function ingestBody(pool: Pool, body: string): ReturnType<EventIngest> {
  const parsed = parseEventBody(body);
  if (!parsed.ok) {
    throw new Error(parsed.reason);
  }
  return createEventIngest(pool, notifyChannels(TEST_SCHEMA))(parsed.events);
}
