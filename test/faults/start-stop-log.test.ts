// What an operator reading jetpost's JSON logs sees at a stop and at a start that cannot go on.
// A clean stop ends with a line of its own saying so, how long it took and what it left behind:
// before, the last line was "shutting down", the same as a crash in the middle of the drain. A
// signal during the migrations stops the start there, before the port opens and before any consumer
// claims a job: before, the whole start ran on and then stopped. A HOST or PORT that cannot be
// bound, or a SIMULATOR_PORT already taken, is said before the database is touched: before, after
// the migrations (and an initdb). A signal while the modules load, before the service's handlers
// existed, ended the process with no line at all (exit 143); and a second signal during the start
// left the embedded PostgreSQL running.
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { expect } from 'chai';

import { useFaultHarness } from '../support/faults/harness.js';
import type { JetpostProcess } from '../support/faults/jetpost-process.js';
import { waitForExit, waitUntil } from '../support/faults/wait.js';
import { type FreezableProxy, startFreezableProxy } from '../support/freezable-proxy.js';

interface LogLine {
  level: string;
  message: string;
  [field: string]: unknown;
}

/** The child's JSON log lines, in order. */
function logLines(child: JetpostProcess): LogLine[] {
  return child
    .output()
    .map((line) => line.slice(line.indexOf(']') + 2))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** What the child wrote on stderr, one entry a line. */
function stderrLines(child: JetpostProcess): string[] {
  return child
    .output()
    .filter((line) => line.includes(' err]'))
    .map((line) => line.slice(line.indexOf(']') + 2));
}

describe('faults: the log of a stop, and a start that cannot go on', function () {
  this.timeout(120_000);
  const harness = useFaultHarness();
  let proxy: FreezableProxy | undefined;
  let blocker: Server | undefined;

  let holdDir: string | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
    blocker = undefined;
    if (holdDir !== undefined) {
      await fs.rm(holdDir, { recursive: true, force: true });
      holdDir = undefined;
    }
  });

  /**
   * NODE_OPTIONS for a child whose load of the package `express` (which jetpost's service imports,
   * not its entry point) waits until release() is called, through a module resolution hook: the child
   * is held, for as long as the test needs, in the middle of loading its modules. `held()` says it
   * got there.
   */
  async function holdModuleLoad(): Promise<{ nodeOptions: string; held: () => boolean; release: () => Promise<void> }> {
    holdDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-hold-load-'));
    const heldFile = path.join(holdDir, 'held');
    const releaseFile = path.join(holdDir, 'release');
    const hooks = path.join(holdDir, 'hooks.mjs');
    const register = path.join(holdDir, 'register.mjs');
    await fs.writeFile(
      hooks,
      `import { existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
export async function resolve(specifier, context, next) {
  if (specifier === 'express') {
    writeFileSync(${JSON.stringify(heldFile)}, '');
    while (!existsSync(${JSON.stringify(releaseFile)})) {
      await sleep(20);
    }
  }
  return next(specifier, context);
}
`,
    );
    await fs.writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    return {
      nodeOptions: `--import=${pathToFileURL(register).href}`,
      held: () => existsSync(heldFile),
      release: () => fs.writeFile(releaseFile, ''),
    };
  }

  /** A proxy in front of a fresh database, frozen: a start through it waits at its first query. */
  async function frozenDatabase(): Promise<string> {
    const db = await harness.database();
    const target = new URL(db.url);
    proxy = await startFreezableProxy({ host: target.hostname, port: Number(target.port) });
    proxy.freeze();
    return proxy.url(db.url);
  }

  it('when SIGTERM stops a running jetpost, then its last log line says it stopped, after how long, and that it left nothing behind', async () => {
    const db = await harness.database();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const jetpost = await harness.jetpost({ name: 'stopped', port, databaseUrl: db.url, simulator, env: { LOG_LEVEL: 'info' } });
    jetpost.signal('SIGTERM');
    const exit = await waitForExit(jetpost, 60_000);

    const last = logLines(jetpost).at(-1);
    expect(exit.code).to.equal(0);
    expect(last).to.deep.include({ level: 'info', message: 'jetpost stopped: every part finished its work', signal: 'SIGTERM', leftBehind: [] });
    expect(last?.['durationMs']).to.be.a('number');
  });

  it('when SIGTERM arrives while the database has not answered the start’s connection, then the start stops at once: the port never opens, no consumer starts, and the last line says the start was interrupted', async () => {
    const databaseUrl = await frozenDatabase();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const jetpost = await harness.spawn({
      name: 'sigterm-migrating',
      port,
      databaseUrl,
      simulator,
      env: { LOG_LEVEL: 'info', DATABASE_CONNECT_TIMEOUT_MS: '60000' },
    });
    // Its signal handlers are set before the database is opened.
    await waitUntil('jetpost to connect to the database', () => proxy!.connections() > 0, { timeoutMs: 60_000, watch: [jetpost] });
    jetpost.signal('SIGTERM');
    // The connection the database has not answered yet is closed at once: no waiting for the thaw.
    const exit = await waitForExit(jetpost, 60_000);

    const messages = logLines(jetpost).map((line) => line.message);
    expect(exit.code).to.equal(1);
    expect(messages.filter((message) => message.startsWith('shutting down'))).to.have.length(1);
    expect(messages.filter((message) => /^(jetpost is listening|consumers started)/.test(message))).to.deep.equal([]);
    expect(logLines(jetpost).at(-1)).to.deep.include({ level: 'warn', message: 'start-up interrupted; what had started is stopped', signal: 'SIGTERM' });
  });

  it("when SIGTERM arrives during a first start's initdb, then the start stops once the embedded PostgreSQL is up, before the migrations, and the next start makes them", async () => {
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const options = { port, databaseUrl: undefined, simulator, env: { ...data.env, LOG_LEVEL: 'info' } };
    const first = await harness.spawn({ ...options, name: 'sigterm-in-initdb' });
    await waitUntil('initdb to begin', () => logLines(first).some((line) => line.message.startsWith('initialising the embedded PostgreSQL')), {
      timeoutMs: 60_000,
      watch: [first],
    });
    first.signal('SIGTERM');
    const exit = await waitForExit(first, 90_000);

    const messages = logLines(first).map((line) => line.message);
    expect(exit.code).to.equal(1);
    expect(messages, 'a start told to stop runs no migrations').to.not.include('applied migrations');
    expect(logLines(first).at(-1)).to.deep.include({ level: 'warn', message: 'start-up interrupted; what had started is stopped', signal: 'SIGTERM' });
    expect(await data.postgresRunning(), 'its embedded PostgreSQL stopped').to.equal(false);

    const next = await harness.jetpost({ ...options, name: 'after-the-interrupted-start' });
    expect((await fetch(`${next.url}/readyz`)).status).to.equal(200);
  });

  it('when SIGTERM arrives while jetpost is still loading its modules, then it is acted on once they have loaded: the start stops before the port opens and the last line says it was interrupted (not exit 143 without a word)', async () => {
    const db = await harness.database();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    const hold = await holdModuleLoad();
    const jetpost = await harness.spawn({
      name: 'sigterm-loading',
      port,
      databaseUrl: db.url,
      simulator,
      env: { LOG_LEVEL: 'info', NODE_OPTIONS: hold.nodeOptions },
    });
    await waitUntil('jetpost to be loading its modules', hold.held, { timeoutMs: 60_000, watch: [jetpost] });
    jetpost.signal('SIGTERM');
    await hold.release();
    const exit = await waitForExit(jetpost, 60_000);

    expect(exit).to.deep.equal({ code: 1, signal: null });
    const messages = logLines(jetpost).map((line) => line.message);
    expect(messages.filter((message) => /^(jetpost is listening|consumers started)/.test(message))).to.deep.equal([]);
    expect(logLines(jetpost).at(-1)).to.deep.include({ level: 'warn', message: 'start-up interrupted; what had started is stopped', signal: 'SIGTERM' });
  });

  it('when a second signal comes during the start, then jetpost exits at once and its embedded PostgreSQL stops with it, instead of running on until the next start adopts it', async () => {
    const data = await harness.dataDir();
    const port = await harness.port();
    const simulator = await harness.simulator(port);
    // The start is held in its migrations, where a first signal would cancel it (db/migrate.ts): its
    // session waits for a lock another session holds, and is stopped (SIGSTOP) so that the cancel
    // waits too, as a statement that does not answer a cancel at once would.
    await data.startPostgres();
    const pool = await data.connect();
    const locker = await pool.connect();
    // The server's fast shutdown ends this session: an error to expect, not to crash the test on.
    locker.on('error', () => undefined);
    await locker.query('select pg_advisory_lock(-8525285245963000604)');
    let held: number | undefined;
    try {
      const jetpost = await harness.spawn({ name: 'second-signal-starting', port, databaseUrl: undefined, simulator, env: { ...data.env, LOG_LEVEL: 'info' } });
      await waitUntil(
        'jetpost to adopt the embedded PostgreSQL',
        () => logLines(jetpost).some((line) => line.message.startsWith('connecting to the embedded PostgreSQL')),
        {
          timeoutMs: 60_000,
          watch: [jetpost],
        },
      );
      held = await waitUntil(
        'the migrations to wait for the lock',
        async () =>
          (
            await pool.query<{ pid: number }>(
              "select pid from pg_stat_activity where query like '%pg_advisory_xact_lock(-8525285245963000604)%' and wait_event_type = 'Lock'",
            )
          ).rows[0]?.pid,
        { timeoutMs: 60_000, watch: [jetpost] },
      );
      process.kill(held, 'SIGSTOP');
      jetpost.signal('SIGTERM');
      await waitUntil('jetpost to say it is shutting down', () => logLines(jetpost).some((line) => line.message.startsWith('shutting down')), {
        timeoutMs: 30_000,
        watch: [jetpost],
      });
      // A repeat within 2 s is taken for the relay of the first (npm start's): signalled until it exits.
      const exit = await waitUntil(
        'jetpost to exit on a second signal',
        () => {
          const status = jetpost.exitStatus();
          if (status === undefined) {
            jetpost.signal('SIGTERM');
          }
          return status;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );

      expect(exit).to.deep.equal({ code: 1, signal: null });
      expect(logLines(jetpost).at(-1)).to.deep.include({ level: 'error', message: 'second signal: exiting without finishing the shutdown' });
      // The server's shutdown waits for the session stopped above.
      process.kill(held, 'SIGCONT');
      held = undefined;
      await waitUntil('the embedded PostgreSQL to stop', async () => !(await data.postgresRunning()), { timeoutMs: 30_000 });
    } finally {
      if (held !== undefined) {
        process.kill(held, 'SIGCONT');
      }
      locker.release(true);
    }
  });

  it('when HOST is not an address of this machine, or PORT or SIMULATOR_PORT is in use, then jetpost says so in one line before it touches the database', async () => {
    const databaseUrl = await frozenDatabase();
    const simulator = await harness.simulator(await harness.port());
    const busyPort = await harness.port();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(busyPort, '127.0.0.1', resolve));
    const elsewhere = await harness.port();
    // 192.0.2.1 is TEST-NET-1: documentation only, never this machine's.
    const foreignHost = await harness.spawn({ name: 'foreign-host', port: elsewhere, databaseUrl, simulator, env: { HOST: '192.0.2.1' } });
    const portTaken = await harness.spawn({ name: 'port-taken', port: busyPort, databaseUrl, simulator });
    // Simulator mode (no Mailjet keys): the built-in simulator's port is checked as early.
    const simulatorPortTaken = await harness.spawn({
      name: 'simulator-port-taken',
      port: await harness.port(),
      databaseUrl,
      simulator,
      env: { MAILJET_API_KEY: '', MAILJET_API_SECRET: '', MAILJET_BASE_URL: '', SIMULATOR_PORT: String(busyPort) },
    });
    const exits = [await waitForExit(foreignHost, 60_000), await waitForExit(portTaken, 60_000), await waitForExit(simulatorPortTaken, 60_000)];

    expect(exits.map((exit) => exit.code)).to.deep.equal([1, 1, 1]);
    expect(proxy!.connections(), 'connections to the database').to.equal(0);
    expect(stderrLines(foreignHost)).to.deep.equal([
      `jetpost cannot listen on 192.0.2.1:${elsewhere}: 192.0.2.1 is not an address of this machine (EADDRNOTAVAIL). Check HOST (0.0.0.0 listens on every interface)`,
    ]);
    expect(stderrLines(portTaken)).to.deep.equal([
      `jetpost cannot listen on 127.0.0.1:${busyPort} (PORT): it is in use by another jetpost or another program. Stop that, or set PORT`,
    ]);
    expect(stderrLines(simulatorPortTaken)).to.deep.equal([
      `jetpost cannot listen on 127.0.0.1:${busyPort} (SIMULATOR_PORT): it is in use by another jetpost or another program. Stop that, or set SIMULATOR_PORT`,
    ]);
  });
});
