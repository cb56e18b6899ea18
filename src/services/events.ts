// Receives a Mailjet callback body: its valid events are stored and applied, its elements that can
// never be applied are kept aside in rejected_events, and the caller answers 200 only once all of it
// is committed (Mailjet retries anything else, every 30 s for a day).
//
// The events go in in transactions of about EVENTS_PER_TRANSACTION, one after the other. A retried
// callback finds the events of the transactions that did commit as duplicates (by dedupe key) and
// stores the rest, and status rules that only move forward make the order of arrival irrelevant, so
// a failure half-way through loses nothing. Bounded transactions keep the locks, the statement sizes
// and the time any row stays locked bounded, whatever the size of the callback.
//
// Callbacks that arrive together share those transactions (group commit): their parts go in one
// statement and one commit, up to EVENTS_PER_TRANSACTION events, instead of paying a commit each.
// Each is answered once the transaction holding its events committed; when a shared one fails,
// each part is written again alone, so that one callback's failure is never another's.
//
// A large body is not held as objects all at once: it is parsed and checked whole first, keeping
// only where each event is and what orders it (domain/event-parse.ts), and each transaction's events
// are parsed again when it is written. Memory then follows the body's text and a small record per
// event, not the events as objects.
import { createHash } from 'node:crypto';

import type { Bus } from '../bus.js';
import { deleteEvents, type LateMatch, lockJobsOfMessages, lockMessagesExclusive, matchEvents, storeAndApplyEvents } from '../db/events-repo.js';
import type { NotifyChannels } from '../db/notify.js';
import { type Pool, type Queryable, withTransaction } from '../db/pool.js';
import { insertRejectedEvents, type RejectedEventRow } from '../db/rejected-events-repo.js';
import { isHoldersAddress } from '../domain/email-address.js';
import { AppError, isDatabaseUnavailable, ServiceUnavailableError } from '../domain/errors.js';
import { eventEffect } from '../domain/event-application.js';
import {
  type EventRef,
  type MailjetEvent,
  MAX_EVENTS_PER_BODY,
  type ParsedBody,
  parseEventBodyInSteps,
  type RejectedEvent,
  type RejectedRef,
  type RejectionKind,
} from '../domain/event-parse.js';
import { isoTimeFormatter } from '../domain/iso-time.js';
import type { MailjetEventType } from '../domain/status.js';
import { storableText } from '../domain/storable-text.js';
import type { Logger } from '../log.js';
import { applyEvents } from './apply-events.js';
import { createGroupCommit } from './group-commit.js';

/** What a callback's answer says happened to its elements. */
export interface EventsReceipt {
  received: number;
  stored: number;
  duplicates: number;
  unmatched: number;
  rejected: number;
}

export interface EventsDeps {
  pool: Pool;
  channels: NotifyChannels;
  bus: Bus;
  log: Logger;
}

/** Events per transaction, give or take the events of one message (kept together, up to the maximum). */
const EVENTS_PER_TRANSACTION = 1000;
const MAX_EVENTS_PER_TRANSACTION = 5000;
const REJECTED_PER_STATEMENT = 500;
/** Characters of a rejected element's source and reason that are kept. */
const REJECTED_SOURCE_LENGTH = 8192;
const REJECTED_REASON_LENGTH = 2000;
/** Shared transactions written at the same time (each holds a database connection). */
const GROUPS_IN_FLIGHT = 2;
/** How long a part may wait for its transaction to start without a pool timeout to go by (pg-pool's connectionTimeoutMillis). */
const DEFAULT_MAX_WAIT_MS = 30_000;
/** A deadlock or serialization failure: the transaction is tried again, that many times in all. */
const ATTEMPTS = 3;
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);
/** The database is busy (out of lock or memory slots, a lock timeout): Mailjet should retry later. */
const BUSY_SQLSTATES = new Set([...RETRYABLE_SQLSTATES, '53200', '55P03']);

/**
 * Stores a callback body and says what happened to each element. A body that is not JSON at all is
 * kept aside too, then refused with a 400: it is a damaged transmission (a retry may arrive whole)
 * or does not come from Mailjet, and acknowledging it would drop whatever events it carried. Nothing
 * else of it is stored first, however large: every element is parsed before the first transaction,
 * so that no event of a body that may not come from Mailjet reaches an app, and a cut or garbled
 * transmission is refused whole (its retry is then stored whole).
 */
