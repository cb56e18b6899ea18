// Scenario 8: a second start on a data directory that a running jetpost owns, while it drains.
// Before issue 8 the second process borrowed the first one's embedded PostgreSQL, failed on a busy
// port with a stack trace, and stopped that PostgreSQL on its way out: the first answered 503 from
// then on. Now the second is refused with one line naming the owner, and the first goes on serving
// and draining. An admin command borrows the database meanwhile without stopping it; after the
// owner is killed with SIGKILL, a new start takes the directory over (and adopts the database it left).
//
// Scenario 8b: a busy PORT or SIMULATOR_PORT gives one line naming the variable, not a stack trace
// (a HOST or PORT that cannot be bound: before the database is touched, test/faults/start-stop-log.test.ts).
//
// Scenario 8d: DATABASE_URL with a wrong password, a database that does not exist, nothing listening,
// or a user that may not create jetpost's schema gives one line naming DATABASE_URL; a user that owns
// the schema but may not create schemas starts (PostgreSQL checks the right before `if not exists`).
//
// Scenario 8c: a DATA_DIR that cannot hold the data (under /proc, where Node's recursive mkdir used
// to loop forever; a file) gives one line naming DATA_DIR, and nothing is left running.
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:net';

import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { runCli } from '../support/cli.js';
import { recordFigures, reportFiguresAfterRun } from '../support/faults/figures.js';
import { useFaultHarness } from '../support/faults/harness.js';
import { queueMessages, waitForJobs } from '../support/faults/jobs.js';
import { byScale, FAULT_SCALE } from '../support/faults/scale.js';
import { neverSent, sentTwice } from '../support/faults/simulator.js';
import { seconds, waitForExit } from '../support/faults/wait.js';

reportFiguresAfterRun();

const SIZE = byScale({
  fast: { messages: 200, more: 50 },
  full: { messages: 2000, more: 500 },
});
const LATENCY_MS = 200;
/** A refused start does not touch PostgreSQL; this only has to hold on a loaded machine. */
const REFUSAL_BUDGET_MS = 60_000;

const noEvents = (from: number, count: number) => Array.from({ length: count }, (_, index) => messageTo(`noevents-${from + index}@example.com`));
/** Lines that look like a stack trace. */
const stackLines = (text: string) => text.split('\n').filter((line) => /^\s+at /.test(line));

