// Jobs → Mailjet Send API v3.1 bodies, pure. One job is one Mailjet message object; a call carries at
// most 50 recipients over all its messages (To+Cc+Bcc) and stays under Mailjet's ~15 MB request cap.
import type { Address, MessageContent, Recipient, Tracking } from './message.js';

export const MAX_RECIPIENTS_PER_CALL = 50;
/** Mailjet rejects requests above ~15 MB with a 413; keep a margin for the envelope and encoding. */
export const MAX_BYTES_PER_CALL = 14 * 1024 * 1024;

/**
 * Headers a message may not set, in lower case: Mailjet's own list (it sets them itself or has a
 * dedicated property, and refuses them with send-0011), and the MIME structure (Reply-To,
 * Content-Type, MIME-Version, Content-Transfer-Encoding), which follows from the message's fields.
 */
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
    'Reply-To',
    'Content-Type',
    'MIME-Version',
    'Content-Transfer-Encoding',
  ].map((name) => name.toLowerCase()),
);

export interface SendableJob {
  id: string;
  /** The app's own custom_id, carried in the CustomID after the job id. */
  customId?: string | null | undefined;
  content: MessageContent;
  recipients: readonly Recipient[];
}

export interface MailjetAddress {
  Email: string;
  Name?: string;
}

export interface MailjetAttachment {
  ContentType: string;
  Filename: string;
  Base64Content: string;
  ContentID?: string;
}

export interface MailjetMessage {
  From?: MailjetAddress;
  To: MailjetAddress[];
  Cc?: MailjetAddress[];
  Bcc?: MailjetAddress[];
  ReplyTo?: MailjetAddress;
  Subject?: string;
  TextPart?: string;
  HTMLPart?: string;
  TemplateID?: number;
  TemplateLanguage?: boolean;
  Variables?: Record<string, unknown>;
  Headers?: Record<string, string>;
  Attachments?: MailjetAttachment[];
  InlinedAttachments?: MailjetAttachment[];
  CustomID: string;
  EventPayload?: string;
  CustomCampaign?: string;
  DeduplicateCampaign?: boolean;
  TrackOpens?: Tracking;
  TrackClicks?: Tracking;
  URLTags?: string;
  MonitoringCategory?: string;
  Priority?: number;
  TemplateErrorReporting?: MailjetAddress;
  TemplateErrorDeliver?: boolean;
}

export interface MailjetSendBody {
  Messages: MailjetMessage[];
  /** Per call in v3.1, not per message: a call carries only sandbox jobs or only real ones. */
  SandboxMode?: boolean;
}

/**
 * The JSON text of one Send API call (a MailjetSendBody) from its messages' JSON texts, which packing
 * already made to measure them: each message is serialised once. SandboxMode only when set, so a
 * real call looks as it always did.
 */
export function sendBodyJson(messageJson: readonly string[], sandbox: boolean): string {
  return `{"Messages":[${messageJson.join(',')}]${sandbox ? ',"SandboxMode":true' : ''}}`;
}

const CUSTOM_ID_PREFIX = 'jetpost-';

/**
 * The CustomID a job's message carries: `jetpost-<job id>`, followed by `:<custom_id>` when the app
 * gave one. Mailjet echoes it in every event and in its logs, so the app finds its own id there
 * (after the first colon), while jetpost keeps what it needs: the job id first makes every CustomID
 * unique (apps reuse custom_ids), and the reconcile look-up of a maybe-sent job asks Mailjet for
 * exactly this string, rebuilt from the job's id and its stored custom_id. The app's id is not put
 * in EventPayload instead, which is the app's own field (event_payload) and would leave it out of
 * Mailjet's message logs and look-ups.
 */
export function customIdForJob(jobId: string, appCustomId?: string | null): string {
  return appCustomId ? `${CUSTOM_ID_PREFIX}${jobId}:${appCustomId}` : `${CUSTOM_ID_PREFIX}${jobId}`;
}

