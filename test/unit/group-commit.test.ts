import { expect } from 'chai';

import { createGroupCommit } from '../../src/services/group-commit.js';

interface Item {
  id: number;
  weight?: number;
  size?: number;
  key?: string;
  fail?: boolean;
}

/** A group commit over items that records each batch it writes. */
function recorder(options: { maxWeight?: number; maxSize?: number; maxInFlight?: number; reject?: boolean } = {}) {
  const batches: number[][] = [];
  const commit = createGroupCommit<Item, string>({
    write(items) {
      batches.push(items.map((item) => item.id));
      if (options.reject) {
        return Promise.reject(new Error('the whole batch failed'));
      }
      return Promise.resolve(items.map((item) => (item.fail ? new Error(`item ${item.id} refused`) : `done ${item.id}`)));
    },
    weight: (item) => item.weight ?? 1,
    maxWeight: options.maxWeight ?? 100,
    ...(options.maxSize === undefined ? {} : { size: { of: (item: Item) => item.size ?? 0, max: options.maxSize } }),
    maxInFlight: options.maxInFlight ?? 1,
    exclusiveKey: (item) => item.key,
  });
  return { batches, commit };
}

describe('group commit (services/group-commit.ts)', () => {
  it('when items arrive in the same turn, then they are written in one batch and each gets its own answer', async () => {
    const { batches, commit } = recorder();
    const answers = await Promise.all([1, 2, 3].map((id) => commit({ id })));
    expect(answers).to.deep.equal(['done 1', 'done 2', 'done 3']);
    expect(batches).to.deep.equal([[1, 2, 3]]);
  });

  it('when one item of a batch fails on its own, then only its caller gets the error', async () => {
    const { commit } = recorder();
    const settled = await Promise.allSettled([commit({ id: 1 }), commit({ id: 2, fail: true }), commit({ id: 3 })]);
    expect(settled.map((result) => result.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).to.have.property('message', 'item 2 refused');
  });

  it('when the whole write fails, then every caller of the batch gets the error', async () => {
    const { commit } = recorder({ reject: true });
    const settled = await Promise.allSettled([commit({ id: 1 }), commit({ id: 2 })]);
    expect(settled.map((result) => result.status)).to.deep.equal(['rejected', 'rejected']);
  });

  it('when items weigh more than a batch holds, then they are split, and an item heavier than a batch goes alone', async () => {
    const { batches, commit } = recorder({ maxWeight: 10 });
    await Promise.all([commit({ id: 1, weight: 6 }), commit({ id: 2, weight: 6 }), commit({ id: 3, weight: 50 }), commit({ id: 4, weight: 1 })]);
    expect(batches).to.deep.equal([[1], [2], [3], [4]]);
  });

  it('when items are larger together than a batch holds by size, though few, then they are split by size too, and an item larger than a batch goes alone', async () => {
    const { batches, commit } = recorder({ maxWeight: 10, maxSize: 100 });
    await Promise.all([
      commit({ id: 1, size: 60 }),
      commit({ id: 2, size: 40 }),
      commit({ id: 3, size: 1 }),
      commit({ id: 4, size: 500 }),
      commit({ id: 5, size: 1 }),
    ]);
    expect(batches).to.deep.equal([[1, 2], [3], [4], [5]]);
  });

  it('when two items share an exclusive key, then the later waits for the next batch and the others do not', async () => {
    const { batches, commit } = recorder();
    await Promise.all([commit({ id: 1, key: 'k' }), commit({ id: 2, key: 'k' }), commit({ id: 3, key: 'other' }), commit({ id: 4 })]);
    expect(batches).to.deep.equal([[1, 3, 4], [2]]);
  });

  it('when a batch is being written, then later items wait and go together in the next one', async () => {
    let release: () => void = () => undefined;
    const batches: number[][] = [];
    const commit = createGroupCommit<Item, number>({
      async write(items) {
        batches.push(items.map((item) => item.id));
        if (batches.length === 1) {
          await new Promise<void>((resolve) => {
            release = resolve;
          });
        }
        return items.map((item) => item.id);
      },
      weight: () => 1,
      maxWeight: 100,
      maxInFlight: 1,
    });
    const first = commit({ id: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    const later = [commit({ id: 2 }), commit({ id: 3 })];
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches).to.deep.equal([[1]]);
    release();
    expect(await Promise.all([first, ...later])).to.deep.equal([1, 2, 3]);
    expect(batches).to.deep.equal([[1], [2, 3]]);
  });

  it('when a batch hangs, then the items waiting behind it fail after maxWait and are never written', async () => {
    const batches: number[][] = [];
    let release: () => void = () => undefined;
    const commit = createGroupCommit<Item, number>({
      async write(items) {
        batches.push(items.map((item) => item.id));
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return items.map((item) => item.id);
      },
      weight: () => 1,
      maxWeight: 100,
      maxInFlight: 1,
      maxWait: { ms: 30, error: () => new Error('waited too long') },
    });
    const first = commit({ id: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    const waiting = commit({ id: 2 });

    const failure = await waiting.then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).to.equal('waited too long');
    release();
    expect(await first).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches).to.deep.equal([[1]]);
  });

  it('when a batch fails in a way that would fail the others (failsWaiting), then the waiting items get that error at once', async () => {
    const batches: number[][] = [];
    let fail: (error: Error) => void = () => undefined;
    const commit = createGroupCommit<Item, number>({
      async write(items) {
        batches.push(items.map((item) => item.id));
        await new Promise<void>((_, reject) => {
          fail = reject;
        });
        return [];
      },
      weight: () => 1,
      maxWeight: 100,
      maxInFlight: 1,
      failsWaiting: (error) => (error as Error).message === 'database away',
    });
    const first = commit({ id: 1 }).catch((error: Error) => error.message);
    await new Promise((resolve) => setImmediate(resolve));
    const waiting = commit({ id: 2 }).catch((error: Error) => error.message);

    fail(new Error('database away'));

    expect(await Promise.all([first, waiting])).to.deep.equal(['database away', 'database away']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches).to.deep.equal([[1]]);
  });

  it('when a batch of several fails as a whole and writeAloneAfter allows, then each item is written alone and only the failing one is rejected', async () => {
    const batches: string[][] = [];
    let release!: () => void;
    const firstBatchHeld = new Promise<void>((resolve) => (release = resolve));
    const commit = createGroupCommit<string, string>({
      async write(items) {
        batches.push([...items]);
        if (batches.length === 1) {
          await firstBatchHeld;
        }
        if (items.includes('bad')) {
          throw new Error('cannot write bad');
        }
        return items.map((item) => item.toUpperCase());
      },
      weight: () => 1,
      maxWeight: 10,
      maxInFlight: 1,
      writeAloneAfter: () => true,
    });

    const first = commit('a');
    await new Promise((resolve) => setImmediate(resolve));
    const results = ['b', 'bad', 'c'].map((item) => commit(item).catch((error: Error) => error.message));
    release();

    expect(await first).to.equal('A');
    expect(await Promise.all(results)).to.deep.equal(['B', 'cannot write bad', 'C']);
    expect(batches).to.deep.equal([['a'], ['b', 'bad', 'c'], ['b'], ['bad'], ['c']]);
  });

  it('when writeAloneAfter refuses the error, then every item of the failed batch gets it and none is written again', async () => {
    const batches: number[][] = [];
    const commit = createGroupCommit<number, number>({
      write(items) {
        batches.push([...items]);
        return Promise.reject(new Error('the database is away'));
      },
      weight: () => 1,
      maxWeight: 10,
      maxInFlight: 1,
      writeAloneAfter: () => false,
    });
    const settled = await Promise.allSettled([commit(1), commit(2)]);
    expect(settled.map((result) => result.status)).to.deep.equal(['rejected', 'rejected']);
    expect(batches).to.deep.equal([[1, 2]]);
  });
});
