// The shapes of request bodies and queries, checked with zod at the boundary and mapped to domain
// types (domain/message.ts). Unknown fields are rejected: a typo must not silently drop a setting.
// The rules for single values (addresses, ids, page sizes) are domain/input-schemas.ts, shared with the CLI.
import { z } from 'zod';

import { addressKey, emailAddressProblem } from '../domain/email-address.js';
import { AppError, type FieldError, ValidationError } from '../domain/errors.js';
import {
  emailSchema,
  jobIdSchema,
  NO_CONTROL,
  noControl,
  pageLimitSchema,
  parseOrThrow,
  parseQueryOrThrow,
  plainIssueMessage,
  toFieldErrors,
} from '../domain/input-schemas.js';
import { findInexactNumber, findOversizedJson, findUnstorableText, isStorableWithin, type JsonBounds } from '../domain/json-text.js';
import { FORBIDDEN_HEADERS, MAX_MESSAGE_BYTES, queuedMessageBytes, queuedMessageBytesAtMost } from '../domain/mailjet-payload.js';
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
  /** A header value, in bytes of UTF-8: RFC 5322 (and 6532, for UTF-8 headers) counts a line in octets. */
  headerValueBytes: 998,
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

/**
 * The fields no object of a valid POST /queue body exceeds, counted by the quick read's first walk
 * and before the schemas read a body: past them, the schemas would spend their time on what is refused anyway (1 to 2 s for zod to list
 * 300,000 unknown fields). Variables hold the largest objects: within LIMITS.variablesBytes, a field
 * takes 4 bytes or more (`"":0`). Lists and depth are left to the schemas, which check a list's
 * length before its items and walk no deeper than the nesting they allow (metadata, variables).
 */
const QUEUE_BODY_BOUNDS: JsonBounds = { depth: 64, keys: LIMITS.variablesBytes / 4, items: Number.POSITIVE_INFINITY };

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
    // null is not wrapped: a client that writes an absent cc as null (Python's None) reads of cc, not of "cc.0".
    (value) => (value === undefined || value === null || Array.isArray(value) ? value : [value]),
    z
      .array(address, {
        error: (issue) =>
          issue.input === undefined
            ? `${field} is required: one address or a list of them`
            : issue.input === null
              ? `${field} is one address or a list of them, not null: leave it out when there is none`
              : undefined,
      })
      .min(1, `${field} must hold at least one address`)
      .max(LIMITS.recipientsPerMessage, `at most ${LIMITS.recipientsPerMessage} recipients (Mailjet's limit)`),
  );

const trackingSchema = z.enum(TRACKING_VALUES, { error: `must be one of ${TRACKING_VALUES.map((value) => `"${value}"`).join(', ')}` });

/**
 * A file's name, not a path: a receiving client keeps only what follows the last / or \ (RFC 2183
 * §2.3), so a name with one never arrives as sent. One of only dots and spaces (".", "..") names no
 * file a client can save: Windows trims them to nothing. A bidirectional override or isolate
 * (U+202A–U+202E, U+2066–U+2069) shows the name's end reversed: "invoice\u202Efdp.exe" reads as
 * "invoiceexe.pdf", a known disguise for a program; a right-to-left name needs none of them.
 * Names in any script, with spaces, are kept.
 */
const filename = noControl(255)
  .min(1)
  .regex(/^[^/\\]*$/, 'must be a file name, not a path: no / or \\ (a mail client keeps only what follows the last one)')
  .refine((name) => !/^[. ]+$/.test(name), 'must name a file: a name of only dots and spaces ("." or "..") names none')
  .regex(
    /^[^\u202A-\u202E\u2066-\u2069]*$/,
    'must not hold a bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069): it shows the name reversed, as a disguise',
  );

