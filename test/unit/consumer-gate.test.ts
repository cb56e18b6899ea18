// The send gate is the consumer's last step before each Mailjet call: the leases are renewed first,
// then the gate is passed, then the call goes. A 429 that pauses the gate while this consumer is
// renewing its leases (another consumer's call got it) must hold this call back too.
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'chai';

import { createBus } from '../../src/bus.js';
import type { ClaimedJob } from '../../src/domain/job.js';
import type { MailjetSendBody } from '../../src/domain/mailjet-payload.js';
import type { SendResult } from '../../src/domain/send-decision.js';
import type { RecordSummary } from '../../src/services/sending.js';
import { type ConsumerDeps, createConsumer } from '../../src/workers/consumer.js';
import { createSendGate } from '../../src/workers/send-gate.js';
import { createWakeup } from '../../src/workers/wakeup.js';
import { claimedJob, pendingRecipient } from '../factories.js';
import { capturingLogger, testLogger } from '../support/log.js';

const job = claimedJob();

/** A consumer's dependencies that take no part in these tests, with those a test gives. */
function consumerDeps(given: Pick<ConsumerDeps, 'claim' | 'send' | 'record'> & Partial<ConsumerDeps>): ConsumerDeps {
  return {
    id: 'consumer-1',
    batchSize: 50,
    lookup: async () => [],
    markSuppressed: async () => undefined,
    extendLeases: async (ids) => [...ids],
    release: async (ids) => [...ids],
    nextRunAt: async () => null,
    poolEnded: () => false,
    wakeup: createWakeup(),
    gate: createSendGate({ callsPerSecond: 0, random: () => 0.5 }),
    retry: { maxAttempts: 3, baseMs: 100, factor: 2, maxMs: 1_000, jitter: 0, lookUpWindowMs: 86_400_000 },
    leaseMs: 60_000,
    idleCheckMs: 60_000,
    log: testLogger(),
    bus: createBus(),
    ...given,
  };
}

