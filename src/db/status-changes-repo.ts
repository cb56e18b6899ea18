// status_changes: the log of status changes apps hear about (polling feed and webhook outbox).
import { query, type Queryable } from './pool.js';

export interface NewStatusChange {
  jobId: string;
  /** Null for a change of the job itself. */
  recipientId: string | null;
  oldStatus: string | null;
  newStatus: string;
  details: Record<string, unknown> | null;
}

// The changes and, for apps with a webhook, their deliveries, in the caller's transaction; the
// dispatchers of every replica are woken when it commits.
const RECORD_CHANGES = `
  with inserted as (
    insert into status_changes (app_id, job_id, recipient_id, old_status, new_status, details)
    select j.app_id, c.job_id, c.recipient_id, c.old_status, c.new_status, c.details
    from unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[])
      with ordinality as c(job_id, recipient_id, old_status, new_status, details, ord)
    join email_send_jobs j on j.id = c.job_id
    order by c.ord
    returning id, app_id
  ),
  deliveries as (
    insert into webhook_deliveries (change_id, app_id, url)
    select i.id, i.app_id, a.webhook_url
    from inserted i
    join apps a on a.id = i.app_id
    where a.webhook_url is not null
    returning id
  )
  select count(*)::int as deliveries, pg_notify(current_schema() || '_webhooks_ready', '') is not null as notified
  from deliveries
  having count(*) > 0`;

export async function recordStatusChanges(tx: Queryable, changes: readonly NewStatusChange[]): Promise<void> {
  if (changes.length === 0) {
    return;
  }
  await query(tx, RECORD_CHANGES, [
    changes.map((c) => c.jobId),
    changes.map((c) => c.recipientId),
    changes.map((c) => c.oldStatus),
    changes.map((c) => c.newStatus),
    changes.map((c) => (c.details === null ? null : JSON.stringify(c.details))),
  ]);
}

export interface StatusChangeRow {
  id: string;
  /** The writing transaction's id (xid8), as text. */
  txid: string;
  jobId: string;
  customId: string | null;
  metadata: Record<string, unknown> | null;
  recipient: string | null;
  oldStatus: string | null;
  newStatus: string;
  details: Record<string, unknown> | null;
  createdAt: Date;
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
