// What the dashboard shows, pure: its rows, the throughput minutes, how a search is read, and a job's
// timeline assembled from its status changes and Mailjet events.
import type { StoredEvent } from './event.js';
import { isId } from './input-schemas.js';
import type { AdminJobRow } from './job.js';
import type { DepthStatus } from './queue-figures.js';
import type { RecipientRow } from './recipient.js';
import type { StatusChangeRow } from './status-change.js';

/** Counting stops here: a count of a million rows would cost more than the page is worth. */
export const DEPTH_COUNT_CAP = 10_000;

/** One status's row of the overview's queue table. */
export interface QueueDepthRow {
  status: DepthStatus;
  /** At most DEPTH_COUNT_CAP; `capped` says there are more. */
  jobs: number;
  capped: boolean;
}

export interface ThroughputMinute {
  /** The minute's start. */
  minute: Date;
  enqueued: number;
  accepted: number;
}

export const THROUGHPUT_MINUTES = 60;

export interface Overview {
  depth: QueueDepthRow[];
  /** PostgreSQL's estimate of the jobs kept (pg_class.reltuples); null before the table was ever analysed. */
  approximateJobs: number | null;
  throughput: ThroughputMinute[];
}

const MINUTE_MS = 60_000;

/** The start (epoch ms) of the minute `at` (epoch ms) falls in: the chart's minutes, and those counts are kept by. */
export function minuteStart(at: number): number {
  return Math.floor(at / MINUTE_MS) * MINUTE_MS;
}

/** The start of the throughput window: the minute THROUGHPUT_MINUTES - 1 minutes before `now`'s. */
export function throughputSince(now: Date): Date {
  return new Date(minuteStart(now.getTime()) - (THROUGHPUT_MINUTES - 1) * MINUTE_MS);
}

/** One entry per minute of the window, the minutes with no job included; counts of the same minute (several sources) add up. */
export function throughputMinutes(now: Date, counts: readonly ThroughputMinute[]): ThroughputMinute[] {
  const since = throughputSince(now).getTime();
  const window = Array.from({ length: THROUGHPUT_MINUTES }, (_, i): ThroughputMinute => ({
    minute: new Date(since + i * MINUTE_MS),
    enqueued: 0,
    accepted: 0,
  }));
  for (const count of counts) {
    const entry = window[(count.minute.getTime() - since) / MINUTE_MS];
    if (entry) {
      entry.enqueued += count.enqueued;
      entry.accepted += count.accepted;
    }
  }
  return window;
}

/** A job in a list: its app, and the recipient it was found by (or its first one). */
export interface JobListRow extends AdminJobRow {
  recipient: string | null;
}

export type JobSearchField = 'job_id' | 'custom_id' | 'recipient';

export interface JobSearch {
  field: JobSearchField;
  value: string;
}

/**
 * What a search box's text looks for when the operator did not say: an address has an @, a job id
 * is digits that fit a bigint (a longer number, a MessageID past 2^63 say, can be no job's id), and
 * anything else is a custom_id.
 */
export function searchField(text: string): JobSearchField {
  if (text.includes('@')) {
    return 'recipient';
  }
  return isId(text) ? 'job_id' : 'custom_id';
}

/**
 * A job's timeline shows at most this many status changes (its first) and as many Mailjet events (its
 * latest): of them, as many as its page holds (PAGE_BYTES), taken in turns.
 */
export const TIMELINE_LIMIT = 500;

export interface JobDetail {
  job: AdminJobRow;
  subject: string | null;
  from: string | null;
  recipients: RecipientRow[];
  /** The job's creation: its timeline's first entry. */
  created: TimelineEntry;
  /** Its first status changes (at most TIMELINE_LIMIT, read within PAGE_BYTES of details), oldest first. */
  changes: TimelineEntry[];
  /** Its later status changes not read, at most OMITTED_EVENTS_COUNTED (that many means that many or more). */
  changesOmitted: number;
  /** Its latest Mailjet events (at most TIMELINE_LIMIT, read within PAGE_BYTES of details), oldest first. */
  events: TimelineEntry[];
  /** Its earlier Mailjet events not read, at most OMITTED_EVENTS_COUNTED. */
  eventsOmitted: number;
  /** The database schema whose tables hold the job's whole history, what a page leaves out included. */
  schema: string;
}

export interface TimelineEntry {
  at: Date;
  kind: 'created' | 'status' | 'event';
  /** The recipient it concerns; null for the job itself. */
  recipient: string | null;
  /** e.g. "queued", "accepted → sent", "open". */
  what: string;
  /** The error, the bounce reason, the clicked URL… as text; null when there is nothing more. */
  detail: string | null;
}

function describe(details: Record<string, unknown> | null): string | null {
  if (details === null || Object.keys(details).length === 0) {
    return null;
  }
  return Object.entries(details)
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(', ');
}

/** What of an event's payload explains it (the rest is Mailjet's bookkeeping); all among the keys findEventsOfJobs reads. */
const EVENT_DETAIL_FIELDS = ['url', 'error_related_to', 'error', 'comment', 'hard_bounce', 'source', 'agent'];

/** The entries of a job's history: its creation, its status changes and its Mailjet events, each in the order given. */
export function timelineEntries(
  job: AdminJobRow,
  recipients: readonly RecipientRow[],
  changes: readonly StatusChangeRow[],
  events: readonly StoredEvent[],
): Pick<JobDetail, 'created' | 'changes' | 'events'> {
  const emailOf = new Map(recipients.map((recipient) => [recipient.id, recipient.email]));
  return {
    created: { at: job.createdAt, kind: 'created', recipient: null, what: 'queued', detail: job.sendAt ? `send_at: ${job.sendAt.toISOString()}` : null },
    changes: changes.map((change): TimelineEntry => ({
      at: change.createdAt,
      kind: 'status',
      recipient: change.recipient,
      what: change.oldStatus ? `${change.oldStatus} → ${change.newStatus}` : change.newStatus,
      detail: describe(change.details),
    })),
    events: events.map((event): TimelineEntry => ({
      at: event.occurredAt,
      kind: 'event',
      recipient: (event.recipientId && emailOf.get(event.recipientId)) ?? event.email,
      what: event.type,
      detail: describe(
        Object.fromEntries(
          EVENT_DETAIL_FIELDS.filter((field) => event.payload[field] !== undefined && event.payload[field] !== '').map((field) => [
            field,
            event.payload[field],
          ]),
        ),
      ),
    })),
  };
}

/**
 * The timeline a page shows, oldest first: the creation, the first `changesShown` status changes and
 * the latest `eventsShown` events (what fitted), with how many of each it leaves out in all (those the
 * read left out too).
 */
export function shownTimeline(
  detail: Pick<JobDetail, 'created' | 'changes' | 'changesOmitted' | 'events' | 'eventsOmitted'>,
  changesShown: number,
  eventsShown: number,
): { entries: TimelineEntry[]; changesOmitted: number; eventsOmitted: number } {
  const changes = detail.changes.slice(0, changesShown);
  const events = detail.events.slice(detail.events.length - eventsShown);
  return {
    // Stable: equal times keep creation, then changes, then events.
    entries: [detail.created, ...changes, ...events].sort((a, b) => a.at.getTime() - b.at.getTime()),
    changesOmitted: detail.changesOmitted + detail.changes.length - changes.length,
    eventsOmitted: detail.eventsOmitted + detail.events.length - events.length,
  };
}
