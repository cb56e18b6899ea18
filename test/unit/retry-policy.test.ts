import { expect } from 'chai';

import type { AcceptedRecipient, CallOutcome } from '../../src/domain/mailjet-outcome.js';
import type { RecipientRow } from '../../src/domain/recipient.js';
import { backoffMs, nextRetry, type RetryPolicy } from '../../src/domain/retry-policy.js';
import { type AttemptedJob, decideSendResults, type DecisionContext, giveUpAfterLookUp, type SendResult } from '../../src/domain/send-decision.js';

const POLICY: RetryPolicy = { maxAttempts: 8, baseMs: 5000, factor: 2, maxMs: 3_600_000, jitter: 0.25, lookUpWindowMs: 86_400_000 };
const NOW = new Date('2030-01-01T12:00:00Z');
/** random() = 0.5 draws no jitter at all: the delay is the exponential value itself. */
const MIDDLE = (): number => 0.5;
const LOWEST = (): number => 0;
const HIGHEST = (): number => 0.9999999999;

const PROBE_AT = new Date(NOW.getTime() + 30_000);
const CONTEXT: DecisionContext = { policy: POLICY, now: NOW, random: MIDDLE, resumeAt: PROBE_AT };

const RECIPIENT: AcceptedRecipient = { kind: 'to', email: 'a@example.com', messageId: '576460765503091475', messageUuid: 'uuid-a' };
/** Each job's one row, sent to RECIPIENT's address. */
const ROWS = new Map(
  ['1', '2', '3'].map((jobId): [string, RecipientRow[]] => [
    jobId,
    [
      {
        id: `r${jobId}`,
        jobId,
        position: 0,
        kind: 'to',
        email: 'a@example.com',
        name: null,
        status: 'pending',
        messageId: null,
        messageUuid: null,
        updatedAt: NOW,
      },
    ],
  ]),
);

function attempted(id: string, attempts = 1, maxAttempts = 8): AttemptedJob {
  return { id, attempts, maxAttempts };
}

function runAtOf(result: SendResult | undefined): Date {
  expect(result?.kind).to.equal('deferred');
  return (result as Extract<SendResult, { kind: 'deferred' }>).runAt;
}

describe('backoffMs', () => {
  it('when attempts fail one after another, then the delay doubles from the base', () => {
    const delays = [1, 2, 3, 4, 5].map((attempts) => backoffMs(POLICY, attempts, MIDDLE));

    expect(delays).to.deep.equal([5000, 10_000, 20_000, 40_000, 80_000]);
  });

  it('when the exponential value passes maxMs, then the delay is capped at maxMs', () => {
    expect(backoffMs(POLICY, 30, MIDDLE)).to.equal(3_600_000);
    expect(backoffMs(POLICY, 1000, MIDDLE)).to.equal(3_600_000);
    expect(backoffMs({ ...POLICY, maxMs: 7000 }, 2, MIDDLE)).to.equal(7000);
  });

  it('when random() is 0 or nearly 1, then the delay is at the lower or upper jitter bound', () => {
    expect(backoffMs(POLICY, 1, LOWEST)).to.equal(3750);
    expect(backoffMs(POLICY, 1, HIGHEST)).to.equal(6250);
    expect(backoffMs(POLICY, 3, LOWEST)).to.equal(15_000);
    expect(backoffMs(POLICY, 3, HIGHEST)).to.equal(25_000);
  });

  it('when random() takes any value in [0, 1), then the delay stays within ±jitter of the exponential value', () => {
    for (let step = 0; step < 100; step += 1) {
      const random = (): number => step / 100;
      for (const attempts of [1, 4, 8, 40]) {
        const exponential = Math.min(POLICY.maxMs, POLICY.baseMs * 2 ** (attempts - 1));
        const delay = backoffMs(POLICY, attempts, random);
        expect(delay).to.be.within(Math.floor(exponential * 0.75), Math.ceil(exponential * 1.25));
      }
    }
  });

  it('when jitter is 0, then random() has no effect', () => {
    const policy = { ...POLICY, jitter: 0 };

    expect(backoffMs(policy, 2, LOWEST)).to.equal(10_000);
    expect(backoffMs(policy, 2, HIGHEST)).to.equal(10_000);
  });
});

