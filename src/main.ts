// The composition root: config → log → database (DATABASE_URL or embedded) → migrations → Mailjet
// (real, or in dev mode the simulator, loaded only then) → services → workers, LISTEN, HTTP. Nothing
// else constructs long-lived things. bin/service.ts runs it as a process; tests start it in-process.
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import path from 'node:path';

import { type Bus, createBus } from './bus.js';
import type { Config } from './config.js';
import { prepareDataDir } from './db/data-dir.js';
import { DataDirInUseError, liveDataDirOwner } from './db/data-dir-owner.js';
import { latestMigrationId } from './db/migrate.js';
import { listen, type Listener, notify, notifyChannels } from './db/notify.js';
import { openDatabase } from './db/open.js';
import { databaseNow, type Pool } from './db/pool.js';
import { createByteBudget } from './domain/byte-budget.js';
import { coerceError, isDatabaseUnavailable, StartupError } from './domain/errors.js';
import { eventsCallbackUrl } from './domain/events-callback.js';
import { createInFlightLimit } from './domain/in-flight-limit.js';
import { localUrl } from './domain/local-url.js';
import { parseTargetPolicy } from './domain/target-policy.js';
import { finishedWithin } from './finished-within.js';
import { createApp, routeTable } from './http/app.js';
import { createBodyStop } from './http/body-stop.js';
import { configureConnections, limitPipelining } from './http/connections.js';
import { trackInFlight } from './http/drain.js';
import { closeStalledWrites } from './http/write-stall.js';
import { createStdoutLogger, type Logger } from './log.js';
import { describeProxy, sendProxy } from './mailjet/agent.js';
import { createMailjetClient, MAILJET_DEFAULT_BASE_URL } from './mailjet/client.js';
import { instrumentMailjetClient } from './mailjet/instrumented.js';
import { createMetrics } from './metrics.js';
import { OPENAPI_PATH } from './paths.js';
import { readOrCreateSecretFile } from './secret-file.js';
import { createAdminService } from './services/admin.js';
import { createApiKeyCache } from './services/api-key-cache.js';
import { authenticateApiKey } from './services/apps.js';
import { createDashboardService } from './services/dashboard.js';
import { createDatabaseClock } from './services/database-clock.js';
import { ensureDevApiKey } from './services/dev-key.js';
import { createEventsReceiver } from './services/events.js';
import { createJobService } from './services/jobs.js';
import { refuseMovedChanges } from './services/moved-database.js';
import { createOutOfDiskWatch } from './services/out-of-disk.js';
import { createQueueStatsReader } from './services/queue-stats.js';
import { createRateLimitCounters } from './services/rate-limits.js';
import { createReadiness } from './services/readiness.js';
import { createReplicaSettingsWatch, sharedSettings } from './services/replica-settings.js';
import { createRetention } from './services/retention.js';
import { createSendingService } from './services/sending.js';
import { createThroughputCounter } from './services/throughput.js';
import { createWebhookDeliveries } from './services/webhooks.js';
// A type only: the simulator itself is loaded by startDevSimulator, in dev mode.
import type { Simulator } from './simulator/server.js';
import { type ConsumerPool, createConsumerPool } from './workers/consumer-pool.js';
import { createLeaseReaper } from './workers/lease-reaper.js';
import { createRateLimitSweeper } from './workers/rate-limit-sweeper.js';
import { createReplicaHeartbeat } from './workers/replica-heartbeat.js';
import { createRetentionWorker } from './workers/retention-worker.js';
import { createSendGate } from './workers/send-gate.js';
import { createThroughputFlusher } from './workers/throughput-flusher.js';
import { createWakeup } from './workers/wakeup.js';
import { createWebhookDispatcher } from './workers/webhook-dispatcher.js';

