// The metrics fed by the bus and the scrape-time sources: each one appears and moves when the event
// it counts is emitted, Mailjet answers are classed by HTTP status, and the Grafana dashboard in
// docs/grafana uses no metric jetpost does not export (so it cannot rot when a metric is renamed).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import type { SendResponse } from '../../src/domain/mailjet-outcome.js';
import type { QueueStats } from '../../src/domain/queue-figures.js';
import type { MailjetClient } from '../../src/mailjet/client.js';
import { instrumentMailjetClient, mailjetCallClass } from '../../src/mailjet/instrumented.js';
import { createMetrics } from '../../src/metrics.js';
import { createLeaseReaper } from '../../src/workers/lease-reaper.js';
import { testLogger } from '../support/log.js';
import { declaredTypes, sampleValue } from '../support/prometheus-text.js';

const STATS: QueueStats = {
  jobs: { byStatus: { queued: 3, scheduled: 2, deferred: 1, processing: 4, failed: 5 }, oldestDueAgeSeconds: 12.5 },
  webhooks: { pending: 7, oldestDueAgeSeconds: 2 },
  readAt: 1_000_000,
};

function setUp(options: { stats?: QueueStats | undefined; halted?: { unauthorized: boolean; rateLimited: boolean } } = {}) {
  const bus = createBus((error) => {
    throw error;
  });
  const halted = options.halted ?? { unauthorized: false, rateLimited: false };
  const metrics = createMetrics({
    bus,
    queueStats: { current: async () => ('stats' in options ? options.stats : STATS) },
    sendingHalted: () => halted,
    now: () => 1_003_000,
  });
  return { bus, metrics, halted };
}

