import { expect } from 'chai';

import { BACKLOG_CLAIM_BATCHES, createClaimPacing, MAX_CLAIM_HOLD_MS, MAX_CLAIM_SPACING_MS } from '../../src/domain/claim-pacing.js';

describe('claim pacing', () => {
  it('when claims come back full (a backlog), then every consumer may claim at once', () => {
    const pacing = createClaimPacing({ batchSize: 50, spacingMs: () => 12, callMs: () => undefined });
    pacing.claimed(50);
    expect([pacing.delayMs(1_000), pacing.delayMs(1_000), pacing.delayMs(1_000)]).to.deep.equal([0, 0, 0]);
  });

  it('when the queue is caught up, then the first claim goes at once and the others are spaced by a call per slot', () => {
    const pacing = createClaimPacing({ batchSize: 50, spacingMs: () => 12.5, callMs: () => undefined });
    pacing.claimed(3);
    expect(pacing.delayMs(1_000), 'first').to.equal(0);
    expect(pacing.delayMs(1_000), 'second, at the same time').to.equal(13);
    expect(pacing.delayMs(1_010), 'second, 10 ms later').to.equal(3);
    expect(pacing.delayMs(1_012.5), 'second, a spacing later').to.equal(0);
    expect(pacing.delayMs(1_012.5), 'third').to.equal(13);
  });

  it('when a claim of a caught-up queue comes back full, then the waiting consumers are told to claim and no longer wait', () => {
    const pacing = createClaimPacing({ batchSize: 50, spacingMs: () => 20, callMs: () => undefined });
    expect(pacing.claimed(0), 'caught up').to.equal(false);
    expect(pacing.delayMs(1_000)).to.equal(0);
    expect(pacing.delayMs(1_000)).to.equal(20);
    expect(pacing.claimed(50), 'a backlog again').to.equal(true);
    expect(pacing.delayMs(1_000)).to.equal(0);
    expect(pacing.claimed(50), 'still a backlog').to.equal(false);
  });

  it('when Mailjet is slow, then no claim waits longer than the cap', () => {
    const pacing = createClaimPacing({ batchSize: 50, spacingMs: () => 30_000, callMs: () => undefined });
    pacing.claimed(1);
    pacing.delayMs(0);
    expect(pacing.delayMs(0)).to.equal(MAX_CLAIM_SPACING_MS);
  });

  it('when there is a backlog and Mailjet answers fast, then a claim asks for several batches; when the queue is caught up, for one', () => {
    const pacing = createClaimPacing({ batchSize: 50, spacingMs: () => 12, callMs: () => 20 });
    expect(pacing.claimSize(), 'at start').to.equal(50 * BACKLOG_CLAIM_BATCHES);
    pacing.claimed(7);
    expect(pacing.claimSize(), 'caught up').to.equal(50);
    pacing.claimed(50);
    expect(pacing.claimSize(), 'a full batch: a backlog again').to.equal(50 * BACKLOG_CLAIM_BATCHES);
  });

  for (const [callMs, batches] of [
    [undefined, 1],
    [MAX_CLAIM_HOLD_MS / 8, 4],
    [MAX_CLAIM_HOLD_MS / 3, 3],
    [MAX_CLAIM_HOLD_MS / 2, 2],
    [MAX_CLAIM_HOLD_MS / 2 + 1, 1],
    [5 * MAX_CLAIM_HOLD_MS, 1],
  ] as const) {
    it(`when there is a backlog and a call takes ${callMs ?? 'no time seen yet'} ms, then a claim asks for ${batches} batch(es): its last call goes within the hold time`, () => {
      const pacing = createClaimPacing({ batchSize: 50, spacingMs: () => 12, callMs: () => callMs });
      pacing.claimed(50);
      expect(pacing.claimSize()).to.equal(50 * batches);
    });
  }
});
