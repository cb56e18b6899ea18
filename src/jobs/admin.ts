// Operator actions on jobs, shared by the admin API and the CLI: list the dead letters (failed
// jobs, with their reasons) and re-queue them.
import { type AdminJobRow, listJobsByStatus, requeueFailedJobs } from '../db/jobs-repo.js';
import { notifyJobsReady } from '../db/notify.js';
import { type Pool, withTransaction } from '../db/pool.js';
import { reopenFailedRecipients } from '../db/recipients-repo.js';
import type { JobStatus } from './status.js';

export async function listJobs(
  pool: Pool,
  status: JobStatus,
  options: { appName?: string | undefined; before?: string | undefined; limit: number },
): Promise<AdminJobRow[]> {
  return listJobsByStatus(pool, status, options);
}

/**
 * Re-queues failed jobs (the given ids, or all failed jobs, of one app when named) and wakes the
 * consumers of every replica. Jobs that are not failed are left alone.
 */
export async function requeueFailed(pool: Pool, notifyChannel: string, target: { ids: readonly string[] | null; appName: string | null }): Promise<string[]> {
  return withTransaction(pool, async (tx) => {
    const ids = await requeueFailedJobs(tx, target.ids, target.appName);
    await reopenFailedRecipients(tx, ids);
    if (ids.length > 0) {
      await notifyJobsReady(tx, notifyChannel);
    }
    return ids;
  });
}
