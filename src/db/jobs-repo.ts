// email_send_jobs: insert, claim, settle, cancel, read. Every state change is guarded in its WHERE
// clause (status, lease owner) and returns the ids it changed: zero rows means a lost lease or a no-op.
import type { JobListRow } from '../domain/dashboard.js';
import { isoTimeFormatter } from '../domain/iso-time.js';
import type { AdminJobRow, ClaimedJob, JobRow, QueuedJob } from '../domain/job.js';
import type { AddressedMessage } from '../domain/mailjet-outcome.js';
import type { MessageContent, NewJob } from '../domain/message.js';
import { LIST_WINDOW, nextBefore } from '../domain/page.js';
import { DEPTH_STATUSES, type DepthStatus, type QueueDepth } from '../domain/queue-figures.js';
import type { AcceptedIds, HeldMessageId } from '../domain/recipient.js';
import { CANCELLABLE_STATUSES, CLAIMABLE_STATUSES, type JobStatus } from '../domain/status.js';
import type { RecordedChange } from '../domain/status-change.js';
import { planByIndexOrder } from './capped-counts.js';
import { listWindow } from './list-window.js';
import { type PreparedStatement, query, type Queryable } from './pool.js';
import { CLAIMED_RECIPIENTS_JSON, claimedRecipientsFromJson } from './recipients-repo.js';

const JOB_COLUMN_NAMES = (
  'id app_id status custom_id metadata priority send_at run_at attempts max_attempts ' +
  'locked_by locked_until last_error recipient_count outcome_unknown created_at updated_at accepted_at'
).split(' ');

// A job's times are read as epoch milliseconds: node-postgres parses a timestamp's text with regular
// expressions, six per job (about 2 % of the process's CPU in a drain), and a number at once.
const JOB_TIMES = new Set(['send_at', 'run_at', 'locked_until', 'created_at', 'updated_at', 'accepted_at']);

/** A job's columns as toJob reads them, of the table (or subquery) aliased `j`. */
const JOB_COLUMNS = JOB_COLUMN_NAMES.map((column) =>
  JOB_TIMES.has(column) ? `floor(extract(epoch from j.${column}) * 1000) as ${column}` : `j.${column}`,
).join(', ');

/** A time read as whole epoch milliseconds (numeric text): the microseconds dropped, as node-postgres drops them. */
function timeOf(value: unknown): Date {
  return new Date(Number(value));
}

function timeOrNull(value: unknown): Date | null {
  return value == null ? null : timeOf(value);
}

export function toJob(row: Record<string, unknown>): JobRow {
  return {
    id: String(row['id']),
    appId: String(row['app_id']),
    status: row['status'] as JobStatus,
    customId: (row['custom_id'] as string | null) ?? null,
    metadata: (row['metadata'] as Record<string, unknown> | null) ?? null,
    priority: Number(row['priority']),
    sendAt: timeOrNull(row['send_at']),
    runAt: timeOf(row['run_at']),
    attempts: Number(row['attempts']),
    maxAttempts: Number(row['max_attempts']),
    lockedBy: (row['locked_by'] as string | null) ?? null,
    lockedUntil: timeOrNull(row['locked_until']),
    lastError: (row['last_error'] as string | null) ?? null,
    recipientCount: Number(row['recipient_count']),
    outcomeUnknown: row['outcome_unknown'] === true,
    createdAt: timeOf(row['created_at']),
    updatedAt: timeOf(row['updated_at']),
    acceptedAt: timeOrNull(row['accepted_at']),
  };
}

export interface JobToInsert {
  job: NewJob;
  status: Extract<JobStatus, 'queued' | 'scheduled'>;
  runAt: Date;
  maxAttempts: number;
}

export interface AppJobToInsert extends JobToInsert {
  appId: string;
  /** Insert the job only while this API key is unrevoked (undefined: no check). */
  keyId?: string | undefined;
}

// One statement draws the ids (in input order: a volatile CTE is computed once, and the target list
// after the sort), inserts the jobs whose API key is still unrevoked and their recipients, and
// answers with one row: the ids drawn and their input positions, each as one comma-separated text
// (the insert takes every row of new_jobs or fails, and the answer's status and custom_id are the
// caller's own: reading back a row per job cost more CPU, on both sides, than the rest of the
// insert). Rows from several apps and requests go together (group commit, services/jobs.ts). Its
// NOTIFY, if any, is sent at commit and only when a job was inserted; as a lone statement it is a
// whole transaction (one round trip). The sequence is looked up once, in a subquery: called per
// row, pg_get_serial_sequence cost more than inserting the row.
// It is the only writer of recipients, which is why no foreign key checks their job (sql/27_…).
// The hot writes (this insert, the claim, the acceptance) set queue_status beside status themselves,
// so that sql/19_…'s trigger, which keeps it right for every other write, calls nothing.
// Prepared once per connection (the server parses and plans it once, and its text is not sent again).
const INSERT_JOBS_TEXT = `
  with new_jobs as materialized (
    select nextval((select pg_get_serial_sequence('email_send_jobs', 'id')::regclass)) as id, j.*
    from unnest(
      $1::bigint[], $2::text[], array(select m.value::jsonb from json_array_elements($3::json) with ordinality as m(value, n) order by m.n),
      $4::text[], $5::jsonb[], $6::smallint[], $7::timestamptz[], $8::timestamptz[], $9::int[], $10::int[], $11::bigint[], $18::int[]
    ) with ordinality
      as j(app_id, status, message, custom_id, metadata, priority, send_at, run_at, max_attempts, recipient_count, key_id, message_bytes, position)
    where j.key_id is null
      or exists (select from api_keys k where k.id = j.key_id and k.revoked_at is null)
    order by j.position
  ),
  inserted_jobs as (
    insert into email_send_jobs (
      id, app_id, status, queue_status, message, message_bytes, custom_id, metadata, priority, send_at, run_at, max_attempts, recipient_count
    )
    overriding system value
    select id, app_id, status, status, message, message_bytes, custom_id, metadata, priority, send_at, run_at, max_attempts, recipient_count
    from new_jobs
  ),
  inserted_recipients as (
    insert into email_recipients (job_id, position, kind, email, name)
    select n.id, r.position, r.kind, r.email, r.name
    from unnest($12::bigint[], $13::smallint[], $14::text[], $15::text[], $16::text[])
      as r(job_position, position, kind, email, name)
    join new_jobs n on n.position = r.job_position
  )
  select string_agg(id::text, ',' order by position) as ids, string_agg(position::text, ',' order by position) as positions,
    case when count(*) > 0 then (select pg_notify($17, '') where $17::text is not null) end as notified
  from new_jobs`;
