import { expect } from 'chai';

import { createCoalescer } from '../../src/services/coalescer.js';

describe('coalescer', () => {
  it('when requests arrive while a flush runs, then they go together in the next flush, each answered with its own result', async () => {
    const flushes: number[][] = [];
    let release!: () => void;
    const firstFlushHeld = new Promise<void>((resolve) => (release = resolve));
    const coalescer = createCoalescer(async (inputs: number[]) => {
      flushes.push(inputs);
      if (flushes.length === 1) {
        await firstFlushHeld;
      }
      return inputs.map((input) => input * 10);
    }, 3);

    const first = coalescer.run(1);
    const later = [2, 3, 4, 5].map((input) => coalescer.run(input));
    release();

    expect(await first).to.equal(10);
    expect(await Promise.all(later)).to.deep.equal([20, 30, 40, 50]);
    // At most 3 per flush, in arrival order.
    expect(flushes).to.deep.equal([[1], [2, 3, 4], [5]]);
  });

  it('when a flush of several fails, then each request is tried alone and only the failing one is rejected', async () => {
    const flushes: string[][] = [];
    let release!: () => void;
    const firstFlushHeld = new Promise<void>((resolve) => (release = resolve));
    const coalescer = createCoalescer(async (inputs: string[]) => {
      flushes.push(inputs);
      if (flushes.length === 1) {
        await firstFlushHeld;
      }
      if (inputs.includes('bad')) {
        throw new Error('cannot write bad');
      }
      return inputs.map((input) => input.toUpperCase());
    }, 10);

    const first = coalescer.run('a');
    const results = ['b', 'bad', 'c'].map((input) => coalescer.run(input).catch((error: Error) => error.message));
    release();

    expect(await first).to.equal('A');
    expect(await Promise.all(results)).to.deep.equal(['B', 'cannot write bad', 'C']);
    expect(flushes).to.deep.equal([['a'], ['b', 'bad', 'c'], ['b'], ['bad'], ['c']]);
  });
});