export interface Jetpost {
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:3000. */
  readonly url: string;
  readonly pool: Pool;
  readonly bus: Bus;
  readonly log: Logger;
  /** Dev mode: the simulator standing in for Mailjet, and the development API key. */
  readonly simulator: Simulator | undefined;
  readonly devApiKey: string | undefined;
  /** Dev mode: a curl that queues a message with the dev key, for the start-up banner to print as is. */
  readonly tryIt: string | undefined;
  readonly consumers: ConsumerPool;
  /** The (method, path) pairs the HTTP API serves. */
  readonly routes: Array<{ method: string; path: string }>;
  /**
   * Resolves, with why, if a part the service cannot run without is gone for good (its embedded
   * PostgreSQL exited without being asked to): the process should stop, for its supervisor to
   * start it again. Never resolves otherwise.
   */
  readonly failed: Promise<string>;
  /**
   * Graceful stop: HTTP, consumers, LISTEN, simulator, pool, embedded database last. Idempotent.
   * Bounded: SHUTDOWN_TIMEOUT_MS for the calls in flight, then a few seconds for the rest.
   */
  stop(): Promise<StopReport>;
}

export interface StartOptions {
  log?: Logger;
  /** Aborted (a signal during the start): the start stops at its next step, undoes what it did and throws. */
  signal?: AbortSignal;
  /**
   * Aborted when the process is about to exit at once (a second signal), during the start or after
   * it: the embedded database, if this jetpost started or adopted it, is asked to shut down, without waiting.
   */
  exitingNow?: AbortSignal;
}

/** What a stop did not finish: each a part that was still busy at its deadline and was left behind. */
export interface StopReport {
  readonly leftBehind: readonly string[];
}

