// Prometheus metrics, fed by the bus and, at scrape time, by a few cheap reads (queue depth, the
// webhook backlog, the send gate). Nothing else imports prom-client. Names follow Prometheus'
// conventions: base units (seconds), `_total` on counters only, and the default process metrics
// under their standard names (process_cpu_seconds_total, nodejs_…), as the usual Node.js dashboards
// expect them. docs/operations.md lists every metric.
import client from 'prom-client';

import type { Bus } from './bus.js';
import type { ByteBudget } from './domain/byte-budget.js';
import { DEPTH_STATUSES, QUEUE_STATS_COUNT_CAP, QUEUE_STATS_TTL_MS, type QueueStats, type QueueStatsReader } from './domain/queue-figures.js';

export interface Metrics {
  contentType: string;
  text(): Promise<string>;
}

export interface MetricsSources {
  bus: Bus;
  /** The queue figures read from the database at scrape time. */
  queueStats: QueueStatsReader;
  /** Why sending is halted now, if it is: `unauthorized` (Mailjet refused the key) or `rate_limited` (a 429 pause). */
  sendingHalted: () => { unauthorized: boolean; rateLimited: boolean };
  /** The budget of callback bodies in progress (EVENTS_BODY_BUDGET), read at scrape time. */
  eventsBodyBudget?: Pick<ByteBudget, 'inUse' | 'waiting'>;
  /** Setting → how many other live replicas run with it otherwise (services/replica-settings.ts). */
  replicaSettingsDiffering?: () => ReadonlyMap<string, number>;
  /** Monotonic, in ms: the clock of the queue figures' readAt (services/queue-stats.ts). */
  now?: () => number;
}

