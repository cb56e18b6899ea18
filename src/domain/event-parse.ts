// Mailjet event callbacks → checked events, pure. The body is parsed losslessly (MessageIDs exceed
// 2^53 and JSON.parse would round them), may be one event (Version 1) or an array (Version 2), and
// each event is checked on its own: one bad element does not hold back the others. An element that
// can never be applied is handed back as rejected, with its source text and the reason.
import crypto from 'node:crypto';

import { z } from 'zod';

import { eventOccurredAt } from './event-time.js';
import { elementNotJson, type JsonElement, scanJsonBody } from './json-elements.js';
import { toIdString } from './mailjet-ids.js';
import { MAILJET_EVENT_TYPES, type MailjetEventType } from './status.js';
import { escapedUnstorable, storableText, unstorableCharacter } from './storable-text.js';

/** Mailjet's events are flat objects; a little nesting in extra fields is kept, not 5,000 levels. */
export const MAX_EVENT_DEPTH = 32;
/** An event's source text; Mailjet's are well under 10 KB (Payload is capped at 100,000 characters). */
export const MAX_EVENT_LENGTH = 256 * 1024;
/**
 * Elements in one callback. Even tiny ones ("1,1,1…") cost memory each, so a 64 MB body of them
 * could exhaust the heap; Mailjet's events are 200 bytes and more, so 64 MB holds fewer than this.
 */
export const MAX_EVENTS_PER_BODY = 500_000;

/** A Mailjet id (a decimal string when big, a number when small), always returned as a string. */
const mailjetId = z.union([z.string(), z.number()]).transform((value, context) => {
  const id = toIdString(value);
  if (id === undefined) {
    // Mailjet's MessageIDs are 64-bit; those past 2^63-1 (none seen yet) do not fit the bigint columns.
    context.addIssue({ code: 'custom', message: 'an integer from 0 to 9223372036854775807 (a larger MessageID is not stored)' });
    return z.NEVER;
  }
  return id;
});

const MAX_EMAIL_LENGTH = 320;
/** Mailjet's are UUIDs: a longer one is no Message_GUID, and it is a key, so it is never cut. */
const MAX_MESSAGE_GUID_LENGTH = 100;
/**
 * The longest value jetpost keeps of an event's field, in characters (a string's length; another
 * value's JSON text), by field; every field not named here is kept up to CUT_OTHER_LIMIT. Longer
 * is no reason to drop the event (a click on a link with a long query string still happened): the
 * value is cut to the limit, and the event says so in CUT_FIELDS_KEY. Mailjet's own values are far
 * shorter (an IP, a country code, a User-Agent, an SMTP answer: a few hundred characters at most);
 * the limits bound what an event can bring into every status read, changes feed page and webhook,
 * not its format. The fields jetpost checks (event, time, MessageID, Message_GUID, email,
 * hard_bounce, blocked) are all shorter than any limit.
 */
export const CUT_TEXT_LIMITS: Readonly<Record<string, number>> = { Payload: 100_000, url: 10_000 };
/**
 * The limit of every other field, known (CustomID, error, agent, comment, smtp_reply, ip…) or not.
 * None is lower: an event no longer than this (Mailjet's, a few hundred characters) has nothing to
 * cut, and cutLongTexts does not look at its fields.
 */
export const CUT_OTHER_LIMIT = 1000;

/** The longest value of `field` an event keeps (CUT_TEXT_LIMITS). */
export function cutLimit(field: string): number {
  return Object.hasOwn(CUT_TEXT_LIMITS, field) ? CUT_TEXT_LIMITS[field]! : CUT_OTHER_LIMIT;
}
/**
 * The key, in a stored event, of each cut field's length as received (in UTF-16 code units, as
 * JavaScript counts; for a value that is no string, of its JSON text).
 */
export const CUT_FIELDS_KEY = 'jetpost_truncated';