/** The job id a CustomID of jetpost's carries (undefined for anyone else's CustomID). */
export function jobIdFromCustomId(customId: string | undefined): string | undefined {
  const match = /^jetpost-(\d{1,19})(?::|$)/.exec(customId ?? '');
  return match?.[1];
}

function toAddress({ email, name }: Address): MailjetAddress {
  return name ? { Email: email, Name: name } : { Email: email };
}

function recipientsOf(job: SendableJob, kind: Recipient['kind']): MailjetAddress[] {
  return job.recipients.filter((recipient) => recipient.kind === kind).map(toAddress);
}

export function toMailjetMessage(job: SendableJob): MailjetMessage {
  const { content } = job;
  const message: MailjetMessage = { To: recipientsOf(job, 'to'), CustomID: customIdForJob(job.id, job.customId) };
  const cc = recipientsOf(job, 'cc');
  const bcc = recipientsOf(job, 'bcc');
  if (content.from) {
    message.From = toAddress(content.from);
  }
  if (cc.length > 0) {
    message.Cc = cc;
  }
  if (bcc.length > 0) {
    message.Bcc = bcc;
  }
  if (content.reply_to) {
    message.ReplyTo = toAddress(content.reply_to);
  }
  if (content.subject !== undefined) {
    message.Subject = content.subject;
  }
  if (content.text !== undefined) {
    message.TextPart = content.text;
  }
  if (content.html !== undefined) {
    message.HTMLPart = content.html;
  }
  // Variables only reach a template, or the template language in text and html, when the language is
  // on; that is what a caller passing them means. TemplateErrorReporting/Deliver only work with it on
  // (send-0016). Sent with a template always, else only when on: a message without either is sent as before.
  const templateLanguage =
    content.template_language ??
    (content.variables !== undefined || content.template_error_reporting !== undefined || content.template_error_deliver !== undefined);
  if (content.template_id !== undefined) {
    message.TemplateID = content.template_id;
  }
  if (content.template_id !== undefined || templateLanguage) {
    message.TemplateLanguage = templateLanguage;
  }
  if (content.variables !== undefined) {
    message.Variables = content.variables;
  }
  if (content.headers !== undefined && Object.keys(content.headers).length > 0) {
    message.Headers = content.headers;
  }
  const attachments = content.attachments ?? [];
  const regular = attachments.filter((attachment) => attachment.content_id === undefined);
  const inline = attachments.filter((attachment) => attachment.content_id !== undefined);
  if (regular.length > 0) {
    message.Attachments = regular.map(toMailjetAttachment);
  }
  if (inline.length > 0) {
    message.InlinedAttachments = inline.map(toMailjetAttachment);
  }
  return Object.assign(message, sendOptions(content));
}

