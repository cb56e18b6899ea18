// Stores a batch of Mailjet events and applies them, in one transaction: the answer to Mailjet is
// only a 200 once everything is durable. Repeats are skipped by their dedupe key; events for
// unknown messages are kept (recipient_id null) and applied when their send is recorded.
import type { Bus } from '../bus.js';
import { insertEvents, lockMessageIds } from '../db/events-repo.js';
import { type Pool, withTransaction } from '../db/pool.js';
import { applyEvents, type StatusChange } from '../jobs/apply-events.js';
import type { MailjetEvent } from './parse.js';

export interface IngestResult {
  received: number;
  stored: number;
  duplicates: number;
  unmatched: number;
  changes: StatusChange[];
}

export async function ingestEvents(pool: Pool, bus: Bus, events: readonly MailjetEvent[]): Promise<IngestResult> {
  // Bulk: one grouped POST may carry tens of thousands of events.
  const result = await withTransaction(pool, async (tx) => {
    await lockMessageIds(
      tx,
      events.flatMap((event) => (event.messageId === undefined ? [] : [event.messageId])),
    );
    const stored = await insertEvents(tx, events);
    const changes = await applyEvents(tx, stored);
    return {
      received: events.length,
      stored: stored.length,
      duplicates: events.length - stored.length,
      unmatched: stored.filter((event) => event.recipientId === null).length,
      changes,
    };
  }, { bulk: true });
  bus.emit('events:ingested', { received: result.received, stored: result.stored, unmatched: result.unmatched });
  return result;
}
