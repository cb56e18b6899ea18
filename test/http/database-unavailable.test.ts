// A database that stops answering (frozen behind a proxy: sockets open, nothing comes back) must
// turn into a quick 503 with Retry-After on every route, not a hang or a 500, and everything must
// work again once it answers. The fault suite does the same with a real SIGSTOP (frozen-database).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { messageTo } from '../factories.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { type FreezableProxy, startFreezableProxy } from '../support/freezable-proxy.js';
import { openTransaction } from '../support/held-transaction.js';
import { capturingLogger } from '../support/log.js';
import { ADMIN_KEY, eventually, startTestService, type TestService } from '../support/service.js';

/** Short, so the test is quick; what is checked is that the answer comes from them, not their size. */
const TIMEOUTS = { DATABASE_CONNECT_TIMEOUT_MS: '1000', DATABASE_STATEMENT_TIMEOUT_MS: '1000' };
/**
 * A claim the consumers sent as the database froze is still executed when it continues (the server
 * reads it from its socket, then finds the connection closed): that job is leased to nobody until
 * the lease expires and the reaper returns it. A short lease keeps the test short.
 */
const LEASE = { LEASE_MS: '2000' };
/** Far longer than the timeouts above, far shorter than "until the database answers again". */
const ANSWER_WITHIN_MS = 10_000;

interface Answer {
  what: string;
  status: number;
  contentType: string;
  retryAfter: string | null;
  body: string;
  ms: number;
}

