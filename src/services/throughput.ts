// Jobs enqueued and accepted per minute, for the dashboard's chart. Counted from the jobs table, a
// busy hour (a million jobs) cost a visit to each of them, past the statement timeout. Each process
// counts instead what it enqueued and what Mailjet accepted (from the bus, after each commit) and
// adds its counts to throughput_minutes every few seconds (workers/throughput-flusher.ts, and once
// more at shutdown): the chart reads at most 60 rows, plus what this process has not written yet. A
// process killed outright loses its last few seconds of counts; nothing else is counted twice or lost.
import type { Bus } from '../bus.js';
import type { Pool } from '../db/pool.js';
import { addMinuteCounts, readMinuteCounts } from '../db/throughput-repo.js';
import { minuteStart, type ThroughputMinute } from '../domain/dashboard.js';

/** Counts kept while the database cannot take them are dropped past this age (the table keeps a day). */
const KEPT_MS = 24 * 3600 * 1000;

export interface ThroughputCounter {
  /** Writes the counts not written yet; those a failed write could not add are kept for the next one. */
  flush(): Promise<void>;
  /** The counts of every minute from `since` on that has any: the table's and this process's not written yet. */
  read(since: Date): Promise<ThroughputMinute[]>;
  /** Stops counting (the bus listeners go). */
  close(): void;
}

/** `now`: the database's clock (ms), as the other replicas count their minutes in throughput_minutes. */
export function createThroughputCounter({ pool, bus, now }: { pool: Pool; bus: Bus; now: () => number }): ThroughputCounter {
  /** By minute (its start, epoch ms): counts not written to the table yet. */
  let pending = new Map<number, ThroughputMinute>();
  /**
   * Flushes and reads run one at a time: a read that took the unwritten counts while a flush was
   * writing them, or just before, would count them twice once that flush commits.
   */
  let last: Promise<unknown> = Promise.resolve();
  function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const run = last.then(work, work);
    last = run.catch(() => undefined);
    return run;
  }

  function counts(at: number): ThroughputMinute {
    const minute = minuteStart(at);
    let entry = pending.get(minute);
    if (!entry) {
      entry = { minute: new Date(minute), enqueued: 0, accepted: 0 };
      pending.set(minute, entry);
    }
    return entry;
  }

  const unsubscribe = [
    bus.on('jobs:enqueued', ({ count }) => {
      counts(now()).enqueued += count;
    }),
    bus.on('jobs:settled', ({ status, count }) => {
      if (status === 'accepted') {
        counts(now()).accepted += count;
      }
    }),
  ];

  return {
    flush: () =>
      oneAtATime(async () => {
        if (pending.size === 0) {
          return;
        }
        const written = pending;
        pending = new Map();
        try {
          await addMinuteCounts(pool, [...written.values()]);
        } catch (error) {
          const oldest = now() - KEPT_MS;
          for (const [minute, entry] of written) {
            if (minute >= oldest) {
              const kept = counts(minute);
              kept.enqueued += entry.enqueued;
              kept.accepted += entry.accepted;
            }
          }
          throw error;
        }
      }),

    read: (since) =>
      oneAtATime(async () => {
        const rows = await readMinuteCounts(pool, since);
        return [...rows, ...[...pending.values()].map((entry) => ({ ...entry }))];
      }),

    close() {
      for (const off of unsubscribe) {
        off();
      }
    },
  };
}