describe('nextRetry', () => {
  it('when attempts remain, then it retries at now + the backoff delay', () => {
    expect(nextRetry(POLICY, { attemptsMade: 2, now: NOW, random: MIDDLE })).to.deep.equal({
      kind: 'retry',
      delayMs: 10_000,
      runAt: new Date(NOW.getTime() + 10_000),
    });
  });

  it('when attemptsMade reaches maxAttempts, then it gives up', () => {
    expect(nextRetry(POLICY, { attemptsMade: 7, now: NOW, random: MIDDLE }).kind).to.equal('retry');
    expect(nextRetry(POLICY, { attemptsMade: 8, now: NOW, random: MIDDLE })).to.deep.equal({ kind: 'give-up' });
    expect(nextRetry(POLICY, { attemptsMade: 9, now: NOW, random: MIDDLE })).to.deep.equal({ kind: 'give-up' });
    expect(nextRetry({ ...POLICY, maxAttempts: 1 }, { attemptsMade: 1, now: NOW, random: MIDDLE })).to.deep.equal({ kind: 'give-up' });
  });

  it('when Retry-After asks for longer than the backoff, then it waits that long', () => {
    const decision = nextRetry(POLICY, { attemptsMade: 1, now: NOW, random: HIGHEST, retryAfterMs: 60_000 });

    expect(decision).to.deep.equal({ kind: 'retry', delayMs: 60_000, runAt: new Date(NOW.getTime() + 60_000) });
  });

  it('when Retry-After asks for less than the backoff, then the backoff wins', () => {
    expect(nextRetry(POLICY, { attemptsMade: 3, now: NOW, random: MIDDLE, retryAfterMs: 1000 })).to.deep.include({ delayMs: 20_000 });
  });

  it('when Retry-After asks for longer than maxMs (a year, or beyond any date), then the job waits maxMs and its retry time is a real date', () => {
    for (const retryAfterMs of [365 * 86_400_000, 1e23, Number.POSITIVE_INFINITY]) {
      const decision = nextRetry(POLICY, { attemptsMade: 1, now: NOW, random: MIDDLE, retryAfterMs });
      expect(decision, String(retryAfterMs)).to.deep.equal({ kind: 'retry', delayMs: 3_600_000, runAt: new Date(NOW.getTime() + 3_600_000) });
    }
  });
});

