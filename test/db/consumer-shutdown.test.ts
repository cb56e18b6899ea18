// Consumers at shutdown when the database is gone while Mailjet holds a call: recording the answer
// must stop retrying on a pool ended for good, and at the shutdown deadline, instead of retrying
// forever (which held a Ctrl-C'd process until kill -9). The jobs stay `processing` for the lease
// reaper, which returns them marked "outcome unknown", so they are looked up at Mailjet, not resent.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { createPool, type Pool } from '../../src/db/pool.js';
import type { Logger } from '../../src/log.js';
import { createMailjetClient } from '../../src/mailjet/client.js';
import { createSimulator, type Simulator } from '../../src/simulator/server.js';
import { type ConsumerPool, createConsumerPool } from '../../src/workers/consumer-pool.js';
import { createSendGate } from '../../src/workers/send-gate.js';
import { createWakeup } from '../../src/workers/wakeup.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, freePort, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { capturingLogger, testLogger } from '../support/log.js';
import { testSendingService } from '../support/sending.js';

const JOBS = 5;
const LATENCY_MS = 1_500;

async function queueJobs(pool: Pool): Promise<string[]> {
  const app = await makeApp(pool);
  const ids: string[] = [];
  for (let index = 0; index < JOBS; index += 1) {
    ids.push(await makeJob(pool, { appId: app.id, to: [`noevents-${index}@example.com`] }));
  }
  return ids;
}

function consumersOn(pool: Pool, simulator: Simulator, log: Logger): ConsumerPool {
  return createConsumerPool({
    sending: testSendingService(pool),
    mailjet: createMailjetClient({ apiKey: 'k', apiSecret: 's', baseUrl: simulator.url!, timeoutMs: 30_000 }),
    wakeup: createWakeup(),
    gate: createSendGate({ callsPerSecond: 0 }),
    concurrency: 1,
    batchSize: JOBS,
    leaseMs: 120_000,
    idleCheckMs: 1_000,
    retry: { maxAttempts: 3, baseMs: 100, factor: 2, maxMs: 1_000, jitter: 0, lookUpWindowMs: 86_400_000 },
    log,
    bus: createBus(),
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const statuses = async (pool: Pool) => (await pool.query<{ status: string }>('select status from email_send_jobs order by id')).rows.map((row) => row.status);

describe('consumers at shutdown, with the database gone during a Mailjet call', function () {
  this.timeout(90_000);
  let simulator: Simulator;
  let db: TestDatabase | undefined;
  let embedded: { dir: string; server: EmbeddedDatabase | undefined } | undefined;
  let consumerPool: Pool | undefined;

  beforeEach(async () => {
    simulator = createSimulator({ apiKey: 'k', apiSecret: 's' });
    simulator.faults.set({ latencyMs: LATENCY_MS });
    await simulator.listen(0);
  });

  afterEach(async () => {
    await simulator.close();
    if (consumerPool && !consumerPool.ending) {
      await consumerPool.end();
    }
    await db?.drop();
    db = undefined;
    if (embedded) {
      await embedded.server?.stop();
      await fs.rm(embedded.dir, { recursive: true, force: true });
      embedded = undefined;
    }
  });

  it('when the pool is ended while Mailjet holds the call, then recording the answer gives up at once and the consumer returns', async () => {
    db = await createTestDatabase();
    const ids = await queueJobs(db.pool);
    consumerPool = createPool({ connectionString: db.url, schema: TEST_SCHEMA, max: 2, log: testLogger() });
    const { log, lines } = capturingLogger('warn');
    const consumers = consumersOn(consumerPool, simulator, log);

    consumers.start();
    await until('the send call to reach Mailjet', () => simulator.sendCallLog().length > 0);
    await consumerPool.end();
    // Far longer than the call: the consumer must end on its own, well before this deadline.
    const { finished } = await consumers.stop(30_000);

    expect(finished, 'consumers returned before the deadline').to.equal(true);
    const gaveUp = lines().filter((line) => line.includes('gave up recording Mailjet results'));
    expect(gaveUp, lines().join('\n')).to.have.length(1);
    expect(JSON.parse(gaveUp[0]!).jobs).to.deep.equal(ids);
    expect(lines().filter((line) => line.includes('could not record Mailjet results; retrying'))).to.deep.equal([]);
    // Sent but not recorded: the lease reaper's to return, marked outcome unknown.
    expect(await statuses(db.pool)).to.deep.equal(ids.map(() => 'processing'));
    expect(simulator.messages.map((message) => message.customId).sort()).to.deep.equal(ids.map((id) => `jetpost-${id}`).sort());
  });

  it('when the database is stopped while Mailjet holds the call, then the record retries end at the shutdown deadline', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-halt-pg-'));
    embedded = { dir, server: await startEmbeddedPostgres({ dir, port: await freePort(), log: testLogger(), ownSession: false }) };
    const url = embedded.server!.connectionString;
    await runMigrations({ connectionString: url, schema: TEST_SCHEMA, log: testLogger() });
    consumerPool = createPool({ connectionString: url, schema: TEST_SCHEMA, max: 2, log: testLogger() });
    await queueJobs(consumerPool);
    const { log, lines } = capturingLogger('warn');
    const consumers = consumersOn(consumerPool, simulator, log);

    consumers.start();
    await until('the send call to reach Mailjet', () => simulator.sendCallLog().length > 0);
    await embedded.server!.stop();
    embedded.server = undefined;
    await until('a failed attempt to record the answer', () => lines().some((line) => line.includes('could not record Mailjet results; retrying')));
    const { finished } = await consumers.stop(1_000);
    const retriesAtStop = lines().filter((line) => line.includes('could not record Mailjet results; retrying')).length;
    // Longer than any backoff between two attempts: a consumer still retrying would log again.
    await new Promise((resolve) => setTimeout(resolve, 6_000));

    expect(finished, 'the calls could not finish: the database is away').to.equal(false);
    expect(lines().filter((line) => line.includes('could not record Mailjet results; retrying')).length, 'record attempts after stop() returned').to.equal(
      retriesAtStop,
    );
    expect(lines().filter((line) => line.includes('gave up recording Mailjet results'))).to.have.length(1);
    const summary = lines().find((line) => line.includes('did not finish before the shutdown deadline'));
    expect(JSON.parse(summary ?? '{}').returnedAfterHalt, 'consumers returned once halted').to.equal(true);
  });
});
