// email_events: the append-only, deduplicated history of Mailjet events.
import type { StoredEvent } from '../domain/event.js';
import type { MailjetEvent } from '../domain/event-parse.js';
import type { MailjetEventType } from '../domain/status.js';
import { query, type Queryable } from './pool.js';

function toStoredEvent(row: Record<string, unknown>): StoredEvent {
  const payload = row['payload'] as Record<string, unknown>;
  return {
    id: String(row['id']),
    type: row['event_type'] as MailjetEventType,
    occurredAt: row['occurred_at'] as Date,
    recipientId: row['recipient_id'] as string | null,
    jobId: row['job_id'] as string | null,
    messageId: (row['mailjet_message_id'] as string | null) ?? null,
    messageUuid: (row['mailjet_message_uuid'] as string | null) ?? null,
    email: (row['email'] as string | null) ?? null,
    hardBounce: typeof payload['hard_bounce'] === 'boolean' ? payload['hard_bounce'] : undefined,
    payload,
  };
}

const EVENT_COLUMNS = `
  id, event_type, occurred_at, recipient_id, job_id, mailjet_message_id::text as mailjet_message_id, mailjet_message_uuid, email,
  payload`;

// Matching an event to its message races the recording of that message's send: an event stored
// (uncommitted) while the send's MessageIDs are being recorded (uncommitted) would be matched by
// neither transaction. So the two take an advisory lock on the message first: the events ingest
// exclusively, and only for the events it could not match (the common case takes none); the send's
// recording in shared mode (recordings never race each other). Whichever comes second waits for the
// first to commit and then sees its rows.
//
// Messages are hashed into MESSAGE_LOCK_SLOTS slots (by MessageID and by Message_GUID, since either
// may match), so a transaction holds at most that many locks however many events it applies: one
// lock per MessageID filled PostgreSQL's shared lock table (max_locks_per_transaction × connections,
// 64 × 100 by default) on a grouped callback of 20,000 events. Two messages in one slot only wait
// for each other a little longer. Slots are taken in ascending order, so two transactions never
// wait for each other in a circle.
const MESSAGE_LOCK_SLOTS = 64;
/** The first key of jetpost's two-key advisory locks ("jm"): apart from any one-key lock. */
const MESSAGE_LOCK_CLASS = 0x6a6d;

const LOCK_SLOTS_EXCLUSIVE = `
  select pg_advisory_xact_lock($1::int, slot)
  from unnest($2::int[]) as slot`;

const LOCK_SLOTS_SHARED = `
  select pg_advisory_xact_lock_shared($1::int, slot)
  from unnest($2::int[]) as slot`;

export interface MessageKeys {
  messageId?: string | null | undefined;
  messageUuid?: string | null | undefined;
}

/** The lock slots of the messages (of their MessageIDs and GUIDs), ascending. */
export function messageLockSlots(messages: readonly MessageKeys[]): number[] {
  const slots = new Set<number>();
  for (const { messageId, messageUuid } of messages) {
    if (messageId) {
      slots.add(textSlot(BigInt(messageId).toString()));
    }
    if (messageUuid) {
      slots.add(textSlot(messageUuid));
    }
  }
  return [...slots].sort((a, b) => a - b);
}

/** FNV-1a over the UTF-16 code units, folded into a slot. */
function textSlot(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  }
  return (hash >>> 0) % MESSAGE_LOCK_SLOTS;
}

/** The events ingest: locks the slots of events it could not match, before matching them again. */
export async function lockMessagesExclusive(tx: Queryable, messages: readonly MessageKeys[]): Promise<void> {
  const slots = messageLockSlots(messages);
  if (slots.length > 0) {
    await query(tx, LOCK_SLOTS_EXCLUSIVE, [MESSAGE_LOCK_CLASS, slots]);
  }
}

