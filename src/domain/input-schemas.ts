// The rules for the values an operator or an app hands to jetpost, as zod schemas shared by every
// adapter: http/ composes them into request bodies and queries, bin/admin.ts checks its arguments
// with them. One rule per value, whichever door it comes in by.
import { z } from 'zod';

import { APP_NAME_PATTERN, APP_NAME_RULE } from './app.js';
import { emailAddressProblem } from './email-address.js';
import { type FieldError, ValidationError } from './errors.js';
import { findUnstorableText } from './json-text.js';
import { JOB_STATUSES } from './status.js';
import { CHANGE_TYPES } from './status-change.js';
import { DELIVERY_STATUSES } from './webhook-delivery.js';

/**
 * CR, LF and other control characters would let a value start a new header line. So may U+2028 and
 * U+2029, Unicode's line and paragraph separators, which JavaScript and other readers of mail and
 * logs take for line breaks: they are no control characters (\p{Cc}), and are named apart.
 */
export const NO_CONTROL = /^[^\p{Cc}\u2028\u2029]*$/u;
export const noControl = (max: number) => z.string().max(max).regex(NO_CONTROL, 'must not contain line breaks or control characters');

/** An address as RFC 5321/6531 and Mailjet accept it (email-address.ts). */
export const emailSchema = z.string().superRefine((value, ctx) => {
  const problem = emailAddressProblem(value);
  if (problem !== undefined) {
    ctx.addIssue({ code: 'custom', message: `not a valid email address: ${problem}` });
  }
});

const MAX_ID = 9223372036854775807n;

/** Whether `value` is a positive bigint id in decimal (anything larger would only fail in PostgreSQL). */
export function isId(value: string): boolean {
  return /^[1-9]\d{0,18}$/.test(value) && BigInt(value) <= MAX_ID;
}

export const idSchema = (what: string) => z.string().refine(isId, `${what} (digits, at most ${MAX_ID})`);
export const jobIdSchema = idSchema('a job id');
export const deliveryIdSchema = idSchema('a delivery id');

/** A page size in a query string or an argument: plain digits, 1 to 1000. */
export const pageLimitSchema = z
  .string()
  .regex(/^[1-9]\d{0,3}$/, 'a whole number from 1 to 1000')
  .transform(Number)
  .pipe(z.number().max(1000, 'a whole number from 1 to 1000'));

export const appNameSchema = z.string().regex(APP_NAME_PATTERN, APP_NAME_RULE);
export const keyPrefixSchema = z.string().regex(/^[a-z0-9]{12}$/, 'a key prefix (12 letters or digits)');
export const jobStatusSchema = z.enum(JOB_STATUSES);
export const deliveryStatusSchema = z.enum(DELIVERY_STATUSES);
/** An operator's note on a suppression. */
export const suppressionNoteSchema = z
  .string()
  .max(500)
  .regex(/^[^\p{Cc}]*$/u, 'no control characters');
/** The longest webhook URL, as stored and dialled (percent-encoded: webhooks/url-guard.ts checks that form too). */
export const WEBHOOK_URL_MAX_LENGTH = 2000;
/** Checked for what it is (scheme, where it resolves, its length once normalised) when it is set: see webhooks/url-guard.ts. */
/** Line breaks and tabs are refused, not dropped as the URL parser drops them: the URL stored would not be the one given. */
export const webhookUrlSchema = noControl(WEBHOOK_URL_MAX_LENGTH).min(1);
/** The change types an app's webhook receives: at least one (no webhook at all receives none). */
export const webhookEventTypesSchema = z
  .array(z.enum(CHANGE_TYPES, { error: `an event type: one of ${CHANGE_TYPES.join(', ')}` }))
  .min(1, `at least one event type (${CHANGE_TYPES.join(', ')}); to receive none, remove the webhook`)
  .max(100, 'at most 100 event types');
/** How long a rotated-out webhook secret keeps signing, in seconds: up to 7 days. */
export const MAX_SECRET_OVERLAP_SECONDS = 7 * 24 * 3600;
export const DEFAULT_SECRET_OVERLAP_SECONDS = 24 * 3600;
/**
 * The most rotated-out secrets that sign next to the current one: a rotation past it ends the oldest
 * at once. Every one adds a signature of 48 bytes to `webhook-signature`; rotated hourly with a 7-day
 * overlap, 168 of them passed the 8 KB an nginx in front of a receiver reads in one header line.
 */
export const MAX_PREVIOUS_SECRETS = 10;
export const secretOverlapSecondsSchema = z
  .number()
  .int('whole seconds')
  .min(0, 'from 0 (the old secret stops at once) to 604800 seconds (7 days)')
  .max(MAX_SECRET_OVERLAP_SECONDS, 'from 0 (the old secret stops at once) to 604800 seconds (7 days)');
