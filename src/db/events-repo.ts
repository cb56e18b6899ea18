// email_events: the append-only, deduplicated history of Mailjet events.
import { eventAddressKey, isHoldersAddress } from '../domain/email-address.js';
import { JobDeletedMeanwhileError, RecipientMovedMeanwhileError } from '../domain/errors.js';
import { OMITTED_EVENTS_COUNTED, type StoredEvent } from '../domain/event.js';
import type { EventEffect } from '../domain/event-application.js';
import { DETAIL_PAYLOAD_KEYS, type MailjetEvent } from '../domain/event-parse.js';
import { EVENT_CLOCK_SKEW_MS } from '../domain/event-time.js';
import { DELIVERY_ORDER, type MailjetEventType } from '../domain/status.js';
import { type PreparedStatement, query, type Queryable } from './pool.js';

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

const LOCK_SLOTS_SHARED_TEXT = `
  select pg_advisory_xact_lock_shared($1::int, slot)
  from unnest($2::int[]) as slot`;
const LOCK_SLOTS_SHARED: PreparedStatement = { name: 'events_lock_slots_shared', text: LOCK_SLOTS_SHARED_TEXT };

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
    e.mailjet_message_uuid, e.email, e.payload, e.dedupe_key, r.email as holder_email`;

/**
 * An event matched to its recipient after it was stored, with that recipient's address (not checked
 * yet: isHoldersAddress), and the event's dedupe key (MailjetEvent's).
 */
export type LateMatch = StoredEvent & { holderEmail: string; dedupeKey: string };

function toLateMatch(row: Record<string, unknown>): LateMatch {
  return { ...toStoredEvent(row), holderEmail: row['holder_email'] as string, dedupeKey: row['dedupe_key'] as string };
}

/** Matches stored, still unmatched events (by id) to their recipients where one is known now; returns those. */
export async function matchEvents(tx: Queryable, eventIds: readonly string[]): Promise<LateMatch[]> {
  if (eventIds.length === 0) {
    return [];
  }
  const rows = await query(tx, MATCH_EVENTS, [eventIds]);
  return rows.map(toLateMatch);
}

const MATCH_KEPT_EVENTS_TEXT = `
  update email_events e
  set recipient_id = r.id,
    job_id = r.job_id
  from email_recipients r
  where r.job_id = any($1::bigint[])
    and e.recipient_id is null
    and (e.mailjet_message_id = r.mailjet_message_id or e.mailjet_message_uuid = r.mailjet_message_uuid)
  returning e.id, e.event_type, e.occurred_at, e.recipient_id, e.job_id, e.mailjet_message_id::text as mailjet_message_id,
    e.mailjet_message_uuid, e.email, e.payload, e.dedupe_key, r.email as holder_email`;
const MATCH_KEPT_EVENTS: PreparedStatement = { name: 'events_match_kept', text: MATCH_KEPT_EVENTS_TEXT };

/** Attaches events that arrived before their message's ids were recorded; returns them. */
export async function matchKeptEvents(tx: Queryable, jobIds: readonly string[]): Promise<LateMatch[]> {
  if (jobIds.length === 0) {
    return [];
  }
  const rows = await query(tx, MATCH_KEPT_EVENTS, [jobIds]);
  return rows.map(toLateMatch);
}

const DELETE_EVENTS = `delete from email_events where id = any($1::bigint[])`;

/** Takes stored events out of the history: late matches for a recipient with another address, kept aside instead. */
export async function deleteEvents(tx: Queryable, eventIds: readonly string[]): Promise<void> {
  if (eventIds.length > 0) {
    await tx.query(DELETE_EVENTS, [eventIds]);
  }
}

/**
 * What an event's JSON in a status answer holds besides its details and address (type, message_id,
 * occurred_at, the keys): a byte budget counts it with them.
 */
const EVENT_JSON_OVERHEAD_BYTES = 120;

// The latest events of each job, one more than the caller keeps (to tell whether some are left
// out), read backwards on email_events_job_id_idx; returned oldest first. Of each payload only the
// keys `$3` (what the reads show): an event can hold up to 256 KiB of fields no read shows.
// With a budget `$4` (bytes, null for none), an event is kept while the events kept so far fit in it,
// taken in turns: every job's latest, then every job's second latest, and so on (rank, then job). So
// each job keeps its latest few, and one job's large events do not crowd out every other job's. An
// event's bytes are its details' JSON text (as PostgreSQL writes it: a space after each colon and
// comma, a little more than the answer's) and its address, with EVENT_JSON_OVERHEAD_BYTES. The events
// not kept come back without their payload.
const FIND_LATEST_EVENTS_OF_JOBS = `
  select e.id, e.event_type, e.occurred_at, e.recipient_id, e.job_id, e.mailjet_message_id, e.mailjet_message_uuid, e.email,
    case when e.kept then e.payload end as payload, e.kept
  from (
    select c.*,
      c.rank <= $2 and ($4::bigint is null
        or sum(case when c.rank <= $2 then c.bytes else 0 end) over (order by c.rank, c.job_id rows unbounded preceding) <= $4) as kept
    from unnest($1::bigint[]) as j(id)
    cross join lateral (
      select l.*,
        row_number() over (order by l.occurred_at desc, l.id desc) as rank,
        octet_length(l.payload::text) + coalesce(octet_length(l.email), 0) + ${EVENT_JSON_OVERHEAD_BYTES} as bytes
      from (
        select id, event_type, occurred_at, recipient_id, job_id, mailjet_message_id::text as mailjet_message_id, mailjet_message_uuid, email,
          (select coalesce(jsonb_object_agg(key, value), '{}') from jsonb_each(payload) where key = any($3::text[])) as payload
        from email_events
        where job_id = j.id
        order by occurred_at desc, id desc
        limit $2 + 1
      ) as l
    ) as c
  ) as e
  order by e.job_id, e.occurred_at, e.id`;

// Each job's events up to its `$2`, through email_events_job_id_idx.
const COUNT_EVENTS_OF_JOBS = `
  select j.id::text as job_id,
    (select count(*) from (select 1 from email_events e where e.job_id = j.id limit j.up_to) as counted)::int as events
  from unnest($1::bigint[], $2::int[]) as j(id, up_to)`;

export interface LatestEvents {
  /** The latest events of each job (up to the limit, and within the budget), by job, oldest first. */
  events: StoredEvent[];
  /** By job id, how many older events were left out, at most OMITTED_EVENTS_COUNTED (a job with none left out is absent). */
  omitted: Map<string, number>;
}

/**
 * The latest `limit` events of each job (a message clicked by a link scanner can have tens of
 * thousands), all of them together within `maxBytes` when given (see FIND_LATEST_EVENTS_OF_JOBS),
 * and how many older ones each leaves out: counted only for the jobs that have more, and only up to
 * OMITTED_EVENTS_COUNTED (that many means that many or more).
 * Their payloads hold the keys eventDetails reads (DETAIL_PAYLOAD_KEYS), no other.
 */
export async function findEventsOfJobs(db: Queryable, jobIds: readonly string[], limit: number, maxBytes?: number): Promise<LatestEvents> {
  const rows = await query(db, FIND_LATEST_EVENTS_OF_JOBS, [jobIds, limit, DETAIL_PAYLOAD_KEYS, maxBytes ?? null]);
  const perJob = new Map<string, { kept: StoredEvent[]; read: number }>();
  for (const row of rows) {
    const jobId = String(row['job_id']);
    const job = perJob.get(jobId) ?? { kept: [], read: 0 };
    job.read += 1;
    if (row['kept'] === true) {
      job.kept.push(toStoredEvent(row));
    }
    perJob.set(jobId, job);
  }
  const over = [...perJob].filter(([, job]) => job.read > job.kept.length);
  const omitted = new Map<string, number>();
  if (over.length > 0) {
    const counts = await query(db, COUNT_EVENTS_OF_JOBS, [over.map(([jobId]) => jobId), over.map(([, job]) => job.kept.length + OMITTED_EVENTS_COUNTED)]);
    for (const row of counts) {
      const jobId = row['job_id'] as string;
      omitted.set(jobId, Math.max(0, (row['events'] as number) - perJob.get(jobId)!.kept.length));
    }
  }
  return { events: [...perJob.values()].flatMap((job) => job.kept), omitted };
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

// The events ingest in one statement: store the new events (a repeat of a stored one is skipped)
// matched to their recipients by MessageID, else by Message_GUID (both indexed), then apply them as
// domain/event-application.ts says (the two are checked against each other by
// test/db/events-apply-agreement.test.ts). Rows go in in the caller's order, so that concurrent
// ingests, which all sort the same way, wait on each other's dedupe keys in one order. Applying:
// - lock the jobs of the new matched events, then all their recipients, in id order (the order every
//   writer locks in); a locking read returns the rows as the last writer committed them, so the
//   state the rules see is the current one, as after lockJobs and lockRecipientsOfJobs;
// - each event, taken in the order the events happened (occurred_at, then id), moves its recipient
//   forward when its target ranks above the recipient's status so far: that step is a change;
// - a job Mailjet accepted takes its recipients' highest status;
// - the changes are logged for the feed, with their webhook deliveries (and a NOTIFY when there are
//   some; none for an app whose webhook is disabled), and bounces, complaints and unsubscribes
//   suppress the address for the job's app.
// The events come as one JSON array (one parameter: no array literal to escape, and the payloads
// are parsed once), of objects with one-letter keys, named in the column list of "input", and no
// key for an absent value (read as null): key names and nulls were a sixth of the parameter.
// Statuses rank by their position in $2 (DELIVERY_ORDER); a status not in it never moves.
// The insert and the locks run first and in that order: each later step reads them through an
// array(...) sub-select, which PostgreSQL evaluates to the end before the step starts.
const STORE_AND_APPLY_TEXT = `
  with input as materialized (
    select *
    from rows from (
      jsonb_to_recordset($1::jsonb) as (k text, t text, o timestamptz, m bigint, u text, e text, p jsonb, g text, d jsonb, r text, s text, a text)
    ) with ordinality as e(
      dedupe_key, event_type, occurred_at, message_id, message_uuid, email, payload, target, details, suppression_reason,
      suppression_detail, address_key, ord)
  ), matched as materialized (
    -- Each event's recipient, and the place (ctid) of the row version this statement's snapshot saw:
    -- the lock and the update below reach the row through it rather than through the primary key,
    -- one random index page per event fewer in a long history. A writer that updated the row since
    -- (this statement waited for it on the job's lock) left a newer version elsewhere, which
    -- PostgreSQL does not take for the one at that place: the row is then neither locked nor
    -- updated, and \`missed\` has the caller try again, with a snapshot that sees the newer version.
    -- An event for a recipient with another address is not that recipient's: Mailjet gave its
    -- MessageID to another message too, and the id stays with its first holder (jobs-repo's
    -- ACCEPT_SENT). Whether the address is the holder's is decided by isHoldersAddress alone (the
    -- caller); here only the plain case is settled: an ASCII holder whose address, lower-cased, is the
    -- event's eventAddressKey (e.address_key). Any other (unchecked) is neither stored nor applied
    -- here, and returned with the holder's address for the caller to decide. False, never null, for
    -- an event without a recipient, or whose address the caller checked (e.address_key null).
    select e.ord, e.dedupe_key, coalesce(by_id.id, by_uuid.id) as recipient_id, coalesce(by_id.job_id, by_uuid.job_id) as job_id,
      coalesce(by_id.ctid, by_uuid.ctid) as recipient_ctid, coalesce(by_id.email, by_uuid.email) as holder_email,
      coalesce(by_id.email, by_uuid.email) is not null and e.address_key is not null
        and not (octet_length(coalesce(by_id.email, by_uuid.email)) = char_length(coalesce(by_id.email, by_uuid.email))
          and lower(coalesce(by_id.email, by_uuid.email) collate "C") = e.address_key) as unchecked
    from input e
    left join lateral (
      select r.ctid, r.id, r.job_id, r.email from email_recipients r where r.mailjet_message_id = e.message_id limit 1
    ) by_id on true
    left join lateral (
      select r.ctid, r.id, r.job_id, r.email from email_recipients r where by_id.id is null and r.mailjet_message_uuid = e.message_uuid limit 1
    ) by_uuid on true
  ), inserted as (
    insert into email_events (
      dedupe_key, event_type, occurred_at, mailjet_message_id, mailjet_message_uuid, email, recipient_id, job_id, payload
    )
    select e.dedupe_key, e.event_type, e.occurred_at, e.message_id, e.message_uuid, e.email, m.recipient_id, m.job_id, e.payload
    from input e
    join matched m on m.ord = e.ord
    where not m.unchecked
    order by e.ord
    on conflict (occurred_at, dedupe_key) do nothing
    returning id, dedupe_key, event_type, recipient_id, job_id, mailjet_message_id, mailjet_message_uuid
  ), locked_jobs as (
    select j.id, j.app_id, j.status, j.accepted_at, j.recipient_count
    from email_send_jobs j
    where j.id = any(array(select i.job_id from inserted i where i.job_id is not null))
    order by j.id
    for no key update
  ), locked_single_recipients as (
    -- A one-recipient job's only recipient is the one its event matched: locked at the place the
    -- look-up found it (see matched).
    select r.id, r.job_id, r.status, r.email
    from email_recipients r
    where r.ctid = any(array(
      select m.recipient_ctid
      from inserted i
      join matched m on m.dedupe_key = i.dedupe_key
      join locked_jobs j on j.id = i.job_id
      where j.recipient_count = 1))
    order by r.id
    for no key update
  ), locked_multi_recipients as (
    select r.id, r.job_id, r.status, r.email
    from email_recipients r
    where r.job_id = any(array(select j.id from locked_jobs j where j.recipient_count > 1))
    order by r.id
    for no key update
  ), locked_recipients as (
    -- A recipient belongs to one job, and every job is one-recipient or not for good: the two locks
    -- take disjoint rows, each set in id order, under the locks of their jobs.
    select * from locked_single_recipients
    union all
    select * from locked_multi_recipients
  ), applied as (
    select i.id, i.job_id, i.recipient_id, m.recipient_ctid, e.occurred_at, e.details, e.suppression_reason, e.suppression_detail,
      array_position($2::text[], r.status) as current_rank,
      array_position($2::text[], e.target) as target_rank,
      max(array_position($2::text[], e.target)) over (
        partition by i.recipient_id order by e.occurred_at, i.id rows between unbounded preceding and 1 preceding
      ) as earlier_rank
    from inserted i
    join input e on e.dedupe_key = i.dedupe_key
    join matched m on m.dedupe_key = i.dedupe_key
    join locked_recipients r on r.id = i.recipient_id
  ), steps as (
    -- greatest() skips nulls: the status before this event is the highest of the recipient's and the earlier targets.
    select a.*, greatest(a.current_rank, a.earlier_rank) as from_rank
    from applied a
    where a.current_rank is not null
      and a.target_rank > greatest(a.current_rank, a.earlier_rank)
  ), recipient_changes as (
    select s.recipient_id as id, s.recipient_ctid as ctid, max(s.target_rank) as rank
    from steps s
    group by s.recipient_id, s.recipient_ctid
  ), recipients_updated as (
    -- At the place the look-up found the row (see matched).
    update email_recipients r
    set status = ($2::text[])[c.rank],
      updated_at = now()
    from recipient_changes c
    where r.ctid = c.ctid
    returning r.id
  ), job_changes as (
    select j.id, ($2::text[])[max(coalesce(c.rank, array_position($2::text[], r.status)))] as status
    from locked_jobs j
    join locked_recipients r on r.job_id = j.id
    left join recipient_changes c on c.id = r.id
    where array_position($2::text[], j.status) is not null
    group by j.id, j.status
    having ($2::text[])[max(coalesce(c.rank, array_position($2::text[], r.status)))] <> j.status
  ), jobs_updated as (
    update email_send_jobs j
    set status = c.status,
      updated_at = now()
    from job_changes c
    where j.id = c.id
    returning j.id
  ), changes as (
    insert into status_changes (app_id, job_id, recipient_id, old_status, new_status, details)
    select j.app_id, s.job_id, s.recipient_id, ($2::text[])[s.from_rank], ($2::text[])[s.target_rank], s.details
    from steps s
    join locked_jobs j on j.id = s.job_id
    order by s.occurred_at, s.id
    returning id, app_id, new_status
  ), deliveries as (
    insert into webhook_deliveries (change_id, app_id, url)
    select c.id, c.app_id, a.webhook_url
    from changes c
    join apps a on a.id = c.app_id
    -- As webhook-deliveries-repo's INSERT_DELIVERIES: none while the webhook is disabled (410 Gone).
    where a.webhook_url is not null
      and a.webhook_disabled_at is null
      and (a.webhook_event_types is null or c.new_status = any(a.webhook_event_types))
    order by c.id
    returning id
  ), suppressed as (
    insert into suppressions (app_id, email, reason, detail)
    select j.app_id, address_key(r.email), a.suppression_reason, a.suppression_detail
    from applied a
    join locked_recipients r on r.id = a.recipient_id
    join locked_jobs j on j.id = r.job_id
    where a.suppression_reason is not null
    -- One order for every writer: two callbacks suppressing the same addresses never wait in a circle.
    -- Of an address's rows, the first event (by its time) is written, and gives the reason: as
    -- event-application.ts plans it.
    order by j.app_id, address_key(r.email), a.occurred_at, a.id
    on conflict (app_id, email) do nothing
    returning app_id
  )
  select
    -- The new events, by their position in $1 (from 1): the caller tells whose they are.
    array(select e.ord::int from inserted i join input e on e.dedupe_key = i.dedupe_key) as inserted,
    -- The events whose address the caller checks (see matched), by position, with their holder.
    coalesce((
      select json_agg(json_build_object('ord', m.ord, 'holderJobId', m.job_id::text, 'holderEmail', m.holder_email) order by m.ord)
      from matched m
      where m.unchecked
    ), '[]') as unchecked,
    -- The events left without their message: the new ones, and repeats of ones stored so (matched
    -- again by the caller, as at their first arrival, in case that was cut short).
    array(
      select json_build_object('id', i.id::text, 'dedupeKey', i.dedupe_key, 'repeat', false)
      from inserted i
      where i.recipient_id is null
      union all
      select json_build_object('id', k.id::text, 'dedupeKey', k.dedupe_key, 'repeat', true)
      from input e
      join email_events k on k.occurred_at = e.occurred_at and k.dedupe_key = e.dedupe_key
      where k.recipient_id is null
        and not exists (select from inserted i where i.dedupe_key = e.dedupe_key)
    ) as unmatched,
    -- As acceptedToSentMs (domain/event-time.ts): the event's time held to [accepted_at, now() + $4 ms].
    array(
      select greatest(0, floor(extract(epoch from least(s.occurred_at, now() + make_interval(secs => $4::double precision / 1000))) * 1000)
        - floor(extract(epoch from j.accepted_at) * 1000))
      from steps s
      join locked_jobs j on j.id = s.job_id
      where s.target_rank = array_position($2::text[], 'sent') and j.accepted_at is not null
    )::float8[] as sent_after_accepted_ms,
    (select count(*) from recipients_updated)::int as recipients_updated,
    (select count(*) from jobs_updated)::int as jobs_updated,
    (select count(*) from suppressed)::int as suppressed,
    -- New events matched to a job deleted before it could be locked: the caller rolls back.
    (select count(*) from inserted i where i.job_id is not null and not exists (select from locked_jobs j where j.id = i.job_id))::int as orphaned,
    -- New matched events whose recipient was not locked, and recipients not updated, because a
    -- writer moved their row meanwhile (see matched): the caller rolls back and tries again rather
    -- than drop the events' effect.
    ((select count(*) from inserted i where i.recipient_id is not null and not exists (select from locked_recipients r where r.id = i.recipient_id))
      + (select count(*) from recipient_changes) - (select count(*) from recipients_updated))::int as missed,
    case when exists (select from deliveries) then pg_notify($3, '') end is not null as notified`;

const STORE_AND_APPLY: PreparedStatement = { name: 'events_store_and_apply', text: STORE_AND_APPLY_TEXT };

// The jobs holding these messages, locked in id order (the order every writer locks in). Taken before
// STORE_AND_APPLY when it is tried again after a miss (RecipientMovedMeanwhileError): its snapshot is
// then taken once it holds them, and no writer moves a recipient without its job's lock, so it sees
// their recipients where they are. Without it, each try's snapshot came before it waited on the job
// again, and every writer that took the job first made it miss once more.
const LOCK_JOBS_OF_MESSAGES = `
  select j.id
  from email_send_jobs j
  where j.id in (
    select r.job_id from email_recipients r where r.mailjet_message_id = any($1::bigint[])
    union
    select r.job_id from email_recipients r where r.mailjet_message_uuid = any($2::text[])
  )
  order by j.id
  for no key update`;

/** Locks the jobs of the events' messages (by MessageID and Message_GUID), before STORE_AND_APPLY is tried again. */
export async function lockJobsOfMessages(tx: Queryable, messages: readonly MessageKeys[]): Promise<void> {
  await query(tx, LOCK_JOBS_OF_MESSAGES, [
    messages.flatMap((m) => (m.messageId == null ? [] : [m.messageId])),
    messages.flatMap((m) => (m.messageUuid == null ? [] : [m.messageUuid])),
  ]);
}

/** A new event as STORE_AND_APPLY takes it: what the event says, and what it asks for (eventEffect). */
export interface EventToApply {
  event: MailjetEvent;
  effect: EventEffect;
}

export interface StoreAndApplyResult {
  /** The events new to the history, by their index in the input. */
  inserted: number[];
  /** Events stored without their message (not known yet): the new ones, and repeats of earlier ones. */
  unmatched: Array<{ id: string; dedupeKey: string; repeat: boolean }>;
  /** Events neither stored nor applied, by their index in the input: their MessageID is held by a recipient (of job `holderJobId`) with another address. */
  otherAddress: Array<{ index: number; holderJobId: string }>;
  sentAfterAcceptedMs: number[];
}

/**
 * Stores the events (one copy of each) and applies the new matched ones, except those for a
 * recipient with another address (isHoldersAddress); see STORE_AND_APPLY. The events whose address
 * the statement could not settle are checked here and, the holder's after all, stored and applied
 * by a second statement, told they are checked.
 */
export async function storeAndApplyEvents(tx: Queryable, webhooksChannel: string, events: readonly EventToApply[]): Promise<StoreAndApplyResult> {
  const first = await storeAndApplyChecking(tx, webhooksChannel, events, true);
  const otherAddress: StoreAndApplyResult['otherAddress'] = [];
  const holders: number[] = [];
  for (const { index, holderJobId, holderEmail } of first.unchecked) {
    if (isHoldersAddress(holderEmail, events[index]!.event.email)) {
      holders.push(index);
    } else {
      otherAddress.push({ index, holderJobId });
    }
  }
  if (holders.length === 0) {
    return { inserted: first.inserted, unmatched: first.unmatched, otherAddress, sentAfterAcceptedMs: first.sentAfterAcceptedMs };
  }
  const second = await storeAndApplyChecking(
    tx,
    webhooksChannel,
    holders.map((index) => events[index]!),
    false,
  );
  return {
    inserted: [...first.inserted, ...second.inserted.map((index) => holders[index]!)].sort((a, b) => a - b),
    unmatched: [...first.unmatched, ...second.unmatched],
    otherAddress,
    sentAfterAcceptedMs: [...first.sentAfterAcceptedMs, ...second.sentAfterAcceptedMs],
  };
}

/** One STORE_AND_APPLY; `check`: whether the events' addresses are still to be checked (false: the caller did). */
async function storeAndApplyChecking(
  tx: Queryable,
  webhooksChannel: string,
  events: readonly EventToApply[],
  check: boolean,
): Promise<Omit<StoreAndApplyResult, 'otherAddress'> & { unchecked: Array<{ index: number; holderJobId: string; holderEmail: string }> }> {
  // In the order of STORE_AND_APPLY's column list; JSON.stringify leaves out the undefined ones.
  const input = events.map(({ event, effect }) => ({
    k: event.dedupeKey,
    t: event.type,
    o: effect.occurredAt,
    // A decimal string: JSON numbers this big would lose digits.
    m: event.messageId,
    u: event.messageUuid,
    e: event.email,
    p: event.raw,
    g: effect.target,
    d: effect.details,
    r: effect.suppression?.reason,
    s: effect.suppression?.detail,
    a: check ? eventAddressKey(event.email) : undefined,
  }));
  const [row] = await query(tx, STORE_AND_APPLY, [JSON.stringify(input), DELIVERY_ORDER, webhooksChannel, EVENT_CLOCK_SKEW_MS]);
  if (row!['orphaned'] !== 0) {
    throw new JobDeletedMeanwhileError(`${String(row!['orphaned'])} events were matched to jobs deleted meanwhile`);
  }
  if (row!['missed'] !== 0) {
    throw new RecipientMovedMeanwhileError(`${String(row!['missed'])} recipients were not found where the events' look-up saw them`);
  }
  return {
    inserted: (row!['inserted'] as number[]).map((ord) => ord - 1),
    unmatched: row!['unmatched'] as StoreAndApplyResult['unmatched'],
    unchecked: (row!['unchecked'] as Array<{ ord: number; holderJobId: string; holderEmail: string }>).map(({ ord, ...holder }) => ({
      index: ord - 1,
      ...holder,
    })),
    sentAfterAcceptedMs: row!['sent_after_accepted_ms'] as number[],
  };
}