describe('consumer: the send gate comes right before the call', () => {
  for (const [age, renewed] of [
    [0, false],
    [29_999, false],
    [30_000, true],
  ] as const) {
    it(`when a call goes ${age} ms after the claim with a 60 s lease, then its leases are ${renewed ? '' : 'not '}renewed first`, async () => {
      let claims = 0;
      const renewals: string[][] = [];
      let sent!: () => void;
      const done = new Promise<void>((resolve) => (sent = resolve));
      const consumer = createConsumer(
        consumerDeps({
          claim: async () => (claims++ === 0 ? [job] : []),
          send: async () => {
            sent();
            return { status: 500, body: undefined, description: 'Mailjet 500' };
          },
          record: async (): Promise<RecordSummary> => ({ accepted: [], failed: [], deferred: ['1'], lostLease: [] }),
          extendLeases: async (ids) => {
            renewals.push([...ids]);
            return [...ids];
          },
          monotonicMs: () => (claims > 0 ? 1_000 + age : 1_000),
        }),
      );

      void consumer.start();
      await done;
      await consumer.stop(5_000);

      expect(renewals).to.deep.equal(renewed ? [[job.id]] : []);
    });
  }

  it('when look-ups age the leases to just under half a lease and the gate then holds the call, then the call still goes with half a lease left', async () => {
    let clock = 1_000;
    let claims = 0;
    let ageAtCall: number | undefined;
    let sent!: () => void;
    const done = new Promise<void>((resolve) => (sent = resolve));
    const realGate = createSendGate({ callsPerSecond: 0, random: () => 0.5 });
    const consumer = createConsumer(
      consumerDeps({
        claim: async () => (claims++ === 0 ? [{ ...job, outcomeUnknown: true }] : []),
        // A slow look-up (Mailjet not found it): the leases are 29 s old when the call reaches the gate.
        lookup: async () => {
          clock = 1_000 + 29_000;
          return [];
        },
        // The gate holds the call as long as it may (a 429 pause, the rate limit), then lets it go.
        gate: {
          ...realGate,
          acquireWithin: async (maxWaitMs) => {
            clock += maxWaitMs;
            return 'acquired';
          },
        },
        send: async () => {
          ageAtCall = clock - 1_000;
          sent();
          return { status: 500, body: undefined, description: 'Mailjet 500' };
        },
        record: async (): Promise<RecordSummary> => ({ accepted: [], failed: [], deferred: ['1'], lostLease: [] }),
        monotonicMs: () => clock,
      }),
    );

    void consumer.start();
    await done;
    await consumer.stop(5_000);

    expect(ageAtCall, 'lease age when the call went (60 s lease)').to.be.at.most(30_000);
  });

  it('when a 429 pauses the gate while the consumer renews its leases, then its call waits until the pause is over', async () => {
    const gate = createSendGate({ callsPerSecond: 0, random: () => 0.5 });
    let claims = 0;
    let pausedUntil: number | undefined;
    let sentAt: number | undefined;
    let recorded!: () => void;
    const done = new Promise<void>((resolve) => (recorded = resolve));
    const deps = consumerDeps({
      claim: async () => (claims++ === 0 ? [job] : []),
      send: async () => {
        sentAt = Date.now();
        return {
          status: 200,
          body: { Messages: [{ Status: 'success', To: [{ Email: 'a@example.com', MessageID: '576460765503091475', MessageUUID: 'uuid-1' }] }] },
          description: 'Mailjet 200',
        };
      },
      record: async (): Promise<RecordSummary> => {
        recorded();
        return { accepted: ['1'], failed: [], deferred: [], lostLease: [] };
      },
      extendLeases: async (ids) => {
        // Another consumer's call got a 429 during this round trip.
        gate.throttled(undefined);
        pausedUntil = gate.state().pausedUntil;
        return [...ids];
      },
      gate,
      // The call comes a whole lease after the claim: its leases are renewed first.
      monotonicMs: () => (claims > 0 ? 60_000 : 0),
    });
    const consumer = createConsumer(deps);

    void consumer.start();
    await done;
    await consumer.stop(5_000);

    expect(pausedUntil, 'the gate was paused').to.be.a('number');
    expect(sentAt, 'the call went').to.be.a('number');
    expect(sentAt!).to.be.at.least(pausedUntil!);
  });
});

describe('consumer: the look-up of a job that may have been sent', () => {
  it('when the job has a custom_id but its copy at Mailjet carries the CustomID of an older jetpost (no custom_id), then it is found and not sent again', async () => {
    const maybeSent: ClaimedJob = { ...job, customId: 'invoice-7', outcomeUnknown: true };
    const asked: string[] = [];
    let sends = 0;
    let claims = 0;
    let recordedKinds: string[] = [];
    let recorded!: () => void;
    const done = new Promise<void>((resolve) => (recorded = resolve));
    const consumer = createConsumer(
      consumerDeps({
        claim: async () => (claims++ === 0 ? [maybeSent] : []),
        send: async () => {
          sends += 1;
          return { status: 500, body: undefined, description: 'Mailjet 500' };
        },
        lookup: async (customId) => {
          asked.push(customId);
          return customId === 'jetpost-1' ? [{ messageId: '576460765503091475', messageUuid: 'uuid-1', email: 'a@example.com' }] : [];
        },
        record: async (results): Promise<RecordSummary> => {
          recordedKinds = results.map((result) => `${result.jobId}:${result.kind}`);
          recorded();
          return { accepted: ['1'], failed: [], deferred: [], lostLease: [] };
        },
      }),
    );

    void consumer.start();
    await done;
    await consumer.stop(5_000);

    expect(asked).to.deep.equal(['jetpost-1:invoice-7', 'jetpost-1']);
    expect(recordedKinds).to.deep.equal(['1:accepted']);
    expect(sends, 'calls to Mailjet').to.equal(0);
  });
});

