// queued → accepted when Mailjet takes 200 ms per call, with jetpost's default settings: what a
// realistic Mailjet latency leaves of the throughput. The reference is Mailjet's own ceiling.
import type { Row } from '../report.js';
import { jetpostDatabase, startJetpost, startMailjetDouble } from '../systems.js';
import type { ScenarioContext } from './context.js';
import { checkSent, drainBacklog, enqueueBulk } from './steps.js';

export const SLOW_MAILJET_MS = 200;
/** About 50 calls/s per API key × 50 messages per call (mailjet-reference: unconfirmed). */
const MAILJET_CEILING = 2_500;

export async function dispatchSlow(context: ScenarioContext): Promise<Row[]> {
  const total = context.plan.sizes.slowMessages;
  const double = await startMailjetDouble(context.logDir, 'dispatch-200ms-mailjet', SLOW_MAILJET_MS);
  const databaseUrl = await context.pg.freshDatabase('dispatch_slow');
  const db = jetpostDatabase(databaseUrl, context.overrides);
  try {
    context.progress(`jetpost: enqueue ${total} messages, then drain them at ${SLOW_MAILJET_MS} ms Mailjet latency`);
    const enqueuer = await startJetpost({
      name: 'dispatch-200ms-jetpost-enqueue',
      logDir: context.logDir,
      databaseUrl,
      mailjetUrl: double.url,
      settings: { WORKER_CONCURRENCY: '0' },
      overrides: context.overrides,
    });
    try {
      await enqueueBulk(context.plan, enqueuer, await enqueuer.createApp('bench'), total, 'slow');
    } finally {
      await enqueuer.stop();
    }
    const drain = await drainBacklog(context, 'dispatch-200ms-jetpost-drain', databaseUrl, double, db, total);
    await drain.server.stop();
    await checkSent(double, total, 'jetpost');
    const rate = total / drain.seconds;
    context.detail('dispatch-200ms', { messages: total, mailjetLatencyMs: SLOW_MAILJET_MS, seconds: drain.seconds, messagesPerSecond: rate, cpu: drain.cpu });
    return [
      {
        scenario: 'dispatch-200ms',
        measure: `queued → accepted, Mailjet at ${SLOW_MAILJET_MS} ms, default settings`,
        unit: 'msg/s',
        jetpost: rate,
        reference: { label: "Mailjet's stated limit, ≈ 50 calls/s × 50 (unconfirmed)", value: MAILJET_CEILING },
        target: { text: '≥ 2,400 msg/s', min: 2_400 },
      },
    ];
  } finally {
    await db.end();
    await double.child.stop();
    await context.pg.dropDatabase('dispatch_slow');
  }
}
