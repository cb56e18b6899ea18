// Test data in the style of river's testfactory: every test makes the rows and request bodies it
// needs here, with one set of defaults it overrides only where the test is about that field. Rows go
// in through jetpost's own services and repos; a status no single call reaches (a job that failed
// after its attempts, one deferred) is set by the one UPDATE below, so that it stays in one place.
import { randomBytes } from 'node:crypto';

import { insertJobs } from '../src/db/jobs-repo.js';
import { type Pool, withTransaction } from '../src/db/pool.js';
import { addSuppression, suppressRecipients } from '../src/db/suppressions-repo.js';
import type { App } from '../src/domain/app.js';
import type { ClaimedJob } from '../src/domain/job.js';
import type { NewJob, Recipient } from '../src/domain/message.js';
import type { RecipientRow } from '../src/domain/recipient.js';
import type { JobStatus } from '../src/domain/status.js';
import type { SuppressionReason } from '../src/domain/suppression.js';
import { addApiKey, createAppWithKey } from '../src/services/apps.js';

// ---- request bodies ---------------------------------------------------------------------------

/** The body of a POST /queue message: one To, a subject and a text part. */
export type MessageBody = Record<string, unknown>;

/** A POST /queue message; `extra` replaces or adds fields (`undefined` drops one from the JSON). */
export function message(extra: MessageBody = {}): MessageBody {
  return { from: { email: 'app@example.com', name: 'App' }, to: 'ada@example.org', subject: 'Hello', text: 'Hi there', ...extra };
}

/** A POST /queue message to `to` (one address or several). */
export function messageTo(to: string | readonly string[], extra: MessageBody = {}): MessageBody {
  return message({ to, ...extra });
}

/** A message of Mailjet's Send API v3.1 (what the simulator receives), to one address. */
export function mailjetMessage(to: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { From: { Email: 'app@example.com' }, To: [{ Email: to }], Subject: 'Hello', TextPart: 'Hi there', ...extra };
}

// ---- rows -------------------------------------------------------------------------------------

/** A unique name for an app, readable in a failing test's output. */
export function appName(prefix = 'app'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface MadeApp {
  id: string;
  name: string;
  /** Its API key, as the app sends it (`Bearer <key>`). */
  key: string;
  /** The key's public prefix (what the admin routes name it by). */
  prefix: string;
  app: App;
}

/** An app with one API key. */
export async function makeApp(pool: Pool, options: { name?: string } = {}): Promise<MadeApp> {
  const { app, key } = await createAppWithKey(pool, options.name ?? appName());
  return { id: app.id, name: app.name, key, prefix: prefixOf(key), app };
}

/** Another key for an app (`revokeOthers`: the app's other keys are revoked at once). */
export async function makeApiKey(pool: Pool, app: { name: string }, options: { revokeOthers?: boolean } = {}): Promise<{ key: string; prefix: string }> {
  const { key, prefix } = await addApiKey(pool, app.name, options.revokeOthers ?? false);
  return { key, prefix };
}

/** The public prefix of a key `jp_<prefix>_<secret>`. */
export function prefixOf(key: string): string {
  return key.slice(3, 15);
}

export interface JobOptions {
  /** Default: a new app. */
  appId?: string;
  /**
   * Default `queued` (`scheduled` when sendAt is in the future). A failed job has spent all its
   * attempts; its recipients, like those of a cancelled job, are closed the same way. Not
   * `processing`: that is a claim, with a lease (claimJobs).
   */
  status?: Exclude<JobStatus, 'processing'>;
  /** To addresses; default one, ada@example.org. */
  to?: readonly string[];
  customId?: string;
  sendAt?: Date;
  maxAttempts?: number;
  lastError?: string;
  content?: NewJob['content'];
}

/** A job as POST /queue stores it (through the jobs repo), then moved to `status`. Returns its id. */
export async function makeJob(pool: Pool, options: JobOptions = {}): Promise<string> {
  const appId = options.appId ?? (await makeApp(pool)).id;
  const now = new Date();
  const scheduled = options.sendAt !== undefined && options.sendAt > now;
  const recipients: Recipient[] = (options.to ?? ['ada@example.org']).map((email) => ({ kind: 'to' as const, email }));
  const maxAttempts = options.maxAttempts ?? 3;
  const job: NewJob = {
    content: options.content ?? { from: { email: 'app@example.com', name: 'App' }, subject: 'Hello', text: 'Hi there' },
    recipients,
    customId: options.customId,
    sendAt: options.sendAt,
    priority: 0,
  };
  return withTransaction(pool, async (tx) => {
    const [id] = await insertJobs(tx, appId, [{ job, status: scheduled ? 'scheduled' : 'queued', runAt: scheduled ? options.sendAt! : now, maxAttempts }]);
    const status = options.status ?? (scheduled ? 'scheduled' : 'queued');
    if (status !== 'queued' && status !== 'scheduled') {
      const attempts = status === 'failed' ? maxAttempts : 0;
      await tx.query('update email_send_jobs set status = $2, attempts = $3, last_error = $4 where id = $1', [id, status, attempts, options.lastError ?? null]);
      if (status === 'failed' || status === 'cancelled') {
        await tx.query('update email_recipients set status = $2 where job_id = $1', [id, status]);
      }
    }
    return id!;
  });
}

/** The ids of a job's recipients, in their order in the message. */
export async function recipientIds(pool: Pool, jobId: string): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>('select id::text from email_recipients where job_id = $1 order by position', [jobId]);
  return rows.map((row) => row.id);
}