const attachment = z.strictObject({
  filename,
  content_type: z
    .string()
    .regex(/^[\w.+-]+\/[\w.+-]+$/, 'a MIME type such as application/pdf, without parameters (no "; charset=…")')
    .max(255),
  // Mailjet refuses an empty Base64Content (mj-0012): refused here, not failed once sent.
  content: z
    .string()
    .min(1, 'must not be empty: Mailjet refuses an empty attachment (mj-0012); leave an empty file out')
    .refine(
      isBase64,
      'must be the file in base64 on one line (A-Z a-z 0-9 + /, padded with = to a multiple of 4): no line breaks or spaces (base64 -w0), no data: URL prefix',
    ),
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
 * A header value: one line, counted in bytes of UTF-8, not characters. How Mailjet encodes text
 * outside ASCII (RFC 2047 words, or UTF-8 as it is) is not documented; its UTF-8 is what an app can
 * count, and what the line holds when sent as UTF-8 (RFC 6532).
 */
const headerValue = z
  .string()
  .regex(NO_CONTROL, 'must not contain line breaks or control characters')
  .superRefine((value, ctx) => {
    const bytes = utf8Bytes(value);
    if (bytes > LIMITS.headerValueBytes) {
      ctx.addIssue({
        code: 'custom',
        message: `must be at most ${LIMITS.headerValueBytes} bytes of UTF-8, a line of RFC 5322 (a character outside ASCII takes 2 to 4): this one is ${bytes}`,
      });
    }
  });
/**
 * A JSON object of bounded depth and size, whose numbers come back as sent, taken as it is: a zod
 * record would copy every field, which took most of the time of reading a bulk request with large
 * variables (1.2 s of 4 s for 500 messages of 4,000 variables). The depth is checked first, so that
 * neither the walk over its numbers nor measuring its size can overflow the stack, and with it each
 * object's fields and each list's items, of which no value within `maxBytes` has more than these
 * bounds allow: one too large is refused before its contents are walked or measured.
 */
const jsonObject = (maxBytes: number, what: string) => {
  const bounds: JsonBounds = { depth: LIMITS.jsonDepth, keys: maxBytes / 4, items: maxBytes / 2 };
  const tooLarge = `${what} must be at most ${maxBytes} bytes as JSON`;
  return z
    .unknown()
    .superRefine((value, ctx) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        ctx.addIssue({ code: 'invalid_type', expected: 'record', input: value });
        return;
      }
      const oversized = findOversizedJson(value, bounds);
      if (oversized !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message:
            oversized.over === 'depth'
              ? `${what} must nest at most ${LIMITS.jsonDepth} levels of objects and arrays`
              : `${tooLarge}: ${oversized.path.length === 0 ? 'it' : oversized.path.join('.')} alone has ${oversized.count} ${oversized.over}`,
        });
        return;
      }
      const inexact = findInexactNumber(value, LIMITS.jsonDepth);
      if (inexact !== undefined) {
        ctx.addIssue({ code: 'custom', path: inexact.path, message: inexact.message });
      } else if (utf8Bytes(JSON.stringify(value)) > maxBytes) {
        ctx.addIssue({ code: 'custom', message: tooLarge });
      }
    })
    .transform((value) => value as Record<string, unknown>);
};

const sendAtSchema = z.iso.datetime({ offset: true, message: 'an ISO 8601 date-time with a time zone, e.g. 2030-01-01T09:00:00Z' });

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
    .min(1, 'a Mailjet template id: a whole number from 1 to 2147483647')
    .max(2 ** 31 - 1, 'a Mailjet template id: a whole number from 1 to 2147483647')
    .optional(),
  template_language: z.boolean().optional(),
  variables: jsonObject(LIMITS.variablesBytes, 'variables').optional(),
  headers: z
    // Counted before each header is parsed: a million of them are refused at once.
    .custom<object>((value) => typeof value !== 'object' || value === null || Object.keys(value).length <= LIMITS.headers, `at most ${LIMITS.headers} headers`)
    .pipe(
      z.record(
        z
          .string()
          .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, "a header name is 1 to 100 letters, digits and !#$%&'*+.^_`|~- (no spaces, colons or line breaks)"),
        headerValue,
      ),
    )
    .optional(),
  attachments: z.array(attachment).max(LIMITS.attachments).optional(),
  custom_id: noControl(LIMITS.customIdLength).min(1).optional(),
  metadata: jsonObject(LIMITS.metadataBytes, 'metadata').optional(),
  send_at: sendAtSchema.optional(),
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

/** Where a check across fields reports a problem: the path within the message, and what is wrong. */
type ReportIssue = (path: Array<string | number>, message: string) => void;

/**
 * Combinations Mailjet refuses, refused here instead, where the app still hears of it: queued, they
 * would only fail at the send. The Mailjet error code each one avoids is in its message.
 */
