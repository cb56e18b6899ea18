// The job operations behind the API: enqueue (with idempotency), cancel, and read (jobs and the
// changes feed). Each write is one transaction that ends with its NOTIFY steps; concurrent enqueues
// share theirs (group commit).
import type { Bus } from '../bus.js';
import { findLiveApiKeyIds } from '../db/apps-repo.js';
import { findEventsOfJobs } from '../db/events-repo.js';
import { claimIdempotencyKeys, findIdempotencyKeys, type IdempotencyRecord, setManyIdempotencyJobIds } from '../db/idempotency-repo.js';
import { type AppJobToInsert, cancelJob, findJobs, findJobsByCustomId, insertAppJobs } from '../db/jobs-repo.js';
import type { NotifyChannels } from '../db/notify.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { closePendingRecipients, findRecipients } from '../db/recipients-repo.js';
import { isCursorAhead, readFeed, recordStatusChanges } from '../db/status-changes-repo.js';
import { apiKeyRequired, ConflictError, isDatabaseUnavailable, NotFoundError, ServiceUnavailableError, ValidationError } from '../domain/errors.js';
import { EVENTS_BYTES_PER_ANSWER, type StoredEvent } from '../domain/event.js';
import type { JobRow, QueuedJob } from '../domain/job.js';
import { queuedMessageBytesAtMost } from '../domain/mailjet-payload.js';
import type { NewJob } from '../domain/message.js';
import type { RecipientRow } from '../domain/recipient.js';
import { isSameRequest, requestHashes, storedSortedHash } from '../domain/request-hash.js';
import { CANCELLABLE_STATUSES } from '../domain/status.js';
import { FEED_PAGE_BYTES, type FeedCursor, type FeedPage } from '../domain/status-change.js';
import { createGroupCommit } from './group-commit.js';
import { queueWebhookDeliveries } from './webhook-outbox.js';

/**
 * The events a status read gives of each job, its latest: a message clicked by a link scanner can
 * have tens of thousands, and 100 such jobs in one GET /status?ids= would answer gigabytes.
 */
export const EVENTS_PER_JOB = 100;

export interface JobView {
  job: JobRow;
  recipients: RecipientRow[];
  /** The latest EVENTS_PER_JOB events (fewer when the answer's EVENTS_BYTES_PER_ANSWER is spent), oldest first. */
  events: StoredEvent[];
  /** How many older events `events` leaves out. */
  eventsOmitted: number;
}

export interface EnqueueResult {
  jobs: QueuedJob[];
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
  groupCommit?: GroupCommitSettings;
  now?: () => Date;
}

/** How POST /queue requests share transactions (config.ts: QUEUE_BATCH_*). */
export interface GroupCommitSettings {
  /** Messages per transaction (a bigger single request goes alone). */
  maxMessages: number;
  /** Transactions writing at once. */
  maxInFlight: number;
}

/**
 * Up to this many messages a batch without Idempotency-Keys is one statement under the short
 * statement timeout (DATABASE_STATEMENT_TIMEOUT_MS); a bigger one gets a bulk transaction.
 */
const SINGLE_STATEMENT_MESSAGES = 200;
/**
 * Nor when its messages may take more than this many bytes (an upper bound): storing large messages
 * takes PostgreSQL longer than the short timeout allows (one 14 MB message took 2 to 3 s on a busy
 * 2-core host, and a few of 8 MB together always did), and every try of them was answered 503.
 */
const SINGLE_STATEMENT_BYTES = 4 * 1024 * 1024;

/**
 * The most bytes (each request's upper bound) of messages one batch carries, or one larger request
 * alone: 120 requests of 9.3 MB at once were packed into one insert of about 1.1 GB, and every one
 * of them was answered 503.
 */
const BATCH_BYTES = 16 * 1024 * 1024;

/** An upper bound of the bytes a request's messages take once stored. */
function messagesBytesAtMost(jobs: readonly NewJob[]): number {
  return jobs.reduce((sum, job) => sum + queuedMessageBytesAtMost(job.content, job.recipients, job.customId), 0);
}

/** How long a request waits for its batch when the pool has no timeouts (a pool made by a tool or a test). */
const DEFAULT_MAX_WAIT_MS = 30_000;

const DEFAULT_GROUP_COMMIT: GroupCommitSettings = { maxMessages: 1000, maxInFlight: 2 };

