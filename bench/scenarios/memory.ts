// Peak resident memory of the jetpost process (VmHWM, from its start to the end of the run) while
// it takes a large enqueue in bulks and sends every message, consumers running all along, at its
// default settings and 0 ms Mailjet latency. Its memory once started, idle, is kept in the details:
// what the run adds is the difference.
import { wallClockMs } from '../http-client.js';
import { peakRssBytes, rssBytes } from '../proc-stats.js';
import type { Row } from '../report.js';
import { jetpostDatabase, startJetpost, startMailjetDouble, waitUntilDrained } from '../systems.js';
import type { ScenarioContext } from './context.js';
import { checkSent, cpuTotal, enqueueBulk, meterCpu } from './steps.js';

const MiB = 1024 * 1024;

export async function memory(context: ScenarioContext): Promise<Row[]> {
  const total = context.plan.sizes.memoryMessages;
  const double = await startMailjetDouble(context.logDir, 'memory-mailjet', 0);
  const databaseUrl = await context.pg.freshDatabase('memory');
  const db = jetpostDatabase(databaseUrl, context.overrides);
  try {
    const server = await startJetpost({ name: 'memory-jetpost', logDir: context.logDir, databaseUrl, mailjetUrl: double.url, overrides: context.overrides });
    let peak: number | undefined;
    try {
      const idle = rssBytes(server.pid);
      const key = await server.createApp('bench');
      context.progress(`jetpost: enqueue and send ${total.toLocaleString('en-US')} messages`);
      const meter = meterCpu(server.pid, context.pg);
      const started = wallClockMs();
      await enqueueBulk(context.plan, server, key, total, 'memory');
      const enqueuedSeconds = (wallClockMs() - started) / 1000;
      const drained = await waitUntilDrained(db, 3 * 3600_000);
      const cpu = meter.stop();
      peak = peakRssBytes(server.pid);
      await checkSent(double, total, 'jetpost');
      const cpuSeconds = cpuTotal(cpu);
      context.detail('memory', {
        messages: total,
        idleRssMiB: idle === undefined ? undefined : idle / MiB,
        peakRssMiB: peak === undefined ? undefined : peak / MiB,
        enqueueSeconds: enqueuedSeconds,
        enqueueAndDrainSeconds: (drained - started) / 1000,
        cpu,
        cpuSecondsPer1000: cpuSeconds === undefined ? undefined : cpuSeconds / (total / 1000),
      });
    } finally {
      await server.stop();
    }
    return [
      {
        scenario: 'memory',
        measure: `peak RSS of the jetpost process, ${total.toLocaleString('en-US')} messages enqueued and sent`,
        unit: 'MiB',
        jetpost: peak === undefined ? undefined : peak / MiB,
        target: { text: '≤ 150 MiB (through 1 M)', max: 150 },
        note: peak === undefined ? '/proc not readable' : undefined,
      },
    ];
  } finally {
    await db.end();
    await double.child.stop();
    await context.pg.dropDatabase('memory');
  }
}