describe('consumer: a look-up goes through the send gate, as a call does', () => {
  it('when a look-up is answered 429, then every consumer pauses and the job waits for the pause, its attempt given back, still to be looked up', async () => {
    const gate = createSendGate({ callsPerSecond: 0, random: () => 0.5 });
    const maybeSent: ClaimedJob = { ...job, outcomeUnknown: true, attempts: 3, maxAttempts: 3 };
    let sends = 0;
    let claims = 0;
    let recordedResults: SendResult[] = [];
    let recorded!: () => void;
    const done = new Promise<void>((resolve) => (recorded = resolve));
    const consumer = createConsumer(
      consumerDeps({
        gate,
        claim: async () => (claims++ === 0 ? [maybeSent] : []),
        send: async () => {
          sends += 1;
          return { status: 500, body: undefined, description: 'Mailjet 500' };
        },
        lookup: async () => ({ status: 429, body: undefined, retryAfter: '2', description: 'Mailjet 429 on the look-up by CustomID' }),
        record: async (results): Promise<RecordSummary> => {
          recordedResults = [...results];
          recorded();
          return { accepted: [], failed: [], deferred: results.map((result) => result.jobId), lostLease: [] };
        },
      }),
    );

    void consumer.start();
    const timedOut = await Promise.race([done.then(() => false), sleep(5_000).then(() => true)]);
    await consumer.stop(5_000);

    expect(timedOut, 'the consumer never got that far').to.equal(false);
    expect(gate.state().pausedUntil, 'the gate was paused').to.be.a('number');
    expect(recordedResults).to.have.length(1);
    const [result] = recordedResults;
    expect(result).to.include({ jobId: '1', kind: 'deferred', outcomeUnknown: true, refundAttempt: true });
    expect((result as Extract<SendResult, { kind: 'deferred' }>).runAt.getTime()).to.be.at.least(Date.now() + 1_000);
    expect(sends, 'calls to Mailjet').to.equal(0);
  });

  it('when sending is stopped on a 401, then no look-up is made and the job goes back unsent, a look-up-only one keeping its attempts', async () => {
    const gate = createSendGate({ callsPerSecond: 0, random: () => 0.5 });
    gate.unauthorized('Mailjet 401');
    const lookUpOnly: ClaimedJob = { ...job, outcomeUnknown: true, lookUpOnly: true, acceptedUnresolved: true, attempts: 3, maxAttempts: 3 };
    let lookups = 0;
    let claims = 0;
    const released: Array<{ ids: string[]; uncounted: string[] }> = [];
    let gaveBack!: () => void;
    const done = new Promise<void>((resolve) => (gaveBack = resolve));
    const consumer = createConsumer(
      consumerDeps({
        gate,
        // The consumer claims even though the gate is stopped: a claim can start just before a 401 lands.
        claim: async () => (claims++ === 0 ? [lookUpOnly] : []),
        send: async () => ({ status: 500, body: undefined, description: 'Mailjet 500' }),
        lookup: async () => {
          lookups += 1;
          return [];
        },
        record: async (): Promise<RecordSummary> => ({ accepted: [], failed: [], deferred: [], lostLease: [] }),
        release: async (ids, uncounted) => {
          released.push({ ids: [...ids], uncounted: [...uncounted] });
          gaveBack();
          return [...ids];
        },
      }),
    );
    // Let the first turn claim: heldBackForMs would otherwise keep it from claiming at all.
    const heldBack = gate.heldBackForMs;
    gate.heldBackForMs = () => (claims === 0 ? 0 : heldBack());

    void consumer.start();
    const timedOut = await Promise.race([done.then(() => false), sleep(5_000).then(() => true)]);
    await consumer.stop(5_000);

    expect(timedOut, 'the consumer never got that far').to.equal(false);
    expect(lookups, 'look-ups made while sending was stopped').to.equal(0);
    expect(released).to.deep.equal([{ ids: ['1'], uncounted: ['1'] }]);
  });

  it('when the rate limit allows one request a second, then look-ups wait their turn at the gate', async () => {
    let clock = 0;
    const waits: number[] = [];
    const gate = createSendGate({
      callsPerSecond: 1,
      now: () => clock,
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
    });
    const jobs = ['1', '2', '3'].map((jobId) => {
      const claimed = claimedJob({ id: jobId, outcomeUnknown: true });
      return { ...claimed, recipients: [pendingRecipient(claimed, `r${jobId}@example.com`)] };
    });
    const askedAt: number[] = [];
    let claims = 0;
    let recorded!: () => void;
    const done = new Promise<void>((resolve) => (recorded = resolve));
    const consumer = createConsumer(
      consumerDeps({
        gate,
        claim: async () => (claims++ === 0 ? jobs : []),
        // Mailjet holds each of them: nothing is sent.
        lookup: async (customId) => {
          askedAt.push(clock);
          const jobId = customId.replace('jetpost-', '');
          return [{ messageId: String(576460765503091475n + BigInt(jobId)), messageUuid: `uuid-${jobId}`, email: `r${jobId}@example.com` }];
        },
        send: async () => ({ status: 500, body: undefined, description: 'Mailjet 500' }),
        record: async (results): Promise<RecordSummary> => {
          recorded();
          return { accepted: results.map((result) => result.jobId), failed: [], deferred: [], lostLease: [] };
        },
      }),
    );

    void consumer.start();
    const timedOut = await Promise.race([done.then(() => false), sleep(5_000).then(() => true)]);
    await consumer.stop(5_000);

    expect(timedOut, 'the consumer never got that far').to.equal(false);
    expect(askedAt).to.deep.equal([0, 1_000, 2_000]);
  });
});