describe('decideSendResults', () => {
  it('when Mailjet answers per message, then each job gets the outcome at its index', () => {
    const jobs = [attempted('1'), attempted('2'), attempted('3', 2)];
    const outcome: CallOutcome = {
      kind: 'per-message',
      messages: [
        { kind: 'accepted', recipients: [RECIPIENT] },
        { kind: 'rejected', transient: false, error: 'mj-0013: invalid email' },
        { kind: 'rejected', transient: true, error: 'send-5000: try later' },
      ],
    };

    const results = decideSendResults(jobs, outcome, CONTEXT, ROWS);

    expect(results).to.deep.equal([
      { jobId: '1', kind: 'accepted', recipients: [{ recipientId: 'r1', messageId: RECIPIENT.messageId, messageUuid: RECIPIENT.messageUuid }] },
      { jobId: '2', kind: 'failed', error: 'mj-0013: invalid email' },
      { jobId: '3', kind: 'deferred', error: 'send-5000: try later', runAt: new Date(NOW.getTime() + 10_000), outcomeUnknown: false, refundAttempt: false },
    ]);
  });

  it('when a per-message transient error comes on the last attempt, then that job fails and says why', () => {
    const outcome: CallOutcome = { kind: 'per-message', messages: [{ kind: 'rejected', transient: true, error: 'send-5000: try later' }] };

    const [result] = decideSendResults([attempted('1', 8, 8)], outcome, CONTEXT, ROWS);

    expect(result).to.deep.equal({ jobId: '1', kind: 'failed', error: 'gave up after 8 attempts: send-5000: try later' });
  });

  it('when the last attempt gets a Retry-After beyond any date with its outcome unknown, then the look-up comes back within maxMs', () => {
    const outcome: CallOutcome = { kind: 'transient', error: 'Mailjet 503', retryAfterMs: 1e23, outcomeUnknown: true };

    const [result] = decideSendResults([attempted('1', 8, 8)], outcome, CONTEXT, ROWS);

    expect(runAtOf(result).getTime() - NOW.getTime()).to.equal(3_600_000);
  });

  it('when there are more jobs than per-message outcomes, then the unmatched jobs are deferred, not lost', () => {
    const outcome: CallOutcome = { kind: 'per-message', messages: [{ kind: 'accepted', recipients: [RECIPIENT] }] };

    const results = decideSendResults([attempted('1'), attempted('2')], outcome, CONTEXT, ROWS);

    expect(results[0]?.kind).to.equal('accepted');
    // It may have been sent: looked up at Mailjet before it is sent again.
    expect(results[1]).to.deep.include({ jobId: '2', kind: 'deferred', outcomeUnknown: true });
  });

  it('when the call failed transiently, then every job is deferred no sooner than Retry-After', () => {
    const outcome: CallOutcome = { kind: 'transient', error: 'Mailjet 503', retryAfterMs: 120_000, outcomeUnknown: false };

    const results = decideSendResults([attempted('1'), attempted('2', 3), attempted('3', 5)], outcome, { ...CONTEXT, random: HIGHEST }, ROWS);

    expect(results.map((result) => result.jobId)).to.deep.equal(['1', '2', '3']);
    for (const result of results) {
      expect(result.kind).to.equal('deferred');
      expect(runAtOf(result).getTime()).to.be.at.least(NOW.getTime() + 120_000);
      expect(result).to.deep.include({ error: 'Mailjet 503' });
    }
    // Attempt 5 backs off 80 s × up to 1.25 = 100 s, still under Retry-After; nothing shorter wins.
    expect(runAtOf(results[2]).getTime()).to.equal(NOW.getTime() + 120_000);
  });

  it('when the call failed transiently without Retry-After, then each job backs off by its own attempts', () => {
    const outcome: CallOutcome = { kind: 'transient', error: 'Mailjet 503', outcomeUnknown: true };

    const results = decideSendResults([attempted('1', 1), attempted('2', 4)], outcome, CONTEXT, ROWS);

    expect(results.map((result) => runAtOf(result).getTime() - NOW.getTime())).to.deep.equal([5000, 40_000]);
  });

  it('when a job has used all its attempts and the call fails transiently, then that job fails with a reason naming the attempts', () => {
    const outcome: CallOutcome = { kind: 'transient', error: 'Mailjet 503', outcomeUnknown: true };

    const results = decideSendResults([attempted('1', 3, 3), attempted('2', 1, 3)], outcome, CONTEXT, ROWS);

    // Its last attempt may have been delivered: it comes back once more, to be looked up, not failed blindly.
    expect(results[0]).to.deep.include({ jobId: '1', kind: 'deferred', outcomeUnknown: true, refundAttempt: false });
    expect(results[1]).to.deep.include({ kind: 'deferred', outcomeUnknown: true, refundAttempt: false });
  });

  it('when the job has its own maxAttempts, then it wins over the policy default', () => {
    const outcome: CallOutcome = { kind: 'transient', error: 'Mailjet unreachable (ECONNREFUSED)', outcomeUnknown: false };

    expect(decideSendResults([attempted('1', 2, 2)], outcome, CONTEXT, ROWS)[0]?.kind).to.equal('failed');
    expect(decideSendResults([attempted('1', 8, 20)], outcome, CONTEXT, ROWS)[0]?.kind).to.equal('deferred');
  });

  it('when the call is permanently rejected, then every job fails with the error', () => {
    const outcome: CallOutcome = { kind: 'permanent', error: 'Mailjet 400: mj-0002 Malformed JSON' };

    expect(decideSendResults([attempted('1'), attempted('2')], outcome, CONTEXT, ROWS)).to.deep.equal([
      { jobId: '1', kind: 'failed', error: 'Mailjet 400: mj-0002 Malformed JSON' },
      { jobId: '2', kind: 'failed', error: 'Mailjet 400: mj-0002 Malformed JSON' },
    ]);
  });

  it('when Mailjet answers 429, then jobs wait for the pause with their attempt refunded, even on their last attempt, so that rate limiting never fails a message', () => {
    const pauseEnds = new Date(NOW.getTime() + 4_000);
    const outcome: CallOutcome = { kind: 'transient', error: 'Mailjet 429', outcomeUnknown: false, rateLimited: true };

    const results = decideSendResults([attempted('1', 1), attempted('2', 8, 8)], outcome, { ...CONTEXT, resumeAt: pauseEnds }, ROWS);

    expect(results).to.deep.equal(
      ['1', '2'].map((jobId) => ({ jobId, kind: 'deferred', error: 'Mailjet 429', runAt: pauseEnds, outcomeUnknown: false, refundAttempt: true })),
    );
  });

  it('when Mailjet answers 429 with a Retry-After longer than the pause, then jobs wait for it, within the backoff cap', () => {
    const rateLimited = (retryAfterMs: number): CallOutcome => ({
      kind: 'transient',
      error: 'Mailjet 429',
      retryAfterMs,
      outcomeUnknown: false,
      rateLimited: true,
    });
    const pausedTill = { ...CONTEXT, resumeAt: new Date(NOW.getTime() + 300_000) };

    const [long] = decideSendResults([attempted('1', 3)], rateLimited(900_000), pausedTill, ROWS);
    const [absurd] = decideSendResults([attempted('1', 3)], rateLimited(1e23), pausedTill, ROWS);

    expect(runAtOf(long).getTime() - NOW.getTime()).to.equal(900_000);
    expect(runAtOf(absurd).getTime() - NOW.getTime()).to.equal(POLICY.maxMs);
    expect(absurd).to.deep.include({ refundAttempt: true });
  });

  it('when Mailjet answers 401, then jobs wait for the next probe with their attempt refunded, even on their last attempt', () => {
    const outcome: CallOutcome = { kind: 'unauthorized', error: 'Mailjet 401' };

    const results = decideSendResults([attempted('1', 1), attempted('2', 8, 8)], outcome, CONTEXT, ROWS);

    for (const [index, result] of results.entries()) {
      expect(result).to.deep.equal({
        jobId: String(index + 1),
        kind: 'deferred',
        error: 'Mailjet 401',
        runAt: PROBE_AT,
        outcomeUnknown: false,
        refundAttempt: true,
      });
    }
  });
});

