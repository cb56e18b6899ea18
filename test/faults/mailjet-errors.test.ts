// Scenario 3: the simulator fails a share of the send calls with 500s, 429s (Retry-After: 1) and
// timeouts that still accept the messages (the worst case: "maybe sent"). Every job must end accepted,
// or failed with its reason after exactly MAX_ATTEMPTS attempts; the CustomID look-up should turn
// the "maybe sent" jobs into accepted ones instead of duplicates.
import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { jobFacts, queueMessages, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { acceptedCopies, customIdOf } from '../support/faults/simulator.js';
import { seconds, waitUntil } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { messages: 200, batchSize: 5 },
  full: { messages: 1500, batchSize: 10 },
});
const MAX_ATTEMPTS = 3;
const FAULTS = { serverErrorRatio: 0.15, rateLimitRatio: 0.1, retryAfterSeconds: 1, timeoutRatio: 0.1, timeoutAccepts: true };

describe(`faults: Mailjet answers 500, 429 and times out (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 90_000, full: 900_000 }));
  const harness = useFaultHarness();

  it(`when ${FAULTS.serverErrorRatio * 100}% of calls get a 500, ${FAULTS.rateLimitRatio * 100}% a 429 and ${FAULTS.timeoutRatio * 100}% time out after accepting, then every job ends accepted or failed with its reason and attempts never exceed MAX_ATTEMPTS`, async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    // The seed fixes the sequence of call outcomes (printed with the figures, to repeat a run); one of each
    // fault comes first, so each surely happens.
    const seed = Math.floor(Math.random() * 2 ** 31);
    const simulator = await harness.simulator(port, { seed });
    simulator.faults.set({ ...FAULTS, nextCalls: ['500', '429', 'timeout'] });
    const child = await harness.jetpost({
      name: 'jetpost',
      port,
      databaseUrl: db.url,
      simulator,
      env: { BATCH_SIZE: String(SIZE.batchSize), MAX_ATTEMPTS: String(MAX_ATTEMPTS), MAILJET_TIMEOUT_MS: '1000' },
    });
    const jobIds = await queueMessages(
      child.url,
      key,
      Array.from({ length: SIZE.messages }, (_, index) => messageTo(`noevents-${index}@example.com`)),
    );

    await waitForJobs(db.pool, SIZE.messages, ['accepted', 'failed'], { timeoutMs: byScale({ fast: 75_000, full: 800_000 }), watch: [child] });

    const jobs = await jobFacts(db.pool);
    const calls = simulator.sendCallLog();
    const copies = acceptedCopies(simulator);
    const byOutcome = (outcome: string) => calls.filter((call) => call.outcome === outcome).length;
    // "Maybe sent": accepted by the simulator in a call whose answer the client never got.
    const maybeSent = new Set(calls.filter((call) => call.outcome === 'timeout').flatMap((call) => call.accepted));
    const foundByLookup = new Set(
      simulator
        .lookupLog()
        .filter((lookup) => lookup.found > 0)
        .map((lookup) => lookup.customId),
    );
    const avoided = [...foundByLookup].filter((customId) => copies.get(customId) === 1);
    const twice = [...copies].filter(([, count]) => count > 1).map(([customId]) => customId);
    const accepted = jobs.filter((job) => job.status === 'accepted');
    const failed = jobs.filter((job) => job.status === 'failed');
    const failedButSent = failed.filter((job) => copies.has(customIdOf(job.id)));
    recordFigures(
      `3 Mailjet 500 / 429 / timeout, ${SIZE.messages} messages, MAX_ATTEMPTS ${MAX_ATTEMPTS}, seed ${seed}`,
      `calls ${calls.length}: ok ${byOutcome('ok')}, 500 ${byOutcome('500')}, 429 ${byOutcome('429')}, timeout ${byOutcome('timeout')}`,
      `accepted ${accepted.length}, failed ${failed.length}`,
      `maybe sent ${maybeSent.size}: duplicates avoided by CustomID look-up ${avoided.length}, sent twice ${twice.length}`,
      `failed though Mailjet took it ${failedButSent.length}`,
      seconds(started),
    );

    expect(accepted.length + failed.length).to.equal(jobIds.length);
    expect(
      jobs.filter((job) => job.attempts > MAX_ATTEMPTS).map((job) => job.id),
      'jobs over MAX_ATTEMPTS',
    ).to.deep.equal([]);
    for (const job of failed) {
      expect(job.attempts, `attempts of failed job ${job.id}`).to.equal(MAX_ATTEMPTS);
      expect(job.lastError, `reason of failed job ${job.id}`).to.be.a('string').and.not.equal('');
    }
    for (const job of accepted) {
      expect(job.attempts, `attempts of accepted job ${job.id}`).to.be.within(1, MAX_ATTEMPTS);
      expect(copies.has(customIdOf(job.id)), `accepted job ${job.id} reached the simulator`).to.equal(true);
    }
    // The faults really happened, or this proves nothing.
    expect(byOutcome('500'), '500s injected').to.be.above(0);
    expect(byOutcome('429'), '429s injected').to.be.above(0);
    expect(byOutcome('timeout'), 'timeouts injected').to.be.above(0);
  });
  it('when the last attempt times out after Mailjet accepted the message, then the job does not end failed as never sent', async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    // Two clear failures, then a last attempt that Mailjet accepts but never answers.
    simulator.faults.set({ nextCalls: ['500', '500', 'timeout'], timeoutAccepts: true });
    const child = await harness.jetpost({
      name: 'jetpost',
      port,
      databaseUrl: db.url,
      simulator,
      env: { MAX_ATTEMPTS: String(MAX_ATTEMPTS), MAILJET_TIMEOUT_MS: '1000' },
    });
    const [jobId] = await queueMessages(child.url, key, [messageTo('noevents-last-attempt@example.com')]);

    await waitForJobs(db.pool, 1, ['accepted', 'failed'], { timeoutMs: 30_000, watch: [child] });

    const [job] = await jobFacts(db.pool);
    const delivered = acceptedCopies(simulator).get(customIdOf(jobId!)) ?? 0;
    recordFigures(
      '3b last attempt times out after Mailjet accepted',
      `simulator accepted it ${delivered}×`,
      `job ${job!.status} after ${job!.attempts} attempts, outcome_unknown ${job!.outcomeUnknown}`,
      seconds(started),
    );
    expect(delivered, 'the simulator accepted the message').to.equal(1);
    expect(job!.status, `job ${jobId} (last_error: ${job!.lastError})`).to.equal('accepted');
  });
  // ShowContactAlt ignored (by Mailjet or a proxy): the look-up's rows name the job's CustomID but
  // no address. Read as "not found", each maybe-sent job was sent again.
  it('when the look-up of maybe-sent jobs answers without ContactAlt, then none is sent again: one address is accepted, several end failed, outcome unknown', async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    simulator.faults.set({ nextCalls: ['timeout', 'timeout'], timeoutAccepts: true, lookupHidesContactAlt: true });
    const child = await harness.jetpost({
      name: 'jetpost',
      port,
      databaseUrl: db.url,
      simulator,
      env: { MAX_ATTEMPTS: String(MAX_ATTEMPTS), MAILJET_TIMEOUT_MS: '1000', RETRY_BASE_MS: '200', BATCH_SIZE: '2' },
    });
    const [one, several] = await queueMessages(child.url, key, [
      messageTo('noevents-one@example.com'),
      messageTo(['noevents-a@example.com', 'noevents-b@example.com']),
    ]);

    await waitForJobs(db.pool, 2, ['accepted', 'failed'], { timeoutMs: 30_000, watch: [child] });

    const jobs = new Map((await jobFacts(db.pool)).map((job) => [job.id, job]));
    const copies = acceptedCopies(simulator);
    const { rows: ids } = await db.pool.query<{ message_id: string }>('select mailjet_message_id::text as message_id from email_recipients where job_id = $1', [
      one,
    ]);
    recordFigures(
      '3d look-up without ContactAlt after a timeout',
      `one address: ${jobs.get(one!)!.status}, sent ${copies.get(customIdOf(one!)) ?? 0}×`,
      `two addresses: ${jobs.get(several!)!.status}, sent ${copies.get(customIdOf(several!)) ?? 0}×`,
      seconds(started),
    );
    expect(copies.get(customIdOf(one!)), 'times the one-address job was sent').to.equal(1);
    expect(copies.get(customIdOf(several!)), 'times the two-address job was sent').to.equal(1);
    expect(jobs.get(one!)).to.include({ status: 'accepted' });
    const sentIds = simulator.messages.filter((m) => m.customId === customIdOf(one!)).flatMap((m) => m.recipients.map((r) => r.messageId.toString()));
    expect(ids.map((row) => row.message_id)).to.deep.equal(sentIds);
    expect(jobs.get(several!)).to.include({ status: 'failed', outcomeUnknown: true });
    expect(jobs.get(several!)!.lastError).to.match(
      /^Mailjet accepted it, but .*messages of the job without an address sent.*noevents-a@example.com, noevents-b@example.com/,
    );
  });
  it('when the CustomID look-up of a maybe-sent job fails, then the message is not sent again blindly', async () => {
    const started = Date.now();
    const db = await harness.database();
    const { key } = await harness.app(db.pool);
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    // The send is accepted but never answered; every look-up fails until the fault is lifted.
    simulator.faults.set({ nextCalls: ['timeout'], timeoutAccepts: true, lookupErrorRatio: 1 });
    const child = await harness.jetpost({
      name: 'jetpost',
      port,
      databaseUrl: db.url,
      simulator,
      env: { MAX_ATTEMPTS: '8', MAILJET_TIMEOUT_MS: '1000' },
    });
    const [jobId] = await queueMessages(child.url, key, [messageTo('noevents-lookup-fails@example.com')]);

    await waitUntil('a failed look-up of the maybe-sent job', () => simulator.lookupLog().some((lookup) => lookup.status === 500), {
      timeoutMs: 15_000,
      watch: [child],
    });
    simulator.faults.set({});
    await waitForJobs(db.pool, 1, ['accepted', 'failed'], { timeoutMs: 30_000, watch: [child] });

    const [job] = await jobFacts(db.pool);
    const copies = acceptedCopies(simulator).get(customIdOf(jobId!)) ?? 0;
    recordFigures(
      '3c look-up by CustomID fails after a timeout',
      `failed look-ups ${simulator.lookupLog().filter((lookup) => lookup.status === 500).length}`,
      `simulator accepted it ${copies}×`,
      `job ${job!.status} after ${job!.attempts} attempts`,
      seconds(started),
    );
    expect(copies, `times the simulator accepted job ${jobId}`).to.equal(1);
    expect(job!.status).to.equal('accepted');
  });
});