describe('consumer: a claim of several batches', () => {
  it('when a claim holds more jobs than a batch, then they go in calls of at most a batch each, in claim order', async () => {
    const jobs = Array.from({ length: 7 }, (_, index) => {
      const claimed = claimedJob({ id: String(index + 1) });
      return { ...claimed, recipients: [pendingRecipient(claimed, `r${index + 1}@example.com`)] };
    });
    const calls: string[][] = [];
    let claims = 0;
    let recorded = 0;
    let recordedAll!: () => void;
    const done = new Promise<void>((resolve) => (recordedAll = resolve));
    const consumer = createConsumer(
      consumerDeps({
        batchSize: 3,
        claim: async () => (claims++ === 0 ? jobs : []),
        send: async (body) => {
          calls.push((JSON.parse(body) as MailjetSendBody).Messages.map((message) => String(message.CustomID)));
          return { status: 500, body: undefined, description: 'Mailjet 500' };
        },
        record: async (results): Promise<RecordSummary> => {
          recorded += results.length;
          if (recorded === jobs.length) {
            recordedAll();
          }
          return { accepted: [], failed: [], deferred: results.map((result) => result.jobId), lostLease: [] };
        },
      }),
    );

    void consumer.start();
    await done;
    await consumer.stop(5_000);

    expect(calls).to.deep.equal([['jetpost-1', 'jetpost-2', 'jetpost-3'], ['jetpost-4', 'jetpost-5', 'jetpost-6'], ['jetpost-7']]);
  });

  it("when a renewal before the first call finds a later call's job no longer ours, then the later call, on fresh leases, leaves it out", async () => {
    const jobs = ['1', '2', '3'].map((jobId) => {
      const claimed = claimedJob({ id: jobId });
      return { ...claimed, recipients: [pendingRecipient(claimed, `r${jobId}@example.com`)] };
    });
    const calls: string[][] = [];
    let claims = 0;
    let claimedAgain!: () => void;
    // The consumer claims again once it is done with every call of the first claim.
    const done = new Promise<void>((resolve) => (claimedAgain = resolve));
    const consumer = createConsumer(
      consumerDeps({
        batchSize: 2,
        claim: async () => {
          if (claims++ === 0) {
            return jobs;
          }
          claimedAgain();
          return [];
        },
        // The first call goes half a lease after the claim (its leases are renewed), the second at once after.
        monotonicMs: () => (claims > 0 ? 31_000 : 1_000),
        // Job 3's lease lapsed and the reaper gave it back: another consumer may be sending it.
        extendLeases: async (ids) => ids.filter((jobId) => jobId !== '3'),
        send: async (body) => {
          calls.push((JSON.parse(body) as MailjetSendBody).Messages.map((message) => String(message.CustomID)));
          return { status: 500, body: undefined, description: 'Mailjet 500' };
        },
        record: async (results): Promise<RecordSummary> => ({
          accepted: [],
          failed: [],
          deferred: results.map((result) => result.jobId),
          lostLease: [],
        }),
      }),
    );

    void consumer.start();
    await done;
    await consumer.stop(5_000);

    expect(calls).to.deep.equal([['jetpost-1', 'jetpost-2']]);
  });
});