export const mailjetEventSchema = z
  .looseObject({
    event: z.enum(MAILJET_EVENT_TYPES),
    // Unix seconds. Any: no event is refused for its time (eventOccurredAt). An integer of more than
    // 15 digits comes as its decimal text (json-elements.ts keeps its digits).
    // (zod's int() would refuse an integer past 2^53.)
    time: z.union([z.number().refine(Number.isInteger, 'an integer (Unix seconds)'), z.string().regex(/^-?[1-9]\d{15,}$/)]),
    MessageID: mailjetId.optional(),
    Message_GUID: z.string().max(MAX_MESSAGE_GUID_LENGTH).optional(),
    email: z.string().min(1).max(MAX_EMAIL_LENGTH),
    // Any length: toEvent cuts them, and every other field (CUT_TEXT_LIMITS).
    CustomID: z.string().optional(),
    Payload: z.string().optional(),
    hard_bounce: z.boolean().optional(),
    blocked: z.boolean().optional(),
    url: z.string().optional(),
    error: z.string().optional(),
    error_related_to: z.string().optional(),
  })
  .refine((event) => (event.MessageID !== undefined && event.MessageID !== '0') || Boolean(event.Message_GUID), {
    message: 'MessageID or Message_GUID is required',
    path: ['MessageID'],
  });

type EventData = z.infer<typeof mailjetEventSchema>;

const EVENT_TYPES: ReadonlySet<unknown> = new Set(MAILJET_EVENT_TYPES);
/** The optional fields mailjetEventSchema holds to be strings. */
const TEXT_FIELDS = ['CustomID', 'Payload', 'url', 'error', 'error_related_to'] as const;

/**
 * What mailjetEventSchema makes of an event that plainly passes it, or undefined: the schema then
 * decides, and words the issues. Checking each of Mailjet's events through zod cost more than all
 * the rest of their parsing; test/unit/event-parse-plain.test.ts holds the two to the same answers.
 * The element is the caller's own (fresh from JSON.parse): its MessageID is written canonical in place.
 */
export function plainEventData(value: Record<string, unknown>): EventData | undefined {
  const { event, time, email, MessageID } = value;
  if (!EVENT_TYPES.has(event) || typeof email !== 'string' || email.length === 0 || email.length > MAX_EMAIL_LENGTH) {
    return undefined;
  }
  if (typeof time !== 'number' || !Number.isInteger(time)) {
    return undefined;
  }
  const guid = value['Message_GUID'];
  if (guid !== undefined && (typeof guid !== 'string' || guid.length > MAX_MESSAGE_GUID_LENGTH)) {
    return undefined;
  }
  for (const field of TEXT_FIELDS) {
    const text = value[field];
    if (text !== undefined && typeof text !== 'string') {
      return undefined;
    }
  }
  if (
    (value['hard_bounce'] !== undefined && typeof value['hard_bounce'] !== 'boolean') ||
    (value['blocked'] !== undefined && typeof value['blocked'] !== 'boolean')
  ) {
    return undefined;
  }
  let messageId: string | undefined;
  if (MessageID !== undefined) {
    messageId = typeof MessageID === 'string' || typeof MessageID === 'number' ? toIdString(MessageID) : undefined;
    if (messageId === undefined) {
      return undefined;
    }
    value['MessageID'] = messageId;
  }
  if ((messageId === undefined || messageId === '0') && !value['Message_GUID']) {
    return undefined;
  }
  return value as EventData;
}

/** Mailjet event fields worth passing on (the rest repeats what the event already says). */
const EVENT_DETAIL_FIELDS = [
  'url',
  'ip',
  'geo',
  'agent',
  'smtp_reply',
  'error',
  'error_related_to',
  'hard_bounce',
  'blocked',
  'comment',
  'source',
  'mj_list_id',
] as const;

/** The keys of a stored event eventDetails reads (those a read of a job's events needs). */
export const DETAIL_PAYLOAD_KEYS: readonly string[] = [...EVENT_DETAIL_FIELDS, CUT_FIELDS_KEY];

export function eventDetails(payload: Record<string, unknown>): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  for (const field of EVENT_DETAIL_FIELDS) {
    if (payload[field] !== undefined) {
      details[field] = payload[field];
    }
  }
  const cut = payload[CUT_FIELDS_KEY];
  if (typeof cut === 'object' && cut !== null) {
    // Checked, not trusted: an event stored before jetpost cut fields may carry the key as it came.
    const truncated: Record<string, number> = {};
    // `truncated` names the details toEvent cut (a cut value is a string), with their length as received.
    for (const field of EVENT_DETAIL_FIELDS) {
      const length = (cut as Record<string, unknown>)[field];
      if (typeof length === 'number' && Number.isInteger(length) && length > cutLimit(field) && typeof details[field] === 'string') {
        truncated[field] = length;
      }
    }
    if (Object.keys(truncated).length > 0) {
      details['truncated'] = truncated;
    }
  }
  return details;
}

