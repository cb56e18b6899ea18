import { expect } from 'chai';

import { createClaimBudget, heldBytes } from '../../src/domain/claim-budget.js';

describe('the claim budget of a process', () => {
  it('when claims are in flight, then only as many start as their reservations fit', () => {
    const budget = createClaimBudget({ totalBytes: 100, claimBytes: 40 });

    expect([budget.reserve(), budget.reserve(), budget.reserve()]).to.deep.equal([40, 40, undefined]);
    expect(budget.fits()).to.equal(false);
  });

  it('when a claim returns, then its reservation becomes what it holds, and a release that makes room says so', () => {
    const budget = createClaimBudget({ totalBytes: 100, claimBytes: 40 });
    budget.reserve();
    budget.settle(75);
    expect(budget.inUse()).to.equal(75);
    expect(budget.reserve(), 'a reservation of 40 over 75 held').to.equal(undefined);

    expect(budget.release(10), 'still no room for 40').to.equal(false);
    expect(budget.release(65)).to.equal(true);
    expect(budget.inUse()).to.equal(0);
    expect(budget.release(0), 'there was room already').to.equal(false);
  });

  it('when a claim returns less than it reserved, then the rest is given back, and that it made room is said', () => {
    const budget = createClaimBudget({ totalBytes: 100, claimBytes: 40 });
    budget.reserve();
    budget.reserve();
    expect(budget.fits()).to.equal(false);

    expect(budget.settle(5), 'room for a third claim').to.equal(true);
    expect(budget.settle(0), 'there was room already').to.equal(false);
    expect(budget.inUse()).to.equal(5);
    expect(budget.reserve()).to.equal(40);
  });

  it('when one claim may ask for more than the whole budget, then it asks for the budget', () => {
    expect(createClaimBudget({ totalBytes: 10, claimBytes: 60 }).reserve()).to.equal(10);
  });
});

describe('the bytes a claimed message holds', () => {
  it('counts its text, attachments included, and a little per value', () => {
    const attachment = 'A'.repeat(5000);
    const bytes = heldBytes({ subject: 'Hi', html: 'x'.repeat(1000), attachments: [{ filename: 'a.pdf', content: attachment }], sandbox: false });

    expect(bytes).to.be.within(6000, 6200);
  });
});