function checkMailjetCombinations(message: MessageInput, report: ReportIssue): void {
  if (message.template_id !== undefined) {
    for (const part of ['html', 'text'] as const) {
      if (message[part] !== undefined) {
        report(
          [part],
          `give either template_id or ${part}, not both: the template brings its own parts (Mailjet refuses an ${part === 'html' ? 'HTML' : 'text'} part beside a template that has one, send-0004)`,
        );
      }
    }
  }
  for (const field of ['template_error_reporting', 'template_error_deliver'] as const) {
    if (message[field] === undefined) {
      continue;
    }
    if (message.template_id === undefined) {
      report([field], `${field} goes with a template: give template_id too`);
    } else if (message.template_language === false) {
      report([field], `${field} needs the template language: leave template_language out or set it to true (Mailjet's send-0016)`);
    }
  }
  if (message.deduplicate_campaign === true && message.campaign === undefined) {
    report(['deduplicate_campaign'], "deduplicate_campaign needs a campaign: give campaign too (Mailjet's send-0012)");
  }
}

type MessageCheck = (message: MessageInput, report: ReportIssue) => void;

/** What a send_at outside the window a new message may have is told. */
const SEND_AT_WINDOW = 'must be within the next 30 days (or the last 24 hours, meaning now)';

/** The checks across a message's fields; `now` places the send_at window (none without it). */
const checkMessage =
  (now: (() => Date) | undefined): MessageCheck =>
  (message, report) => {
    if (message.text === undefined && message.html === undefined && message.template_id === undefined) {
      report(['text'], 'give text, html or template_id');
    } else if (!message.text && !message.html && message.template_id === undefined) {
      // Mailjet reads an empty part as none (send-0003): refused here, not failed once sent.
      report(
        [message.text === undefined ? 'html' : 'text'],
        'text and html are empty: give one with content, or template_id (Mailjet refuses a message without content, send-0003)',
      );
    }
    checkMailjetCombinations(message, report);
    if (message.from === undefined && message.template_id === undefined) {
      report(['from'], 'from is required unless the template defines the sender');
    }
    const recipientCount = message.to.length + (message.cc?.length ?? 0) + (message.bcc?.length ?? 0);
    if (recipientCount > LIMITS.recipientsPerMessage) {
      report(['to'], `at most ${LIMITS.recipientsPerMessage} recipients over to, cc and bcc (Mailjet's limit)`);
    }
    // A lone recipient (most messages) cannot repeat one; past the limit the count is refusal enough.
    if (recipientCount > 1 && recipientCount <= LIMITS.recipientsPerMessage) {
      const seen = new Set<string>();
      for (const [kind, list] of [
        ['to', message.to],
        ['cc', message.cc ?? []],
        ['bcc', message.bcc ?? []],
      ] as const) {
        list.forEach((recipient, index) => {
          const key = addressKey(recipient.email);
          if (seen.has(key)) {
            report([kind, index, 'email'], 'this address is already a recipient of this message');
          }
          seen.add(key);
        });
      }
    }
    if (message.headers !== undefined) {
      // Header names are case-insensitive: X-Tag and x-tag are one header, given two values.
      const seen = new Map<string, string>();
      for (const name of Object.keys(message.headers)) {
        const lower = name.toLowerCase();
        if (FORBIDDEN_HEADERS.has(lower)) {
          report(['headers', name], `${name} is set by jetpost or Mailjet and cannot be given as a header`);
        } else if (seen.has(lower)) {
          report(['headers', name], `the same header as ${seen.get(lower)!} (header names are compared case-insensitively): give it once`);
        }
        seen.set(lower, seen.get(lower) ?? name);
      }
    }
    // Only a send_at in the right form: JavaScript reads 2030-02-30 as 2 March, whose window is no answer.
    if (message.send_at !== undefined && now !== undefined && sendAtSchema.safeParse(message.send_at).success) {
      const at = Date.parse(message.send_at);
      const nowMs = now().getTime();
      if (at > nowMs + LIMITS.sendAtMaxAheadMs || at < nowMs - LIMITS.sendAtMaxBehindMs) {
        report(['send_at'], SEND_AT_WINDOW);
      }
    }
  };

const idempotencyKey = z
  .string()
  .min(1)
  .max(LIMITS.idempotencyKeyLength)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** The request schemas, built once per clock. */