export interface MailjetEvent {
  type: MailjetEventType;
  occurredAt: Date;
  messageId: string | undefined;
  messageUuid: string | undefined;
  email: string;
  customId: string | undefined;
  hardBounce: boolean | undefined;
  /** Identifies a repeat of the same event (Mailjet sends no event id). */
  dedupeKey: string;
  /** The event as received, ids as strings: stored as history and forwarded to apps. */
  raw: Record<string, unknown>;
}

/** Why an element (or, for `not-json`, a whole body) was rejected, as counted in the metrics. */
export type RejectionKind = 'not-json' | 'too-deep' | 'too-large' | 'unstorable-text' | 'not-an-object' | 'invalid';

export interface RejectedEvent {
  /** Position in the body (0 for a Version 1 body). */
  index: number;
  kind: RejectionKind;
  issues: { path: string; message: string }[];
  /** The element as received (JSON text). */
  source: string;
}

export type ParsedEvents =
  | { readonly ok: true; readonly events: MailjetEvent[]; readonly rejected: RejectedEvent[] }
  | { readonly ok: false; readonly tooMany: boolean; readonly reason: string };

/**
 * A valid event of a large body, as parseEventBodyInSteps keeps it: what places it in a transaction
 * (see services/events.ts), and where in the body it is read again from when its turn comes.
 */
export interface EventAt {
  readonly dedupeKey: string;
  readonly messageId: string | undefined;
  readonly messageUuid: string | undefined;
  /** Position in the body. */
  readonly index: number;
}

/** A valid event of a body: the event itself, or for a large body where it is (see ParsedBody). */
export type EventRef = MailjetEvent | EventAt;

/** A rejected element of a body: all of it, or for a large body its place and kind only. */
export type RejectedRef = RejectedEvent | Pick<RejectedEvent, 'index' | 'kind'>;

export type ParsedBody =
  | {
      readonly ok: true;
      readonly events: EventRef[];
      readonly rejected: RejectedRef[];
      /** The event itself (a large body's is parsed again, and checked again: the same answer). */
      readonly load: (ref: EventRef) => MailjetEvent;
      /** The rejected element, with its source and issues (a large body's checked again). */
      readonly loadRejected: (ref: RejectedRef) => RejectedEvent;
    }
  | { readonly ok: false; readonly tooMany: boolean; readonly reason: string };

/** Elements checked between two pauses of parseEventBodyInSteps. */
const ELEMENTS_PER_STEP = 1000;
/**
 * Longest body whose events (and rejected elements) parseEventBodyInSteps keeps as objects (a few
 * thousand of Mailjet's). A longer one's are kept as their place only and parsed again when they are
 * written, a transaction's worth at a time: as objects, with the garbage parsing them leaves, the
 * 100,000 events of a 30 MB body took jetpost's memory from 120 to 300 MB (450 without npm start's
 * V8 flags), and the issues of 500,000 rejected `{}` (a 1.5 MB body) 300 MB of heap. Parsing again
 * costs about 0.5 s of CPU per 100,000 events, a twentieth of their ingest, for large bodies only.
 */
const KEPT_EVENTS_MAX_LENGTH = 1024 * 1024;

/**
 * Parses a callback body, every event at once. Only a body that is not JSON at all, or holds more
 * than MAX_EVENTS_PER_BODY elements, is `ok: false`; any other JSON value gives its events and its
 * rejected elements (a string, or an array of numbers, is all rejected).
 */
export function parseEventBody(text: string): ParsedEvents {
  const steps = parseEventBodyInSteps(text);
  for (;;) {
    const step = steps.next();
    if (step.done) {
      const parsed = step.value;
      return parsed.ok ? { ok: true, events: parsed.events.map(parsed.load), rejected: parsed.rejected.map(parsed.loadRejected) } : parsed;
    }
  }
}

/**
 * parseEventBody, pausing (yielding) after every ELEMENTS_PER_STEP elements: checking 100,000
 * events takes seconds, and a caller that is a server lets other requests run in the pauses. Every
 * element is parsed and checked before it returns, so that a body with an element that is not JSON
 * is `ok: false` before anything of it is stored; a large body's events are then loaded when needed.
 */
