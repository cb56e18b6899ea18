// What a Send API answer means for each message of the call, pure. Mailjet answers per message (in
// input order) both on a 200 and on the 400 it gives when only some messages are invalid; anything
// else concerns the whole call. An answer whose entries do not line up with the messages sent (too
// few or too many, or a success entry echoing another message's CustomID) is trusted only where a
// success entry names its message by CustomID: every other message's outcome is unknown, so it is
// looked up at Mailjet before it is sent again.
import { toIdString, toUuidString, unstorableId } from './mailjet-ids.js';
import type { RecipientKind } from './message.js';
import { parseRetryAfter } from './retry-policy.js';

/** What the client saw: an HTTP answer (status + parsed body) or a network failure (status null). */
export interface SendResponse {
  status: number | null;
  body: unknown;
  /** The raw Retry-After header, when present. */
  retryAfter?: string | undefined;
  /** Network error code (ECONNREFUSED, ECONNABORTED…) when there was no answer. */
  networkCode?: string | undefined;
  /** No answer, and the request provably never left (no connection was made): nothing can have been sent. */
  neverSent?: boolean | undefined;
  /** A short description for logs and last_error. */
  description: string;
}

/**
 * A message Mailjet holds for a CustomID (a message look-up), one per recipient address. `email` is
 * null on a row that names the CustomID asked for but not its address (no `ContactAlt`: Mailjet or a
 * proxy ignored ShowContactAlt): it proves Mailjet took a message of the job, not which recipient's.
 */
export interface FoundMessage {
  messageId: string;
  messageUuid: string;
  email: string | null;
  /** The row names the CustomID asked for (not '' without ShowCustomID): Mailjet took a message of the job, whatever its address. */
  named?: boolean;
}

/** A found message with its address: what can be paired with a recipient, and kept between look-ups. */
export type AddressedMessage = FoundMessage & { email: string };

/**
 * What a look-up by CustomID got: Mailjet's list (possibly empty), or else (not an array) what came
 * instead, described as a send call's answer is, so that the send gate reads a 429 or a 401 on a
 * look-up as it reads one on a send (classifySendResponse).
 */
export type LookupAnswer = FoundMessage[] | SendResponse;

export interface AcceptedRecipient {
  kind: RecipientKind;
  email: string;
  /** Decimal string: Mailjet's 64-bit ids do not fit a JS number. */
  messageId: string;
  messageUuid: string;
}

export type MessageOutcome =
  | { readonly kind: 'accepted'; readonly recipients: AcceptedRecipient[] }
  /**
   * Mailjet accepted the message, but its answer does not give each recipient a MessageID of its own
   * (`reason` says which entry): no event could reach such a recipient, and the message must not be
   * sent again, so it is looked up by CustomID, which gives the real ids.
   */
  | { readonly kind: 'unresolved'; readonly reason: string }
  | { readonly kind: 'rejected'; readonly transient: boolean; readonly error: string };

export type CallOutcome =
  /** One outcome per message sent, in order; undefined where the answer says nothing readable about it (it may have been sent). */
  | { readonly kind: 'per-message'; readonly messages: ReadonlyArray<MessageOutcome | undefined> }
  /** 429, 5xx, timeouts, connection errors. `outcomeUnknown`: Mailjet may have sent the messages (not when no connection was made). */
  | {
      readonly kind: 'transient';
      readonly error: string;
      readonly retryAfterMs?: number;
      readonly outcomeUnknown: boolean;
      /** A 429: every consumer of the process should slow down, not only this one. */
      readonly rateLimited?: boolean;
    }
  /** 401: the API key pair is wrong or suspended; every call will fail the same way. */
  | { readonly kind: 'unauthorized'; readonly error: string }
  /** A request-level 4xx: nothing was sent and sending the same call again cannot succeed. */
  | { readonly kind: 'permanent'; readonly error: string }
  /**
   * 413: the call's body is larger than Mailjet (or a proxy on the way) takes, and nothing was sent.
   * A call of several messages goes again in smaller calls; one message alone that large cannot be sent.
   */
  | { readonly kind: 'too-large'; readonly error: string };

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
/** A field of Mailjet's error as text: its string or number, else `fallback`. */
const textOr = (value: unknown, fallback: string): string => (typeof value === 'string' || typeof value === 'number' ? String(value) : fallback);

