// The database's clock, kept by this process's monotonic clock. The times jetpost computes for
// PostgreSQL to compare with its now() (a job's run_at when queued or retried, a webhook's next
// attempt and its app's pause, since when a job's look-ups go unanswered) and the times it reads
// back (the next job due) are taken on it, not on Date.now(): a step of this host's wall clock (an
// NTP correction, `date -s`) moved each of them by the step, so a step forward by an hour held every
// new message and every retry for that hour, and made idle consumers poll without pause, and one
// backwards sent retries at once. The offset to the database is read at start and again every
// minute in the background (an NTP step on the database's host is followed within that minute).
export interface DatabaseClock {
  /** The database's time now, as far as this process knows it. */
  readonly now: () => Date;
  /** Reads the database's time (at start; now() does it again every RESYNC_MS by itself). */
  readonly sync: () => Promise<void>;
}

const RESYNC_MS = 60_000;
/**
 * A read slower than this (waiting for a connection of a busy pool, most of it before the query went)
 * places the database's clock less well than the last one did: the last one is kept.
 */
const MAX_ROUND_TRIP_MS = 1_000;

export interface DatabaseClockOptions {
  /** The database's now() (db/pool.ts databaseNow). */
  read: () => Promise<Date>;
  monotonicMs?: () => number;
}

export function createDatabaseClock({ read, monotonicMs = () => performance.now() }: DatabaseClockOptions): DatabaseClock {
  // Until the first read: this host's clock.
  // eslint-disable-next-line no-restricted-properties
  let offsetMs = Date.now() - monotonicMs();
  let offsetRead = false;
  let syncedAt: number | undefined;
  let syncing: Promise<void> | undefined;
  async function sync(): Promise<void> {
    const sent = monotonicMs();
    const at = await read();
    const answered = monotonicMs();
    syncedAt = answered;
    if (offsetRead && answered - sent > MAX_ROUND_TRIP_MS) {
      return;
    }
    // The database read its clock between the two: halfway is the best guess.
    offsetMs = at.getTime() - (sent + answered) / 2;
    offsetRead = true;
  }
  return {
    now() {
      const mono = monotonicMs();
      if (syncing === undefined && (syncedAt === undefined || mono - syncedAt >= RESYNC_MS)) {
        // A failed read keeps the last offset (the database away is the callers' business) and is tried again a minute later.
        syncedAt = mono;
        syncing = sync()
          .catch(() => undefined)
          .finally(() => {
            syncing = undefined;
          });
      }
      return new Date(mono + offsetMs);
    },
    sync,
  };
}
