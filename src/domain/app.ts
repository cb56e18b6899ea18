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
}

export interface PreviousSecret {
  secret: string;
  expiresAt: Date;
}

/** App names appear in URLs, logs and CLI output: keep them plain. */
export const APP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const APP_NAME_RULE = 'letters, digits and . _ - (at most 100), starting with a letter or digit';
