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

/** Everything about a message but its recipients (kept as rows) and jetpost's own bookkeeping. */
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
}

export interface NewJob {
  content: MessageContent;
  recipients: Recipient[];
  customId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  sendAt?: Date | undefined;
  priority: number;
}
