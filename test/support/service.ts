// jetpost started in-process the way main does it (startJetpost), against a database of its own,
// with Mailjet either doubled by nock (mailjet: 'nock') or the built-in simulator (mailjet: 'simulator').
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { type Config, loadConfig } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import { type Jetpost, startJetpost } from '../../src/main.js';
import { makeApp } from '../factories.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { testLogger } from './log.js';
import { trackOpen } from './open-resources.js';

/** The origin nock intercepts in tests: never a real host. */
export const MAILJET_TEST_ORIGIN = 'https://api.mailjet.test';
export const MAILJET_TEST_KEY = 'test-api-key';
export const MAILJET_TEST_SECRET = 'test-api-secret';
export const EVENTS_USER = 'mailjet';
export const EVENTS_PASSWORD = 'events-password-0123';
export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface TestService {
  jetpost: Jetpost;
  config: Config;
  db: TestDatabase;
  url: string;
  /** API key of an app created for the test ("app-a"). */
  apiKey: string;
  appId: string;
  /** fetch against the service with the app's key (or `key: null` for none). */
  request(
    method: string,
    pathname: string,
    options?: { body?: unknown; rawBody?: string; headers?: Record<string, string>; key?: string | null },
  ): Promise<Response>;
  /** POST /events with the callback's basic credentials. */
  postEvents(body: unknown | string, auth?: { user: string; password: string } | null): Promise<Response>;
  stop(): Promise<void>;
}

export interface TestServiceOptions {
  mailjet?: 'nock' | 'simulator';
  env?: Record<string, string>;
  log?: Logger;
  /** Share a database with another service (two replicas). */
  db?: TestDatabase;
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const db = options.db ?? (await createTestDatabase());
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-data-'));
  // A start that fails (a refused setting, a loaded machine's timeout) must not leave its data
  // directory and database behind: empty /tmp/jetpost-data-* directories piled up that way.
  const discard = async () => {
    if (!options.db) {
      await db.drop();
    }
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  const { config, jetpost } = await startWithin(dataDir, db, options).catch(async (error: unknown) => {
    await discard();
    throw error;
  });
  const closed = trackOpen(`jetpost service on ${jetpost.url} (server, consumers, pool)`);
  const { id: appId, key } = await makeApp(jetpost.pool).catch(async (error: unknown) => {
    closed();
    await jetpost.stop();
    await discard();
    throw error;
  });
  const url = jetpost.url;

  const request: TestService['request'] = async (method, pathname, requestOptions = {}) => {
    const headers: Record<string, string> = { ...requestOptions.headers };
    const authKey = requestOptions.key === undefined ? key : requestOptions.key;
    if (authKey !== null) {
      headers['authorization'] = `Bearer ${authKey}`;
    }
    let body: string | undefined = requestOptions.rawBody;
    if (requestOptions.body !== undefined) {
      body = JSON.stringify(requestOptions.body);
      headers['content-type'] ??= 'application/json';
    }
    return fetch(`${url}${pathname}`, { method, headers, body: body ?? null });
  };

  return {
    jetpost,
    config,
    db,
    url,
    apiKey: key,
    appId,
    request,
    postEvents(body, auth = { user: EVENTS_USER, password: EVENTS_PASSWORD }) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (auth) {
        headers['authorization'] = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
      }
      return fetch(`${url}/events`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
    },
    async stop() {
      closed();
      await jetpost.stop();
      await discard();
    },
  };
}

/** The service's configuration and start, on a database and a data directory of the caller's. */
async function startWithin(dataDir: string, db: TestDatabase, options: TestServiceOptions): Promise<{ config: Config; jetpost: Jetpost }> {
  const mailjetEnv: Record<string, string> =
    options.mailjet === 'simulator'
      ? { SIMULATOR_PORT: '0', DEV_MODE: 'false' }
      : { MAILJET_API_KEY: MAILJET_TEST_KEY, MAILJET_API_SECRET: MAILJET_TEST_SECRET, MAILJET_BASE_URL: MAILJET_TEST_ORIGIN, MAILJET_TIMEOUT_MS: '2000' };
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    WORKER_CONCURRENCY: '2',
    EVENTS_USERNAME: EVENTS_USER,
    EVENTS_PASSWORD: EVENTS_PASSWORD,
    ADMIN_API_KEY: ADMIN_KEY,
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '1000',
    IDLE_CHECK_MS: '2000',
    // A loaded CI machine can stall a statement for a few seconds: that must not become a 503 in a
    // test about something else. The tests of the timeouts set their own.
    DATABASE_CONNECT_TIMEOUT_MS: '10000',
    DATABASE_STATEMENT_TIMEOUT_MS: '15000',
    ...mailjetEnv,
    ...options.env,
  });
  return { config, jetpost: await startJetpost(config, { log: options.log ?? testLogger() }) };
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
