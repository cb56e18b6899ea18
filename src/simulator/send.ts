import type { Random } from './random.js';

/**
 * POST /v3.1/send without the HTTP: validates a request body the way Mailjet does and builds its
 * response. Request-level problems give a global error (nothing sent); per-message problems give an
 * error entry while the other messages of the call are still accepted (Mailjet's mixed 400).
 * Ids come from the caller's SendContext, so this module holds no state.
 */

export type RecipientKind = 'to' | 'cc' | 'bcc';

/** Mailjet's message statuses (GET /v3/REST/message) that the simulated events can reach. */
export type MessageStatus = 'queued' | 'sent' | 'opened' | 'clicked' | 'hardbounced' | 'softbounced' | 'blocked' | 'spam' | 'unsub';

export interface SimulatedRecipient {
  email: string;
  name?: string;
  kind: RecipientKind;
  messageId: bigint;
  messageUuid: string;
  /** Mailjet's contact id for the address, stable within one simulator. */
  contactId: number;
  /** Moved on by the callback loop as each event of this recipient happens. */
  status: MessageStatus;
}

export interface SimulatedMessage {
  /** CustomID of the send, '' when absent (as Mailjet echoes it). */
  customId: string;
  subject?: string;
  from?: string;
  hasHtml: boolean;
  templateId?: number;
  recipients: SimulatedRecipient[];
  receivedAt: Date;
  /** EventPayload of the send, returned as Payload in every event ('' when absent). */
  eventPayload: string;
  /** CustomCampaign of the send, returned as customcampaign in every event ('' when absent). */
  customCampaign: string;
  /** The link a simulated click follows; undefined when the message has nothing to click. */
  clickUrl?: string;
}

export interface RecipientIdentity {
  messageId: bigint;
  messageUuid: string;
  contactId: number;
}

export interface SendContext {
  /** A fresh MessageID and MessageUUID for one accepted recipient, with the address's contact id. */
  identify(email: string): RecipientIdentity;
  /** A fresh ErrorIdentifier. */
  errorId(): string;
  messageErrorPattern: RegExp | undefined;
  receivedAt: Date;
}

export interface SendReply {
  status: number;
  /** Holds bigint MessageIDs: serialize it with toJson. */
  body: unknown;
  /** The messages to record and call back; empty for a global error or SandboxMode. */
  accepted: SimulatedMessage[];
}

interface Problem {
  code: string;
  message: string;
  relatedTo: string[];
}

type Fields = Record<string, unknown>;

interface ListedRecipient {
  field: string;
  kind: RecipientKind;
  index: number;
  email: string;
  name?: string;
}