function queueRequestSchemas(check: MessageCheck) {
  const checkInZod = (message: MessageInput, ctx: z.RefinementCtx) => check(message, (path, text) => ctx.addIssue({ code: 'custom', path, message: text }));
  return {
    singleMessage: z.strictObject({ ...messageFields, idempotency_key: idempotencyKey.optional() }).superRefine(checkInZod),
    /** A bulk request's shape; its messages are read one by one (readBulk). */
    bulkRequest: z.strictObject({
      messages: z.array(z.unknown()).min(1).max(LIMITS.messagesPerRequest),
      idempotency_key: idempotencyKey.optional(),
    }),
    message: z.strictObject(messageFields).superRefine(checkInZod),
  };
}

export interface QueueRequest {
  jobs: NewJob[];
  bulk: boolean;
  idempotencyKey: string | undefined;
  /**
   * The answer unless the request replays an earlier one (it then has an idempotencyKey): a send_at
   * that has left the window since the earlier request was stored, as a retry's may.
   */
  refusal?: ValidationError | undefined;
}

/**
 * The fields of a message's content, in the order its JSON has always had: requestHash hashes that
 * JSON, so an Idempotency-Key sent again to another release must hash alike.
 */
const CONTENT_FIELDS = [
  'from',
  'reply_to',
  'subject',
  'text',
  'html',
  'template_id',
  'template_language',
  'variables',
  'headers',
  'attachments',
  'track_opens',
  'track_clicks',
  'campaign',
  'deduplicate_campaign',
  'event_payload',
  'url_tags',
  'monitoring_category',
  'mailjet_priority',
  'template_error_reporting',
  'template_error_deliver',
  'sandbox',
] as const satisfies ReadonlyArray<keyof MessageContent & keyof MessageInput>;

/** Each content field's place in CONTENT_FIELDS. */
const CONTENT_FIELD_RANK: ReadonlyMap<string, number> = new Map(CONTENT_FIELDS.map((field, rank) => [field, rank]));

/**
 * Only the fields given, in CONTENT_FIELDS' order: a message has a few of them, and every step after
 * (the size bound, the JSON for the insert, the hash) would otherwise walk all of them. Found from
 * the message's own keys (usually in that order already): looking up each of the 21 fields in every
 * message cost more than the rest of this reading.
 */
function contentOf(message: MessageInput): MessageContent {
  const fields: string[] = [];
  let inOrder = true;
  let lastRank = -1;
  for (const key in message) {
    const rank = CONTENT_FIELD_RANK.get(key);
    if (rank !== undefined && message[key as keyof MessageInput] !== undefined) {
      fields.push(key);
      inOrder &&= rank > lastRank;
      lastRank = rank;
    }
  }
  if (!inOrder) {
    fields.sort((a, b) => CONTENT_FIELD_RANK.get(a)! - CONTENT_FIELD_RANK.get(b)!);
  }
  const content: Record<string, unknown> = {};
  for (const field of fields) {
    content[field] = message[field as keyof MessageInput];
  }
  return content;
}

/** The addresses as recipients of `kind`, with their fields in the order requestHash has always hashed. */
function addRecipients(recipients: Recipient[], addresses: ReadonlyArray<{ email: string; name?: string | undefined }>, kind: Recipient['kind']): void {
  for (const { email, name } of addresses) {
    recipients.push(name === undefined ? { email, kind } : { email, name, kind });
  }
}

