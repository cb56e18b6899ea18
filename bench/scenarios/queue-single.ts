// POST /queue with one message per request, 50 connections, closed loop (autocannon), against
// jetpost and against the bare Express 5 + pg one-row-insert handler. jetpost runs with its
// consumers off (WORKER_CONCURRENCY=0) so that both sides do the same work: store the request.
import type { Row } from '../report.js';
import { type AutocannonResult, type LoadSpec, runAutocannon, startJetpost, startMailjetDouble, startPeer } from '../systems.js';
import { benchMessage, type ScenarioContext } from './context.js';
import { type CpuSplit, meterCpu } from './steps.js';

const CONNECTIONS = 50;

interface Measured extends AutocannonResult {
  /** CPU µs per answered request during the measured run: the server's process, and PostgreSQL's. */
  cpuMicrosPerRequest: { process: number | undefined; postgres: number | undefined };
}

/** The load after a warm-up, with the CPU the server process (`pid`) and PostgreSQL spent on it. */
async function warmThenMeasure(context: ScenarioContext, name: string, pid: number, spec: Omit<LoadSpec, 'connections' | 'seconds'>): Promise<Measured> {
  const seconds = context.plan.sizes.singleSeconds;
  await runAutocannon(context.logDir, `${name}-warm-up`, { ...spec, connections: CONNECTIONS, seconds: Math.max(1, Math.round(seconds / 5)) });
  const meter = meterCpu(pid, context.pg);
  const result = await runAutocannon(context.logDir, name, { ...spec, connections: CONNECTIONS, seconds });
  const cpu: CpuSplit = meter.stop();
  const perRequest = (cpuSeconds: number | undefined) => (cpuSeconds === undefined || result.requests === 0 ? undefined : (cpuSeconds * 1e6) / result.requests);
  return { ...result, cpuMicrosPerRequest: { process: perRequest(cpu.process), postgres: perRequest(cpu.postgres) } };
}

function problems(result: AutocannonResult): string | undefined {
  return result.non2xx + result.errors > 0 ? `${result.non2xx} non-2xx answers, ${result.errors} errors` : undefined;
}

export async function queueSingle(context: ScenarioContext): Promise<Row[]> {
  const body = JSON.stringify(benchMessage(context.plan, 'single'));

  context.progress('jetpost: POST /queue, one message per request');
  const double = await startMailjetDouble(context.logDir, 'queue-single-mailjet', 0);
  let jetpost: Measured;
  try {
    const server = await startJetpost({
      name: 'queue-single-jetpost',
      logDir: context.logDir,
      databaseUrl: await context.pg.freshDatabase('queue_single'),
      mailjetUrl: double.url,
      settings: { WORKER_CONCURRENCY: '0' },
      overrides: context.overrides,
    });
    try {
      const key = await server.createApp('bench');
      jetpost = await warmThenMeasure(context, 'queue-single-load-jetpost', server.pid, {
        url: `${server.url}/queue`,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      });
    } finally {
      await server.stop();
    }
  } finally {
    await double.child.stop();
    await context.pg.dropDatabase('queue_single');
  }

  context.progress('bare Express 5 + pg: the same request');
  let floor: Measured | undefined;
  const bare = startPeer('bare-express.mjs', context.logDir, { DATABASE_URL: await context.pg.freshDatabase('bare_express') });
  try {
    const { url } = await bare.phase<{ url: string }>('listening', 30_000);
    floor = await warmThenMeasure(context, 'queue-single-load-bare', bare.child.pid, {
      url: `${url}/queue`,
      headers: { 'content-type': 'application/json' },
      body,
    });
  } catch (error) {
    // jetpost's figures still stand without their reference.
    context.fail('bare Express 5 + pg', error);
  } finally {
    await bare.child.stop();
    await context.pg.dropDatabase('bare_express');
  }

  context.detail('queue-single', { connections: CONNECTIONS, seconds: context.plan.sizes.singleSeconds, jetpost, bareExpress: floor });
  const note = problems(jetpost);
  const bareNote = floor && problems(floor);
  return [
    {
      scenario: 'queue-single',
      measure: `POST /queue, one message per request, c=${CONNECTIONS}`,
      unit: 'req/s',
      jetpost: jetpost.requestsPerSecond,
      reference: { label: `bare Express 5 + pg insert${bareNote ? ` (${bareNote})` : ''}`, value: floor?.requestsPerSecond },
      target: { text: '≥ 3,000 req/s and ≥ 1.3×', min: 3_000, minRatio: 1.3 },
      note,
    },
    {
      scenario: 'queue-single',
      measure: 'POST /queue single, p99 latency',
      unit: 'ms',
      jetpost: jetpost.latencyMs.p99,
      reference: { label: 'bare Express 5 + pg insert', value: floor?.latencyMs.p99 },
      target: { text: '≤ 50 ms', max: 50 },
      note,
    },
    {
      scenario: 'queue-single',
      measure: 'POST /queue single, CPU of the server process per request',
      unit: 'µs',
      jetpost: jetpost.cpuMicrosPerRequest.process,
      reference: { label: 'bare Express 5 + pg insert', value: floor?.cpuMicrosPerRequest.process },
      target: { text: 'lower is better' },
      note,
    },
  ];
}