const MAX_RECIPIENTS = 50;
const MAX_MESSAGES = 50;
const MAX_SUBJECT_LENGTH = 255;
const RECIPIENT_FIELDS = [
  ['To', 'to'],
  ['Cc', 'cc'],
  ['Bcc', 'bcc'],
] as const;
const STRING_FIELDS = ['Subject', 'TextPart', 'HTMLPart', 'CustomID', 'EventPayload', 'CustomCampaign'];
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const LINK_PATTERN = /href\s*=\s*["']?([^"'\s>]+)/i;
/** Where a click on a template message leads: the simulator does not know the template's links. */
const TEMPLATE_LINK = 'https://www.example.com/';
const MESSAGE_HREF = 'https://api.mailjet.com/v3/REST/message/';
const SANDBOX_IDENTITY: RecipientIdentity = { messageId: 0n, messageUuid: '', contactId: 0 };
const MALFORMED: Problem = {
  code: 'mj-0002',
  message: 'Malformed JSON, please review the syntax and properties types.',
  relatedTo: [],
};
/** Headers that have a dedicated property (send-0011), compared in lower case: Mailjet's documented list. */
export const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set(
  [
    'From', 'Sender', 'Subject', 'To', 'Cc', 'Bcc', 'Return-Path', 'Delivered-To', 'DKIM-Signature',
    'DomainKey-Status', 'Received-SPF', 'Authentication-Results', 'Received', 'X-Mailjet-Prio',
    'X-Mailjet-Debug', 'User-Agent', 'X-Mailer', 'X-MJ-CustomID', 'X-MJ-EventPayload', 'X-MJ-Vars',
    'X-MJ-TemplateErrorDeliver', 'X-MJ-TemplateErrorReporting', 'X-MJ-TemplateLanguage',
    'X-Mailjet-TrackOpen', 'X-Mailjet-TrackClick', 'X-MJ-TemplateID', 'X-MJ-WorkflowID', 'X-Feedback-Id',
    'X-Mailjet-Segmentation', 'List-Id', 'X-MJ-MID', 'X-MJ-ErrorMessage', 'Date', 'X-CSA-Complaints',
    'Message-Id', 'X-Mailjet-Campaign', 'X-MJ-StatisticsContactsListID',
  ].map((name) => name.toLowerCase()),
);

/**
 * MessageIDs count up by one from a random start in [2^59, 2^59 + 2^52): above 2^53 like Mailjet's
 * (576460765503091475), unique within a simulator, and unlikely to meet the ids of another unseeded
 * run that shares the same database.
 */
export function createMessageIdSequence(random: Random): () => bigint {
  let next = (1n << 59n) + (BigInt(random.uint32() & 0xfffff) << 32n) + BigInt(random.uint32());
  return () => next++;
}

export function processSend(text: string, context: SendContext): SendReply {
  const request = parseRequest(text);
  if ('code' in request) {
    const body = { ErrorIdentifier: context.errorId(), ErrorCode: request.code, StatusCode: 400, ErrorMessage: request.message };
    return { status: 400, body, accepted: [] };
  }
  // SandboxMode validates and answers as usual, but with zero ids and nothing to record.
  const identify = request.sandbox ? () => SANDBOX_IDENTITY : context.identify;
  const entries: Fields[] = [];
  const accepted: SimulatedMessage[] = [];
  for (const input of request.messages) {
    const problems = validateMessage(input, context.messageErrorPattern);
    if (problems.length > 0) {
      entries.push({ Status: 'error', Errors: problems.map((problem) => errorDetail(problem, context)) });
      continue;
    }
    const message = toSimulatedMessage(input, identify, context.receivedAt);
    entries.push(successEntry(message));
    if (!request.sandbox) {
      accepted.push(message);
    }
  }
  const status = entries.every((entry) => entry.Status === 'success') ? 200 : 400;
  return { status, body: { Messages: entries }, accepted };
}

/**
 * The CustomID of each message of a send body, in order ('' when absent; Globals apply as defaults),
 * whether or not the call is valid; [] when the body is not a JSON object with a Messages array.
 */
export function customIdsOf(text: string): string[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [];
  }
  if (!isRecord(body) || !Array.isArray(body.Messages)) {
    return [];
  }
  const globalId = isRecord(body.Globals) ? optionalString(body.Globals.CustomID) : undefined;
  return body.Messages.map((message: unknown) => (isRecord(message) ? optionalString(message.CustomID) : undefined) ?? globalId ?? '');
}

function parseRequest(text: string): Problem | { messages: Fields[]; sandbox: boolean } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return MALFORMED;
  }
  if (!isRecord(body)) {
    return MALFORMED;
  }
  const { Messages: messages, Globals: globals } = body;
  if (messages === undefined || messages === null) {
    return problem('mj-0003', 'Missing mandatory property "Messages".', []);
  }
  if (!Array.isArray(messages) || !messages.every(isRecord)) {
    return MALFORMED;
  }
  if (messages.length === 0) {
    return problem('mj-0007', 'Property "Messages" must contain at least one message.', []);
  }
  // Globals are defaults: a message's own property wins.
  const merged = messages.map((message) => ({ ...(isRecord(globals) ? globals : {}), ...message }));
  if (merged.reduce((total, message) => total + countRecipients(message), 0) > MAX_RECIPIENTS) {
    return problem('send-0015', `Total number of recipients exceeded. Max allowed - ${MAX_RECIPIENTS}`, []);
  }
  if (merged.length > MAX_MESSAGES) {
    return problem('mj-0008', `Too many messages. Max allowed - ${MAX_MESSAGES}`, []);
  }
  return { messages: merged, sandbox: body.SandboxMode === true };
}

