// The figures /metrics reads from the database at scrape time: jobs by status, the oldest due job,
// the webhook backlog. Cheap (capped counts on partial indexes) and cached for a few seconds, so a
// storm of scrapes (several Prometheus servers, a dashboard reloading) costs one read. A read that
// fails or takes longer than `timeoutMs` never fails the scrape: the last figures are kept, and
// their age says how stale they are.
import { readQueueDepth } from '../db/jobs-repo.js';
import { type Pool, withTransaction } from '../db/pool.js';
import { readWebhookBacklog } from '../db/webhook-deliveries-repo.js';
import { coerceError } from '../domain/errors.js';
import { QUEUE_STATS_COUNT_CAP, QUEUE_STATS_TTL_MS, type QueueStats, type QueueStatsReader } from '../domain/queue-figures.js';
import type { Logger } from '../log.js';

export interface QueueStatsOptions {
  pool: Pool;
  /** How long a scrape waits for the read before it answers with the last figures. */
  timeoutMs: number;
  log: Logger;
  ttlMs?: number;
  cap?: number;
  /** Monotonic, in ms: on the wall clock, a step back of an hour kept the figures of before it for that hour. */
  now?: () => number;
}

export function createQueueStatsReader({
  pool,
  timeoutMs,
  log,
  ttlMs = QUEUE_STATS_TTL_MS,
  cap = QUEUE_STATS_COUNT_CAP,
  now = () => performance.now(),
}: QueueStatsOptions): QueueStatsReader {
  let last: QueueStats | undefined;
  let lastAttemptAt = -Infinity;
  // One read at a time: scrapes arriving while it runs wait for it (up to their timeout), and a slow
  // database never has more than one of these reads on it.
  let reading: Promise<void> | undefined;

  async function read(): Promise<void> {
    try {
      const [jobs, webhooks] = await Promise.all([
        withTransaction(pool, (tx) => readQueueDepth(tx, cap)),
        withTransaction(pool, (tx) => readWebhookBacklog(tx, cap)),
      ]);
      last = { jobs, webhooks, readAt: now() };
    } catch (error) {
      log.warn('could not read the queue figures for /metrics; the last ones are served', { component: 'metrics', error: coerceError(error).message });
    }
  }

  return {
    async current() {
      if (now() - lastAttemptAt >= ttlMs && reading === undefined) {
        lastAttemptAt = now();
        reading = read().finally(() => {
          reading = undefined;
        });
      }
      if (reading !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        });
        await Promise.race([reading, late]);
        clearTimeout(timer);
      }
      return last;
    },
  };
}
