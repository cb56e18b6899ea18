import type { Campaign } from './campaigns.js';
import type { Random } from './random.js';

/**
 * POST /v3.1/send without the HTTP: validates a request body the way Mailjet does and builds its
 * response. Request-level problems give a global error (nothing sent); per-message problems give an
 * error entry while the other messages of the call are still accepted (Mailjet's mixed 400).
 * Ids come from the caller's SendContext, so this module holds no state.
 */

export type RecipientKind = 'to' | 'cc' | 'bcc';

/** Why Mailjet did not attempt delivery to a recipient, as its blocked event says. */
export interface BlockReason {
  relatedTo: string;
  error: string;
}

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
  /** Set when Mailjet blocks this recipient instead of delivering (DeduplicateCampaign, a template error). */
  blockedFor?: BlockReason;
}

export interface SimulatedMessage {
  /** CustomID of the send, '' when absent (as Mailjet echoes it). */
  customId: string;
  subject?: string | undefined;
  from?: string | undefined;
  hasHtml: boolean;
  templateId?: number | undefined;
  recipients: SimulatedRecipient[];
  receivedAt: Date;
  /** EventPayload of the send, returned as Payload in every event ('' when absent). */
  eventPayload: string;
  /** CustomCampaign of the send, returned as customcampaign in every event ('' when absent). */
  customCampaign: string;
  /** Mailjet's id of that campaign, returned as mj_campaign_id (0 without CustomCampaign or in SandboxMode). */
  campaignId: number;
  deduplicateCampaign: boolean;
  /** Whether opens and clicks are tracked: TrackOpens / TrackClicks, or the account's default. */
  tracking: { opens: boolean; clicks: boolean };
  /** URLTags, appended to the link a click reports ('' when absent). */
  urlTags: string;
  monitoringCategory?: string | undefined;
  /** Mailjet's Priority (0–3) as sent; undefined when absent. */
  priority?: number | undefined;
  templateLanguage: boolean;
  templateErrorDeliver: boolean;
  /** Set when TemplateLanguage met a {{var:…}} that Variables does not define and that has no default. */
  templateError?: string | undefined;
  /** Where Mailjet mails the template error report (TemplateErrorReporting), when there was an error. */
  templateErrorReportedTo?: string | undefined;
  /** The link a simulated click follows, with the URLTags; undefined when nothing is clicked. */
  clickUrl?: string | undefined;
}

export interface RecipientIdentity {
  messageId: bigint;
  messageUuid: string;
  contactId: number;
}

/** The errors the messageErrorPattern fault can give a message, each as Mailjet words it. */
export const INJECTABLE_ERROR_CODES = ['mj-0005', 'mj-0006', 'mj-0012', 'mj-0013', 'send-0008'] as const;
export type InjectableErrorCode = (typeof INJECTABLE_ERROR_CODES)[number];

/** The messageErrorPattern fault as a send applies it. */
export interface MessageErrorFault {
  matches(email: string): boolean;
  code: InjectableErrorCode;
}