export function* parseEventBodyInSteps(text: string): Generator<void, ParsedBody> {
  const scanned = scanJsonBody(text, { maxDepth: MAX_EVENT_DEPTH, maxLength: MAX_EVENT_LENGTH, maxElements: MAX_EVENTS_PER_BODY });
  const notJson = (reason: string) => ({ ok: false as const, tooMany: false, reason: `the body is not valid JSON: ${reason}` });
  if (!scanned.ok) {
    return scanned.tooMany ? scanned : notJson(scanned.reason);
  }
  const { elements } = scanned;
  const keep = text.length <= KEPT_EVENTS_MAX_LENGTH;
  const events: EventRef[] = [];
  const rejected: RejectedRef[] = [];
  for (let index = 0; index < elements.length; index += 1) {
    if (index > 0 && index % ELEMENTS_PER_STEP === 0) {
      yield;
    }
    const element = elements.at(index);
    if (element === undefined) {
      return notJson(elementNotJson(index));
    }
    const checked = checkElement(element);
    if ('kind' in checked) {
      rejected.push(keep ? { index, source: element.source, ...checked } : { index, kind: checked.kind });
    } else {
      events.push(keep ? checked : { dedupeKey: checked.dedupeKey, messageId: checked.messageId, messageUuid: checked.messageUuid, index });
    }
  }
  const checkAgain = (index: number) => {
    const element = elements.at(index);
    if (element === undefined) {
      throw new Error(`element ${index} of the body was JSON, and is not when parsed again`);
    }
    return { element, checked: checkElement(element) };
  };
  const load = (ref: EventRef): MailjetEvent => {
    if ('raw' in ref) {
      return ref;
    }
    const { checked } = checkAgain(ref.index);
    if ('kind' in checked) {
      throw new Error(`element ${ref.index} of the body was valid, and is not when parsed again`);
    }
    return checked;
  };
  const loadRejected = (ref: RejectedRef): RejectedEvent => {
    if ('source' in ref) {
      return ref;
    }
    const { element, checked } = checkAgain(ref.index);
    if (!('kind' in checked)) {
      throw new Error(`element ${ref.index} of the body was rejected, and is not when parsed again`);
    }
    return { index: ref.index, source: element.source, ...checked };
  };
  return { ok: true, events, rejected, load, loadRejected };
}

const SURROGATE = /[\ud800-\udfff]/;

/**
 * In a parsed string a NUL can only come from an escape (JSON refuses it raw), a lone surrogate from
 * an escape or raw; a `__proto__` key as itself or with escapes.
 */
function mayHoldUnstorableTextOrProtoKey(source: string): boolean {
  return source.includes('\\u') || source.includes('__proto__') || SURROGATE.test(source);
}

/** A rejection of the element as a whole. */
function whole(kind: RejectionKind, message: string): Omit<RejectedEvent, 'index' | 'source'> {
  return { kind, issues: [{ path: '', message }] };
}

function checkElement(element: JsonElement): MailjetEvent | Omit<RejectedEvent, 'index' | 'source'> {
  if (!('value' in element)) {
    return element.tooDeep
      ? whole('too-deep', `nested deeper than ${MAX_EVENT_DEPTH} levels`)
      : whole('too-large', `larger than ${MAX_EVENT_LENGTH / 1024} KiB`);
  }
  const { value } = element;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return whole('not-an-object', `not an event object but ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}`);
  }
  let sourceLength = element.source.length;
  // These walks look for what only an escape (\u…), a surrogate or a __proto__ key in the source can
  // bring: Mailjet's events have none, so most elements skip them.
  if (mayHoldUnstorableTextOrProtoKey(element.source)) {
    dropProtoKeys(value);
    const event = value as Record<string, unknown>;
    for (const field of IDENTIFYING_FIELDS) {
      const text = event[field];
      const character = typeof text === 'string' ? unstorableCharacter(text) : undefined;
      if (character) {
        return { kind: 'unstorable-text', issues: [{ path: field, message: `holds ${character}` }] };
      }
    }
    // An escape is longer than the character it replaces: the source no longer bounds a value's length.
    if (escapeUnstorableText(event)) {
      sourceLength = Number.POSITIVE_INFINITY;
    }
  }
  const plain = plainEventData(value as Record<string, unknown>);
  if (plain !== undefined) {
    return toEvent(plain, sourceLength);
  }
  const parsed = mailjetEventSchema.safeParse(value);
  if (!parsed.success) {
    return { kind: 'invalid', issues: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })) };
  }
  return toEvent(parsed.data, sourceLength);
}

/**
 * The fields that place and classify an event. One holding a character PostgreSQL refuses (NUL) or
 * would alter (an unpaired surrogate) is no value Mailjet sends, and altered it would apply the event
 * to another message or address, or give its retries another dedupe key: the event is kept aside.
 */
const IDENTIFYING_FIELDS = ['event', 'time', 'MessageID', 'Message_GUID', 'email'] as const;

