// status_changes: the log of status changes apps hear about (polling feed and webhook outbox).
import type { NewStatusChange, RecordedChange, StatusChangeRow } from '../domain/status-change.js';
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

// A sequence hands out ids before commit, so "id > cursor" skips a row whose transaction commits
// after a later one was read. Instead rows are read in (transaction id, id) order, and only from
// transactions older than the oldest one still running (the snapshot's xmin): every transaction
// that can still commit has a larger id than any row handed out, so nothing is ever skipped.
const FEED = `
  select ${CHANGE_COLUMNS}
  from status_changes c
  join email_send_jobs j on j.id = c.job_id
  left join email_recipients r on r.id = c.recipient_id
  where c.app_id = $1::bigint
    and (c.txid, c.id) > ($2::xid8, $3::bigint)
    and c.txid < pg_snapshot_xmin(pg_current_snapshot())
  order by c.txid, c.id
  limit $4`;

export async function readFeed(db: Queryable, appId: string, after: { txid: string; id: string }, limit: number): Promise<StatusChangeRow[]> {
  const rows = await query(db, FEED, [appId, after.txid, after.id, limit]);
  return rows.map(toStatusChange);
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

const FIND_CHANGES_OF_JOB = `
  select ${CHANGE_COLUMNS}
  from status_changes c
  join email_send_jobs j on j.id = c.job_id
  left join email_recipients r on r.id = c.recipient_id
  where c.job_id = $1::bigint
  order by c.id
  limit $2`;

/** A job's status changes, oldest first, at most `limit` of them. */
export async function findChangesOfJob(db: Queryable, jobId: string, limit: number): Promise<StatusChangeRow[]> {
  const rows = await query(db, FIND_CHANGES_OF_JOB, [jobId, limit]);
  return rows.map(toStatusChange);
}
