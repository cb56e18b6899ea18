import { createServer, type Server, type Socket } from 'node:net';

import { expect } from 'chai';
import pg from 'pg';

import { loadConfig } from '../../src/config.js';
import { latestMigrationId, migrationsApplied, runMigrations } from '../../src/db/migrate.js';
import { openDatabase } from '../../src/db/open.js';
import { StartupError } from '../../src/domain/errors.js';
import { makeApp, makeJob } from '../factories.js';
import { createTestDatabase, TEST_SCHEMA, type TestDatabase } from '../support/database.js';
import { capturingLogger, testLogger } from '../support/log.js';

describe('migrations', () => {
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  it('when another schema already has a table named migrations, then jetpost still migrates its own schema', async () => {
    db = await createTestDatabase({ migrated: false });
    await db.pool.query('create schema graphile_worker');
    await db.pool.query('create table graphile_worker.migrations (id int primary key, ran_at timestamptz)');
    await db.pool.query('insert into graphile_worker.migrations values (1, now())');

    const applied = await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });

    expect(applied).to.include('create-tables');
    const { rows } = await db.pool.query('select count(*)::int as n from email_send_jobs');
    expect(rows[0].n).to.equal(0);
    const foreign = await db.pool.query('select id from graphile_worker.migrations');
    expect(foreign.rows).to.deep.equal([{ id: 1 }]);
    expect(await migrationsApplied(db.pool, await latestMigrationId())).to.equal(true);
  });

  for (const encoding of ['SQL_ASCII', 'LATIN1'] as const) {
    it(`when the database is in the ${encoding} encoding, then the start stops in one line naming it and UTF8, and creates nothing`, async () => {
      db = await createTestDatabase({ encoding });

      const error = await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() }).catch((caught: unknown) => caught);

      expect(error).to.be.instanceOf(StartupError);
      expect((error as Error).message).to.equal(
        `the database ${db.name} is in the ${encoding} encoding; jetpost needs a UTF8 one (names, subjects and addresses come in every script): create one with CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0 and point DATABASE_URL at it`,
      );
      expect((await db.pool.query('select 1 from pg_namespace where nspname = $1', [TEST_SCHEMA])).rowCount).to.equal(0);
    });
  }

  it('when jetpost’s schema holds another tool’s migrations table, or one whose migrations differ from sql/, then the start stops in one line saying so, and applies nothing', async () => {
    db = await createTestDatabase({ migrated: false });
    // TypeORM's bookkeeping table, in a schema jetpost is told to share.
    await db.pool.query('create schema typeorm_app');
    await db.pool.query('create table typeorm_app.migrations (id serial primary key, timestamp bigint not null, name varchar not null)');
    await db.pool.query(`insert into typeorm_app.migrations (timestamp, name) values (1700000000000, 'CreateUsers1700000000000')`);
    // postgres-migrations' table, holding another project's first migration.
    await db.pool.query('create schema other_project');
    await db.pool.query(
      'create table other_project.migrations (id integer primary key, name varchar(100) unique not null, hash varchar(40) not null, executed_at timestamp default current_timestamp)',
    );
    await db.pool.query(
      `insert into other_project.migrations (id, name, hash) values (0, 'create-migrations-table', 'e18db593bcde2aca2a408c4d1100f6abba2195df'), (1, 'create-orders', 'aaaa')`,
    );

    const refusals = [];
    for (const schema of ['typeorm_app', 'other_project']) {
      refusals.push(
        await runMigrations({ connectionString: db.url, schema, log: testLogger() }).then(
          () => new Error(`${schema} migrated`),
          (error: unknown) => error,
        ),
      );
    }

    expect(refusals.map((error) => (error instanceof StartupError ? error.message : String(error)))).to.deep.equal([
      "typeorm_app.migrations is not the migrations table of jetpost (it has no column hash): DATABASE_SCHEMA names a schema whose migrations another tool keeps. Set DATABASE_SCHEMA to a schema of jetpost's own (jetpost creates it)",
      "the migrations recorded in other_project.migrations are not this release's sql/ (Hashes don't match for migrations '1_create-tables.sql'.): DATABASE_SCHEMA names a schema whose migrations another tool keeps, or a migration was edited after it was applied. Set DATABASE_SCHEMA to a schema of jetpost's own (jetpost creates it)",
    ]);
    const { rows } = await db.pool.query(
      `select table_schema, table_name from information_schema.tables where table_schema in ('typeorm_app', 'other_project') order by 1, 2`,
    );
    expect(rows.map((row) => `${row.table_schema}.${row.table_name}`)).to.deep.equal(['other_project.migrations', 'typeorm_app.migrations']);
  });

  it("when the database's own statement_timeout and idle_in_transaction_session_timeout are 1 ms, then the migrations still run: those are for its other users", async () => {
    db = await createTestDatabase({ migrated: false });
    await db.pool.query(`alter database ${db.name} set statement_timeout = '1ms'`);
    await db.pool.query(`alter database ${db.name} set idle_in_transaction_session_timeout = '1ms'`);

    const applied = await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });

    // With postgres-migrations' own first one.
    expect(applied).to.have.length((await latestMigrationId()) + 1);
  });

  it('when the database takes no writes (default_transaction_read_only), then the start stops in one line saying to point DATABASE_URL at the primary', async () => {
    db = await createTestDatabase({ migrated: false });
    await db.pool.query(`alter database ${db.name} set default_transaction_read_only = on`);

    const error = await openDatabase(loadConfig({ DATABASE_URL: db.url }), testLogger(), { role: 'service' }).then(
      async (opened) => opened.close(),
      (caught: unknown) => caught,
    );

    expect(error).to.be.instanceOf(StartupError);
    expect((error as Error).message).to.equal(
      'the database in DATABASE_URL refused jetpost: cannot execute CREATE SCHEMA in a read-only transaction. The database of DATABASE_URL takes no writes (a hot standby, or default_transaction_read_only on for the database or its user): point DATABASE_URL at the primary, or turn default_transaction_read_only off',
    );
  });

  it('when several replicas start together on an empty database, then each one migrates or finds it migrated: none fails on the schema another is creating', async () => {
    db = await createTestDatabase({ migrated: false });

    const runs = await Promise.allSettled(Array.from({ length: 6 }, () => runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() })));

    expect(runs.map((run) => (run.status === 'fulfilled' ? 'ok' : String(run.reason)))).to.deep.equal(Array.from({ length: 6 }, () => 'ok'));
    expect(await migrationsApplied(db.pool, await latestMigrationId())).to.equal(true);
  });

  it('when run twice, then the second run applies nothing', async () => {
    db = await createTestDatabase({ migrated: false });
    await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });
    const second = await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });
    expect(second).to.deep.equal([]);
  });

  it('when the database was moved by logical replication (its identity sequences back at their start), then a start moves each past its rows, so that new rows and webhook-ids never reuse an id', async () => {
    db = await createTestDatabase();
    const moved = await makeApp(db.pool);
    await makeJob(db.pool, { appId: moved.id });
    await makeJob(db.pool, { appId: moved.id });
    // Logical replication copies the rows, not the sequences: on the new cluster each is where it started.
    const identities = `
      select format('%I.%I', n.nspname, c.relname) as tbl, a.attname as col, pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) as seq
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and a.attidentity <> '' and not a.attisdropped`;
    const { rows: columns } = await db.pool.query<{ tbl: string; col: string; seq: string }>(identities, [TEST_SCHEMA]);
    expect(columns.map((column) => column.tbl)).to.include.members([`${TEST_SCHEMA}.webhook_deliveries`, `${TEST_SCHEMA}.status_changes`]);
    for (const { seq } of columns) {
      await db.pool.query(`alter sequence ${seq} restart`);
    }
    const { log, lines } = capturingLogger('warn');

    await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log });

    for (const { tbl, col, seq } of columns) {
      const { rows } = await db.pool.query(`select (select coalesce(max(${col}), 0) from ${tbl}) as max, nextval('${seq}') as next`);
      expect(Number(rows[0].next), tbl).to.be.greaterThan(Number(rows[0].max));
    }
    const next = await makeApp(db.pool);
    expect(Number(next.id)).to.be.greaterThan(Number(moved.id));
    expect(lines().join('\n')).to.include(`${TEST_SCHEMA}.email_send_jobs`);
  });

  it('when replicas already running take ids while a start checks the identity sequences, then the start never sets a sequence back over the ids they took', async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    await makeApp(db.pool);
    const { rows: sequences } = await db.pool.query<{ seq: string }>(`select pg_get_serial_sequence('${TEST_SCHEMA}.apps', 'id') as seq`);
    const sequence = sequences[0]!.seq;
    const running = new pg.Client({ connectionString: db.url });
    await running.connect();
    try {
      // A running replica holds the table while the start reaches it, so its ids are taken between
      // the start's look at the catalogue and its read of the rows.
      await running.query('begin');
      await running.query(`lock table ${TEST_SCHEMA}.apps in access exclusive mode`);
      const start = runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() });
      const waiting = `select count(*)::int as n from pg_locks where relation = '${TEST_SCHEMA}.apps'::regclass and not granted`;
      while ((await db.pool.query<{ n: number }>(waiting)).rows[0]!.n === 0) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await running.query(`insert into ${TEST_SCHEMA}.apps (name) values ('taken-meanwhile')`);
      // Another insert of a running replica, in flight: its id is taken, its row not committed yet.
      const { rows: inFlight } = await running.query<{ id: string }>(`select nextval('${sequence}')::text as id`);
      await running.query('commit');

      await start;

      const { rows: next } = await db.pool.query<{ id: string }>(`select nextval('${sequence}')::text as id`);
      expect(Number(next[0]!.id), 'the next id after the start').to.be.greaterThan(Number(inFlight[0]!.id));
    } finally {
      await running.end();
    }
  });

  it('when another session holds a table locked exclusively, then a start does not wait for it to check the identity sequences: it says which table it could not check', async function () {
    this.timeout(60_000);
    db = await createTestDatabase();
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query(`lock table ${TEST_SCHEMA}.api_keys in access exclusive mode`);
      const { log, lines } = capturingLogger('warn');

      expect(await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log })).to.deep.equal([]);

      expect(lines().join('\n')).to.include('could not check the identity sequences').and.include(`${TEST_SCHEMA}.api_keys`);
    } finally {
      await locker.end();
    }
  });

  describe('when the database takes the connection but never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];

    beforeEach(async () => {
      // A frozen PostgreSQL: the kernel accepts the connection, nothing ever answers on it.
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });

    afterEach(async () => {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => silent.close(resolve));
    });

    it('then the start stops after DATABASE_CONNECT_TIMEOUT_MS with one line naming the settings, instead of waiting for ever', async function () {
      // Without the connect timeout the start hangs: fail well before mocha's own timeout.
      this.timeout(15_000);
      const { port } = silent.address() as { port: number };
      const config = loadConfig({ DATABASE_URL: `postgres://jetpost:secret@127.0.0.1:${port}/jetpost`, DATABASE_CONNECT_TIMEOUT_MS: '300' });

      const error = await Promise.race([
        openDatabase(config, testLogger(), { role: 'command' }).then(
          () => new Error('opened a database that never answers'),
          (caught: unknown) => caught,
        ),
        new Promise((resolve) => setTimeout(() => resolve(new Error('still waiting after 10 s')), 10_000)),
      ]);

      expect(error).to.be.instanceOf(StartupError);
      expect((error as Error).message).to.match(/^the database in DATABASE_URL .*no answer within 300 ms \(DATABASE_CONNECT_TIMEOUT_MS\)\. Check /);
      expect((error as Error).message).not.to.include('secret');
    });

    it('then a signal while connecting stops the start at once and closes the connection, without waiting out DATABASE_CONNECT_TIMEOUT_MS', async function () {
      this.timeout(60_000);
      const { port } = silent.address() as { port: number };
      const config = loadConfig({ DATABASE_URL: `postgres://jetpost:secret@127.0.0.1:${port}/jetpost`, DATABASE_CONNECT_TIMEOUT_MS: '600000' });
      const accepted = new Promise<Socket>((resolve) => silent.once('connection', resolve));
      const aborted = new AbortController();

      const opening = openDatabase(config, testLogger(), { role: 'service', signal: aborted.signal }).then(
        () => new Error('opened a database that never answers'),
        (caught: unknown) => caught,
      );
      const socket = await accepted;
      const closed = new Promise((resolve) => socket.once('close', resolve));
      aborted.abort(new Error('SIGINT during the start'));

      // Before the fix the start waited the full 10 minutes of DATABASE_CONNECT_TIMEOUT_MS.
      const error = await Promise.race([opening, new Promise((resolve) => setTimeout(() => resolve(new Error('still waiting after 30 s')), 30_000))]);
      expect((error as Error).message).to.equal('SIGINT during the start');
      await closed;
    });
  });

  describe('when PostgreSQL cannot take a connection now', () => {
    let starting: Server | undefined;
    let role: string | undefined;

    afterEach(async () => {
      await new Promise((resolve) => (starting ? starting.close(resolve) : resolve(undefined)));
      starting = undefined;
      if (role !== undefined) {
        await db.pool.query(`drop role ${role}`);
        role = undefined;
      }
    });

    it('then a start refused for lack of connections (max_connections, a connection limit) or by a server starting up stops with one line saying what to do, not a stack trace', async () => {
      db = await createTestDatabase();
      role = `jp_limited_${process.pid}_${Date.now()}`;
      await db.pool.query(`create role ${role} login password 'limited-password' connection limit 0`);
      const limited = new URL(db.url);
      limited.username = role;
      limited.password = 'limited-password';
      // A server still starting up (or shutting down, or recovering) answers the startup message with 57P03.
      starting = createServer((socket) =>
        socket.once('data', () => {
          const fields = Buffer.from('SFATAL\0C57P03\0Mthe database system is starting up\0\0');
          const header = Buffer.alloc(5);
          header.write('E');
          header.writeInt32BE(fields.length + 4, 1);
          socket.end(Buffer.concat([header, fields]));
        }),
      );
      await new Promise<void>((resolve) => starting!.listen(0, '127.0.0.1', resolve));
      const { port } = starting.address() as { port: number };

      const refusals = [];
      for (const url of [limited.toString(), `postgres://jetpost:secret@127.0.0.1:${port}/jetpost`]) {
        refusals.push(
          await openDatabase(loadConfig({ DATABASE_URL: url }), testLogger(), { role: 'command' }).then(
            (opened) => opened.close(),
            (error: unknown) => error,
          ),
        );
      }

      expect(refusals.map((error) => (error instanceof StartupError ? error.message : String(error)))).to.deep.equal([
        `the database in DATABASE_URL refused jetpost: too many connections for role "${role}". PostgreSQL has no connection left for jetpost (its max_connections, or a connection limit of the user or the database): each replica holds up to DATABASE_POOL_SIZE connections and one more. Lower DATABASE_POOL_SIZE, raise the limit, or put PgBouncer in front (docs/deployment.md)`,
        'the database in DATABASE_URL refused jetpost: the database system is starting up. The PostgreSQL of DATABASE_URL is starting up, shutting down or recovering: start jetpost again once it accepts connections',
      ]);
    });
  });

  describe('when DATABASE_URL does not match how the server takes connections', () => {
    const servers: Server[] = [];
    const sockets: Socket[] = [];

    afterEach(async () => {
      // A client that gave up may leave its socket open: close() waits for every connection.
      for (const socket of sockets.splice(0)) {
        socket.destroy();
      }
      for (const server of servers.splice(0)) {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    /** A server that answers each message the client sends with the next of `answers`. */
    async function answering(...answers: Buffer[]): Promise<number> {
      const server = createServer((socket: Socket) => {
        sockets.push(socket);
        let next = 0;
        socket.on('data', () => socket.write(answers[next++] ?? Buffer.alloc(0)));
        socket.on('error', () => undefined);
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as { port: number }).port;
    }

    /** An authentication message ('R') of `code` with `data`. */
    const authentication = (code: number, data: Buffer) => {
      const header = Buffer.alloc(9);
      header.write('R');
      header.writeInt32BE(data.length + 8, 1);
      header.writeInt32BE(code, 5);
      return Buffer.concat([header, data]);
    };

    it('then SSL the server does not offer, a certificate file that is not there, or no password for a server that asks one stops the start with one line saying what to fix, not a stack trace', async () => {
      // PostgreSQL answers a request for SSL with N when it has none.
      const noSsl = await answering(Buffer.from('N'));
      // SASL (10) with SCRAM-SHA-256, then the server's first message (11).
      const scram = await answering(authentication(10, Buffer.from('SCRAM-SHA-256\0\0')), authentication(11, Buffer.from('r=abc,s=c2FsdA==,i=4096')));
      const urls = [
        `postgres://jetpost:secret@127.0.0.1:${noSsl}/jetpost?sslmode=verify-full`,
        `postgres://jetpost:secret@127.0.0.1:${noSsl}/jetpost?sslmode=verify-full&sslrootcert=/nonexistent/root.crt`,
        `postgres://jetpost@127.0.0.1:${scram}/jetpost`,
      ];

      const refusals = [];
      for (const url of urls) {
        refusals.push(
          await openDatabase(loadConfig({ DATABASE_URL: url }), testLogger(), { role: 'command' }).then(
            (opened) => opened.close(),
            (error: unknown) => error,
          ),
        );
      }

      expect(refusals.map((error) => (error instanceof StartupError ? error.message : String(error)))).to.deep.equal([
        'the database in DATABASE_URL refused jetpost: The server does not support SSL connections. DATABASE_URL asks for SSL (its sslmode) and the server offers none: turn SSL on in PostgreSQL, or set sslmode=disable in DATABASE_URL',
        "DATABASE_URL names a file jetpost cannot read (ENOENT: no such file or directory, open '/nonexistent/root.crt'): check its sslrootcert, sslcert and sslkey",
        'the database in DATABASE_URL refused jetpost: SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string. The server asks for a password and DATABASE_URL gives none: put it in DATABASE_URL (postgres://user:password@host/database)',
      ]);
    });
  });

  describe('when a concurrent index build did not finish (PostgreSQL restarted, the statement cancelled)', () => {
    /** Leaves jetpost.interrupted_idx invalid, as an index build cut short does. */
    async function leaveInvalidIndex(): Promise<void> {
      await db.pool.query('create table interrupted (v int)');
      await db.pool.query('insert into interrupted values (1), (1)');
      const failed = await db.pool.query('create unique index concurrently interrupted_idx on interrupted (v)').catch((error: unknown) => error);
      expect(failed).to.be.instanceOf(Error);
    }

    it('then a start with nothing to apply goes on and reports the index', async () => {
      db = await createTestDatabase();
      await leaveInvalidIndex();
      const { log, lines } = capturingLogger('warn');

      expect(await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log })).to.deep.equal([]);
      expect(lines().join('\n')).to.include(`${TEST_SCHEMA}.interrupted_idx`);
    });
  });

  describe('when a migration builds an index concurrently, held waiting by a write in progress on its table', () => {
    // sql/49 builds this index concurrently; sql/50 and 51 after it can run again (postgres-migrations
    // picks the migrations to apply by their position, so all three are taken out).
    const INDEX = 'email_recipients_address_key_job_id_idx';
    const BUILD = `%create index concurrently if not exists ${INDEX}%`;
    let writer: pg.Client | undefined;

    /** Takes sql/49's index and records out, and holds a write on its table open: a build of it waits for that. */
    async function holdBuildWaiting(replaceIndex = ''): Promise<pg.Client> {
      db = await createTestDatabase();
      await db.pool.query('delete from migrations where id >= 49');
      await db.pool.query(`drop index ${INDEX}`);
      if (replaceIndex !== '') {
        await db.pool.query(replaceIndex);
      }
      writer = new pg.Client({ connectionString: db.url });
      await writer.connect();
      await writer.query('begin');
      await writer.query(`lock table ${TEST_SCHEMA}.email_recipients in row exclusive mode`);
      return writer;
    }

    /** The pid of the session whose build waits, once it waits (the index exists then, invalid). */
    async function waitingBuild(): Promise<number> {
      for (;;) {
        const { rows } = await db.pool.query<{ pid: number }>(
          "select pid from pg_stat_activity where query like $1 and state = 'active' and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
          [BUILD],
        );
        if (rows[0] !== undefined) {
          return rows[0].pid;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    const indexValid = async () =>
      (await db.pool.query<{ valid: boolean }>('select indisvalid as valid from pg_index where indexrelid = to_regclass($1)', [`${TEST_SCHEMA}.${INDEX}`]))
        .rows[0]?.valid;

    afterEach(async () => {
      await writer?.end();
      writer = undefined;
    });

    it('then a signal during it stops the start without waiting for the build: its statement is cancelled, the index left for the next start', async () => {
      const writing = await holdBuildWaiting();
      const aborted = new AbortController();
      // As the service's start opens it (main.ts).
      const start = openDatabase(loadConfig({ DATABASE_URL: db.url }), testLogger(), { role: 'service', signal: aborted.signal }).then(
        async (database) => {
          await database.close();
          return 'opened';
        },
        (error: unknown) => error,
      );
      await waitingBuild();

      aborted.abort(new Error('SIGINT during the start'));
      const error = await start;

      // The write that the build waited for is still in progress: the start did not wait for it.
      const writerPid = (await writing.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
      expect((await db.pool.query("select 1 from pg_locks where pid = $1 and mode = 'RowExclusiveLock' and granted", [writerPid])).rowCount).to.equal(1);
      expect((error as Error).message).to.equal(
        'migration create-recipients-address-key-index was interrupted by SIGINT during the start (its statement cancelled): the next start applies it again',
      );
      expect((await db.pool.query('select 1 from pg_stat_activity where query like $1 and pid <> pg_backend_pid()', [BUILD])).rowCount).to.equal(0);
      expect(await indexValid()).to.equal(false);
      expect(await migrationsApplied(db.pool, 49)).to.equal(false);
    });

    it('then, interrupted, the next start drops the invalid index it left and builds it again', async () => {
      const writing = await holdBuildWaiting();
      const start = runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() }).catch((error: unknown) => error);
      await db.pool.query('select pg_cancel_backend($1)', [await waitingBuild()]);
      expect(await start).to.be.instanceOf(Error);
      await writing.query('commit');
      expect(await indexValid()).to.equal(false);
      const { log, lines } = capturingLogger('warn');

      expect(await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log })).to.deep.equal([
        'create-recipients-address-key-index',
        'key-ascii-addresses-and-domains-directly',
        'punycode-without-a-query-per-label',
      ]);
      expect(await indexValid()).to.equal(true);
      expect(lines().join('\n')).to.include(`"index":"${TEST_SCHEMA}.${INDEX}"`);
    });

    it('then an invalid index that another session is building right now (an operator’s REINDEX CONCURRENTLY) is neither dropped nor waited for: the start stops and says to start again once it is built', async () => {
      await holdBuildWaiting(`create index ${INDEX} on email_recipients (job_id)`);
      const operator = new pg.Client({ connectionString: db.url, options: `-c search_path=${TEST_SCHEMA}` });
      await operator.connect();
      try {
        const reindex = operator.query(`reindex index concurrently ${INDEX}`).then(
          () => 'rebuilt',
          (error: unknown) => (error as Error).message,
        );
        // The reindex's new copy, invalid until it is built, waits for the write.
        for (;;) {
          const { rowCount } = await db.pool.query(
            "select 1 from pg_stat_activity where query like 'reindex index concurrently%' and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
          );
          if (rowCount !== 0) {
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }

        const error = await runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() }).catch((caught: unknown) => caught);

        expect(error).to.be.instanceOf(StartupError);
        expect((error as Error).message).to.include(
          `which another session is building right now (REINDEX or CREATE INDEX CONCURRENTLY): start jetpost again once that build has finished`,
        );
        await writer!.query('commit');
        expect(await reindex).to.equal('rebuilt');
      } finally {
        await operator.end();
      }
    });
  });

  it('when a signal comes while a start waits for the migrations lock that another replica holds for its build, then the start stops and the other replica’s build is not cancelled', async () => {
    db = await createTestDatabase();
    const replica = await anotherReplicaBuilding(db);
    try {
      const aborted = new AbortController();
      const start = runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger(), signal: aborted.signal }).catch(
        (error: unknown) => (error as Error).message,
      );
      await replica.askedForTheLock();

      aborted.abort(new Error('SIGTERM during the start'));

      expect(await start).to.equal('the migrations were interrupted by SIGTERM during the start: the next start applies what is left');
      await replica.endTheWrite();
      expect(await replica.build).to.equal('built');
    } finally {
      await replica.end();
    }
  });

  it('when another replica holds the migrations lock while its concurrent index build waits, then a start waits for it instead of deadlocking', async () => {
    db = await createTestDatabase();
    const replica = await anotherReplicaBuilding(db);
    try {
      const start = runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log: testLogger() }).then(
        () => 'started',
        (error: unknown) => (error as Error).message,
      );
      // Once this start has asked for the lock, the write ends: the build goes on to wait for the
      // transactions older than it, this start's included.
      await replica.askedForTheLock();
      await replica.endTheWrite();

      expect(await replica.build).to.equal('built');
      await replica.releaseTheLock();
      expect(await start).to.equal('started');
    } finally {
      await replica.end();
    }
  });

  it('when another replica holds the migrations lock, then a start waiting for it says so in one line naming that session, and goes on once it is released', async () => {
    db = await createTestDatabase();
    const holder = new pg.Client({ connectionString: db.url, application_name: 'jetpost migrations' });
    await holder.connect();
    try {
      const holderPid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      await holder.query('select pg_advisory_lock(-8525285245963000605)');
      const { log, lines } = capturingLogger('info');
      const start = runMigrations({ connectionString: db.url, schema: TEST_SCHEMA, log }).then(() => 'started');
      // Once the start has tried the lock (held), it is released: the start goes on at its next try.
      const tried = "select 1 from pg_stat_activity where query like '%pg_try_advisory_lock(-8525285245963000605)%' and pid not in ($1, pg_backend_pid())";
      while ((await db.pool.query(tried, [holderPid])).rowCount === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await holder.query('select pg_advisory_unlock(-8525285245963000605)');
      expect(await start).to.equal('started');

      const waiting = lines()
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => String(line['message']).startsWith('waiting for the migrations lock'));
      expect(waiting).to.have.length(1);
      expect(waiting[0]).to.include({ level: 'info', component: 'migrate', holderPid, holderApplication: 'jetpost migrations' });
      expect(Number.isNaN(Date.parse(String(waiting[0]!['holderSince']))), 'when that session began, as a date').to.equal(false);
      expect(waiting[0]!['message']).to.equal(
        `waiting for the migrations lock, held by another session (PostgreSQL pid ${holderPid}, jetpost migrations from 127.0.0.1): another replica is applying migrations; this start goes on, and opens its port, once they are done`,
      );
    } finally {
      await holder.end();
    }
  });
});