describe(`faults: a second start (${FAULT_SCALE})`, function () {
  this.timeout(byScale({ fast: 240_000, full: 600_000 }));
  const harness = useFaultHarness();
  let blocker: Server | undefined;

  afterEach(async () => {
    await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
    blocker = undefined;
  });

  it('when jetpost starts again on a data directory a live jetpost owns, then it is refused with one line, and the first keeps serving and draining', async () => {
    const started = Date.now();
    const data = await harness.dataDir();
    const [portA, portB, portC] = [await harness.port(), await harness.port(), await harness.port()];
    const simulator = await harness.simulator(portA);
    simulator.faults.set({ latencyMs: LATENCY_MS });
    const env = { ...data.env, BATCH_SIZE: '10', WORKER_CONCURRENCY: '2' };
    const first = await harness.jetpost({ name: 'first', port: portA, databaseUrl: undefined, simulator, env });
    const pool = await data.connect();
    const { key } = await harness.app(pool);
    const jobIds = await queueMessages(first.url, key, noEvents(0, SIZE.messages));

    const secondStarted = Date.now();
    const second = await harness.spawn({ name: 'second', port: portB, databaseUrl: undefined, simulator, env });
    const secondExit = await waitForExit(second, REFUSAL_BUDGET_MS);
    const refusedMs = Date.now() - secondStarted;
    const secondErr = second
      .output()
      .filter((line) => line.includes(' err]'))
      .map((line) => line.slice(line.indexOf(']') + 2));

    expect(secondExit.code, 'exit code of the second start').to.equal(1);
    expect(secondErr, 'what the second start wrote on stderr').to.deep.equal([
      `jetpost is already running on ${data.dir} (pid ${first.pid}, port ${portA}); stop it first, or give this one another DATA_DIR`,
    ]);
    // The same PORT as well: still the owner named, not only a port in use.
    const samePort = await harness.spawn({ name: 'second-same-port', port: portA, databaseUrl: undefined, simulator, env });
    expect((await waitForExit(samePort, REFUSAL_BUDGET_MS)).code, 'exit code of a second start on the same port').to.equal(1);
    expect(
      samePort
        .output()
        .filter((line) => line.includes(' err]'))
        .map((line) => line.slice(line.indexOf(']') + 2)),
    ).to.deep.equal([`jetpost is already running on ${data.dir} (pid ${first.pid}, port ${portA}); stop it first, or give this one another DATA_DIR`]);

    // The CLI borrows the database the first one runs, and leaves it running.
    const cli = await runCli('admin', ['apps', 'list'], data.env);
    expect(cli.code, cli.stderr).to.equal(0);

    const ready = await fetch(`${first.url}/readyz`);
    expect(ready.status, 'first /readyz after the second start and the CLI').to.equal(200);
    const moreIds = await queueMessages(first.url, key, noEvents(SIZE.messages, SIZE.more));
    const total = SIZE.messages + SIZE.more;
    await waitForJobs(pool, total, ['accepted'], { timeoutMs: byScale({ fast: 90_000, full: 300_000 }), watch: [first] });

    // The owner dies without a word: its file stays, naming a dead pid. A new start takes over.
    await first.kill();
    const third = await harness.jetpost({ name: 'third', port: portC, databaseUrl: undefined, simulator, env });
    const lastIds = await queueMessages(third.url, key, noEvents(total, 10));
    await waitForJobs(pool, total + 10, ['accepted'], { timeoutMs: 60_000, watch: [third] });

    const twice = sentTwice(simulator);
    recordFigures(
      `8 second start on the data directory while draining ${SIZE.messages}`,
      `refused in ${refusedMs} ms, exit ${secondExit.code}, stderr 1 line`,
      `admin CLI meanwhile exit ${cli.code}`,
      `first: /readyz ${ready.status}, accepted ${total}/${total} incl. ${SIZE.more} queued after`,
      'stale owner (kill -9) taken over: yes',
      `sent twice ${twice.length}`,
      seconds(started),
    );
    expect(twice).to.deep.equal([]);
    expect(neverSent(simulator, [...jobIds, ...moreIds, ...lastIds])).to.deep.equal([]);
  });

  it('when PORT or SIMULATOR_PORT is taken, or HOST resolves nowhere, then jetpost says so in one line naming the variable and stops what it started', async () => {
    const started = Date.now();
    const db = await harness.database();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const busyPort = await harness.port();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(busyPort, '127.0.0.1', resolve));

    const httpTaken = await harness.spawn({ name: 'http-taken', port: busyPort, databaseUrl: db.url, simulator });
    // Simulator mode (no Mailjet keys), with the embedded database: it must stop the server it started.
    const data = await harness.dataDir();
    const simulatorTaken = await harness.spawn({
      name: 'simulator-taken',
      port,
      databaseUrl: undefined,
      simulator,
      env: { ...data.env, MAILJET_API_KEY: '', MAILJET_API_SECRET: '', MAILJET_BASE_URL: '', SIMULATOR_PORT: String(busyPort) },
    });
    // A name that resolves nowhere (config.ts only checks the shape).
    const hostUnknown = await harness.spawn({
      name: 'host-unknown',
      port: await harness.port(),
      databaseUrl: db.url,
      simulator,
      env: { HOST: 'jetpost-nowhere.invalid' },
    });
    const exits = [await waitForExit(httpTaken, 90_000), await waitForExit(simulatorTaken, 90_000), await waitForExit(hostUnknown, 90_000)];
    const stderr = (child: typeof httpTaken) =>
      child
        .output()
        .filter((line) => line.includes(' err]'))
        .map((line) => line.slice(line.indexOf(']') + 2));

    recordFigures(
      '8b busy PORT and SIMULATOR_PORT',
      `exit codes ${exits.map((exit) => exit.code).join(', ')}`,
      `stderr lines ${stderr(httpTaken).length}, ${stderr(simulatorTaken).length}; stack lines ${stackLines(stderr(httpTaken).join('\n')).length + stackLines(stderr(simulatorTaken).join('\n')).length}`,
      seconds(started),
    );
    expect(exits.map((exit) => exit.code)).to.deep.equal([1, 1, 1]);
    expect(stderr(httpTaken)).to.deep.equal([
      `jetpost cannot listen on 127.0.0.1:${busyPort} (PORT): it is in use by another jetpost or another program. Stop that, or set PORT`,
    ]);
    expect(stderr(simulatorTaken)).to.deep.equal([
      `jetpost cannot listen on 127.0.0.1:${busyPort} (SIMULATOR_PORT): it is in use by another jetpost or another program. Stop that, or set SIMULATOR_PORT`,
    ]);
    expect(stderr(hostUnknown)).to.have.length(1);
    expect(stderr(hostUnknown)[0]).to.match(
      /^jetpost cannot listen on jetpost-nowhere\.invalid:\d+: jetpost-nowhere\.invalid does not resolve \(E[A-Z_]+\)\. Check HOST$/,
    );
    expect(await data.postgresRunning(), 'PostgreSQL left running by the failed start').to.equal(false);
  });
  it('when DATA_DIR is under /proc or is a file, then jetpost says so in one line naming DATA_DIR, promptly, and starts nothing', async () => {
    const started = Date.now();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const data = await harness.dataDir();
    const file = `${data.dir}-file`;
    await fs.writeFile(file, 'not a directory');
    try {
      const underProc = await harness.spawn({ name: 'under-proc', port, databaseUrl: undefined, simulator, env: { DATA_DIR: '/proc/jetpost-faults' } });
      const aFile = await harness.spawn({ name: 'a-file', port: await harness.port(), databaseUrl: undefined, simulator, env: { DATA_DIR: file } });
      const exits = [await waitForExit(underProc, REFUSAL_BUDGET_MS), await waitForExit(aFile, REFUSAL_BUDGET_MS)];
      const stderr = (child: typeof underProc) =>
        child
          .output()
          .filter((line) => line.includes(' err]'))
          .map((line) => line.slice(line.indexOf(']') + 2));

      recordFigures('8c DATA_DIR under /proc, and a file', `exit codes ${exits.map((exit) => exit.code).join(', ')}`, seconds(started));
      expect(exits.map((exit) => exit.code)).to.deep.equal([1, 1]);
      expect(stderr(underProc)).to.deep.equal([
        'DATA_DIR (/proc/jetpost-faults) is not usable: /proc is on the proc filesystem, which holds no files. Set DATA_DIR to a directory on a disk that jetpost may write to',
      ]);
      expect(stderr(aFile)).to.deep.equal([
        `DATA_DIR (${file}) is not usable: ${file} is not a directory. Set DATA_DIR to a directory on a disk that jetpost may write to`,
      ]);
    } finally {
      await fs.rm(file, { force: true });
    }
  });
  it('when DATABASE_URL is refused (password, database, nothing listening, no right to create the schema), then one line says what to check; a user owning the schema starts', async () => {
    const db = await harness.database();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const base = new URL(db.url);
    const database = base.pathname.slice(1);
    const suffix = `${process.pid}_${Date.now()}`;
    const [limited, owner] = [`jp_faults_limited_${suffix}`, `jp_faults_owner_${suffix}`];
    const withUrl = (change: (url: URL) => void) => {
      const url = new URL(base);
      change(url);
      return url.toString();
    };
    await db.pool.query(`create role ${limited} login password 'limited-password'`);
    await db.pool.query(`create role ${owner} login password 'owner-password'`);
    await db.pool.query(`revoke create on database ${database} from public`);
    await db.pool.query(`create schema owned_by_app authorization ${owner}`);
    const asUser = (user: string, password: string) =>
      withUrl((url) => {
        url.username = user;
        url.password = password;
      });
    try {
      const starts = [
        { DATABASE_URL: withUrl((url) => (url.password = 'wrong-password')) },
        { DATABASE_URL: withUrl((url) => (url.pathname = '/jetpost_no_such_database')) },
        { DATABASE_URL: withUrl((url) => (url.port = String(port))) },
        { DATABASE_URL: asUser(limited, 'limited-password'), DATABASE_SCHEMA: 'jetpost_new' },
      ];
      const children = [];
      for (const [index, env] of starts.entries()) {
        children.push(await harness.spawn({ name: `refused-${index}`, port: await harness.port(), databaseUrl: undefined, simulator, env }));
      }
      const exits = [];
      for (const child of children) {
        exits.push((await waitForExit(child, REFUSAL_BUDGET_MS)).code);
      }
      const stderr = children.map((child) =>
        child
          .output()
          .filter((line) => line.includes(' err]'))
          .map((line) => line.slice(line.indexOf(']') + 2)),
      );
      const owning = await harness.jetpost({
        name: 'schema-owner',
        port,
        databaseUrl: asUser(owner, 'owner-password'),
        simulator,
        env: { DATABASE_SCHEMA: 'owned_by_app' },
      });
      const ready = (await fetch(`${owning.url}/readyz`)).status;
      await owning.kill();

      expect(exits).to.deep.equal([1, 1, 1, 1]);
      expect(stderr).to.deep.equal([
        [
          `the database in DATABASE_URL refused jetpost: password authentication failed for user "${base.username}". Check the user and password in DATABASE_URL`,
        ],
        [
          'the database in DATABASE_URL refused jetpost: database "jetpost_no_such_database" does not exist. Check the database name in DATABASE_URL, or create that database',
        ],
        [
          `the database in DATABASE_URL refused jetpost: connect ECONNREFUSED 127.0.0.1:${port}. Nothing accepts connections at the host and port of DATABASE_URL: check them, and that PostgreSQL is running`,
        ],
        [
          `the database in DATABASE_URL refused jetpost: permission denied for database ${database}. Create schema jetpost_new with the user of DATABASE_URL as its owner, or grant that user create on the database, or set DATABASE_SCHEMA to a schema it owns`,
        ],
      ]);
      expect(ready, 'the schema owner’s /readyz').to.equal(200);
    } finally {
      await db.pool.query(`drop schema owned_by_app cascade`);
      await db.pool.query(`drop role ${limited}`);
      await db.pool.query(`drop role ${owner}`);
    }
  });
});
