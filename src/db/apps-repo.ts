// apps and api_keys.
import type { ApiKeyRow, App, AppWebhook, AppWithKeys } from '../domain/app.js';
import type { ChangeType } from '../domain/status-change.js';
import { query, type Queryable } from './pool.js';

function toApp(row: Record<string, unknown>): App {
  return { id: String(row['id']), name: String(row['name']), createdAt: row['created_at'] as Date };
}

const INSERT_APP = `
  insert into apps (name)
  values ($1)
  returning id, name, created_at`;

export async function insertApp(db: Queryable, name: string): Promise<App> {
  const [row] = await query(db, INSERT_APP, [name]);
  return toApp(row!);
}

// Whatever its case, as names are unique (sql/35_…): through that unique index.
const FIND_APP_BY_NAME = `
  select id, name, created_at
  from apps
  where lower(name) = lower($1)`;

export async function findAppByName(db: Queryable, name: string): Promise<App | undefined> {
  const [row] = await query(db, FIND_APP_BY_NAME, [name]);
  return row && toApp(row);
}

// Taken by a key rotation before it adds its key: two rotations of one app at once then run one
// after the other, so that one with revoke_others also revokes the key the other just added (each
// revoked only the keys committed before it began: 8 at once left 5 active). NO KEY UPDATE: the
// foreign-key checks of messages stored for the app meanwhile (FOR KEY SHARE) do not wait for it.
const LOCK_APP = `select 1 from apps where id = $1::bigint for no key update`;

export async function lockApp(tx: Queryable, appId: string): Promise<void> {
  await query(tx, LOCK_APP, [appId]);
}

const INSERT_API_KEY = `
  insert into api_keys (app_id, prefix, key_hash)
  values ($1::bigint, $2, $3)
  returning id`;

export async function insertApiKey(db: Queryable, appId: string, prefix: string, keyHash: Buffer): Promise<string> {
  const [row] = await query(db, INSERT_API_KEY, [appId, prefix, keyHash]);
  return String(row!['id']);
}

const FIND_KEY_BY_PREFIX = `
  select k.id as key_id, k.app_id, a.name as app_name, k.key_hash, k.revoked_at
  from api_keys k
  join apps a on a.id = k.app_id
  where k.prefix = $1`;

export async function findApiKeyByPrefix(db: Queryable, prefix: string): Promise<ApiKeyRow | undefined> {
  const [row] = await query(db, FIND_KEY_BY_PREFIX, [prefix]);
  if (!row) {
    return undefined;
  }
  return {
    keyId: String(row['key_id']),
    appId: String(row['app_id']),
    appName: String(row['app_name']),
    keyHash: row['key_hash'] as Buffer,
    revokedAt: (row['revoked_at'] as Date | null) ?? null,
  };
}

const LIST_APPS = `
  select a.id, a.name, a.created_at,
    coalesce(
      json_agg(json_build_object('prefix', k.prefix, 'created_at', k.created_at, 'revoked_at', k.revoked_at) order by k.id)
        filter (where k.id is not null),
      '[]'
    ) as keys
  from apps a
  left join api_keys k on k.app_id = a.id
  group by a.id
  order by a.name`;

export async function listAppsWithKeys(db: Queryable): Promise<AppWithKeys[]> {
  const rows = await query(db, LIST_APPS);
  return rows.map((row) => ({
    ...toApp(row),
    keys: (row['keys'] as Array<{ prefix: string; created_at: string; revoked_at: string | null }>).map((key) => ({
      prefix: key.prefix,
      createdAt: new Date(key.created_at),
      revokedAt: key.revoked_at === null ? null : new Date(key.revoked_at),
    })),
  }));
}

const FIND_LIVE_KEY_IDS = `
  select id::text
  from api_keys
  where id = any($1::bigint[])
    and revoked_at is null`;

/** Which of these keys exist and are not revoked. */
export async function findLiveApiKeyIds(db: Queryable, keyIds: readonly string[]): Promise<Set<string>> {
  const rows = await query(db, FIND_LIVE_KEY_IDS, [keyIds]);
  return new Set(rows.map((row) => String(row['id'])));
}

const REVOKE_KEYS = `
  update api_keys
  set revoked_at = now()
  where app_id = $1::bigint
    and revoked_at is null
    and ($2::text is null or prefix = $2)
    and ($3::text is null or prefix <> $3)
  returning prefix`;

/** Revokes the app's key with this prefix, or (prefix null) all its keys but `except`. Returns the revoked prefixes. */
export async function revokeApiKeys(db: Queryable, appId: string, prefix: string | null, except: string | null = null): Promise<string[]> {
  const rows = await query(db, REVOKE_KEYS, [appId, prefix, except]);
  return rows.map((row) => String(row['prefix']));
}

// The row is locked when read in a transaction that changes the webhook (a rotation reads the
// secret it retires), so that two changes at once apply one after the other.
const FIND_WEBHOOK = `
  select webhook_url, webhook_secret, webhook_event_types, webhook_disabled_at, webhook_disabled_reason
  from apps
  where id = $1::bigint
  for update`;

/** The app's webhook settings (its previous secrets are in webhook-previous-secrets-repo.ts, its pause below). */
export type WebhookSettings = Omit<AppWebhook, 'previousSecrets' | 'pause'>;