const INSERT_JOBS: PreparedStatement = { name: 'jobs_insert', text: INSERT_JOBS_TEXT };

/**
 * An array parameter as PostgreSQL's array literal, for values that need no quoting in one: integers
 * (ids as digit strings too), timestamps in ISO 8601 and jetpost's own words (status, kind), never
 * an app's text. node-postgres would quote and escape each element, which costs more than the rest.
 */
function unquotedArray(values: ReadonlyArray<string | number | null>): string {
  return `{${values.map((value) => value ?? 'NULL').join(',')}}`;
}

/**
 * Inserts jobs (of any apps) and their recipients in one statement, and notifies `channel` (at commit)
 * when any was inserted. Returns what POST /queue answers of the inserted jobs, by input position
 * (0-based): a job whose key was revoked has none.
 */
export async function insertAppJobs(db: Queryable, jobs: readonly AppJobToInsert[], channel?: string): Promise<Map<number, QueuedJob>> {
  const appIds: string[] = [];
  const statuses: string[] = [];
  const contents: string[] = [];
  const messageBytes: number[] = [];
  const customIds: Array<string | null> = [];
  const metadata: Array<string | null> = [];
  const priorities: number[] = [];
  const sendAts: Array<string | null> = [];
  const runAts: string[] = [];
  const maxAttempts: number[] = [];
  const recipientCounts: number[] = [];
  const keyIds: Array<string | null> = [];
  const recipientJobs: number[] = [];
  const positions: number[] = [];
  const kinds: string[] = [];
  const emails: string[] = [];
  const names: Array<string | null> = [];
  const isoTime = isoTimeFormatter();
  for (let index = 0; index < jobs.length; index++) {
    const { appId, status, job, runAt, maxAttempts: attempts, keyId } = jobs[index]!;
    appIds.push(appId);
    statuses.push(status);
    const content = JSON.stringify(job.content);
    contents.push(content);
    messageBytes.push(Buffer.byteLength(content));
    customIds.push(job.customId ?? null);
    metadata.push(job.metadata === undefined ? null : JSON.stringify(job.metadata));
    priorities.push(job.priority);
    sendAts.push(job.sendAt === undefined ? null : isoTime(job.sendAt));
    runAts.push(isoTime(runAt));
    maxAttempts.push(attempts);
    recipientCounts.push(job.recipients.length);
    keyIds.push(keyId ?? null);
    for (let position = 0; position < job.recipients.length; position++) {
      const recipient = job.recipients[position]!;
      recipientJobs.push(index + 1);
      positions.push(position);
      kinds.push(recipient.kind);
      emails.push(recipient.email);
      names.push(recipient.name ?? null);
    }
  }
  const rows = await query(db, INSERT_JOBS, [
    unquotedArray(appIds),
    unquotedArray(statuses),
    // The messages as one JSON array: as an array of JSON texts, node-postgres would escape every quote in them.
    `[${contents.join(',')}]`,
    customIds,
    metadata,
    unquotedArray(priorities),
    unquotedArray(sendAts),
    unquotedArray(runAts),
    unquotedArray(maxAttempts),
    unquotedArray(recipientCounts),
    unquotedArray(keyIds),
    unquotedArray(recipientJobs),
    unquotedArray(positions),
    unquotedArray(kinds),
    emails,
    names,
    channel ?? null,
    unquotedArray(messageBytes),
  ]);
  const inserted = new Map<number, QueuedJob>();
  const [row] = rows;
  if (row?.['ids'] == null) {
    return inserted;
  }
  const ids = (row['ids'] as string).split(',');
  const inputPositions = (row['positions'] as string).split(',');
  for (let index = 0; index < ids.length; index++) {
    const position = Number(inputPositions[index]) - 1;
    const { status, job } = jobs[position]!;
    inserted.set(position, { id: ids[index]!, status, customId: job.customId ?? null });
  }
  return inserted;
}

/** Inserts one app's jobs and their recipients; returns the job ids in input order. */
export async function insertJobs(db: Queryable, appId: string, jobs: readonly JobToInsert[]): Promise<string[]> {
  const rows = await insertAppJobs(
    db,
    jobs.map((job) => ({ ...job, appId })),
  );
  return jobs.map((_, index) => rows.get(index)!.id);
}

/**
 * Every priority a job may have (the table's check: 0 to 3), highest first, as rows `p(priority)`: the
 * statements that read the claim index, (priority desc, run_at, id), read it one priority at a time.
 */
const PRIORITIES = `(values (3), (2), (1), (0)) as p(priority)`;

// One statement claims and leases: the inner SELECT reads the partial claim index and skips rows
// other consumers hold, so concurrent consumers never get the same job. It takes up to $2 jobs, and
// of those only as many as fit in $4 bytes of message (the first always does), so a batch of large
// messages does not load them all into memory at once; the rest stay queued for the next claim. A
// message counts at its size as written (message_bytes, sql/30_…), not as stored: compressed, fifty
// messages of 10 MB of repeated bytes took 6 MB, and no claim of them could be read in time.
// Each job comes with its recipients and which of their addresses are suppressed: one round trip
// per batch, not three.
// The due jobs are read one priority at a time, highest first (PRIORITIES; the nested loop keeps
// that order and the outer LIMIT stops it), each a range of the claim index read in order:
// (priority = p, run_at <= now()), the one plan that reads no more than the jobs it takes. Asked for
// every priority at once, PostgreSQL read every due job and sorted them when its statistics did not
// know the backlog (a table never analysed, or analysed before a bulk enqueue): 50,000 rows for a
// claim of 200. Read a priority at a time, it still chose the run_at index (dropped by sql/28_…) once
// they did (test/db/claim-plan.test.ts). Not a prepared statement: a generic plan does not know $2,
// the LIMIT, and may then join the update to a scan of the whole table.
const CLAIM_JOBS = `
  with picked as (
    select due.*
    from ${PRIORITIES}
    cross join lateral (
      select id, attempts as attempts_before, priority, run_at, coalesce(message_bytes, pg_column_size(message)) as size
      from email_send_jobs
      where queue_status in ('queued', 'scheduled', 'deferred')
        and priority = p.priority
        and run_at <= now()
      order by run_at, id
      limit $2
      for update skip locked
    ) as due
    limit $2
  ),
  within_budget as (
    select id, attempts_before
    from (
      select id, attempts_before,
        sum(size) over (order by priority desc, run_at, id) - size as bytes_before
      from picked
    ) as sized
    where bytes_before < $4::bigint
  ),
  claimed as (
    update email_send_jobs j
    set status = 'processing',
      queue_status = 'processing',
      locked_by = $1,
      locked_until = now() + make_interval(secs => $3::double precision / 1000),
      attempts = j.attempts + case when j.outcome_unknown and j.attempts >= j.max_attempts then 0 else 1 end,
      updated_at = now()
    from within_budget as picked
    where j.id = picked.id
    returning ${JOB_COLUMNS}, j.message,
      j.outcome_unknown and picked.attempts_before >= j.max_attempts as look_up_only, j.accepted_unresolved, j.found_message_ids,
      floor(extract(epoch from j.lookup_failing_since) * 1000) as lookup_failing_since
  )
  select j.*, ${CLAIMED_RECIPIENTS_JSON} as recipients
  from claimed j`;