/** `customIds`: the CustomID of each message of the call, in the order sent; `sandbox`: the call's SandboxMode. */
export function classifySendResponse(response: SendResponse, customIds: readonly string[], now: Date, sandbox = false): CallOutcome {
  const { status } = response;
  const messages = isObject(response.body) ? response.body['Messages'] : undefined;
  if (status !== null && ((status >= 200 && status < 300) || status === 400 || status === 403) && Array.isArray(messages)) {
    return { kind: 'per-message', messages: withoutRepeatedIds(perMessage(messages, customIds, sandbox)) };
  }
  if (status === null) {
    return { kind: 'transient', error: response.description, outcomeUnknown: response.neverSent !== true };
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(response.retryAfter, now);
    return retryAfterMs === undefined
      ? { kind: 'transient', error: response.description, outcomeUnknown: false, rateLimited: true }
      : { kind: 'transient', error: response.description, retryAfterMs, outcomeUnknown: false, rateLimited: true };
  }
  if (status >= 500 || status === 408) {
    // A 5xx may come after Mailjet accepted the messages: same uncertainty as a timeout.
    return { kind: 'transient', error: response.description, outcomeUnknown: true };
  }
  if (status === 401) {
    return { kind: 'unauthorized', error: response.description };
  }
  if (status === 413) {
    return { kind: 'too-large', error: response.description };
  }
  if (status === 403) {
    // Mailjet's 403s are about a sender (send-0006 to 0008) and come with Messages (above). One for
    // the whole call is not documented: it may be one app's sender, so it neither stops every app's
    // sending (as a 401 does) nor fails the jobs at once; they are retried with a backoff, and a
    // sender validated meanwhile goes through. A 4xx means nothing was sent.
    return { kind: 'transient', error: `${response.description}: check that the sender is validated for the Mailjet account`, outcomeUnknown: false };
  }
  if (status >= 200 && status < 300) {
    // A 2xx without per-message results is not an answer we can record: try again, carefully.
    return { kind: 'transient', error: `unexpected Mailjet answer: ${response.description}`, outcomeUnknown: true };
  }
  if (status < 400) {
    // Mailjet's Send API never redirects: a 3xx comes from a base URL that is not Mailjet's (http://
    // answered by a redirect to https://) or a proxy, and sent nothing. It says nothing about the
    // messages either, so they are retried, not failed at once.
    return { kind: 'transient', error: `${response.description}: a redirect, not Mailjet's answer: check MAILJET_BASE_URL`, outcomeUnknown: false };
  }
  return { kind: 'permanent', error: response.description };
}

function perMessage(entries: readonly unknown[], customIds: readonly string[], sandbox: boolean): Array<MessageOutcome | undefined> {
  const echoed = (entry: unknown) => (isObject(entry) && typeof entry['CustomID'] === 'string' && entry['CustomID'] !== '' ? entry['CustomID'] : undefined);
  const inOrder =
    entries.length === customIds.length &&
    entries.every((entry, index) => {
      const customId = echoed(entry);
      return customId === undefined || customId === customIds[index];
    });
  if (inOrder) {
    return entries.map((entry) => (isObject(entry) ? messageOutcome(entry, sandbox) : undefined));
  }
  // Only a success naming its message, and naming it once, still says what became of that message.
  const named = new Map<string, Json[]>();
  for (const entry of entries) {
    const customId = echoed(entry);
    if (customId !== undefined && isObject(entry) && entry['Status'] === 'success') {
      named.set(customId, [...(named.get(customId) ?? []), entry]);
    }
  }
  return customIds.map((customId) => {
    const [entry, ...more] = named.get(customId) ?? [];
    return entry !== undefined && more.length === 0 ? messageOutcome(entry, sandbox) : undefined;
  });
}

