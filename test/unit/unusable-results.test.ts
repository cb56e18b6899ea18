// What a consumer records when a result cannot be recorded as it came: a record the database refuses
// for its data (a minimal one instead, no Mailjet text, never a resend), and an acceptance that does
// not give every recipient sent a usable id (looked up, never resent).
import { expect } from 'chai';

import { isDeterministicDatabaseError } from '../../src/domain/errors.js';
import type { ClaimedJob } from '../../src/domain/job.js';
import type { AcceptedRecipient, FoundMessage } from '../../src/domain/mailjet-outcome.js';
import type { RecipientRow } from '../../src/domain/recipient.js';
import { decideSendResults, giveUpAfterLookUp, minimalResult } from '../../src/domain/send-decision.js';
import { lookUpResult } from '../../src/domain/send-plan.js';

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
    const recipient = { recipientId: '7', messageId: '576460765503091475', messageUuid: 'u\u0000x' };
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
    policy: { baseMs: 1_000, factor: 2, maxMs: 60_000, jitter: 0, maxAttempts: 5, lookUpWindowMs: 3_600_000 },
    now: new Date('2026-12-02T00:00:00Z'),
    random: () => 0.5,
    resumeAt: new Date(0),
  };
  const row = (id: string, kind: RecipientRow['kind'], email: string, status: RecipientRow['status'] = 'pending'): RecipientRow => ({
    id,
    jobId: '1',
    position: Number(id),
    kind,
    email,
    name: null,
    status,
    messageId: null,
    messageUuid: null,
    updatedAt: context.now,
  });
  const job = { id: '1', attempts: 1, maxAttempts: 5 };
  const id = (index: number) => String(576460765503091475n + BigInt(index));
  const answered = (...entries: Array<[kind: 'to' | 'cc', email: string]>): AcceptedRecipient[] =>
    entries.map(([kind, email], index) => ({ kind, email, messageId: id(index), messageUuid: `u-${index}` }));
  const decide = (rows: RecipientRow[], recipients: AcceptedRecipient[]) =>
    decideSendResults([job], { kind: 'per-message', messages: [{ kind: 'accepted', recipients }] }, context, new Map([['1', rows]]))[0];
  const claimed = (lookUpOnly: boolean, rows: RecipientRow[], foundEarlier: FoundMessage[] = []) =>
    ({ id: '1', attempts: lookUpOnly ? 5 : 2, maxAttempts: 5, lastError: 'Mailjet 503', lookUpOnly, recipients: rows, foundEarlier }) as unknown as ClaimedJob;
  const found = (...emails: string[]) => emails.map((email, index) => ({ email, messageId: id(index), messageUuid: `u-${index}` }));

  it('when every address sent has its id, then the acceptance carries each recipient row with its ids, paired once', () => {
    const rows = [row('10', 'to', 'a@example.com'), row('11', 'cc', 'b@example.com')];
    expect(decide(rows, answered(['to', 'a@example.com'], ['cc', 'B@example.com']))).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: [
        { recipientId: '10', messageId: id(0), messageUuid: 'u-0' },
        { recipientId: '11', messageId: id(1), messageUuid: 'u-1' },
      ],
    });
    // A look-up (no kind) gives the same shape.
    expect(lookUpResult(claimed(false, rows), rows, found('b@example.com', 'a@example.com'), context)).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: [
        { recipientId: '11', messageId: id(0), messageUuid: 'u-0' },
        { recipientId: '10', messageId: id(1), messageUuid: 'u-1' },
      ],
    });
  });

  it('when an address given twice (To and Cc, or twice in To) gets one id, then both its rows get it, from a send or a look-up', () => {
    for (const rows of [
      [row('10', 'to', 'a@example.com'), row('11', 'cc', 'A@example.com')],
      [row('10', 'to', 'a@example.com'), row('11', 'to', 'a@example.com')],
    ]) {
      const both = [
        { recipientId: '10', messageId: id(0), messageUuid: 'u-0' },
        { recipientId: '11', messageId: id(0), messageUuid: 'u-0' },
      ];
      expect(decide(rows, answered(['to', 'a@example.com']))).to.deep.equal({ jobId: '1', kind: 'accepted', recipients: both });
      expect(lookUpResult(claimed(false, rows), rows, found('a@example.com'), context)).to.deep.equal({ jobId: '1', kind: 'accepted', recipients: both });
    }
    // Answered with an id of its own for each, each row keeps its own.
    const rows = [row('10', 'to', 'a@example.com'), row('11', 'cc', 'a@example.com')];
    expect(decide(rows, answered(['to', 'a@example.com'], ['cc', 'a@example.com']))).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: [
        { recipientId: '10', messageId: id(0), messageUuid: 'u-0' },
        { recipientId: '11', messageId: id(1), messageUuid: 'u-1' },
      ],
    });
  });

  it('when Mailjet names an address not sent, or leaves one out, then the job is deferred, look-up only, and a failed look-up ends it failed and explained, never resent', () => {
    const rows = [row('1', 'to', 'a@example.com'), row('2', 'to', 'b@example.com')];
    for (const [recipients, reason] of [
      [answered(['to', 'a@example.com'], ['to', 'x@example.com']), 'its answer names an address that matches none sent'],
      [answered(['to', 'b@example.com']), 'its answer gives 1 of the 2 addresses sent a MessageID'],
      [answered(['to', 'a@example.com'], ['to', 'a@example.com'], ['to', 'b@example.com']), 'its answer names an address that matches none sent'],
    ] as const) {
      const checked = decide(rows, [...recipients]);
      expect(checked).to.deep.equal({
        jobId: '1',
        kind: 'deferred',
        error: `Mailjet accepted it, but ${reason}: it is looked up by CustomID for its MessageIDs, never sent again`,
        runAt: new Date('2026-12-02T00:00:01Z'),
        outcomeUnknown: true,
        refundAttempt: false,
        lookUpOnly: true,
      });
      const failed = giveUpAfterLookUp(
        { ...job, attempts: 5, lastError: checked!.kind === 'deferred' ? checked!.error : null, acceptedUnresolved: true },
        false,
      );
      expect(failed).to.deep.include({ kind: 'failed', outcomeUnknown: true });
      expect(failed.kind === 'failed' && failed.error).to.match(
        /; the look-up could not be made, so its recipients' ids are unknown: it may well have been delivered/,
      );
    }
  });

  // A capital sigma lower-cases to σ or, at the end of a word, ς: JavaScript and Java write ς, Go and
  // the database's key σ. Whichever Mailjet answers, it is the address sent.
  it('when Mailjet answers ΟΔΟΣ@… lower-cased with a final sigma or without, then it is that address: accepted', () => {
    const rows = [row('1', 'to', 'ΟΔΟΣ@example.gr'), row('2', 'cc', 'ΣΑΣ@example.gr')];
    const pairs = [
      { recipientId: '1', messageId: id(0), messageUuid: 'u-0' },
      { recipientId: '2', messageId: id(1), messageUuid: 'u-1' },
    ];

    expect(decide(rows, answered(['to', 'οδος@example.gr'], ['cc', 'σασ@example.gr']))).to.deep.equal({ jobId: '1', kind: 'accepted', recipients: pairs });
    expect(lookUpResult(claimed(false, rows), rows, found('οδοσ@example.gr', 'σας@example.gr'), context)).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: pairs,
    });
  });

  it('when a look-up finds ΟΔΟΣ@… as οδος@… and not the other address, then the error names the address missing, not a message without an address sent', () => {
    const rows = [row('1', 'to', 'ΟΔΟΣ@example.gr'), row('2', 'cc', 'b@example.com')];
    const named = found('οδος@example.gr').map((message) => ({ ...message, named: true }));

    const result = lookUpResult(claimed(true, rows), rows, named, context);

    expect(result).to.deep.include({ kind: 'accepted', recipients: [{ recipientId: '1', messageId: id(0), messageUuid: 'u-0' }] });
    expect(JSON.stringify(result)).to.match(/its look-up found 1 of the 2 addresses sent: the last look-up gave no MessageID for b@example.com/);
  });

  it('when Mailjet answers an address sent with a Unicode domain in its ASCII form (or the other way), in any case, then it is that address: accepted, not looked up for an address that "matches none sent"', () => {
    const rows = [row('1', 'to', 'User@Bücher.example'), row('2', 'cc', 'ada@xn--caf-dma.example')];
    const pairs = [
      { recipientId: '1', messageId: id(0), messageUuid: 'u-0' },
      { recipientId: '2', messageId: id(1), messageUuid: 'u-1' },
    ];

    expect(decide(rows, answered(['to', 'user@xn--bcher-kva.example'], ['cc', 'ADA@café.example']))).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: pairs,
    });
    expect(lookUpResult(claimed(false, rows), rows, found('USER@xn--bcher-kva.example', 'ada@café.example'), context)).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: pairs,
    });
  });

  it('when a look-up finds some of the addresses sent, then the job is looked up again after a backoff, never resent, and the last look-up closes the rest as unknown', () => {
    const rows = [
      row('1', 'to', 'a@example.com'),
      row('2', 'cc', 'b@example.com'),
      row('3', 'cc', 'c@example.com'),
      row('4', 'bcc', 'gone@example.com', 'suppressed'),
    ];
    expect(lookUpResult(claimed(false, rows), rows, found('a@example.com'), context)).to.deep.equal({
      jobId: '1',
      kind: 'deferred',
      error: 'Mailjet accepted it, but its look-up found 1 of the 3 addresses sent: it is looked up by CustomID for its MessageIDs, never sent again',
      runAt: new Date('2026-12-02T00:00:02Z'),
      outcomeUnknown: true,
      refundAttempt: false,
      lookUpOnly: true,
      found: found('a@example.com'),
    });
    expect(lookUpResult(claimed(true, rows), rows, found('a@example.com', 'c@example.com'), context)).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: [
        { recipientId: '1', messageId: id(0), messageUuid: 'u-0' },
        { recipientId: '3', messageId: id(1), messageUuid: 'u-1' },
      ],
      unreached: {
        recipientIds: ['2'],
        error:
          'Mailjet accepted it, but its look-up found 2 of the 3 addresses sent: the last look-up gave no MessageID for b@example.com, so their outcome is unknown (they may well have been delivered) and no event can reach them',
      },
    });
    // An id the look-up gives two addresses says nothing of either: they are not found.
    const shared = [...found('a@example.com', 'c@example.com'), { email: 'b@example.com', messageId: id(1), messageUuid: 'u-x' }];
    expect(lookUpResult(claimed(true, rows), rows, shared, context)).to.deep.include({
      recipients: [{ recipientId: '1', messageId: id(0), messageUuid: 'u-0' }],
      unreached: {
        recipientIds: ['2', '3'],
        error:
          'Mailjet accepted it, but its look-up found 1 of the 3 addresses sent: the last look-up gave no MessageID for b@example.com, c@example.com, so their outcome is unknown (they may well have been delivered) and no event can reach them',
      },
    });
    // Found whole at the last look-up: accepted as any other.
    expect(lookUpResult(claimed(true, rows), rows, found('a@example.com', 'b@example.com', 'c@example.com'), context)).to.deep.include({ kind: 'accepted' });
  });
  it('when an earlier look-up found some addresses, then what it found stays found: a later look-up that finds others or fewer adds to it, one that cannot be made loses nothing', () => {
    const rows = [row('1', 'to', 'a@example.com'), row('2', 'cc', 'b@example.com'), row('3', 'cc', 'c@example.com')];
    const earlier = found('a@example.com');
    const pairOf = (recipientId: string, index: number) => ({ recipientId, messageId: id(index), messageUuid: `u-${index}` });
    const other = (email: string, index: number) => ({ email, messageId: id(index), messageUuid: `u-${index}` });

    // Others: b found now, a kept; c still missing, so the job is looked up again with both.
    expect(lookUpResult(claimed(false, rows, earlier), rows, [other('b@example.com', 1)], context)).to.deep.include({
      kind: 'deferred',
      error: 'Mailjet accepted it, but its look-up found 2 of the 3 addresses sent: it is looked up by CustomID for its MessageIDs, never sent again',
      found: [...earlier, other('b@example.com', 1)],
    });
    // Others, at the last look-up: accepted with every id found by any look-up.
    expect(lookUpResult(claimed(true, rows, [...earlier, other('b@example.com', 1)]), rows, [other('c@example.com', 2)], context)).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: [pairOf('1', 0), pairOf('2', 1), pairOf('3', 2)],
    });
    // Fewer (nothing, or the same address again), at the last look-up: the earlier ids are recorded, only the addresses no look-up found are closed.
    for (const last of [[], earlier]) {
      expect(lookUpResult(claimed(true, rows, [...earlier, other('b@example.com', 1)]), rows, last, context)).to.deep.equal({
        jobId: '1',
        kind: 'accepted',
        recipients: [pairOf('1', 0), pairOf('2', 1)],
        unreached: {
          recipientIds: ['3'],
          error:
            'Mailjet accepted it, but its look-up found 2 of the 3 addresses sent: the last look-up gave no MessageID for c@example.com, so their outcome is unknown (they may well have been delivered) and no event can reach them',
        },
      });
    }
    // A last look-up that cannot be made waits for one that can, within LOOKUP_RETRY_WINDOW_MS...
    expect(lookUpResult(claimed(true, rows, earlier), rows, undefined, context, 'Mailjet 503')).to.deep.include({ kind: 'deferred', refundAttempt: false });
    // ...past it, the earlier ids are recorded all the same.
    const unansweredSince = new Date(context.now.getTime() - context.policy.lookUpWindowMs);
    expect(lookUpResult({ ...claimed(true, rows, earlier), lookUpFailingSince: unansweredSince }, rows, undefined, context)).to.deep.equal({
      jobId: '1',
      kind: 'accepted',
      recipients: [pairOf('1', 0)],
      unreached: {
        recipientIds: ['2', '3'],
        error:
          'Mailjet accepted it, but its look-up found 1 of the 3 addresses sent: the last look-up could not be made, and none gave a MessageID for b@example.com, c@example.com, so their outcome is unknown (they may well have been delivered) and no event can reach them',
      },
    });
    // An id a later look-up gives another address says nothing of either: neither is found.
    expect(lookUpResult(claimed(true, rows, earlier), rows, [other('b@example.com', 0)], context)).to.deep.include({ kind: 'failed' });
  });

  // Rows naming the job's CustomID without ContactAlt (Mailjet or a proxy ignored ShowContactAlt):
  // Mailjet took a message of the job. Read as "not found", the job was sent again.
  describe('when a look-up gives rows of the job without their address', () => {
    const unaddressed = (...indexes: number[]) => indexes.map((index) => ({ email: null, messageId: id(index), messageUuid: `u-${index}` }));

    it('then a job sent to one address is accepted with the first of them, its rows given twice included, a suppressed one left out', () => {
      for (const rows of [
        [row('1', 'to', 'a@example.com')],
        [row('1', 'to', 'a@example.com'), row('2', 'cc', 'A@example.com')],
        [row('1', 'to', 'a@example.com'), row('2', 'bcc', 'gone@example.com', 'suppressed')],
      ]) {
        const sentTo = rows.filter((r) => r.status !== 'suppressed').map((r) => ({ recipientId: r.id, messageId: id(3), messageUuid: 'u-3' }));
        for (const lookUpOnly of [false, true]) {
          expect(lookUpResult(claimed(lookUpOnly, rows), rows, unaddressed(3, 4), context)).to.deep.equal({ jobId: '1', kind: 'accepted', recipients: sentTo });
        }
      }
    });

    it('then a job sent to several addresses is never sent again: looked up once more, then the addresses not found end failed, outcome unknown', () => {
      const rows = [row('1', 'to', 'a@example.com'), row('2', 'cc', 'b@example.com')];
      expect(lookUpResult(claimed(false, rows), rows, unaddressed(0, 1), context)).to.deep.equal({
        jobId: '1',
        kind: 'deferred',
        error:
          'Mailjet accepted it, but its look-up found 0 of the 2 addresses sent, and messages of the job without an address sent: it is looked up by CustomID for its MessageIDs, never sent again',
        runAt: new Date('2026-12-02T00:00:02Z'),
        outcomeUnknown: true,
        refundAttempt: false,
        lookUpOnly: true,
        found: [],
      });
      expect(lookUpResult(claimed(true, rows), rows, unaddressed(0, 1), context)).to.deep.equal({
        jobId: '1',
        kind: 'failed',
        error:
          'Mailjet accepted it, but its look-up found 0 of the 2 addresses sent, and messages of the job without an address sent: the last look-up gave no MessageID for a@example.com, b@example.com, so their outcome is unknown (they may well have been delivered) and no event can reach them',
        outcomeUnknown: true,
      });
      // A row of the job whose address matches none sent is one of them too; one that does not name the job is not.
      const stray = { email: 'josé@example.com', messageId: id(5), messageUuid: 'u-5' };
      expect(lookUpResult(claimed(false, [rows[0]!]), [rows[0]!], [{ ...stray, named: true }], context)).to.deep.equal({
        jobId: '1',
        kind: 'accepted',
        recipients: [{ recipientId: '1', messageId: id(5), messageUuid: 'u-5' }],
      });
      expect(lookUpResult(claimed(true, rows), rows, [{ ...stray, named: true }], context)).to.deep.include({ kind: 'failed', outcomeUnknown: true });
      expect(lookUpResult(claimed(false, [rows[0]!]), [rows[0]!], [stray], context)).to.equal(undefined);
      // With one address found by address, the other is closed: never paired with a row whose address is unknown.
      expect(lookUpResult(claimed(true, rows), rows, [...found('a@example.com'), ...unaddressed(1)], context)).to.deep.include({
        kind: 'accepted',
        recipients: [{ recipientId: '1', messageId: id(0), messageUuid: 'u-0' }],
      });
    });
  });
});
