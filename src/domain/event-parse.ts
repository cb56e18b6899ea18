// Mailjet event callbacks → checked events, pure. The body is parsed losslessly (MessageIDs exceed
// 2^53 and JSON.parse would round them), may be one event (Version 1) or an array (Version 2), and
// each event is checked on its own: one bad element does not hold back the others. An element that
// can never be applied is handed back as rejected, with its source text and the reason.
import { createHash } from 'node:crypto';

import { z } from 'zod';

import { type JsonElement, splitJsonBody } from './json-elements.js';
import { toIdString } from './mailjet-ids.js';
import { MAILJET_EVENT_TYPES, type MailjetEventType } from './status.js';
import { unstorableCharacter } from './storable-text.js';

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
    context.addIssue({ code: 'custom', message: 'a 64-bit unsigned integer' });
    return z.NEVER;
  }
  return id;
});

const optionalText = (max: number) => z.string().max(max).optional();

export const mailjetEventSchema = z
  .looseObject({
    event: z.enum(MAILJET_EVENT_TYPES),
    // Unix seconds.
    time: z.number().int().nonnegative().max(32503680000),
    MessageID: mailjetId.optional(),
    Message_GUID: optionalText(100),
    email: z.string().min(1).max(320),
    CustomID: optionalText(1000),
    Payload: optionalText(100_000),
    hard_bounce: z.boolean().optional(),
    blocked: z.boolean().optional(),
    url: optionalText(10_000),
    error: optionalText(1000),
    error_related_to: optionalText(1000),
  })
  .refine((event) => (event.MessageID !== undefined && event.MessageID !== '0') || Boolean(event.Message_GUID), {
    message: 'MessageID or Message_GUID is required',
    path: ['MessageID'],
  });

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

export function eventDetails(payload: Record<string, unknown>): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  for (const field of EVENT_DETAIL_FIELDS) {
    if (payload[field] !== undefined) {
      details[field] = payload[field];
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

/** Elements checked between two pauses of parseEventBodyInSteps. */
const ELEMENTS_PER_STEP = 1000;

/**
 * Parses a callback body. Only a body that is not JSON at all, or holds more than
 * MAX_EVENTS_PER_BODY elements, is `ok: false`; any other JSON value gives its events and its
 * rejected elements (a string, or an array of numbers, is all rejected).
 */
export function parseEventBody(text: string): ParsedEvents {
  const steps = parseEventBodyInSteps(text);
  for (;;) {
    const step = steps.next();
    if (step.done) {
      return step.value;
    }
  }
}

/**
 * parseEventBody, pausing (yielding) after every ELEMENTS_PER_STEP elements: checking 100,000
 * events takes seconds, and a caller that is a server lets other requests run in the pauses.
 */
export function* parseEventBodyInSteps(text: string): Generator<void, ParsedEvents> {
  const split = splitJsonBody(text, { maxDepth: MAX_EVENT_DEPTH, maxLength: MAX_EVENT_LENGTH, maxElements: MAX_EVENTS_PER_BODY });
  if (!split.ok) {
    return { ok: false, tooMany: split.tooMany, reason: split.tooMany ? split.reason : `the body is not valid JSON: ${split.reason}` };
  }
  const events: MailjetEvent[] = [];
  const rejected: RejectedEvent[] = [];
  for (const element of split.elements) {
    if (element.index > 0 && element.index % ELEMENTS_PER_STEP === 0) {
      yield;
    }
    const checked = checkElement(element);
    if ('kind' in checked) {
      rejected.push({ index: element.index, source: element.source, ...checked });
    } else {
      events.push(checked);
    }
  }
  return { ok: true, events, rejected };
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
  // Both walks look for what only an escape (\u…), a surrogate or a __proto__ key in the source can
  // bring: Mailjet's events have none, so most elements skip them.
  if (mayHoldUnstorableTextOrProtoKey(element.source)) {
    const unstorable = findUnstorableText(value, []);
    if (unstorable) {
      return { kind: 'unstorable-text', issues: [unstorable] };
    }
    dropProtoKeys(value);
  }
  const parsed = mailjetEventSchema.safeParse(value);
  if (!parsed.success) {
    return { kind: 'invalid', issues: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })) };
  }
  return toEvent(parsed.data);
}

/**
 * The first key or string holding a character PostgreSQL refuses (NUL) or would alter (an unpaired
 * surrogate): such an event could be neither stored as history nor forwarded unchanged. The depth is
 * bounded by MAX_EVENT_DEPTH, so the recursion is too.
 */
function findUnstorableText(value: unknown, path: string[]): { path: string; message: string } | undefined {
  if (typeof value === 'string') {
    const character = unstorableCharacter(value);
    return character && { path: path.join('.'), message: `holds ${character}` };
  }
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  for (const [key, inner] of Object.entries(value)) {
    const character = unstorableCharacter(key);
    if (character) {
      return { path: path.join('.'), message: `a field name holds ${character}` };
    }
    const found = findUnstorableText(inner, [...path, key]);
    if (found) {
      return found;
    }
  }
  return undefined;
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

function toEvent(data: z.infer<typeof mailjetEventSchema>): MailjetEvent {
  const messageId = data.MessageID !== undefined && data.MessageID !== '0' ? data.MessageID : undefined;
  const messageUuid = data.Message_GUID || undefined;
  const email = data.email.toLowerCase();
  const dedupeKey = createHash('sha256')
    .update(JSON.stringify([data.event, messageId ?? '', messageUuid ?? '', email, data.time, data.url ?? '']))
    .digest('hex');
  return {
    type: data.event,
    occurredAt: new Date(data.time * 1000),
    messageId,
    messageUuid,
    email,
    customId: data.CustomID || undefined,
    hardBounce: data.hard_bounce,
    dedupeKey,
    raw: data,
  };
}
