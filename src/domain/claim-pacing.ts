// When the consumers of a process may claim, and how much, pure: at once while there is a backlog,
// spaced out while the queue is caught up (see consumer-pool.ts for why). The caller gives the time.
//
// A claim of a backlog takes several batches (each still sent in calls of at most one batch): a
// claim has a fixed cost in PostgreSQL (planning, the walk down the claim index past the jobs other
// claims just took, a commit) of about twenty jobs' worth, so four batches per claim cut the
// database's work per message by about a third when Mailjet answers fast. The batches of a claim
// go one call after the other, so the last waits for the calls before it: a claim takes only as
// many as a call's duration lets go out within MAX_CLAIM_HOLD_MS (one with a slow Mailjet, where
// the database is not the bound and a big claim would only hold jobs back and leave an uneven tail
// at the end of a backlog). A caught-up queue is claimed one batch at a time: what arrived since the
// last claim, spread over the consumers.

export interface ClaimPacingOptions {
  /** Jobs a claim asks for: a claim that returns this many found a backlog. */
  batchSize: number;
  /** The spacing of claims while caught up, in ms: a call's duration divided by the calls allowed in flight. */
  spacingMs: () => number;
  /** A Mailjet call's duration, in ms, smoothed (undefined before the first call ended). */
  callMs: () => number | undefined;
}

/** The most batches a claim of a backlog takes at once. */
export const BACKLOG_CLAIM_BATCHES = 4;
/** How long the calls before a claim's last batch may take, at the call duration seen. */
export const MAX_CLAIM_HOLD_MS = 400;

export interface ClaimPacing {
  /**
   * How many jobs the next claim asks for: one batch while the queue is caught up or before a call
   * ended; during a backlog, as many batches (up to BACKLOG_CLAIM_BATCHES) as go out within MAX_CLAIM_HOLD_MS.
   */
  claimSize(): number;
  /** 0: claim now (and the next claim of a caught-up queue waits a spacing); otherwise the ms to wait. */
  delayMs(nowMs: number): number;
  /** A claim returned `count` jobs. True when that ends a caught-up spell: the waiting consumers may claim at once. */
  claimed(count: number): boolean;
}

/** A message waits at most this long for a claim, whatever a slow Mailjet makes the spacing. */
export const MAX_CLAIM_SPACING_MS = 50;

export function createClaimPacing({ batchSize, spacingMs, callMs }: ClaimPacingOptions): ClaimPacing {
  let caughtUp = false;
  let nextClaimAt = -Infinity;
  return {
    claimSize() {
      const duration = callMs();
      if (caughtUp || duration === undefined) {
        return batchSize;
      }
      return batchSize * Math.max(1, Math.min(BACKLOG_CLAIM_BATCHES, Math.floor(MAX_CLAIM_HOLD_MS / Math.max(1, duration))));
    },
    delayMs(nowMs) {
      if (!caughtUp) {
        return 0;
      }
      const waitMs = nextClaimAt - nowMs;
      if (waitMs > 0) {
        return Math.ceil(waitMs);
      }
      nextClaimAt = nowMs + Math.min(MAX_CLAIM_SPACING_MS, Math.max(0, spacingMs()));
      return 0;
    },
    claimed(count) {
      const backlog = count >= batchSize;
      const endsCaughtUp = backlog && caughtUp;
      caughtUp = !backlog;
      if (backlog) {
        nextClaimAt = -Infinity;
      }
      return endsCaughtUp;
    },
  };
}
