// webhook_previous_secrets: secrets a rotation replaced, still signing next to the current one until
// they expire. Times are the database's (now()), the clock the delivery claim compares them with.
import type { PreviousSecret } from '../domain/app.js';
import { query, type Queryable } from './pool.js';

const LIST_VALID = `
  select secret, expires_at
  from webhook_previous_secrets
  where app_id = $1::bigint
    and expires_at > now()
  order by id desc`;

/** The app's previous secrets that still sign, newest first. */
export async function listValidPreviousSecrets(db: Queryable, appId: string): Promise<PreviousSecret[]> {
  const rows = await query(db, LIST_VALID, [appId]);
  return rows.map((row) => ({ secret: String(row['secret']), expiresAt: row['expires_at'] as Date }));
}

// A rotation ends every older secret by the end of its own overlap at the latest, and forgets those
// that end by then: an overlap of 0 ends them all at once.
const FORGET_ENDED = `
  delete from webhook_previous_secrets
  where app_id = $1::bigint
    and least(expires_at, now() + make_interval(secs => $2::double precision)) <= now()`;

const CUT_SHORT = `
  update webhook_previous_secrets
  set expires_at = least(expires_at, now() + make_interval(secs => $2::double precision))
  where app_id = $1::bigint`;

export async function cutPreviousSecretsShort(db: Queryable, appId: string, overlapSeconds: number): Promise<void> {
  await query(db, FORGET_ENDED, [appId, overlapSeconds]);
  await query(db, CUT_SHORT, [appId, overlapSeconds]);
}

const INSERT = `
  insert into webhook_previous_secrets (app_id, secret, expires_at)
  values ($1::bigint, $2, now() + make_interval(secs => $3::double precision))`;

// The newest `$2` kept (ids grow with each rotation).
const FORGET_BEYOND = `
  delete from webhook_previous_secrets
  where app_id = $1::bigint
    and id not in (select id from webhook_previous_secrets where app_id = $1::bigint order by id desc limit $2)`;

/** Adds a rotated-out secret; of the app's previous secrets, only the newest `keep` are kept. */
export async function insertPreviousSecret(db: Queryable, appId: string, secret: string, overlapSeconds: number, keep: number): Promise<void> {
  await query(db, INSERT, [appId, secret, overlapSeconds]);
  await query(db, FORGET_BEYOND, [appId, keep]);
}

const DELETE_ALL = `
  delete from webhook_previous_secrets
  where app_id = $1::bigint`;

export async function deletePreviousSecrets(db: Queryable, appId: string): Promise<void> {
  await query(db, DELETE_ALL, [appId]);
}
