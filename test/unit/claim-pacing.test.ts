import { expect } from 'chai';

import { BACKLOG_CLAIM_BATCHES, claimSpacingMs, createClaimPacing, MAX_CLAIM_HOLD_MS, MAX_CLAIM_SPACING_MS } from '../../src/domain/claim-pacing.js';

describe('claim pacing', () => {
  it('when claims come back full (a backlog), then every consumer may claim at once', () => {
    const pacing = createClaimPacing({ batchSize: 50, callMs: () => 96, slots: () => 16 });
    pacing.claimed(50);
    expect([pacing.delayMs(1_000), pacing.delayMs(1_000), pacing.delayMs(1_000)]).to.deep.equal([0, 0, 0]);
  });

  it('when the queue is caught up, then the first claim goes at once and the others are spaced by a call per slot kept busy', () => {
    const pacing = createClaimPacing({ batchSize: 50, callMs: () => 100, slots: () => 16 });
    pacing.claimed(3);
    expect(pacing.delayMs(1_000), 'first').to.equal(0);
    expect(pacing.delayMs(1_000), 'second, at the same time').to.equal(13);
    expect(pacing.delayMs(1_010), 'second, 10 ms later').to.equal(3);
    expect(pacing.delayMs(1_012.5), 'second, a spacing later').to.equal(0);
    expect(pacing.delayMs(1_012.5), 'third').to.equal(13);
  });

  it('when a claim of a caught-up queue comes back full, then the waiting consumers are told to claim and no longer wait', () => {
    const pacing = createClaimPacing({ batchSize: 50, callMs: () => 160, slots: () => 16 });
    expect(pacing.claimed(0), 'caught up').to.equal(false);
    expect(pacing.delayMs(1_000)).to.equal(0);
    expect(pacing.delayMs(1_000)).to.equal(20);
    expect(pacing.claimed(50), 'a backlog again').to.equal(true);
    expect(pacing.delayMs(1_000)).to.equal(0);
    expect(pacing.claimed(50), 'still a backlog').to.equal(false);
  });

  it('when the queue is caught up, then its claims keep half the call slots busy and the other half free for a burst or a slow call', () => {
    const callMs = 200;
    const slots = 16;
    expect(claimSpacingMs(callMs, slots), 'spacing').to.equal(25);
    const pacing = createClaimPacing({ batchSize: 50, callMs: () => callMs, slots: () => slots });
    pacing.claimed(3);
    const claimsWithinACall: number[] = [];
    for (let at = 0; at < callMs; at += 1) {
      if (pacing.delayMs(at) === 0) {
        claimsWithinACall.push(at);
      }
    }
    expect(claimsWithinACall, 'claims started while the first call is out').to.have.length(8);
  });

  it('when the limit allows a single call, then claims are spaced by a whole call, up to the cap', () => {
    expect(claimSpacingMs(30, 1)).to.equal(30);
    expect(claimSpacingMs(200, 1)).to.equal(MAX_CLAIM_SPACING_MS);
    expect(claimSpacingMs(0, 16), 'before any call').to.equal(0);
  });

  it('when Mailjet is slow, then no claim waits longer than the cap', () => {
    const pacing = createClaimPacing({ batchSize: 50, callMs: () => 240_000, slots: () => 16 });
    pacing.claimed(1);
    pacing.delayMs(0);
    expect(pacing.delayMs(0)).to.equal(MAX_CLAIM_SPACING_MS);
  });

  it('when there is a backlog and Mailjet answers fast, then a claim asks for several batches; when the queue is caught up, for one', () => {
    const pacing = createClaimPacing({ batchSize: 50, callMs: () => 96, slots: () => 16 });
    expect(pacing.claimSize(), 'before any answer').to.equal(50);
    pacing.answered(20);
    expect(pacing.claimSize(), 'a backlog at start').to.equal(50 * BACKLOG_CLAIM_BATCHES);
    pacing.claimed(7);
    expect(pacing.claimSize(), 'caught up').to.equal(50);
    pacing.claimed(50);
    expect(pacing.claimSize(), 'a full batch: a backlog again').to.equal(50 * BACKLOG_CLAIM_BATCHES);
  });

  for (const [answerMs, batches] of [
    [0, 4],
    [MAX_CLAIM_HOLD_MS / 8, 4],
    [MAX_CLAIM_HOLD_MS / 3, 3],
    [MAX_CLAIM_HOLD_MS / 2, 2],
    [MAX_CLAIM_HOLD_MS / 2 + 1, 1],
    [MAX_CLAIM_HOLD_MS, 1],
    [5 * MAX_CLAIM_HOLD_MS, 1],
  ] as const) {
    it(`when there is a backlog and Mailjet answers in ${answerMs} ms, then a claim asks for ${batches} batch(es): Mailjet answers its calls within the hold time`, () => {
      const pacing = createClaimPacing({ batchSize: 50, callMs: () => 96, slots: () => 16 });
      pacing.answered(answerMs);
      pacing.claimed(50);
      expect(pacing.claimSize()).to.equal(50 * batches);
    });
  }

  it('when Mailjet slows down, then claims shrink as its smoothed answer time grows', () => {
    const pacing = createClaimPacing({ batchSize: 50, callMs: () => 96, slots: () => 16 });
    pacing.answered(10);
    pacing.claimed(50);
    const sizes = [pacing.claimSize()];
    for (let call = 0; call < 20; call += 1) {
      pacing.answered(5 * MAX_CLAIM_HOLD_MS);
      sizes.push(pacing.claimSize());
    }
    expect(sizes[0]).to.equal(50 * BACKLOG_CLAIM_BATCHES);
    expect(sizes.at(-1)).to.equal(50);
    expect(sizes, 'never grows').to.deep.equal([...sizes].sort((a, b) => b - a));
  });
});