function toNewJob(message: MessageInput): NewJob {
  const recipients: Recipient[] = [];
  addRecipients(recipients, message.to, 'to');
  if (message.cc !== undefined) {
    addRecipients(recipients, message.cc, 'cc');
  }
  if (message.bcc !== undefined) {
    addRecipients(recipients, message.bcc, 'bcc');
  }
  return {
    content: contentOf(message),
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
    if (queuedMessageBytesAtMost(job.content, job.recipients, job.customId) <= LIMITS.messageBytes) {
      return;
    }
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

/** A request body as read: its messages and its idempotency_key field. */
export interface QueueBody {
  messages: MessageInput[];
  bodyKey: string | undefined;
}

/**
 * Problems a bulk request lists at most, about: the messages after the one that reaches it are not
 * read. Each problem costs zod tens of microseconds and its memory: 499 messages of 100 bad
 * addresses each (300 KB) made 50,898 of them, which held the process for 1 to 2 s and answered 6 MB.
 */
const LISTED_PROBLEMS = 100;

/** A bulk request checked by the schemas, message by message, until LISTED_PROBLEMS are found. */
function readBulk(body: object, schemas: ReturnType<typeof queueRequestSchemas>): QueueBody {
  const unstorable = findUnstorableText(body);
  const shape = schemas.bulkRequest.safeParse(body, { error: plainIssueMessage });
  if (!shape.success) {
    throw new ValidationError('the request is not valid: see errors', [...unstorable, ...toFieldErrors(shape.error)]);
  }
  const { messages: items, idempotency_key: bodyKey } = shape.data;
  const messages: MessageInput[] = [];
  const problems: FieldError[] = [...unstorable];
  for (const [index, item] of items.entries()) {
    const parsed = schemas.message.safeParse(item, { error: plainIssueMessage });
    if (parsed.success) {
      messages.push(parsed.data);
    } else {
      for (const { path, message } of toFieldErrors(parsed.error)) {
        problems.push({ path: path === '' ? `messages.${index}` : `messages.${index}.${path}`, message });
      }
    }
    if (problems.length >= LISTED_PROBLEMS && index < items.length - 1) {
      throw new ValidationError(
        `the request is not valid: see errors, which list the problems of messages 0 to ${index} only; the ${items.length - index - 1} after were not checked: fix these and send it again`,
        problems,
      );
    }
  }
  if (problems.length > 0) {
    throw new ValidationError('the request is not valid: see errors', problems);
  }
  return { messages, bodyKey };
}

/** The body checked by the request schemas: every problem is worded (of a bulk request, up to LISTED_PROBLEMS), or the body is read. */
function readWithSchemas(body: object, schemas: ReturnType<typeof queueRequestSchemas>): QueueBody {
  if ('messages' in body) {
    return readBulk(body, schemas);
  }
  const parsed = parseOrThrow(schemas.singleMessage, body, 'message');
  return { messages: [parsed], bodyKey: parsed.idempotency_key };
}

// ---- the quick read -----------------------------------------------------------------------------
// A body of well-formed messages (nearly every body) is read in one pass over each message, without
// the schema machinery, which costs most of the CPU of a bulk request. It vouches only for what it
// is sure of: the first thing it does not recognise as valid sends the whole body to the schemas,
// which decide and word the errors. So it may refuse what the schemas accept (they then read it),
// but never accepts what they refuse, and reads what it accepts exactly as they do
// (test/unit/queue-quick-read.test.ts checks both on generated bodies).

/** A one-line text field as noControl(max) takes it. */
const isOneLine = (value: unknown, max: number, min = 0): value is string =>
  typeof value === 'string' && value.length >= min && value.length <= max && NO_CONTROL.test(value);

/** A text part as textPart(maxBytes) takes it: UTF-8 has at most 3 bytes per UTF-16 code unit, so most are not counted. */
const isTextPart = (value: unknown, maxBytes: number): value is string =>
  typeof value === 'string' && (value.length * 3 <= maxBytes || utf8Bytes(value) <= maxBytes);

function quickAddress(value: unknown): { email: string; name?: string } | undefined {
  if (typeof value === 'string') {
    return emailAddressProblem(value) === undefined ? { email: value } : undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return undefined;
  }
  let email: unknown;
  let name: unknown;
  for (const key in value) {
    if (key === 'email') {
      email = (value as { email: unknown }).email;
    } else if (key === 'name') {
      name = (value as { name: unknown }).name;
    } else {
      return undefined;
    }
  }
  if (typeof email !== 'string' || emailAddressProblem(email) !== undefined) {
    return undefined;
  }
  if (name === undefined) {
    return { email };
  }
  return isOneLine(name, LIMITS.nameLength) ? { email, name } : undefined;
}

function quickAddressList(value: unknown): Array<{ email: string; name?: string }> | undefined {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.length < 1 || list.length > LIMITS.recipientsPerMessage) {
    return undefined;
  }
  const addresses: Array<{ email: string; name?: string }> = [];
  for (const item of list) {
    const address = quickAddress(item);
    if (address === undefined) {
      return undefined;
    }
    addresses.push(address);
  }
  return addresses;
}

const FIELD_SCHEMAS: Readonly<Record<string, z.ZodType>> = messageFields;

/** One message as the schemas would read it, or undefined when not sure it is valid. The common fields are read by hand. */
function quickMessage(input: unknown, check: MessageCheck, extraKeys: ReadonlySet<string>): MessageInput | undefined {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return undefined;
  }
  const message: Record<string, unknown> = {};
  for (const key in input) {
    const value = (input as Record<string, unknown>)[key];
    let read: unknown;
    switch (key) {
      case 'from':
      case 'reply_to':
        read = quickAddress(value);
        break;
      case 'to':
      case 'cc':
      case 'bcc':
        read = quickAddressList(value);
        break;
      case 'subject':
        read = isOneLine(value, LIMITS.subjectLength) ? value : undefined;
        break;
      case 'custom_id':
        read = isOneLine(value, LIMITS.customIdLength, 1) ? value : undefined;
        break;
      case 'text':
        read = isTextPart(value, LIMITS.textBytes) ? value : undefined;
        break;
      case 'html':
        read = isTextPart(value, LIMITS.htmlBytes) ? value : undefined;
        break;
      case 'priority':
        read = value === 0 || value === 1 || value === 2 || value === 3 ? value : undefined;
        break;
      default: {
        if (extraKeys.has(key)) {
          // Checked with the body (the body field idempotency_key); kept, as the schema keeps it.
          read = value;
          break;
        }
        const schema = Object.hasOwn(FIELD_SCHEMAS, key) ? FIELD_SCHEMAS[key] : undefined;
        const parsed = schema?.safeParse(value);
        read = parsed?.success ? parsed.data : undefined;
      }
    }
    if (read === undefined) {
      return undefined;
    }
    message[key] = read;
  }
  if (message['to'] === undefined) {
    return undefined;
  }
  let valid = true;
  check(message as MessageInput, () => {
    valid = false;
  });
  return valid ? (message as MessageInput) : undefined;
}