export function createEventsReceiver({ pool, channels, bus, log }: EventsDeps): (text: string) => Promise<EventsReceipt> {
  const ingest = createEventIngest(pool, channels);
  return (text) => receiveEvents({ pool, bus, log, ingest }, text);
}

async function receiveEvents({ pool, bus, log, ingest }: Omit<EventsDeps, 'channels'> & { ingest: EventIngest }, text: string): Promise<EventsReceipt> {
  const parsed = await parseInSteps(text);
  if (!parsed.ok && parsed.tooMany) {
    log.warn('refused a callback body with too many elements', { component: 'events', reason: parsed.reason, length: text.length });
    throw new AppError('payload-too-large', 413, `${parsed.reason}: send at most ${MAX_EVENTS_PER_BODY} events per callback`);
  }
  if (!parsed.ok) {
    await insertRejectedEvents(pool, [rejectedRow({ position: null, kind: 'not-json', reason: parsed.reason, source: text })]);
    bus.emit('events:rejected', { kind: 'not-json', count: 1 });
    log.warn('kept aside a callback body that is not JSON', { component: 'events', reason: parsed.reason, length: text.length });
    throw new AppError('malformed-json', 400, `${parsed.reason}; it was kept aside in rejected_events`);
  }
  const { events, rejected } = parsed;
  if (rejected.length > 0) {
    // A statement's worth at a time: a large body's rejected elements are checked again as they go.
    for (let start = 0; start < rejected.length; start += REJECTED_PER_STATEMENT) {
      await insertRejectedEvents(
        pool,
        rejected.slice(start, start + REJECTED_PER_STATEMENT).map((ref) => rejectedElementRow(parsed.loadRejected(ref))),
      );
    }
    for (const [kind, count] of countByKind(rejected)) {
      bus.emit('events:rejected', { kind, count });
    }
    log.warn('kept aside events that can never be applied', {
      component: 'events',
      rejected: rejected.length,
      of: events.length + rejected.length,
      first: rejected
        .slice(0, 5)
        .map(parsed.loadRejected)
        .map((entry) => ({ index: entry.index, kind: entry.kind, reason: reasonOf(entry).slice(0, 200) })),
    });
  }
  const result = await ingest(events, parsed.load);
  reportOtherAddress(bus, log, result.otherAddress);
  bus.emit('events:ingested', {
    received: events.length,
    stored: result.stored,
    unmatched: result.unmatched,
    byType: result.byType,
    sentAfterAcceptedMs: result.sentAfterAcceptedMs,
  });
  return {
    received: events.length + rejected.length,
    stored: result.stored,
    duplicates: events.length - result.stored - result.otherAddress.count,
    unmatched: result.unmatched,
    rejected: rejected.length + result.otherAddress.count,
  };
}

/**
 * Counts (jetpost_events_rejected_total, kind invalid) and logs the events kept aside for their
 * address (otherAddressRow), once committed, on every path that keeps them aside: a callback, and
 * the record of a send for the events that came before it.
 */
export function reportOtherAddress(bus: Bus, log: Logger, otherAddress: IngestResult['otherAddress']): void {
  if (otherAddress.count === 0) {
    return;
  }
  bus.emit('events:rejected', { kind: 'invalid', count: otherAddress.count });
  log.warn('kept aside events for an address other than the recipient holding their MessageID: Mailjet gave that MessageID to two messages', {
    component: 'events',
    rejected: otherAddress.count,
    first: otherAddress.first,
  });
}