/**
 * An address suppressed for an app: by hand (`manual`, the default), or the way Mailjet's events
 * suppress one, on a recipient of one of the app's jobs (here a cancelled job, which nothing sends).
 */
export async function makeSuppression(
  pool: Pool,
  appId: string,
  email: string,
  options: { reason?: SuppressionReason; detail?: string | null } = {},
): Promise<void> {
  const reason = options.reason ?? 'manual';
  if (reason === 'manual') {
    await addSuppression(pool, appId, email, options.detail ?? null);
    return;
  }
  const jobId = await makeJob(pool, { appId, to: [email], status: 'cancelled' });
  const [recipientId] = await recipientIds(pool, jobId);
  await suppressRecipients(pool, [{ recipientId: recipientId!, reason, detail: options.detail ?? null }]);
}

// ---- rows in memory, for the consumer's pure steps and doubles ----------------------------------

const CLAIMED_AT = new Date('2030-01-01T00:00:00Z');

/** A job as consumer-1 holds it after a claim: first attempt, one recipient, a text message. */
/** A claimed job; without `recipients`, its one recipient is pendingRecipient's. */
export function claimedJob(overrides: Partial<ClaimedJob> = {}): ClaimedJob {
  const job: ClaimedJob = {
    id: '1',
    appId: '7',
    status: 'processing',
    customId: null,
    metadata: null,
    priority: 0,
    sendAt: null,
    runAt: CLAIMED_AT,
    attempts: 1,
    maxAttempts: 3,
    lockedBy: 'consumer-1',
    lockedUntil: CLAIMED_AT,
    lastError: null,
    recipientCount: 1,
    outcomeUnknown: false,
    createdAt: CLAIMED_AT,
    updatedAt: CLAIMED_AT,
    acceptedAt: null,
    content: { from: { email: 'app@example.com' }, subject: 'Hello', text: 'Hi' },
    lookUpOnly: false,
    acceptedUnresolved: false,
    foundEarlier: [],
    lookUpFailingSince: null,
    recipients: [],
    suppressed: new Map(),
    ...overrides,
  };
  return overrides.recipients === undefined ? { ...job, recipients: [pendingRecipient(job)] } : job;
}

/** The To recipient of `job`, not sent yet. */
export function pendingRecipient(job: ClaimedJob, email = 'a@example.com'): RecipientRow {
  return {
    id: `${job.id}1`,
    jobId: job.id,
    position: 0,
    kind: 'to',
    email,
    name: null,
    status: 'pending',
    messageId: null,
    messageUuid: null,
    updatedAt: CLAIMED_AT,
  };
}