/** Messages of one claim, in bytes as written: about one Mailjet call's worth (15 MB). */
export const CLAIM_MAX_BYTES = 15 * 1024 * 1024;

export async function claimJobs(db: Queryable, workerId: string, limit: number, leaseMs: number, maxBytes = CLAIM_MAX_BYTES): Promise<ClaimedJob[]> {
  const rows = await query(db, CLAIM_JOBS, [workerId, limit, leaseMs, maxBytes]);
  return rows
    .map((row): ClaimedJob => {
      const job = toJob(row);
      // Object.assign, not a spread: copying a row's many fields into a new object costs several times more.
      return Object.assign(job, {
        content: row['message'] as MessageContent,
        lookUpOnly: row['look_up_only'] === true,
        acceptedUnresolved: row['accepted_unresolved'] === true,
        foundEarlier: (row['found_message_ids'] as AddressedMessage[] | null) ?? [],
        lookUpFailingSince: timeOrNull(row['lookup_failing_since']),
        ...claimedRecipientsFromJson(job.id, row['recipients']),
      });
    })
    .sort((a, b) => b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime() || Number(a.id) - Number(b.id));
}

// The earliest run_at of each priority: the first entry of its range of the claim index.
const FIRST_RUN_AT_BY_PRIORITY = `
  ${PRIORITIES}
  cross join lateral (
    select run_at
    from email_send_jobs
    where queue_status in ('queued', 'scheduled', 'deferred')
      and priority = p.priority
    order by run_at
    limit 1
  ) as first`;

const NEXT_RUN_AT = `select min(first.run_at) as run_at from ${FIRST_RUN_AT_BY_PRIORITY}`;

/** When the earliest claimable job becomes due (null when there is none): idle consumers sleep until then. */
export async function nextRunAt(db: Queryable): Promise<Date | null> {
  const [row] = await query(db, NEXT_RUN_AT);
  return (row?.['run_at'] as Date | null) ?? null;
}

export interface Settlement {
  id: string;
  status: 'failed' | 'deferred';
  runAt: Date | null;
  error: string;
  /** Mailjet may have sent it: reconcile by CustomID before the next send. */
  outcomeUnknown: boolean;
  /** The attempt does not count (it never reached Mailjet, e.g. sending paused on bad keys). */
  refundAttempt: boolean;
  /**
   * Mailjet accepted it without usable ids (unresolvedAcceptance): its attempts are spent, so that its
   * next claim only looks it up (never send it again), and it is marked accepted_unresolved.
   */
  lookUpOnly?: boolean;
  /** What its look-ups found so far, when some of its addresses only (kept for its next look-up). */
  found?: readonly AddressedMessage[] | undefined;
  /** Since when its look-ups have not been answered (waitForLookUp); absent: its last one was, or none was made. */
  lookUpFailingSince?: Date | undefined;
}

// Failed and deferred jobs leave the lease in one statement; only the consumer holding the lease may
// (each row names its consumer: one statement settles the calls of several consumers).
const SETTLE_JOBS = `
  update email_send_jobs j
  set status = s.status,
    run_at = coalesce(s.run_at, j.run_at),
    last_error = s.error,
    outcome_unknown = s.outcome_unknown,
    attempts = case when s.look_up_only then greatest(j.attempts, j.max_attempts) when s.refund then j.attempts - 1 else j.attempts end,
    accepted_unresolved = j.accepted_unresolved or s.look_up_only,
    found_message_ids = coalesce(s.found, j.found_message_ids),
    lookup_failing_since = s.lookup_failing_since,
    locked_by = null,
    locked_until = null,
    updated_at = now()
  from unnest(
    $1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::boolean[], $6::boolean[], $7::text[], $8::boolean[], $9::jsonb[], $10::timestamptz[]
  ) as s(id, status, run_at, error, outcome_unknown, refund, worker_id, look_up_only, found, lookup_failing_since)
  where j.id = s.id
    and j.status = 'processing'
    and j.locked_by = s.worker_id
  returning j.id, s.worker_id`;

/** Settles each job for the consumer named beside it; returns the settlements that held their lease. */
export async function settleJobs(
  tx: Queryable,
  settlements: ReadonlyArray<Settlement & { workerId: string }>,
): Promise<Array<Settlement & { workerId: string }>> {
  if (settlements.length === 0) {
    return [];
  }
  const rows = await query(tx, SETTLE_JOBS, [
    settlements.map((s) => s.id),
    settlements.map((s) => s.status),
    settlements.map((s) => s.runAt),
    settlements.map((s) => s.error),
    settlements.map((s) => s.outcomeUnknown),
    settlements.map((s) => s.refundAttempt),
    settlements.map((s) => s.workerId),
    settlements.map((s) => s.lookUpOnly ?? false),
    settlements.map((s) => (s.found === undefined ? null : JSON.stringify(s.found))),
    settlements.map((s) => s.lookUpFailingSince ?? null),
  ]);
  const changed = new Set(rows.map((row) => `${String(row['id'])}/${String(row['worker_id'])}`));
  return settlements.filter((s) => changed.has(`${s.id}/${s.workerId}`));
}