/** The Send API options of a message (message.ts), each under Mailjet's name, only those given. */
function sendOptions(content: MessageContent): Partial<MailjetMessage> {
  const options: { [Field in keyof MailjetMessage]?: MailjetMessage[Field] | undefined } = {
    TrackOpens: content.track_opens,
    TrackClicks: content.track_clicks,
    CustomCampaign: content.campaign,
    // Mailjet refuses DeduplicateCampaign without a campaign (send-0012); the API refuses it too.
    DeduplicateCampaign: content.campaign === undefined ? undefined : content.deduplicate_campaign,
    EventPayload: content.event_payload,
    URLTags: content.url_tags,
    MonitoringCategory: content.monitoring_category,
    Priority: content.mailjet_priority,
    TemplateErrorReporting: content.template_error_reporting && toAddress(content.template_error_reporting),
    TemplateErrorDeliver: content.template_error_deliver,
  };
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

function toMailjetAttachment(attachment: NonNullable<MessageContent['attachments']>[number]): MailjetAttachment {
  const out: MailjetAttachment = {
    ContentType: attachment.content_type,
    Filename: attachment.filename,
    Base64Content: attachment.content,
  };
  if (attachment.content_id !== undefined) {
    out.ContentID = attachment.content_id;
  }
  return out;
}

/** Recipients as Mailjet counts them: To+Cc+Bcc of a message, each address once. */
export function countRecipients<T extends Pick<Recipient, 'email'>>(recipients: readonly T[]): number {
  // Most messages have one: counted twice per message sent, a set each time cost more than the rest.
  if (recipients.length < 2) {
    return recipients.length;
  }
  return new Set(recipients.map((recipient) => recipient.email.toLowerCase())).size;
}

export interface PackableMessage {
  recipients: number;
  bytes: number;
}

/**
 * Splits messages, in order, into calls of at most `maxRecipients` recipients, `maxBytes` bytes and
 * `maxMessages` messages. Returns the index groups. A message alone over a limit gets a call of its
 * own (Mailjet then answers for that message only).
 */
export function packCalls(
  messages: readonly PackableMessage[],
  maxRecipients = MAX_RECIPIENTS_PER_CALL,
  maxBytes = MAX_BYTES_PER_CALL,
  maxMessages = Infinity,
): number[][] {
  const calls: number[][] = [];
  let current: number[] = [];
  let recipients = 0;
  let bytes = 0;
  messages.forEach((message, index) => {
    if (current.length > 0 && (current.length >= maxMessages || recipients + message.recipients > maxRecipients || bytes + message.bytes > maxBytes)) {
      calls.push(current);
      current = [];
      recipients = 0;
      bytes = 0;
    }
    current.push(index);
    recipients += message.recipients;
    bytes += message.bytes;
  });
  if (current.length > 0) {
    calls.push(current);
  }
  return calls;
}

export function messageBytes(message: MailjetMessage): number {
  return Buffer.byteLength(JSON.stringify(message));
}

/** The largest message jetpost queues: one that fits a call of its own. */
export const MAX_MESSAGE_BYTES = MAX_BYTES_PER_CALL;
/** The largest job id (PostgreSQL bigint): its CustomID is the longest a message carries. */
const LONGEST_JOB_ID = '9223372036854775807';

/**
 * A message's size as Mailjet receives it, known before it has a job id: its JSON in the Send API
 * body, attachments in base64 and text escaped as JSON, with the longest CustomID.
 */
export function queuedMessageBytes(content: MessageContent, recipients: readonly Recipient[], customId?: string): number {
  return messageBytes(toMailjetMessage({ id: LONGEST_JOB_ID, customId, content, recipients }));
}

/** Bytes of JSON a value takes at most: a UTF-16 code unit of a string or key is at most 6 (\u001f), a number at most 24 characters. */
function jsonBytesAtMost(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 6 * value.length + 2;
    case 'number':
      return 24;
    case 'boolean':
      return 5;
    case 'object': {
      if (value === null) {
        return 4;
      }
      let bytes = 2;
      if (Array.isArray(value)) {
        for (const item of value as unknown[]) {
          bytes += jsonBytesAtMost(item) + 1;
        }
        return bytes;
      }
      for (const key in value) {
        bytes += 6 * key.length + 4 + jsonBytesAtMost((value as Record<string, unknown>)[key]);
      }
      return bytes;
    }
    default:
      return 0;
  }
}

/**
 * What toMailjetMessage adds beyond the content's own fields, at most: the To, Cc and Bcc lists, a
 * second attachment list, TemplateLanguage and the CustomID's prefix and longest job id.
 */
const ADDED_FIELDS_BYTES = 256;

/**
 * At least queuedMessageBytes, in a fraction of its cost, for a message the request schemas
 * accepted (its nesting is bounded): each Mailjet field name is at most six times as long as the
 * content field it comes from, and the content's values are Mailjet's. Only a message this bound
 * puts near the cap needs its exact size.
 */
export function queuedMessageBytesAtMost(content: MessageContent, recipients: readonly Recipient[], customId?: string): number {
  let bytes = jsonBytesAtMost(content) + ADDED_FIELDS_BYTES + (customId === undefined ? 0 : jsonBytesAtMost(customId));
  for (const recipient of recipients) {
    bytes += jsonBytesAtMost(recipient.email) + (recipient.name === undefined ? 0 : jsonBytesAtMost(recipient.name)) + 24;
  }
  return bytes;
}
