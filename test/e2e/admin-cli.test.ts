import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'chai';
import pg from 'pg';

import { makeApp, makeJob, makeSuppression } from '../factories.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('npm run admin -- jobs …', function () {
  // Each test spawns several commands (compiled once per run, see compiled-bin.ts): budgets for a
  // loaded 2-core machine, where one command can take seconds, not a measure of speed.
  this.timeout(180_000);
  let db: TestDatabase;

  afterEach(async () => {
    await db?.drop();
  });

  async function failedJob(appId: string, error: string): Promise<string> {
    return makeJob(db.pool, { appId, status: 'failed', maxAttempts: 3, lastError: error, to: ['b@example.com'] });
  }

  // A command brings the schema up to date first (db/open.ts), waiting for the migrations lock of a
  // replica that migrates: Ctrl-C then waited for that replica's migrations, minutes for an index.
  it('when Ctrl-C comes while the command waits for the migrations lock another replica holds, then it exits 130 at once, the replica’s lock left alone', async () => {
    db = await createTestDatabase();
    const replica = new pg.Client({ connectionString: db.url });
    await replica.connect();
    try {
      await replica.query('select pg_advisory_lock(-8525285245963000605)');
      const asking = "select 1 from pg_stat_activity where query like '%pg_try_advisory_lock(-8525285245963000605)%' and pid <> pg_backend_pid()";
      const interruptOnceWaiting = async (child: ChildProcess) => {
        while ((await db.pool.query(asking)).rowCount === 0) {
          await sleep(50);
        }
        child.kill('SIGINT');
      };

      const result = await runCli('admin', ['apps', 'list'], { DATABASE_URL: db.url }, { started: (child) => void interruptOnceWaiting(child) });

      expect(result.code).to.equal(130);
      const held = await replica.query("select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted");
      expect(held.rowCount).to.equal(1);
    } finally {
      await replica.end();
    }
  });

  it('when failed jobs exist, then list shows them with their reasons and requeue puts them back with fresh attempts', async () => {
    db = await createTestDatabase();
    const app = await makeApp(db.pool, { name: 'billing' });
    const first = await failedJob(app.id, 'gave up after 3 attempts: Mailjet 503');
    const second = await failedJob(app.id, 'mj-0013: invalid address');
    const env = { DATABASE_URL: db.url, EVENTS_USERNAME: 'u', EVENTS_PASSWORD: 'callback-password-0123' };

    const listed = await runCli('admin', ['jobs', 'list'], env);
    const requeued = await runCli('admin', ['jobs', 'requeue', first, '999999'], env);
    const mistyped = await runCli('admin', ['jobs', 'requeue', '--all-failed', '--app', 'biling'], env);
    const all = await runCli('admin', ['jobs', 'requeue', '--all-failed', '--app', 'billing'], env);

    expect(listed.code, listed.stderr).to.equal(0);
    expect(listed.stdout).to.match(new RegExp(`${second}\\s+billing\\s+failed\\s+3/3`));
    expect(listed.stdout).to.contain('gave up after 3 attempts: Mailjet 503');
    expect(requeued.stdout).to.contain(`re-queued 1 job(s): ${first}`);
    expect(requeued.stdout).to.contain('not failed (left alone): 999999');
    // A mistyped app is said to be unknown, not "re-queued 0 job(s)".
    expect([mistyped.code, mistyped.stdout, mistyped.stderr.trim()]).to.deep.equal([1, '', 'no app named biling']);
    expect(all.stdout).to.contain(`re-queued 1 job(s): ${second}`);
    const { rows } = await db.pool.query(`select status, attempts from email_send_jobs order by id`);
    expect(rows).to.deep.equal([
      { status: 'queued', attempts: 0 },
      { status: 'queued', attempts: 0 },
    ]);
    const recipients = await db.pool.query(`select distinct status from email_recipients`);
    expect(recipients.rows).to.deep.equal([{ status: 'pending' }]);
  });

  it('when a list holds text with escape sequences, line breaks or bidi overrides, then the terminal is shown them as \\u escapes, one row a line', async () => {
    db = await createTestDatabase();
    const app = await makeApp(db.pool, { name: 'mail' });
    // What Mailjet wrote (a bounce's error, an API error message): the CLI's output must not obey it.
    const hostile = '\u001b]0;pwned\u0007\u001b[2J\r\nfake row\u202eevil';
    await makeSuppression(db.pool, app.id, 'bounced@example.com', { reason: 'hard_bounce', detail: hostile });
    const jobId = await failedJob(app.id, hostile);
    const env = { DATABASE_URL: db.url };

    const suppressions = await runCli('admin', ['suppressions', 'list', 'mail'], env);
    const jobs = await runCli('admin', ['jobs', 'list'], env);

    const escaped = '\\u001b]0;pwned\\u0007\\u001b[2J\\u000d\\u000afake row\\u202eevil';
    for (const [run, row] of [
      [suppressions, 'bounced@example.com'],
      [jobs, jobId],
    ] as const) {
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout.replaceAll('\n', '')).to.not.match(/[\p{Cc}\u202e]/u);
      const lines = run.stdout.trimEnd().split('\n');
      expect(lines, run.stdout).to.have.length(2);
      expect(lines[1]).to.contain(row).and.contain(escaped);
    }
  });

  it('when an operator creates, rotates and revokes app keys and manages suppressions, then each command does it and says so', async () => {
    db = await createTestDatabase();
    const env = { DATABASE_URL: db.url };

    const created = await runCli('admin', ['apps', 'create', 'shop'], env);
    const key = /jp_[a-z0-9]{12}_\S+/.exec(created.stdout)?.[0];
    const duplicate = await runCli('admin', ['apps', 'create', 'shop'], env);
    const rotated = await runCli('admin', ['apps', 'rotate', 'shop', '--revoke-others'], env);
    const listed = await runCli('admin', ['apps', 'list'], env);
    const newPrefix = /jp_([a-z0-9]{12})_/.exec(rotated.stdout)?.[1];
    const revoked = await runCli('admin', ['apps', 'revoke', 'shop', newPrefix ?? 'missing'], env);
    const added = await runCli('admin', ['suppressions', 'add', 'shop', 'Gone@Example.com', '--note', 'left the company'], env);
    const suppressions = await runCli('admin', ['suppressions', 'list', 'shop'], env);
    const removed = await runCli('admin', ['suppressions', 'remove', 'shop', 'gone@example.com'], env);
    const unknownApp = await runCli('admin', ['suppressions', 'list', 'nope'], env);

    expect(created.code, created.stderr).to.equal(0);
    expect(key).to.be.a('string');
    expect(duplicate.code).to.equal(1);
    expect(duplicate.stderr).to.contain('an app named shop already exists');
    expect(rotated.stdout).to.contain(`revoked: ${/jp_([a-z0-9]{12})_/.exec(key!)?.[1]}`);
    expect(listed.stdout).to.match(new RegExp(`shop\\s+\\S+\\s+${newPrefix}\\s+1`));
    expect(revoked.stdout).to.contain(`revoked key ${newPrefix} of shop`);
    const { rows } = await db.pool.query('select count(*)::int as n from api_keys where revoked_at is null');
    expect(rows[0].n).to.equal(0);
    expect(added.stdout).to.contain('gone@example.com is suppressed for shop (manual)');
    expect(suppressions.stdout).to.match(/gone@example\.com\s+manual\s+\S+\s+left the company/);
    expect(removed.stdout).to.contain("removed from shop's suppressions");
    expect(unknownApp.code).to.equal(1);
    expect(unknownApp.stderr).to.contain('no app named nope');
    // The key is printed for the operator, never logged: the command's stderr holds no key.
    expect(created.stderr + rotated.stderr).not.to.match(/jp_[a-z0-9]{12}_/);
  });

  it('when an operator sets, shows and removes a webhook, then internal URLs need the allow-list and the secret is printed', async () => {
    db = await createTestDatabase();
    await makeApp(db.pool, { name: 'crm' });
    const env = { DATABASE_URL: db.url };
    // Outside dev mode (which allows loopback targets): as with Mailjet keys.
    const serviceEnv = { ...env, DEV_MODE: 'false', EVENTS_USERNAME: 'mailjet', EVENTS_PASSWORD: 'events-password-0123' };

    const refused = await runCli('admin', ['webhooks', 'set', 'crm', 'http://127.0.0.1:9/hook'], serviceEnv);
    const set = await runCli('admin', ['webhooks', 'set', 'crm', 'http://127.0.0.1:9/hook'], { ...serviceEnv, WEBHOOK_ALLOWED_TARGETS: '127.0.0.0/8' });
    const shown = await runCli('admin', ['webhooks', 'show', 'crm'], env);
    const deliveries = await runCli('admin', ['webhooks', 'deliveries', 'crm'], env);
    const removed = await runCli('admin', ['webhooks', 'remove', 'crm'], env);
    const again = await runCli('admin', ['webhooks', 'show', 'crm'], env);

    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.contain('WEBHOOK_ALLOWED_TARGETS');
    expect(set.code, set.stderr).to.equal(0);
    const secret = /signing secret \(give it to the receiving app\): (whsec_\S+)/.exec(set.stdout)?.[1];
    expect(secret).to.be.a('string');
    expect(set.stdout).to.contain('event types: all');
    expect(shown.stdout).to.contain('http://127.0.0.1:9/hook').and.contain(secret!);
    expect(deliveries.stdout).to.equal('(none)\n');
    expect(removed.stdout).to.contain('webhook of crm removed');
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain('app crm has no webhook');
  });

  it('when an app has more deliveries than a page, then webhooks deliveries says where the next page starts and --before reads it', async () => {
    db = await createTestDatabase();
    const app = await makeApp(db.pool, { name: 'crm' });
    const jobs = [await makeJob(db.pool, { appId: app.id }), await makeJob(db.pool, { appId: app.id }), await makeJob(db.pool, { appId: app.id })];
    const { rows } = await db.pool.query<{ id: string }>(
      `with changes as (
         insert into status_changes (app_id, job_id, old_status, new_status)
         select $1::bigint, job_id, 'processing', 'accepted' from unnest($2::bigint[]) as job_id
         returning id, app_id
       )
       insert into webhook_deliveries (change_id, app_id, url)
       select id, app_id, 'https://hooks.example.com/crm' from changes order by id
       returning id::text`,
      [app.id, jobs],
    );
    const [oldest, middle, newest] = rows.map((row) => row.id).sort((a, b) => Number(a) - Number(b));
    const env = { DATABASE_URL: db.url };

    const first = await runCli('admin', ['webhooks', 'deliveries', 'crm', '--limit', '2'], env);
    const second = await runCli('admin', ['webhooks', 'deliveries', 'crm', '--limit', '2', '--before', middle!], env);

    expect(first.code, first.stderr).to.equal(0);
    const firstLines = first.stdout.trimEnd().split('\n');
    expect(firstLines.slice(1, 3).map((line) => line.split(/\s+/)[0])).to.deep.equal([newest, middle]);
    expect(firstLines.at(-1)).to.equal(`older deliveries may match: add --before ${middle}`);
    expect(second.code, second.stderr).to.equal(0);
    const secondLines = second.stdout.trimEnd().split('\n');
    expect(secondLines.slice(1).map((line) => line.split(/\s+/)[0])).to.deep.equal([oldest]);
  });

  it('when an operator chooses event types and rotates the secret with an overlap, then both are stored and shown; unknown types, no types and a bad overlap are refused', async () => {
    db = await createTestDatabase();
    await makeApp(db.pool, { name: 'crm' });
    const env = { DATABASE_URL: db.url, WEBHOOK_ALLOWED_TARGETS: '127.0.0.0/8' };

    const set = await runCli('admin', ['webhooks', 'set', 'crm', 'http://127.0.0.1:9/hook', '--events', 'bounced,spam,failed'], env);
    const unknown = await runCli('admin', ['webhooks', 'set', 'crm', 'http://127.0.0.1:9/hook', '--events', 'bounce'], env);
    const none = await runCli('admin', ['webhooks', 'set', 'crm', 'http://127.0.0.1:9/hook', '--events', ''], env);
    const rotated = await runCli('admin', ['webhooks', 'rotate-secret', 'crm', '--overlap', '1h'], env);
    const badOverlap = await runCli('admin', ['webhooks', 'rotate-secret', 'crm', '--overlap', '8d'], env);
    const shown = await runCli('admin', ['webhooks', 'show', 'crm'], env);
    const cut = await runCli('admin', ['webhooks', 'rotate-secret', 'crm', '--overlap', '0'], env);

    expect(set.code, set.stderr).to.equal(0);
    expect(set.stdout).to.contain('event types: spam, bounced, failed');
    const first = /signing secret \(give it to the receiving app\): (whsec_\S+)/.exec(set.stdout)![1]!;
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('--events').and.contain('accepted, sent, opened, clicked, unsubscribed, spam, bounced, blocked, failed, cancelled');
    expect(none.code).to.equal(2);
    expect(none.stderr).to.contain('remove the webhook');
    expect(rotated.code, rotated.stderr).to.equal(0);
    const second = /signing secret: (whsec_\S+)/.exec(rotated.stdout)![1]!;
    expect(second).to.not.equal(first);
    expect(rotated.stdout).to.match(new RegExp(`previous secret \\(still signs until \\S+\\): ${first.replace(/[+/]/g, '\\$&')}`));
    expect(badOverlap.code).to.equal(2);
    expect(badOverlap.stderr).to.contain('--overlap');
    expect(shown.stdout).to.contain(second).and.contain(first).and.contain('event types: spam, bounced, failed');
    expect(cut.code, cut.stderr).to.equal(0);
    expect(cut.stdout).to.not.contain('previous secret');
    expect(cut.stdout).to.contain('every older secret stopped signing now');
  });

  it('when the command is unknown or its arguments are wrong, then it says how to use it and exits 2', async () => {
    db = await createTestDatabase();
    const env = { DATABASE_URL: db.url };

    // Through tsx, the way `npm run admin` runs it: the one test of that path.
    const unknown = await runCli('admin', ['jobs', 'explode'], env, { runner: 'tsx' });
    const bad = await runCli('admin', ['jobs', 'requeue'], env, { runner: 'tsx' });
    const extra = await runCli('admin', ['apps', 'list', 'billing'], env, { runner: 'tsx' });
    const missing = await runCli('admin', ['suppressions', 'add', 'billing'], env, { runner: 'tsx' });

    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('unknown command: jobs explode').and.contain('usage: npm run admin');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('give job ids, or --all-failed');
    expect([extra.code, extra.stderr.split('\n')[0]]).to.deep.equal([2, 'expected no arguments, not 1 argument']);
    expect([missing.code, missing.stderr.split('\n')[0]]).to.deep.equal([2, 'expected APP EMAIL, not 1 argument']);
  });

  it('when help is asked for after a command, or Node refuses an option in several sentences, then the usage is the answer (exit 0), and the reason is one readable line (exit 2)', async () => {
    // Neither needs the database: one nothing listens on.
    const env = { DATABASE_URL: 'postgres://jetpost:x@127.0.0.1:1/jetpost' };

    const help = await Promise.all(
      [
        ['apps', 'create', '--help'],
        ['jobs', 'list', '-h'],
        ['apps', '--help'],
      ].map((args) => runCli('admin', args, env)),
    );
    const dash = await runCli('admin', ['jobs', 'list', '--limit', '-1'], env);

    expect(help.map((run) => [run.code, run.stdout.split('\n')[0], run.stderr])).to.deep.equal(
      Array.from({ length: 3 }, () => [0, 'usage: npm run admin -- <command>', '']),
    );
    expect(dash.code).to.equal(2);
    expect(dash.stderr.split('\n')[0]).to.equal(
      "Option '--limit' argument is ambiguous. Did you forget to specify the option argument for '--limit'? To specify an option argument starting with a dash use '--limit=-XYZ'.",
    );
  });

  it('when the arguments are wrong and the database is unreachable, then each command says how to use it and exits 2, without trying the database', async () => {
    // A port nothing listens on: a command that connected first would fail with ECONNREFUSED (exit 1).
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const env = { DATABASE_URL: `postgres://jetpost:x@127.0.0.1:${port}/jetpost` };

    const invocations = [
      ['jobs', 'requeue'],
      ['jobs', 'requeue', 'x1'],
      ['jobs', 'list', '--status', 'lost'],
      ['apps', 'create'],
      ['apps', 'create', '-bad name'],
      ['apps', 'revoke', 'shop', 'not-a-prefix'],
      ['suppressions', 'list', 'shop', '--limit', '0'],
      ['suppressions', 'add', 'shop', 'not-an-address'],
      ['webhooks', 'set', 'shop', 'https://example.com/', '--events', 'nope'],
      ['webhooks', 'rotate-secret', 'shop', '--overlap', '9d'],
      ['webhooks', 'deliveries', 'shop', '--status', 'lost'],
      ['webhooks', 'deliveries', 'shop', '--before', '0'],
      ['webhooks', 'redeliver', 'shop', 'x'],
    ];
    const runs = await Promise.all(invocations.map((args) => runCli('admin', args, env)));

    expect(runs.map((run, i) => `${invocations[i]!.join(' ')}: ${run.code}`)).to.deep.equal(invocations.map((args) => `${args.join(' ')}: 2`));
    for (const run of runs) {
      expect(run.stderr).to.contain('usage: npm run admin').and.not.contain('ECONNREFUSED');
    }
  });

  it('when an option is given twice, then the command names it and exits 2, changing nothing', async () => {
    db = await createTestDatabase();
    await makeApp(db.pool, { name: 'shop' });
    const env = { DATABASE_URL: db.url };

    const runs = [
      await runCli('admin', ['jobs', 'list', '--limit', '5', '--limit', '10'], env),
      await runCli('admin', ['suppressions', 'add', 'shop', 'a@example.com', '--note', 'one', '--note=two'], env),
      await runCli('admin', ['apps', 'rotate', 'shop', '--revoke-others', '--revoke-others'], env),
      await runCli('admin', ['jobs', 'requeue', '--all-failed', '--app', 'shop', '--app', 'other'], env),
    ];

    expect(runs.map((run) => run.code)).to.deep.equal([2, 2, 2, 2]);
    expect(runs.map((run) => run.stderr.split('\n')[0])).to.deep.equal([
      '--limit is given more than once',
      '--note is given more than once',
      '--revoke-others is given more than once',
      '--app is given more than once',
    ]);
    expect(runs[0]!.stderr).to.contain('usage: npm run admin');
    const { rows } = await db.pool.query('select (select count(*)::int from suppressions) as suppressions, (select count(*)::int from api_keys) as keys');
    expect(rows).to.deep.equal([{ suppressions: 0, keys: 1 }]);
  });
  it('when DATABASE_SCHEMA names no jetpost schema (mistyped, or one without our migrations), then the command refuses in one line and creates nothing', async () => {
    db = await createTestDatabase();
    await makeApp(db.pool, { name: 'billing' });
    await db.pool.query('create schema other_software');
    await db.pool.query('create table other_software.migrations (id int primary key)');
    const env = { DATABASE_URL: db.url };

    const mistyped = await runCli('admin', ['apps', 'list'], { ...env, DATABASE_SCHEMA: 'jetpots' });
    const foreign = await runCli('admin', ['apps', 'list'], { ...env, DATABASE_SCHEMA: 'other_software' });
    const right = await runCli('admin', ['apps', 'list'], env);

    expect(mistyped.code).to.equal(1);
    expect(mistyped.stderr).to.equal('no jetpost schema jetpots in this database; check DATABASE_SCHEMA, or start jetpost once to create it\n');
    expect(foreign.code).to.equal(1);
    expect(foreign.stderr).to.equal('no jetpost schema other_software in this database; check DATABASE_SCHEMA, or start jetpost once to create it\n');
    const schemas = await db.pool.query(`select nspname from pg_namespace where nspname in ('jetpots', 'other_software')`);
    expect(schemas.rows).to.deep.equal([{ nspname: 'other_software' }]);
    const tables = await db.pool.query(`select count(*)::int as n from pg_tables where schemaname = 'other_software'`);
    expect(tables.rows[0].n, 'tables in other_software').to.equal(1);
    expect(right.code, right.stderr).to.equal(0);
    expect(right.stdout).to.contain('billing');
  });
});
