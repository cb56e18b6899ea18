// A wall clock for this process (Date, Date.now) that a test steps by an hour, as an NTP step or an
// operator's `date -s` moves the host's, while performance.now(), the timers and PostgreSQL's now()
// keep running as they were: the test database's clock is the point of comparison, as a database on
// another host would be. Installed before the service starts, so that what takes Date.now as its
// clock (`now = Date.now`) takes this one.
export interface NodeClock {
  /** Moves the wall clock by `ms` (negative: back). */
  jump(ms: number): void;
  restore(): void;
}

export function installNodeClock(): NodeClock {
  const RealDate = globalThis.Date;
  const realNow = RealDate.now.bind(RealDate);
  let offsetMs = 0;
  const now = () => realNow() + offsetMs;
  class SteppedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) {
        super(now());
      } else {
        // new Date(value) and new Date(year, month, …): the clock plays no part.
        super(...(args as [number, number, number, number, number, number, number]));
      }
    }

    static override now(): number {
      return now();
    }
  }
  globalThis.Date = SteppedDate as DateConstructor;
  return {
    jump(ms) {
      offsetMs += ms;
    },
    restore() {
      globalThis.Date = RealDate;
    },
  };
}