/** Parses the body, letting other requests run between steps. */
async function parseInSteps(text: string): Promise<ParsedBody> {
  const steps = parseEventBodyInSteps(text);
  for (;;) {
    const step = steps.next();
    if (step.done) {
      return step.value;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export interface IngestResult {
  /** Events new to the history. */
  stored: number;
  /** Of those, events whose message is not known (yet): kept, and applied when its send is recorded. */
  unmatched: number;
  /** The new events by type. */
  byType: Partial<Record<MailjetEventType, number>>;
  /** See applyEvents. */
  sentAfterAcceptedMs: number[];
  /** Events kept aside for their address (otherAddressRow): how many, and the first few. */
  otherAddress: { count: number; first: Array<{ messageId: string | undefined; holderJobId: string }> };
}

export interface EventIngest {
  (events: readonly MailjetEvent[]): Promise<IngestResult>;
  /** Events of a body, loaded a transaction's worth at a time (see parseEventBodyInSteps). */
  (events: readonly EventRef[], load: (ref: EventRef) => MailjetEvent): Promise<IngestResult>;
}

/**
 * Stores and applies valid events, in bounded transactions shared with the events of concurrent
 * calls; each call resolves once every one of its events is committed. A body's events are loaded
 * one transaction's worth at a time, when it is written.
 */
export function createEventIngest(pool: Pool, channels: NotifyChannels): EventIngest {
  const writeParts = createGroupCommit<readonly MailjetEvent[], IngestResult>({
    write: (parts) => storeParts(pool, channels, parts),
    weight: (part) => part.length,
    maxWeight: EVENTS_PER_TRANSACTION,
    maxInFlight: GROUPS_IN_FLIGHT,
    // A database away fails every part alike; anything else may be one part's doing.
    writeAloneAfter: (error) => !isDatabaseUnavailable(error),
    maxWait: {
      ms: pool.timeouts?.connectMs ?? DEFAULT_MAX_WAIT_MS,
      error: () => new ServiceUnavailableError('the database is not taking events fast enough right now; retry shortly'),
    },
    failsWaiting: isDatabaseUnavailable,
  });
  return async (events: readonly EventRef[], load: (ref: EventRef) => MailjetEvent = asLoaded) => {
    const total: IngestResult = { stored: 0, unmatched: 0, byType: {}, sentAfterAcceptedMs: [], otherAddress: { count: 0, first: [] } };
    for (const chunk of transactionChunks(events)) {
      const result = await writeParts(chunk.map(load));
      total.stored += result.stored;
      total.unmatched += result.unmatched;
      for (const [type, count] of Object.entries(result.byType) as Array<[MailjetEventType, number]>) {
        total.byType[type] = (total.byType[type] ?? 0) + count;
      }
      total.sentAfterAcceptedMs.push(...result.sentAfterAcceptedMs);
      addOtherAddress(total, result.otherAddress.count, result.otherAddress.first);
    }
    return total;
  };
}

/**
 * Stores and applies the parts of several calls in one transaction (and their late matches in a
 * second). An event in two parts is stored once, and counts as stored for the first of them only,
 * as if that call had come first. The times to `sent` are a metric for all: they go to the first part.
 */
async function storeParts(pool: Pool, channels: NotifyChannels, parts: ReadonlyArray<readonly MailjetEvent[]>): Promise<IngestResult[]> {
  const owners = new Map<string, number>();
  parts.forEach((part, index) => {
    for (const event of part) {
      if (!owners.has(event.dedupeKey)) {
        owners.set(event.dedupeKey, index);
      }
    }
  });
  const events = parts.length === 1 ? parts[0]! : inLockOrder(parts.flat()).map(({ event }) => event);
  const results = parts.map((): IngestResult => ({ stored: 0, unmatched: 0, byType: {}, sentAfterAcceptedMs: [], otherAddress: { count: 0, first: [] } }));
  const resultOf = (dedupeKey: string) => results[owners.get(dedupeKey)!]!;
  const isoTime = isoTimeFormatter();
  const stored = await inTransaction(pool, async (tx, retry) => {
    if (retry) {
      // Tried again after a writer moved a recipient meanwhile: its job locked first, this try cannot miss it.
      await lockJobsOfMessages(tx, events);
    }
    const result = await storeAndApplyEvents(
      tx,
      channels.webhooks,
      events.map((event) => ({
        event,
        effect: eventEffect({ type: event.type, occurredAt: event.occurredAt, hardBounce: event.hardBounce, payload: event.raw }, isoTime),
      })),
    );
    await insertRejectedEvents(
      tx,
      result.otherAddress.map(({ index, holderJobId }) => otherAddressRow(events[index]!, holderJobId)),
    );
    return result;
  });
  for (const { index, holderJobId } of stored.otherAddress) {
    const event = events[index]!;
    addOtherAddress(resultOf(event.dedupeKey), 1, [{ messageId: event.messageId, holderJobId }]);
  }
  for (const index of stored.inserted) {
    const event = events[index]!;
    const result = resultOf(event.dedupeKey);
    result.stored += 1;
    result.byType[event.type] = (result.byType[event.type] ?? 0) + 1;
  }
  results[0]!.sentAfterAcceptedMs.push(...stored.sentAfterAcceptedMs);
  if (stored.unmatched.length > 0) {
    const late = await inTransaction(pool, (tx) => matchLate(tx, channels, events, stored.unmatched));
    const keptAside = new Map(late.otherAddress.map((event) => [event.id, event]));
    for (const event of stored.unmatched) {
      if (!event.repeat && !late.matchedIds.has(event.id)) {
        resultOf(event.dedupeKey).unmatched += 1;
      }
      const aside = keptAside.get(event.id);
      if (aside !== undefined) {
        // Stored a moment ago, or at an earlier arrival (a repeat): kept aside now, as it would have been then.
        const result = resultOf(event.dedupeKey);
        if (!event.repeat) {
          result.stored -= 1;
          result.byType[aside.type] = result.byType[aside.type]! - 1;
          if (result.byType[aside.type] === 0) {
            delete result.byType[aside.type];
          }
        }
        addOtherAddress(result, 1, [otherAddressEntry(aside)]);
      }
    }
    results[0]!.sentAfterAcceptedMs.push(...late.sentAfterAcceptedMs);
  }
  return results;
}

/**
 * Events stored without their message: matched again, under the lock of their messages, and applied.
 * The lock is what makes this safe against the recording of a send running at the same time (see
 * lockMessagesExclusive): after it, a send recorded meanwhile is visible here, and one recorded later
 * finds these events, committed before. It is taken in a transaction of its own, before any job or
 * recipient lock, the order every ingest and every send's recording takes them in.
 */
async function matchLate(
  tx: Queryable,
  channels: NotifyChannels,
  chunk: readonly MailjetEvent[],
  unmatched: ReadonlyArray<{ id: string; dedupeKey: string }>,
): Promise<{ matchedIds: Set<string>; sentAfterAcceptedMs: number[]; otherAddress: LateMatch[] }> {
  const keys = new Set(unmatched.map((event) => event.dedupeKey));
  await lockMessagesExclusive(
    tx,
    chunk.filter((event) => keys.has(event.dedupeKey)),
  );
  const matched = await matchEvents(
    tx,
    unmatched.map((event) => event.id),
  );
  const applied = await applyLateMatches(tx, channels, matched);
  return { matchedIds: new Set(matched.map((event) => event.id)), ...applied };
}

/**
 * Applies events matched to their recipients after they were stored (the ingest's late match, a
 * send's record for the events that came first), with the check the ingest's statement makes: an
 * event whose address is not its holder's (isHoldersAddress) is taken out of the history and kept
 * aside (otherAddressRow), as it would have been had its message been known when it came.
 */
export async function applyLateMatches(
  tx: Queryable,
  channels: NotifyChannels,
  matched: readonly LateMatch[],
): Promise<{ sentAfterAcceptedMs: number[]; otherAddress: LateMatch[] }> {
  const otherAddress = matched.filter((event) => !isHoldersAddress(event.holderEmail, event.email));
  if (otherAddress.length > 0) {
    await deleteEvents(
      tx,
      otherAddress.map((event) => event.id),
    );
    await insertRejectedEvents(
      tx,
      otherAddress.map((event) => otherAddressRow(event, event.jobId!)),
    );
  }
  const applied = await applyEvents(tx, channels, otherAddress.length === 0 ? matched : matched.filter((event) => !otherAddress.includes(event)));
  return { sentAfterAcceptedMs: applied.sentAfterAcceptedMs, otherAddress };
}

/**
 * One copy of each event, sorted by message and then dedupe key: every ingest sorts alike, so
 * concurrent ones (and the parts of one shared transaction) meet each other's rows in the same order.
 */
function inLockOrder<E extends EventRef>(events: readonly E[]): Array<{ event: E; message: string }> {
  const unique = [...new Map(events.map((event) => [event.dedupeKey, event])).values()];
  const keyed = unique.map((event) => ({ event, message: `${event.messageId ?? ''}/${event.messageUuid ?? ''}` }));
  return keyed.sort((a, b) => compare(a.message, b.message) || compare(a.event.dedupeKey, b.event.dedupeKey));
}

/**
 * The events in lock order, cut into transactions that keep a message's events together (so the app
 * hears "sent, then opened" from one callback, in order).
 */
function transactionChunks(events: readonly EventRef[]): EventRef[][] {
  const keyed = inLockOrder(events);
  const chunks: EventRef[][] = [];
  let current: EventRef[] = [];
  keyed.forEach(({ event, message }, index) => {
    const sameMessage = index > 0 && keyed[index - 1]!.message === message;
    if (current.length >= MAX_EVENTS_PER_TRANSACTION || (current.length >= EVENTS_PER_TRANSACTION && !sameMessage)) {
      chunks.push(current);
      current = [];
    }
    current.push(event);
  });
  if (current.length > 0) {
    chunks.push(current);
  }
  return chunks;
}

/**
 * An event whose MessageID (or Message_GUID) a recipient with another address holds: Mailjet gave
 * that id to two messages, and it stays with the first (jobs-repo's ACCEPT_SENT). Applied to it, the
 * event would tell that recipient's app what happened to another message: it is kept aside instead.
 */
function otherAddressRow(
  event: { messageId: string | null | undefined; messageUuid: string | null | undefined; dedupeKey: string } & ({ raw: unknown } | { payload: unknown }),
  holderJobId: string,
): RejectedEventRow {
  return rejectedRow({
    position: null,
    kind: 'invalid',
    // The event, not its text: kept aside by a callback (as it came) and by a send's record (as
    // stored, its keys in another order), it is one row.
    identity: `event ${event.dedupeKey}`,
    reason: `email: its MessageID ${event.messageId ?? event.messageUuid ?? '?'} is held by a recipient of job ${holderJobId} with another address, so it is not applied to it: Mailjet gave this MessageID to another message too (jetpost logged an error naming both jobs when it was recorded). Check that MAILJET_BASE_URL reaches Mailjet itself`,
    source: JSON.stringify('raw' in event ? event.raw : event.payload),
  });
}

/** Events kept aside by applyLateMatches, as an IngestResult counts them. */
export function lateOtherAddress(events: readonly LateMatch[]): IngestResult['otherAddress'] {
  return { count: events.length, first: events.slice(0, 5).map(otherAddressEntry) };
}

function otherAddressEntry(event: LateMatch): IngestResult['otherAddress']['first'][number] {
  return { messageId: event.messageId ?? undefined, holderJobId: event.jobId! };
}

function addOtherAddress(result: IngestResult, count: number, first: IngestResult['otherAddress']['first']): void {
  result.otherAddress.count += count;
  result.otherAddress.first.push(...first.slice(0, 5 - result.otherAddress.first.length));
}

/** Events given as themselves (the ingest's callers other than a callback body). */
function asLoaded(ref: EventRef): MailjetEvent {
  if (!('raw' in ref)) {
    throw new Error(`event ${ref.index} of a body was given without its loader`);
  }
  return ref;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A deadlock or a conflict is tried again (`work` told it is a retry); a busy database becomes a 503,
 * so that Mailjet retries the callback.
 */
async function inTransaction<T>(pool: Pool, work: (tx: Queryable, retry: boolean) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await withTransaction(pool, (tx) => work(tx, attempt > 1), { bulk: true });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !BUSY_SQLSTATES.has(code)) {
        throw error;
      }
      if (!RETRYABLE_SQLSTATES.has(code) || attempt >= ATTEMPTS) {
        throw new ServiceUnavailableError('the database is too busy to store these events right now; retry shortly', { cause: error });
      }
    }
  }
}

function reasonOf(entry: RejectedEvent): string {
  return entry.issues.map((issue) => (issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`)).join('; ');
}

function rejectedElementRow(entry: RejectedEvent): RejectedEventRow {
  return rejectedRow({ position: entry.index, kind: entry.kind, reason: reasonOf(entry), source: entry.source });
}

/** `identity`: what makes two rows one (default: the source as received). */
function rejectedRow({
  position,
  kind,
  reason,
  source,
  identity = source,
}: {
  position: number | null;
  kind: RejectionKind;
  reason: string;
  source: string;
  identity?: string;
}): RejectedEventRow {
  return {
    dedupeKey: createHash('sha256').update(`${kind}\n${identity}`).digest('hex'),
    position,
    kind,
    reason: storableText(reason, REJECTED_REASON_LENGTH).text,
    source: storableText(source, REJECTED_SOURCE_LENGTH).text,
    sourceLength: source.length,
  };
}

function countByKind(rejected: readonly RejectedRef[]): Map<RejectionKind, number> {
  const counts = new Map<RejectionKind, number>();
  for (const entry of rejected) {
    counts.set(entry.kind, (counts.get(entry.kind) ?? 0) + 1);
  }
  return counts;
}
