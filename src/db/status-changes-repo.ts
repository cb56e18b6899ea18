// status_changes: the log of status changes apps hear about (polling feed and webhook outbox).
import { OMITTED_EVENTS_COUNTED } from '../domain/event.js';
import type { FeedPage, NewStatusChange, RecordedChange, StatusChangeRow } from '../domain/status-change.js';
import { type PreparedStatement, query, type Queryable } from './pool.js';

// In the caller's transaction, in the order given. Writing the webhook deliveries these changes cause
// is the caller's next step (services/webhook-outbox.ts), not a side effect of this statement.
const RECORD_CHANGES_TEXT = `
  insert into status_changes (app_id, job_id, recipient_id, old_status, new_status, details)
  select j.app_id, c.job_id, c.recipient_id, c.old_status, c.new_status, c.details
  from unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[])
    with ordinality as c(job_id, recipient_id, old_status, new_status, details, ord)
  join email_send_jobs j on j.id = c.job_id
  order by c.ord
  returning id, app_id, new_status`;
const RECORD_CHANGES: PreparedStatement = { name: 'status_changes_record', text: RECORD_CHANGES_TEXT };

/** Writes the changes; returns each one's id, app and type. */
export async function recordStatusChanges(tx: Queryable, changes: readonly NewStatusChange[]): Promise<RecordedChange[]> {
  if (changes.length === 0) {
    return [];
  }
  const rows = await query(tx, RECORD_CHANGES, [
    changes.map((c) => c.jobId),
    changes.map((c) => c.recipientId),
    changes.map((c) => c.oldStatus),
    changes.map((c) => c.newStatus),
    changes.map((c) => (c.details === null ? null : JSON.stringify(c.details))),
  ]);
  return rows.map((row) => ({ id: String(row['id']), appId: String(row['app_id']), type: String(row['new_status']) }));
}

export const CHANGE_COLUMNS = `
  c.id, c.txid::text as txid, c.job_id, j.custom_id, j.metadata, r.email as recipient, c.old_status, c.new_status,
  c.details, c.created_at`;

export function toStatusChange(row: Record<string, unknown>): StatusChangeRow {
  return {
    id: String(row['id']),
    txid: String(row['txid']),
    jobId: String(row['job_id']),
    customId: (row['custom_id'] as string | null) ?? null,
    metadata: (row['metadata'] as Record<string, unknown> | null) ?? null,
    recipient: (row['recipient'] as string | null) ?? null,
    oldStatus: (row['old_status'] as string | null) ?? null,
    newStatus: String(row['new_status']),
    details: (row['details'] as Record<string, unknown> | null) ?? null,
    createdAt: row['created_at'] as Date,
  };
}

/** What a change's row holds besides its details, metadata and custom_id (ids, statuses, time, address): a byte budget counts it with them. */
const CHANGE_OVERHEAD_BYTES = 120;

// A sequence hands out ids before commit, so "id > cursor" skips a row whose transaction commits
// after a later one was read. Instead rows are read in (transaction id, id) order, and only from
// transactions older than the oldest one still running (the snapshot's xmin): every transaction
// that can still commit has a larger id than any row handed out, so nothing is ever skipped.
// One row more than the page holds tells whether more follow. Of those, a change is kept while the
// changes kept so far fit in `$5` bytes (its details', metadata's and custom_id's text as PostgreSQL
// writes them, and CHANGE_OVERHEAD_BYTES), the first always: the rest come back without their text.
const FEED = `
  select f.id, f.txid, f.job_id, f.recipient, f.old_status, f.new_status, f.created_at, f.kept,
    case when f.kept then f.custom_id end as custom_id,
    case when f.kept then f.metadata end as metadata,
    case when f.kept then f.details end as details
  from (
    select l.*,
      row_number() over page <= $4 and (row_number() over page = 1 or sum(l.bytes) over page <= $5) as kept
    from (
      select ${CHANGE_COLUMNS}, c.txid as txid_order,
        coalesce(octet_length(c.details::text), 0) + coalesce(octet_length(j.metadata::text), 0) + coalesce(octet_length(j.custom_id), 0)
          + ${CHANGE_OVERHEAD_BYTES} as bytes
      from status_changes c
      join email_send_jobs j on j.id = c.job_id
      left join email_recipients r on r.id = c.recipient_id
      where c.app_id = $1::bigint
        and (c.txid, c.id) > ($2::xid8, $3::bigint)
        and c.txid < pg_snapshot_xmin(pg_current_snapshot())
      order by c.txid, c.id
      limit $4 + 1
    ) as l
    window page as (order by l.txid_order, l.id rows unbounded preceding)
  ) as f
  order by f.txid_order, f.id`;

