// A start on a database moved to another PostgreSQL by a dump and restore or by logical replication,
// without the rebase of docs/operations.md: the changes it brought keep the old cluster's transaction
// ids, and the changes feed would hide them, from every app, until this cluster's ids pass them.
import type { Queryable } from '../db/pool.js';
import { hasChangesAheadOfDatabase } from '../db/status-changes-repo.js';
import { StartupError } from '../domain/errors.js';

/**
 * The rebase of docs/operations.md, "Moving the database to another PostgreSQL": the moved changes
 * go before every change written here, and are visible at once. Only those ahead of this cluster are
 * touched: run again, or after jetpost has written changes here, it leaves every other row as it is.
 */
export const rebaseMovedChanges = (schema: string) =>
  `update ${schema}.status_changes set txid = '3'::xid8 where txid >= pg_snapshot_xmax(pg_current_snapshot());`;

/**
 * Throws a StartupError naming the rebase when the database holds changes from another cluster.
 * Refused, not rebased here: the update rewrites every moved change (minutes, and twice the table's
 * size until a vacuum, on a large history), which a start that a process manager may cut short and
 * retry must not do on its own; and the apps must be told to read the feed again from after=0.
 */
export async function refuseMovedChanges(db: Queryable, schema: string): Promise<void> {
  if (await hasChangesAheadOfDatabase(db)) {
    throw new StartupError(
      `the changes feed holds status changes whose transaction ids this PostgreSQL has not reached: jetpost's database was moved by a dump and restore or by logical replication, and the feed would hide those changes. Run ${rebaseMovedChanges(schema)} then start jetpost again, and tell the apps to read the feed again from after=0 (docs/operations.md, "Moving the database to another PostgreSQL")`,
    );
  }
}