export async function findWebhook(db: Queryable, appId: string): Promise<WebhookSettings | undefined> {
  const [row] = await query(db, FIND_WEBHOOK, [appId]);
  const url = row?.['webhook_url'];
  if (!row || typeof url !== 'string' || url === '') {
    return undefined;
  }
  const disabledAt = row['webhook_disabled_at'] as Date | null;
  return {
    url,
    secret: String(row['webhook_secret']),
    eventTypes: (row['webhook_event_types'] as ChangeType[] | null) ?? null,
    disabled: disabledAt === null ? null : { at: disabledAt, reason: String(row['webhook_disabled_reason']) },
  };
}

// A throttle belongs to the endpoint that asked for it: a new URL starts without one.
const SET_WEBHOOK = `
  update apps
  set webhook_url = $2,
    webhook_secret = $3,
    webhook_event_types = $4::text[],
    webhook_disabled_at = $5,
    webhook_disabled_reason = $6,
    webhook_throttled_until = case when webhook_url is distinct from $2 then null else webhook_throttled_until end,
    webhook_pauses = case when webhook_url is distinct from $2 then 0 else webhook_pauses end
  where id = $1::bigint`;

/** Sets (url, secret, types) or removes (all null) the app's webhook. */
export async function setWebhook(db: Queryable, appId: string, webhook: WebhookSettings | null): Promise<void> {
  await query(db, SET_WEBHOOK, [
    appId,
    webhook?.url ?? null,
    webhook?.secret ?? null,
    webhook?.eventTypes ?? null,
    webhook?.disabled?.at ?? null,
    webhook?.disabled?.reason ?? null,
  ]);
}

// A pause that is still running: once `until` has passed, one delivery goes alone (END_WEBHOOK_PAUSE).
const FIND_WEBHOOK_PAUSE = `
  select webhook_throttled_until, webhook_pauses
  from apps
  where id = $1::bigint
    and webhook_throttled_until > now()`;

/** The pause of the app's deliveries running now: until when, and how many in a row. */
export async function findWebhookPause(db: Queryable, appId: string): Promise<{ until: Date; pausesInRow: number } | undefined> {
  const [row] = await query(db, FIND_WEBHOOK_PAUSE, [appId]);
  return row && { until: row['webhook_throttled_until'] as Date, pausesInRow: Number(row['webhook_pauses']) };
}

// Only while the app still has the webhook that answered: one set meanwhile is not disabled by an
// answer from the URL it replaced.
const DISABLE_WEBHOOK = `
  update apps
  set webhook_disabled_at = now(),
    webhook_disabled_reason = $3
  where id = $1::bigint
    and webhook_url = $2
    and webhook_disabled_at is null
  returning id`;

/** Disables the app's webhook at `url` (its receiver answered 410 Gone); false when it is not that webhook any more, or already disabled. */
export async function disableWebhook(db: Queryable, appId: string, url: string, reason: string): Promise<boolean> {
  return (await query(db, DISABLE_WEBHOOK, [appId, url, reason])).length > 0;
}

// A pause counts once however many deliveries in flight meet it: only the first, which finds no
// pause running, adds to the pauses in a row (whose count makes the next pause longer). No pause at
// all (null) starts a new row at 1: releases before sql/39 end a pause, or set a new URL, without
// knowing the count, and a count they left must not make a new outage's first pause an hour long.
const THROTTLE_WEBHOOK = `
  update apps
  set webhook_pauses = case
      when webhook_throttled_until is null then 1
      when webhook_throttled_until <= now() then webhook_pauses + 1
      else webhook_pauses
    end,
    webhook_throttled_until = greatest(webhook_throttled_until, $3::timestamptz)
  where id = $1::bigint
    and webhook_url = $2`;

/** Holds back the app's deliveries to `url` until `until` (its receiver is overloaded or unreachable). */
export async function throttleWebhook(db: Queryable, appId: string, url: string, until: Date): Promise<void> {
  await query(db, THROTTLE_WEBHOOK, [appId, url, until]);
}

// Left set (to now), the pause still makes the next delivery go alone: its answer ends the pause or starts the next.
const END_WEBHOOK_PAUSE = `
  update apps
  set webhook_throttled_until = now()
  where id = $1::bigint
    and webhook_throttled_until > now()`;

/** Ends the pause of the app's deliveries now (an operator redelivers): one goes at once, alone. */
export async function endWebhookPause(db: Queryable, appId: string): Promise<void> {
  await query(db, END_WEBHOOK_PAUSE, [appId]);
}

// Only a pause that is over: another delivery may have started the next one meanwhile.
const RESUME_WEBHOOK = `
  update apps
  set webhook_throttled_until = null,
    webhook_pauses = 0
  where id = $1::bigint
    and webhook_url = $2
    and webhook_throttled_until <= now()`;

/**
 * Ends the pause of the app's deliveries to `url` (a probe was answered): until then, those that
 * follow a pause go one at a time (webhook-deliveries-repo.ts).
 */
export async function resumeWebhook(db: Queryable, appId: string, url: string): Promise<void> {
  await query(db, RESUME_WEBHOOK, [appId, url]);
}