/** The same address in To, Cc or Bcc of one message counts once, as at Mailjet. */
function countRecipients(message: Fields): number {
  return new Set(listRecipients(message).map((recipient) => recipient.email.toLowerCase())).size;
}

function validateMessage(message: Fields, pattern: RegExp | undefined): Problem[] {
  return [
    ...checkFrom(message),
    ...checkTo(message.To),
    ...RECIPIENT_FIELDS.flatMap(([field]) => checkRecipientList(message[field], field)),
    ...checkTypes(message),
    ...checkContent(message),
    ...checkHeaders(message.Headers),
    ...checkPattern(message, pattern),
  ];
}

function checkFrom(message: Fields): Problem[] {
  if (message.From !== undefined && message.From !== null) {
    return checkAddress(message.From, 'From');
  }
  // A template can carry its own sender.
  return message.TemplateID === undefined ? [problem('mj-0003', 'Missing mandatory property "From".', ['From'])] : [];
}

function checkTo(to: unknown): Problem[] {
  if (to === undefined || to === null) {
    return [problem('mj-0005', 'Property "To" is mandatory.', ['To'])];
  }
  return Array.isArray(to) && to.length === 0 ? [problem('mj-0007', 'Property "To" must not be empty.', ['To'])] : [];
}

function checkRecipientList(list: unknown, field: string): Problem[] {
  if (list === undefined || list === null) {
    return [];
  }
  if (!Array.isArray(list)) {
    return [typeMismatch(field, 'array of emails')];
  }
  return list.flatMap((entry, index) => checkAddress(entry, `${field}[${index}]`));
}

function checkAddress(address: unknown, path: string): Problem[] {
  if (!isRecord(address)) {
    return [typeMismatch(path, 'email')];
  }
  const email = address.Email;
  if (email === undefined || email === null) {
    return [problem('mj-0003', `Missing mandatory property "${path}.Email".`, [`${path}.Email`])];
  }
  return typeof email === 'string' && EMAIL_PATTERN.test(email) ? [] : [invalidEmail(String(email), path)];
}

function checkTypes(message: Fields): Problem[] {
  const problems = STRING_FIELDS.filter((field) => message[field] !== undefined && typeof message[field] !== 'string').map(
    (field) => typeMismatch(field, 'string'),
  );
  const templateId = message.TemplateID;
  if (templateId !== undefined && !(Number.isInteger(templateId) && (templateId as number) > 0)) {
    problems.push(typeMismatch('TemplateID', 'integer'));
  }
  return problems;
}

function checkContent(message: Fields): Problem[] {
  const problems: Problem[] = [];
  if (typeof message.Subject === 'string' && message.Subject.length > MAX_SUBJECT_LENGTH) {
    problems.push(problem('mj-0006', `Property "Subject" is too long (max ${MAX_SUBJECT_LENGTH} characters).`, ['Subject']));
  }
  if (!nonEmptyString(message.TextPart) && !nonEmptyString(message.HTMLPart) && message.TemplateID === undefined) {
    problems.push(
      problem('send-0003', 'At least "HTMLPart", "TextPart" or "TemplateID" must be provided.', ['HTMLPart', 'TextPart', 'TemplateID']),
    );
  }
  return problems;
}

