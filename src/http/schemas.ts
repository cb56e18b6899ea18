// The shapes of request bodies and queries, checked with zod at the boundary and mapped to domain
// types (domain/message.ts). Unknown fields are rejected: a typo must not silently drop a setting.
// The rules for single values (addresses, ids, page sizes) are domain/input-schemas.ts, shared with the CLI.
import { z } from 'zod';

import { AppError, type FieldError, ValidationError } from '../domain/errors.js';
import { emailSchema, jobIdSchema, noControl, pageLimitSchema, parseOrThrow } from '../domain/input-schemas.js';
import { nestsDeeperThan } from '../domain/json-text.js';
import { FORBIDDEN_HEADERS, MAX_MESSAGE_BYTES, queuedMessageBytes } from '../domain/mailjet-payload.js';
import { type MessageContent, type NewJob, type Recipient, TRACKING_VALUES } from '../domain/message.js';
import type { FeedCursor } from '../domain/status-change.js';
import { isBase64 } from './base64.js';

export const LIMITS = {
  recipientsPerMessage: 50,
  messagesPerRequest: 500,
  subjectLength: 255,
  nameLength: 200,
  customIdLength: 255,
  idempotencyKeyLength: 255,
  metadataBytes: 8 * 1024,
  variablesBytes: 64 * 1024,
  /** Levels of objects and arrays in metadata and in variables (the object itself is level 1). */
  jsonDepth: 32,
  /** html and text, each, in bytes of UTF-8. */
  htmlBytes: 5 * 1024 * 1024,
  textBytes: 5 * 1024 * 1024,
  /** The whole message as Mailjet receives it: see queuedMessageBytes. */
  messageBytes: MAX_MESSAGE_BYTES,
  headers: 50,
  headerValueLength: 998,
  attachments: 50,
  sendAtMaxAheadMs: 30 * 24 * 3600 * 1000,
  sendAtMaxBehindMs: 24 * 3600 * 1000,
  statusLookupIds: 100,
  /** Mailjet's CustomCampaign is an X-Mailjet-Campaign header value: 255 characters. */
  campaignLength: 255,
  /** Mailjet does not document a cap for EventPayload; this one keeps events small. */
  eventPayloadBytes: 8 * 1024,
  /** Mailjet's cap on URLTags (mj-0006 above it). */
  urlTagsLength: 256,
  monitoringCategoryLength: 255,
} as const;

const email = emailSchema;
const ADDRESS_FORMS = 'an address: "ada@example.org" or {"email": "ada@example.org", "name": "Ada"}';
const addressObject = z.strictObject(
  { email, name: noControl(LIMITS.nameLength).optional() },
  { error: (issue) => (issue.code === 'invalid_type' ? `must be ${ADDRESS_FORMS}` : undefined) },
);
/** "a@example.com" or {"email": "a@example.com", "name": "A"}. */
const address = z.preprocess((value) => (typeof value === 'string' ? { email: value } : value), addressObject);
/** One address or a list of them (checked for length first: a million addresses are not each parsed). */
const addressList = (field: string) =>
  z.preprocess(
    (value) => (value === undefined || Array.isArray(value) ? value : [value]),
    z
      .array(address, { error: (issue) => (issue.input === undefined ? `${field} is required: one address or a list of them` : undefined) })
      .min(1, `${field} must hold at least one address`)
      .max(LIMITS.recipientsPerMessage, `at most ${LIMITS.recipientsPerMessage} recipients (Mailjet's limit)`),
  );

const trackingSchema = z.enum(TRACKING_VALUES, { error: `must be one of ${TRACKING_VALUES.map((value) => `"${value}"`).join(', ')}` });

const attachment = z.strictObject({
  filename: noControl(255).min(1),
  content_type: z
    .string()
    .regex(/^[\w.+-]+\/[\w.+-]+$/, 'a MIME type such as application/pdf')
    .max(255),
  content: z.string().refine(isBase64, 'must be base64 (RFC 4648, with padding)'),
  content_id: z
    .string()
    .regex(/^[\w.@-]{1,100}$/, 'letters, digits and . _ @ - only')
    .optional(),
});