const EXTEND_LEASES = `
  update email_send_jobs
  set locked_until = now() + make_interval(secs => $3::double precision / 1000)
  where id = any($1::bigint[])
    and status = 'processing'
    and locked_by = $2
  returning id`;

/** Keeps a batch leased while its calls go out (rate limits and packing can make a batch slow). */
export async function extendLeases(db: Queryable, workerId: string, ids: readonly string[], leaseMs: number): Promise<string[]> {
  const rows = await query(db, EXTEND_LEASES, [ids, workerId, leaseMs]);
  return rows.map((row) => String(row['id']));
}

// A job whose claim counted no attempt ($3: look-up only, its attempts spent) keeps them: one fewer
// would let its next claim send it, and Mailjet may have it. The jobs are due again at once (their
// run_at is past): the NOTIFY ($4, at commit) wakes the idle consumers of the other replicas, which
// slept until their idle check, since these jobs were not claimable when they last looked.
const RELEASE_JOBS = `
  with released as (
    update email_send_jobs
    set status = case when send_at is not null and send_at > now() then 'scheduled' else 'queued' end,
      attempts = attempts - case when id = any($3::bigint[]) then 0 else 1 end,
      locked_by = null,
      locked_until = null,
      updated_at = now()
    where id = any($1::bigint[])
      and status = 'processing'
      and locked_by = $2
    returning id
  )
  select array(select id::text from released) as ids,
    case when exists (select from released) then pg_notify($4, '') end is not null as notified`;

/**
 * Gives claimed jobs back unsent (shutdown): the attempt does not count (`uncounted`: claimed without
 * one). Notifies `channel` (at commit) when any was given back.
 */
export async function releaseJobs(
  db: Queryable,
  workerId: string,
  ids: readonly string[],
  channel: string,
  uncounted: readonly string[] = [],
): Promise<string[]> {
  if (ids.length === 0) {
    return [];
  }
  const [row] = await query(db, RELEASE_JOBS, [ids, workerId, uncounted, channel]);
  return row!['ids'] as string[];
}

// A lease that expired means its consumer's process died (or lost the database) mid-batch: the job
// goes back to the queue, marked as possibly sent. One whose attempts are spent comes back too, once:
// its next claim only looks it up (claimJobs), so a message Mailjet took is recorded, not failed. It
// fails when it was reaped already and nothing was recorded since (its last error is the reaper's):
// a message that kills its consumer every time must not take the service down forever.
const REAP_EXPIRED_LEASES = `
  update email_send_jobs
  set status = case when attempts >= max_attempts and last_error is not distinct from $2 then 'failed' else 'deferred' end,
    run_at = now(),
    outcome_unknown = true,
    last_error = $2,
    locked_by = null,
    locked_until = null,
    updated_at = now()
  where id in (
    select id
    from email_send_jobs
    where queue_status = 'processing'
      and locked_until < now()
    order by locked_until
    limit $1
    for update skip locked
  )
  returning id, status`;

export async function reapExpiredLeases(db: Queryable, limit: number, error: string): Promise<{ id: string; status: 'failed' | 'deferred' }[]> {
  const rows = await query(db, REAP_EXPIRED_LEASES, [limit, error]);
  return rows.map((row) => ({ id: String(row['id']), status: row['status'] as 'failed' | 'deferred' }));
}

// Accepted wins unless another consumer holds the job now: if a reaper returned it to the queue but
// nobody claimed it yet, recording the acceptance prevents a second send. Each id comes with the
// consumer that sent it (one statement records the calls of several consumers). A job one of whose
// MessageIDs is held (ACCEPT_SENT's `held`) is not accepted.
const ACCEPT_JOBS_TEXT = `
  update email_send_jobs j
  set status = 'accepted',
    queue_status = null,
    accepted_at = now(),
    last_error = null,
    outcome_unknown = false,
    accepted_unresolved = false,
    lookup_failing_since = null,
    locked_by = null,
    locked_until = null,
    updated_at = now()
  from unnest($1::bigint[], $2::text[]) as a(id, worker_id)
  where j.id = a.id
    and (j.status = any($3::text[]) or (j.status = 'processing' and j.locked_by = a.worker_id))
    and not exists (select from held where held.job_id = a.id and held.worker_id = a.worker_id)
  returning j.id, j.app_id, a.worker_id`;

// The whole acceptance in one statement (one round trip, and nothing read back per job): the jobs
// above, their recipients' Mailjet ids (only of the jobs accepted here, matched by consumer too)
// and each job's "accepted" status change. It answers only what is rare: the input positions (from
// 1) of jobs not accepted (their lease was lost, or an id of theirs is held), the ids held, and the
// changes of apps that have a webhook, whose deliveries the caller queues
// (services/webhook-outbox.ts decides which types each app takes).
// A MessageID is one recipient's: events find their recipient by it. One that a recipient of another
// job already holds (Mailjet does not give an id twice: an answer replayed by a proxy or a test double,
// a simulator restarted with the same seed) is not bound again, and its job is not accepted here: the
// events keep going to the first holder, and the caller decides what becomes of the job. One index
// probe per recipient (email_recipients_mailjet_message_id_idx), not a scan; MessageID 0 is
// SandboxMode's, no message's.
const ACCEPT_SENT_TEXT = `
  with input as (
    select *
    from unnest($4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::text[]) as m(id, message_id, message_uuid, job_id, worker_id)
  ),
  held as (
    select m.job_id, m.worker_id, m.message_id, h.job_id as holder_job_id
    from input m
    cross join lateral (
      select r.job_id
      from email_recipients r
      where r.mailjet_message_id = m.message_id
        and r.job_id <> m.job_id
      limit 1
    ) as h
    where m.message_id <> 0
  ),
  accepted as (${ACCEPT_JOBS_TEXT}
  ),
  accepted_recipients as (
    update email_recipients r
    set status = case when r.status in ('pending', 'suppressed') then 'accepted' else r.status end,
      -- SandboxMode answers MessageID 0 and an empty MessageUUID: no message exists at Mailjet.
      mailjet_message_id = nullif(m.message_id, 0),
      mailjet_message_uuid = nullif(m.message_uuid, ''),
      updated_at = now()
    from input m
    join accepted on accepted.id = m.job_id and accepted.worker_id = m.worker_id
    where r.id = m.id
  ),
  changes as (
    insert into status_changes (app_id, job_id, old_status, new_status)
    select app_id, id, 'processing', 'accepted'
    from accepted
    order by id
    returning id, app_id
  )
  select
    array(
      select a.position::int
      from unnest($1::bigint[], $2::text[]) with ordinality as a(id, worker_id, position)
      where not exists (select from accepted x where x.id = a.id and x.worker_id = a.worker_id)
    ) as not_accepted,
    coalesce((
      select json_agg(json_build_object('job_id', h.job_id::text, 'worker_id', h.worker_id, 'message_id', h.message_id::text,
        'holder_job_id', h.holder_job_id::text))
      from held h
    ), '[]') as held,
    coalesce((
      select json_agg(json_build_object('id', c.id::text, 'app_id', c.app_id::text) order by c.id)
      from changes c
      join apps ap on ap.id = c.app_id
      where ap.webhook_url is not null
    ), '[]') as webhook_changes`;