export interface JobService {
  /**
   * Stores the jobs, answering once they are committed (in a group commit with concurrent requests).
   * With `keyId`, the jobs are stored only while that API key is unrevoked.
   */
  enqueue(appId: string, jobs: readonly NewJob[], idempotencyKey?: string, keyId?: string): Promise<EnqueueResult>;
  /**
   * The jobs an earlier request with this Idempotency-Key and these jobs stored, or undefined (none
   * did, or retention deleted them): for a retry that would be refused as a new request. Stores nothing.
   */
  replay(appId: string, jobs: readonly NewJob[], idempotencyKey: string, keyId?: string): Promise<EnqueueResult | undefined>;
  cancel(appId: string, jobId: string): Promise<JobRow>;
  view(appId: string, jobIds: readonly string[]): Promise<JobView[]>;
  /**
   * The jobs with these custom_ids and an id above `afterId` (the last of the page before; none: from
   * the first), the `limit` lowest ids; `truncated` when more share them.
   */
  viewByCustomId(appId: string, customIds: readonly string[], limit: number, afterId?: string): Promise<{ views: JobView[]; truncated: boolean }>;
  /** The app's status changes after `after`, oldest first, at most `limit` and FEED_PAGE_BYTES (see readFeed: none is ever skipped). */
  changes(appId: string, after: FeedCursor, limit: number): Promise<FeedPage>;
}

/** One POST /queue request waiting for its group commit. */
interface EnqueueRequest {
  appId: string;
  /** The presenting key, checked unrevoked in the transaction that stores the messages. */
  keyId: string | undefined;
  jobs: readonly NewJob[];
  /** messagesBytesAtMost of its jobs, counted once. */
  bytes: number;
  idempotencyKey: string | undefined;
}

