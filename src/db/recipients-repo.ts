// email_recipients: one row per To/Cc/Bcc address of a job, with Mailjet's ids once accepted.
import type { RecipientKind } from '../domain/message.js';
import type { RecipientRow } from '../domain/recipient.js';
import type { RecipientStatus } from '../domain/status.js';
import type { SuppressionReason } from '../domain/suppression.js';
import { query, type Queryable } from './pool.js';

function toRecipient(row: Record<string, unknown>): RecipientRow {
  return {
    id: String(row['id']),
    jobId: String(row['job_id']),
    position: Number(row['position']),
    kind: row['kind'] as RecipientKind,
    email: String(row['email']),
    name: (row['name'] as string | null) ?? null,
    status: row['status'] as RecipientStatus,
    messageId: (row['mailjet_message_id'] as string | null) ?? null,
    messageUuid: (row['mailjet_message_uuid'] as string | null) ?? null,
    updatedAt: row['updated_at'] as Date,
  };
}

// mailjet_message_id is cast to text in SQL so that no driver setting can ever turn it into a number.
const RECIPIENT_COLUMNS = `
  id, job_id, position, kind, email, name, status, mailjet_message_id::text as mailjet_message_id,
  mailjet_message_uuid, updated_at`;

/**
 * The recipients of the job aliased `j`, with the suppression of each address for the job's app, as
 * one JSON array (read it with claimedRecipientsFromJson): the claim selects it beside each job.
 */
export const CLAIMED_RECIPIENTS_JSON = `(
    select json_agg(json_build_object(
      'id', r.id::text, 'position', r.position, 'kind', r.kind, 'email', r.email, 'name', r.name, 'status', r.status,
      'message_id', r.mailjet_message_id::text, 'message_uuid', r.mailjet_message_uuid,
      'updated_at_ms', extract(epoch from r.updated_at) * 1000,
      'suppressed', s.reason) order by r.position)
    from email_recipients r
    left join suppressions s on s.app_id = j.app_id and s.email = address_key(r.email)
    where r.job_id = j.id)`;

/** A job's recipients, and its suppressed addresses (lower-cased) with their reason, from CLAIMED_RECIPIENTS_JSON. */
export function claimedRecipientsFromJson(jobId: string, json: unknown): { recipients: RecipientRow[]; suppressed: Map<string, SuppressionReason> } {
  const items = (json ?? []) as Array<Record<string, unknown>>;
  // Built field by field: a timestamp as JSON text would go through Date's slow fallback parser.
  const recipients = items.map((item): RecipientRow => ({
    id: String(item['id']),
    jobId,
    position: Number(item['position']),
    kind: item['kind'] as RecipientKind,
    email: String(item['email']),
    name: (item['name'] as string | null) ?? null,
    status: item['status'] as RecipientStatus,
    messageId: (item['message_id'] as string | null) ?? null,
    messageUuid: (item['message_uuid'] as string | null) ?? null,
    updatedAt: new Date(Number(item['updated_at_ms'])),
  }));
  const suppressed = new Map(
    items.flatMap((item) => (item['suppressed'] == null ? [] : [[String(item['email']).toLowerCase(), item['suppressed'] as SuppressionReason] as const])),
  );
  return { recipients, suppressed };
}

const FIND_RECIPIENTS = `
  select ${RECIPIENT_COLUMNS}
  from email_recipients
  where job_id = any($1::bigint[])
  order by job_id, position`;

export async function findRecipients(db: Queryable, jobIds: readonly string[]): Promise<RecipientRow[]> {
  const rows = await query(db, FIND_RECIPIENTS, [jobIds]);
  return rows.map(toRecipient);
}

const LOCK_RECIPIENTS_OF_JOBS = `
  select ${RECIPIENT_COLUMNS}
  from email_recipients
  where job_id = any($1::bigint[])
  order by id
  for no key update`;

/** Locks every recipient of the jobs (lock the jobs first: jobs, then recipients, always). */
export async function lockRecipientsOfJobs(tx: Queryable, jobIds: readonly string[]): Promise<RecipientRow[]> {
  const rows = await query(tx, LOCK_RECIPIENTS_OF_JOBS, [jobIds]);
  return rows.map(toRecipient);
}

const CLOSE_PENDING_RECIPIENTS = `
  update email_recipients
  set status = $2,
    updated_at = now()
  where job_id = any($1::bigint[])
    and status = 'pending'`;

/** Marks the recipients of jobs that will never be sent (failed, cancelled). */
export async function closePendingRecipients(tx: Queryable, jobIds: readonly string[], status: 'failed' | 'cancelled'): Promise<void> {
  if (jobIds.length === 0) {
    return;
  }
  await query(tx, CLOSE_PENDING_RECIPIENTS, [jobIds, status]);
}

const SET_RECIPIENT_STATUSES = `
  update email_recipients r
  set status = u.status,
    updated_at = now()
  from unnest($1::bigint[], $2::text[]) as u(id, status)
  where r.id = u.id`;

export async function setRecipientStatuses(tx: Queryable, changes: ReadonlyMap<string, RecipientStatus>): Promise<void> {
  if (changes.size === 0) {
    return;
  }
  await query(tx, SET_RECIPIENT_STATUSES, [[...changes.keys()], [...changes.values()]]);
}

const REOPEN_FAILED_RECIPIENTS = `
  update email_recipients
  set status = 'pending',
    updated_at = now()
  where job_id = any($1::bigint[])
    and status in ('failed', 'suppressed')`;

/** The recipients of re-queued jobs wait again (a suppressed one is checked again at the next send). */
export async function reopenFailedRecipients(tx: Queryable, jobIds: readonly string[]): Promise<void> {
  if (jobIds.length > 0) {
    await query(tx, REOPEN_FAILED_RECIPIENTS, [jobIds]);
  }
}