const MiB = 1024 * 1024;
const utf8Bytes = (value: string) => Buffer.byteLength(value, 'utf8');
/** A text part: capped in bytes of UTF-8 (counted without a regex or a copy). */
const textPart = (maxBytes: number) =>
  z.string().refine((value) => utf8Bytes(value) <= maxBytes, `must be at most ${maxBytes / MiB} MiB (${maxBytes} bytes) as UTF-8`);
/**
 * A JSON object of bounded depth and size. Both are checked before the object is parsed as a record
 * (which copies every key): the depth first, so that measuring the size cannot overflow the stack.
 */
const jsonObject = (maxBytes: number, what: string) =>
  z
    .unknown()
    .superRefine((value, ctx) => {
      if (typeof value !== 'object' || value === null) {
        return;
      }
      if (nestsDeeperThan(value, LIMITS.jsonDepth)) {
        ctx.addIssue({ code: 'custom', message: `${what} must nest at most ${LIMITS.jsonDepth} levels of objects and arrays` });
      } else if (utf8Bytes(JSON.stringify(value)) > maxBytes) {
        ctx.addIssue({ code: 'custom', message: `${what} must be at most ${maxBytes} bytes as JSON` });
      }
    })
    .pipe(z.record(z.string(), z.unknown()));

const messageFields = {
  from: address.optional(),
  to: addressList('to'),
  cc: addressList('cc').optional(),
  bcc: addressList('bcc').optional(),
  reply_to: address.optional(),
  subject: noControl(LIMITS.subjectLength).optional(),
  text: textPart(LIMITS.textBytes).optional(),
  html: textPart(LIMITS.htmlBytes).optional(),
  template_id: z
    .number()
    .int()
    .positive()
    .max(2 ** 31 - 1)
    .optional(),
  template_language: z.boolean().optional(),
  variables: jsonObject(LIMITS.variablesBytes, 'variables').optional(),
  headers: z
    // Counted before each header is parsed: a million of them are refused at once.
    .custom<object>((value) => typeof value !== 'object' || value === null || Object.keys(value).length <= LIMITS.headers, `at most ${LIMITS.headers} headers`)
    .pipe(z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'not a valid header name'), noControl(LIMITS.headerValueLength)))
    .optional(),
  attachments: z.array(attachment).max(LIMITS.attachments).optional(),
  custom_id: noControl(LIMITS.customIdLength).min(1).optional(),
  metadata: jsonObject(LIMITS.metadataBytes, 'metadata').optional(),
  send_at: z.iso.datetime({ offset: true, message: 'an ISO 8601 date-time with a time zone, e.g. 2030-01-01T09:00:00Z' }).optional(),
  priority: z.number().int().min(0).max(3, 'a whole number from 0 to 3').optional(),
  // Mailjet's Send API options (domain/mailjet-payload.ts maps each to its Mailjet field).
  track_opens: trackingSchema.optional(),
  track_clicks: trackingSchema.optional(),
  campaign: noControl(LIMITS.campaignLength).min(1).optional(),
  deduplicate_campaign: z.boolean().optional(),
  event_payload: z
    .string()
    .min(1)
    .refine((value) => utf8Bytes(value) <= LIMITS.eventPayloadBytes, `must be at most ${LIMITS.eventPayloadBytes} bytes as UTF-8`)
    .optional(),
  url_tags: z
    .string()
    .max(LIMITS.urlTagsLength)
    .regex(/^[\x21-\x7e]+$/, 'a query string such as utm_source=jetpost&utm_medium=email: printable ASCII without spaces (percent-encode the rest)')
    .refine((value) => !/^[?&#]/.test(value), 'without a leading ?, & or #: e.g. utm_source=jetpost&utm_medium=email')
    .optional(),
  monitoring_category: noControl(LIMITS.monitoringCategoryLength).min(1).optional(),
  mailjet_priority: z.number().int().min(0, 'a whole number from 0 to 3').max(3, 'a whole number from 0 to 3').optional(),
  template_error_reporting: address.optional(),
  template_error_deliver: z.boolean().optional(),
  sandbox: z.boolean().optional(),
};

type MessageInput = z.infer<z.ZodObject<typeof messageFields>>;

/**
 * Combinations Mailjet refuses, refused here instead, where the app still hears of it: queued, they
 * would only fail at the send. The Mailjet error code each one avoids is in its message.
 */
function checkMailjetCombinations(message: MessageInput, ctx: z.RefinementCtx): void {
  if (message.template_id !== undefined) {
    for (const part of ['html', 'text'] as const) {
      if (message[part] !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [part],
          message: `give either template_id or ${part}, not both: the template brings its own parts (Mailjet refuses an ${part === 'html' ? 'HTML' : 'text'} part beside a template that has one, send-0004)`,
        });
      }
    }
  }
  for (const field of ['template_error_reporting', 'template_error_deliver'] as const) {
    if (message[field] === undefined) {
      continue;
    }
    if (message.template_id === undefined) {
      ctx.addIssue({ code: 'custom', path: [field], message: `${field} goes with a template: give template_id too` });
    } else if (message.template_language === false) {
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message: `${field} needs the template language: leave template_language out or set it to true (Mailjet's send-0016)`,
      });
    }
  }
  if (message.deduplicate_campaign === true && message.campaign === undefined) {
    ctx.addIssue({ code: 'custom', path: ['deduplicate_campaign'], message: "deduplicate_campaign needs a campaign: give campaign too (Mailjet's send-0012)" });
  }
}