/**
 * A MessageID is one recipient's own: one that an answer gives two recipients (of one message or of
 * two) cannot say which of them an event is about, so no message holding it is recorded with it
 * (each is looked up instead). MessageID 0 is SandboxMode's, the same for every recipient.
 */
function withoutRepeatedIds(outcomes: Array<MessageOutcome | undefined>): Array<MessageOutcome | undefined> {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const outcome of outcomes) {
    for (const { messageId } of outcome?.kind === 'accepted' ? outcome.recipients : []) {
      if (messageId !== '0') {
        (seen.has(messageId) ? repeated : seen).add(messageId);
      }
    }
  }
  if (repeated.size === 0) {
    return outcomes;
  }
  return outcomes.map((outcome) => {
    const id = outcome?.kind === 'accepted' ? outcome.recipients.find((recipient) => repeated.has(recipient.messageId))?.messageId : undefined;
    return id === undefined ? outcome : { kind: 'unresolved', reason: `its answer gives MessageID ${id} to more than one recipient` };
  });
}

/**
 * An entry's outcome; undefined when its Status is neither "success" nor "error" (missing, or one
 * Mailjet does not document): it does not say the message was refused, so it may have been sent.
 */
function messageOutcome(entry: Json, sandbox: boolean): MessageOutcome | undefined {
  if (entry['Status'] !== 'success' && entry['Status'] !== 'error') {
    return undefined;
  }
  if (entry['Status'] === 'success') {
    const recipients: AcceptedRecipient[] = [];
    for (const [field, kind] of [
      ['To', 'to'],
      ['Cc', 'cc'],
      ['Bcc', 'bcc'],
    ] as const) {
      const list = entry[field];
      for (const [index, item] of (Array.isArray(list) ? list : []).entries()) {
        const accepted = isObject(item) ? acceptedRecipient(item, kind, sandbox) : NO_ID;
        if (typeof accepted === 'string') {
          return { kind: 'unresolved', reason: `its ${field}[${index}] entry has ${accepted}` };
        }
        recipients.push(accepted);
      }
    }
    return { kind: 'accepted', recipients };
  }
  const errors = Array.isArray(entry['Errors']) ? entry['Errors'].filter(isObject) : [];
  const transient = errors.length > 0 && errors.every((error) => Number(error['StatusCode']) >= 500);
  const text = errors.map((error) => `${textOr(error['ErrorCode'], 'error')}: ${textOr(error['ErrorMessage'], 'unknown error')}`).join('; ');
  return { kind: 'rejected', transient, error: text || 'Mailjet rejected the message without a reason' };
}

const NO_ID = 'no usable MessageID and address';

/**
 * The entry's recipient, or what makes it unusable. MessageID 0 is SandboxMode's, no message's: in a
 * call not in SandboxMode it would leave the recipient without an id that any event could reach.
 */
function acceptedRecipient(item: Json, kind: RecipientKind, sandbox: boolean): AcceptedRecipient | string {
  const messageId = toIdString(item['MessageID']);
  const email = item['Email'];
  if (messageId === undefined || typeof email !== 'string') {
    const tooLarge = messageId === undefined ? unstorableId(item['MessageID']) : undefined;
    return tooLarge === undefined ? NO_ID : `MessageID ${tooLarge}, past 2^63-1, the largest jetpost stores`;
  }
  if (messageId === '0' && !sandbox) {
    return "MessageID 0, SandboxMode's, in a call not in SandboxMode";
  }
  const messageUuid = toUuidString(item['MessageUUID']);
  return messageUuid === undefined ? 'a MessageUUID that cannot be stored' : { kind, email, messageId, messageUuid };
}
