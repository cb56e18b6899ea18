// When the consumers of a process may claim, and how much, pure: at once while there is a backlog,
// spaced out while the queue is caught up (see consumer-pool.ts for why). The caller gives the time.
//
// A claim of a backlog takes several batches (each still sent in calls of at most one batch): a
// claim has a fixed cost in PostgreSQL (planning, the walk down the claim index past the jobs other
// claims just took, a commit) of about twenty jobs' worth, so four batches per claim cut the
// database's work per message by about a third when Mailjet answers fast. The batches of a claim
// go one call after the other, so the last waits for Mailjet's answers to the calls before it: a
// claim takes only as many as Mailjet answers within MAX_CLAIM_HOLD_MS, at the answer time seen
// (one with a slow Mailjet, where the database is not the bound and a big claim would only hold
// jobs back and leave an uneven tail at the end of a backlog). The time to record the answers is
// left out on purpose: a busy database is when bigger claims help. A caught-up queue is claimed one
// batch at a time: what arrived since the last claim, spread over the consumers.
//
// The claims of a caught-up queue are spaced so that they keep about half the call slots busy.
// Spaced by a call's duration divided by all the slots, they kept every slot busy: each slot freed
// just as the next claim was due, so calls that ran late (a busy machine slows the recording of
// answers) left the next messages waiting for a call to end, up to a whole Mailjet round trip. With
// half the slots free, a due claim finds a free consumer unless that many calls run late at once,
// and a claim that comes back full (messages piled up meanwhile) sends the free ones to claim too.

export interface ClaimPacingOptions {
  /** Jobs a claim asks for: a claim that returns this many found a backlog. */
  batchSize: number;
  /** A call's smoothed duration, in ms, from its start to its answer recorded (0 before the first). */
  callMs: () => number;
  /** The calls allowed in flight now. */
  slots: () => number;
}

/** The most batches a claim of a backlog takes at once. */
export const BACKLOG_CLAIM_BATCHES = 4;
/** How long Mailjet may take to answer the calls before a claim's last batch, at the answer time seen. */
export const MAX_CLAIM_HOLD_MS = 200;
/** Weight of the newest answer time in its moving average. */
const ANSWER_WEIGHT = 0.2;

export interface ClaimPacing {
  /**
   * How many jobs the next claim asks for: one batch while the queue is caught up or before Mailjet
   * answered a call; during a backlog, as many batches (up to BACKLOG_CLAIM_BATCHES) as Mailjet answers within MAX_CLAIM_HOLD_MS.
   */
  claimSize(): number;
  /** Mailjet answered a call (or failed to) after `ms`. */
  answered(ms: number): void;
  /** 0: claim now (and the next claim of a caught-up queue waits a spacing); otherwise the ms to wait. */
  delayMs(nowMs: number): number;
  /** A claim returned `count` jobs. True when that ends a caught-up spell: the waiting consumers may claim at once. */
  claimed(count: number): boolean;
}

/** A message waits at most this long for a claim, whatever a slow Mailjet makes the spacing. */
export const MAX_CLAIM_SPACING_MS = 50;
/** The share of the call slots that the claims of a caught-up queue keep busy; the rest absorb a burst or a slow call. */
export const CAUGHT_UP_SLOT_SHARE = 0.5;

/** The spacing of a caught-up queue's claims: about `slots × CAUGHT_UP_SLOT_SHARE` calls of `callMs` in flight, capped. */
export function claimSpacingMs(callMs: number, slots: number): number {
  return Math.min(MAX_CLAIM_SPACING_MS, Math.max(0, callMs) / Math.max(1, slots * CAUGHT_UP_SLOT_SHARE));
}

export function createClaimPacing({ batchSize, callMs, slots }: ClaimPacingOptions): ClaimPacing {
  let caughtUp = false;
  let nextClaimAt = -Infinity;
  let answerMs: number | undefined;
  return {
    claimSize() {
      if (caughtUp || answerMs === undefined) {
        return batchSize;
      }
      return batchSize * Math.max(1, Math.min(BACKLOG_CLAIM_BATCHES, Math.floor(MAX_CLAIM_HOLD_MS / Math.max(1, answerMs))));
    },
    answered(ms) {
      const sample = Math.max(0, ms);
      answerMs = answerMs === undefined ? sample : answerMs + ANSWER_WEIGHT * (sample - answerMs);
    },
    delayMs(nowMs) {
      if (!caughtUp) {
        return 0;
      }
      const waitMs = nextClaimAt - nowMs;
      if (waitMs > 0) {
        return Math.ceil(waitMs);
      }
      nextClaimAt = nowMs + claimSpacingMs(callMs(), slots());
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
