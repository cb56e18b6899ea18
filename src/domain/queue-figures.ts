// The figures /metrics reads from the database at scrape time (services/queue-stats.ts reads them,
// metrics.ts exports them), and the dashboard's overview shows the depth too.
import type { JobStatus } from './status.js';

/** Statuses whose jobs /metrics and the dashboard count: the backlog, what is in flight, and the dead letters. */
export const DEPTH_STATUSES = ['queued', 'scheduled', 'deferred', 'processing', 'failed'] as const satisfies readonly JobStatus[];
export type DepthStatus = (typeof DEPTH_STATUSES)[number];

/** Counts stop at this many rows per status: a gauge at the cap reads "at least this many". */
export const QUEUE_STATS_COUNT_CAP = 100_000;
/** How long one read serves every scrape. */
export const QUEUE_STATS_TTL_MS = 5_000;

export interface QueueDepth {
  /** Jobs by status, each at most the cap. */
  byStatus: Record<DepthStatus, number>;
  /** Seconds since the oldest due job fell due; 0 when none is due. */
  oldestDueAgeSeconds: number;
}

export interface WebhookBacklog {
  /** Deliveries not delivered nor failed yet (due now or waiting for a retry), at most the cap. */
  pending: number;
  /** Seconds since the oldest due delivery fell due; 0 when none is due. */
  oldestDueAgeSeconds: number;
}

export interface QueueStats {
  jobs: QueueDepth;
  webhooks: WebhookBacklog;
  /** When these figures were read (ms, on the monotonic clock of performance.now()). */
  readAt: number;
}

export interface QueueStatsReader {
  /** The latest figures (read now when the cached ones are older than the TTL), or undefined before the first successful read. */
  current(): Promise<QueueStats | undefined>;
}
