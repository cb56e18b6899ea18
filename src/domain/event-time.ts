// Mailjet's event times, pure: the time jetpost keeps of an event, and the one its metrics count.
// No event is refused for its time: Mailjet's clock, or a replayed callback, may be off, and the
// event still happened.

/** How far past jetpost's clock an event may be dated and still be counted at its own time: clocks differ a little. */
export const EVENT_CLOCK_SKEW_MS = 60_000;

/** RFC 3339's range (the years 0001 to 9999), which every time the API answers with must fit. */
const EARLIEST_MS = -62_135_596_800_000;
const LATEST_MS = 253_402_300_799_000;

/**
 * When an event happened, from its `time` (Unix seconds): as Mailjet gives it, or the nearest end of
 * the years 0001 to 9999 for a time outside them (the event's payload keeps `time` as it came).
 */
export function eventOccurredAt(seconds: number): Date {
  return new Date(Math.min(Math.max(seconds * 1000, EARLIEST_MS), LATEST_MS));
}

/**
 * The time from a job's acceptance to its recipient's `sent` event, as the metrics count it: the
 * event's time held to [acceptedAt, now + EVENT_CLOCK_SKEW_MS], so that an event dated before its
 * message was accepted counts 0 and one dated in the year 2999 no more than the time since the
 * acceptance. db/events-repo.ts (STORE_AND_APPLY) does the same in SQL.
 */
export function acceptedToSentMs(occurredAtMs: number, acceptedAtMs: number, nowMs: number): number {
  return Math.max(0, Math.min(occurredAtMs, nowMs + EVENT_CLOCK_SKEW_MS) - acceptedAtMs);
}