describe('consumer: sending stopped on a 401', () => {
  it('when the probe call after a 401 gets no answer about the keys (a 503), then a later probe goes, and sending resumes once one is answered', async () => {
    // The gate's clock moves a second each time it is read: the waits of the 401 stop pass in a few turns.
    let clock = 0;
    const gate = createSendGate({ callsPerSecond: 0, random: () => 0.5, now: () => (clock += 1_000) });
    const answers = [401, 503, 200];
    const sent: number[] = [];
    let claims = 0;
    let resumed!: () => void;
    const done = new Promise<void>((resolve) => (resumed = resolve));
    const consumer = createConsumer(
      consumerDeps({
        gate,
        idleCheckMs: 5,
        claim: async () => {
          claims += 1;
          const claimed = claimedJob({ id: String(claims) });
          return [{ ...claimed, recipients: [pendingRecipient(claimed, `r${claims}@example.com`)] }];
        },
        send: async () => {
          const status = answers[sent.length] ?? 200;
          sent.push(status);
          if (status === 200) {
            resumed();
          }
          return status === 200
            ? {
                status,
                body: {
                  Messages: [
                    {
                      Status: 'success',
                      To: [{ Email: `r${claims}@example.com`, MessageID: String(576460765503091475n + BigInt(claims)), MessageUUID: `uuid-${claims}` }],
                    },
                  ],
                },
                description: 'Mailjet 200',
              }
            : { status, body: { ErrorMessage: 'no' }, description: `Mailjet ${status}` };
        },
        record: async (results): Promise<RecordSummary> => ({
          accepted: results.filter((result) => result.kind === 'accepted').map((result) => result.jobId),
          failed: [],
          deferred: results.filter((result) => result.kind === 'deferred').map((result) => result.jobId),
          lostLease: [],
        }),
      }),
    );

    void consumer.start();
    const timedOut = await Promise.race([done.then(() => false), sleep(10_000).then(() => true)]);
    await consumer.stop(5_000);

    expect(timedOut, `no call after the probe's 503 (calls answered: ${sent.join(', ')})`).to.equal(false);
    expect(sent).to.deep.equal([401, 503, 200]);
    expect(gate.state().blocked, 'sending stopped').to.equal(undefined);
  });
});

describe('consumer: back-off while the database is away', () => {
  it('when every claim fails and claims are being spaced out, then the back-off still grows (250, 500, 1000, 2000 ms), not one error a quarter second', async function () {
    this.timeout(30_000);
    const { log, lines } = capturingLogger('error');
    const failures = () => lines().map((line) => JSON.parse(line) as { message: string; retryInMs: number });
    let spaced = false;
    const consumer = createConsumer(
      consumerDeps({
        claim: async () => {
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        },
        send: async () => ({ status: 500, body: undefined, description: 'unused' }),
        record: async (): Promise<RecordSummary> => ({ accepted: [], failed: [], deferred: [], lostLease: [] }),
        // The queue is caught up: every other turn waits a little before it may claim.
        slots: {
          claimDelayMs: () => {
            spaced = !spaced;
            return spaced ? 5 : 0;
          },
          claimed: () => undefined,
          callStarted: () => undefined,
          callEnded: () => undefined,
        },
        log,
      }),
    );

    void consumer.start();
    for (let waited = 0; failures().length < 4 && waited < 20_000; waited += 50) {
      await sleep(50);
    }
    await consumer.stop(5_000);

    expect(
      failures()
        .slice(0, 4)
        .map((line) => [line.message, line.retryInMs]),
    ).to.deep.equal([250, 500, 1000, 2000].map((retryInMs) => ['consumer batch failed; backing off', retryInMs]));
  });
});
