// The domain shape of a message as jetpost stores it (email_send_jobs.message) and hands to the
// Mailjet mapping. HTTP validates requests into this shape; nothing here knows about HTTP.

export interface Address {
  email: string;
  name?: string | undefined;
}

export type RecipientKind = 'to' | 'cc' | 'bcc';

export interface Recipient extends Address {
  kind: RecipientKind;
}

export interface Attachment {
  filename: string;
  content_type: string;
  /** Base64 content, checked at the boundary. */
  content: string;
  /** Set for inline attachments referenced as cid:<content_id> from the HTML part. */
  content_id?: string | undefined;
}

/** Mailjet's TrackOpens / TrackClicks values. */
export const TRACKING_VALUES = ['account_default', 'disabled', 'enabled'] as const;
export type Tracking = (typeof TRACKING_VALUES)[number];

/**
 * Everything about a message but its recipients (kept as rows) and jetpost's own bookkeeping. The
 * Send API options below are stored with the message and map one to one onto Mailjet's fields
 * (mailjet-payload.ts); `sandbox` is Mailjet's per-call SandboxMode, so a call never mixes values.
 */
export interface MessageContent {
  from?: Address | undefined;
  reply_to?: Address | undefined;
  subject?: string | undefined;
  text?: string | undefined;
  html?: string | undefined;
  template_id?: number | undefined;
  /** Mailjet's TemplateLanguage: on by default when variables are given. */
  template_language?: boolean | undefined;
  variables?: Record<string, unknown> | undefined;
  headers?: Record<string, string> | undefined;
  attachments?: Attachment[] | undefined;
  track_opens?: Tracking | undefined;
  track_clicks?: Tracking | undefined;
  /** Mailjet's CustomCampaign. */
  campaign?: string | undefined;
  deduplicate_campaign?: boolean | undefined;
  event_payload?: string | undefined;
  url_tags?: string | undefined;
  monitoring_category?: string | undefined;
  /** Mailjet's Priority (0–3), its own sending queue; not jetpost's claim order (NewJob.priority). */
  mailjet_priority?: number | undefined;
  template_error_reporting?: Address | undefined;
  template_error_deliver?: boolean | undefined;
  sandbox?: boolean | undefined;
}

export interface NewJob {
  content: MessageContent;
  recipients: Recipient[];
  customId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  sendAt?: Date | undefined;
  priority: number;
}
