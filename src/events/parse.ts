// Mailjet event callbacks → checked events, pure. The body is parsed losslessly (MessageIDs exceed
// 2^53 and JSON.parse would round them), may be one event (Version 1) or an array (Version 2), and
// each event is validated on its own so one bad element does not hold back the others.
import { createHash } from 'node:crypto';

import JSONbig from 'json-bigint';
import { z } from 'zod';

import { MAILJET_EVENT_TYPES, type MailjetEventType } from '../jobs/status.js';
import { toIdString } from '../mailjet/ids.js';

// storeAsString: integers longer than 15 digits come back as strings, exactly.
// A `__proto__` key is dropped (it could reach an object's prototype further on); json-bigint's
// constructor check matches any key containing "constructor", which is harmless data, so it is kept.
const losslessJson = JSONbig({ storeAsString: true, protoAction: 'ignore', constructorAction: 'preserve' });

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
  'url', 'ip', 'geo', 'agent', 'smtp_reply', 'error', 'error_related_to', 'hard_bounce', 'blocked', 'comment', 'source', 'mj_list_id',
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

export interface RejectedEvent {
  index: number;
  issues: { path: string; message: string }[];
}

export type ParsedEvents =
  | { readonly ok: true; readonly events: MailjetEvent[]; readonly rejected: RejectedEvent[] }
  | { readonly ok: false; readonly reason: string };

/** Parses a callback body. Not JSON, or neither an object nor an array of objects, is `ok: false`. */
export function parseEventBody(text: string): ParsedEvents {
  let body: unknown;
  try {
    body = losslessJson.parse(text);
  } catch (error) {
    return { ok: false, reason: `the body is not valid JSON (${(error as Error).message ?? 'parse error'})` };
  }
  const items = Array.isArray(body) ? body : [body];
  if (items.some((item) => typeof item !== 'object' || item === null || Array.isArray(item))) {
    return { ok: false, reason: 'the body must be one event object or an array of event objects' };
  }
  const events: MailjetEvent[] = [];
  const rejected: RejectedEvent[] = [];
  items.forEach((item, index) => {
    const parsed = mailjetEventSchema.safeParse(item);
    if (parsed.success) {
      events.push(toEvent(parsed.data));
    } else {
      rejected.push({
        index,
        issues: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
      });
    }
  });
  return { ok: true, events, rejected };
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
    raw: toPlain(data) as Record<string, unknown>,
  };
}

/** json-bigint builds null-prototype objects; stored history wants plain ones. */
function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(toPlain);
  }
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, toPlain(inner)]));
  }
  return value;
}
