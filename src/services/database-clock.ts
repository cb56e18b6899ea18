// The database's clock, kept by this process's monotonic clock. The times jetpost computes for
// PostgreSQL to compare with its now() (a job's run_at when queued or retried, a webhook's next
// attempt and its app's pause, since when a job's look-ups go unanswered) and the times it reads
// back (the next job due) are taken on it, not on Date.now(): a step of this host's wall clock (an
// NTP correction, `date -s`) moved each of them by the step, so a step forward by an hour held every
// new message and every retry for that hour, and made idle consumers poll without pause, and one
// backwards sent retries at once. The offset to the database is read at start and again every
// minute in the background (an NTP step on the database's host is followed within that minute).
// One time still goes out on this host's clock: a webhook's webhook-timestamp, which its receiver
// compares with its own clock and refuses 5 minutes off. So each read compares this host's clock with
// the database's and says so when they differ by more than a minute: a host 10 minutes off had every
// webhook it signed refused for a day, then failed, with nothing in the log but the receivers' 4xx.
import type { Logger } from '../log.js';

export interface DatabaseClock {
  /** The database's time now, as far as this process knows it. */
  readonly now: () => Date;
  /** Reads the database's time (at start; now() does it again every RESYNC_MS by itself). */
  readonly sync: () => Promise<void>;
}

const RESYNC_MS = 60_000;
/**
 * A read slower than this (a busy database, or an event loop busy when the answer came) places the
 * database's clock less well than the last one did: the last one is kept.
 */
const MAX_ROUND_TRIP_MS = 1_000;
/** This host's clock further than this from the database's is said in the log (receivers of webhooks allow 5 minutes). */
export const HOST_CLOCK_SKEW_WARN_MS = 60_000;

export interface DatabaseClockOptions {
  /**
   * The database's time (db/pool.ts databaseNow). It calls `sending` as its statement goes, once it
   * holds a connection: the wait for one (a busy pool) is then no part of the round trip halved.
   */
  read: (sending: () => void) => Promise<Date>;
  monotonicMs?: () => number;
  /** This host's wall clock: only compared with the database's (and taken until the first read). */
  wallMs?: () => number;
  log?: Logger;
}

/** 600000 → "10 minutes", 75000 → "75 s". */
function describeSkew(ms: number): string {
  const abs = Math.abs(ms);
  return abs >= 120_000 ? `${Math.round(abs / 60_000)} minutes` : `${Math.round(abs / 1000)} s`;
}

export function createDatabaseClock({
  read,
  monotonicMs = () => performance.now(),
  // eslint-disable-next-line no-restricted-properties
  wallMs = () => Date.now(),
  log,
}: DatabaseClockOptions): DatabaseClock {
  // Until the first read: this host's clock.
  let offsetMs = wallMs() - monotonicMs();
  let offsetRead = false;
  let skewSaid = false;
  /** Says when this host's clock moves further than HOST_CLOCK_SKEW_WARN_MS from the database's, and when it comes back. */
  function compareHostClock(): void {
    const hostAheadMs = Math.round(wallMs() - (monotonicMs() + offsetMs));
    const off = Math.abs(hostAheadMs) > HOST_CLOCK_SKEW_WARN_MS;
    if (off && !skewSaid) {
      log?.warn(
        `this host's clock is ${describeSkew(hostAheadMs)} ${hostAheadMs > 0 ? 'ahead of' : 'behind'} the database's: jetpost keeps its times on the database's clock, but signs webhooks with this host's time (webhook-timestamp), which receivers refuse more than 5 minutes from their own clock. Set this host's clock right (NTP)`,
        { component: 'clock', hostClockAheadMs: hostAheadMs },
      );
    } else if (!off && skewSaid) {
      log?.info("this host's clock agrees with the database's again", { component: 'clock', hostClockAheadMs: hostAheadMs });
    }
    skewSaid = off;
  }
  let syncedAt: number | undefined;
  let syncing: Promise<void> | undefined;
  async function sync(): Promise<void> {
    let sent = monotonicMs();
    const at = await read(() => {
      sent = monotonicMs();
    });
    const answered = monotonicMs();
    syncedAt = answered;
    if (offsetRead && answered - sent > MAX_ROUND_TRIP_MS) {
      return;
    }
    // The database read its clock between the two: halfway is the best guess.
    offsetMs = at.getTime() - (sent + answered) / 2;
    offsetRead = true;
    compareHostClock();
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