/** The recording of a send: locks the slots of its messages before it records their ids. */
export async function lockMessagesShared(tx: Queryable, messages: readonly MessageKeys[]): Promise<void> {
  const slots = messageLockSlots(messages);
  if (slots.length > 0) {
    await query(tx, LOCK_SLOTS_SHARED, [MESSAGE_LOCK_CLASS, slots]);
  }
}

// Each event is matched to its recipient by MessageID, else by Message_GUID (both indexed); a
// repeat of a stored event (same dedupe key) is skipped. Rows go in in the caller's order, so that
// concurrent ingests, which all sort the same way, wait on each other's dedupe keys in one order.
const INSERT_EVENTS = `
  insert into email_events (
    dedupe_key, event_type, occurred_at, mailjet_message_id, mailjet_message_uuid, email, recipient_id, job_id, payload
  )
  select e.dedupe_key, e.event_type, e.occurred_at, e.message_id, e.message_uuid, e.email, m.id, m.job_id, e.payload
  from unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[], $7::jsonb[])
    with ordinality as e(dedupe_key, event_type, occurred_at, message_id, message_uuid, email, payload, ord)
  left join lateral (
    select r.id, r.job_id
    from email_recipients r
    where r.id = coalesce(
      (select by_id.id from email_recipients by_id where by_id.mailjet_message_id = e.message_id limit 1),
      (select by_uuid.id from email_recipients by_uuid where by_uuid.mailjet_message_uuid = e.message_uuid limit 1)
    )
  ) m on true
  order by e.ord
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

const MATCH_EVENTS = `
  with found as (
    select e.id as event_id,
      coalesce(
        (select by_id.id from email_recipients by_id where by_id.mailjet_message_id = e.mailjet_message_id limit 1),
        (select by_uuid.id from email_recipients by_uuid where by_uuid.mailjet_message_uuid = e.mailjet_message_uuid limit 1)
      ) as recipient_id
    from email_events e
    where e.id = any($1::bigint[])
      and e.recipient_id is null
  )
  update email_events e
  set recipient_id = r.id,
    job_id = r.job_id
  from found f
  join email_recipients r on r.id = f.recipient_id
  where e.id = f.event_id
  returning e.id, e.event_type, e.occurred_at, e.recipient_id, e.job_id, e.mailjet_message_id::text as mailjet_message_id,
    e.mailjet_message_uuid, e.email, e.payload`;

/** Matches stored, still unmatched events (by id) to their recipients where one is known now; returns those. */
export async function matchEvents(tx: Queryable, eventIds: readonly string[]): Promise<StoredEvent[]> {
  if (eventIds.length === 0) {
    return [];
  }
  const rows = await query(tx, MATCH_EVENTS, [eventIds]);
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
    e.mailjet_message_uuid, e.email, e.payload`;

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

const FIND_EVENTS_OF_JOB = `
  select ${EVENT_COLUMNS}
  from email_events
  where job_id = $1::bigint
  order by occurred_at, id
  limit $2`;

/** A job's events, oldest first, at most `limit` of them (a message clicked by a bot can have thousands). */
export async function findEventsOfJob(db: Queryable, jobId: string, limit: number): Promise<StoredEvent[]> {
  const rows = await query(db, FIND_EVENTS_OF_JOB, [jobId, limit]);
  return rows.map(toStoredEvent);
}

// Retention: up to `$2` events never matched to a message, received more than `$1` ms ago
// (email_events_unmatched_received_at_idx). An event being matched right now is skipped (locked), or
// kept once matched (checked again under the lock).
const PRUNE_UNMATCHED = `
  delete from email_events
  where recipient_id is null
    and id in (
      select id
      from email_events
      where recipient_id is null
        and received_at < now() - make_interval(secs => $1::double precision / 1000)
      order by received_at
      limit $2
      for update skip locked)`;

/** Deletes up to `limit` unmatched events older than `retentionMs`; returns how many. */
export async function pruneUnmatchedEvents(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  return (await db.query(PRUNE_UNMATCHED, [retentionMs, limit])).rowCount ?? 0;
}