/**
 * Writes, in place, each NUL and unpaired surrogate of the event's other strings and field names
 * (a bounce's `error` or `comment` quotes the remote server's reply) as a visible \uXXXX escape, so
 * that the event is stored, applied and forwarded. An escaped field name that another field already
 * has gives way to it. Whether anything was escaped. The depth is bounded by MAX_EVENT_DEPTH, so
 * the recursion is too.
 */
function escapeUnstorableText(value: Record<string, unknown> | unknown[]): boolean {
  let escaped = false;
  for (const [key, inner] of Object.entries(value)) {
    const stored = typeof inner === 'string' ? escapedUnstorable(inner) : inner;
    escaped ||= stored !== inner;
    if (typeof inner === 'object' && inner !== null) {
      escaped = escapeUnstorableText(inner as Record<string, unknown>) || escaped;
    }
    const storedKey = Array.isArray(value) ? key : escapedUnstorable(key);
    if (storedKey === key) {
      (value as Record<string, unknown>)[key] = stored;
    } else {
      escaped = true;
      delete (value as Record<string, unknown>)[key];
      // An escape holds `\u`: the new name is never __proto__ nor one of IDENTIFYING_FIELDS.
      if (!Object.hasOwn(value, storedKey)) {
        (value as Record<string, unknown>)[storedKey] = stored;
      }
    }
  }
  return escaped;
}

/** JSON.parse keeps a `__proto__` key as plain data, but copying it further on could set a prototype. */
function dropProtoKeys(value: unknown): void {
  if (typeof value !== 'object' || value === null) {
    return;
  }
  if (Object.prototype.hasOwnProperty.call(value, '__proto__')) {
    delete (value as Record<string, unknown>)['__proto__'];
  }
  for (const inner of Object.values(value)) {
    dropProtoKeys(inner);
  }
}

/** SHA-256 in hex: one call where Node has crypto.hash (20.12 and later), cheaper than a Hash object per event. */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text).digest('hex');

/**
 * Cuts the values longer than their limit (cutLimit), in place, and records their lengths as
 * received under CUT_FIELDS_KEY: a string to its first characters, any other value (an object an
 * unknown field brings) to the first characters of its JSON text, a string then. A CUT_FIELDS_KEY
 * the event came with is dropped: the key only ever says what jetpost cut. `sourceLength`, the
 * event's length as JSON text, bounds every value's: it spares Mailjet's events (a few hundred
 * characters) the look at each field, and most fields of the others the JSON text of their value.
 */
function cutLongTexts(data: Record<string, unknown>, sourceLength: number): void {
  let cut: Record<string, number> | undefined;
  if (sourceLength > CUT_OTHER_LIMIT) {
    for (const [field, value] of Object.entries(data)) {
      const max = cutLimit(field);
      if (sourceLength <= max || field === CUT_FIELDS_KEY || (typeof value !== 'string' && (typeof value !== 'object' || value === null))) {
        continue;
      }
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      if (text.length > max) {
        (cut ??= {})[field] = text.length;
        // The text is storable already (checkElement): this keeps a surrogate pair whole at the cut.
        data[field] = storableText(text, max).text;
      }
    }
  }
  if (cut !== undefined) {
    data[CUT_FIELDS_KEY] = cut;
  } else if (CUT_FIELDS_KEY in data) {
    delete data[CUT_FIELDS_KEY];
  }
}

function toEvent(data: EventData, sourceLength: number): MailjetEvent {
  const messageId = data.MessageID !== undefined && data.MessageID !== '0' ? data.MessageID : undefined;
  const messageUuid = data.Message_GUID || undefined;
  const email = data.email.toLowerCase();
  // The url as received, before any cut: a retry of the event has the same key, and two clicks whose
  // long links differ only past the cut keep theirs apart. A soft bounce's key says it is one: the
  // hard bounce that may follow it within the same second is another event, the one that bounces.
  // Only that key differs from the one events were stored with before, so their retries still match.
  const key = [data.event, messageId ?? '', messageUuid ?? '', email, data.time, data.url ?? ''];
  const dedupeKey = sha256Hex(JSON.stringify(data.event === 'bounce' && data.hard_bounce === false ? [...key, 'soft'] : key));
  cutLongTexts(data, sourceLength);
  return {
    type: data.event,
    occurredAt: eventOccurredAt(Number(data.time)),
    messageId,
    messageUuid,
    email,
    customId: data.CustomID || undefined,
    hardBounce: data.hard_bounce,
    dedupeKey,
    raw: data,
  };
}
