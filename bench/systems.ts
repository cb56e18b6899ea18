// Starting the systems a scenario measures, each in its own process: jetpost (with the command of
// `npm start`, as an operator runs it, configured only through its environment and driven only over HTTP), the
// Mailjet double, the reference queues and the bare HTTP handler (bench/peers), and autocannon.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import pg from 'pg';

import { expectStatus, request, sleep } from './http-client.js';
import { type Child, freePort, startChild } from './processes.js';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
export const PEERS_DIR = path.join(BENCH_DIR, 'peers');

const run = promisify(execFile);

/** Installs bench/peers from its lockfile when it is missing or older than the lockfile. */
export async function ensurePeersInstalled(progress: (message: string) => void): Promise<void> {
  const installed = path.join(PEERS_DIR, 'node_modules', '.package-lock.json');
  const lockfile = path.join(PEERS_DIR, 'package-lock.json');
  if (fs.existsSync(installed) && fs.statSync(installed).mtimeMs >= fs.statSync(lockfile).mtimeMs) {
    return;
  }
  progress('installing the reference systems in bench/peers (npm ci, first run only)');
  try {
    await run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: PEERS_DIR, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    throw new Error(`npm ci in bench/peers failed: ${(error as { stderr?: string }).stderr ?? String(error)}`, { cause: error });
  }
}

export interface MailjetDouble {
  readonly url: string;
  readonly child: Child;
  stats(): Promise<{ calls: number; messages: number }>;
  /** When a message to this address reached the double (wall-clock ms); waits up to 10 s. */
  arrival(email: string): Promise<number>;
}

export async function startMailjetDouble(logDir: string, name: string, latencyMs: number): Promise<MailjetDouble> {
  const child = startChild({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', path.join(BENCH_DIR, 'mailjet-double.ts'), '--latency-ms', String(latencyMs)],
    cwd: REPO_ROOT,
    env: { PATH: process.env['PATH'] },
    logDir,
  });
  const { url } = await child.nextLine<{ url: string }>((line) => typeof line['url'] === 'string', 30_000);
  return {
    url,
    child,
    async stats() {
      return JSON.parse((await expectStatus(200, 'GET', `${url}/_double/stats`)).body) as { calls: number; messages: number };
    },
    async arrival(email) {
      const answer = await expectStatus(200, 'GET', `${url}/_double/arrival?email=${encodeURIComponent(email)}`);
      return (JSON.parse(answer.body) as { at: number }).at;
    },
  };
}

/** QUEUE_RATE_LIMIT and EVENTS_RATE_LIMIT of every jetpost the bench starts: on, and never refusing its load. */
export const BENCH_RATE_LIMIT_PER_MINUTE = 1_000_000;

/** Environment for every jetpost the bench starts: BENCH_JETPOST_<NAME>=value sets jetpost's <NAME>. */
export function jetpostOverrides(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env)
      .filter(([name, value]) => name.startsWith('BENCH_JETPOST_') && value !== undefined)
      .map(([name, value]) => [name.slice('BENCH_JETPOST_'.length), value!]),
  );
}

/**
 * BENCH_CPU_PROF=<folder>: every jetpost runs under Node's CPU profiler (a .cpuprofile per process
 * in that folder, written when it stops), which NODE_OPTIONS may not turn on.
 */
function profilerArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  const folder = env['BENCH_CPU_PROF'];
  return folder ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(folder)}`] : [];
}

export interface JetpostOptions {
  name: string;
  logDir: string;
  databaseUrl: string;
  mailjetUrl: string;
  /** Settings for this start (e.g. WORKER_CONCURRENCY=0 to only enqueue); jetpost's defaults otherwise. */
  settings?: Record<string, string>;
  /** The user's BENCH_JETPOST_* settings, applied last. */
  overrides: Record<string, string>;
}

export interface JetpostProcess {
  readonly url: string;
  readonly pid: number;
  /** `Authorization` header value for POST /events. */
  readonly eventsAuthorization: string;
  /** A new app with its API key, through the admin API. */
  createApp(name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The command of `npm start`, run by sh as npm runs it: it ends by exec-ing node, so the child's pid
 * is jetpost's own (its CPU time and memory are jetpost's, not npm's). With BENCH_CPU_PROF, that
 * node runs under the profiler.
 */
function jetpostCommand(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const script = manifest.scripts.start;
  const profiler = profilerArgs().map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`);
  if (profiler.length === 0) {
    return script;
  }
  // The profiler goes to the node that serves, not to the one that bundles before it.
  if (!script.includes('exec node ')) {
    throw new Error(`BENCH_CPU_PROF: npm start's script has no "exec node " to add the profiler to: ${script}`);
  }
  return script.replace('exec node ', `exec node ${profiler.join(' ')} `);
}