export function createJobService({
  pool,
  channels,
  maxAttempts,
  wakeLocal,
  bus,
  groupCommit = DEFAULT_GROUP_COMMIT,
  now = () => new Date(),
}: JobServiceDeps): JobService {
  function toInsert(appId: string, jobs: readonly NewJob[], at: Date, keyId: string | undefined): AppJobToInsert[] {
    return jobs.map((job) => {
      const scheduled = job.sendAt !== undefined && job.sendAt.getTime() > at.getTime();
      return { appId, job, status: scheduled ? 'scheduled' : 'queued', runAt: scheduled ? job.sendAt! : at, maxAttempts, keyId };
    });
  }

  /** Read in the enqueue transaction: the answer shows the status the request created. */
  async function findInOrder(db: Queryable, appId: string, ids: readonly string[]): Promise<JobRow[]> {
    const byId = new Map((await findJobs(db, appId, ids)).map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id)).filter((row): row is JobRow => row !== undefined);
  }

  async function loadViews(db: Queryable, jobs: JobRow[]): Promise<JobView[]> {
    const ids = jobs.map((job) => job.id);
    const [recipients, { events, omitted }] = await Promise.all([findRecipients(db, ids), findEventsOfJobs(db, ids, EVENTS_PER_JOB, EVENTS_BYTES_PER_ANSWER)]);
    return jobs.map((job) => ({
      job,
      recipients: recipients.filter((r) => r.jobId === job.id),
      events: events.filter((e) => e.jobId === job.id),
      eventsOmitted: omitted.get(job.id) ?? 0,
    }));
  }

  /** Inserts the requests' jobs (one statement) and gives each request its jobs, or a 401 when its key was revoked. */
  async function insertRequests(db: Queryable, requests: ReadonlyArray<{ request: EnqueueRequest; checkKey: boolean }>): Promise<Array<EnqueueResult | Error>> {
    const at = now();
    const rows = await insertAppJobs(
      db,
      requests.flatMap(({ request, checkKey }) => toInsert(request.appId, request.jobs, at, checkKey ? request.keyId : undefined)),
      // Delivered at commit, to the consumers of every replica: one notification for the batch.
      channels.jobs,
    );
    let offset = 0;
    return requests.map(({ request }) => {
      const jobs = request.jobs.map((_, index) => rows.get(offset + index)).filter((row): row is QueuedJob => row !== undefined);
      offset += request.jobs.length;
      // All of a request's jobs carry its key: all stored, or none (revoked).
      return jobs.length === request.jobs.length ? { jobs, replayed: false } : apiKeyRequired();
    });
  }

  /**
   * A bulk transaction, with a fixed number of statements whatever the batch's size: checks the keys,
   * claims the Idempotency-Keys, stores the jobs of the requests not refused or replayed, and records
   * them under their Idempotency-Keys.
   */
  async function storeInTransaction(requests: readonly EnqueueRequest[]): Promise<Array<EnqueueResult | Error>> {
    return withTransaction(
      pool,
      async (tx) => {
        const settled: Array<EnqueueResult | Error | undefined> = requests.map(() => undefined);
        // Before the claims: a refused request must not take its Idempotency-Key.
        const keyIds = [...new Set(requests.flatMap((r) => (r.keyId === undefined ? [] : [r.keyId])))];
        const liveKeys = keyIds.length > 0 ? await findLiveApiKeyIds(tx, keyIds) : new Set<string>();
        requests.forEach((request, index) => {
          if (request.keyId !== undefined && !liveKeys.has(request.keyId)) {
            settled[index] = apiKeyRequired();
          }
        });

        const hashes = requests.map((request) => (request.idempotencyKey === undefined ? undefined : requestHashes(request.jobs)));
        const claims = requests.flatMap((request, index) =>
          request.idempotencyKey === undefined || settled[index] !== undefined
            ? []
            : [{ appId: request.appId, key: request.idempotencyKey, requestHash: hashes[index]!.asSent, sortedRequestHash: storedSortedHash(hashes[index]!) }],
        );
        // A concurrent request with the same key (in another batch or replica) makes this wait until it commits, then see its record.
        const taken = claims.length > 0 ? await claimIdempotencyKeys(tx, claims) : new Map<string, IdempotencyRecord>();
        for (const [index, request] of requests.entries()) {
          const existing =
            request.idempotencyKey === undefined || settled[index] !== undefined ? undefined : taken.get(`${request.appId}:${request.idempotencyKey}`);
          if (existing === undefined) {
            continue;
          }
          settled[index] = isSameRequest(existing, hashes[index]!)
            ? { jobs: await findInOrder(tx, request.appId, existing.jobIds), replayed: true }
            : new ConflictError(
                'idempotency-key-reused',
                'this Idempotency-Key was already used with a different request body; use a new key for a new request',
              );
        }

        const toStore = requests.flatMap((request, index) => (settled[index] === undefined ? [{ request, index }] : []));
        if (toStore.length > 0) {
          // The keys were checked above, in this transaction.
          const stored = await insertRequests(
            tx,
            toStore.map(({ request }) => ({ request, checkKey: false })),
          );
          toStore.forEach(({ index }, position) => {
            settled[index] = stored[position]!;
          });
          const keyed = toStore.filter(({ request }) => request.idempotencyKey !== undefined);
          if (keyed.length > 0) {
            await setManyIdempotencyJobIds(
              tx,
              keyed.map(({ request, index }) => ({
                appId: request.appId,
                key: request.idempotencyKey!,
                jobIds: (settled[index] as EnqueueResult).jobs.map((job) => job.id),
              })),
            );
          }
        }
        return settled as Array<EnqueueResult | Error>;
      },
      { bulk: true },
    );
  }

  /**
   * Stores a batch of requests: without Idempotency-Keys and up to SINGLE_STATEMENT_MESSAGES and
   * SINGLE_STATEMENT_BYTES, as one statement that is its own transaction (one round trip); otherwise
   * in a bulk transaction. A request refused on its own (revoked key, Idempotency-Key reused with
   * another body) gets its error in its place and the others go on.
   */
  async function storeBatch(requests: readonly EnqueueRequest[]): Promise<Array<EnqueueResult | Error>> {
    const messages = requests.reduce((sum, request) => sum + request.jobs.length, 0);
    const results =
      messages <= SINGLE_STATEMENT_MESSAGES &&
      requests.every((request) => request.idempotencyKey === undefined) &&
      requests.reduce((sum, request) => sum + request.bytes, 0) <= SINGLE_STATEMENT_BYTES
        ? await insertRequests(
            pool,
            requests.map((request) => ({ request, checkKey: true })),
          )
        : await storeInTransaction(requests);
    // Committed: only now is any request answered.
    if (results.some((result) => !(result instanceof Error) && !result.replayed)) {
      wakeLocal();
    }
    results.forEach((result, index) => {
      if (!(result instanceof Error) && !result.replayed) {
        bus.emit('jobs:enqueued', { appId: requests[index]!.appId, count: result.jobs.length });
      }
    });
    return results;
  }

  const enqueueGrouped = createGroupCommit<EnqueueRequest, EnqueueResult>({
    write: storeBatch,
    // Something in the batch failed the whole transaction: each request gets its own, so that one
    // request's failure is never another's. A database away fails each request alike: no point then.
    writeAloneAfter: (error) => !isDatabaseUnavailable(error),
    weight: (request) => request.jobs.length,
    maxWeight: groupCommit.maxMessages,
    size: { of: (request) => request.bytes, max: BATCH_BYTES },
    maxInFlight: groupCommit.maxInFlight,
    exclusiveKey: (request) => (request.idempotencyKey === undefined ? undefined : `${request.appId}:${request.idempotencyKey}`),
    // As long as waiting for a pooled connection may take (pg-pool's connectionTimeoutMillis), with the same answer.
    maxWait: {
      ms: pool.timeouts?.connectMs ?? DEFAULT_MAX_WAIT_MS,
      error: () => new ServiceUnavailableError('the database is not taking new messages fast enough right now; retry shortly'),
    },
    // A 503 within one statement's timeout, as on every other route, not after a batch of its own.
    failsWaiting: isDatabaseUnavailable,
  });

  return {
    enqueue(appId, jobs, idempotencyKey, keyId) {
      return enqueueGrouped({ appId, keyId, jobs, bytes: messagesBytesAtMost(jobs), idempotencyKey });
    },

    async replay(appId, jobs, idempotencyKey, keyId) {
      return withTransaction(pool, async (tx) => {
        if (keyId !== undefined && !(await findLiveApiKeyIds(tx, [keyId])).has(keyId)) {
          throw apiKeyRequired();
        }
        const record = (await findIdempotencyKeys(tx, [{ appId, key: idempotencyKey }])).get(`${appId}:${idempotencyKey}`);
        if (record === undefined || record.jobsGone || !isSameRequest(record, requestHashes(jobs))) {
          return undefined;
        }
        return { jobs: await findInOrder(tx, appId, record.jobIds), replayed: true };
      });
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
        if (existing.outcomeUnknown && (CANCELLABLE_STATUSES as readonly string[]).includes(existing.status)) {
          // A timeout, a 5xx or a dead consumer: Mailjet may have sent it, and its next claim looks it up
          // before any send. Cancelled now, it would read cancelled while its recipients got it.
          throw new ConflictError(
            'job-not-cancellable',
            `job ${jobId} is ${existing.status}, but Mailjet may already have it (the outcome of its last send is unknown; it is looked up at Mailjet before any new send): it can no longer be cancelled`,
          );
        }
        throw new ConflictError('job-not-cancellable', `job ${jobId} is ${existing.status}: only queued, scheduled or deferred jobs can be cancelled`);
      });
    },

    async view(appId, jobIds) {
      return loadViews(pool, await findJobs(pool, appId, jobIds));
    },

    async viewByCustomId(appId, customIds, limit, afterId) {
      // One more than answered: whether the answer leaves some out, which the app could not tell from it.
      const found = await findJobsByCustomId(pool, appId, customIds, limit + 1, afterId);
      return { views: await loadViews(pool, found.slice(0, limit)), truncated: found.length > limit };
    },

    async changes(appId, after, limit) {
      const page = await readFeed(pool, appId, after, limit, FEED_PAGE_BYTES);
      // A cursor ahead of the log reads nothing; only then is it worth asking.
      if (page.changes.length === 0 && after.txid !== '0' && (await isCursorAhead(pool, after))) {
        // Kept from before a dump and restore, or a move by logical replication, of jetpost's database
        // to another PostgreSQL, whose transaction ids are lower (docs/operations.md). Retried until the
        // new ids pass it, it would be accepted, and skip every change made in between.
        throw new ValidationError(
          'the cursor is ahead of the changes feed: this database never gave it (it was made up, or kept from before jetpost’s database was restored or moved). Read again from after=0 and skip the changes whose id you have processed; do not retry this cursor',
          [{ path: 'after', message: 'a cursor from next_cursor, as it was given; after a restore or a move of the database, 0' }],
        );
      }
      return page;
    },
  };
}