/** A duration as an operator types it (`90s`, `30m`, `1h`, `7d`, or plain seconds), in seconds. */
export const durationSchema = z
  .string()
  .regex(/^\d{1,9}[smhd]?$/, 'a duration such as 0, 90s, 30m, 1h or 7d')
  .transform((text) => Number.parseInt(text, 10) * ({ s: 1, m: 60, h: 3600, d: 86400 }[text.at(-1) ?? ''] ?? 1));

/** Unknown fields named one by one in an object; the rest are counted (an object may have millions). */
const NAMED_UNKNOWN_FIELDS = 10;

export function toFieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue) => {
    const at = (...more: PropertyKey[]) => [...issue.path, ...more].map(String).join('.');
    if (issue.code !== 'unrecognized_keys') {
      return [{ path: at(), message: issue.message }];
    }
    // zod reports unknown fields on their parent; each gets its own path so the caller sees which.
    const named = issue.keys.slice(0, NAMED_UNKNOWN_FIELDS).map((key) => ({ path: at(key), message: `unknown field "${key}"` }));
    const more = issue.keys.length - named.length;
    return more > 0 ? [...named, { path: at(), message: `and ${more} more unknown fields` }] : named;
  });
}

/** What a JSON value is, in words: for "must be a list, not a string". */
function kindOf(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'a list';
  }
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isInteger(value) ? 'a whole number' : 'a number with a fraction';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  record: 'a JSON object ({"name": value, ...})',
};

const UNITS: Record<string, [string, string]> = { string: ['character', 'characters'], array: ['item', 'items'], set: ['item', 'items'] };
const counted = (origin: string, count: number | bigint) => {
  const unit = UNITS[origin];
  return unit ? `${count} ${count === 1 || count === 1n ? unit[0] : unit[1]}` : String(count);
};

/**
 * Every validation message in words a person reads at once, for the issues a schema does not word
 * itself: zod's own ("Invalid input: expected array, received undefined", "Too big: expected number
 * to be <=3") name its internals. Undefined leaves zod's wording (a schema's own messages win anyway).
 */
export const plainIssueMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return issue.input === undefined ? `is required: ${expected}` : `must be ${expected}, not ${kindOf(issue.input)}`;
    }
    case 'too_big':
      return issue.origin === 'string' || issue.origin === 'array' || issue.origin === 'set'
        ? `must have at most ${counted(issue.origin, issue.maximum)}`
        : `must be at most ${issue.maximum}${issue.inclusive === false ? ' (exclusive)' : ''}`;
    case 'too_small':
      if ((issue.origin === 'string' || issue.origin === 'array') && Number(issue.minimum) === 1) {
        return issue.origin === 'string' ? 'must not be empty' : 'must not be an empty list';
      }
      return issue.origin === 'string' || issue.origin === 'array' || issue.origin === 'set'
        ? `must have at least ${counted(issue.origin, issue.minimum)}`
        : `must be at least ${issue.minimum}${issue.inclusive === false ? ' (exclusive)' : ''}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' ? 'is not in the expected form' : `must be a valid ${issue.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'invalid_union':
      return 'matches none of the accepted forms';
    case 'invalid_key': {
      // What the key's own schema said of it (a header name's rule): the key itself is the path.
      const inner = issue.issues[0]?.message;
      return inner === undefined ? 'has a key that is not valid' : `has a key that is not valid: ${inner}`;
    }
    case 'invalid_element':
      return 'has an element that is not valid';
    default:
      return undefined;
  }
};

/**
 * A query parameter sent twice ("limit=1&limit=2", or Python's urlencode(…, doseq=True) of a list)
 * reaches a schema as a list: "must be a string, not a list" would puzzle the client, who sent strings.
 */
const queryIssueMessage: z.core.$ZodErrorMap = (issue) =>
  issue.code === 'invalid_type' && Array.isArray(issue.input) ? 'is given more than once: give it once' : plainIssueMessage(issue);

/** A request's query parameters as `schema` reads them (parseOrThrow, with a repeated parameter named as such). */
export function parseQueryOrThrow<T>(schema: z.ZodType<T>, query: unknown): T {
  return parseOrThrow(schema, query, 'query', undefined, queryIssueMessage);
}

/**
 * The input as `schema` reads it, or a ValidationError listing every problem: the schema's, and any
 * text (at any depth, in keys too) that PostgreSQL could not store exactly. `name` is where a lone
 * value sits (a path parameter, `job_id`): each problem's path starts with it, as a field's does.
 */
export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown, what: string, name?: string, error = plainIssueMessage): T {
  const unstorable = findUnstorableText(input);
  const parsed = schema.safeParse(input, { error });
  if (!parsed.success || unstorable.length > 0) {
    const problems = [...unstorable, ...(parsed.success ? [] : toFieldErrors(parsed.error))];
    throw new ValidationError(
      `the ${what} is not valid: see errors`,
      name === undefined ? problems : problems.map(({ path, message }) => ({ path: path === '' ? name : `${name}.${path}`, message })),
    );
  }
  return parsed.data;
}