export interface SendContext {
  /** A fresh MessageID and MessageUUID for one accepted recipient, with the address's contact id. */
  identify(email: string): RecipientIdentity;
  /** A fresh ErrorIdentifier. */
  errorId(): string;
  /** The messageErrorPattern fault: a message with a recipient it matches fails with code. */
  messageError: MessageErrorFault | undefined;
  /** What TrackOpens / TrackClicks "account_default" (or no value) means for this account. */
  accountTracking: { opens: boolean; clicks: boolean };
  /** Whether a MonitoringCategory exists for the key (send-0013 otherwise). */
  monitoringCategoryExists(name: string): boolean;
  /** The campaign of a CustomCampaign name; not asked in SandboxMode, which creates nothing. */
  campaign(name: string): Campaign;
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
  /** The error's StatusCode: 400, or 403 for a sender-permission error. */
  status: number;
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
const MAX_URL_TAGS_LENGTH = 256;
const MAX_PRIORITY = 3;
const TRACKING_VALUES = ['account_default', 'disabled', 'enabled'];
const ATTACHMENT_FIELDS = ['Attachments', 'InlinedAttachments'];
const ATTACHMENT_PROPERTIES = ['ContentType', 'Filename', 'Base64Content'];
const RECIPIENT_FIELDS = [
  ['To', 'to'],
  ['Cc', 'cc'],
  ['Bcc', 'bcc'],
] as const;
const STRING_FIELDS = ['Subject', 'TextPart', 'HTMLPart', 'CustomID', 'EventPayload', 'CustomCampaign', 'URLTags', 'MonitoringCategory'];
const BOOLEAN_FIELDS = ['TemplateLanguage', 'TemplateErrorDeliver', 'DeduplicateCampaign'];
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const LINK_PATTERN = /href\s*=\s*["']?([^"'\s>]+)/i;
/** Opens {{var:name}} or {{var:name:default}} of Mailjet's template language. */
const TEMPLATE_VARIABLE_START = '{{var:';
const TEMPLATE_VARIABLE_END = '}}';
/** A From whose local part contains this is not an authorized sender of the simulated account (send-0008). */
const UNAUTHORIZED_SENDER_MARKER = 'unauthorized';
const DUPLICATE_IN_CAMPAIGN: BlockReason = { relatedTo: 'mailjet', error: 'duplicate in campaign' };
const TEMPLATE_LANGUAGE_ERROR: BlockReason = { relatedTo: 'content', error: 'error in template language' };
/** Where a click on a template message leads: the simulator does not know the template's links. */
const TEMPLATE_LINK = 'https://www.example.com/';
const MESSAGE_HREF = 'https://api.mailjet.com/v3/REST/message/';
const SANDBOX_IDENTITY: RecipientIdentity = { messageId: 0n, messageUuid: '', contactId: 0 };
const MALFORMED = problem('mj-0002', 'Malformed JSON, please review the syntax and properties types.', []);
/** Headers that have a dedicated property (send-0011), compared in lower case: Mailjet's documented list. */
export const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set(
  [
    'From',
    'Sender',
    'Subject',
    'To',
    'Cc',
    'Bcc',
    'Return-Path',
    'Delivered-To',
    'DKIM-Signature',
    'DomainKey-Status',
    'Received-SPF',
    'Authentication-Results',
    'Received',
    'X-Mailjet-Prio',
    'X-Mailjet-Debug',
    'User-Agent',
    'X-Mailer',
    'X-MJ-CustomID',
    'X-MJ-EventPayload',
    'X-MJ-Vars',
    'X-MJ-TemplateErrorDeliver',
    'X-MJ-TemplateErrorReporting',
    'X-MJ-TemplateLanguage',
    'X-Mailjet-TrackOpen',
    'X-Mailjet-TrackClick',
    'X-MJ-TemplateID',
    'X-MJ-WorkflowID',
    'X-Feedback-Id',
    'X-Mailjet-Segmentation',
    'List-Id',
    'X-MJ-MID',
    'X-MJ-ErrorMessage',
    'Date',
    'X-CSA-Complaints',
    'Message-Id',
    'X-Mailjet-Campaign',
    'X-MJ-StatisticsContactsListID',
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
  const entries: Fields[] = [];
  const failures: Problem[][] = [];
  const accepted: SimulatedMessage[] = [];
  for (const input of request.messages) {
    const problems = validateMessage(input, context);
    if (problems.length > 0) {
      failures.push(problems);
      entries.push({ Status: 'error', Errors: problems.map((detail) => errorDetail(detail, context)) });
      continue;
    }
    const message = toSimulatedMessage(input, context, request.sandbox);
    entries.push(successEntry(message));
    if (!request.sandbox) {
      accepted.push(message);
    }
  }
  return { status: callStatus(failures), body: { Messages: entries }, accepted };
}

/**
 * 200 when every message succeeded. Otherwise Mailjet answers 400, or 403 for a sender-permission
 * error; which one wins when a call mixes both is not documented: 403 only when every error is one.
 */
function callStatus(failures: Problem[][]): number {
  if (failures.length === 0) {
    return 200;
  }
  return failures.every((problems) => problems.every((detail) => detail.status === 403)) ? 403 : 400;
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
  const { Messages: messages, Globals: globals, SandboxMode: sandbox } = body;
  if (messages === undefined || messages === null) {
    return problem('mj-0003', 'Missing mandatory property "Messages".', []);
  }
  if (!Array.isArray(messages) || !messages.every(isRecord)) {
    return MALFORMED;
  }
  if (messages.length === 0) {
    return problem('mj-0007', 'Property "Messages" must contain at least one message.', []);
  }
  // A SandboxMode of "true" must not send for real: anything but a boolean is refused.
  if (sandbox !== undefined && typeof sandbox !== 'boolean') {
    return typeMismatch('SandboxMode', 'bool');
  }
  // Globals are defaults: a message's own property wins.
  const merged = messages.map((message) => ({ ...(isRecord(globals) ? globals : {}), ...message }));
  if (merged.reduce((total, message) => total + countRecipients(message), 0) > MAX_RECIPIENTS) {
    return problem('send-0015', `Total number of recipients exceeded. Max allowed - ${MAX_RECIPIENTS}`, []);
  }
  if (merged.length > MAX_MESSAGES) {
    return problem('mj-0008', `Too many messages. Max allowed - ${MAX_MESSAGES}`, []);
  }
  return { messages: merged, sandbox: sandbox === true };
}

/** The same address in To, Cc or Bcc of one message counts once, as at Mailjet. */
function countRecipients(message: Fields): number {
  return new Set(listRecipients(message).map((recipient) => recipient.email.toLowerCase())).size;
}

function validateMessage(message: Fields, context: SendContext): Problem[] {
  return [
    ...checkFrom(message),
    ...checkTo(message.To),
    ...RECIPIENT_FIELDS.flatMap(([field]) => checkRecipientList(message[field], field)),
    ...checkTypes(message),
    ...checkContent(message),
    ...checkOptions(message, context),
    ...checkTemplateErrorOptions(message),
    ...checkAttachments(message),
    ...checkHeaders(message.Headers),
    ...checkInjectedError(message, context.messageError),
  ];
}

function checkFrom(message: Fields): Problem[] {
  if (message.From === undefined || message.From === null) {
    // A template can carry its own sender.
    return message.TemplateID === undefined ? [problem('mj-0003', 'Missing mandatory property "From".', ['From'])] : [];
  }
  const problems = checkAddress(message.From, 'From');
  if (problems.length > 0) {
    return problems;
  }
  const email = String((message.From as Fields).Email);
  return localPart(email).includes(UNAUTHORIZED_SENDER_MARKER) ? [unauthorizedSender(email)] : [];
}

function checkTo(to: unknown): Problem[] {
  if (to === undefined || to === null) {
    return [problem('mj-0005', 'The To is mandatory but missing from the input', ['To'])];
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
  if (email === '') {
    return [emptyString(`${path}.Email`)];
  }
  return typeof email === 'string' && EMAIL_PATTERN.test(email) ? [] : [invalidEmail(typeof email === 'string' ? email : JSON.stringify(email), path)];
}

function checkTypes(message: Fields): Problem[] {
  const problems = [
    ...STRING_FIELDS.filter((field) => message[field] !== undefined && typeof message[field] !== 'string').map((field) => typeMismatch(field, 'string')),
    ...BOOLEAN_FIELDS.filter((field) => message[field] !== undefined && typeof message[field] !== 'boolean').map((field) => typeMismatch(field, 'bool')),
  ];
  const templateId = message.TemplateID;
  if (templateId !== undefined && !(Number.isInteger(templateId) && (templateId as number) > 0)) {
    problems.push(typeMismatch('TemplateID', 'integer'));
  }
  if (message.Priority !== undefined && typeof message.Priority !== 'number') {
    problems.push(typeMismatch('Priority', 'integer'));
  }
  if (message.Variables !== undefined && !isRecord(message.Variables)) {
    problems.push(typeMismatch('Variables', 'object'));
  }
  return problems;
}

function checkContent(message: Fields): Problem[] {
  const problems: Problem[] = [];
  if (typeof message.Subject === 'string' && message.Subject.length > MAX_SUBJECT_LENGTH) {
    problems.push(tooLong('Subject', MAX_SUBJECT_LENGTH));
  }
  if (!nonEmptyString(message.TextPart) && !nonEmptyString(message.HTMLPart) && message.TemplateID === undefined) {
    problems.push(problem('send-0003', 'At least "HTMLPart", "TextPart" or "TemplateID" must be provided.', ['HTMLPart', 'TextPart', 'TemplateID']));
  }
  return problems;
}

/** TrackOpens, TrackClicks, Priority, URLTags, DeduplicateCampaign and MonitoringCategory (types are checked apart). */
function checkOptions(message: Fields, context: SendContext): Problem[] {
  const problems = ['TrackOpens', 'TrackClicks']
    .filter((field) => message[field] !== undefined && !TRACKING_VALUES.includes(message[field] as string))
    .map((field) => valueNotAllowed(field, TRACKING_VALUES.map((value) => `"${value}"`).join(', ')));
  const priority = message.Priority;
  if (typeof priority === 'number' && !(Number.isInteger(priority) && priority >= 0 && priority <= MAX_PRIORITY)) {
    problems.push(valueNotAllowed('Priority', `an integer from 0 to ${MAX_PRIORITY}`));
  }
  if (typeof message.URLTags === 'string' && message.URLTags.length > MAX_URL_TAGS_LENGTH) {
    problems.push(tooLong('URLTags', MAX_URL_TAGS_LENGTH));
  }
  if (message.DeduplicateCampaign === true && !nonEmptyString(message.CustomCampaign)) {
    problems.push(problem('send-0012', '"DeduplicateCampaign" can only be used with a "CustomCampaign".', ['CustomCampaign', 'DeduplicateCampaign']));
  }
  const category = message.MonitoringCategory;
  if (typeof category === 'string' && !context.monitoringCategoryExists(category)) {
    problems.push(problem('send-0013', `MonitoringCategory "${category}" does not exist for this API key.`, ['MonitoringCategory']));
  }
  return problems;
}

function checkTemplateErrorOptions(message: Fields): Problem[] {
  const reporting = message.TemplateErrorReporting;
  const problems = reporting === undefined ? [] : checkAddress(reporting, 'TemplateErrorReporting');
  if ((reporting !== undefined || message.TemplateErrorDeliver !== undefined) && message.TemplateLanguage !== true) {
    problems.push(
      problem('send-0016', '"TemplateErrorReporting" and "TemplateErrorDeliver" can only be used when "TemplateLanguage" is true.', ['TemplateLanguage']),
    );
  }
  return problems;
}

function checkAttachments(message: Fields): Problem[] {
  return ATTACHMENT_FIELDS.flatMap((field) => {
    const list = message[field];
    if (list === undefined || list === null) {
      return [];
    }
    if (!Array.isArray(list)) {
      return [typeMismatch(field, 'array of attachments')];
    }
    return list.flatMap((attachment: unknown, index) => {
      const path = `${field}[${index}]`;
      if (!isRecord(attachment)) {
        return [typeMismatch(path, 'attachment')];
      }
      return ATTACHMENT_PROPERTIES.flatMap((property) => {
        const value = attachment[property];
        if (value === undefined || value === null) {
          return [problem('mj-0003', `Missing mandatory property "${path}.${property}".`, [`${path}.${property}`])];
        }
        if (typeof value !== 'string') {
          return [typeMismatch(`${path}.${property}`, 'string')];
        }
        return value === '' ? [emptyString(`${path}.${property}`)] : [];
      });
    });
  });
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
    .map((name) => problem('send-0011', `Header "${name}" is not allowed in "Headers": use the dedicated property.`, [`Headers["${name}"]`]));
}

/**
 * The messageErrorPattern fault: a recipient matching the pattern makes the whole message an error
 * entry with the chosen code, worded as Mailjet's own check for that code words it.
 */
function checkInjectedError(message: Fields, fault: SendContext['messageError']): Problem[] {
  if (fault === undefined) {
    return [];
  }
  const problems = listRecipients(message)
    .filter((recipient) => fault.matches(recipient.email))
    .map((recipient): Problem => {
      const path = `${recipient.field}[${recipient.index}]`;
      switch (fault.code) {
        case 'mj-0005':
          return valueNotAllowed('TrackOpens', TRACKING_VALUES.map((value) => `"${value}"`).join(', '));
        case 'mj-0006':
          return tooLong('Subject', MAX_SUBJECT_LENGTH);
        case 'mj-0012':
          return emptyString(`${path}.Email`);
        case 'mj-0013':
          return invalidEmail(recipient.email, path);
        case 'send-0008':
          return unauthorizedSender(isRecord(message.From) ? String(message.From.Email) : '');
      }
    });
  // A message-wide error is reported once, however many recipients matched.
  return problems.filter((detail, index) => problems.findIndex((other) => other.message === detail.message) === index);
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

/** A validated message as accepted: ids, campaign, tracking and the recipients Mailjet will block. */
function toSimulatedMessage(message: Fields, context: SendContext, sandbox: boolean): SimulatedMessage {
  const customCampaign = optionalString(message.CustomCampaign) ?? '';
  // SandboxMode creates no campaign and reaches no one, so it never counts toward deduplication.
  const campaign = sandbox || customCampaign === '' ? undefined : context.campaign(customCampaign);
  const deduplicateCampaign = message.DeduplicateCampaign === true;
  const templateLanguage = message.TemplateLanguage === true;
  const templateErrorDeliver = message.TemplateErrorDeliver === true;
  const templateError = templateLanguage ? findTemplateError(message) : undefined;
  const recipients = listRecipients(message).map(({ email, name, kind }): SimulatedRecipient => {
    const firstInCampaign = campaign?.reach(email) ?? true;
    const blockedFor =
      deduplicateCampaign && !firstInCampaign
        ? DUPLICATE_IN_CAMPAIGN
        : templateError !== undefined && !templateErrorDeliver
          ? TEMPLATE_LANGUAGE_ERROR
          : undefined;
    return {
      email,
      ...(name !== undefined && { name }),
      kind,
      ...(sandbox ? SANDBOX_IDENTITY : context.identify(email)),
      status: 'queued',
      ...(blockedFor !== undefined && { blockedFor }),
    };
  });
  const html = optionalString(message.HTMLPart);
  const templateId = typeof message.TemplateID === 'number' ? message.TemplateID : undefined;
  const from = isRecord(message.From) ? optionalString(message.From.Email) : undefined;
  const urlTags = optionalString(message.URLTags) ?? '';
  const link = html?.match(LINK_PATTERN)?.[1] ?? (templateId === undefined ? undefined : TEMPLATE_LINK);
  const reporting = isRecord(message.TemplateErrorReporting) ? optionalString(message.TemplateErrorReporting.Email) : undefined;
  return {
    customId: optionalString(message.CustomID) ?? '',
    subject: optionalString(message.Subject),
    from,
    hasHtml: nonEmptyString(html),
    templateId,
    recipients,
    receivedAt: context.receivedAt,
    eventPayload: optionalString(message.EventPayload) ?? '',
    customCampaign,
    campaignId: campaign?.id ?? 0,
    deduplicateCampaign,
    tracking: {
      opens: isTracked(message.TrackOpens, context.accountTracking.opens),
      clicks: isTracked(message.TrackClicks, context.accountTracking.clicks),
    },
    urlTags,
    monitoringCategory: optionalString(message.MonitoringCategory),
    priority: typeof message.Priority === 'number' ? message.Priority : undefined,
    templateLanguage,
    templateErrorDeliver,
    templateError,
    templateErrorReportedTo: templateError === undefined ? undefined : reporting,
    clickUrl: link === undefined ? undefined : withUrlTags(link, urlTags),
  };
}

/** "enabled" and "disabled" force tracking on or off; "account_default" or no value follow the account. */
function isTracked(value: unknown, accountDefault: boolean): boolean {
  return value === 'enabled' || (value !== 'disabled' && accountDefault);
}

/** Mailjet adds URLTags to every link before its click tracking, so the clicked URL carries them. */
function withUrlTags(link: string, urlTags: string): string {
  if (urlTags === '') {
    return link;
  }
  const [beforeFragment = '', fragment] = link.split('#', 2);
  const separator = beforeFragment.includes('?') ? '&' : '?';
  return `${beforeFragment}${separator}${urlTags}${fragment === undefined ? '' : `#${fragment}`}`;
}

/** The first {{var:name}} of the subject or parts that has no default and that Variables does not define. */
function findTemplateError(message: Fields): string | undefined {
  const variables = isRecord(message.Variables) ? message.Variables : {};
  for (const field of ['Subject', 'TextPart', 'HTMLPart']) {
    const text = message[field];
    const name = typeof text === 'string' ? findUndefinedVariable(text, variables) : undefined;
    if (name !== undefined) {
      return `${field}: variable "${name}" is not defined and has no default value`;
    }
  }
  return undefined;
}

/**
 * Scans left to right and resumes after each closing }}, so every character is read a bounded number
 * of times: a regular expression here backtracks quadratically on a part full of unclosed "{{var:".
 */
function findUndefinedVariable(text: string, variables: Fields): string | undefined {
  let from = text.indexOf(TEMPLATE_VARIABLE_START);
  while (from !== -1) {
    const start = from + TEMPLATE_VARIABLE_START.length;
    const end = text.indexOf(TEMPLATE_VARIABLE_END, start);
    if (end === -1) {
      return undefined;
    }
    // A colon after the name starts its default value, which makes any name safe.
    const name = text.slice(start, end);
    if (!name.includes(':') && !Object.hasOwn(variables, name)) {
      return name;
    }
    from = text.indexOf(TEMPLATE_VARIABLE_START, end + TEMPLATE_VARIABLE_END.length);
  }
  return undefined;
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
    StatusCode: detail.status,
    ErrorMessage: detail.message,
    ErrorRelatedTo: detail.relatedTo,
  };
}

function problem(code: string, message: string, relatedTo: string[], status = 400): Problem {
  return { code, message, relatedTo, status };
}

function typeMismatch(path: string, expected: string): Problem {
  return problem('mj-0004', `Type mismatch. Expected type "${expected}".`, [path]);
}

function valueNotAllowed(path: string, allowed: string): Problem {
  return problem('mj-0005', `Value not allowed for property "${path}". Allowed: ${allowed}.`, [path]);
}

function tooLong(path: string, max: number): Problem {
  return problem('mj-0006', `Property "${path}" is too long (max ${max} characters).`, [path]);
}

function emptyString(path: string): Problem {
  return problem('mj-0012', `Property "${path}" must not be an empty string.`, [path]);
}

function invalidEmail(email: string, path: string): Problem {
  return problem('mj-0013', `"${email}" is an invalid email address.`, [`${path}.Email`]);
}

/** Mailjet's send-0008, word for word as its SDKs' tests quote it. */
function unauthorizedSender(email: string): Problem {
  return problem('send-0008', `"${email}" is not an authorized sender email address for your account.`, ['From'], 403);
}

/** The part of an address before the last @, in lower case: where the simulator's conventions look. */
export function localPart(email: string): string {
  return email.slice(0, Math.max(email.lastIndexOf('@'), 0)).toLowerCase();
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