/** The checks across a message's fields; `now` places the send_at window. */
const checkMessage =
  (now: () => Date) =>
  (message: MessageInput, ctx: z.RefinementCtx): void => {
    if (message.text === undefined && message.html === undefined && message.template_id === undefined) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'give text, html or template_id' });
    }
    checkMailjetCombinations(message, ctx);
    if (message.from === undefined && message.template_id === undefined) {
      ctx.addIssue({ code: 'custom', path: ['from'], message: 'from is required unless the template defines the sender' });
    }
    const all = [...message.to, ...(message.cc ?? []), ...(message.bcc ?? [])];
    if (all.length > LIMITS.recipientsPerMessage) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: `at most ${LIMITS.recipientsPerMessage} recipients over to, cc and bcc (Mailjet's limit)` });
    }
    const seen = new Set<string>();
    for (const [kind, list] of [
      ['to', message.to],
      ['cc', message.cc ?? []],
      ['bcc', message.bcc ?? []],
    ] as const) {
      list.forEach((recipient, index) => {
        const key = recipient.email.toLowerCase();
        if (seen.has(key)) {
          ctx.addIssue({ code: 'custom', path: [kind, index, 'email'], message: 'this address is already a recipient of this message' });
        }
        seen.add(key);
      });
    }
    for (const name of Object.keys(message.headers ?? {})) {
      if (FORBIDDEN_HEADERS.has(name.toLowerCase())) {
        ctx.addIssue({ code: 'custom', path: ['headers', name], message: `${name} is set by jetpost or Mailjet and cannot be given as a header` });
      }
    }
    if (message.send_at !== undefined) {
      const at = Date.parse(message.send_at);
      const nowMs = now().getTime();
      if (at > nowMs + LIMITS.sendAtMaxAheadMs || at < nowMs - LIMITS.sendAtMaxBehindMs) {
        ctx.addIssue({ code: 'custom', path: ['send_at'], message: 'must be within the next 30 days (or the last 24 hours, meaning now)' });
      }
    }
  };