function checkHeaders(headers: unknown): Problem[] {
  if (headers === undefined || headers === null) {
    return [];
  }
  if (!isRecord(headers)) {
    return [typeMismatch('Headers', 'object')];
  }
  return Object.keys(headers)
    .filter((name) => FORBIDDEN_HEADERS.has(name.toLowerCase()))
    .map((name) =>
      problem('send-0011', `Header "${name}" is not allowed in "Headers": use the dedicated property.`, [`Headers["${name}"]`]),
    );
}

/** The messageErrorPattern fault: a matching recipient makes the whole message an error entry. */
function checkPattern(message: Fields, pattern: RegExp | undefined): Problem[] {
  if (pattern === undefined) {
    return [];
  }
  return listRecipients(message)
    .filter((recipient) => pattern.test(recipient.email))
    .map((recipient) => invalidEmail(recipient.email, `${recipient.field}[${recipient.index}]`));
}

/** The well-formed recipients of a message, in To, Cc, Bcc order; malformed entries are skipped. */
function listRecipients(message: Fields): ListedRecipient[] {
  return RECIPIENT_FIELDS.flatMap(([field, kind]) => {
    const list = message[field];
    if (!Array.isArray(list)) {
      return [];
    }
    return list.flatMap((entry: unknown, index) =>
      isRecord(entry) && typeof entry.Email === 'string'
        ? [{ field, kind, index, email: entry.Email, ...(typeof entry.Name === 'string' && { name: entry.Name }) }]
        : [],
    );
  });
}

function toSimulatedMessage(message: Fields, identify: SendContext['identify'], receivedAt: Date): SimulatedMessage {
  const recipients = listRecipients(message).map(({ email, name, kind }): SimulatedRecipient => ({
    email,
    ...(name !== undefined && { name }),
    kind,
    ...identify(email),
    status: 'queued',
  }));
  const html = optionalString(message.HTMLPart);
  const templateId = typeof message.TemplateID === 'number' ? message.TemplateID : undefined;
  const from = isRecord(message.From) ? optionalString(message.From.Email) : undefined;
  return {
    customId: optionalString(message.CustomID) ?? '',
    subject: optionalString(message.Subject),
    from,
    hasHtml: nonEmptyString(html),
    templateId,
    recipients,
    receivedAt,
    eventPayload: optionalString(message.EventPayload) ?? '',
    customCampaign: optionalString(message.CustomCampaign) ?? '',
    clickUrl: html?.match(LINK_PATTERN)?.[1] ?? (templateId === undefined ? undefined : TEMPLATE_LINK),
  };
}

function successEntry(message: SimulatedMessage): Fields {
  const listOf = (kind: RecipientKind): Fields[] =>
    message.recipients
      .filter((recipient) => recipient.kind === kind)
      .map((recipient) => ({
        Email: recipient.email,
        MessageUUID: recipient.messageUuid,
        MessageID: recipient.messageId,
        MessageHref: `${MESSAGE_HREF}${recipient.messageId}`,
      }));
  return { Status: 'success', CustomID: message.customId, To: listOf('to'), Cc: listOf('cc'), Bcc: listOf('bcc') };
}

function errorDetail(detail: Problem, context: SendContext): Fields {
  return {
    ErrorIdentifier: context.errorId(),
    ErrorCode: detail.code,
    StatusCode: 400,
    ErrorMessage: detail.message,
    ErrorRelatedTo: detail.relatedTo,
  };
}

function problem(code: string, message: string, relatedTo: string[]): Problem {
  return { code, message, relatedTo };
}

function typeMismatch(path: string, expected: string): Problem {
  return problem('mj-0004', `Type mismatch. Expected type "${expected}".`, [path]);
}

function invalidEmail(email: string, path: string): Problem {
  return problem('mj-0013', `"${email}" is an invalid email address.`, [`${path}.Email`]);
}

function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function nonEmptyString(value: unknown): boolean {
  return typeof value === 'string' && value.length > 0;
}