export async function startJetpost(options: JetpostOptions): Promise<JetpostProcess> {
  const port = await freePort();
  const adminKey = randomBytes(24).toString('base64url');
  const eventsPassword = randomBytes(18).toString('base64url');
  const child = startChild({
    name: options.name,
    command: 'sh',
    args: ['-c', jetpostCommand()],
    cwd: REPO_ROOT,
    env: {
      PATH: process.env['PATH'],
      NODE_ENV: 'production',
      DATABASE_URL: options.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      MAILJET_API_KEY: 'bench',
      MAILJET_API_SECRET: 'bench',
      MAILJET_BASE_URL: options.mailjetUrl,
      EVENTS_USERNAME: 'bench',
      EVENTS_PASSWORD: eventsPassword,
      ADMIN_API_KEY: adminKey,
      // The request limits stay on, so that counting every request is part of each figure, at the
      // highest budget config.ts allows: far above what any scenario sends in a minute.
      QUEUE_RATE_LIMIT: String(BENCH_RATE_LIMIT_PER_MINUTE),
      EVENTS_RATE_LIMIT: String(BENCH_RATE_LIMIT_PER_MINUTE),
      ...options.settings,
      ...options.overrides,
    },
    logDir: options.logDir,
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const answer = await request('GET', `${url}/healthz`).catch(() => undefined);
    if (answer?.status === 200) {
      break;
    }
    const code = await Promise.race([child.exited, sleep(20).then(() => 'running' as const)]);
    if (code !== 'running' || Date.now() > deadline) {
      await child.stop();
      throw new Error(
        `jetpost did not start (${code === 'running' ? 'no answer on /healthz' : `exit code ${code}`}); see ${path.join(options.logDir, `${options.name}.log`)}`,
      );
    }
  }
  return {
    url,
    pid: child.pid,
    eventsAuthorization: `Basic ${Buffer.from(`bench:${eventsPassword}`).toString('base64')}`,
    async createApp(name) {
      const answer = await expectStatus(201, 'POST', `${url}/admin/apps`, { authorization: `Bearer ${adminKey}` }, JSON.stringify({ name }));
      return (JSON.parse(answer.body) as { api_key: string }).api_key;
    },
    stop: () => child.stop(),
  };
}

/**
 * A pool on a jetpost database, with jetpost's schema (DATABASE_SCHEMA, default "jetpost") on the
 * search path, for the bench's own reads and seeds.
 */
export function jetpostDatabase(databaseUrl: string, overrides: Record<string, string>): pg.Pool {
  const schema = overrides['DATABASE_SCHEMA'] ?? 'jetpost';
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2, options: `-c search_path=${pg.escapeIdentifier(schema)}` });
  // An idle connection that breaks must not end the bench: the next query fails its scenario instead.
  // (While the pool is ending, the database being dropped is expected.)
  pool.on('error', (error) => {
    if (!pool.ending) {
      process.stderr.write(`bench: a connection to ${new URL(databaseUrl).pathname.slice(1)} broke: ${error.message}\n`);
    }
  });
  return pool;
}

/**
 * Whether any job is not yet settled: the first entry of the claim index, then of the lease index,
 * however long the backlog. Each is a scalar subquery in its index's order, which PostgreSQL reads
 * from the index. A bare `exists` (whose order and limit PostgreSQL drops) was read with a
 * sequential scan while the statistics were those of the queued backlog: every poll read every job
 * already sent, up to 5 ms each, about a fifth of PostgreSQL's CPU during a drain, all of it counted
 * as jetpost's.
 */
