// What of a page's lists fits in its bytes (domain/page-budget.ts), and what a job's timeline shows
// of what fitted (domain/dashboard.ts shownTimeline).
import { expect } from 'chai';

import { type JobDetail, shownTimeline, type TimelineEntry } from '../../src/domain/dashboard.js';
import { fitInTurns, type RowSizes } from '../../src/domain/page-budget.js';

/** A list of rows of these sizes that records which rows were measured. */
function sized(sizes: readonly number[], asked: number[] = []): RowSizes {
  return {
    count: sizes.length,
    bytesOf: (index) => {
      asked.push(index);
      return sizes[index]!;
    },
  };
}

describe('fitting rows in a page', () => {
  it('keeps every row when they all fit, and none of an empty list', () => {
    expect(fitInTurns([sized([10, 20, 30]), sized([])], 60)).to.deep.equal([3, 0]);
    expect(fitInTurns([], 100)).to.deep.equal([]);
  });

  it('keeps the first rows that fit, and stops at the first that does not: no gap, even if a later row is small', () => {
    expect(fitInTurns([sized([40, 40, 40, 1])], 100)).to.deep.equal([2]);
    expect(fitInTurns([sized([101, 1])], 100)).to.deep.equal([0]);
    expect(fitInTurns([sized([10])], 0)).to.deep.equal([0]);
    expect(fitInTurns([sized([10])], -5)).to.deep.equal([0]);
  });

  it('takes the lists in turns: one list of large rows does not crowd out another', () => {
    const large = Array.from({ length: 100 }, () => 1_000);
    const small = Array.from({ length: 100 }, () => 10);
    expect(fitInTurns([sized(large), sized(small)], 5_050)).to.deep.equal([5, 5]);
    // Once the large list stops, the small one goes on with what is left.
    expect(fitInTurns([sized(large), sized(small)], 5_500)).to.deep.equal([5, 50]);
  });

  it('measures only the rows it reaches, each once', () => {
    const asked: number[] = [];
    fitInTurns(
      [
        sized(
          Array.from({ length: 1_000 }, () => 100),
          asked,
        ),
      ],
      1_000,
    );
    expect(asked).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe("a job's shown timeline", () => {
  const entry = (kind: TimelineEntry['kind'], second: number): TimelineEntry => ({
    at: new Date(Date.UTC(2030, 0, 1, 0, 0, second)),
    kind,
    recipient: null,
    what: `${kind} ${second}`,
    detail: null,
  });
  const detail: Pick<JobDetail, 'created' | 'changes' | 'changesOmitted' | 'events' | 'eventsOmitted'> = {
    created: entry('created', 0),
    changes: [entry('status', 1), entry('status', 3), entry('status', 5)],
    changesOmitted: 7,
    events: [entry('event', 2), entry('event', 4), entry('event', 6)],
    eventsOmitted: 0,
  };

  it('shows the creation, the first changes and the latest events that fitted, oldest first, and counts the rest with those the reads left out', () => {
    const shown = shownTimeline(detail, 1, 2);
    expect(shown.entries.map((e) => e.what)).to.deep.equal(['created 0', 'status 1', 'event 4', 'event 6']);
    expect([shown.changesOmitted, shown.eventsOmitted]).to.deep.equal([9, 1]);
  });

  it('with nothing fitted, shows the creation alone', () => {
    const shown = shownTimeline(detail, 0, 0);
    expect(shown.entries.map((e) => e.what)).to.deep.equal(['created 0']);
    expect([shown.changesOmitted, shown.eventsOmitted]).to.deep.equal([10, 3]);
  });
});
