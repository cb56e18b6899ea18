// email_events: the append-only, deduplicated history of Mailjet events.
import type { MailjetEvent } from '../events/parse.js';
import type { MailjetEventType } from '../jobs/status.js';
import { query, type Queryable } from './pool.js';

/** An event as stored, with where it was matched (null ids: kept aside, message not known yet). */
export interface StoredEvent {
  id: string;
  type: MailjetEventType;
  occurredAt: Date;
  recipientId: string | null;
  jobId: string | null;
  messageId: string | null;
  email: string | null;
  hardBounce: boolean | undefined;
  payload: Record<string, unknown>;
}

function toStoredEvent(row: Record<string, unknown>): StoredEvent {
  const payload = row['payload'] as Record<string, unknown>;
  return {
    id: String(row['id']),
    type: row['event_type'] as MailjetEventType,
    occurredAt: row['occurred_at'] as Date,
    recipientId: row['recipient_id'] === null ? null : String(row['recipient_id']),
    jobId: row['job_id'] === null ? null : String(row['job_id']),
    messageId: (row['mailjet_message_id'] as string | null) ?? null,
    email: (row['email'] as string | null) ?? null,
    hardBounce: typeof payload['hard_bounce'] === 'boolean' ? payload['hard_bounce'] : undefined,
    payload,
  };
}

const EVENT_COLUMNS = `
  id, event_type, occurred_at, recipient_id, job_id, mailjet_message_id::text as mailjet_message_id, email, payload`;

const LOCK_MESSAGES = `
  select pg_advisory_xact_lock(message_id)
  from unnest($1::bigint[]) as message_id`;

/**
 * Serialises the writers that match events to messages: the events ingest and the recording of a
 * send's MessageIDs. Without it an event stored while its MessageID was being recorded (both
 * uncommitted) would be matched by neither. Ids are locked in ascending order to avoid deadlocks.
 */
export async function lockMessageIds(tx: Queryable, messageIds: readonly string[]): Promise<void> {
  const sorted = [...new Set(messageIds)].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
  if (sorted.length > 0) {
    await query(tx, LOCK_MESSAGES, [sorted]);
  }
}

// Each event is matched to its recipient by MessageID, else by Message_GUID (both indexed); a
// repeat of a stored event (same dedupe key) is skipped.
const INSERT_EVENTS = `
  insert into email_events (
    dedupe_key, event_type, occurred_at, mailjet_message_id, mailjet_message_uuid, email, recipient_id, job_id, payload
  )
  select e.dedupe_key, e.event_type, e.occurred_at, e.message_id, e.message_uuid, e.email, m.id, m.job_id, e.payload
  from unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[], $7::jsonb[])
    as e(dedupe_key, event_type, occurred_at, message_id, message_uuid, email, payload)
  left join lateral (
    select r.id, r.job_id
    from email_recipients r
    where r.id = coalesce(
      (select by_id.id from email_recipients by_id where by_id.mailjet_message_id = e.message_id limit 1),
      (select by_uuid.id from email_recipients by_uuid where by_uuid.mailjet_message_uuid = e.message_uuid limit 1)
    )
  ) m on true
  on conflict (dedupe_key) do nothing
  returning ${EVENT_COLUMNS}`;

/** Stores new events; returns only those not seen before. */
export async function insertEvents(tx: Queryable, events: readonly MailjetEvent[]): Promise<StoredEvent[]> {
  if (events.length === 0) {
    return [];
  }
  const rows = await query(tx, INSERT_EVENTS, [
    events.map((e) => e.dedupeKey),
    events.map((e) => e.type),
    events.map((e) => e.occurredAt),
    events.map((e) => e.messageId ?? null),
    events.map((e) => e.messageUuid ?? null),
    events.map((e) => e.email),
    events.map((e) => JSON.stringify(e.raw)),
  ]);
  return rows.map(toStoredEvent);
}

const MATCH_KEPT_EVENTS = `
  update email_events e
  set recipient_id = r.id,
    job_id = r.job_id
  from email_recipients r
  where r.job_id = any($1::bigint[])
    and e.recipient_id is null
    and (e.mailjet_message_id = r.mailjet_message_id or e.mailjet_message_uuid = r.mailjet_message_uuid)
  returning e.id, e.event_type, e.occurred_at, e.recipient_id, e.job_id, e.mailjet_message_id::text as mailjet_message_id,
    e.email, e.payload`;

/** Attaches events that arrived before their message's ids were recorded; returns them. */
export async function matchKeptEvents(tx: Queryable, jobIds: readonly string[]): Promise<StoredEvent[]> {
  if (jobIds.length === 0) {
    return [];
  }
  const rows = await query(tx, MATCH_KEPT_EVENTS, [jobIds]);
  return rows.map(toStoredEvent);
}

const FIND_EVENTS_OF_JOBS = `
  select ${EVENT_COLUMNS}
  from email_events
  where job_id = any($1::bigint[])
  order by job_id, occurred_at, id`;

export async function findEventsOfJobs(db: Queryable, jobIds: readonly string[]): Promise<StoredEvent[]> {
  const rows = await query(db, FIND_EVENTS_OF_JOBS, [jobIds]);
  return rows.map(toStoredEvent);
}