const NO_EXTRA_KEYS: ReadonlySet<string> = new Set();
const IDEMPOTENCY_KEY_FIELD: ReadonlySet<string> = new Set(['idempotency_key']);

/** The body read in one pass when every part of it is plainly valid; undefined sends it to the schemas. */
function readQuickly(body: object, check: MessageCheck): QueueBody | undefined {
  if (!isStorableWithin(body, QUEUE_BODY_BOUNDS.keys)) {
    return undefined;
  }
  let bodyKey: string | undefined;
  if ('idempotency_key' in body) {
    const key = idempotencyKey.safeParse(body.idempotency_key);
    if (!key.success) {
      return undefined;
    }
    bodyKey = key.data;
  }
  if (!('messages' in body)) {
    const message = quickMessage(body, check, IDEMPOTENCY_KEY_FIELD);
    return message && { messages: [message], bodyKey };
  }
  const list = body.messages;
  for (const key in body) {
    if (key !== 'messages' && key !== 'idempotency_key') {
      return undefined;
    }
  }
  if (!Array.isArray(list) || list.length < 1 || list.length > LIMITS.messagesPerRequest) {
    return undefined;
  }
  const messages: MessageInput[] = [];
  for (const item of list as unknown[]) {
    const message = quickMessage(item, check, NO_EXTRA_KEYS);
    if (message === undefined) {
      return undefined;
    }
    messages.push(message);
  }
  return { messages, bodyKey };
}

/** The two readers of a body, apart: for the test that holds the quick one to the schemas. Without `now`, send_at may be any time. */
export function queueBodyReaders(now: (() => Date) | undefined): { quick(body: object): QueueBody | undefined; withSchemas(body: object): QueueBody } {
  const check = checkMessage(now);
  const schemas = queueRequestSchemas(check);
  return { quick: (body) => readQuickly(body, check), withSchemas: (body) => readWithSchemas(body, schemas) };
}

/**
 * The body, unless an object of it has more fields than QUEUE_BODY_BOUNDS allow: refused then, before
 * the schemas read it. (The quick read, which every valid body passes, counts them in its first walk.)
 */
function withinBounds(body: object): object {
  const oversized = findOversizedJson(body, QUEUE_BODY_BOUNDS);
  if (oversized?.over === 'fields') {
    throw new ValidationError('the request is larger than any valid one can be, and was not read further: see errors', [
      { path: oversized.path.join('.'), message: `has ${oversized.count} fields: no object of a valid message has more than ${QUEUE_BODY_BOUNDS.keys}` },
    ]);
  }
  return body;
}

