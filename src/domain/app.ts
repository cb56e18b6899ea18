// Apps (the internal services that send through jetpost), their API keys and their webhook.
import type { ChangeType } from './status-change.js';

export interface App {
  id: string;
  name: string;
  createdAt: Date;
}

/** The app a request's API key belongs to. */
export interface AppIdentity {
  id: string;
  name: string;
  /** The key the request presented: POST /queue checks it is still unrevoked when it stores the messages. */
  keyId?: string;
}

export interface ApiKeyRow {
  keyId: string;
  appId: string;
  appName: string;
  keyHash: Buffer;
  revokedAt: Date | null;
}

export interface ApiKeyInfo {
  prefix: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface AppWithKeys extends App {
  keys: ApiKeyInfo[];
}

export interface AppWebhook {
  url: string;
  /** The current signing secret, `whsec_` + base64 (Standard Webhooks). */
  secret: string;
  /** The change types delivered; null: every type. */
  eventTypes: ChangeType[] | null;
  /** Set when its receiver answered `410 Gone`: nothing is delivered until the webhook is set again. */
  disabled: { at: Date; reason: string } | null;
  /** Secrets replaced by a rotation that still sign deliveries until they expire, newest first. */
  previousSecrets: PreviousSecret[];
  /** The pause of its deliveries running now, if any. */
  pause: WebhookPause | null;
}

/**
 * A pause of an app's deliveries: its receiver answered 429, 502, 503 or 504, or could not be
 * reached, and none of its deliveries is attempted until `until`; then one goes alone, and its
 * answer ends the pause or starts the next, twice as long (docs/webhooks.md).
 */
export interface WebhookPause {
  until: Date;
  /** Pauses in a row so far, this one included (each is twice as long as the last). */
  pausesInRow: number;
  /** The last failed attempt among the app's pending deliveries, as recorded (why it paused); null when none is left pending. */
  lastAttempt: { statusCode: number | null; error: string } | null;
}

/** How a pause ends by itself, as the API and the dashboard tell the operator who sees one. */
export const WEBHOOK_PAUSE_ENDS_BY_ITSELF =
  'one delivery then goes alone, and an answer other than 429, 502, 503 or 504 ends the pause (else the next is twice as long)';

export interface PreviousSecret {
  secret: string;
  expiresAt: Date;
}

/** App names appear in URLs, logs and CLI output: keep them plain. */
export const APP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const APP_NAME_RULE = 'letters, digits and . _ - (at most 100), starting with a letter or digit';
