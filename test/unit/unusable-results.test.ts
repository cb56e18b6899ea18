// What a consumer records when a result cannot be recorded as it came: a record the database refuses
// for its data (a minimal one instead, no Mailjet text, never a resend), and an acceptance that does
// not give every recipient sent a usable id (looked up, never resent).
import { expect } from 'chai';

import { isDeterministicDatabaseError } from '../../src/domain/errors.js';
import type { RecipientRow } from '../../src/domain/recipient.js';
import { giveUpAfterLookUp, minimalResult, type SendResult } from '../../src/domain/send-decision.js';
import { checkAcceptances } from '../../src/domain/send-plan.js';

const pgError = (code: string | undefined) => Object.assign(new Error('refused'), code === undefined ? {} : { code });

describe('a refused record', () => {
  it('when PostgreSQL refuses the data (classes 22, 23, 54), then trying again cannot pass; connection, rollback, resource and shutdown errors can', () => {
    for (const code of ['22021', '22P02', '22P05', '22003', '23505', '23514', '54000']) {
      expect(isDeterministicDatabaseError(pgError(code)), code).to.equal(true);
    }
    for (const code of ['08006', '08P01', '40001', '40P01', '53300', '57P01', '57014', '55P03', 'ECONNRESET', undefined]) {
      expect(isDeterministicDatabaseError(pgError(code)), String(code)).to.equal(false);
    }
    expect(isDeterministicDatabaseError({ code: '22021' })).to.equal(false);
  });

  it('when a result is cut to its minimal record, then an accepted job keeps its MessageIDs without UUIDs, and a failed or deferred one its fate with the cause', () => {
    const cause = 'SQLSTATE 22021: invalid byte sequence for encoding "UTF8": 0x00';
    const recipient = { kind: 'to' as const, email: 'a@example.com', messageId: '576460765503091475', messageUuid: 'u\u0000x' };
    expect(minimalResult({ jobId: '1', kind: 'accepted', recipients: [recipient] }, cause)).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: [{ ...recipient, messageUuid: '' }],
    });
    expect(minimalResult({ jobId: '2', kind: 'failed', error: 'bad\u0000reason', outcomeUnknown: true }, cause)).to.deep.equal({
      jobId: '2',
      kind: 'failed',
      error: `failed; its error text could not be stored (${cause})`,
      outcomeUnknown: true,
    });
    const runAt = new Date('2026-12-02T00:00:00Z');
    expect(minimalResult({ jobId: '3', kind: 'deferred', error: 'x\u0000', runAt, outcomeUnknown: true, refundAttempt: false }, cause)).to.deep.equal({
      jobId: '3',
      kind: 'deferred',
      error: `deferred; its error text could not be stored (${cause})`,
      runAt,
      outcomeUnknown: true,
      refundAttempt: false,
    });
  });
});

describe('an acceptance checked against the recipients sent', () => {
  const context = {
    policy: { baseMs: 1_000, factor: 2, maxMs: 60_000, jitter: 0, maxAttempts: 5 },
    now: new Date('2026-12-02T00:00:00Z'),
    random: () => 0.5,
    unauthorizedRetryAt: new Date(0),
  };
  const row = (id: string, kind: 'to' | 'cc', email: string): RecipientRow => ({
    id,
    jobId: '1',
    position: Number(id),
    kind,
    email,
    name: null,
    status: 'pending',
    messageId: null,
    messageUuid: null,
    updatedAt: context.now,
  });
  const job = { id: '1', attempts: 1, maxAttempts: 5 };
  const accepted = (...emails: string[]): SendResult => ({
    jobId: '1',
    kind: 'accepted',
    recipients: emails.map((email, index) => ({ kind: 'to', email, messageId: String(576460765503091475n + BigInt(index)), messageUuid: '' })),
  });

  it('when every address sent has its id (an address given twice counts once), then the acceptance stands', () => {
    const rows = new Map([['1', [row('1', 'to', 'a@example.com'), row('2', 'cc', 'A@example.com')]]]);
    expect(checkAcceptances([accepted('a@example.com')], [job], rows, context)).to.deep.equal([accepted('a@example.com')]);
    const both: SendResult = {
      jobId: '1',
      kind: 'accepted',
      recipients: [
        { kind: 'to', email: 'a@example.com', messageId: '576460765503091475', messageUuid: '' },
        { kind: 'cc', email: 'a@example.com', messageId: '576460765503091476', messageUuid: '' },
      ],
    };
    expect(checkAcceptances([both], [job], rows, context)).to.deep.equal([both]);
  });

  it('when Mailjet names an address not sent, or leaves one out, then the job is deferred, look-up only, and a failed look-up ends it failed and explained, never resent', () => {
    const rows = new Map([['1', [row('1', 'to', 'a@example.com'), row('2', 'to', 'b@example.com')]]]);
    for (const [result, reason] of [
      [accepted('a@example.com', 'x@example.com'), 'its answer names an address that matches none sent'],
      [accepted('b@example.com'), 'its answer gives 1 of the 2 addresses sent a MessageID'],
    ] as const) {
      const [checked] = checkAcceptances([result], [job], rows, context);
      expect(checked).to.deep.equal({
        jobId: '1',
        kind: 'deferred',
        error: `Mailjet accepted it, but ${reason}: it is looked up by CustomID for its MessageIDs, never sent again`,
        runAt: new Date('2026-12-02T00:00:01Z'),
        outcomeUnknown: true,
        refundAttempt: false,
        lookUpOnly: true,
      });
      const failed = giveUpAfterLookUp({ ...job, attempts: 5, lastError: checked!.kind === 'deferred' ? checked!.error : null }, false);
      expect(failed).to.deep.include({ kind: 'failed', outcomeUnknown: true });
      expect(failed.kind === 'failed' && failed.error).to.match(
        /; the look-up could not be made, so its recipients' ids are unknown: it may well have been delivered/,
      );
    }
  });
});
