// Re-queueing failed jobs (the dead letters): one transition for the admin API and the CLI.
import { requeueFailedJobs } from '../db/jobs-repo.js';
import { notify, type NotifyChannels } from '../db/notify.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { reopenFailedRecipients } from '../db/recipients-repo.js';
import { findApp } from './apps.js';

/**
 * Re-queues failed jobs (the given ids, or all failed jobs, of one app when named: a 404 when it
 * does not exist) and wakes the consumers of every replica. Jobs that are not failed are left alone.
 */
export async function requeueFailed(
  pool: Pool,
  channels: NotifyChannels,
  target: { ids: readonly string[] | null; appName: string | null },
): Promise<string[]> {
  const requeue = async (tx: Queryable) => {
    // A mistyped app is a 404, not "re-queued 0 jobs"; the jobs are the app found's, by its name as
    // stored (the one asked for may differ in case).
    const app = target.appName === null ? null : await findApp(tx, target.appName);
    const ids = await requeueFailedJobs(tx, target.ids, app?.name ?? null);
    await reopenFailedRecipients(tx, ids);
    if (ids.length > 0) {
      await notify(tx, channels.jobs);
    }
    return ids;
  };
  // Bulk: "all failed" may be a whole day's dead letters.
  return withTransaction(pool, requeue, { bulk: true });
}
