// How many Mailjet calls one process keeps in flight. A fixed number either wastes what Mailjet
// allows (a slow Mailjet: each call holds its slot longer) or floods it (a fast one). So the limit
// adapts, between 1 and a configured maximum:
// - it starts at the maximum (before the first call nothing says less is enough);
// - it halves on a 429 or a transient failure (multiplicative decrease), once per episode: the calls
//   already in flight when it halved fail together with the one that made it halve (16 calls cut off
//   by one outage), and say no more than it did, so only a call started after the cut cuts again;
// - it grows back by about one per round of calls while every slot is busy and calls succeed
//   (additive increase);
// - with a rate limit (calls per second), it never exceeds what Little's law says that rate needs:
//   rate × the time a call holds its slot, plus one spare. More would only wait at the send gate
//   holding leased jobs. The rate itself is enforced by the send gate, not here.
// Pure: the caller measures each call's duration and reports it.

export interface InFlightLimitOptions {
  /** The most calls in flight at once (MAILJET_MAX_IN_FLIGHT, or fewer consumers). */
  max: number;
  /** Mailjet calls per second allowed (MAILJET_RATE_LIMIT); 0 = no limit. */
  callsPerSecond: number;
  /** The limit before any call was seen; the maximum by default. */
  initial?: number;
}

export interface CallReport {
  /** How long the call held its slot, in ms (Mailjet's latency plus recording its result). */
  durationMs: number;
  /** Mailjet answered 429 or failed transiently (5xx, timeout): it is telling us to slow down. */
  slowDown: boolean;
  /** Calls in flight when this one ended, itself included. */
  inFlight: number;
  /** What `cuts()` said when this call started. */
  cutsAtStart: number;
}

export interface InFlightLimit {
  /** Calls that may be in flight now: an integer in [1, max]. */
  current(): number;
  /** How many times the limit has been cut so far: read as a call starts, and reported when it ends. */
  cuts(): number;
  /** Reports a call that ended; returns the new limit. */
  callEnded(report: CallReport): number;
  /** The smoothed duration of a call, in ms (undefined before the first). */
  durationMs(): number | undefined;
}

/** Weight of the newest duration in the moving average. */
const DURATION_WEIGHT = 0.2;
/** Slots kept above rate × duration, for the jitter of call durations. */
const SPARE_SLOTS = 1;

export function createInFlightLimit(options: InFlightLimitOptions): InFlightLimit {
  const max = Math.max(1, Math.floor(options.max));
  const callsPerSecond = Math.max(0, options.callsPerSecond);
  // Fractional between whole steps: additive increase adds 1/window per full call.
  let window = Math.min(max, Math.max(1, options.initial ?? max));
  let duration: number | undefined;
  let cuts = 0;

  const rateCap = (): number => (callsPerSecond > 0 && duration !== undefined ? Math.ceil((callsPerSecond * duration) / 1000 - 1e-6) + SPARE_SLOTS : Infinity);
  const current = (): number => Math.max(1, Math.min(max, Math.floor(window), rateCap()));

  return {
    current,
    durationMs: () => duration,
    cuts: () => cuts,
    callEnded({ durationMs, slowDown, inFlight, cutsAtStart }) {
      const sample = Math.max(0, durationMs);
      duration = duration === undefined ? sample : duration + DURATION_WEIGHT * (sample - duration);
      if (slowDown) {
        if (cutsAtStart >= cuts) {
          window = Math.max(1, Math.floor(window / 2));
          cuts += 1;
        }
      } else if (inFlight >= current()) {
        // Only a full window says more slots would be used.
        window = Math.min(max, window + 1 / window);
      }
      // Past the rate's need there is nothing to gain: stay there, so a faster Mailjet does not leave a large window behind.
      const cap = rateCap();
      if (window > cap) {
        window = cap;
      }
      return current();
    },
  };
}
