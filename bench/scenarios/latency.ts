// Enqueue → accepted latency at a steady offered load: 1,000 messages/s, one message per
// POST /queue, open loop (requests leave on schedule whether or not earlier ones were answered),
// Mailjet at 200 ms, jetpost at its default settings. Each message's latency runs from the moment
// its request left to the accepted_at jetpost recorded (both clocks are this machine's).
//
// The slowest messages are also counted by the connection their request went on: one that the
// generator opened for it (it does so when more requests are unanswered than it has connections
// open, after a stall) waits for jetpost to accept it, and libuv 1.45 and later (Node 20.20 has
// 1.46) accepts one connection per turn of the event loop: a burst of them is accepted a turn apart.
import { percentile, request, sleep, wallClockMs } from '../http-client.js';
import type { Plan } from '../plan.js';
import type { Row } from '../report.js';
import { jetpostDatabase, startJetpost, startMailjetDouble, waitUntilDrained } from '../systems.js';
import { benchMessage, type ScenarioContext } from './context.js';
import { SLOW_MAILJET_MS } from './dispatch-slow.js';

const OFFERED_PER_SECOND = 1_000;
const WARM_UP_SECONDS = 1;
const TICK_MS = 10;
/** Requests left unanswered at once before the generator stops offering more (it then counts them as not offered). */
const MAX_IN_FLIGHT = 512;

interface Sent {
  jobId: string;
  sentAt: number;
  newConnection: boolean;
}

async function offerLoad(
  plan: Plan,
  url: string,
  key: string,
  seconds: number,
): Promise<{ measured: Sent[]; offered: number; skipped: number; failed: number }> {
  const headers = { authorization: `Bearer ${key}` };
  const measured: Sent[] = [];
  let offered = 0;
  let skipped = 0;
  let failed = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const start = wallClockMs();
  const end = start + (WARM_UP_SECONDS + seconds) * 1000;
  const measureFrom = start + WARM_UP_SECONDS * 1000;
  while (wallClockMs() < end) {
    const due = Math.floor(((wallClockMs() - start) * OFFERED_PER_SECOND) / 1000);
    while (offered + skipped < due) {
      if (inFlight >= MAX_IN_FLIGHT) {
        skipped += 1;
        continue;
      }
      offered += 1;
      inFlight += 1;
      const sentAt = wallClockMs();
      const call = request('POST', `${url}/queue`, headers, JSON.stringify(benchMessage(plan, `latency-${offered}`)))
        .then((answer) => {
          if (answer.status !== 202) {
            failed += 1;
          } else if (sentAt >= measureFrom) {
            measured.push({ jobId: (JSON.parse(answer.body) as { job_id: string }).job_id, sentAt, newConnection: answer.newConnection });
          }
        })
        .catch(() => {
          failed += 1;
        })
        .finally(() => {
          inFlight -= 1;
          pending.delete(call);
        });
      pending.add(call);
    }
    await sleep(TICK_MS);
  }
  await Promise.all(pending);
  return { measured, offered, skipped, failed };
}

export async function latency(context: ScenarioContext): Promise<Row[]> {
  const seconds = context.plan.sizes.latencySeconds;
  const double = await startMailjetDouble(context.logDir, 'latency-mailjet', SLOW_MAILJET_MS);
  const databaseUrl = await context.pg.freshDatabase('latency');
  const db = jetpostDatabase(databaseUrl, context.overrides);
  try {
    const server = await startJetpost({ name: 'latency-jetpost', logDir: context.logDir, databaseUrl, mailjetUrl: double.url, overrides: context.overrides });
    let load: Awaited<ReturnType<typeof offerLoad>>;
    try {
      const key = await server.createApp('bench');
      context.progress(`jetpost: ${OFFERED_PER_SECOND} messages/s offered for ${seconds} s (+${WARM_UP_SECONDS} s warm-up), Mailjet at ${SLOW_MAILJET_MS} ms`);
      load = await offerLoad(context.plan, server.url, key, seconds);
      await waitUntilDrained(db, Math.max(120_000, seconds * 20_000));
    } finally {
      await server.stop();
    }
    const sent = new Map(load.measured.map((message) => [message.jobId, message]));
    const { rows } = await db.query<{ id: string; at: number | null }>(
      `select id::text, extract(epoch from accepted_at) * 1000 as at from email_send_jobs where id = any($1::bigint[])`,
      [[...sent.keys()]],
    );
    const accepted = rows.flatMap((row) => {
      const message = sent.get(row.id)!;
      return row.at === null ? [] : [{ latencyMs: Number(row.at) - message.sentAt, newConnection: message.newConnection }];
    });
    const latencies = accepted.map((message) => message.latencyMs);
    const notAccepted = rows.length - latencies.length;
    const p99 = percentile(latencies, 99);
    const slowest = accepted.filter((message) => message.latencyMs >= p99);
    const slowestOnNewConnection = slowest.filter((message) => message.newConnection).length;
    const figures = {
      offeredPerSecond: OFFERED_PER_SECOND,
      seconds,
      requestsOffered: load.offered,
      notOfferedBecauseInFlightCap: load.skipped,
      failedRequests: load.failed,
      measuredMessages: latencies.length,
      notAccepted,
      latencyMs: { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99, max: percentile(latencies, 100) },
      onNewConnection: accepted.filter((message) => message.newConnection).length,
      slowestOnePercent: slowest.length,
      slowestOnePercentOnNewConnection: slowestOnNewConnection,
      /** The p99 of the messages whose request went on a kept-alive connection. */
      p99OnKeptConnectionMs: percentile(
        accepted.filter((message) => !message.newConnection).map((message) => message.latencyMs),
        99,
      ),
    };
    context.detail('latency', figures);
    const problems = [
      load.skipped > 0 ? `${load.skipped} of ${load.offered + load.skipped} requests not sent: ${MAX_IN_FLIGHT} were unanswered` : '',
      load.failed > 0 ? `${load.failed} requests failed` : '',
      notAccepted > 0 ? `${notAccepted} messages not accepted` : '',
    ].filter(Boolean);
    const note = problems.length > 0 ? problems.join('; ') : undefined;
    const reference = { label: 'Mailjet latency', value: SLOW_MAILJET_MS };
    return [
      {
        scenario: 'latency',
        measure: `enqueue → accepted p50 at ${OFFERED_PER_SECOND.toLocaleString('en-US')} msg/s offered, Mailjet at ${SLOW_MAILJET_MS} ms`,
        unit: 'ms',
        jetpost: figures.latencyMs.p50,
        reference,
        note,
      },
      {
        scenario: 'latency',
        measure: `enqueue → accepted p99 at ${OFFERED_PER_SECOND.toLocaleString('en-US')} msg/s offered`,
        unit: 'ms',
        jetpost: figures.latencyMs.p99,
        reference,
        target: { text: `≤ Mailjet latency + 100 ms (${SLOW_MAILJET_MS + 100} ms)`, max: SLOW_MAILJET_MS + 100 },
        note: [note, `${slowestOnNewConnection} of the slowest ${slowest.length} on a new connection`].filter(Boolean).join('; '),
      },
    ];
  } finally {
    await db.end();
    await double.child.stop();
    await context.pg.dropDatabase('latency');
  }
}
