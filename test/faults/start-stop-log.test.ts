// What an operator reading jetpost's JSON logs sees at a stop and at a start that cannot go on.
// A clean stop ends with a line of its own saying so, how long it took and what it left behind:
// before, the last line was "shutting down", the same as a crash in the middle of the drain. A
// signal during the migrations stops the start there, before the port opens and before any consumer
// claims a job: before, the whole start ran on and then stopped. A HOST or PORT that cannot be
// bound, or a SIMULATOR_PORT already taken, is said before the database is touched: before, after
// the migrations (and an initdb).
import { createServer, type Server } from 'node:net';

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

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
    blocker = undefined;
  });

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

  it('when SIGTERM arrives during the migrations, then the start stops there: the port never opens, no consumer starts, and the last line says the start was interrupted', async () => {
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
    await waitUntil('jetpost to say it is shutting down', () => logLines(jetpost).some((line) => line.message.startsWith('shutting down')), {
      timeoutMs: 30_000,
      watch: [jetpost],
    });
    proxy!.thaw();
    const exit = await waitForExit(jetpost, 60_000);

    const messages = logLines(jetpost).map((line) => line.message);
    expect(exit.code).to.equal(1);
    expect(messages.filter((message) => /^(jetpost is listening|consumers started)/.test(message))).to.deep.equal([]);
    expect(logLines(jetpost).at(-1)).to.deep.include({ level: 'warn', message: 'start-up interrupted; what had started is stopped', signal: 'SIGTERM' });
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