/** The app's changes after the cursor: at most `limit`, all together within `maxBytes` (one at least), and whether more follow now. */
export async function readFeed(db: Queryable, appId: string, after: { txid: string; id: string }, limit: number, maxBytes: number): Promise<FeedPage> {
  const rows = await query(db, FEED, [appId, after.txid, after.id, limit, maxBytes]);
  const changes = rows.filter((row) => row['kept'] === true).map(toStatusChange);
  return { changes, more: changes.length < rows.length };
}

// Every transaction id handed out so far is below the snapshot's xmax, so a cursor at or past it
// was never given by this database: read from, it would answer nothing until transaction ids
// caught up with it, and then skip every change made before.
const IS_AHEAD = `select $1::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) as ahead`;

/** Whether a cursor's transaction id is one this database has not handed out yet. */
export async function isCursorAhead(db: Queryable, after: { txid: string }): Promise<boolean> {
  const [row] = await query(db, IS_AHEAD, [after.txid]);
  return row?.['ahead'] === true;
}

// A change whose transaction id this database has not handed out yet was written by another cluster
// and kept its id in the row: the database was moved by a dump and restore or by logical replication
// (docs/operations.md). Each app's newest transaction id is one probe of the feed's index, so no scan
// of the table: the moved changes are the newest of their app until this cluster's ids pass them.
const CHANGES_AHEAD = `
  select exists (
    select 1
    from apps a
    cross join lateral (
      select c.txid
      from status_changes c
      where c.app_id = a.id
      order by c.txid desc
      limit 1
    ) as newest
    where newest.txid >= pg_snapshot_xmax(pg_current_snapshot())
  ) as ahead`;

/** Whether some status change carries a transaction id this database has not reached: hidden from the feed until it does. */
export async function hasChangesAheadOfDatabase(db: Queryable): Promise<boolean> {
  const [row] = await query(db, CHANGES_AHEAD);
  return row?.['ahead'] === true;
}

// A job's first status changes, one more than the caller keeps (to tell whether some are left out),
// on status_changes (job_id, id). With a budget `$3` (bytes), a change is kept while the changes kept
// so far fit in it: its details' JSON text (as PostgreSQL writes it) and CHANGE_OVERHEAD_BYTES. The
// changes not kept come back without their details. The job's custom_id and metadata (8 KiB) are not
// repeated on every row: the caller has the job.
const FIND_CHANGES_OF_JOB = `
  select c.id, c.txid::text as txid, c.job_id, null as custom_id, null as metadata, r.email as recipient, c.old_status, c.new_status,
    case when c.kept then c.details end as details, c.created_at, c.kept
  from (
    select l.*,
      l.rank <= $2 and sum(l.bytes) over (order by l.id rows unbounded preceding) <= $3 as kept
    from (
      select s.*,
        row_number() over (order by s.id) as rank,
        coalesce(octet_length(s.details::text), 0) + ${CHANGE_OVERHEAD_BYTES} as bytes
      from status_changes s
      where s.job_id = $1::bigint
      order by s.id
      limit $2 + 1
    ) as l
  ) as c
  left join email_recipients r on r.id = c.recipient_id
  order by c.id`;

// A job's changes up to `$2`, on status_changes (job_id, id).
const COUNT_CHANGES_OF_JOB = `
  select count(*)::int as changes
  from (select 1 from status_changes where job_id = $1::bigint limit $2) as counted`;

export interface FirstChanges {
  /** The job's first changes (up to the limit, and within the budget), oldest first. */
  changes: StatusChangeRow[];
  /** How many later ones were left out, at most OMITTED_EVENTS_COUNTED (that many means that many or more). */
  omitted: number;
}

/** A job's first `limit` status changes, all together within `maxBytes`, and how many later ones it leaves out (counted up to OMITTED_EVENTS_COUNTED). */
export async function findChangesOfJob(db: Queryable, jobId: string, limit: number, maxBytes: number): Promise<FirstChanges> {
  const rows = await query(db, FIND_CHANGES_OF_JOB, [jobId, limit, maxBytes]);
  const changes = rows.filter((row) => row['kept'] === true).map(toStatusChange);
  if (changes.length === rows.length) {
    return { changes, omitted: 0 };
  }
  const [count] = await query(db, COUNT_CHANGES_OF_JOB, [jobId, changes.length + OMITTED_EVENTS_COUNTED]);
  return { changes, omitted: Math.max(0, (count?.['changes'] as number) - changes.length) };
}
