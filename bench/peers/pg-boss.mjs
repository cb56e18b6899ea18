// pg-boss doing the bench's email job: insert in chunks (one job per message), then work() with
// batches of 50 (one Mailjet call per batch, Mailjet's limit per call) on 4 local workers, like
// jetpost's defaults (4 consumers × 50), fetching without pause while batches come back full.
// Reports: ready → inserted {seconds} → drained {seconds, calls}.
import { performance } from 'node:perf_hooks';
import process from 'node:process';

import { PgBoss } from 'pg-boss';

import { emailMessage, inChunks, report, runMain, seconds, sendToMailjet, readSettings, waitForDrain } from './common.mjs';

const QUEUE = 'send_email';
const BATCH = 50;
const WORKERS = 4;

runMain(async () => {
  const settings = readSettings();
  const boss = new PgBoss({ connectionString: settings.databaseUrl, schedule: false });
  boss.on('error', (error) => process.stderr.write(`pg-boss error: ${error instanceof Error ? error.message : String(error)}\n`));
  await boss.start();
  try {
    await boss.createQueue(QUEUE);
    report('ready');

    const insertStart = performance.now();
    await inChunks(settings.jobs, settings.bulk, settings.posters, (first, count) =>
      boss.insert(
        QUEUE,
        Array.from({ length: count }, (_, i) => ({ data: emailMessage(first + i) })),
      ),
    );
    report('inserted', { seconds: seconds(insertStart) });
    if (!settings.drain) {
      return;
    }

    let calls = 0;
    const drainStart = performance.now();
    await boss.work(QUEUE, { batchSize: BATCH, localConcurrency: WORKERS, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true }, async (jobs) => {
      calls += 1;
      await sendToMailjet(
        settings.mailjetUrl,
        jobs.map((job) => job.data),
      );
    });
    // Completed jobs stay in the table (state 'completed') until pg-boss's retention removes them.
    await waitForDrain(
      async () => {
        const { rows } = await boss.getDb().executeSql(`select count(*)::int as n from pgboss.job where name = $1 and state < 'completed'`, [QUEUE]);
        return Number(rows[0].n);
      },
      settings.timeoutMs,
      settings.jobs,
    );
    report('drained', { seconds: seconds(drainStart), calls });
  } finally {
    await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
  }
});