const idempotencyKey = z
  .string()
  .min(1)
  .max(LIMITS.idempotencyKeyLength)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** The request schemas, built once per clock. */
function queueRequestSchemas(now: () => Date) {
  const check = checkMessage(now);
  return {
    singleMessage: z.strictObject({ ...messageFields, idempotency_key: idempotencyKey.optional() }).superRefine(check),
    bulkRequest: z.strictObject({
      messages: z.array(z.strictObject(messageFields).superRefine(check)).min(1).max(LIMITS.messagesPerRequest),
      idempotency_key: idempotencyKey.optional(),
    }),
  };
}

export interface QueueRequest {
  jobs: NewJob[];
  bulk: boolean;
  idempotencyKey: string | undefined;
}

function toNewJob(message: MessageInput): NewJob {
  const recipients: Recipient[] = [
    ...message.to.map((a) => ({ ...a, kind: 'to' as const })),
    ...(message.cc ?? []).map((a) => ({ ...a, kind: 'cc' as const })),
    ...(message.bcc ?? []).map((a) => ({ ...a, kind: 'bcc' as const })),
  ];
  const content: MessageContent = {
    from: message.from,
    reply_to: message.reply_to,
    subject: message.subject,
    text: message.text,
    html: message.html,
    template_id: message.template_id,
    template_language: message.template_language,
    variables: message.variables,
    headers: message.headers,
    attachments: message.attachments,
    track_opens: message.track_opens,
    track_clicks: message.track_clicks,
    campaign: message.campaign,
    deduplicate_campaign: message.deduplicate_campaign,
    event_payload: message.event_payload,
    url_tags: message.url_tags,
    monitoring_category: message.monitoring_category,
    mailjet_priority: message.mailjet_priority,
    template_error_reporting: message.template_error_reporting,
    template_error_deliver: message.template_error_deliver,
    sandbox: message.sandbox,
  };
  return {
    content,
    recipients,
    customId: message.custom_id,
    metadata: message.metadata,
    sendAt: message.send_at === undefined ? undefined : new Date(message.send_at),
    priority: message.priority ?? 0,
  };
}

/**
 * Refuses, with a 413, messages larger than Mailjet accepts. The size is the message's JSON in the
 * Send API call (attachments in base64, text escaped as JSON), which is what Mailjet's ~15 MB cap
 * counts; queued, such a message would fail at Mailjet on every attempt.
 */
function checkMessageSizes(jobs: readonly NewJob[], bulk: boolean): void {
  const tooLarge: FieldError[] = [];
  jobs.forEach((job, index) => {
    const bytes = queuedMessageBytes(job.content, job.recipients, job.customId);
    if (bytes > LIMITS.messageBytes) {
      tooLarge.push({
        path: bulk ? `messages.${index}` : '',
        message: `this message is ${bytes} bytes as sent to Mailjet; the limit is ${LIMITS.messageBytes} bytes (${LIMITS.messageBytes / MiB} MiB)`,
      });
    }
  });
  if (tooLarge.length > 0) {
    throw new AppError(
      'message-too-large',
      413,
      `a message may be at most ${LIMITS.messageBytes / MiB} MiB (${LIMITS.messageBytes} bytes) as sent to Mailjet, attachments base64-encoded included (Mailjet refuses larger ones): see errors`,
      { fields: tooLarge },
    );
  }
}

export type QueueRequestParser = (body: unknown, headerKey: string | undefined) => QueueRequest;