const ACCEPT_SENT: PreparedStatement = { name: 'jobs_accept_sent', text: ACCEPT_SENT_TEXT };

// ACCEPT_SENT's check that no other job's recipient holds a MessageID cannot see a binding another
// transaction has not committed yet: two records given the same id at once would both bind it. So a
// record first takes a transaction-scoped lock keyed on each MessageID it binds: the second waits
// for the first to commit, and its statement then sees the first holder. One-key advisory locks,
// where jetpost's only other one is the migrations' negative key (a MessageID is positive); taken
// in ascending order, so two records never wait for each other in a circle. One lock per MessageID,
// at most 800 a transaction (services/sending.ts, MAX_MESSAGE_IDS_PER_TRANSACTION), so that the
// records of several replicas fit PostgreSQL's shared lock table together: hashed into a few slots,
// as the events' locks are, two records of 50 ids would nearly always share one and wait for each
// other.
const LOCK_MESSAGE_IDS_TEXT = `
  select pg_advisory_xact_lock(id)
  from unnest($1::bigint[]) as id`;
const LOCK_MESSAGE_IDS: PreparedStatement = { name: 'jobs_lock_message_ids', text: LOCK_MESSAGE_IDS_TEXT };

/** The distinct MessageIDs the jobs bind (SandboxMode's 0 binds none), in ascending order. */
function messageIdsToLock(jobs: readonly SentJob[]): string[] {
  const ids = new Set<string>();
  for (const job of jobs) {
    for (const { messageId } of job.recipients) {
      if (messageId !== '0') {
        ids.add(messageId);
      }
    }
  }
  return [...ids]
    .map(BigInt)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map(String);
}

export interface SentJob {
  id: string;
  /** The consumer that sent it: only its lease (or none) lets the acceptance through. */
  workerId: string;
  /** Mailjet's ids for each of its recipients. */
  recipients: readonly AcceptedIds[];
}

export interface AcceptedSent {
  /** The jobs recorded as accepted. */
  accepted: SentJob[];
  /** The MessageIDs of jobs not accepted because a recipient of another job holds them (or an earlier job of this record is given them). */
  held: Array<HeldMessageId & { workerId: string }>;
  /** Their status changes that an app's webhook may want (apps without a webhook are left out). */
  webhookChanges: RecordedChange[];
}

/** Records jobs as accepted by Mailjet with their recipients' Mailjet ids and status changes. */
export async function acceptSentJobs(tx: Queryable, jobs: readonly SentJob[]): Promise<AcceptedSent> {
  if (jobs.length === 0) {
    return { accepted: [], held: [], webhookChanges: [] };
  }
  // A MessageID given two jobs of this record: the statement's snapshot cannot see one binding it
  // while it checks the other, so the later one is held here (the earlier one stays its holder).
  const held: AcceptedSent['held'] = [];
  const holders = new Map<string, string>();
  const toAccept = jobs.filter((job) => {
    const taken = job.recipients.find(({ messageId }) => messageId !== '0' && (holders.get(messageId) ?? job.id) !== job.id);
    if (taken !== undefined) {
      held.push({ jobId: job.id, workerId: job.workerId, messageId: taken.messageId, holderJobId: holders.get(taken.messageId)! });
      return false;
    }
    for (const { messageId } of job.recipients) {
      holders.set(messageId, job.id);
    }
    return true;
  });
  const lockedIds = messageIdsToLock(toAccept);
  if (lockedIds.length > 0) {
    await query(tx, LOCK_MESSAGE_IDS, [unquotedArray(lockedIds)]);
  }
  // Built in one pass, without an object per recipient: this runs for every message sent.
  const recipientIds: string[] = [];
  const messageIds: string[] = [];
  const messageUuids: string[] = [];
  const recipientJobIds: string[] = [];
  const recipientWorkerIds: string[] = [];
  for (const job of toAccept) {
    for (const ids of job.recipients) {
      recipientIds.push(ids.recipientId);
      messageIds.push(ids.messageId);
      messageUuids.push(ids.messageUuid);
      recipientJobIds.push(job.id);
      recipientWorkerIds.push(job.workerId);
    }
  }
  const [row] = await query(tx, ACCEPT_SENT, [
    unquotedArray(toAccept.map((job) => job.id)),
    toAccept.map((job) => job.workerId),
    CLAIMABLE_STATUSES,
    unquotedArray(recipientIds),
    messageIds,
    messageUuids,
    unquotedArray(recipientJobIds),
    recipientWorkerIds,
  ]);
  const notAccepted = new Set((row!['not_accepted'] as number[]).map((position) => position - 1));
  for (const h of row!['held'] as Array<{ job_id: string; worker_id: string; message_id: string; holder_job_id: string }>) {
    held.push({ jobId: h.job_id, workerId: h.worker_id, messageId: h.message_id, holderJobId: h.holder_job_id });
  }
  return {
    accepted: toAccept.filter((_, index) => !notAccepted.has(index)),
    held,
    webhookChanges: (row!['webhook_changes'] as Array<{ id: string; app_id: string }>).map((c) => ({ id: c.id, appId: c.app_id, type: 'accepted' })),
  };
}

const SET_JOB_ERRORS = `
  update email_send_jobs j
  set last_error = u.error,
    updated_at = now()
  from unnest($1::bigint[], $2::text[]) as u(id, error)
  where j.id = u.id`;

