// Whether the database takes writes. A hot standby (DATABASE_URL still naming the old primary after a
// failover) or a database with default_transaction_read_only answers every write with 25006 while
// it answers reads as ever: /readyz must not call it ready.
import type { Queryable } from './pool.js';

const READ_ONLY = "select current_setting('transaction_read_only') = 'on' as read_only";

export async function databaseReadOnly(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ read_only: boolean }>(READ_ONLY);
  return rows[0]?.read_only === true;
}
