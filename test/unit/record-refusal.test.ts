// What a consumer does when the database refuses a record: retry what may pass later, and keep only
// a minimal record of what the database refuses for its data (no Mailjet text, never a resend).
import { expect } from 'chai';

import { isDeterministicDatabaseError } from '../../src/domain/errors.js';
import { minimalResult } from '../../src/domain/send-decision.js';

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