/** Notes what an accepted job's recipients could not get (its acceptance clears last_error). */
export async function setJobErrors(tx: Queryable, errors: ReadonlyMap<string, string>): Promise<void> {
  if (errors.size > 0) {
    await query(tx, SET_JOB_ERRORS, [[...errors.keys()], [...errors.values()]]);
  }
}

const CANCEL_JOB = `
  update email_send_jobs j
  set status = 'cancelled',
    updated_at = now()
  from (
    select id, status
    from email_send_jobs
    where id = $1::bigint
      and app_id = $2::bigint
      and status = any($3::text[])
      and not outcome_unknown
    for update
  ) as old
  where j.id = old.id
  returning ${JOB_COLUMNS}, old.status as old_status`;

/**
 * Cancels a job nobody claimed yet and that Mailjet cannot have (no send of it has an unknown
 * outcome); returns it with the status it had, or undefined.
 */
export async function cancelJob(tx: Queryable, appId: string, jobId: string): Promise<{ job: JobRow; oldStatus: JobStatus } | undefined> {
  const [row] = await query(tx, CANCEL_JOB, [jobId, appId, CANCELLABLE_STATUSES]);
  return row && { job: toJob(row), oldStatus: row['old_status'] as JobStatus };
}

const FIND_JOBS = `
  select ${JOB_COLUMNS}
  from email_send_jobs j
  where app_id = $1::bigint
    and id = any($2::bigint[])
  order by id`;

export async function findJobs(db: Queryable, appId: string, ids: readonly string[]): Promise<JobRow[]> {
  const rows = await query(db, FIND_JOBS, [appId, ids]);
  return rows.map(toJob);
}

// Each custom_id (once) reads at most `$3` entries of the (app_id, custom_id, id) index (sql/37_…),
// its lowest ids above `$4` first, the answer sorted by id after: the `$3` lowest ids of all. A custom_id
// shared by many jobs (a campaign's, set on every message) once had no index in id order: "its
// lowest ids first" walked the table by id (3.5 s when its 33,000 jobs were the newest of 900,000,
// past the statement timeout) or read every one of its jobs.
const FIND_JOBS_BY_CUSTOM_ID = `
  select ${JOB_COLUMNS}
  from (select distinct unnest($2::text[]) as custom_id) as c
  cross join lateral (
    select ${JOB_COLUMN_NAMES.join(', ')}
    from email_send_jobs
    where app_id = $1::bigint
      and custom_id = c.custom_id
      and id > $4::bigint
    order by id
    limit $3
  ) as j
  order by j.id
  limit $3`;

/** The app's jobs with these custom_ids and an id above `afterId` ('0': all), the `limit` lowest ids. */
export async function findJobsByCustomId(db: Queryable, appId: string, customIds: readonly string[], limit: number, afterId = '0'): Promise<JobRow[]> {
  const rows = await query(db, FIND_JOBS_BY_CUSTOM_ID, [appId, customIds, limit, afterId]);
  return rows.map(toJob);
}

const LOCK_JOBS = `
  select id, status, accepted_at
  from email_send_jobs
  where id = any($1::bigint[])
  order by id
  for no key update`;

/** Locks jobs in id order (the order every writer uses, so writers never deadlock); returns their status and when Mailjet accepted them. */
export async function lockJobs(tx: Queryable, ids: readonly string[]): Promise<Map<string, { status: JobStatus; acceptedAt: Date | null }>> {
  const rows = await query(tx, LOCK_JOBS, [ids]);
  return new Map(rows.map((row) => [String(row['id']), { status: row['status'] as JobStatus, acceptedAt: (row['accepted_at'] as Date | null) ?? null }]));
}

const SET_JOB_STATUSES = `
  update email_send_jobs j
  set status = u.status,
    updated_at = now()
  from unnest($1::bigint[], $2::text[]) as u(id, status)
  where j.id = u.id
    and j.status is distinct from u.status`;

export async function setJobStatuses(tx: Queryable, changes: ReadonlyMap<string, JobStatus>): Promise<void> {
  if (changes.size === 0) {
    return;
  }
  await query(tx, SET_JOB_STATUSES, [[...changes.keys()], [...changes.values()]]);
}

// A queue status (failed, the usual one here) is read from its partial index, keyed on queue_status
// (sql/19_…): the second condition is that index's predicate.
const LIST_JOBS_BY_STATUS = `
  select ${JOB_COLUMNS}, a.name as app_name
  from email_send_jobs j
  join apps a on a.id = j.app_id
  where j.status = $1
    and j.queue_status = $1
    and ($2::bigint is null or j.id < $2)
  order by j.id desc
  limit $3`;

// Any other status has no index (sql/25_…: events rewrite those rows), so a page of one looks
// through a window of the next $5 (LIST_WINDOW) jobs by id below `before`, never the whole table: a
// rare status (spam, bounced…) would otherwise cost a walk through every job. One app's jobs of a
// queue status likewise look through the next $5 jobs of that status: its index holds no app, and a
// page of an app with none among another app's 300,000 failed jobs (an outage) walked all of them,
// past the statement timeout. Every row says how many jobs the window held and the lowest id in
// it, and one row comes back when nothing matched (db/list-window.ts).
function listJobsInWindow(scanned: string): string {
  return `
  with scanned as (
    select id, status, app_id
    from email_send_jobs
    where ${scanned}
      and ($3::bigint is null or id < $3)
    order by id desc
    limit $5
  )
  select w.jobs as window_rows, w.lowest as window_lowest, f.*
  from (select count(*)::int as jobs, min(id)::text as lowest from scanned) as w
  left join lateral (
    select ${JOB_COLUMNS}, a.name as app_name
    from scanned s
    join apps a on a.id = s.app_id
    join email_send_jobs j on j.id = s.id
    where s.status = $1
      and ($2::text is null or a.name = $2)
    order by s.id desc
    limit $4
  ) as f on true
  order by f.id desc`;
}

const LIST_JOBS_BY_STATUS_IN_WINDOW = listJobsInWindow('true');
const LIST_QUEUE_JOBS_OF_APP_IN_WINDOW = listJobsInWindow('queue_status = $1');

export interface AdminJobPage {
  jobs: AdminJobRow[];
  /** Where the next page starts (its `before`), or null when no older job can match. */
  nextBefore: string | null;
}