async function anyJobInFlight(db: pg.Pool): Promise<boolean> {
  const { rows } = await db.query<{ left: boolean }>(
    `select (select true from email_send_jobs where queue_status in ('queued', 'scheduled', 'deferred') order by priority desc, run_at, id limit 1)
       or (select true from email_send_jobs where queue_status = 'processing' order by locked_until limit 1) as left`,
  );
  return rows[0]!.left;
}

/** How often a drain is checked in the database once every message has reached the Mailjet double. */
export const DRAIN_POLL_MS = 20;
/**
 * How often it is checked before that. Each check costs PostgreSQL CPU that the scenario counts as
 * the system's: jetpost's reads the first entries of the claim and lease indexes, past the entries
 * the claimed and accepted jobs left behind; graphile-worker's and pg-boss's count their remaining
 * jobs. The references' drains are checked the same way (bench/peers/common.mjs, waitForDrain).
 */
export const DRAIN_POLL_BEFORE_SENT_MS = 1000;

/**
 * Polls until no job is in flight; resolves the wall-clock ms when that was seen. The poll is an
 * existence probe, not a count: counting a long backlog every 20 ms would cost the PostgreSQL
 * server more CPU than some of the work measured. With `allSent` (whether the Mailjet double has
 * received every message), the database is checked every DRAIN_POLL_MS only once it has, and every
 * DRAIN_POLL_BEFORE_SENT_MS before (a drain whose messages never all arrive still ends).
 */
export async function waitUntilDrained(db: pg.Pool, timeoutMs: number, allSent?: () => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let sent = allSent === undefined;
  let checkedAt = -Infinity;
  for (;;) {
    sent ||= await allSent!();
    if (sent || performance.now() - checkedAt >= DRAIN_POLL_BEFORE_SENT_MS) {
      checkedAt = performance.now();
      if (!(await anyJobInFlight(db))) {
        return performance.timeOrigin + performance.now();
      }
    }
    if (Date.now() > deadline) {
      const { rows } = await db.query<{ n: number }>(
        `select count(*)::int as n from email_send_jobs where queue_status in ('queued', 'scheduled', 'deferred', 'processing')`,
      );
      throw new Error(`${rows[0]!.n} jobs still in flight after ${Math.round(timeoutMs / 1000)} s`);
    }
    await sleep(DRAIN_POLL_MS);
  }
}

export interface PeerRun {
  readonly child: Child;
  /** Resolves the peer's next report line of this phase. */
  phase<T extends Record<string, unknown>>(name: string, timeoutMs?: number): Promise<T>;
}

/** Starts bench/peers/<script> with these settings (see bench/peers/common.mjs). */
export function startPeer(script: string, logDir: string, env: Record<string, string>): PeerRun {
  const child = startChild({
    name: path.basename(script, '.mjs'),
    command: process.execPath,
    args: [path.join(PEERS_DIR, script)],
    cwd: PEERS_DIR,
    env: { PATH: process.env['PATH'], ...env },
    logDir,
  });
  return {
    child,
    phase: (name, timeoutMs) => child.nextLine((line) => line['phase'] === name, timeoutMs),
  };
}

export interface AutocannonResult {
  requestsPerSecond: number;
  requests: number;
  latencyMs: { p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
}

export interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  seconds: number;
}

/** A closed-loop run of autocannon (bench/peers/autocannon.mjs) in its own process. */
export async function runAutocannon(logDir: string, name: string, spec: LoadSpec): Promise<AutocannonResult> {
  const child = startChild({
    name,
    command: process.execPath,
    args: [path.join(PEERS_DIR, 'autocannon.mjs'), JSON.stringify({ ...spec, method: 'POST' })],
    cwd: PEERS_DIR,
    env: { PATH: process.env['PATH'] },
    logDir,
  });
  const result = await child.nextLine<AutocannonResult>((line) => typeof line['requestsPerSecond'] === 'number', (spec.seconds + 60) * 1000);
  await child.stop();
  return result;
}
