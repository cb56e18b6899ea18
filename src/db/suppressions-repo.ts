// suppressions: per app, the addresses not to send to, each under its key (address_key() of sql/42,
// 44 and 50: lower-cased whatever the locale, the domain as UTS #46 maps it, in ASCII), so that one
// matches whatever form it is written in.
import type { RecipientSuppression, Suppression, SuppressionReason } from '../domain/suppression.js';
import { query, type Queryable } from './pool.js';

function toSuppression(row: Record<string, unknown>): Suppression {
  return {
    email: String(row['email']),
    reason: row['reason'] as SuppressionReason,
    detail: (row['detail'] as string | null) ?? null,
    createdAt: row['created_at'] as Date,
  };
}

// The app is the recipient's job's app: a complaint about one app's mail suppresses it for that app only.
// Of the entries for one address, the first given (the first event) is written, and gives the reason;
// addresses in one order for every writer, as events-repo's STORE_AND_APPLY.
const SUPPRESS_RECIPIENTS = `
  insert into suppressions (app_id, email, reason, detail)
  select j.app_id, address_key(r.email), s.reason, s.detail
  from unnest($1::bigint[], $2::text[], $3::text[]) with ordinality as s(recipient_id, reason, detail, ord)
  join email_recipients r on r.id = s.recipient_id
  join email_send_jobs j on j.id = r.job_id
  order by j.app_id, address_key(r.email), s.ord
  on conflict (app_id, email) do nothing`;

export async function suppressRecipients(tx: Queryable, entries: readonly RecipientSuppression[]): Promise<void> {
  if (entries.length === 0) {
    return;
  }
  await query(tx, SUPPRESS_RECIPIENTS, [entries.map((e) => e.recipientId), entries.map((e) => e.reason), entries.map((e) => e.detail)]);
}

const LIST_SUPPRESSIONS = `
  select email, reason, detail, created_at
  from suppressions
  where app_id = $1::bigint
    and ($2::text is null or email > address_key($2))
  order by email
  limit $3`;

export async function listSuppressions(db: Queryable, appId: string, options: { after?: string | undefined; limit: number }): Promise<Suppression[]> {
  const rows = await query(db, LIST_SUPPRESSIONS, [appId, options.after ?? null, options.limit]);
  return rows.map(toSuppression);
}

const ADD_SUPPRESSION = `
  insert into suppressions (app_id, email, reason, detail)
  values ($1::bigint, address_key($2), 'manual', $3)
  on conflict (app_id, email) do update
    set detail = case when suppressions.reason = 'manual' then coalesce(excluded.detail, suppressions.detail) else suppressions.detail end
  returning email, reason, detail, created_at`;

/** Adds an address by hand (an address Mailjet's events suppressed keeps its reason and detail). */
export async function addSuppression(db: Queryable, appId: string, email: string, detail: string | null): Promise<Suppression> {
  const [row] = await query(db, ADD_SUPPRESSION, [appId, email, detail]);
  return toSuppression(row!);
}

const REMOVE_SUPPRESSION = `
  delete from suppressions
  where app_id = $1::bigint
    and email = address_key($2)
  returning email`;

export async function removeSuppression(db: Queryable, appId: string, email: string): Promise<boolean> {
  return (await query(db, REMOVE_SUPPRESSION, [appId, email])).length > 0;
}
