// One batch of messages through each system, the same work on each: enqueue in bulks of 500
// (4 in flight), then drain to the Mailjet double at 0 ms latency. jetpost enqueues with its
// consumers off, then restarts with its default settings to drain the backlog; graphile-worker and
// pg-boss insert with their bulk APIs, then start their workers. jetpost's drained messages then
// get their events: one sent event each (grouped by 100), then one open event each (by 1,000).
// Scenarios: queue-bulk, dispatch-0ms, events; CPU per 1,000 messages comes with dispatch-0ms.
import { wallClockMs } from '../http-client.js';
import type { Row } from '../report.js';
import { jetpostDatabase, startJetpost, startMailjetDouble, startPeer } from '../systems.js';
import type { ScenarioContext } from './context.js';
import {
  addCpu,
  BULK,
  BULK_POSTERS,
  checkSent,
  type CpuSplit,
  cpuTotal,
  drainBacklog,
  enqueueBulk,
  EVENT_POSTERS,
  meterCpu,
  postEvents,
  sentMessages,
} from './steps.js';

export interface PipelineSelection {
  bulk: boolean;
  dispatch: boolean;
  events: boolean;
}

interface Figures {
  /** Messages per second. */
  enqueue: number;
  drain?: number;
  /** Enqueue + drain. */
  cpu?: CpuSplit;
}

interface JetpostFigures extends Figures {
  eventsBy100?: number;
  eventsBy1000?: number;
  /** Enqueue + drain + both event runs. */
  cpuEndToEnd?: CpuSplit;
  /** Each event run alone (CPU seconds for as many events as messages). */
  eventsCpuBy100?: CpuSplit;
  eventsCpuBy1000?: CpuSplit;
}