/** Parses one message, or {"messages": [...]}; the Idempotency-Key header and body field must agree. */
export function createQueueRequestParser(now: () => Date): QueueRequestParser {
  const readers = queueBodyReaders(now);
  const anyTime = queueBodyReaders(undefined);
  /** The body read, or the refusal of its send_at and the body read without the window (undefined: no window problem alone). */
  function read(body: object): { read: QueueBody; refusal?: ValidationError } {
    try {
      return { read: readers.quick(body) ?? readers.withSchemas(withinBounds(body)) };
    } catch (error) {
      // The window moves with the clock: a retry of a stored request may be outside it now, and is
      // still answered its jobs (services/jobs.ts replay). Any other problem is refused as it is.
      if (!(error instanceof ValidationError) || !error.fields?.every((field) => field.message === SEND_AT_WINDOW)) {
        throw error;
      }
      return { read: anyTime.quick(body) ?? anyTime.withSchemas(body), refusal: error };
    }
  }
  return (body, headerKey) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ValidationError('the request body must be a JSON object: one message, or {"messages": [...]}', [
        { path: '', message: 'expected a JSON object' },
      ]);
    }
    const bulk = 'messages' in body;
    const {
      read: { messages, bodyKey },
      refusal,
    } = read(body);
    if (refusal !== undefined && headerKey === undefined && bodyKey === undefined) {
      throw refusal;
    }
    if (headerKey !== undefined) {
      const checkedHeader = idempotencyKey.safeParse(headerKey, { error: plainIssueMessage });
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
    return { jobs, bulk, idempotencyKey: headerKey ?? bodyKey, refusal };
  };
}

/** The parser on the system clock (the service's routes get theirs from createApp's `now`). */
export const parseQueueRequest: QueueRequestParser = createQueueRequestParser(() => new Date());

/** The path parameter job_id. */
export function parseJobId(value: unknown): string {
  return parseOrThrow(jobIdSchema, value, 'job id', 'job_id');
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
      .string({ error: (issue) => (Array.isArray(issue.input) ? 'is given more than once: give it once, the job ids comma-separated (ids=1,2,3)' : undefined) })
      .transform((value) =>
        value
          .split(',')
          .map((part) => part.trim())
          .filter(Boolean),
      )
      .pipe(z.array(jobIdSchema).min(1).max(LIMITS.statusLookupIds))
      .optional(),
    // One value or the parameter repeated: a list either way (a union would word 101 values "matches none of the accepted forms").
    custom_id: z
      .preprocess(
        (value) => (value === undefined || Array.isArray(value) ? value : [value]),
        z
          // Without noControl's refusal of U+2028 and U+2029 (a header's concern): a custom_id stored
          // with one before it was refused can still be looked up.
          .array(
            z
              .string()
              .min(1)
              .max(LIMITS.customIdLength)
              .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
          )
          .max(LIMITS.statusLookupIds, `at most ${LIMITS.statusLookupIds} custom_id values (the parameter repeated: custom_id=a&custom_id=b)`),
      )
      .optional(),
    after_job_id: jobIdSchema.optional(),
  })
  .refine((query) => [query.ids, query.custom_id, query.after].filter((given) => given !== undefined).length === 1, {
    message: 'give one of ids (comma-separated job ids), custom_id, or after (a feed cursor)',
    path: ['ids'],
  })
  .refine((query) => query.limit === undefined || query.after !== undefined, { message: 'limit goes with after', path: ['limit'] })
  .refine((query) => query.after_job_id === undefined || query.custom_id !== undefined, {
    message: 'after_job_id goes with custom_id: the next_after_job_id of the page before',
    path: ['after_job_id'],
  });

export type StatusLookup =
  | { kind: 'ids'; ids: string[] }
  | { kind: 'custom-ids'; customIds: string[]; afterJobId: string | undefined }
  | { kind: 'feed'; after: FeedCursor; limit: number };

export function parseStatusLookup(query: unknown): StatusLookup {
  const parsed = parseQueryOrThrow(statusLookup, query);
  if (parsed.after !== undefined) {
    return { kind: 'feed', after: parsed.after, limit: parsed.limit ?? 100 };
  }
  return parsed.ids !== undefined
    ? { kind: 'ids', ids: parsed.ids }
    : { kind: 'custom-ids', customIds: parsed.custom_id ?? [], afterJobId: parsed.after_job_id };
}