describe('giveUpAfterLookUp', () => {
  it('when Mailjet was asked and has no such message, then the job fails with its last error and nothing left unknown', () => {
    const result = giveUpAfterLookUp({ ...attempted('7', 3, 3), lastError: 'Mailjet unreachable (ECONNABORTED)', acceptedUnresolved: false }, true);

    expect(result).to.deep.equal({
      jobId: '7',
      kind: 'failed',
      error: 'gave up after 3 attempts (Mailjet has no such message): Mailjet unreachable (ECONNABORTED)',
    });
  });

  it('when Mailjet could not be asked, then the job fails but stays marked outcome-unknown, so a re-queue looks it up first', () => {
    const result = giveUpAfterLookUp({ ...attempted('7', 3, 3), lastError: 'Mailjet 503', acceptedUnresolved: false }, false);

    expect(result).to.deep.include({ jobId: '7', kind: 'failed', outcomeUnknown: true });
    expect((result as { error: string }).error).to.contain('may have been delivered');
  });

  it('when Mailjet accepted the job without usable ids, then the job’s mark says so, whatever its error says', () => {
    expect(giveUpAfterLookUp({ ...attempted('7', 3, 3), lastError: 'Mailjet 503', acceptedUnresolved: true }, true)).to.deep.equal({
      jobId: '7',
      kind: 'failed',
      error: "Mailjet 503; the look-up did not find it, so its recipients' ids are unknown: it may well have been delivered (a re-queue looks it up first)",
      outcomeUnknown: true,
    });
  });

  it('when a release before the mark (sql/32_…) deferred the job as accepted without usable ids, then its error’s wording says so: it stays unknown, never "no such message"', () => {
    const lastError =
      'Mailjet accepted it, but its answer gives 0 of the 1 addresses sent a MessageID: it is looked up by CustomID for its MessageIDs, never sent again';
    for (const lookedUp of [true, false]) {
      expect(giveUpAfterLookUp({ ...attempted('7', 3, 3), lastError, acceptedUnresolved: false }, lookedUp)).to.deep.equal({
        jobId: '7',
        kind: 'failed',
        error: `${lastError}; the look-up ${lookedUp ? 'did not find it' : 'could not be made'}, so its recipients' ids are unknown: it may well have been delivered (a re-queue looks it up first)`,
        outcomeUnknown: true,
      });
    }
  });
});
