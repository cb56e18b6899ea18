// Many replicas, the usual way: two jetposts whose DATABASE_URL is PgBouncer in transaction pooling
// mode (Debian's pgbouncer, in front of the test PostgreSQL), with DATABASE_DIRECT_URL for LISTEN and
// the migrations. A server connection serves one transaction of any client, so nothing jetpost needs
// may live in a session: the drain must finish with every message sent exactly once (the simulator's
// call log), the replica that queued nothing woken through LISTEN, and Mailjet's events applied.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { expect } from 'chai';
import pg from 'pg';

import { loadConfig } from '../../src/config.js';
import { StartupError } from '../../src/domain/errors.js';
import { customIdForJob } from '../../src/domain/mailjet-payload.js';
import { type Jetpost, startJetpost } from '../../src/main.js';
import { createSimulator, type Simulator } from '../../src/simulator/server.js';
import { makeApp } from '../factories.js';
import { createTestDatabase, freePort, type TestDatabase } from '../support/database.js';
import { testLogger } from '../support/log.js';

const run = promisify(execFile);
const MESSAGES = 400;
const CHUNK = 50;
/** Server connections PgBouncer opens to the database: fewer than the replicas' clients, so they take turns. */
const SERVER_CONNECTIONS = 4;
const EVENTS = { user: 'mailjet', password: 'pgbouncer-events-secret' };
const SKIP_REASON = 'pgbouncer is not installed: install the Debian package `pgbouncer` (apt-get install pgbouncer) to run this test';

async function findPgbouncer(): Promise<string | undefined> {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, 'pgbouncer');
    if (
      await fs.access(candidate, fsConstants.X_OK).then(
        () => true,
        () => false,
      )
    ) {
      return candidate;
    }
  }
  return undefined;
}

/** PgBouncer refuses to run as root: as root it runs as postgres (as the embedded PostgreSQL does), else as nobody. */
async function unprivilegedUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) {
    return undefined;
  }
  for (const name of ['postgres', 'nobody']) {
    try {
      const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
      return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
    } catch {
      // Try the next one.
    }
  }
  throw new Error('running as root, and neither a postgres nor a nobody user exists for pgbouncer to run as');
}

interface Bouncer {
  /** The same database, user and password as `directUrl`, through PgBouncer. */
  url: string;
  /** PgBouncer's admin console (SHOW CLIENTS, SHOW SERVERS). */
  adminUrl: string;
  stop(): Promise<void>;
}