/**
 * Jobs of one status, newest first, across apps (admin): `before` pages by job id. A page of a
 * status other than a queue status, or of one app's jobs, may hold fewer than `limit` jobs (none,
 * even) and still have a next page: it looked through a window of LIST_WINDOW jobs only.
 */
export async function listJobsByStatus(
  db: Queryable,
  status: JobStatus,
  options: { appName?: string | undefined; before?: string | undefined; limit: number },
): Promise<AdminJobPage> {
  const queueStatus = (DEPTH_STATUSES as readonly JobStatus[]).includes(status);
  if (queueStatus && options.appName === undefined) {
    const jobs = (await query(db, LIST_JOBS_BY_STATUS, [status, options.before ?? null, options.limit])).map(toAdminJob);
    return { jobs, nextBefore: nextBefore(jobs, options.limit) };
  }
  const rows = await query(db, queueStatus ? LIST_QUEUE_JOBS_OF_APP_IN_WINDOW : LIST_JOBS_BY_STATUS_IN_WINDOW, [
    status,
    options.appName ?? null,
    options.before ?? null,
    options.limit,
    LIST_WINDOW,
  ]);
  const jobs = rows.filter((row) => row['id'] !== null).map(toAdminJob);
  return { jobs, nextBefore: nextBefore(jobs, options.limit, listWindow(rows[0])) };
}

function toAdminJob(row: Record<string, unknown>): AdminJobRow {
  return { ...toJob(row), appName: String(row['app_name']) };
}

// Only failed jobs go back: they get a fresh set of attempts (and a fresh window for look-ups
// Mailjet does not answer) and are due now. last_error stays as a record of why they failed until a
// send succeeds.
const REQUEUE_FAILED = `
  update email_send_jobs j
  set status = 'queued',
    attempts = 0,
    lookup_failing_since = null,
    run_at = now(),
    updated_at = now()
  where j.queue_status = 'failed'
    and ($1::bigint[] is null or j.id = any($1::bigint[]))
    and ($2::text is null or j.app_id = (select id from apps where name = $2))
  returning j.id`;

/** Re-queues failed jobs: the given ids, or (ids null) every failed job; of one app only when it is named. */
export async function requeueFailedJobs(tx: Queryable, ids: readonly string[] | null, appName: string | null): Promise<string[]> {
  const rows = await query(tx, REQUEUE_FAILED, [ids, appName]);
  return rows.map((row) => String(row['id']));
}

// ---- the dashboard's reads: each one walks an index, a page at a time (keyset on id) ------------

// The planner's estimate, kept up to date by autovacuum: -1 until the table was first analysed.
const APPROXIMATE_JOB_COUNT = `
  select reltuples::bigint as jobs
  from pg_class
  where oid = to_regclass('email_send_jobs')`;

export async function approximateJobCount(db: Queryable): Promise<number | null> {
  const [row] = await query(db, APPROXIMATE_JOB_COUNT);
  const jobs = Number(row?.['jobs'] ?? -1);
  return jobs < 0 ? null : jobs;
}

function toJobListRow(row: Record<string, unknown>): JobListRow {
  return { ...toJob(row), appName: String(row['app_name']), recipient: (row['recipient'] as string | null) ?? null };
}

/** A page of jobs, newest first: every app's, or one app's. */
export interface JobPage {
  appId?: string | undefined;
  /** Only jobs with a smaller id (the last id of the previous page). */
  before?: string | undefined;
  limit: number;
}

// A list row shows the job's first recipient (r.email) beside it.
const FIRST_RECIPIENT = `left join lateral (select email from email_recipients where job_id = j.id order by position limit 1) as r on true`;

const LIST_RECENT_JOBS = `
  select ${JOB_COLUMNS}, a.name as app_name, r.email as recipient
  from email_send_jobs j
  join apps a on a.id = j.app_id
  ${FIRST_RECIPIENT}
  where ($1::bigint is null or j.app_id = $1)
    and ($2::bigint is null or j.id < $2)
  order by j.id desc
  limit $3`;

export async function listRecentJobs(db: Queryable, page: JobPage): Promise<JobListRow[]> {
  const rows = await query(db, LIST_RECENT_JOBS, [page.appId ?? null, page.before ?? null, page.limit]);
  return rows.map(toJobListRow);
}

// Through the (address_key(email), job_id) index (sql/49_…): an address's jobs in id order, the app
// checked after. The key suppressions use (sql/48_…): any case, a domain in Unicode or ASCII, in any
// database locale.
const FIND_JOBS_BY_RECIPIENT = `
  select ${JOB_COLUMNS}, a.name as app_name, m.email as recipient
  from email_recipients m
  join email_send_jobs j on j.id = m.job_id
  join apps a on a.id = j.app_id
  where address_key(m.email) = address_key($1)
    and ($2::bigint is null or j.app_id = $2)
    and ($3::bigint is null or m.job_id < $3)
  order by m.job_id desc
  limit $4`;

export async function findJobsByRecipient(db: Queryable, email: string, page: JobPage): Promise<JobListRow[]> {
  const rows = await query(db, FIND_JOBS_BY_RECIPIENT, [email, page.appId ?? null, page.before ?? null, page.limit]);
  return rows.map(toJobListRow);
}

// Each app's matches are a range of the (app_id, custom_id, id) index (sql/37_…), read newest first
// up to the page's size; only the page's jobs are read from the table, with their first recipient: a
// custom_id every job of a campaign shares reads a page of index entries per app, not the campaign.
const FIND_JOBS_BY_ANY_CUSTOM_ID = `
  with found as (
    select f.id
    from apps a
    cross join lateral (
      select id
      from email_send_jobs
      where app_id = a.id
        and custom_id = $1
        and ($3::bigint is null or id < $3)
      order by id desc
      limit $4
    ) as f
    where ($2::bigint is null or a.id = $2)
    order by f.id desc
    limit $4
  )
  select ${JOB_COLUMNS}, a.name as app_name, r.email as recipient
  from found f
  join email_send_jobs j on j.id = f.id
  join apps a on a.id = j.app_id
  ${FIRST_RECIPIENT}
  order by j.id desc`;

export async function findJobsByAnyCustomId(db: Queryable, customId: string, page: JobPage): Promise<JobListRow[]> {
  const rows = await query(db, FIND_JOBS_BY_ANY_CUSTOM_ID, [customId, page.appId ?? null, page.before ?? null, page.limit]);
  return rows.map(toJobListRow);
}

