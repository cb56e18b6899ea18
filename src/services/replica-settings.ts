// Replicas on one database started with different settings: each process beats in
// replica_heartbeats (sql/43_…) with the fingerprints of the settings that must agree, and warns of
// each one another live replica has otherwise, naming the setting and that replica (its host and
// pid), once per difference while that replica lives; /metrics counts them
// (jetpost_replica_settings_differing). Only a warning: during a rolling change of a setting,
// replicas differ for a while by design.
import { randomUUID } from 'node:crypto';
import os from 'node:os';

import type { Config } from '../config.js';
import type { Pool } from '../db/pool.js';
import { beat, forgetReplica, otherReplicas } from '../db/replica-heartbeats-repo.js';
import { type SettingDifference, settingDifferences, settingPrints, type SharedSetting } from '../domain/replica-settings.js';
import type { Logger } from '../log.js';

/** How often a process beats, and compares its settings with the others'. */
export const REPLICA_BEAT_MS = 10_000;
/** A replica not seen for three beats is stopped (or frozen): its settings are no longer compared. */
const ALIVE_MS = 3 * REPLICA_BEAT_MS;
/** The row of a process killed without its stop is deleted this long after its last beat. */
const FORGET_AFTER_MS = 600_000;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** What the process runs with, where it is not the setting itself (dev mode's files, the built-in simulator). */
export interface EffectiveSettings {
  readonly mailjetBaseUrl: string;
  readonly eventsCredentials: { readonly username: string; readonly password: string } | undefined;
  readonly adminKey: string | undefined;
}

/**
 * The settings whose difference between replicas breaks a promise: which Mailjet account sends and
 * is looked up, whether a callback or an admin key is taken, when a job or a webhook delivery gives
 * up, how long history is kept (the retention worker of each replica deletes by its own), and the
 * limits shared through the database or split between replicas. Sizes of a process (pool,
 * consumers, body budget) may differ.
 */
export function sharedSettings(config: Config, effective: EffectiveSettings): SharedSetting[] {
  const { retry, webhooks, retention, rateLimits, mailjet } = config;
  return [
    { name: 'MAILJET_API_KEY', value: mailjet.credentials?.apiKey, secret: true },
    { name: 'MAILJET_API_SECRET', value: mailjet.credentials?.apiSecret, secret: true },
    { name: 'MAILJET_BASE_URL', value: effective.mailjetBaseUrl },
    { name: 'MAILJET_RATE_LIMIT', value: mailjet.callsPerSecond },
    { name: 'EVENTS_USERNAME', value: effective.eventsCredentials?.username },
    { name: 'EVENTS_PASSWORD', value: effective.eventsCredentials?.password, secret: true },
    { name: 'ADMIN_API_KEY', value: effective.adminKey, secret: true },
    { name: 'ADMIN_API_KEY_PREVIOUS', value: config.adminApiKeyPrevious, secret: true },
    { name: 'MAX_ATTEMPTS', value: retry.maxAttempts },
    { name: 'RETRY_BASE_MS', value: retry.baseMs },
    { name: 'RETRY_FACTOR', value: retry.factor },
    { name: 'RETRY_MAX_MS', value: retry.maxMs },
    { name: 'RETRY_JITTER', value: retry.jitter },
    { name: 'LOOKUP_RETRY_WINDOW_MS', value: retry.lookUpWindowMs },
    { name: 'WEBHOOK_ALLOWED_TARGETS', value: webhooks.allowedTargets },
    { name: 'WEBHOOK_TIMEOUT_MS', value: webhooks.timeoutMs },
    { name: 'WEBHOOK_RETRY_BASE_MS', value: webhooks.retryBaseMs },
    { name: 'WEBHOOK_RETRY_MAX_MS', value: webhooks.retryMaxMs },
    { name: 'WEBHOOK_RETRY_WINDOW_MS', value: webhooks.retryWindowMs },
    { name: 'QUEUE_RATE_LIMIT', value: rateLimits.queuePerMinute },
    { name: 'EVENTS_RATE_LIMIT', value: rateLimits.eventsPerMinute },
    { name: 'RETENTION_JOBS_DAYS', value: retention.jobsMs / DAY_MS },
    { name: 'RETENTION_IDEMPOTENCY_KEYS_HOURS', value: retention.idempotencyKeysMs / HOUR_MS },
    { name: 'RETENTION_UNMATCHED_EVENTS_DAYS', value: retention.unmatchedEventsMs / DAY_MS },
    { name: 'RETENTION_REJECTED_EVENTS_DAYS', value: retention.rejectedEventsMs / DAY_MS },
  ];
}

export interface ReplicaSettingsWatch {
  /** Beats, then compares with the other live replicas: warns of each difference not warned of yet. */
  beat(): Promise<void>;
  /** Setting → how many other live replicas have it otherwise, as of the last beat. */
  differing(): ReadonlyMap<string, number>;
  /** Deletes this process's row: its settings no longer count (the stop). */
  forget(): Promise<void>;
}

export interface ReplicaSettingsOptions {
  pool: Pool;
  settings: readonly SharedSetting[];
  log: Logger;
  /** The server pid of this process's LISTEN session, written at each beat (db/notify.ts backendPid). */
  listenPid?: () => number | undefined;
}

function describe(difference: SettingDifference, replica: string): string {
  return difference.mine === undefined
    ? `${difference.name} differs from that of the replica ${replica} (compared by hash)`
    : `${difference.name} is ${difference.mine} here and ${difference.theirs} on the replica ${replica}`;
}

export function createReplicaSettingsWatch({ pool, settings, log, listenPid = () => undefined }: ReplicaSettingsOptions): ReplicaSettingsWatch {
  const me = { replicaId: randomUUID(), host: os.hostname(), pid: process.pid, startedAt: new Date(), settings: settingPrints(settings) };
  const secrets = new Set(settings.filter((setting) => setting.secret).map((setting) => setting.name));
  /**
   * The differences warned of, of the replicas alive at the last beat only: kept for every replica
   * that ever differed, it grew with each deploy for as long as the process ran. One that stops and
   * comes back is warned of again.
   */
  let warned = new Set<string>();
  let differing = new Map<string, number>();
  return {
    async beat() {
      await beat(pool, { ...me, listenPid: listenPid() }, FORGET_AFTER_MS);
      const now = new Map<string, number>();
      const stillWarned = new Set<string>();
      for (const other of await otherReplicas(pool, me.replicaId, ALIVE_MS)) {
        const replica = `${other.host} (pid ${other.pid})`;
        for (const difference of settingDifferences(me.settings, other.settings, secrets)) {
          now.set(difference.name, (now.get(difference.name) ?? 0) + 1);
          const key = `${other.replicaId}\0${difference.name}\0${other.settings[difference.name]}`;
          if (!warned.has(key)) {
            log.warn(
              `replicas on this database run with different settings: ${describe(difference, replica)}; give every replica the same, or expect them to behave differently (during a rolling change of the setting, this is expected)`,
              { component: 'replicas', setting: difference.name, replica, here: difference.mine, there: difference.theirs },
            );
          }
          stillWarned.add(key);
        }
      }
      warned = stillWarned;
      differing = now;
    },
    differing: () => differing,
    async forget() {
      await forgetReplica(pool, me.replicaId);
    },
  };
}