/**
 * Another replica: it holds postgres-migrations' lock and builds an index concurrently, which waits
 * for a write in progress on its table until endTheWrite().
 */
async function anotherReplicaBuilding(db: TestDatabase) {
  await db.pool.query('create table building (v int)');
  const writer = new pg.Client({ connectionString: db.url });
  const builder = new pg.Client({ connectionString: db.url, options: `-c search_path=${TEST_SCHEMA}` });
  await writer.connect();
  await builder.connect();
  await writer.query('begin');
  await writer.query(`lock table ${TEST_SCHEMA}.building in row exclusive mode`);
  const builderPid = (await builder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
  await builder.query('select pg_advisory_lock(-8525285245963000605)');
  const build = builder.query('create index concurrently building_idx on building (v)').then(
    () => 'built',
    (error: unknown) => (error as Error).message,
  );
  const asked = "select 1 from pg_stat_activity where query like '%advisory_lock(-8525285245963000605)%' and pid not in ($1, pg_backend_pid())";
  return {
    build,
    /** Until a start (any session but the builder and the pool's) has asked for the lock. */
    async askedForTheLock() {
      while ((await db.pool.query(asked, [builderPid])).rowCount === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    endTheWrite: () => writer.query('commit'),
    releaseTheLock: () => builder.query('select pg_advisory_unlock(-8525285245963000605)'),
    async end() {
      await writer.end();
      await builder.end();
    },
  };
}