/** Parses one message, or {"messages": [...]}; the Idempotency-Key header and body field must agree. */
export function createQueueRequestParser(now: () => Date): QueueRequestParser {
  const { singleMessage, bulkRequest } = queueRequestSchemas(now);
  return (body, headerKey) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ValidationError('the request body must be a JSON object: one message, or {"messages": [...]}', [
        { path: '', message: 'expected a JSON object' },
      ]);
    }
    const bulk = 'messages' in body;
    const parsed = bulk ? parseOrThrow(bulkRequest, body, 'request') : parseOrThrow(singleMessage, body, 'message');
    const messages = 'messages' in parsed ? parsed.messages : [parsed];
    const bodyKey = parsed.idempotency_key;
    if (headerKey !== undefined) {
      const checkedHeader = idempotencyKey.safeParse(headerKey);
      if (!checkedHeader.success) {
        throw new ValidationError('the Idempotency-Key header is not valid', [{ path: 'Idempotency-Key', message: checkedHeader.error.issues[0]!.message }]);
      }
    }
    if (headerKey !== undefined && bodyKey !== undefined && headerKey !== bodyKey) {
      throw new ValidationError('the Idempotency-Key header and idempotency_key field differ', [
        { path: 'idempotency_key', message: 'must equal the Idempotency-Key header when both are given' },
      ]);
    }
    const jobs = messages.map(toNewJob);
    checkMessageSizes(jobs, bulk);
    return { jobs, bulk, idempotencyKey: headerKey ?? bodyKey };
  };
}

/** The parser on the system clock (the service's routes get theirs from createApp's `now`). */
export const parseQueueRequest: QueueRequestParser = createQueueRequestParser(() => new Date());

export function parseJobId(value: unknown): string {
  return parseOrThrow(jobIdSchema, value, 'job id');
}

/** A feed position: `<transaction id>.<change id>`; empty or `0` is the beginning. */
const FEED_CURSOR = /^(\d{1,20})\.(\d{1,19})$/;

export function encodeCursor(cursor: FeedCursor): string {
  return `${cursor.txid}.${cursor.id}`;
}

const feedCursor = z
  .string()
  .max(41)
  .refine((value) => {
    const match = FEED_CURSOR.exec(value);
    // Both parts must fit their PostgreSQL types (xid8, bigint), or the query would fail instead.
    return value === '' || value === '0' || (match !== null && BigInt(match[1]!) <= 18446744073709551615n && BigInt(match[2]!) <= 9223372036854775807n);
  }, 'a cursor from next_cursor, or 0 to start')
  .transform((value): FeedCursor => {
    const match = FEED_CURSOR.exec(value);
    return match ? { txid: match[1]!, id: match[2]! } : { txid: '0', id: '0' };
  });

const statusLookup = z
  .strictObject({
    after: feedCursor.optional(),
    limit: pageLimitSchema.optional(),
    ids: z
      .string()
      .transform((value) =>
        value
          .split(',')
          .map((part) => part.trim())
          .filter(Boolean),
      )
      .pipe(z.array(jobIdSchema).min(1).max(LIMITS.statusLookupIds))
      .optional(),
    custom_id: z
      .union([noControl(LIMITS.customIdLength).min(1), z.array(noControl(LIMITS.customIdLength).min(1)).max(LIMITS.statusLookupIds)])
      .transform((value) => (Array.isArray(value) ? value : [value]))
      .optional(),
  })
  .refine((query) => [query.ids, query.custom_id, query.after].filter((given) => given !== undefined).length === 1, {
    message: 'give one of ids (comma-separated job ids), custom_id, or after (a feed cursor)',
    path: ['ids'],
  })
  .refine((query) => query.limit === undefined || query.after !== undefined, { message: 'limit goes with after', path: ['limit'] });

export type StatusLookup = { kind: 'ids'; ids: string[] } | { kind: 'custom-ids'; customIds: string[] } | { kind: 'feed'; after: FeedCursor; limit: number };

export function parseStatusLookup(query: unknown): StatusLookup {
  const parsed = parseOrThrow(statusLookup, query, 'query');
  if (parsed.after !== undefined) {
    return { kind: 'feed', after: parsed.after, limit: parsed.limit ?? 100 };
  }
  return parsed.ids !== undefined ? { kind: 'ids', ids: parsed.ids } : { kind: 'custom-ids', customIds: parsed.custom_id ?? [] };
}
