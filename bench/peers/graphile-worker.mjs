// graphile-worker doing the bench's email job: addJobs in chunks (one job per message), then a
// runner with the settings graphile-worker's own performance page uses (24 jobs at once, a local
// queue of 500, batched completions) sends each job as one Mailjet call.
// Reports: ready → inserted {seconds} → drained {seconds, calls}.
import { performance } from 'node:perf_hooks';
import process from 'node:process';

import { Logger, makeWorkerUtils, run } from 'graphile-worker';

import { emailMessage, inChunks, report, runMain, seconds, sendToMailjet, readSettings, waitForDrain } from './common.mjs';

const TASK = 'send_email';

// Only warnings and errors: the bench keeps this process's stderr in its log folder.
const quietLogFactory = (scope) => (level, message) => {
  if (level === 'error' || level === 'warning') {
    process.stderr.write(`${level} [${scope.label ?? 'worker'}] ${message}\n`);
  }
};

runMain(async () => {
  const settings = readSettings();
  const logger = new Logger(quietLogFactory);
  const utils = await makeWorkerUtils({ connectionString: settings.databaseUrl, logger });
  try {
    await utils.migrate();
    report('ready');

    const insertStart = performance.now();
    await inChunks(settings.jobs, settings.bulk, settings.posters, (first, count) =>
      utils.addJobs(Array.from({ length: count }, (_, i) => ({ identifier: TASK, payload: emailMessage(first + i) }))),
    );
    report('inserted', { seconds: seconds(insertStart) });
    if (!settings.drain) {
      return;
    }

    let calls = 0;
    const drainStart = performance.now();
    const runner = await run({
      connectionString: settings.databaseUrl,
      concurrency: 24,
      noHandleSignals: true,
      pollInterval: 1000,
      logger,
      preset: { worker: { maxPoolSize: 25, localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      taskList: {
        [TASK]: async (payload) => {
          calls += 1;
          await sendToMailjet(settings.mailjetUrl, [payload]);
        },
      },
    });
    try {
      // Finished jobs are deleted: the queue is drained when the jobs table is empty.
      await waitForDrain(
        () => utils.withPgClient(async (client) => Number((await client.query('select count(*)::int as n from graphile_worker._private_jobs')).rows[0].n)),
        settings.timeoutMs,
        settings.jobs,
      );
      report('drained', { seconds: seconds(drainStart), calls });
    } finally {
      await runner.stop();
    }
  } finally {
    await utils.release();
  }
});