describe('a database that stops answering', () => {
  let db: TestDatabase;
  let proxy: FreezableProxy;
  let service: TestService;

  afterEach(async () => {
    proxy?.thaw();
    await service?.stop();
    await proxy?.close();
    await db?.drop();
  });

  async function answer(what: string, method: string, pathname: string, options: { body?: unknown; key?: string | null } = {}): Promise<Answer> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    // A hang shows as status 0 after twice the bound, rather than as the test's own timeout.
    const hang = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ANSWER_WITHIN_MS * 2);
    });
    const res = await Promise.race([service.request(method, pathname, options), hang]);
    clearTimeout(timer);
    return {
      what,
      status: res?.status ?? 0,
      contentType: res?.headers.get('content-type') ?? '',
      retryAfter: res?.headers.get('retry-after') ?? null,
      body: (await res?.text()) ?? 'no answer',
      ms: Date.now() - started,
    };
  }

  it('when it is frozen, then /queue, /status and /readyz answer 503 with Retry-After within the timeouts, and all works again once it answers', async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await startFreezableProxy({ host: target.hostname, port: Number(target.port) });
    service = await startTestService({ mailjet: 'simulator', db, env: { DATABASE_URL: proxy.url(db.url), ...TIMEOUTS, ...LEASE } });
    const queued = await service.request('POST', '/queue', { body: messageTo('before@example.com') });
    expect(queued.status).to.equal(202);
    const { job_id: jobId } = (await queued.json()) as { job_id: string };

    proxy.freeze();
    // Every call at once: the pool's connections all hang, so later calls also wait for a free one.
    const answers = await Promise.all([
      answer('POST /queue', 'POST', '/queue', { body: messageTo('during@example.com') }),
      answer('POST /queue (bulk)', 'POST', '/queue', { body: { messages: [messageTo('bulk-1@example.com'), messageTo('bulk-2@example.com')] } }),
      answer('GET /status/{id}', 'GET', `/status/${jobId}`),
      answer('GET /status?ids=', 'GET', `/status?ids=${jobId}`),
      answer('GET /status?after=', 'GET', '/status?after=0'),
      answer('DELETE /queue/{id}', 'DELETE', `/queue/${jobId}`),
      answer('GET /readyz', 'GET', '/readyz', { key: null }),
    ]);
    proxy.thaw();

    for (const { what, status, contentType, retryAfter, body, ms } of answers) {
      expect(status, `${what}: ${body}`).to.equal(503);
      expect(retryAfter, `${what}: Retry-After`).to.match(/^[1-9]\d*$/);
      expect(ms, `${what} answered in`).to.be.below(ANSWER_WITHIN_MS);
      if (what === 'GET /readyz') {
        expect(JSON.parse(body)).to.deep.include({ status: 'not-ready' });
      } else {
        expect(contentType).to.match(/^application\/problem\+json/);
        expect(JSON.parse(body)).to.deep.include({ type: 'https://jetpost.dev/problems/service-unavailable', status: 503 });
      }
    }

    // Once it answers again: the API, readiness and the consumers (the first job gets sent).
    const after = await eventually(
      async () => {
        const res = await service.request('POST', '/queue', { body: messageTo('after@example.com') });
        return res.status === 202 ? res : undefined;
      },
      20_000,
      'POST /queue to answer 202 again',
    );
    expect(after.status).to.equal(202);
    expect((await service.request('GET', '/readyz', { key: null })).status).to.equal(200);
    await eventually(
      async () => {
        const { rows } = await db.pool.query<{ status: string }>('select status from email_send_jobs where id = $1', [jobId]);
        return rows[0]?.status !== 'queued' && rows[0]?.status !== 'processing' ? rows[0]!.status : undefined;
      },
      20_000,
      'the first job to be sent',
    );
    const { rows } = await db.pool.query<{ email: string }>('select email from email_recipients order by id');
    expect(
      rows.map((row) => row.email),
      'what is stored: nothing from the 503s',
    ).to.deep.equal(['before@example.com', 'after@example.com']);
  });

  it('when it is frozen under a request whose path holds an address (a suppression removed), then the 503 is logged by its route, not its path', async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await startFreezableProxy({ host: target.hostname, port: Number(target.port) });
    const { log, lines } = capturingLogger('warn');
    service = await startTestService({ db, log, env: { DATABASE_URL: proxy.url(db.url), WORKER_CONCURRENCY: '0', ...TIMEOUTS } });

    proxy.freeze();
    const removed = await answer('DELETE …/suppressions/{email}', 'DELETE', '/admin/apps/app-a/suppressions/ada.lovelace@example.org', { key: ADMIN_KEY });
    proxy.thaw();

    expect(removed.status, removed.body).to.equal(503);
    const logged = lines().filter((line) => line.includes('database unavailable during a request'));
    expect(logged, 'the line saying so').to.have.length(1);
    expect(JSON.parse(logged[0]!)).to.deep.include({ method: 'DELETE', route: '/admin/apps/:app/suppressions/:email' });
    expect(lines().join('\n'), 'an address in the log').not.to.contain('ada.lovelace');
  });

  it('when it takes no writes (a hot standby left in DATABASE_URL after a failover, default_transaction_read_only), then POST /queue answers 503 with Retry-After and /readyz 503 saying why, and all works again once it takes writes', async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    service = await startTestService({ mailjet: 'simulator', db });
    // New sessions of the database are read-only; the service's pool then opens only such sessions.
    const readOnly = async (on: boolean) => {
      const client = await db.pool.connect();
      try {
        await client.query('set default_transaction_read_only = off');
        await client.query(`alter database ${db.name} ${on ? 'set default_transaction_read_only = on' : 'reset default_transaction_read_only'}`);
        await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [db.name]);
      } finally {
        client.release(true);
      }
    };
    await readOnly(true);

    // The pool may first hand out a session the termination ended before it heard so: a 503 saying
    // the database is not reachable. Its new sessions are read-only, and are said to be.
    const answers: Answer[] = [];
    const saysReadOnly = (what: string, method: string, pathname: string, options: { body?: unknown; key?: string | null }) =>
      eventually(
        async () => {
          const reply = await answer(what, method, pathname, options);
          answers.push(reply);
          return /takes no writes/.test(reply.body) ? reply : undefined;
        },
        20_000,
        `${what} to say the database takes no writes`,
      );
    const queued = await saysReadOnly('POST /queue', 'POST', '/queue', { body: messageTo('read-only@example.com') });
    const ready = await saysReadOnly('GET /readyz', 'GET', '/readyz', { key: null });
    await readOnly(false);

    expect(answers.map((reply) => reply.status)).to.deep.equal(answers.map(() => 503));
    expect(queued.status, queued.body).to.equal(503);
    expect(queued.retryAfter).to.match(/^[1-9]\d*$/);
    expect(JSON.parse(queued.body)).to.deep.include({
      type: 'https://jetpost.dev/problems/service-unavailable',
      status: 503,
      detail: 'the database takes no writes right now (a standby, or default_transaction_read_only is on): nothing was stored; retry later',
    });
    expect(ready.status, ready.body).to.equal(503);
    expect(JSON.parse(ready.body)).to.deep.include({
      status: 'not-ready',
      checks: {
        database: {
          ok: false,
          detail: 'the database takes no writes (a standby, or default_transaction_read_only is on): point DATABASE_URL at the primary',
        },
        migrations: { ok: true },
        mailjet: { ok: true },
      },
    });
    const after = await eventually(
      async () => {
        const res = await service.request('POST', '/queue', { body: messageTo('writable@example.com') });
        return res.status === 202 ? res : undefined;
      },
      20_000,
      'POST /queue to answer 202 again',
    );
    expect(after.status).to.equal(202);
    expect((await service.request('GET', '/readyz', { key: null })).status).to.equal(200);
  });

  it("when a lock POST /queue needs is held past the database's lock_timeout (55P03), then it answers 503 with Retry-After saying so, not 500", async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    // A DBA's setting: jetpost sets statement_timeout for its sessions, not lock_timeout.
    await db.pool.query(`alter database ${db.name} set lock_timeout = '100ms'`);
    const locked = await postWhileJobsTableHeld('locked@example.com');

    expect(locked.status, locked.body).to.equal(503);
    expect(locked.retryAfter).to.match(/^[1-9]\d*$/);
    expect(JSON.parse(locked.body)).to.deep.include({
      type: 'https://jetpost.dev/problems/service-unavailable',
      status: 503,
      detail: 'the database is busy: a lock this request needs is held by another session (PostgreSQL 55P03, lock_timeout): nothing was stored; retry shortly',
    });
  });

  it('when the database ends the session of POST /queue for its transaction_timeout (25P04, PostgreSQL 17), then it answers 503 with Retry-After, not 500', async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    const { rows } = await db.pool.query<{ version: number }>("select current_setting('server_version_num')::int as version");
    if (rows[0]!.version < 170_000) {
      console.log('      (skipped: transaction_timeout came with PostgreSQL 17)');
      this.skip();
    }
    // A DBA's setting, under the statement_timeout jetpost sets: the session ends (FATAL), not the statement.
    await db.pool.query(`alter database ${db.name} set transaction_timeout = '200ms'`);
    const ended = await postWhileJobsTableHeld('ended@example.com');

    expect(ended.status, ended.body).to.equal(503);
    expect(ended.retryAfter).to.match(/^[1-9]\d*$/);
    expect(JSON.parse(ended.body)).to.deep.include({ type: 'https://jetpost.dev/problems/service-unavailable', status: 503 });
  });

  /**
   * POST /queue while another session (a migration, a DBA's maintenance) holds the jobs table, its
   * answer once the table is free again; then checks that the next POST is taken (202).
   */
  async function postWhileJobsTableHeld(address: string): Promise<Answer> {
    service = await startTestService({ db, env: { WORKER_CONCURRENCY: '0' } });
    const held = openTransaction(db.pool, (tx) => tx.query('lock table email_send_jobs in access exclusive mode'));
    await held.written;
    const refused = await answer('POST /queue', 'POST', '/queue', { body: messageTo(address) });
    held.commit();
    await held.committed;
    const after = await service.request('POST', '/queue', { body: messageTo(`after-${address}`) });
    expect(after.status, await after.text()).to.equal(202);
    return refused;
  }

  it('when its disk is full (53100), then /readyz answers 503 saying so, and ready again by itself once space is freed and a write goes through', async function () {
    this.timeout(60_000);
    // A real full disk under the jobs table: a tablespace on a tmpfs of 2 MB, filled up. It must be
    // on the database server's machine, and mounting needs root with the right to mount.
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'jetpost-full-disk-'));
    const skip = (why: string) => {
      console.log(`      (skipped: ${why})`);
      this.skip();
    };
    if (process.env['DATABASE_URL'] !== undefined) {
      await fs.rm(tmp, { recursive: true });
      skip('a tablespace on a small disk needs the embedded test PostgreSQL, on this machine');
    }
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', tmp], { stdio: 'ignore' });
    } catch {
      await fs.rm(tmp, { recursive: true });
      skip('mounting a tmpfs needs root with the right to mount');
    }
    const tablespace = `jetpost_full_${randomBytes(4).toString('hex')}`;
    const filler = path.join(tmp, 'filler');
    try {
      const location = path.join(tmp, 'ts');
      await fs.mkdir(location);
      // The embedded PostgreSQL runs as `postgres` when the tests run as root.
      execFileSync('chown', ['postgres', location]);
      db = await createTestDatabase();
      await db.pool.query(`create tablespace ${tablespace} location '${location}'`);
      await db.pool.query(`alter table email_send_jobs set tablespace ${tablespace}`);
      const file = await fs.open(filler, 'w');
      await file
        .write(Buffer.alloc(4 * 1024 * 1024))
        .catch((error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOSPC'))
        .finally(() => file.close());
      service = await startTestService({ mailjet: 'simulator', db });

      const full = await answer('POST /queue', 'POST', '/queue', { body: messageTo('full@example.com') });
      const ready = await answer('GET /readyz', 'GET', '/readyz', { key: null });

      expect(full.status, full.body).to.equal(503);
      expect(full.retryAfter).to.match(/^[1-9]\d*$/);
      // Not "not reachable": the operator is told what to look at.
      expect(JSON.parse(full.body)).to.deep.include({
        status: 503,
        detail: "the database's disk is full (PostgreSQL 53100): nothing was stored; retry later",
      });
      expect(ready.status, ready.body).to.equal(503);
      const { checks } = JSON.parse(ready.body) as { checks: Record<string, { ok: boolean; detail?: string }> };
      expect(checks['database']!.ok).to.equal(false);
      expect(checks['database']!.detail).to.match(
        /^PostgreSQL is out of disk space \(53100, could not extend file .*No space left on device\): free space on the database server's disk/,
      );

      await fs.rm(filler);
      const after = await eventually(
        async () => {
          const res = await service.request('POST', '/queue', { body: messageTo('room@example.com') });
          return res.status === 202 ? res : undefined;
        },
        20_000,
        'POST /queue to answer 202 again',
      );
      expect(after.status).to.equal(202);
      const readyAgain = await service.request('GET', '/readyz', { key: null });
      expect(readyAgain.status, await readyAgain.text()).to.equal(200);
    } finally {
      await service?.stop();
      service = undefined as unknown as TestService;
      await db?.pool.query('alter table email_send_jobs set tablespace pg_default').catch(() => undefined);
      await db?.pool.query(`drop tablespace if exists ${tablespace}`).catch(() => undefined);
      execFileSync('umount', [tmp]);
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
