import { expect } from 'chai';

import { type ByteBudget, createByteBudget, type Reservation } from '../../src/domain/byte-budget.js';

/** Reserves `bytes`, noting its name in `granted` when it gets in (at once or later). */
function reserve(budget: ByteBudget, name: string, bytes: number, granted: string[], options?: { behind?: boolean }): Reservation {
  const reservation = budget.reserve(bytes, () => granted.push(name), options);
  if (reservation.granted) {
    granted.push(name);
  }
  return reservation;
}

describe('byte budget', () => {
  it('when reservations fit, then they are granted at once and counted until released', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const a = reserve(budget, 'a', 60, granted);
    const b = reserve(budget, 'b', 40, granted);
    expect(a.granted && b.granted).to.equal(true);
    expect(budget.inUse()).to.equal(100);
    a.release();
    b.release();
    expect(budget.inUse()).to.equal(0);
    expect(granted).to.deep.equal(['a', 'b']);
  });

  it('when some reservations go behind, then every other one overtakes them, and each kind keeps its arrival order', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const first = reserve(budget, 'first', 100, granted);
    reserve(budget, 'slow1', 50, granted, { behind: true });
    reserve(budget, 'fast1', 50, granted);
    reserve(budget, 'slow2', 50, granted, { behind: true });
    reserve(budget, 'fast2', 50, granted);

    first.release();

    expect(granted).to.deep.equal(['first', 'fast1', 'fast2']);
    expect(budget.waiting()).to.equal(2);
    // With only those behind waiting, another one goes in at once when it fits.
    const second = createByteBudget(100);
    const order: string[] = [];
    const held = reserve(second, 'held', 60, order);
    reserve(second, 'slow', 50, order, { behind: true });
    expect(reserve(second, 'small', 40, order).granted).to.equal(true);
    held.release();
    expect(order).to.deep.equal(['held', 'small', 'slow']);
  });

  it('when the budget is full, then the waiting reservations are granted in arrival order as room is made', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const first = reserve(budget, 'first', 100, granted);
    const waiting = ['w1', 'w2', 'w3'].map((name) => reserve(budget, name, 30, granted));
    expect(waiting.map((reservation) => reservation.granted)).to.deep.equal([false, false, false]);
    expect(budget.waiting()).to.equal(3);

    first.release();

    expect(granted).to.deep.equal(['first', 'w1', 'w2', 'w3']);
    expect(budget.inUse()).to.equal(90);
    expect(budget.waiting()).to.equal(0);
  });

  it('when small reservations keep arriving behind a large one that waits, then none overtakes it and it gets in once those ahead are over', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const held = [reserve(budget, 's0', 30, granted), reserve(budget, 's1', 30, granted)];
    reserve(budget, 'large', 80, granted);
    // Room for a small one remains (40 bytes), but it would overtake the large one: it waits.
    const behind = [reserve(budget, 's2', 10, granted), reserve(budget, 's3', 10, granted)];
    expect(behind.map((reservation) => reservation.granted)).to.deep.equal([false, false]);

    held[0]!.release();
    expect(granted).to.deep.equal(['s0', 's1']);
    held[1]!.release();

    // The large one first, then those behind it as far as they fit (80 + 10 + 10).
    expect(granted).to.deep.equal(['s0', 's1', 'large', 's2', 's3']);
    expect(budget.inUse()).to.equal(100);
  });

  it('when a waiting reservation is released (its client left, or it waited too long), then it holds nothing and those behind it move up', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const held = reserve(budget, 'held', 50, granted);
    const large = reserve(budget, 'large', 80, granted);
    reserve(budget, 'small', 20, granted);

    large.release();

    // The head that did not fit is gone: the one behind it fits now, without waiting for `held`.
    expect(granted).to.deep.equal(['held', 'small']);
    expect(budget.inUse()).to.equal(70);
    expect(budget.waiting()).to.equal(0);
    held.release();
    expect(budget.inUse()).to.equal(20);
  });

  it('when a reservation is released more than once, on every path that ends a request, then only the first release counts', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const a = reserve(budget, 'a', 60, granted);
    const waiting = reserve(budget, 'w', 60, granted);
    waiting.release();
    waiting.release();
    a.release();
    a.release();
    expect(budget.inUse()).to.equal(0);
    expect(budget.waiting()).to.equal(0);
    expect(granted).to.deep.equal(['a']);
    // The budget is whole again: a reservation of all of it gets in at once.
    expect(reserve(budget, 'all', 100, granted).granted).to.equal(true);
  });

  it('when reservations grow as their bodies arrive, then together they never pass the budget, a growth that does not fit adds nothing, and a release gives back all that was added', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const a = reserve(budget, 'a', 10, granted);
    const b = reserve(budget, 'b', 10, granted);
    expect(a.grow(40)).to.equal(true);
    expect(b.grow(40)).to.equal(true);
    expect(budget.inUse()).to.equal(100);
    expect(a.grow(1)).to.equal(false);
    expect(budget.inUse()).to.equal(100);

    // A request waiting for room does not stop one in progress from growing into the room made.
    const waiting = reserve(budget, 'w', 30, granted);
    b.release();
    expect(granted).to.deep.equal(['a', 'b', 'w']);
    expect(a.grow(20)).to.equal(true);
    expect(budget.inUse()).to.equal(100);
    expect(waiting.grow(1)).to.equal(false);

    a.release();
    waiting.release();
    expect(budget.inUse()).to.equal(0);
    // Neither a released nor a waiting reservation grows.
    expect(a.grow(1)).to.equal(false);
    const full = reserve(budget, 'full', 100, granted);
    const queued = reserve(budget, 'queued', 1, granted);
    expect(queued.grow(1)).to.equal(false);
    full.release();
    expect(budget.inUse()).to.equal(1);
  });

  it('when a reservation is larger than the whole budget, then it is refused outright (the configuration rules it out), not queued forever', () => {
    const budget = createByteBudget(100);
    expect(() => budget.reserve(101, () => {})).to.throw(RangeError, /101 bytes of a budget of 100/);
    expect(() => createByteBudget(0)).to.throw(RangeError);
    expect(budget.waiting()).to.equal(0);
  });

  it('when bytes held already are taken while the budget is full and others wait, then they are counted at once, past the capacity, and those waiting get in once they are given back too', () => {
    const budget = createByteBudget(100);
    const granted: string[] = [];
    const full = reserve(budget, 'full', 100, granted);
    reserve(budget, 'w', 60, granted);

    const taken = budget.take(30);

    expect(taken.granted).to.equal(true);
    expect(budget.inUse()).to.equal(130);
    expect(budget.waiting()).to.equal(1);
    full.release();
    // 30 + 60 fit: the one waiting gets in beside what was taken.
    expect(granted).to.deep.equal(['full', 'w']);
    expect(budget.inUse()).to.equal(90);
    taken.release();
    taken.release();
    expect(budget.inUse()).to.equal(60);
    expect(() => budget.take(-1)).to.throw(RangeError);
  });
});
