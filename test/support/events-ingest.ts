// A Mailjet callback body through the events ingest, as POST /events takes it, for the database tests.
import { lockMessagesShared } from '../../src/db/events-repo.js';
import { notifyChannels } from '../../src/db/notify.js';
import type { Pool } from '../../src/db/pool.js';
import { parseEventBody } from '../../src/domain/event-parse.js';
import { createEventIngest, type EventIngest } from '../../src/services/events.js';
import { TEST_SCHEMA } from './database.js';
import { openTransaction, someoneWaitsOn } from './held-transaction.js';

/** Parses the body (a test's own: throws if it is no callback) and ingests its events. */
export function ingestBody(pool: Pool, body: string): ReturnType<EventIngest> {
  const parsed = parseEventBody(body);
  if (!parsed.ok) {
    throw new Error(parsed.reason);
  }
  return createEventIngest(pool, notifyChannels(TEST_SCHEMA))(parsed.events);
}

/**
 * Runs `ingest` while a send's recording is in flight, as recordSendResults makes it (the message's
 * lock slot taken shared, then the recipient's MessageID written, uncommitted), and commits the
 * recording once the ingest waits on it: the late match.
 */
export async function ingestWhileRecording<T>(pool: Pool, recipientId: string, messageId: string, ingest: () => Promise<T>): Promise<T> {
  const recording = openTransaction(pool, async (tx) => {
    await lockMessagesShared(tx, [{ messageId, messageUuid: 'uuid-1' }]);
    await tx.query("update email_recipients set mailjet_message_id = $2, mailjet_message_uuid = 'uuid-1', status = 'accepted' where id = $1", [
      recipientId,
      messageId,
    ]);
  });
  await recording.written;
  const result = ingest();
  await someoneWaitsOn(pool, 'advisory', 'the ingest to wait on the recording');
  recording.commit();
  await recording.committed;
  return result;
}