/** `ignoreStartupParameters`: what PgBouncer drops instead of refusing (none by default). */
async function startPgbouncer(binary: string, directUrl: string, ignoreStartupParameters = ''): Promise<Bouncer> {
  const direct = new URL(directUrl);
  const database = direct.pathname.slice(1);
  const user = decodeURIComponent(direct.username);
  const password = decodeURIComponent(direct.password);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-pgbouncer-'));
  const port = await freePort();
  const quoted = (text: string) => `"${text.replace(/"/g, '""')}"`;
  await fs.writeFile(path.join(dir, 'userlist.txt'), `${quoted(user)} ${quoted(password)}\n`, { mode: 0o600 });
  await fs.writeFile(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = host=${direct.hostname} port=${direct.port || 5432} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      `auth_type = ${password ? 'scram-sha-256' : 'trust'}`,
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `admin_users = ${user}`,
      'pool_mode = transaction',
      `default_pool_size = ${SERVER_CONNECTIONS}`,
      'max_client_conn = 200',
      // None by default: jetpost must send no startup parameter a transaction pooler cannot keep.
      `ignore_startup_parameters = ${ignoreStartupParameters}`,
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  const runAs = await unprivilegedUser();
  if (runAs) {
    await fs.chown(dir, runAs.uid, runAs.gid);
    for (const file of ['userlist.txt', 'pgbouncer.ini']) {
      await fs.chown(path.join(dir, file), runAs.uid, runAs.gid);
    }
  }
  const child: ChildProcess = spawn(binary, [path.join(dir, 'pgbouncer.ini')], { stdio: 'ignore', ...(runAs ?? {}) });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
  const url = `postgres://${auth}@127.0.0.1:${port}/${database}`;
  const stop = async () => {
    process.off('exit', killOnExit);
    // SIGTERM: PgBouncer's immediate shutdown.
    child.kill('SIGTERM');
    await exited;
    await fs.rm(dir, { recursive: true, force: true });
  };
  // Ready once a query goes through; a budget for a loaded machine.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('select 1');
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        const log = await fs.readFile(path.join(dir, 'pgbouncer.log'), 'utf8').catch(() => '');
        await stop();
        throw new Error(`pgbouncer did not start: ${(error as Error).message}\n${log.slice(-2000)}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { url, adminUrl: `postgres://${auth}@127.0.0.1:${port}/pgbouncer`, stop };
}

/** Rows of an admin console command (simple protocol only, as PgBouncer's console takes). */
async function showOnConsole(adminUrl: string, command: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return (await client.query(command)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

describe('behind PgBouncer in transaction pooling mode', function () {
  this.timeout(240_000);
  let binary: string | undefined;
  let bouncer: Bouncer | undefined;
  let db: TestDatabase | undefined;
  let simulator: Simulator | undefined;
  let simulatorUrl = 'http://127.0.0.1:9';
  const replicas: Jetpost[] = [];
  const dataDirs: string[] = [];

  before(async () => {
    binary = await findPgbouncer();
    if (binary === undefined) {
      return;
    }
    db = await createTestDatabase();
    bouncer = await startPgbouncer(binary, db.url);
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.stop()));
    await simulator?.close();
    simulator = undefined;
  });

  after(async () => {
    await bouncer?.stop();
    await db?.drop();
    await Promise.all(dataDirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
  });

  function skipWithoutPgbouncer(context: Mocha.Context): void {
    if (binary === undefined) {
      context.test!.title += ` (skipped: ${SKIP_REASON})`;
      context.skip();
    }
  }

  async function startReplica(env: Record<string, string>): Promise<Jetpost> {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-data-'));
    dataDirs.push(dataDir);
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      MAILJET_API_KEY: 'pgbouncer-key',
      MAILJET_API_SECRET: 'pgbouncer-secret',
      MAILJET_BASE_URL: simulatorUrl,
      EVENTS_USERNAME: EVENTS.user,
      EVENTS_PASSWORD: EVENTS.password,
      WORKER_CONCURRENCY: '4',
      BATCH_SIZE: '10',
      DATABASE_POOL_SIZE: '5',
      // Only a NOTIFY wakes an idle consumer within the test: LISTEN must work.
      IDLE_CHECK_MS: '600000',
      // A loaded CI machine can stall a statement for a few seconds: that is not what this test is about.
      DATABASE_CONNECT_TIMEOUT_MS: '20000',
      DATABASE_STATEMENT_TIMEOUT_MS: '15000',
      ...env,
    });
    const replica = await startJetpost(config, { log: testLogger() });
    replicas.push(replica);
    return replica;
  }

  it('when two replicas drain one queue through PgBouncer with DATABASE_DIRECT_URL, then every message is sent exactly once, both replicas send, and events are applied', async function () {
    skipWithoutPgbouncer(this);
    simulator = createSimulator({ eventDelaysMs: { sent: 50, open: 100 } });
    simulatorUrl = await simulator.listen(0, '127.0.0.1');
    simulator.faults.set({ latencyMs: 300 });
    const pooled = { DATABASE_URL: bouncer!.url, DATABASE_DIRECT_URL: db!.url };
    const [a, b] = [await startReplica(pooled), await startReplica(pooled)];
    const claimed = new Map<Jetpost, number>();
    const errors: string[] = [];
    for (const replica of [a!, b!]) {
      replica.bus.on('jobs:claimed', ({ count }) => claimed.set(replica, (claimed.get(replica) ?? 0) + count));
      replica.bus.on('consumer:error', ({ error }) => errors.push(error.message));
    }
    const eventsUrl = new URL('/events', b!.url);
    eventsUrl.username = EVENTS.user;
    eventsUrl.password = EVENTS.password;
    simulator.setCallbackUrl(eventsUrl.toString());
    const { key } = await makeApp(a!.pool, { name: 'pgbouncer-app' });

    // Everything through A: B's consumers only hear of the work through LISTEN on the direct connection.
    const ids: string[] = [];
    for (let start = 0; start < MESSAGES; start += CHUNK) {
      const messages = Array.from({ length: Math.min(CHUNK, MESSAGES - start) }, (_, index) => ({
        from: 'app@example.com',
        to: `reader-${start + index}@example.com`,
        subject: 'through pgbouncer',
        text: 'Hello',
      }));
      const response = await fetch(`${a!.url}/queue`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages }),
      });
      const text = await response.text();
      expect(response.status, text).to.equal(202);
      ids.push(...(JSON.parse(text) as { jobs: Array<{ job_id: string }> }).jobs.map((job) => job.job_id));
    }

    // sent, then opened: the simulator's events went through /events, and the pooler, too.
    const deadline = Date.now() + 180_000;
    for (;;) {
      const rows = await db!.pool.query<{ status: string; count: number }>('select status, count(*)::int as count from email_send_jobs group by status');
      const counts: Record<string, number> = Object.fromEntries(rows.rows.map((row) => [row.status, row.count]));
      if (counts['opened'] === MESSAGES) {
        break;
      }
      expect(Date.now(), `every job opened; last seen ${JSON.stringify(counts)}, consumer errors ${JSON.stringify(errors.slice(0, 3))}`).to.be.below(deadline);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const accepted = new Map<string, number>();
    for (const call of simulator.sendCallLog()) {
      for (const customId of call.accepted) {
        accepted.set(customId, (accepted.get(customId) ?? 0) + 1);
      }
    }
    expect(
      [...accepted].filter(([, copies]) => copies > 1),
      'messages sent twice',
    ).to.deep.equal([]);
    expect(
      ids.filter((id) => !accepted.has(customIdForJob(id))),
      'messages never sent',
    ).to.deep.equal([]);
    expect(errors, 'consumer errors').to.deep.equal([]);
    expect((claimed.get(a!) ?? 0) + (claimed.get(b!) ?? 0), 'claims').to.equal(MESSAGES);
    expect(claimed.get(b!) ?? 0, 'jobs claimed by the replica that queued none').to.be.above(0);

    // The replicas' connections really went through the pooler, and shared its few server connections.
    const clients = (await showOnConsole(bouncer!.adminUrl, 'show clients')).filter((row) => row['database'] === db!.name);
    const servers = (await showOnConsole(bouncer!.adminUrl, 'show servers')).filter((row) => row['database'] === db!.name);
    expect(servers.length, 'server connections').to.be.at.most(SERVER_CONNECTIONS);
    expect(clients.length, 'client connections of the two replicas').to.be.above(SERVER_CONNECTIONS);
  });

  it('when DATABASE_URL is PgBouncer in transaction mode and DATABASE_DIRECT_URL is not set, then the start stops with a message naming DATABASE_DIRECT_URL', async function () {
    skipWithoutPgbouncer(this);
    const failure = await startReplica({ DATABASE_URL: bouncer!.url }).then(
      () => expect.fail('jetpost started through the pooler without DATABASE_DIRECT_URL'),
      (error: unknown) => error,
    );
    expect(failure).to.be.instanceOf(StartupError);
    expect((failure as Error).message)
      .to.include('set DATABASE_DIRECT_URL')
      .and.to.include('unsupported startup parameter');

    const bothPooled = await startReplica({ DATABASE_URL: bouncer!.url, DATABASE_DIRECT_URL: bouncer!.url }).then(
      () => expect.fail('jetpost started with DATABASE_DIRECT_URL through the pooler'),
      (error: unknown) => error,
    );
    expect(bothPooled).to.be.instanceOf(StartupError);
    expect((bothPooled as Error).message).to.include('point DATABASE_DIRECT_URL at the database itself');
  });

  it("when a pooler silently drops the search_path option and DATABASE_DIRECT_URL is not set, then the migrations refuse to run outside jetpost's schema", async function () {
    skipWithoutPgbouncer(this);
    const forgetful = await startPgbouncer(binary!, db!.url, 'options, statement_timeout');
    try {
      const failure = await startReplica({ DATABASE_URL: forgetful.url }).then(
        () => expect.fail('jetpost started on connections without its search_path'),
        (error: unknown) => error,
      );
      expect(failure).to.be.instanceOf(StartupError);
      expect((failure as Error).message)
        .to.include('instead of jetpost')
        .and.to.include('DATABASE_DIRECT_URL');
      const stray = await db!.pool.query("select count(*)::int as count from pg_tables where schemaname = 'public'");
      expect(stray.rows[0]?.['count'], 'tables created in public').to.equal(0);
    } finally {
      await forgetful.stop();
    }
  });
});
