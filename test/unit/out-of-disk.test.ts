// Readiness's memory of PostgreSQL refusing a write for lack of disk (services/out-of-disk.ts).
import { expect } from 'chai';

import { createOutOfDiskWatch } from '../../src/services/out-of-disk.js';

const diskFull = () => Object.assign(new Error('could not extend file "base/5/16528": No space left on device'), { code: '53100' });

describe('the out-of-disk watch', () => {
  it('when a 53100 is met, then it says so until a write goes through, or until the hold passes with none met since', () => {
    let now = 1_000_000;
    const watch = createOutOfDiskWatch(() => now, 30_000);
    watch.saw(Object.assign(new Error('the database system is starting up'), { code: '57P03' }));
    expect(watch.state(), 'another error').to.equal(undefined);

    watch.saw(diskFull());
    expect(watch.state()).to.match(/^PostgreSQL is out of disk space \(53100, could not extend file "base\/5\/16528": No space left on device\)/);
    watch.wrote();
    expect(watch.state(), 'after a write').to.equal(undefined);

    watch.saw(diskFull());
    now += 30_000;
    expect(watch.state(), 'at the end of the hold').not.to.equal(undefined);
    now += 1;
    expect(watch.state(), 'past the hold').to.equal(undefined);
  });
});
