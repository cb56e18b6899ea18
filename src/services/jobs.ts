// The job operations behind the API: enqueue (with idempotency), cancel, and read (jobs and the
// changes feed). Each write is one transaction that ends with its NOTIFY steps.
import { createHash } from 'node:crypto';

import type { Bus } from '../bus.js';
import { findEventsOfJobs } from '../db/events-repo.js';
import { claimIdempotencyKey, setIdempotencyJobIds } from '../db/idempotency-repo.js';
import { cancelJob, findJobs, findJobsByCustomId, insertJobs } from '../db/jobs-repo.js';
import { notify, type NotifyChannels } from '../db/notify.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { closePendingRecipients, findRecipients } from '../db/recipients-repo.js';
import { readFeed, recordStatusChanges } from '../db/status-changes-repo.js';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { StoredEvent } from '../domain/event.js';
import type { JobRow } from '../domain/job.js';
import type { NewJob } from '../domain/message.js';
import type { RecipientRow } from '../domain/recipient.js';
import type { FeedCursor, StatusChangeRow } from '../domain/status-change.js';
import { queueWebhookDeliveries } from './webhook-outbox.js';

export interface JobView {
  job: JobRow;
  recipients: RecipientRow[];
  events: StoredEvent[];
}

export interface EnqueueResult {
  jobs: JobRow[];
  /** True when an earlier request with the same Idempotency-Key made these jobs. */
  replayed: boolean;
}

export interface JobServiceDeps {
  pool: Pool;
  /** The LISTEN/NOTIFY channels that wake the consumers and dispatchers of every replica. */
  channels: NotifyChannels;
  maxAttempts: number;
  /** Wakes this process's idle consumers at once. */
  wakeLocal: () => void;
  bus: Bus;
  now?: () => Date;
}

export interface JobService {
  enqueue(appId: string, jobs: readonly NewJob[], idempotencyKey?: string): Promise<EnqueueResult>;
  cancel(appId: string, jobId: string): Promise<JobRow>;
  view(appId: string, jobIds: readonly string[]): Promise<JobView[]>;
  viewByCustomId(appId: string, customIds: readonly string[], limit: number): Promise<JobView[]>;
  /** The app's status changes after `after`, oldest first (see readFeed: none is ever skipped). */
  changes(appId: string, after: FeedCursor, limit: number): Promise<StatusChangeRow[]>;
}

/** A stable hash of the normalised request: the same key with another body is a conflict. */
export function requestHash(jobs: readonly NewJob[]): string {
  return createHash('sha256').update(JSON.stringify(jobs)).digest('hex');
}

export function createJobService({ pool, channels, maxAttempts, wakeLocal, bus, now = () => new Date() }: JobServiceDeps): JobService {
  async function insert(tx: Queryable, appId: string, jobs: readonly NewJob[]): Promise<string[]> {
    const at = now();
    const ids = await insertJobs(
      tx,
      appId,
      jobs.map((job) => {
        const scheduled = job.sendAt !== undefined && job.sendAt.getTime() > at.getTime();
        return { job, status: scheduled ? 'scheduled' : 'queued', runAt: scheduled ? job.sendAt! : at, maxAttempts };
      }),
    );
    // Delivered at commit, to the consumers of every replica.
    await notify(tx, channels.jobs);
    return ids;
  }

  /** Read in the enqueue transaction: the answer shows the status the request created. */
  async function findInOrder(db: Queryable, appId: string, ids: readonly string[]): Promise<JobRow[]> {
    const byId = new Map((await findJobs(db, appId, ids)).map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id)).filter((row): row is JobRow => row !== undefined);
  }

  async function loadViews(db: Queryable, jobs: JobRow[]): Promise<JobView[]> {
    const ids = jobs.map((job) => job.id);
    const [recipients, events] = await Promise.all([findRecipients(db, ids), findEventsOfJobs(db, ids)]);
    return jobs.map((job) => ({
      job,
      recipients: recipients.filter((r) => r.jobId === job.id),
      events: events.filter((e) => e.jobId === job.id),
    }));
  }

  return {
    async enqueue(appId, jobs, idempotencyKey) {
      // Bulk: up to 500 messages and 20 MB in one request.
      const result = await withTransaction(pool, async (tx) => {
        if (idempotencyKey === undefined) {
          return { jobs: await findInOrder(tx, appId, await insert(tx, appId, jobs)), replayed: false };
        }
        const hash = requestHash(jobs);
        const claim = await claimIdempotencyKey(tx, appId, idempotencyKey, hash);
        if (!claim.claimed) {
          if (claim.existing.requestHash !== hash) {
            throw new ConflictError(
              'idempotency-key-reused',
              'this Idempotency-Key was already used with a different request body; use a new key for a new request',
            );
          }
          return { jobs: await findInOrder(tx, appId, claim.existing.jobIds), replayed: true };
        }
        const ids = await insert(tx, appId, jobs);
        await setIdempotencyJobIds(tx, appId, idempotencyKey, ids);
        return { jobs: await findInOrder(tx, appId, ids), replayed: false };
      }, { bulk: true });
      if (!result.replayed) {
        wakeLocal();
        bus.emit('jobs:enqueued', { appId, count: result.jobs.length });
      }
      return result;
    },

    async cancel(appId, jobId) {
      return withTransaction(pool, async (tx) => {
        const cancelled = await cancelJob(tx, appId, jobId);
        if (cancelled) {
          await closePendingRecipients(tx, [jobId], 'cancelled');
          const changes = await recordStatusChanges(tx, [{ jobId, recipientId: null, oldStatus: cancelled.oldStatus, newStatus: 'cancelled', details: null }]);
          await queueWebhookDeliveries(tx, channels, changes);
          return cancelled.job;
        }
        const [existing] = await findJobs(tx, appId, [jobId]);
        if (!existing) {
          throw new NotFoundError(`job ${jobId} not found`);
        }
        throw new ConflictError('job-not-cancellable', `job ${jobId} is ${existing.status}: only queued, scheduled or deferred jobs can be cancelled`);
      });
    },

    async view(appId, jobIds) {
      return loadViews(pool, await findJobs(pool, appId, jobIds));
    },

    async viewByCustomId(appId, customIds, limit) {
      return loadViews(pool, await findJobsByCustomId(pool, appId, customIds, limit));
    },

    changes(appId, after, limit) {
      return readFeed(pool, appId, after, limit);
    },
  };
}