/** From a fast Send API call to one that ran into the default 15 s timeout. */
const CALL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** From an immediate send to one that waited out a long backoff (a day). */
const WAIT_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export function createMetrics({
  bus,
  queueStats,
  sendingHalted,
  eventsBodyBudget,
  replicaSettingsDiffering,
  now = () => performance.now(),
}: MetricsSources): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  // prom-client's three gauges named `…_total` break the naming rule (promtool flags them); each is
  // the sum over the `type` label of the gauge of the same name without the suffix, which stays.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  const registers = [registry];

  const enqueued = new client.Counter({ name: 'jetpost_jobs_enqueued_total', help: 'Jobs accepted by POST /queue', registers });
  const claimed = new client.Counter({ name: 'jetpost_jobs_claimed_total', help: 'Jobs claimed by consumers', registers });
  const settled = new client.Counter({ name: 'jetpost_jobs_settled_total', help: 'Jobs leaving a send attempt, by result', labelNames: ['status'], registers });
  const reaped = new client.Counter({
    name: 'jetpost_lease_reaper_jobs_total',
    help: 'Jobs whose lease expired (their consumer died), by what the lease reaper did: requeued (looked up at Mailjet first) or failed (attempts spent)',
    labelNames: ['result'],
    registers,
  });
  const calls = new client.Histogram({
    name: 'jetpost_mailjet_call_seconds',
    help: 'Send API calls by what they did to their jobs (accepted, partial, transient, permanent)',
    labelNames: ['outcome'],
    buckets: CALL_BUCKETS,
    registers,
  });
  const requests = new client.Counter({
    name: 'jetpost_mailjet_requests_total',
    help: 'Send API requests by answer: ok, rate_limited (429), server_error (5xx), client_error (4xx), unauthorized (401, 403), timeout, network, answer_too_large (over 1 MiB, not read)',
    labelNames: ['class'],
    registers,
  });
  const lookups = new client.Counter({
    name: 'jetpost_mailjet_lookups_total',
    help: 'Look-ups by CustomID of jobs whose last attempt had no clear answer: found (it was sent), not_found, error (Mailjet could not be asked)',
    labelNames: ['result'],
    registers,
  });
  const toAccepted = new client.Histogram({
    name: 'jetpost_job_enqueue_to_accepted_seconds',
    help: 'From POST /queue to Mailjet accepting the job (including send_at, retries and waits in the queue)',
    buckets: WAIT_BUCKETS,
    registers,
  });
  const toSent = new client.Histogram({
    name: 'jetpost_recipient_accepted_to_sent_seconds',
    help: "From Mailjet accepting a job to its `sent` event for a recipient (Mailjet's event time, held to [accepted, now + 1 min])",
    buckets: WAIT_BUCKETS,
    registers,
  });
  const events = new client.Counter({ name: 'jetpost_events_total', help: 'Mailjet events received, by fate', labelNames: ['fate'], registers });
  const eventsByType = new client.Counter({
    name: 'jetpost_events_stored_total',
    help: 'Mailjet events new to the history, by type (sent, open, click, bounce, blocked, spam, unsub): bounce and spam rates',
    labelNames: ['type'],
    registers,
  });
  const rejectedEvents = new client.Counter({
    name: 'jetpost_events_rejected_total',
    help: 'Mailjet callback elements kept aside in rejected_events because they can never be applied, by kind (not-json counts whole bodies)',
    labelNames: ['kind'],
    registers,
  });
  const budgetWaits = new client.Counter({
    name: 'jetpost_events_budget_waits_total',
    help: 'Mailjet callbacks that found no room in EVENTS_BODY_BUDGET, by outcome: admitted (after waiting), refused (503 after waiting, Mailjet retries), refused_part_way (a chunked body that grew past the room left: 503 at once)',
    labelNames: ['outcome'],
    registers,
  });
  const consumerErrors = new client.Counter({ name: 'jetpost_consumer_errors_total', help: 'Consumer batches that failed', registers });
  const webhookAttempts = new client.Counter({
    name: 'jetpost_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered, retry (to be tried again), failed (given up)',
    labelNames: ['outcome'],
    registers,
  });
  const httpRequests = new client.Counter({
    name: 'jetpost_http_requests_total',
    help: 'HTTP requests by method, route template (unmatched: no route) and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  });
  const httpDuration = new client.Histogram({
    name: 'jetpost_http_request_duration_seconds',
    help: 'HTTP request durations by method and route template',
    labelNames: ['method', 'route'],
    buckets: HTTP_BUCKETS,
    registers,
  });
  const pruned = new client.Counter({
    name: 'jetpost_retention_pruned_rows_total',
    help: 'Rows the retention worker deleted, by table (rows deleted with a job, its recipients, events, status changes and webhook deliveries, are not counted)',
    labelNames: ['table'],
    registers,
  });

  new client.Gauge({
    name: 'jetpost_sending_halted',
    help: 'Whether sending is halted: reason=unauthorized after a 401 (until a probe call succeeds), reason=rate_limited during a 429 pause',
    labelNames: ['reason'],
    registers,
    collect() {
      const halted = sendingHalted();
      this.set({ reason: 'unauthorized' }, halted.unauthorized ? 1 : 0);
      this.set({ reason: 'rate_limited' }, halted.rateLimited ? 1 : 0);
    },
  });
  if (eventsBodyBudget !== undefined) {
    new client.Gauge({
      name: 'jetpost_events_budget_in_use_bytes',
      help: 'Bytes of EVENTS_BODY_BUDGET reserved by the Mailjet callbacks in progress',
      registers,
      collect() {
        this.set(eventsBodyBudget.inUse());
      },
    });
    new client.Gauge({
      name: 'jetpost_events_budget_waiting',
      help: 'Mailjet callbacks waiting for room in EVENTS_BODY_BUDGET',
      registers,
      collect() {
        this.set(eventsBodyBudget.waiting());
      },
    });
  }
  if (replicaSettingsDiffering !== undefined) {
    new client.Gauge({
      name: 'jetpost_replica_settings_differing',
      help: "Other live replicas on this database whose value of a setting that must agree (label setting) differs from this process's; absent when none differ",
      labelNames: ['setting'],
      registers,
      collect() {
        this.reset();
        for (const [setting, replicas] of replicaSettingsDiffering()) {
          this.set({ setting }, replicas);
        }
      },
    });
  }
  // The database's figures: absent (labelled) or 0 until the first read succeeds, then the last read.
  new client.Gauge({
    name: 'jetpost_queue_depth',
    help: `Jobs by status (queued, scheduled, deferred, processing, failed), each counted up to ${QUEUE_STATS_COUNT_CAP}`,
    labelNames: ['status'],
    registers,
    async collect() {
      const stats = await queueStats.current();
      for (const status of stats ? DEPTH_STATUSES : []) {
        this.set({ status }, stats!.jobs.byStatus[status]);
      }
    },
  });
  const scalar = (name: string, help: string, value: (stats: QueueStats) => number) =>
    new client.Gauge({
      name,
      help,
      registers,
      async collect() {
        const stats = await queueStats.current();
        if (stats) {
          this.set(value(stats));
        }
      },
    });
  scalar(
    'jetpost_queue_oldest_due_age_seconds',
    'How long the oldest due job (queued, scheduled or deferred, run_at passed) has waited since it fell due; 0 when none',
    (s) => s.jobs.oldestDueAgeSeconds,
  );
  scalar(
    'jetpost_webhook_backlog',
    `Webhook deliveries pending (due now or waiting for a retry), counted up to ${QUEUE_STATS_COUNT_CAP}`,
    (s) => s.webhooks.pending,
  );
  scalar(
    'jetpost_webhook_oldest_due_age_seconds',
    'How long the oldest due webhook delivery has waited since it fell due; 0 when none',
    (s) => s.webhooks.oldestDueAgeSeconds,
  );
  scalar(
    'jetpost_queue_stats_age_seconds',
    `Age of the database figures (queue depth, webhook backlog): read at most every ${QUEUE_STATS_TTL_MS / 1000} s, and kept when a read fails or is slow`,
    (s) => (now() - s.readAt) / 1000,
  );

  bus.on('jobs:enqueued', ({ count }) => enqueued.inc(count));
  bus.on('jobs:claimed', ({ count }) => claimed.inc(count));
  bus.on('jobs:settled', ({ status, count }) => settled.inc({ status }, count));
  bus.on('jobs:accepted', ({ waitedMs }) => waitedMs.forEach((ms) => toAccepted.observe(Math.max(0, ms) / 1000)));
  bus.on('jobs:reaped', ({ requeued, failed }) => {
    reaped.inc({ result: 'requeued' }, requeued);
    reaped.inc({ result: 'failed' }, failed);
  });
  bus.on('mailjet:call', ({ outcome, durationMs }) => calls.observe({ outcome }, durationMs / 1000));
  bus.on('mailjet:request', ({ class: answer }) => requests.inc({ class: answer }));
  bus.on('mailjet:lookup', ({ result }) => lookups.inc({ result }));
  bus.on('events:ingested', ({ received, stored, unmatched, byType, sentAfterAcceptedMs }) => {
    events.inc({ fate: 'duplicate' }, received - stored);
    events.inc({ fate: 'applied' }, stored - unmatched);
    events.inc({ fate: 'unmatched' }, unmatched);
    for (const [type, count] of Object.entries(byType)) {
      eventsByType.inc({ type }, count);
    }
    sentAfterAcceptedMs.forEach((ms) => toSent.observe(ms / 1000));
  });
  bus.on('events:rejected', ({ kind, count }) => rejectedEvents.inc({ kind }, count));
  bus.on('events:budget-wait', ({ outcome }) => budgetWaits.inc({ outcome }));
  bus.on('consumer:error', () => consumerErrors.inc());
  bus.on('webhooks:attempted', ({ outcome }) => webhookAttempts.inc({ outcome }));
  bus.on('http:request', ({ method, route, status, durationMs }) => {
    httpRequests.inc({ method, route, status: String(status) });
    httpDuration.observe({ method, route }, durationMs / 1000);
  });
  bus.on('retention:pruned', ({ table, rows }) => pruned.inc({ table }, rows));

  return { contentType: registry.contentType, text: () => registry.metrics() };
}