export async function startJetpost(config: Config, options: StartOptions = {}): Promise<Jetpost> {
  const log = options.log ?? createStdoutLogger(config.logLevel, config.logFormat);
  const cleanups: Array<() => Promise<void>> = [];
  const leftBehind: string[] = [];
  const stopAll = async (): Promise<StopReport> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => {
        log.error('error while stopping', { component: 'main', error });
        leftBehind.push(`a step that failed: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    return { leftBehind: [...leftBehind] };
  };
  try {
    return await start(config, log, options, { cleanups, leftBehind, stopAll });
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** How long each shutdown step after the drain (reaper, LISTEN, simulator) may take before it is left behind. */
const STOP_STEP_MS = 1_000;

interface Stopping {
  cleanups: Array<() => Promise<void>>;
  /** Filled as the stop goes: what did not stop in time. */
  leftBehind: string[];
  stopAll: () => Promise<StopReport>;
}

async function start(config: Config, log: Logger, { signal, exitingNow }: StartOptions, { cleanups, leftBehind, stopAll }: Stopping): Promise<Jetpost> {
  const stopWithin = async (what: string, work: Promise<unknown>, ms: number) => {
    if (!(await finishedWithin(work, ms))) {
      log.warn(`${what} did not stop within ${ms} ms; going on without it`, { component: 'main' });
      leftBehind.push(what);
    }
  };
  // Before the database: a HOST or PORT that cannot be bound is said at once, not after an initdb
  // and the migrations (and a process manager restarting it would run them again every time).
  // A second start on the same DATA_DIR: the jetpost that owns the directory is the better thing to name.
  const ownerFirst = async (error: unknown): Promise<never> => {
    const owner = config.database.url === undefined ? await liveDataDirOwner(path.resolve(config.dataDir)) : undefined;
    throw owner ? new DataDirInUseError(config.dataDir, owner) : error;
  };
  // A proxy setting that is not a URL too: it stopped the start only after the migrations, as a stack trace.
  const mailjetProxy = startsBuiltInSimulator(config) ? null : sendProxy(new URL(config.mailjet.baseUrl ?? MAILJET_DEFAULT_BASE_URL));
  await checkListenable(config.http.host, config.http.port, 'PORT').catch(ownerFirst);
  // The same for the built-in simulator's port: a second checkout given another PORT learnt that
  // SIMULATOR_PORT was taken only after its initdb and migrations.
  if (startsBuiltInSimulator(config)) {
    await checkListenable(SIMULATOR_HOST, config.mailjet.simulatorPort, 'SIMULATOR_PORT').catch(ownerFirst);
  }
  if (config.devMode && config.database.url !== undefined) {
    // Dev mode keeps its keys under DATA_DIR with any database (openDatabase checks it for the embedded one).
    await prepareDataDir(config.dataDir);
  }
  signal?.throwIfAborted();
  const database = await openDatabase(config, log, { role: 'service', exitingNow, signal });
  cleanups.push(async () => {
    leftBehind.push(...(await database.close()));
  });
  // A signal during initdb or the migrations: stop here, before any consumer claims a job or the port opens.
  signal?.throwIfAborted();
  const { directConnectionString, pool } = database;
  await refuseMovedChanges(pool, config.database.schema).catch((error: unknown) => {
    throw unansweredAtStart('the check for status changes from a moved database could not be made', error, config);
  });
  const expectedMigration = await latestMigrationId();
  // The times written for PostgreSQL to compare with its now() are taken on its clock, not this host's.
  const clock = createDatabaseClock({ read: (sending) => databaseNow(pool, sending), log });
  await clock.sync().catch((error: unknown) => {
    throw unansweredAtStart("the database's clock could not be read", error, config);
  });

  const bus = createBus((error, name) => log.error('bus listener failed', { component: 'bus', event: name, error }));
  const outOfDisk = createOutOfDiskWatch();
  bus.on('consumer:error', ({ error }) => outOfDisk.saw(error));
  bus.on('jobs:enqueued', outOfDisk.wrote);
  bus.on('events:ingested', ({ stored }) => stored > 0 && outOfDisk.wrote());
  const wakeup = createWakeup();
  const webhookWakeup = createWakeup();
  const channels = notifyChannels(config.database.schema);
  // Trusted only while the LISTEN connection below hears revocations.
  const apiKeyCache = createApiKeyCache({
    authenticate: (key) => authenticateApiKey(pool, key),
    listening: () => listener.connected,
    ttlMs: config.apiKeyCacheMs,
  });
  // LISTEN needs a session of its own: a pooler in transaction mode would hand it any server connection.
  const listener: Listener = listen({
    connectionString: directConnectionString,
    channels: { [channels.jobs]: () => wakeup.wake(), [channels.webhooks]: () => webhookWakeup.wake(), [channels.keys]: () => apiKeyCache.clear() },
    log,
  });
  cleanups.push(() => stopWithin('the LISTEN connection', listener.close(), STOP_STEP_MS));

  // Dev mode keeps its callback password in a file, so that a simulator run on its own can use it.
  const eventsCredentials =
    config.events.credentials ??
    (config.devMode
      ? { username: DEV_EVENTS_USERNAME, password: await readOrCreateSecretFile(path.join(config.dataDir, DEV_EVENTS_PASSWORD_FILE)) }
      : undefined);

  let simulator: Simulator | undefined;
  let mailjetBaseUrl = config.mailjet.baseUrl;
  let credentials = config.mailjet.credentials;
  const simulated = credentials === undefined;
  if (credentials === undefined) {
    if (startsBuiltInSimulator(config)) {
      ({ simulator, url: mailjetBaseUrl } = await startDevSimulator(config, log, cleanups, stopWithin));
    }
    credentials = { apiKey: 'simulator', apiSecret: 'simulator' };
  }
  const mailjet = instrumentMailjetClient(createMailjetClient({ ...credentials, baseUrl: mailjetBaseUrl, timeoutMs: config.mailjet.timeoutMs }), bus);

  const jobs = createJobService({
    pool,
    channels,
    maxAttempts: config.retry.maxAttempts,
    wakeLocal: () => wakeup.wake(),
    bus,
    groupCommit: config.queueBatch,
    now: clock.now,
  });
  const sending = createSendingService({ pool, channels, bus, log, leaseMs: config.consumers.leaseMs });
  const gate = createSendGate({ callsPerSecond: config.mailjet.callsPerSecond });
  // Shared by the callback route, which reserves in it, and the metrics, which show it.
  const eventsBodyBudget = createByteBudget(config.events.bodyBudgetBytes);
  const queueBodyBudget = createByteBudget(config.queueBodyBudgetBytes);
  // Begun when the stop is: request bodies still arriving are then refused at once (http/body-stop.ts).
  const bodyStop = createBodyStop();
  const metrics = createMetrics({
    bus,
    eventsBodyBudget,
    queueStats: createQueueStatsReader({ pool, timeoutMs: config.database.timeouts.statementMs, log }),
    sendingHalted: () => {
      const state = gate.state();
      return { unauthorized: state.blocked !== undefined, rateLimited: state.pausedUntil !== undefined };
    },
    // Read at scrape time, once the watch below exists.
    replicaSettingsDiffering: () => replicaSettings.differing(),
  });
  const consumers = createConsumerPool({
    sending,
    mailjet,
    wakeup,
    gate,
    concurrency: config.consumers.concurrency,
    inFlight: createInFlightLimit({
      max: Math.min(config.consumers.concurrency, config.mailjet.maxInFlight),
      callsPerSecond: config.mailjet.callsPerSecond,
    }),
    batchSize: config.consumers.batchSize,
    leaseMs: config.consumers.leaseMs,
    idleCheckMs: config.consumers.idleCheckMs,
    retry: config.retry,
    log,
    bus,
    now: clock.now,
  });

  const targetPolicy = parseTargetPolicy(config.webhooks.allowedTargets);
  const dispatcher = createWebhookDispatcher({
    deliveries: createWebhookDeliveries(pool, bus, channels, clock.now),
    wakeup: webhookWakeup,
    policy: targetPolicy,
    timeoutMs: config.webhooks.timeoutMs,
    retry: { baseMs: config.webhooks.retryBaseMs, factor: 2, maxMs: config.webhooks.retryMaxMs, jitter: 0.25 },
    retryWindowMs: config.webhooks.retryWindowMs,
    maxInFlight: config.webhooks.batchSize,
    perAppInFlight: config.webhooks.perAppInFlight,
    idleCheckMs: config.consumers.idleCheckMs,
    log,
    now: clock.now,
  });
  const adminKey = config.adminApiKey ?? (config.devMode ? await readOrCreateSecretFile(path.join(config.dataDir, 'dev-admin-key')) : undefined);
  const rateLimits = createRateLimitCounters(pool);
  // Its minutes are shared with the other replicas in throughput_minutes: on the database's clock.
  const throughput = createThroughputCounter({ pool, bus, now: () => clock.now().getTime() });
  const replicaSettings = createReplicaSettingsWatch({
    pool,
    settings: sharedSettings(config, { mailjetBaseUrl: mailjetBaseUrl ?? MAILJET_DEFAULT_BASE_URL, eventsCredentials, adminKey }),
    log,
    listenPid: () => listener.backendPid,
  });
  const { app, listener: serveHttp } = createApp({
    jobs,
    admin: createAdminService({ pool, channels, targetPolicy }),
    dashboard: createDashboardService(pool, throughput, config.database.schema),
    rateLimits,
    adminKeys: [adminKey, config.adminApiKeyPrevious].filter((key) => key !== undefined),
    authenticate: (key) => authenticateApiKey(pool, key),
    authenticateSender: apiKeyCache.authenticate,
    receiveEvents: createEventsReceiver({ pool, channels, bus, log }),
    eventsCredentials,
    limits: {
      queueBody: config.queueBodyLimit,
      eventsBody: config.events.bodyLimit,
      queuePerMinute: config.rateLimits.queuePerMinute,
      adminKeyFailuresPerMinute: config.rateLimits.adminKeyFailuresPerMinute,
      eventsPerMinute: config.rateLimits.eventsPerMinute,
      bodyPace: { ...config.http.bodyPace, stop: bodyStop },
    },
    trustProxy: config.trustProxy,
    readiness: createReadiness({
      pool,
      expectedMigration,
      sendingStopped: () => gate.state().blocked,
      outOfDisk: outOfDisk.state,
      draining: () => bodyStop.begun(),
    }),
    // As long as one statement may take: a database slower than that is not ready.
    readinessTimeoutMs: config.database.timeouts.statementMs,
    metrics: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
    openapi: await fs.readFile(OPENAPI_PATH, 'utf8'),
    log,
    requestLogLevel: config.devMode ? 'info' : 'http',
    onRequest: (request) => bus.emit('http:request', request),
    onDatabaseUnavailable: outOfDisk.saw,
    eventsBodyBudget: { budget: eventsBodyBudget, waitMs: config.events.bodyWaitMs, minBytesPerSecond: config.events.bodyMinRate },
    onCallbackWaited: (wait) => bus.emit('events:budget-wait', wait),
    queueBodyBudget,
    // send_at's window and the dashboard's sessions and chart, as the database and every replica see them.
    now: clock.now,
  });

  // Before the consumers and the port: they take the pool's connections as soon as they start (a
  // backlog after a kill -9 keeps every one busy), and this start-up query then waited for a free
  // one past DATABASE_CONNECT_TIMEOUT_MS and failed the start.
  const dev = config.devMode
    ? await ensureDevApiKey(pool, config.dataDir).catch((error: unknown) => {
        throw unansweredAtStart('dev mode could not read or create the API key of app "dev"', error, config);
      })
    : undefined;

  signal?.throwIfAborted();
  // A request without Host is answered by the app (http/request-headers.ts), in words, not by Node's bare 400.
  const server = createServer({ requireHostHeader: false }, limitPipelining(serveHttp));
  server.keepAliveTimeout = HTTP_KEEP_ALIVE_MS;
  configureConnections(server);
  closeStalledWrites(server, config.http.responseIdleMs, log);
  const inFlight = trackInFlight(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(portError(error, 'PORT', config.http.port, config.http.host)));
    server.listen(config.http.port, config.http.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = localUrl(address.address, address.port);
  if (address.port !== config.http.port) {
    // PORT=0: the owner file named port 0, and so did a second start's refusal.
    await database.recordPort(address.port);
  }

  // Before the consumers: a replica whose settings differ from the others' says so at once. The beat
  // names the LISTEN session (listen_pid, by which the others see at once that a process killed with
  // kill -9 is gone): its connection, begun with the start, is waited for, as long as a connection may take.
  await finishedWithin(listener.firstAttempt, config.database.timeouts.connectMs);
  await replicaSettings.beat().catch((error: unknown) => {
    log.warn('could not compare the settings with those of the other replicas; tried again in a few seconds', {
      component: 'replicas',
      error: coerceError(error).message,
    });
  });
  consumers.start();
  dispatcher.start();
  const reaper = createLeaseReaper({
    sending,
    intervalMs: Math.max(1_000, Math.floor(config.consumers.leaseMs / 4)),
    onRequeued: (reaped) => {
      bus.emit('jobs:reaped', reaped);
      wakeup.wake();
    },
    log,
  });
  void reaper.start();
  const sweeper = createRateLimitSweeper({ rateLimits, log });
  void sweeper.start();
  const flusher = createThroughputFlusher({ throughput, log });
  void flusher.start();
  const retention = createRetentionWorker({
    retention: createRetention({ pool, policy: config.retention, bus }),
    intervalMs: config.retention.intervalMs,
    log,
  });
  void retention.start();
  const heartbeat = createReplicaHeartbeat({ watch: replicaSettings, log });
  void heartbeat.start();
  // SIGTERM: the drain. Consumers stop claiming and finish their calls in flight, and the requests
  // begun before it are answered, within SHUTDOWN_TIMEOUT_MS, while the port stays open for the
  // probes and the scrape and refuses the rest (http/drain.ts); then the port closes, and the reaper,
  // LISTEN, the simulator, the pool and the embedded database stop, in that order, each with a
  // deadline of its own.
  const deadlineMs = config.consumers.shutdownTimeoutMs;
  cleanups.push(async () => {
    const refused = bodyStop.begin();
    if (refused > 0) {
      log.info('request bodies still arriving were refused (503): the server is stopping', { component: 'http', refused });
    }
    // The dispatcher cuts its deliveries at the deadline and then records them (about 2 s more).
    await Promise.all([
      consumers.stop(deadlineMs).then(({ finished }) => {
        if (!finished) {
          leftBehind.push('jobs in the hands of consumers (back in the queue when their leases expire, LEASE_MS)');
        }
      }),
      finishedWithin(inFlight.settled(), deadlineMs),
      stopWithin('the webhook dispatcher', dispatcher.stop(deadlineMs), deadlineMs + 3 * STOP_STEP_MS),
    ]);
    // The retries this process deferred (and its deliveries' next attempts) were due on timers of
    // its own, which end with it: the other replicas, asleep until IDLE_CHECK_MS since nothing was
    // due when they last looked, look for the next due job and delivery again. Best effort: a
    // database already gone leaves it to their idle check.
    const wakeOthers = Promise.all([notify(pool, channels.jobs), notify(pool, channels.webhooks)]).catch(() => undefined);
    await stopWithin('the wake-up of the other replicas', wakeOthers, STOP_STEP_MS);
    // What is still in flight began during the drain: a probe, a scrape, a refusal.
    await closeServer(server, STOP_STEP_MS);
    await Promise.all([
      stopWithin('the lease reaper', reaper.stop(STOP_STEP_MS), STOP_STEP_MS),
      stopWithin('the rate-limit sweeper', sweeper.stop(STOP_STEP_MS), STOP_STEP_MS),
      stopWithin('the retention worker', retention.stop(STOP_STEP_MS), STOP_STEP_MS),
      stopWithin('the throughput flusher', flusher.stop(STOP_STEP_MS), STOP_STEP_MS),
      stopWithin('the replica heartbeat', heartbeat.stop(STOP_STEP_MS), STOP_STEP_MS),
    ]);
    // Its settings no longer count for the others; a row left (the database gone) is forgotten in minutes.
    await stopWithin(
      'the replica heartbeat row',
      replicaSettings.forget().catch(() => undefined),
      STOP_STEP_MS,
    );
    // After the consumers and the HTTP server: the last enqueues and acceptances are counted too.
    throughput.close();
    const lastCounts = throughput.flush().catch((error: unknown) => {
      log.warn("the last throughput counts could not be written; the dashboard's chart misses them", {
        component: 'throughput',
        error: coerceError(error).message,
      });
    });
    await stopWithin('the last throughput counts', lastCounts, STOP_STEP_MS);
  });

  let devApiKey: string | undefined;
  let tryIt: string | undefined;
  if (simulator) {
    // The same URL mailjet:register-callback registers at Mailjet: /events under PUBLIC_URL, its path kept.
    simulator.setCallbackUrl(eventsCallbackUrl(config.http.publicUrl ?? url, eventsCredentials!).toString());
  }
  if (simulated) {
    log.warn('SIMULATOR MODE: MAILJET_API_KEY is not set, so mail goes to a Mailjet simulator and no email leaves this machine', {
      component: 'main',
      simulator: mailjetBaseUrl,
    });
  }
  if (config.mailjet.timeoutMs * 2 >= config.consumers.leaseMs) {
    // Not refused: a test rig may want it. In production a call that outlasts its lease is sent again.
    log.warn(
      `MAILJET_TIMEOUT_MS (${config.mailjet.timeoutMs} ms) is not under LEASE_MS/2 (${config.consumers.leaseMs / 2} ms): a Mailjet call that outlasts its lease has its jobs sent again by another consumer. Lower MAILJET_TIMEOUT_MS or raise LEASE_MS`,
      { component: 'main' },
    );
  }
  if (dev) {
    devApiKey = dev.key;
    // Absolute paths: a relative DATA_DIR is resolved from the package root by `npm start`, wherever it
    // was run from, and the operator reads these lines where they are. The Try it command is pasted
    // into another terminal, in whatever directory it is.
    const dataDir = path.resolve(config.dataDir);
    const adminKeyAt = config.adminApiKey === undefined ? `is in ${path.join(dataDir, 'dev-admin-key')}` : 'is ADMIN_API_KEY';
    const passwordAt = config.events.credentials === undefined ? `is in ${path.join(dataDir, DEV_EVENTS_PASSWORD_FILE)}` : 'is EVENTS_PASSWORD';
    tryIt = tryItCommand(url, dev.file);
    log.info(
      `dev mode: the API key of app "dev" is in ${path.join(dataDir, 'dev-api-key')}; the admin key ${adminKeyAt}; the callback password (user ${eventsCredentials!.username}) ${passwordAt}`,
      { component: 'main' },
    );
  }
  const proxyShown = mailjetProxy ? describeProxy(mailjetProxy) : null;
  const mail = simulator
    ? `mail goes to the built-in Mailjet simulator at ${mailjetBaseUrl} (no email leaves this machine)`
    : `mail goes to ${simulated ? 'the Mailjet simulator' : 'Mailjet'} at ${mailjetBaseUrl ?? MAILJET_DEFAULT_BASE_URL}${proxyShown ? ` through the proxy ${proxyShown}` : ''}`;
  log.info(`jetpost is listening on ${describeListenAddress(address)}; reach it at ${url}; ${mail}`, {
    component: 'main',
    listen: `${hostForUrl(address)}:${address.port}`,
    url,
    mailjet: simulator ? 'simulator' : (mailjetBaseUrl ?? MAILJET_DEFAULT_BASE_URL),
    mailjetProxy: proxyShown,
    devMode: config.devMode,
    consumers: config.consumers.concurrency,
  });

  let stopping: Promise<StopReport> | undefined;
  return {
    url,
    pool,
    bus,
    log,
    simulator,
    devApiKey,
    tryIt,
    consumers,
    routes: routeTable(app),
    failed: database.lost,
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}

/**
 * A start-up query the database did not answer in time (no connection, a statement cancelled) as one
 * line saying which step failed and which settings bound the wait, instead of pg's bare message.
 */
function unansweredAtStart(step: string, error: unknown, config: Config): unknown {
  if (!isDatabaseUnavailable(error)) {
    return error;
  }
  const { connectMs, statementMs } = config.database.timeouts;
  return new StartupError(
    `jetpost could not start: ${step}, as the database did not answer in time (${(error as Error).message}). A connection must come within DATABASE_CONNECT_TIMEOUT_MS (${connectMs} ms) and a statement end within DATABASE_STATEMENT_TIMEOUT_MS (${statementMs} ms): check that the database is not overloaded or locked by another session, then start again`,
    { cause: error },
  );
}

/** Where the built-in simulator listens: this machine only. */
const SIMULATOR_HOST = '127.0.0.1';

/** Without Mailjet keys, MAILJET_BASE_URL names a simulator run on its own; else the built-in one starts. */
function startsBuiltInSimulator(config: Config): boolean {
  return config.mailjet.credentials === undefined && config.mailjet.baseUrl === undefined;
}

/**
 * Dev mode's stand-in for Mailjet, started on SIMULATOR_PORT. The simulator is loaded here and only
 * here, on demand: it stays out of the production import graph.
 */
async function startDevSimulator(
  config: Config,
  log: Logger,
  cleanups: Array<() => Promise<void>>,
  stopWithin: (what: string, work: Promise<unknown>, ms: number) => Promise<void>,
): Promise<{ simulator: Simulator; url: string }> {
  const { createSimulator } = await import('./simulator/server.js');
  const simulator = createSimulator({
    maxMessages: config.mailjet.simulatorMaxMessages,
    log: (message, fields) => log.debug(message, { component: 'simulator', ...fields }),
  });
  cleanups.push(() => stopWithin('the simulator', simulator.close(), STOP_STEP_MS));
  const url = await simulator.listen(config.mailjet.simulatorPort, SIMULATOR_HOST).catch((error: unknown) => {
    throw portError(error, 'SIMULATOR_PORT', config.mailjet.simulatorPort, SIMULATOR_HOST);
  });
  return { simulator, url };
}

/** The user name of dev mode's callback credentials; the password is in DEV_EVENTS_PASSWORD_FILE under DATA_DIR. */
export const DEV_EVENTS_USERNAME = 'mailjet';
export const DEV_EVENTS_PASSWORD_FILE = 'dev-events-password';

/** One shell line, pasteable as printed: queues a message with the key in `keyFile`. */
function tryItCommand(url: string, keyFile: string): string {
  const body = '{"from":"app@example.com","to":"you@example.com","subject":"Hello","html":"<a href=\\"https://example.com\\">hi</a>"}';
  const file = /^[\w./-]+$/.test(keyFile) ? keyFile : `'${keyFile.replaceAll("'", "'\\''")}'`;
  return `curl -s -X POST ${url}/queue -H "Authorization: Bearer $(cat ${file})" -H 'Content-Type: application/json' -d '${body}'`;
}

/** An address as it goes before `:port` in a URL: IPv6 in brackets. */
function hostForUrl(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

/** Where the server listens, in words an operator checks a firewall against. */
function describeListenAddress(address: AddressInfo): string {
  const where =
    address.address === '0.0.0.0'
      ? 'every IPv4 interface'
      : address.address === '::'
        ? 'every interface'
        : /^(127\.|::1$|::ffff:127\.)/.test(address.address)
          ? 'loopback: this machine only'
          : 'one interface';
  return `${hostForUrl(address)}:${address.port} (${where})`;
}

/** Binds host:port and lets go at once: throws portError's line, naming variable, when it cannot be bound. */
async function checkListenable(host: string, port: number, variable: string): Promise<void> {
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error) => reject(portError(error, variable, port, host)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** A port that cannot be bound becomes one line naming the setting, instead of a stack trace. */
function portError<E>(error: E, variable: string, port: number, host: string): E | StartupError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new StartupError(
      `jetpost cannot listen on ${host}:${port} (${variable}): it is in use by another jetpost or another program. Stop that, or set ${variable}`,
      {
        cause: error,
      },
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new StartupError(`jetpost cannot listen on ${host}:${port}: ${host} does not resolve (${code}). Check HOST`, { cause: error });
  }
  if (code === 'EADDRNOTAVAIL') {
    return new StartupError(
      `jetpost cannot listen on ${host}:${port}: ${host} is not an address of this machine (EADDRNOTAVAIL). Check HOST (0.0.0.0 listens on every interface)`,
      { cause: error },
    );
  }
  if (code === 'EACCES') {
    return new StartupError(`jetpost cannot listen on ${host}:${port} (${variable}): ${code}. Check ${variable}${variable === 'PORT' ? ' and HOST' : ''}`, {
      cause: error,
    });
  }
  return error;
}

/**
 * How long an idle client connection is kept open (announced as Keep-Alive: timeout=65). Node's
 * default of 5 s closed the spare connections of a client whose concurrency swings (every sender
 * after a pause of a few hundred ms): at the next swing it opened dozens at once, and each new
 * connection costs about a millisecond of CPU on both sides, so the last request of such a burst
 * waited 300–400 ms for its connection on a 2-core host, the top of the enqueue → accepted tail.
 * Longer than the idle timeout of common load balancers (60 s), which must close first: a server
 * closing a connection the balancer is about to reuse answers that request with an error.
 */
export const HTTP_KEEP_ALIVE_MS = 65_000;

/** How often a closing server ends the connections that have gone idle since it began to close. */
const IDLE_SWEEP_MS = 100;

/** Stops accepting connections, lets the requests in flight finish for `graceMs`, then cuts the rest. */
async function closeServer(server: Server, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // close() ends only the connections idle at that moment. One whose answer is written later is kept
  // alive for its next request, and the stop waited for the grace to cut it.
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearInterval(sweep);
  clearTimeout(timer);
}
