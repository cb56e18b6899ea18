// The lock that lets one replica at a time prune history (services/retention.ts). Per transaction,
// so that it works through a pooler in transaction mode and can never be left held.
import { query, type Queryable } from './pool.js';

/** A two-key advisory lock ("jr", 0), apart from the message locks of events-repo.ts ("jm", slot). */
const LOCK_CLASS = 0x6a72;
const RETENTION_LOCK = 0;

/** Takes the retention lock for the rest of the transaction; false when another transaction holds it. */
export async function tryRetentionLock(tx: Queryable): Promise<boolean> {
  const [row] = await query(tx, 'select pg_try_advisory_xact_lock($1::int, $2::int) as locked', [LOCK_CLASS, RETENTION_LOCK]);
  return row!['locked'] === true;
}
