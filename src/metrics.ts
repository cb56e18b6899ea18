// Prometheus metrics, fed by the bus. Nothing else imports prom-client.
import client from 'prom-client';

import type { Bus } from './bus.js';

export interface Metrics {
  contentType: string;
  text(): Promise<string>;
}

export function createMetrics(bus: Bus): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'jetpost_process_' });
  const enqueued = new client.Counter({ name: 'jetpost_jobs_enqueued_total', help: 'Jobs accepted by POST /queue', registers: [registry] });
  const claimed = new client.Counter({ name: 'jetpost_jobs_claimed_total', help: 'Jobs claimed by consumers', registers: [registry] });
  const settled = new client.Counter({
    name: 'jetpost_jobs_settled_total',
    help: 'Jobs leaving a send attempt, by result',
    labelNames: ['status'],
    registers: [registry],
  });
  const calls = new client.Histogram({
    name: 'jetpost_mailjet_call_seconds',
    help: 'Send API calls by outcome',
    labelNames: ['outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const events = new client.Counter({
    name: 'jetpost_events_total',
    help: 'Mailjet events received, by fate',
    labelNames: ['fate'],
    registers: [registry],
  });
  const rejectedEvents = new client.Counter({
    name: 'jetpost_events_rejected_total',
    help: 'Mailjet callback elements kept aside in rejected_events because they can never be applied, by kind (not-json counts whole bodies)',
    labelNames: ['kind'],
    registers: [registry],
  });
  const consumerErrors = new client.Counter({ name: 'jetpost_consumer_errors_total', help: 'Consumer batches that failed', registers: [registry] });

  bus.on('jobs:enqueued', ({ count }) => enqueued.inc(count));
  bus.on('jobs:claimed', ({ count }) => claimed.inc(count));
  bus.on('jobs:settled', ({ status, count }) => settled.inc({ status }, count));
  bus.on('mailjet:call', ({ outcome, durationMs }) => calls.observe({ outcome }, durationMs / 1000));
  bus.on('events:ingested', ({ received, stored, unmatched }) => {
    events.inc({ fate: 'duplicate' }, received - stored);
    events.inc({ fate: 'applied' }, stored - unmatched);
    events.inc({ fate: 'unmatched' }, unmatched);
  });
  bus.on('events:rejected', ({ kind, count }) => rejectedEvents.inc({ kind }, count));
  bus.on('consumer:error', () => consumerErrors.inc());

  return { contentType: registry.contentType, text: () => registry.metrics() };
}
