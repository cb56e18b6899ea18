// LISTEN/NOTIFY: an enqueue on any replica wakes the idle consumers of every other replica, and
// a webhook delivery queued on any replica wakes every dispatcher. The listening connection
// reconnects with backoff; after a reconnect it reports a wake-up, since notifications sent while
// it was away are lost. A revoked API key empties the key cache of every replica.
import pg from 'pg';

import { backoffMs } from '../domain/retry-policy.js';
import type { Logger } from '../log.js';
import { query, type Queryable } from './pool.js';

/** The channels of one jetpost schema: replicas on other schemas of the same database do not hear them. */
export interface NotifyChannels {
  /** Jobs are due: wakes the consumers. */
  jobs: string;
  /** Webhook deliveries are due: wakes the dispatchers. */
  webhooks: string;
  /** An API key was revoked or deleted (sql/7_create-api-keys-changed-trigger.sql): the key caches forget what they know. */
  keys: string;
}

export function notifyChannels(schema: string): NotifyChannels {
  return { jobs: `${schema}_jobs_ready`, webhooks: `${schema}_webhooks_ready`, keys: `${schema}_keys_changed` };
}

const NOTIFY = `select pg_notify($1, '')`;

/** Delivered when the caller's transaction commits, to every replica listening on `channel`. */
export async function notify(db: Queryable, channel: string): Promise<void> {
  await query(db, NOTIFY, [channel]);
}

export interface Listener {
  /** True while the LISTEN connection is up. */
  readonly connected: boolean;
  /** The server pid of the LISTEN session while it is up: it ends with this process (replica_heartbeats.listen_pid). */
  readonly backendPid: number | undefined;
  /** Settles once the first connection attempt has (it is up, or failed and will be tried again): never rejects. */
  readonly firstAttempt: Promise<void>;
  close(): Promise<void>;
}

export interface ListenOptions {
  connectionString: string;
  /** Channel name → what to do on a notification (and after a reconnect, when some may be lost). */
  channels: Record<string, () => void>;
  log: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export function listen({ connectionString, channels, log, minBackoffMs = 500, maxBackoffMs = 30_000 }: ListenOptions): Listener {
  const notifyAll = () => Object.values(channels).forEach((onNotify) => onNotify());
  let client: pg.Client | undefined;
  let connected = false;
  let closed = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let firstAttemptDone = () => {};
  const firstAttempt = new Promise<void>((resolve) => {
    firstAttemptDone = resolve;
  });

  const scheduleReconnect = () => {
    if (closed || retryTimer) {
      return;
    }
    failures += 1;
    const delay = backoffMs({ baseMs: minBackoffMs, factor: 2, maxMs: maxBackoffMs, jitter: 0 }, failures, Math.random);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delay);
  };

  const dropClient = (reason: string) => {
    if (connected) {
      log.warn('lost the LISTEN connection; reconnecting', { component: 'notify', reason });
    }
    connected = false;
    const old = client;
    client = undefined;
    old?.removeAllListeners();
    // Keep an error listener: a late socket error on a dropped client must not crash the process.
    old?.on('error', () => undefined);
    old?.end().catch(() => undefined);
    scheduleReconnect();
  };

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString, connectionTimeoutMillis: 5_000, keepAlive: true });
    client = next;
    next.on('error', (error) => dropClient(error.message));
    next.on('end', () => {
      if (client === next) {
        dropClient('connection ended');
      }
    });
    next.on('notification', (message) => {
      channels[message.channel]?.();
    });
    try {
      await next.connect();
      for (const channel of Object.keys(channels)) {
        await next.query(`listen ${next.escapeIdentifier(channel)}`);
      }
      if (closed || client !== next) {
        await next.end().catch(() => undefined);
        return;
      }
      if (failures > 0) {
        log.info('LISTEN connection restored', { component: 'notify' });
      }
      connected = true;
      failures = 0;
      notifyAll();
    } catch (error) {
      if (client === next) {
        dropClient((error as Error).message);
      }
    } finally {
      firstAttemptDone();
    }
  }

  void connect();

  return {
    get connected() {
      return connected;
    },
    firstAttempt,
    get backendPid() {
      return connected ? (client as (pg.Client & { processID?: number }) | undefined)?.processID : undefined;
    },
    async close() {
      closed = true;
      if (retryTimer) {
        clearTimeout(retryTimer);
      }
      const current = client;
      client = undefined;
      connected = false;
      current?.removeAllListeners();
      current?.on('error', () => undefined);
      await current?.end().catch(() => undefined);
    },
  };
}