async function runJetpost(context: ScenarioContext, selection: PipelineSelection): Promise<JetpostFigures> {
  const total = context.plan.sizes.pipelineMessages;
  const double = await startMailjetDouble(context.logDir, 'pipeline-mailjet', 0);
  const databaseUrl = await context.pg.freshDatabase('pipeline');
  const db = jetpostDatabase(databaseUrl, context.overrides);
  try {
    context.progress(`jetpost: enqueue ${total} messages in bulks of ${BULK}`);
    const enqueuer = await startJetpost({
      name: 'pipeline-jetpost-enqueue',
      logDir: context.logDir,
      databaseUrl,
      mailjetUrl: double.url,
      settings: { WORKER_CONCURRENCY: '0' },
      overrides: context.overrides,
    });
    let figures: JetpostFigures;
    try {
      const key = await enqueuer.createApp('bench');
      const meter = meterCpu(enqueuer.pid, context.pg);
      const started = wallClockMs();
      await enqueueBulk(context.plan, enqueuer, key, total, 'pipeline');
      figures = { enqueue: total / ((wallClockMs() - started) / 1000), cpu: meter.stop() };
    } finally {
      await enqueuer.stop();
    }
    if (!selection.dispatch && !selection.events) {
      return figures;
    }

    context.progress(`jetpost: drain ${total} messages at 0 ms Mailjet latency, default settings`);
    const drain = await drainBacklog(context, 'pipeline-jetpost-drain', databaseUrl, double, db, total);
    try {
      await checkSent(double, total, 'jetpost');
      figures.drain = total / drain.seconds;
      figures.cpu = addCpu(figures.cpu!, drain.cpu);
      if (selection.events) {
        const messages = await sentMessages(db);
        context.progress(`jetpost: ${messages.length} sent events grouped by 100, then open events grouped by 1,000, ${EVENT_POSTERS} posters`);
        const meter = meterCpu(drain.server.pid, context.pg);
        const by100 = meterCpu(drain.server.pid, context.pg);
        const sent = await postEvents(drain.server, 'sent', messages, 100);
        figures.eventsCpuBy100 = by100.stop();
        const by1000 = meterCpu(drain.server.pid, context.pg);
        const opened = await postEvents(drain.server, 'open', messages, 1000);
        figures.eventsCpuBy1000 = by1000.stop();
        figures.eventsBy100 = sent.perSecond;
        figures.eventsBy1000 = opened.perSecond;
        if (sent.retried + opened.retried > 0) {
          context.progress(`jetpost: ${sent.retried} callbacks by 100 and ${opened.retried} by 1,000 answered 503 and were posted again a second later`);
        }
        figures.cpuEndToEnd = addCpu(figures.cpu, meter.stop());
        const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from email_recipients where status = 'opened'`);
        if (rows[0]!.n !== messages.length) {
          throw new Error(`after the events, ${rows[0]!.n} of ${messages.length} recipients are opened: events were not applied`);
        }
      }
    } finally {
      await drain.server.stop();
    }
    return figures;
  } finally {
    await db.end();
    await double.child.stop();
    await context.pg.dropDatabase('pipeline');
  }
}

async function runReference(context: ScenarioContext, script: string, name: string, drain: boolean): Promise<Figures> {
  const total = context.plan.sizes.pipelineMessages;
  context.progress(`${name}: insert ${total} jobs${drain ? ', then drain them' : ''}`);
  const double = await startMailjetDouble(context.logDir, `${script}-mailjet`, 0);
  const database = script.replace(/\W/g, '_').replace(/_mjs$/, '');
  try {
    const peer = startPeer(script, context.logDir, {
      DATABASE_URL: await context.pg.freshDatabase(database),
      MAILJET_URL: double.url,
      JOBS: String(total),
      BULK: String(BULK),
      POSTERS: String(BULK_POSTERS),
      DRAIN: drain ? '1' : '0',
    });
    try {
      const phaseTimeoutMs = 120_000 + total * 10;
      await peer.phase('ready', phaseTimeoutMs);
      const meter = meterCpu(peer.child.pid, context.pg);
      const inserted = await peer.phase<{ seconds: number }>('inserted', phaseTimeoutMs);
      const figures: Figures = { enqueue: total / inserted.seconds };
      if (drain) {
        const drained = await peer.phase<{ seconds: number }>('drained', 3 * 3600_000);
        figures.cpu = meter.stop();
        figures.drain = total / drained.seconds;
        await checkSent(double, total, name);
      }
      const code = await peer.child.exited;
      if (code !== 0) {
        throw new Error(`${name} exited with code ${code}`);
      }
      return figures;
    } finally {
      await peer.child.stop();
    }
  } finally {
    await double.child.stop();
    await context.pg.dropDatabase(database);
  }
}

function perThousand(split: CpuSplit | undefined, messages: number): number | undefined {
  const total = split && cpuTotal(split);
  return total === undefined ? undefined : total / (messages / 1000);
}

export async function pipeline(context: ScenarioContext, selection: PipelineSelection): Promise<Row[]> {
  const total = context.plan.sizes.pipelineMessages;
  const jetpost = await runJetpost(context, selection);
  // A reference that fails is reported as such; jetpost's figures still stand.
  const reference = async (script: string, name: string) => {
    if (!selection.bulk && !selection.dispatch) {
      return undefined;
    }
    try {
      return await runReference(context, script, name, selection.dispatch);
    } catch (error) {
      context.fail(name, error);
      return undefined;
    }
  };
  const graphile = await reference('graphile-worker.mjs', 'graphile-worker');
  const pgBoss = await reference('pg-boss.mjs', 'pg-boss');
  context.detail('pipeline', {
    messages: total,
    bulk: BULK,
    bulkPosters: BULK_POSTERS,
    eventPosters: EVENT_POSTERS,
    jetpost,
    graphileWorker: graphile,
    pgBoss,
  });

  const rows: Row[] = [];
  if (selection.bulk) {
    const measure = `POST /queue, bulk of ${BULK}, ${BULK_POSTERS} in flight`;
    rows.push(
      {
        scenario: 'queue-bulk',
        measure,
        unit: 'msg/s',
        jetpost: jetpost.enqueue,
        reference: { label: 'graphile-worker addJobs', value: graphile?.enqueue },
        target: { text: '≥ 30,000 msg/s and ≥ 1.1×', min: 30_000, minRatio: 1.1 },
      },
      {
        scenario: 'queue-bulk',
        measure: `${measure}, vs pg-boss`,
        unit: 'msg/s',
        jetpost: jetpost.enqueue,
        reference: { label: 'pg-boss insert', value: pgBoss?.enqueue },
      },
    );
  }
  if (selection.dispatch) {
    const measure = 'queued → accepted, Mailjet at 0 ms, default settings';
    rows.push(
      {
        scenario: 'dispatch-0ms',
        measure,
        unit: 'msg/s',
        jetpost: jetpost.drain,
        reference: { label: 'graphile-worker', value: graphile?.drain },
        target: { text: '≥ 10,000 msg/s and ≥ 3×', min: 10_000, minRatio: 3 },
      },
      {
        scenario: 'dispatch-0ms',
        measure: `${measure}, vs pg-boss`,
        unit: 'msg/s',
        jetpost: jetpost.drain,
        reference: { label: 'pg-boss', value: pgBoss?.drain },
      },
      {
        scenario: 'dispatch-0ms',
        measure: 'CPU (process + PostgreSQL) per 1,000 messages, bulk enqueue + drain',
        unit: 's',
        jetpost: perThousand(jetpost.cpu, total),
        reference: { label: 'graphile-worker', value: perThousand(graphile?.cpu, total) },
        target: { text: 'lower is better' },
      },
      {
        scenario: 'dispatch-0ms',
        measure: 'CPU per 1,000 messages, bulk enqueue + drain, vs pg-boss',
        unit: 's',
        jetpost: perThousand(jetpost.cpu, total),
        reference: { label: 'pg-boss', value: perThousand(pgBoss?.cpu, total) },
      },
    );
  }
  if (selection.events) {
    // Mailjet sends 2–4 events per message: ingest must keep up with at least 2 per message sent.
    const sendPace = jetpost.drain === undefined ? undefined : 2 * jetpost.drain;
    rows.push(
      {
        scenario: 'events',
        measure: `POST /events, grouped by 100, ${EVENT_POSTERS} posters`,
        unit: 'events/s',
        jetpost: jetpost.eventsBy100,
        reference: { label: "2 events per message at this run's 0 ms dispatch rate", value: sendPace },
        target: { text: '≥ 20,000 events/s', min: 20_000 },
      },
      {
        scenario: 'events',
        measure: `POST /events, grouped by 1,000, ${EVENT_POSTERS} posters`,
        unit: 'events/s',
        jetpost: jetpost.eventsBy1000,
        reference: { label: "2 events per message at this run's 0 ms dispatch rate", value: sendPace },
      },
      {
        scenario: 'events',
        measure: 'CPU (jetpost + PostgreSQL) per 1,000 messages end to end: enqueue, send, sent + open events',
        unit: 's',
        jetpost: perThousand(jetpost.cpuEndToEnd, total),
      },
    );
  }
  return rows;
}