// The subject and sender are read out of the message here only: one row's message, never a list's.
const FIND_JOB_OF_ANY_APP = `
  select ${JOB_COLUMNS}, a.name as app_name, j.message->>'subject' as subject, j.message->'from'->>'email' as from_email
  from email_send_jobs j
  join apps a on a.id = j.app_id
  where j.id = $1::bigint`;

export async function findJobOfAnyApp(db: Queryable, jobId: string): Promise<{ job: AdminJobRow; subject: string | null; from: string | null } | undefined> {
  const [row] = await query(db, FIND_JOB_OF_ANY_APP, [jobId]);
  return (
    row && {
      job: { ...toJob(row), appName: String(row['app_name']) },
      subject: (row['subject'] as string | null) ?? null,
      from: (row['from_email'] as string | null) ?? null,
    }
  );
}

// One count per status, each the first `cap` entries of the index that holds that status alone, in
// that index's order (db/capped-counts.ts): queued, scheduled and deferred in the status index
// (sql/36_…), keyed on (queue_status, id), processing in the lease index, failed in the dead-letter
// index. A scrape (or the dashboard's overview) then costs at most `cap` index entries per status
// however long the backlog, whatever it is made of. The oldest due job is the earliest of each
// priority's first entry in the claim index.
const countFirst = (status: DepthStatus, order: string) =>
  `(select count(*) from (select 1 from email_send_jobs where queue_status = '${status}' order by ${order} limit $1) s) as ${status}`;

const QUEUE_DEPTH = `
  select
    ${countFirst('queued', 'id')},
    ${countFirst('scheduled', 'id')},
    ${countFirst('deferred', 'id')},
    ${countFirst('processing', 'locked_until')},
    ${countFirst('failed', 'id desc')},
    (select extract(epoch from now() - min(first.run_at))::float8
      from ${FIRST_RUN_AT_BY_PRIORITY}
      where first.run_at <= now()) as oldest_due_age_s`;

/** Jobs by queue status (each up to `cap`) and the oldest due job's wait. In a transaction: the planner settings it makes (planByIndexOrder) last until its end. */
export async function readQueueDepth(tx: Queryable, cap: number): Promise<QueueDepth> {
  await planByIndexOrder(tx);
  const [row] = await query(tx, QUEUE_DEPTH, [cap]);
  return {
    byStatus: Object.fromEntries(DEPTH_STATUSES.map((status) => [status, Number(row?.[status] ?? 0)])) as QueueDepth['byStatus'],
    oldestDueAgeSeconds: Math.max(0, Number(row?.['oldest_due_age_s'] ?? 0)),
  };
}

// Retention (services/retention.ts). The next `$3` jobs by id are looked at, and those past
// retention are deleted: settled (not queued, scheduled, processing or deferred), unchanged for
// `$2` ms, no status change of theirs logged within `$2` ms either, and no webhook delivery still
// pending. A recipient's change leaves its job's status and updated_at as they were when the job
// already reads a higher status (an open by one recipient of a job another bounced), and a late
// open comes whenever its reader opens the message: read from updated_at alone, such a job went
// with a change the feed had not served yet. Ids grow with creation time, so the oldest jobs
// come first and a pass stops at the first window whose last job was created within retention. Their
// recipients, events, status changes and webhook deliveries go with them (the trigger of sql/26_…
// and 27_… for recipients, events and status changes, through the indexes of sql/7_ to 9_, and ON
// DELETE CASCADE for webhook deliveries).
//
// Two statements: the first locks the jobs that read as past retention, the second deletes those
// still past it. A recipient's change that leaves its job as it was (above), or a redelivery, writes
// no new version of the job's row: committed after one statement's snapshot and before that
// statement's lock, it was unseen, and the lock, free once its writer committed, checked nothing
// again, so the job went with a change the feed never served and a delivery never made. The second
// statement's snapshot comes after the locks: it sees every change (their writers lock the job until
// they commit) and every redelivery committed by then. A job locked by another transaction (an event
// being applied) is skipped.
const PAST_RETENTION = `
  j.status not in ('queued', 'scheduled', 'processing', 'deferred')
  and j.updated_at < now() - make_interval(secs => $2::double precision / 1000)
  and not exists (
    select 1
    from status_changes c
    where c.job_id = j.id
      and (c.created_at >= now() - make_interval(secs => $2::double precision / 1000)
        or exists (select 1 from webhook_deliveries d where d.change_id = c.id and d.status = 'pending')))`;

const LOCK_PRUNABLE_JOBS = `
  with scanned as (
    select id, created_at
    from email_send_jobs
    where id > $1::bigint
    order by id
    limit $3
  ),
  locked as (
    select j.id
    from email_send_jobs j
    join scanned s on s.id = j.id
    where ${PAST_RETENTION}
    for update of j skip locked
  )
  select
    array(select id from locked)::text[] as locked,
    (select count(*) from scanned)::int as scanned,
    (select max(id) from scanned)::text as last_id,
    coalesce((select created_at >= now() - make_interval(secs => $2::double precision / 1000) from scanned order by id desc limit 1), false) as reached_recent`;

const DELETE_PRUNABLE_JOBS = `
  delete from email_send_jobs j
  where j.id = any($1::bigint[])
    and ${PAST_RETENTION}`;

export interface PruneWindow {
  deleted: number;
  /** The last id looked at: the next window starts after it (null: nothing was left to look at). */
  lastId: string | null;
  /** True when the pass is over: the window reached the end of the table, or its last job was created within retention. */
  done: boolean;
}

/** In the caller's transaction, READ COMMITTED (PostgreSQL's default): the delete needs a snapshot of its own (see PAST_RETENTION). */
export async function pruneJobsWindow(db: Queryable, afterId: string, retentionMs: number, window: number): Promise<PruneWindow> {
  const [row] = await query(db, LOCK_PRUNABLE_JOBS, [afterId, retentionMs, window]);
  const locked = row!['locked'] as string[];
  const deleted = locked.length === 0 ? 0 : ((await db.query(DELETE_PRUNABLE_JOBS, [locked, retentionMs])).rowCount ?? 0);
  const scanned = Number(row!['scanned']);
  return {
    deleted,
    lastId: (row!['last_id'] as string | null) ?? null,
    done: scanned < window || row!['reached_recent'] === true,
  };
}