describe('metrics', () => {
  it('when each event of the bus is emitted, then its metric moves, by its labels', async () => {
    const { bus, metrics } = setUp();
    bus.emit('jobs:enqueued', { appId: '1', count: 3 });
    bus.emit('jobs:claimed', { consumer: 'c', count: 2 });
    bus.emit('jobs:settled', { status: 'deferred', count: 1 });
    bus.emit('jobs:accepted', { waitedMs: [200, 90_000] });
    bus.emit('jobs:reaped', { requeued: 2, failed: 1 });
    bus.emit('mailjet:call', { messages: 1, recipients: 1, outcome: 'transient', durationMs: 300 });
    bus.emit('mailjet:request', { class: 'rate_limited', durationMs: 300 });
    bus.emit('mailjet:lookup', { result: 'found' });
    bus.emit('events:ingested', { received: 5, stored: 4, unmatched: 1, byType: { sent: 2, bounce: 1, spam: 1 }, sentAfterAcceptedMs: [1_500, 4_000] });
    bus.emit('events:rejected', { kind: 'invalid', count: 2 });
    bus.emit('consumer:error', { consumer: 'c', error: new Error('x') });
    bus.emit('webhooks:attempted', { outcome: 'retry' });
    bus.emit('webhooks:attempted', { outcome: 'failed' });
    bus.emit('http:request', { method: 'GET', route: '/status/:jobId', status: 404, durationMs: 12 });
    bus.emit('retention:pruned', { table: 'email_send_jobs', rows: 1_000 });

    const text = await metrics.text();

    expect(sampleValue(text, 'jetpost_jobs_enqueued_total')).to.equal(3);
    expect(sampleValue(text, 'jetpost_jobs_claimed_total')).to.equal(2);
    expect(sampleValue(text, 'jetpost_jobs_settled_total', { status: 'deferred' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_job_enqueue_to_accepted_seconds_count')).to.equal(2);
    expect(sampleValue(text, 'jetpost_job_enqueue_to_accepted_seconds_bucket', { le: '0.25' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_job_enqueue_to_accepted_seconds_sum')).to.equal(90.2);
    expect(sampleValue(text, 'jetpost_lease_reaper_jobs_total', { result: 'requeued' })).to.equal(2);
    expect(sampleValue(text, 'jetpost_lease_reaper_jobs_total', { result: 'failed' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_mailjet_call_seconds_count', { outcome: 'transient' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_mailjet_requests_total', { class: 'rate_limited' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_mailjet_lookups_total', { result: 'found' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_events_total', { fate: 'duplicate' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_events_total', { fate: 'unmatched' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_events_stored_total', { type: 'sent' })).to.equal(2);
    expect(sampleValue(text, 'jetpost_events_stored_total', { type: 'spam' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_recipient_accepted_to_sent_seconds_sum')).to.equal(5.5);
    expect(sampleValue(text, 'jetpost_events_rejected_total', { kind: 'invalid' })).to.equal(2);
    expect(sampleValue(text, 'jetpost_consumer_errors_total')).to.equal(1);
    expect(sampleValue(text, 'jetpost_webhook_deliveries_total', { outcome: 'retry' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_webhook_deliveries_total', { outcome: 'failed' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_http_requests_total', { method: 'GET', route: '/status/:jobId', status: '404' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_http_request_duration_seconds_bucket', { route: '/status/:jobId', le: '0.025' })).to.equal(1);
    expect(sampleValue(text, 'jetpost_retention_pruned_rows_total', { table: 'email_send_jobs' })).to.equal(1_000);
  });

  it('when scraped, then the database figures and the send gate are read at that moment', async () => {
    const { metrics, halted } = setUp();
    const quiet = await metrics.text();
    halted.unauthorized = true;
    const stopped = await metrics.text();

    expect(sampleValue(quiet, 'jetpost_queue_depth', { status: 'processing' })).to.equal(4);
    expect(sampleValue(quiet, 'jetpost_queue_depth', { status: 'failed' })).to.equal(5);
    expect(sampleValue(quiet, 'jetpost_queue_oldest_due_age_seconds')).to.equal(12.5);
    expect(sampleValue(quiet, 'jetpost_webhook_backlog')).to.equal(7);
    expect(sampleValue(quiet, 'jetpost_webhook_oldest_due_age_seconds')).to.equal(2);
    expect(sampleValue(quiet, 'jetpost_queue_stats_age_seconds')).to.equal(3);
    expect(sampleValue(quiet, 'jetpost_sending_halted', { reason: 'unauthorized' })).to.equal(0);
    expect(sampleValue(stopped, 'jetpost_sending_halted', { reason: 'unauthorized' })).to.equal(1);
    expect(sampleValue(stopped, 'jetpost_sending_halted', { reason: 'rate_limited' })).to.equal(0);
  });

  it('when the database figures were never read, then the depth by status is absent rather than a made-up zero', async () => {
    const { metrics } = setUp({ stats: undefined });
    const text = await metrics.text();
    expect(sampleValue(text, 'jetpost_queue_depth', { status: 'queued' })).to.equal(undefined);
    expect(declaredTypes(text).get('jetpost_queue_depth')).to.equal('gauge');
  });

  it('when Mailjet answers, then each answer gets its class by HTTP status, no answer is a timeout or a network error, and one too large to read is its own class', () => {
    const answer = (status: number | null, networkCode?: string): Pick<SendResponse, 'status' | 'networkCode'> => ({ status, networkCode });
    expect(
      [
        answer(200),
        answer(400),
        answer(413),
        answer(401),
        answer(403),
        answer(429),
        answer(500),
        answer(503),
        answer(null, 'ECONNABORTED'),
        answer(null, 'ETIMEDOUT'),
        answer(null, 'ECONNREFUSED'),
        answer(null, 'EANSWERTOOLARGE'),
      ].map(mailjetCallClass),
    ).to.deep.equal([
      'ok',
      'client_error',
      'client_error',
      'unauthorized',
      'unauthorized',
      'rate_limited',
      'server_error',
      'server_error',
      'timeout',
      'timeout',
      'network',
      'answer_too_large',
    ]);
  });

  it('when the instrumented client sends and looks up, then the bus hears each request and each look-up result', async () => {
    const bus = createBus();
    const heard: unknown[] = [];
    bus.on('mailjet:request', ({ class: answer }) => heard.push(answer));
    bus.on('mailjet:lookup', ({ result }) => heard.push(result));
    const lookups: Array<Awaited<ReturnType<MailjetClient['findByCustomId']>>> = [
      [{ messageId: '1', messageUuid: 'u', email: 'a@example.com' }],
      [],
      { status: 503, body: undefined, description: 'Mailjet 503 on the look-up by CustomID' },
    ];
    const client: MailjetClient = {
      send: async () => ({ status: 500, body: undefined, description: 'Mailjet 500' }),
      findByCustomId: async () => lookups.shift()!,
      listEventCallbacks: async () => [],
      saveEventCallback: async () => undefined,
    };
    const instrumented = instrumentMailjetClient(client, bus);

    expect((await instrumented.send('{"Messages":[]}')).status).to.equal(500);
    for (let index = 0; index < 3; index += 1) {
      await instrumented.findByCustomId('jetpost-job-1');
    }

    expect(heard).to.deep.equal(['server_error', 'found', 'not_found', 'error']);
  });

  it('when the lease reaper returns jobs, then it reports how many went back to the queue and how many failed', async () => {
    const passes = [
      [
        { id: '1', status: 'deferred' as const },
        { id: '2', status: 'deferred' as const },
        { id: '3', status: 'failed' as const },
      ],
    ];
    const reported: Array<{ requeued: number; failed: number }> = [];
    const reaper = createLeaseReaper({
      sending: { reapExpiredLeases: async () => passes.shift() ?? [] },
      intervalMs: 60_000,
      onRequeued: (reaped) => reported.push(reaped),
      log: testLogger(),
    });
    const run = reaper.start();
    while (passes.length > 0) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    await reaper.stop(1_000);
    await run;
    expect(reported).to.deep.equal([{ requeued: 2, failed: 1 }]);
  });
});

/** Metric names an expression uses: its identifiers, less PromQL's functions and keywords, label names and strings. */
function metricNames(expr: string): string[] {
  const KEYWORDS = new Set([
    'sum',
    'max',
    'min',
    'avg',
    'count',
    'rate',
    'irate',
    'increase',
    'histogram_quantile',
    'by',
    'without',
    'on',
    'ignoring',
    'group_left',
    'group_right',
    'and',
    'or',
    'unless',
    'offset',
    'clamp_min',
    'clamp_max',
    'abs',
    'topk',
    'bottomk',
    'label_values',
  ]);
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((match) => match[0]).filter((name) => !KEYWORDS.has(name));
}

describe('the Grafana dashboard (docs/grafana/jetpost.json)', () => {
  it('then every metric its queries use is one jetpost exports, and every panel queries something', async () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../docs/grafana/jetpost.json'), 'utf8')) as {
      panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
      templating: { list: Array<{ query?: unknown }> };
    };
    const { metrics } = setUp();
    const exported = new Set<string>();
    for (const [name, type] of declaredTypes(await metrics.text())) {
      exported.add(name);
      if (type === 'histogram') {
        ['_bucket', '_sum', '_count'].forEach((suffix) => exported.add(`${name}${suffix}`));
      }
      if (type === 'summary') {
        ['_sum', '_count'].forEach((suffix) => exported.add(`${name}${suffix}`));
      }
    }
    const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
    const expressions = [
      ...panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: panel.title, expr: target.expr }))),
      ...dashboard.templating.list.flatMap((variable) =>
        typeof variable.query === 'string' && variable.query.startsWith('label_values(')
          ? [{ where: 'a variable', expr: variable.query.replace(/,[^)]*\)$/, ')') }]
          : [],
      ),
    ];

    expect(panels.filter((panel) => (panel.targets ?? []).length === 0).map((panel) => panel.title)).to.deep.equal([]);
    const unknown = expressions.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((name) => !exported.has(name))
        .map((name) => `${where}: ${name}`),
    );
    expect(unknown).to.deep.equal([]);
    const used = new Set(expressions.flatMap(({ expr }) => metricNames(expr)));
    for (const name of [
      'jetpost_queue_depth',
      'jetpost_mailjet_requests_total',
      'jetpost_sending_halted',
      'jetpost_webhook_backlog',
      'jetpost_http_requests_total',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ]) {
      expect(used, name).to.include(name);
    }
  });

  it('then the figures read from the database, the same on every replica, are taken once (max), never summed over the replicas', () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../docs/grafana/jetpost.json'), 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    const operations = fs.readFileSync(path.join(import.meta.dirname, '../../docs/operations.md'), 'utf8');
    const expressions = [
      ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: panel.title, expr: target.expr }))),
      ...[...operations.matchAll(/expr: (.+)/g)].map((match) => ({ where: 'docs/operations.md', expr: match[1]! })),
    ];
    const fromDatabase = new Set([
      'jetpost_queue_depth',
      'jetpost_queue_oldest_due_age_seconds',
      'jetpost_webhook_backlog',
      'jetpost_webhook_oldest_due_age_seconds',
      'jetpost_queue_stats_age_seconds',
    ]);
    const summed = expressions.filter(({ expr }) => metricNames(expr).some((name) => fromDatabase.has(name)) && !/^max\b/.test(expr));
    expect(expressions.filter(({ expr }) => metricNames(expr).some((name) => fromDatabase.has(name))).length).to.be.above(0);
    expect(summed.map(({ where, expr }) => `${where}: ${expr}`)).to.deep.equal([]);
  });

  it('when an expression names a metric jetpost does not export, then the check finds it', () => {
    expect(metricNames('sum by (status) (rate(jetpost_jobs_sent_total{job=~"$job",x="rate"}[5m])) / ignoring(le) up')).to.deep.equal([
      'jetpost_jobs_sent_total',
      'up',
    ]);
  });

  it('then the alerting rules in docs/operations.md pass promtool check rules', function () {
    const promtool = '/usr/bin/promtool';
    if (!fs.existsSync(promtool)) {
      this.test!.title += ` (skipped: ${promtool} is missing; install the Debian package "prometheus")`;
      this.skip();
    }
    const operations = fs.readFileSync(path.join(import.meta.dirname, '../../docs/operations.md'), 'utf8');
    const rules = /### What to alert on\n\n```yaml\n([\s\S]*?)```/.exec(operations)?.[1];
    expect(rules, 'the rules block of docs/operations.md').to.be.a('string');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jetpost-rules-')), 'rules.yaml');
    fs.writeFileSync(file, rules!);
    const check = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8' });
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    expect({ status: check.status, output: check.stdout + check.stderr }).to.deep.include({ status: 0 });
  });
});
