// What the dashboard reads that the admin service does not: the queue at a glance, job search
// across apps, and a job's timeline. Its actions (requeue, suppressions, redelivery) go through the
// admin service, the same as the admin API's and the CLI's.
import { endSession, isSessionEnded } from '../db/dashboard-sessions-repo.js';
import { findEventsOfJobs } from '../db/events-repo.js';
import {
  approximateJobCount,
  findJobOfAnyApp,
  findJobsByAnyCustomId,
  findJobsByRecipient,
  type JobPage,
  listRecentJobs,
  readQueueDepth,
} from '../db/jobs-repo.js';
import { type Pool, withTransaction } from '../db/pool.js';
import { findRecipients } from '../db/recipients-repo.js';
import { findChangesOfJob } from '../db/status-changes-repo.js';
import {
  DEPTH_COUNT_CAP,
  type JobDetail,
  type JobListRow,
  type JobSearch,
  type Overview,
  throughputMinutes,
  throughputSince,
  TIMELINE_LIMIT,
  timelineEntries,
} from '../domain/dashboard.js';
import { isId } from '../domain/input-schemas.js';
import { PAGE_BYTES } from '../domain/page-budget.js';
import { DEPTH_STATUSES } from '../domain/queue-figures.js';
import { findApp } from './apps.js';
import type { ThroughputCounter } from './throughput.js';

export interface DashboardService {
  overview(now: Date): Promise<Overview>;
  /** Jobs newest first: all, or those a search finds; of one app when named; `before` pages by job id. */
  listJobs(filter: { search?: JobSearch | undefined; appName?: string | undefined; before?: string | undefined; limit: number }): Promise<JobListRow[]>;
  /** A job of any app with its recipients and timeline, or undefined. */
  jobDetail(jobId: string): Promise<JobDetail | undefined>;
  /** Ends a login session on every replica until its expiry, whoever holds a copy of its token. */
  endSession(session: { id: string; expiresAt: Date }, now: Date): Promise<void>;
  /** Whether a logout ended the session: one look-up by primary key. */
  isSessionEnded(sessionId: string): Promise<boolean>;
}

/** `schema`: the database schema of jetpost's tables, which a job page names as where its whole history is. */
export function createDashboardService(pool: Pool, throughput: Pick<ThroughputCounter, 'read'>, schema: string): DashboardService {
  return {
    async overview(now) {
      const [counts, approximateJobs, minutes] = await Promise.all([
        // One more than the cap, to tell "more than the cap" apart.
        withTransaction(pool, (tx) => readQueueDepth(tx, DEPTH_COUNT_CAP + 1)),
        approximateJobCount(pool),
        throughput.read(throughputSince(now)),
      ]);
      const depth = DEPTH_STATUSES.map((status) => {
        const jobs = counts.byStatus[status];
        return { status, jobs: Math.min(jobs, DEPTH_COUNT_CAP), capped: jobs > DEPTH_COUNT_CAP };
      });
      return { depth, approximateJobs, throughput: throughputMinutes(now, minutes) };
    },

    async listJobs({ search, appName, before, limit }) {
      const page: JobPage = { appId: appName === undefined ? undefined : (await findApp(pool, appName)).id, before, limit };
      switch (search?.field) {
        case undefined:
          return listRecentJobs(pool, page);
        case 'recipient':
          return findJobsByRecipient(pool, search.value, page);
        case 'custom_id':
          return findJobsByAnyCustomId(pool, search.value, page);
        case 'job_id': {
          const found = before === undefined && isId(search.value) ? await findJobOfAnyApp(pool, search.value) : undefined;
          if (!found || (page.appId !== undefined && found.job.appId !== page.appId)) {
            return [];
          }
          const [first] = await findRecipients(pool, [found.job.id]);
          return [{ ...found.job, recipient: first?.email ?? null }];
        }
      }
    },

    async jobDetail(jobId) {
      const found = await findJobOfAnyApp(pool, jobId);
      if (!found) {
        return undefined;
      }
      // Each read stops at a page's bytes of details as JSON text (as HTML they take about as many or
      // more): all a page could show of 50 recipients' bounces or a link scanner's clicks.
      const [recipients, changes, events] = await Promise.all([
        findRecipients(pool, [jobId]),
        findChangesOfJob(pool, jobId, TIMELINE_LIMIT, PAGE_BYTES),
        findEventsOfJobs(pool, [jobId], TIMELINE_LIMIT, PAGE_BYTES),
      ]);
      return {
        ...found,
        recipients,
        ...timelineEntries(found.job, recipients, changes.changes, events.events),
        changesOmitted: changes.omitted,
        eventsOmitted: events.omitted.get(jobId) ?? 0,
        schema,
      };
    },

    endSession: (session, now) => endSession(pool, session.id, session.expiresAt, now),

    isSessionEnded: (sessionId) => isSessionEnded(pool, sessionId),
  };
}
